"""Read offices' extracts (CSV, Parquet, Excel) into batches of rows mapped onto the canonical roles.

Two kinds of problem are kept apart here:

* a **row** that cannot be used (no ``record_id``, no ``full_name``, a ragged line, undecodable
  bytes, a ``record_id`` already read in this run) is *quarantined* with its file, row, field, value
  and reason;
* a bad **field** (an impossible date, a malformed NIK) never costs the row: that is for
  :mod:`linkage.normalise` to record as a field issue.

Every row read is either accepted or quarantined, so ``rows_read = accepted + quarantined``.
A ``record_id`` the store already holds is not a row problem: :mod:`linkage.pipeline` has the store
compare the row with the stored one (new, updated or unchanged).
Files are streamed in chunks, so memory stays bounded whatever their size.

CSV: the delimiter is sniffed; UTF-8 with or without BOM, UTF-16 with BOM, and latin-1 when the
file has no valid UTF-8 multi-byte sequence at all (reported). In a UTF-8 file a line with
undecodable bytes is quarantined, the rest of the file is read.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from linkage.config import Config
from linkage.errors import InputError, Problem, did_you_mean
from linkage.schema import REQUIRED, ROLES

__all__ = ["FORMATS", "Batch", "FileReport", "Quarantined", "read_files"]

FORMATS: Final = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}

_DELIMITERS: Final = ",;\t|"
_SCAN_BYTES: Final = 1 << 24
_UTF8_MULTIBYTE: Final = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_SURROGATE: Final = re.compile("[\udc80-\udcff]")
_EXCEL_DIGITS: Final = 10**15

@dataclass
class _Chunk:
    """Up to ``chunk_rows`` rows as a reader found them: good rows column by column, bad rows apart."""

    rows: list[int]
    """source row number of each good row"""
    cells: list[list[str | None]]
    """the good rows' values, one list per header column"""
    notes: list[tuple[int, int, str]] = field(default_factory=list)
    """(position among the good rows, column index, issue reason) noticed while reading"""
    rejected: list[tuple[int, str, int | None, str | None, list[str | None]]] = field(default_factory=list)
    """(row, reason, column index, value, cells) of rows that cannot be read as rows"""
    trimmed: bool = False
    """cells are already stripped, with blanks as None"""

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejected)


def _by_column(rows: list[list[str | None]], width: int) -> list[list[str | None]]:
    # a comprehension per column: zip(*rows) allocates an iterator per row and wakes the GC
    return [[r[i] for r in rows] for i in range(width)]


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


@dataclass
class FileReport:
    """What reading one file found: its format, encoding, and how many rows were read."""

    file: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    blank_lines: int = 0
    notes: list[str] = field(default_factory=list)


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
        InputError: a file is missing, of an unknown format, or lacks a column the mapping needs.
    """
    seen = set() if seen is None else seen
    size = chunk_rows or config.ingest.chunk_rows
    paths = list(paths)
    for path in paths:  # fail before reading anything when a file cannot be read at all
        _check_path(path)
    for path in paths:
        report = FileReport(file=str(path), format=FORMATS[path.suffix.lower()])
        if reports is not None:
            reports.append(report)
        header, chunks = _open(path, report, size)
        mapping = _map_columns(header, config, path)
        extra_idx = [i for i, name in enumerate(header) if name not in mapping.used]
        for chunk in chunks:
            yield _batch(chunk, header, mapping, extra_idx, report, seen)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.suffix.lower() not in FORMATS:
        raise InputError(
            f"{path}: unknown format {path.suffix!r}{did_you_mean(path.suffix.lower(), FORMATS)}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )


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
    chunk: _Chunk,
    header: list[str],
    mapping: _Mapping,
    extra_idx: list[int],
    report: FileReport,
    seen: set[str],
) -> Batch:
    """Quarantine the unusable rows of a chunk and turn the rest into columns by role.

    Works column by column: a million rows cost seconds, not a minute.
    """
    file = report.file
    batch = Batch(file, {}, [], [], [])
    quarantined = batch.quarantined
    for row, reason, column, value, as_read in chunk.rejected:
        where = header[column] if column is not None else None
        quarantined.append(Quarantined(file, row, reason, where, value, _raw(header, as_read)))
    cells = chunk.cells
    mapped = {role: _role_column(cells, idx, chunk.trimmed) for role, idx in mapping.roles.items()}
    ids, names = mapped["record_id"], mapped["full_name"]
    keep: list[int] = []
    for n, record_id in enumerate(ids):
        if not record_id:
            reason, where = "missing_record_id", "record_id"
        elif not names[n]:
            reason, where = "missing_full_name", "full_name"
        elif record_id in seen:
            reason, where = "duplicate_record_id", "record_id"
        else:
            seen.add(record_id)
            keep.append(n)
            continue
        values = [column[n] for column in cells]
        quarantined.append(Quarantined(file, chunk.rows[n], reason, where, mapped[where][n], _raw(header, values)))
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


def _raw(header: list[str], values: list[str | None]) -> str:
    """The row as read, for the quarantine table (undecodable bytes shown as U+FFFD)."""
    named = {header[i] if i < len(header) else f"_extra_{i}": v for i, v in enumerate(values)}
    text = json.dumps(named, ensure_ascii=False)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# --- readers -------------------------------------------------------------------------------------


def _open(path: Path, report: FileReport, size: int) -> tuple[list[str], Iterator[_Chunk]]:
    """The header and the chunks of one file (always at least one chunk, perhaps empty)."""
    if report.format == "csv":
        return _open_csv(path, report, size)
    if report.format == "parquet":
        return _open_parquet(path, size)
    return _open_xlsx(path, size)


def _detect_encoding(path: Path, report: FileReport) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or latin-1 when nothing in the file is UTF-8."""
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        invalid = multibyte = False
        while block := fh.read(_SCAN_BYTES):
            if block.isascii():
                continue  # the usual case, checked at memory speed
            if not invalid:
                try:
                    decoder.decode(block)
                    multibyte = True  # valid UTF-8 with a non-ASCII byte is a multi-byte sequence
                except UnicodeDecodeError:
                    invalid = True
            if invalid and not multibyte:
                multibyte = bool(_UTF8_MULTIBYTE.search(block))
            if invalid and multibyte:
                break
    if invalid and not multibyte:
        report.notes.append("not valid UTF-8 and no UTF-8 sequence in it: decoded as latin-1")
        return "latin-1"
    if invalid:
        report.notes.append("UTF-8 with undecodable bytes: those rows are quarantined")
    return "utf-8-sig"


def _open_csv(path: Path, report: FileReport, size: int) -> tuple[list[str], Iterator[_Chunk]]:
    encoding = _detect_encoding(path, report)
    report.encoding = encoding
    check_bytes = any("undecodable" in note for note in report.notes)
    fh = path.open(encoding=encoding, errors="surrogateescape", newline="")
    sample = fh.read(1 << 16)
    fh.seek(0)
    delimiter = _sniff(sample)
    report.delimiter = delimiter
    reader = csv.reader(fh, delimiter=delimiter, strict=False)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        fh.close()
        raise InputError(f"{path}: empty file, no header row") from None
    _check_header(header, path)
    width = len(header)

    def chunks() -> Iterator[_Chunk]:
        rows: list[int] = []
        good: list[list[str | None]] = []
        rejected: list[tuple[int, str, int | None, str | None, list[str | None]]] = []
        with fh:
            start = reader.line_num + 1
            for values in reader:
                if len(values) != width:
                    if not any(v.strip() for v in values):
                        report.blank_lines += 1
                    else:
                        detail = f"{len(values)} fields, header has {width}"
                        rejected.append((start, "ragged_row", None, detail, list(values)))
                elif check_bytes and (bad := _undecodable(values)) is not None:
                    shown = values[bad].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    rejected.append((start, "undecodable_bytes", bad, shown, list(values)))
                else:
                    rows.append(start)
                    good.append(values)  # type: ignore[arg-type]
                start = reader.line_num + 1
                if len(rows) + len(rejected) >= size:
                    yield _Chunk(rows, _by_column(good, width), [], rejected)
                    rows, good, rejected = [], [], []
        yield _Chunk(rows, _by_column(good, width), [], rejected)

    return header, chunks()


def _undecodable(values: list[str]) -> int | None:
    return next((i for i, v in enumerate(values) if v and _SURROGATE.search(v)), None)


def _sniff(sample: str) -> str:
    first = sample.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
        if first.count(delimiter) > 0:
            return delimiter
    except csv.Error:
        pass
    return max(_DELIMITERS, key=first.count)


def _check_header(header: list[str], path: Path) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{path}: the header repeats column(s) {', '.join(map(repr, dupes))}")
    if any(not h for h in header):
        raise InputError(f"{path}: the header has an empty column name at position {header.index('') + 1}")


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _strings(column: Any) -> list[str | None]:
    """An Arrow column as strings: text as is, dates and integers cast by Arrow, the rest cell by cell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date(kind) or pa.types.is_integer(kind):
        column = column.cast(pa.string())
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return [_cell(v) for v in column.to_pylist()]
    # Trim and blank-to-null in Arrow: the same as _role_column does for CSV cells, at C speed.
    trimmed = pc.utf8_trim_whitespace(column)
    return list(pc.if_else(pc.equal(trimmed, ""), None, trimmed).to_pylist())


def _open_parquet(path: Path, size: int) -> tuple[list[str], Iterator[_Chunk]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
    header = list(parquet.schema_arrow.names)
    _check_header(header, path)

    def chunks() -> Iterator[_Chunk]:
        number = 1  # row 1 of a data file is its first record (it has no header line)
        empty = True
        for batch in parquet.iter_batches(batch_size=size):
            empty = False
            cells = [_strings(col) for col in batch.columns]
            yield _Chunk(list(range(number, number + batch.num_rows)), cells, trimmed=True)
            number += batch.num_rows
        if empty:
            yield _Chunk([], [[] for _ in header])

    return header, chunks()


def _open_xlsx(path: Path, size: int) -> tuple[list[str], Iterator[_Chunk]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and others for a bad file
        raise InputError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    sheet = book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    try:
        header = [str(h).strip() if h is not None else "" for h in next(it)]
    except StopIteration:
        book.close()
        raise InputError(f"{path}: empty sheet, no header row") from None
    while header and not header[-1]:
        header.pop()
    _check_header(header, path)
    width = len(header)

    def chunks() -> Iterator[_Chunk]:
        chunk = _Chunk([], [])
        good: list[list[str | None]] = []
        for number, values in enumerate(it, start=2):
            cells = list(values)
            while len(cells) > width and cells[-1] is None:
                cells.pop()  # openpyxl pads rows to the sheet's widest row
            if all(c is None for c in cells):
                continue
            text = [_cell(c) for c in cells]
            if len(cells) != width:
                chunk.rejected.append((number, "ragged_row", None, f"{len(cells)} cells, header has {width}", text))
            else:
                # Excel keeps 15 significant digits: a NIK typed as a number has lost its last digit.
                position = len(good)
                chunk.notes += [(position, i, "excel_number_rounded") for i, c in enumerate(cells) if _excel_rounded(c)]
                chunk.rows.append(number)
                good.append(text)
            if len(chunk) >= size:
                chunk.cells = _by_column(good, width)
                yield chunk
                chunk, good = _Chunk([], []), []
        book.close()
        chunk.cells = _by_column(good, width)
        yield chunk

    return header, chunks()


def _excel_rounded(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= _EXCEL_DIGITS
