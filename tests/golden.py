"""The one loader for golden files in ``tests/fixtures/*.txt``.

Format, one case per line::

    # title: old spelling oe -> u        (applies to the cases below it, until the next title)
    Soekarno == Sukarno -> SUKARNO       (the two must normalise to the same key; both display SUKARNO)
    Nurhayati == Nur Hayati -> NURHAYATI | NUR HAYATI   (same key; the left displays as the first form)
    Saputra != Saputri                   (the two must stay apart)
    1871014508900001 -> valid 18.71.01 1990-08-05 F 0001   (input, then the expected rendering)

Blank lines and other ``#`` lines are ignored. Operators are surrounded by spaces. A ``==`` or ``!=``
case may end in `` -> `` and what each side must normalise to: one form for both sides, or the left's
and the right's forms separated by `` | `` (:attr:`Case.expected`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
OPERATORS = (" == ", " != ", " -> ")
EXPECT = " -> "  # after a == or != case: the form each side normalises to
EITHER = " | "  # between the left's and the right's expected forms


@dataclass(frozen=True)
class Case:
    title: str
    left: str
    op: str
    right: str
    line: int
    expected: tuple[str, str] | None = None  # (left's form, right's form), when the case states them

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.left}{self.op}{self.right}"


def load(name: str) -> list[Case]:
    """Read ``tests/fixtures/<name>`` into cases; fail loudly on a line with no operator."""
    cases: list[Case] = []
    title = ""
    path = FIXTURES / name
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.lower().startswith("# title:"):
                title = line.split(":", 1)[1].strip()
            continue
        for op in OPERATORS:
            if op in line:
                left, right = line.split(op, 1)
                expected = None
                if op != EXPECT and EXPECT in right:
                    right, forms = right.split(EXPECT, 1)
                    expected = _forms(forms, f"{path}:{number}")
                cases.append(Case(title, left.strip(), op.strip(), right.strip(), number, expected))
                break
        else:
            raise ValueError(f"{path}:{number}: no ' == ', ' != ' or ' -> ' in {raw!r}")
    return cases


def _forms(text: str, where: str) -> tuple[str, str]:
    """``X`` as (X, X), ``X | Y`` as (X, Y); ``X | X`` is refused (write ``X``)."""
    parts = [p.strip() for p in text.split(EITHER)]
    if len(parts) == 1 and parts[0]:
        return parts[0], parts[0]
    if len(parts) == 2 and all(parts) and parts[0] != parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"{where}: expected 'FORM' or 'LEFT FORM | RIGHT FORM' after ' -> ', got {text!r}")
