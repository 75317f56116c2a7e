"""Errors raised by linkage, with the file, row, column and value they concern.

Every error the library raises on purpose is a :class:`LinkageError`, so callers (the CLI, the
HTTP API) can catch one type and turn it into a message and an exit code or an error response::

    LinkageError
    ├── ConfigError       a settings or column-mapping file is invalid (every problem at once)
    ├── InputError        an input file cannot be read at all (missing, wrong format, no header)
    ├── NotFoundError     a record or identity id the store does not hold (an HTTP 404, not a 400)
    └── StoreError        the DuckDB store is missing, locked or of an unknown schema version

Problems with single *rows* or *fields* of an input file are not exceptions: ingest quarantines
the row or records a field issue and carries on (see :mod:`linkage.ingest`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "InputError",
    "LinkageError",
    "NotFoundError",
    "Problem",
    "StoreError",
    "did_you_mean",
]


@dataclass(frozen=True)
class Problem:
    """One located problem: where it is, what the value was, and what is wrong with it."""

    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.file,
                f"row {self.row}" if self.row is not None else None,
                f"column {self.column!r}" if self.column else None,
            )
            if part
        )
        return f"{where}: {self.message}" if where else self.message


@dataclass
class LinkageError(Exception):
    """Base class of every error linkage raises on purpose."""

    message: str
    problems: Sequence[Problem] = field(default_factory=tuple)
    exit_code: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        return "\n".join(lines)


class ConfigError(LinkageError):
    """A settings or column-mapping file is invalid; ``problems`` lists every invalid key."""


class InputError(LinkageError):
    """An input file cannot be read at all: missing, of an unknown format, or without a header."""


class NotFoundError(LinkageError):
    """A record id or identity id that the store does not hold (a lookup miss, not a malformed input)."""


class StoreError(LinkageError):
    """The DuckDB store cannot be used: missing, locked, or written by an unknown schema version."""


class EngineError(LinkageError):
    """The Spark engine did not start or failed during a run (Java, memory, a cluster); the store is unchanged."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` hint for ``value``, or ``""`` when nothing is close.

    >>> did_you_mean("ful_name", ["full_name", "sex"])
    " (did you mean 'full_name'?)"
    >>> did_you_mean("zzz", ["full_name"])
    ''
    """
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
