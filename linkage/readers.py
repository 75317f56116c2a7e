"""The ``read`` stage's readers: CSV, Parquet and Excel files, streamed in chunks of rows as text.

Each reader yields :class:`Chunk` s: the good rows column by column, and the rows that cannot be read as
rows (ragged, undecodable) apart with their reason; :mod:`linkage.ingest` maps the columns onto roles and
quarantines what it must. Memory stays bounded whatever a file's size.

CSV: the delimiter is sniffed among ``, ; tab |``; UTF-8 with or without BOM, UTF-16 with BOM or
without (told by the NUL bytes of mostly-ASCII text, reported), UTF-32 with BOM, and latin-1 when the
file has no valid UTF-8 multi-byte sequence at all (reported). In a UTF-8 file a line with
undecodable bytes is quarantined, the rest of the file is read. A file whose first bytes are not
text (a binary or zip file renamed ``.csv``) or whose header holds none of the delimiters is an
:class:`~linkage.errors.InputError` saying so.

Excel: every sheet of a workbook is read when all sheets that hold anything share one header (rows
numbered per sheet, and a row's source named ``file#sheet`` when the workbook has several sheets);
sheets with different headers are refused unless ``ingest.sheet`` picks one.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from linkage.errors import InputError, Problem, did_you_mean

__all__ = ["FORMATS", "Chunk", "FileReport", "open_file"]


FORMATS: Final = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}

_DELIMITERS: Final = ",;\t|"
_SCAN_BYTES: Final = 1 << 24
_UTF8_MULTIBYTE: Final = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_SURROGATE: Final = re.compile("[\udc80-\udcff]")
_EXCEL_DIGITS: Final = 10**15
_HEAD_BYTES: Final = 4096
_SHOWN_CHARS: Final = 200
"""characters of an over-long value kept in the quarantine table"""
# Bytes that never occur in CSV text (tab, LF and CR do): deleted with bytes.translate to count them.
_CONTROL_BYTES: Final = bytes([*range(9), 11, 12, *range(14, 32), 127])
_MAGIC: Final = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls file",
    b"\x1f\x8b": "a gzip archive",
}

@dataclass
class Chunk:
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
    source: str | None = None
    """where the rows come from when that is more than the file (``file#sheet``)"""

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejected)


def by_column(rows: list[list[str | None]], width: int) -> list[list[str | None]]:
    # a comprehension per column: zip(*rows) allocates an iterator per row and wakes the GC
    return [[r[i] for r in rows] for i in range(width)]



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



def open_file(path: Path, report: FileReport, size: int, sheet: str | None) -> tuple[list[str], Iterator[Chunk]]:
    """The header and the chunks of one file (always at least one chunk, perhaps empty)."""
    if report.format == "xlsx":
        return _open_xlsx(path, report, size, sheet)
    if sheet is not None:
        report.notes.append("ingest.sheet ignored: not a workbook")
    if report.format == "csv":
        return _open_csv(path, report, size)
    return _open_parquet(path, size)


def _detect_encoding(path: Path, report: FileReport) -> str:
    """UTF-8 (with or without BOM), UTF-16 (with BOM or without), UTF-32 with BOM, or latin-1 when nothing is UTF-8.

    Raises:
        InputError: the first bytes are not text (a binary file, or text in an encoding that cannot be told).
    """
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
        # UTF-32's BOM begins with UTF-16's: test it first.
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return "utf-32"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        if (utf16 := _utf16_without_bom(head)) is not None:
            report.notes.append(f"UTF-16 {utf16[-2:].upper()} without a byte-order mark: decoded as {utf16}")
            return utf16
        if (why := _not_text(head)) is not None:
            raise InputError(f"{path}: not a text CSV file: {why}")
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


def _utf16_without_bom(head: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when the file starts like UTF-16 text without a byte-order mark.

    Text that is mostly ASCII, as CSV headers and Indonesian data are, has a NUL as the high byte of
    nearly every character in UTF-16 (Excel's "Unicode text" and SQL Server exports write it so): NULs
    in every other position, the odd ones (little-endian) or the even ones (big-endian).

    >>> _utf16_without_bom("record_id,full_name".encode("utf-16-le")), _utf16_without_bom(b"record_id")
    ('utf-16-le', None)
    """
    sample = head[: len(head) // 2 * 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    for high, low, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if high.count(0) >= 0.75 * len(high) and low.count(0) <= 0.05 * len(low):
            # Binary data (16-bit numbers) can have that pattern too, but not a header line free of
            # control characters. A bad pair further on costs its row, not the file: "replace" here.
            first = sample.decode(encoding, "replace").split("\n", 1)[0]
            return encoding if first.rstrip("\r").replace("\t", " ").isprintable() else None
    return None


def _not_text(head: bytes) -> str | None:
    """Why the first bytes of a file are not CSV text, or ``None`` when they may be.

    A header line never holds control characters, and CSV text has next to none: a renamed binary
    file has them everywhere.

    >>> _not_text(b"record_id,full_name\\nA1,Budi\\n") is None
    True
    >>> _not_text(b"PK\\x03\\x04\\x14\\x00")
    'it looks like a ZIP archive (an .xlsx workbook?); give it its own extension'
    """
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {what}; give it its own extension"
    first = head.split(b"\n", 1)[0]
    if b"\x00" in first:
        return (
            "its first line holds NUL bytes: binary data, or text in UTF-16 or UTF-32 without a byte-order mark "
            "that could not be told apart; save it as UTF-8 CSV"
        )
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if len(first) != len(first.translate(None, _CONTROL_BYTES)) or control > len(head) / 20:
        return f"it looks binary ({control} control bytes in its first {len(head):,}); save it as UTF-8 CSV"
    return None


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Decode each undecodable byte as a lone surrogate in U+DC80..U+DCFF, as ``surrogateescape`` does.

    ``surrogateescape`` refuses bytes under 0x80, which UTF-16 and UTF-32 give (a character cut at the
    end of the file, a lone surrogate), and would abort the whole file; this marks them so that
    :func:`_undecodable` quarantines their row instead.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC80 | b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("linkage-undecodable", _escape_undecodable)


def _lift_csv_field_limit() -> None:
    """Let the csv module read a field of any length: it raises mid-file past its limit (131,072 by
    default), which would abort the whole file; :func:`_too_long` checks lengths row by row instead."""
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:  # the limit is a C long, 32 bits on Windows
        csv.field_size_limit(2**31 - 1)


def _open_csv(path: Path, report: FileReport, size: int) -> tuple[list[str], Iterator[Chunk]]:
    encoding = _detect_encoding(path, report)
    report.encoding = encoding
    # A UTF-16 or UTF-32 file is not scanned ahead: any of its rows may hold undecodable bytes.
    check_bytes = encoding.startswith("utf-16") or encoding.startswith("utf-32")
    check_bytes = check_bytes or any("undecodable" in note for note in report.notes)
    _lift_csv_field_limit()
    fh = path.open(encoding=encoding, errors="linkage-undecodable", newline="")
    sample = fh.read(1 << 16)
    fh.seek(0)
    try:
        delimiter = _sniff(sample, path)
    except InputError:
        fh.close()
        raise
    report.delimiter = delimiter
    reader = csv.reader(fh, delimiter=delimiter, strict=False)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        fh.close()
        raise InputError(f"{path}: empty file, no header row") from None
    _check_header(header, path)
    width = len(header)

    def chunks() -> Iterator[Chunk]:
        rows: list[int] = []
        good: list[list[str | None]] = []
        rejected: list[tuple[int, str, int | None, str | None, list[str | None]]] = []
        with fh:
            start = reader.line_num + 1
            try:
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
                        yield Chunk(rows, by_column(good, width), [], rejected)
                        rows, good, rejected = [], [], []
            except csv.Error as exc:  # not expected with strict=False and no field limit: still a message
                raise InputError(f"{path}: line {reader.line_num}: not readable as CSV: {exc}") from None
        yield Chunk(rows, by_column(good, width), [], rejected)

    return header, chunks()


def _undecodable(values: list[str]) -> int | None:
    return next((i for i, v in enumerate(values) if v and _SURROGATE.search(v)), None)


def _sniff(sample: str, path: Path) -> str:
    """The delimiter of a CSV sample: one of ``, ; tab |``, the one its header line holds.

    Raises:
        InputError: the header line holds none of them (one column name would be the whole line).
    """
    first = sample.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
        if first.count(delimiter) > 0:
            return delimiter
    except csv.Error:
        pass
    best = max(_DELIMITERS, key=first.count)
    if first.count(best):
        return best
    tried = " ".join(repr(d) for d in _DELIMITERS)
    shown = first.rstrip("\r")[:80]
    raise InputError(
        f"{path}: could not detect the delimiter: the header line {shown!r} holds none of {tried}; "
        "save the file with one of them"
    )


def _check_header(header: list[str], where: object) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{where}: the header repeats column(s) {', '.join(map(repr, dupes))}")
    if any(not h for h in header):
        raise InputError(f"{where}: the header has an empty column name at position {header.index('') + 1}")


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


def _open_parquet(path: Path, size: int) -> tuple[list[str], Iterator[Chunk]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
    header = list(parquet.schema_arrow.names)
    _check_header(header, path)

    def chunks() -> Iterator[Chunk]:
        number = 1  # row 1 of a data file is its first record (it has no header line)
        empty = True
        for batch in parquet.iter_batches(batch_size=size):
            empty = False
            cells = [_strings(col) for col in batch.columns]
            yield Chunk(list(range(number, number + batch.num_rows)), cells, trimmed=True)
            number += batch.num_rows
        if empty:
            yield Chunk([], [[] for _ in header])

    return header, chunks()


def _open_xlsx(path: Path, report: FileReport, size: int, wanted: str | None) -> tuple[list[str], Iterator[Chunk]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and others for a bad file
        raise InputError(f"{path}: not a readable .xlsx workbook: {exc}") from None
    try:
        sheets = _sheets(book, path, wanted, report)
    except BaseException:
        book.close()
        raise
    header = sheets[0].header
    # With several sheets a row number alone is ambiguous: name the sheet in each row's source.
    several = len(book.worksheets) > 1

    def chunks() -> Iterator[Chunk]:
        try:
            for sheet in sheets:
                source = f"{path}#{sheet.title}" if several else None
                yield from _sheet_chunks(sheet.rows, len(header), size, source)
        finally:
            book.close()

    return header, chunks()


@dataclass
class _Sheet:
    title: str
    header: list[str]
    rows: Iterator[tuple[Any, ...]]
    """the rows after the header"""


def _sheets(book: Any, path: Path, wanted: str | None, report: FileReport) -> list[_Sheet]:
    """The sheets to read: ``wanted``, or every sheet that holds anything, all with the same header.

    Raises:
        InputError: no sheet ``wanted`` (with "did you mean"), no header row, or sheets whose headers differ.
    """
    titles = [ws.title for ws in book.worksheets]
    if wanted is not None and wanted not in titles:
        raise InputError(
            f"{path}: no sheet {wanted!r}{did_you_mean(wanted, titles)}; its sheets are {', '.join(map(repr, titles))}"
        )
    found: list[_Sheet] = []
    for ws in book.worksheets:
        if wanted is not None and ws.title != wanted:
            continue
        rows = ws.iter_rows(values_only=True)
        first = next(rows, None)
        header = [str(h).strip() if h is not None else "" for h in first or ()]
        while header and not header[-1]:
            header.pop()
        where = f"{path}#{ws.title}" if len(titles) > 1 else str(path)
        if not header:
            if wanted is None and len(titles) > 1:
                report.notes.append(f"sheet {ws.title!r} is empty: skipped")
                continue
            raise InputError(f"{where}: empty sheet, no header row")
        _check_header(header, where)
        found.append(_Sheet(ws.title, header, rows))
    if not found:
        raise InputError(f"{path}: every sheet is empty, no header row")
    if any(sheet.header != found[0].header for sheet in found):
        raise InputError(
            f"{path}: its sheets have different headers; read one with `linkage ingest --sheet NAME` "
            "(setting ingest.sheet), or give them the same header",
            [Problem(f"sheet {s.title!r}: {', '.join(s.header)}", file=str(path)) for s in found],
        )
    if len(found) > 1:
        report.notes.append(f"{len(found)} sheets read: {', '.join(repr(s.title) for s in found)}")
    return found


def _sheet_chunks(rows: Iterator[tuple[Any, ...]], width: int, size: int, source: str | None) -> Iterator[Chunk]:
    """One sheet's rows after its header, numbered as Excel shows them, in chunks of ``size``."""
    chunk = Chunk([], [], source=source)
    good: list[list[str | None]] = []
    for number, values in enumerate(rows, start=2):
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
            chunk.cells = by_column(good, width)
            yield chunk
            chunk, good = Chunk([], [], source=source), []
    chunk.cells = by_column(good, width)
    yield chunk


def _excel_rounded(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= _EXCEL_DIGITS
