"""The one loader for golden files in ``tests/fixtures/*.txt``.

Format, one case per line::

    # title: old spelling oe -> u        (applies to the cases below it, until the next title)
    Soekarno == Sukarno                  (the two must normalise to the same key)
    Saputra != Saputri                   (the two must stay apart)
    1871014508900001 -> valid 18.71.01 1990-08-05 F 0001   (input, then the expected rendering)

Blank lines and other ``#`` lines are ignored. Operators are surrounded by spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
OPERATORS = (" == ", " != ", " -> ")


@dataclass(frozen=True)
class Case:
    title: str
    left: str
    op: str
    right: str
    line: int

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
                cases.append(Case(title, left.strip(), op.strip(), right.strip(), number))
                break
        else:
            raise ValueError(f"{path}:{number}: no ' == ', ' != ' or ' -> ' in {raw!r}")
    return cases
