"""``linkage decide``: an officer's decision that two applications are, or are not, one person.

A decision is stored with who made it and why, and logged as an event at once; the next ``linkage link``
honours it (a cannot-link is never merged through, not even along a chain; a must-link holds unless a
cannot-link contradicts it, which the run reports) and records the identity changes it causes.

The officer's name and the reason are shown in terminals, pages and exports, so they are bounded
(:data:`MAX_OFFICER_CHARS`, :data:`MAX_REASON_CHARS`) and may not hold control characters (line
breaks, tabs, escape codes): a decision's text is one line of printable characters.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from linkage.config import DEFAULT_MEMORY_LIMIT
from linkage.errors import InputError
from linkage.store import Store

__all__ = ["KINDS", "MAX_OFFICER_CHARS", "MAX_REASON_CHARS", "Decision", "decide"]

Kind = Literal["must_link", "cannot_link"]
KINDS: Final[tuple[Kind, ...]] = ("must_link", "cannot_link")
MAX_OFFICER_CHARS: Final = 100
"""The longest officer name (``--by``) a decision takes, in characters."""
MAX_REASON_CHARS: Final = 1_000
"""The longest reason (``--reason``) a decision takes, in characters."""


@dataclass(frozen=True)
class Decision:
    """A stored decision."""

    decision_id: str
    kind: str
    record_id_a: str
    record_id_b: str
    decided_by: str
    reason: str
    decided_at: str
    identity_a: str | None  # the records' identities when the decision was made (None: not linked yet)
    identity_b: str | None
    interrupted_runs: list[dict[str, str]] = field(default_factory=list)  # runs a kill left running, now marked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    db: Path, kind: str, a: str, b: str, *, by: str, reason: str, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> Decision:
    """Store a must-link or cannot-link decision between records ``a`` and ``b``, and its event.

    Raises:
        InputError: an unknown kind, the same record twice, a record the store does not hold, no
            officer or reason given, or one that is too long or holds a control character.
        StoreError: no store at ``db``, or another process is writing it.

    >>> decide(Path("x.duckdb"), "must_link", "A1", "A2", by="officer.rina", reason="same\\tphoto")
    Traceback (most recent call last):
    linkage.errors.InputError: the reason (--reason) holds a control character '\\t' at position 4:
        write it on one line of printable characters
    """
    if kind not in KINDS:
        raise InputError(f"unknown decision {kind!r}: use one of {', '.join(k.replace('_', '-') for k in KINDS)}")
    if a == b:
        raise InputError(f"a decision needs two different records, got {a!r} twice")
    if not by.strip() or not reason.strip():
        raise InputError("a decision needs the officer (--by) and a reason (--reason)")
    _check_text("officer (--by)", by, MAX_OFFICER_CHARS)
    _check_text("reason (--reason)", reason, MAX_REASON_CHARS)
    with Store(db, memory_limit=memory_limit) as store:
        interrupted = store.mark_interrupted()
        found = {r for (r,) in store.rows("SELECT record_id FROM applications WHERE record_id IN (?, ?)", [a, b])}
        missing = [r for r in (a, b) if r not in found]
        if missing:
            raise InputError(f"no application with record_id {', '.join(map(repr, missing))} in {db}")
        identity = dict(store.rows("SELECT record_id, identity_id FROM membership WHERE record_id IN (?, ?)", [a, b]))
        made = Decision(
            decision_id="D-" + uuid.uuid4().hex[:16],
            kind=kind,
            record_id_a=a,
            record_id_b=b,
            decided_by=by.strip(),
            reason=reason.strip(),
            decided_at=datetime.now(UTC).isoformat(),
            identity_a=identity.get(a),
            identity_b=identity.get(b),
            interrupted_runs=interrupted,
        )
        with store.transaction():
            store.sql(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [made.decision_id, kind, a, b, made.decided_by, made.reason, made.decided_at],
                table="decisions",
            )
            store.sql(
                """INSERT INTO events (run_id, happened_at, kind, identity_id, other_identity_id, record_id,
                                       other_record_id, probability, reason)
                   VALUES (NULL, ?, 'decision', ?, ?, ?, ?, NULL, ?)""",
                [made.decided_at, made.identity_a, made.identity_b, a, b,
                 f"{kind.replace('_', '-')} by {made.decided_by}: {made.reason}"],
                table="events",
            )  # fmt: skip
    return made


def _check_text(what: str, text: str, limit: int) -> None:
    """Refuse a text over ``limit`` characters or with a control character (Unicode category Cc)."""
    if len(text) > limit:
        raise InputError(f"the {what} has {len(text):,} characters, more than the limit of {limit:,}: shorten it")
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            raise InputError(
                f"the {what} holds a control character {char!r} at position {position}: "
                "write it on one line of printable characters"
            )
