"""Read offices' extracts (CSV, Parquet, Excel) into batches of rows mapped onto the canonical roles.

Two kinds of problem are kept apart here:

* a **row** that cannot be used is *quarantined* with its file, row, field, value and reason:
  no ``record_id`` (``missing_record_id``), a ``record_id`` holding control or format characters
  such as NUL or a zero-width space (``record_id_invisible_characters``) or longer than
  ``ingest.max_record_id_chars`` (``record_id_too_long``), no ``full_name``, a ragged line,
  undecodable bytes, a cell longer than ``ingest.max_field_chars`` (``field_too_long``, its value
  truncated in the quarantine), a ``record_id`` already read in this run;
* a bad **field** (an impossible date, a malformed NIK) never costs the row: that is for
  :mod:`linkage.normalise` to record as a field issue.

Every row read is either accepted or quarantined, so ``rows_read = accepted + quarantined``.
A ``record_id`` the store already holds is not a row problem: :mod:`linkage.pipeline` has the store
compare the row with the stored one (new, updated or unchanged).
Files are streamed in chunks, so memory stays bounded whatever their size.

The files are read by :mod:`linkage.readers` (CSV with its encodings and delimiters, Parquet, Excel).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from linkage.config import Config
from linkage.errors import InputError, Problem, did_you_mean
from linkage.readers import FORMATS, Chunk, FileReport, open_file
from linkage.schema import REQUIRED, ROLES

__all__ = ["Batch", "Quarantined", "read_files"]

_SHOWN_CHARS: Final = 200
"""characters of an over-long value kept in the quarantine table"""


@dataclass(frozen=True)
class Quarantined:
    """A row that could not be used, with where it was and why."""

    file: str
    row: int
    reason: str
    field: str | None
    value: str | None
    raw: str | None


@dataclass
class Batch:
    """Accepted rows of one chunk of one file, as columns by role, plus what was quarantined."""

    file: str
    columns: dict[str, list[str | None]]
    rows: list[int]
    extras: list[str | None]
    quarantined: list[Quarantined]
    read_issues: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    """(record_id, role, value, reason) found while reading, e.g. a NIK that Excel rounded."""

    @property
    def accepted(self) -> int:
        return len(self.rows)



def read_files(
    paths: Iterable[Path],
    config: Config,
    *,
    seen: set[str] | None = None,
    reports: list[FileReport] | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Batch]:
    """Read every file, chunk by chunk, into batches of accepted rows and quarantined rows.

    Args:
        paths: CSV, Parquet or ``.xlsx`` files.
        config: its ``[columns]`` maps the canonical roles onto each file's columns.
        seen: record ids already accepted (grows as files are read: a later duplicate is quarantined).
        reports: a list to append one :class:`FileReport` per file to.
        chunk_rows: rows per batch (default: ``config.ingest.chunk_rows``).

    Raises:
        InputError: a file is missing, of an unknown format, not text (CSV), without a detectable
            delimiter, with sheets of different headers or without the sheet ``ingest.sheet`` names
            (.xlsx), or lacks a column the mapping needs.
    """
    seen = set() if seen is None else seen
    size = chunk_rows or config.ingest.chunk_rows
    limits = _Limits(config.ingest.max_field_chars, config.ingest.max_record_id_chars)
    paths = list(paths)
    for path in paths:  # fail before reading anything when a file cannot be read at all
        _check_path(path)
    for path in paths:
        report = FileReport(file=str(path), format=FORMATS[path.suffix.lower()])
        if reports is not None:
            reports.append(report)
        header, chunks = open_file(path, report, size, config.ingest.sheet)
        mapping = _map_columns(header, config, path)
        extra_idx = [i for i, name in enumerate(header) if name not in mapping.used]
        for chunk in chunks:
            yield _batch(chunk, header, mapping, extra_idx, report, seen, limits)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.suffix.lower() not in FORMATS:
        raise InputError(
            f"{path}: unknown format {path.suffix!r}{did_you_mean(path.suffix.lower(), FORMATS)}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )


@dataclass(frozen=True)
class _Limits:
    field_chars: int
    record_id_chars: int


@dataclass(frozen=True)
class _Mapping:
    roles: dict[str, list[int]]
    used: frozenset[str]


def _map_columns(header: list[str], config: Config, path: Path) -> _Mapping:
    """Column indexes of each role; a missing required or explicitly mapped column is an error."""
    index = {name: i for i, name in enumerate(header)}
    roles: dict[str, list[int]] = {}
    problems = []
    for role in ROLES:
        sources = config.source_columns(role)
        missing = [s for s in sources if s not in index]
        if not missing:
            roles[role] = [index[s] for s in sources]
        elif role in REQUIRED or role in config.columns:
            problems += [
                Problem(f"no column {s!r} for role {role!r}{did_you_mean(s, header)}", file=str(path), column=s)
                for s in missing
            ]
    if problems:
        raise InputError(f"{path}: columns do not match the mapping (header: {', '.join(header)})", problems)
    used = frozenset(header[i] for idx in roles.values() for i in idx)
    return _Mapping(roles, used)


def _batch(
    chunk: Chunk,
    header: list[str],
    mapping: _Mapping,
    extra_idx: list[int],
    report: FileReport,
    seen: set[str],
    limits: _Limits,
) -> Batch:
    """Quarantine the unusable rows of a chunk and turn the rest into columns by role.

    Works column by column: a million rows cost seconds, not a minute.
    """
    file = chunk.source or report.file
    batch = Batch(file, {}, [], [], [])
    quarantined = batch.quarantined
    most = limits.field_chars
    for row, why, column, shown, as_read in chunk.rejected:
        at = header[column] if column is not None else None
        quarantined.append(Quarantined(file, row, why, at, _clip(shown, most), _raw(header, as_read, most)))
    cells = chunk.cells
    too_long = _too_long(cells, most)
    mapped = {role: _role_column(cells, idx, chunk.trimmed) for role, idx in mapping.roles.items()}
    ids, names = mapped["record_id"], mapped["full_name"]
    keep: list[int] = []
    for n, record_id in enumerate(ids):
        if n in too_long:
            reason, where, value = "field_too_long", header[too_long[n]], _clip(cells[too_long[n]][n], 0)
        elif not record_id:
            reason, where, value = "missing_record_id", "record_id", record_id
        elif not record_id.isprintable() and _invisible(record_id):
            shown = _clip(_escaped(record_id), limits.record_id_chars)
            reason, where, value = "record_id_invisible_characters", "record_id", shown
        elif len(record_id) > limits.record_id_chars:
            reason, where, value = "record_id_too_long", "record_id", _clip(record_id, 0)
        elif not names[n]:
            reason, where, value = "missing_full_name", "full_name", names[n]
        elif record_id in seen:
            reason, where, value = "duplicate_record_id", "record_id", record_id
        else:
            seen.add(record_id)
            keep.append(n)
            continue
        values = [column[n] for column in cells]
        quarantined.append(Quarantined(file, chunk.rows[n], reason, where, value, _raw(header, values, most)))
    quarantined.sort(key=lambda q: q.row)
    none: list[str | None] = [None] * len(keep)
    everything = len(keep) == len(ids)
    batch.columns = {
        role: (mapped[role] if everything else [mapped[role][n] for n in keep]) if role in mapped else none
        for role in ROLES
    }
    batch.rows = chunk.rows if everything else [chunk.rows[n] for n in keep]
    if extra_idx:
        batch.extras = [json.dumps({header[i]: cells[i][n] for i in extra_idx}, ensure_ascii=False) for n in keep]
    else:
        batch.extras = list(none)
    role_of = {i: role for role, idx in mapping.roles.items() for i in idx}
    kept = set(keep)
    batch.read_issues = [
        (str(ids[n]), role_of[i], cells[i][n], why) for n, i, why in chunk.notes if n in kept and i in role_of
    ]
    report.rows_read += len(chunk)
    report.accepted += len(keep)
    report.quarantined += len(quarantined)
    return batch


def _role_column(columns: list[list[str | None]], idx: list[int], trimmed: bool = False) -> list[str | None]:
    """One role's values: its column stripped (empty → None), or its columns joined by a space."""
    if len(idx) == 1:
        if trimmed:
            return columns[idx[0]]
        return [v.strip() or None if v else None for v in columns[idx[0]]]
    parts = zip(*(columns[i] for i in idx), strict=True)
    return [" ".join(p.strip() for p in values if p and p.strip()) or None for values in parts]


def _raw(header: list[str], values: list[str | None], most: int) -> str:
    """The row as read, for the quarantine table (undecodable bytes shown as U+FFFD, cells over ``most`` clipped)."""
    named = {header[i] if i < len(header) else f"_extra_{i}": _clip(v, most) for i, v in enumerate(values)}
    text = json.dumps(named, ensure_ascii=False)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _too_long(cells: list[list[str | None]], most: int) -> dict[int, int]:
    """Position → index of the first column whose value there is longer than ``most`` characters.

    One ``max`` per column at C speed finds the (rare) columns worth a look row by row.
    """
    found: dict[int, int] = {}
    for i, column in enumerate(cells):
        if max(map(len, filter(None, column)), default=0) > most:
            for n, value in enumerate(column):
                if value and len(value) > most:
                    found.setdefault(n, i)
    return found


def _clip(value: str | None, most: int) -> str | None:
    """``value`` if it has at most ``most`` characters, else its start and its length (for the quarantine)."""
    if value is None or len(value) <= most:
        return value
    return f"{value[:_SHOWN_CHARS]}… ({len(value):,} characters)"


def _invisible(value: str) -> bool:
    """A control (Cc: NUL, ESC, …) or format (Cf: zero-width space, BOM, …) character is in ``value``.

    Such an id looks like another one, or like nothing, on every screen an officer uses.
    """
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


def _escaped(value: str) -> str:
    """``value`` with unprintable characters as Python escapes (``A1\\x00``), so the quarantine shows them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
