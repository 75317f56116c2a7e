"""Ingest: every row accepted or quarantined with its reason, bad fields kept as issues, counts reconcile."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import parse_config
from linkage.errors import ConfigError, InputError
from linkage.pipeline import ingest
from linkage.store import Store

TODAY = dt.date(2026, 11, 28)

HEADER = b"record_id,full_name,birth_date,nik,phone,sex,office\n"
GOOD = b"A1,Siti Aminah,05-08-1990,1871014508900001,0812-3456-7890,P,Kalianda\n"


def messy_csv() -> bytes:
    """A UTF-8 file (with a real multi-byte character) holding every kind of unusable row."""
    return b"".join(
        [
            HEADER,
            GOOD,  # line 2: fine
            "A2,Ma\u2019ruf Amin,1990-01-02,,,L,Kotabumi\n".encode(),  # 3: fine, UTF-8 apostrophe
            b"A3,,1990-01-02,,,L,Kotabumi\n",  # 4: empty name
            b",Budi Santoso,1990-01-02,,,L,Kotabumi\n",  # 5: empty id
            b"A4,Joko,1990-01-02,,,L,Kotabumi,extra\n",  # 6: ragged, too many fields
            b"A5,Joko\n",  # 7: ragged, too few fields
            b"A6,Dew\xff\xfei,1990-01-02,,,P,Kotabumi\n",  # 8: undecodable bytes in full_name
            b"A1,Siti Aminah,05-08-1990,,,P,Kalianda\n",  # 9: duplicate of A1
            b"A7,Agus Setiawan,31-02-1990,187101450890001,abc,L,Kalianda\n",  # 10: bad fields only
            b"   \n",  # 11: blank line, not a row
            b'A8,"Nur, Hayati",5 Agustus 1990,,,P,Kalianda\n',  # 12: quoted comma, fine
        ]
    )


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    path = tmp_path / "messy.csv"
    path.write_bytes(messy_csv())
    return path


def run(tmp_path: Path, *files: Path, config: dict | None = None, db: str = "s.duckdb"):
    return ingest(list(files), parse_config(config or {}), db=tmp_path / db, today=TODAY)


def test_unusable_rows_are_quarantined_with_their_reasons(tmp_path: Path, messy: Path) -> None:
    report = run(tmp_path, messy)
    assert report.reconciles
    assert (report.rows_read, report.accepted, report.quarantined) == (10, 4, 6)
    with Store(tmp_path / "s.duckdb") as store:
        quarantined = store.rows("SELECT source_row, reason, field FROM quarantine ORDER BY source_row")
        accepted = [r[0] for r in store.rows("SELECT record_id FROM applications ORDER BY record_id")]
    assert quarantined == [
        (4, "missing_full_name", "full_name"),
        (5, "missing_record_id", "record_id"),
        (6, "ragged_row", None),
        (7, "ragged_row", None),
        (8, "undecodable_bytes", "full_name"),
        (9, "duplicate_record_id", "record_id"),
    ]
    assert accepted == ["A1", "A2", "A7", "A8"]
    assert report.quarantined_by_reason == {
        "duplicate_record_id": 1,
        "missing_full_name": 1,
        "missing_record_id": 1,
        "ragged_row": 2,
        "undecodable_bytes": 1,
    }


def test_bad_fields_keep_the_row_with_issues_and_raw_values(tmp_path: Path, messy: Path) -> None:
    run(tmp_path, messy)
    with Store(tmp_path / "s.duckdb") as store:
        issues = store.rows("SELECT field, reason, value FROM field_issues WHERE record_id = 'A7' ORDER BY field")
        raw = store.rows("SELECT birth_date, nik, phone FROM applications WHERE record_id = 'A7'")[0]
        norm = store.rows("SELECT birth_date, nik, nik_digits, phone FROM applications_normalised WHERE record_id='A7'")
    assert issues == [
        ("birth_date", "date_impossible", "31-02-1990"),
        ("nik", "nik_length", "187101450890001"),
        ("phone", "phone_unparseable", "abc"),
    ]
    assert raw == ("31-02-1990", "187101450890001", "abc")
    # normalised values left empty, but the NIK's digits are kept so a malformed NIK can still be compared
    assert norm == [(None, None, "187101450890001", None)]


def test_good_rows_are_normalised(tmp_path: Path, messy: Path) -> None:
    run(tmp_path, messy)
    with Store(tmp_path / "s.duckdb") as store:
        row = store.rows(
            """SELECT full_name_canonical, birth_date, nik, nik_sex, nik_dob_agrees, phone, sex
               FROM applications_normalised WHERE record_id = 'A1'"""
        )[0]
        a8 = store.rows("SELECT full_name_canonical, birth_date FROM applications_normalised WHERE record_id='A8'")
    assert row == ("SITI AMINAH", dt.date(1990, 8, 5), "1871014508900001", "F", True, "+6281234567890", "F")
    assert a8 == [("NUR HAYATI", dt.date(1990, 8, 5))]


def test_latin1_file_is_decoded_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER + "B1,Andr\u00e9 Sinaga,1990-01-02,,,L,Kotabumi\n".encode("latin-1"))
    report = run(tmp_path, path)
    assert (report.accepted, report.quarantined) == (1, 0)
    assert report.files[0].encoding == "latin-1"
    assert any("latin-1" in note for note in report.files[0].notes)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT full_name FROM applications")[0][0] == "Andr\u00e9 Sinaga"


def test_bom_and_semicolons_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.replace(b",", b";") + GOOD.replace(b",", b";"))
    report = run(tmp_path, path)
    assert report.accepted == 1 and report.files[0].delimiter == ";"


def test_duplicates_across_files_and_runs(tmp_path: Path, messy: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_bytes(HEADER + GOOD + b"C1,Budi,1990-01-02,,,L,Kotabumi\n")
    report = run(tmp_path, messy, other)
    assert report.quarantined_by_reason["duplicate_record_id"] == 2  # A1 again, in the second file
    again = tmp_path / "again.csv"
    again.write_bytes(HEADER + b"C1,Budi,1990-01-02,,,L,Kotabumi\n")
    second = run(tmp_path, again)
    # stored in an earlier run with the same values: not a problem with the row, just nothing to do
    assert second.quarantined == 0
    assert (second.accepted, second.new, second.updated, second.unchanged) == (1, 0, 0, 1)
    assert second.reconciles


def test_parquet_and_xlsx_inputs(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"record_id": ["P1"], "full_name": ["Djoko Susilo"], "birth_date": [dt.date(1980, 1, 2)]}),
        tmp_path / "a.parquet",
    )
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["record_id", "full_name", "birth_date", "nik"])
    sheet.append(["X1", "Tjahjo Kumolo", dt.datetime(1957, 12, 1), 1871010112570001])
    book.save(tmp_path / "b.xlsx")
    report = run(tmp_path, tmp_path / "a.parquet", tmp_path / "b.xlsx")
    assert (report.accepted, report.quarantined) == (2, 0)
    # Excel holds 15 significant digits: a NIK typed as a number is flagged
    assert report.field_issues_by_reason.get("excel_number_rounded") == 1
    with Store(tmp_path / "s.duckdb") as store:
        rows = store.rows("SELECT record_id, full_name_canonical, birth_date FROM applications_normalised ORDER BY 1")
    assert rows == [("P1", "JOKO SUSILO", dt.date(1980, 1, 2)), ("X1", "CAHYO KUMOLO", dt.date(1957, 12, 1))]


def test_column_mapping_joins_given_name_and_surname_and_keeps_extras(tmp_path: Path) -> None:
    path = tmp_path / "febrl.csv"
    path.write_text("rec_id,given_name,surname,dob,hobby\nr1,james,smith,19560909,chess\n")
    cfg = {
        "dataset": {"id_scheme": "generic"},
        "columns": {"record_id": "rec_id", "birth_date": "dob", "full_name": ["given_name", "surname"]},
    }
    report = run(tmp_path, path, config=cfg)
    assert report.accepted == 1
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT full_name, extras FROM applications") == [("james smith", '{"hobby": "chess"}')]
        assert store.rows("SELECT birth_date FROM applications_normalised") == [(dt.date(1956, 9, 9),)]


def test_missing_mapped_column_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,fullname\n1,Budi\n")
    with pytest.raises(InputError) as info:
        run(tmp_path, path)
    text = str(info.value)
    assert "x.csv" in text and "'record_id'" in text and "did you mean 'fullname'" in text


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(InputError, match="unknown format"):
        run(tmp_path, tmp_path / "a.json")
    with pytest.raises(InputError, match="not found"):
        run(tmp_path, tmp_path / "nope.csv")


def test_a_failed_run_stores_nothing(tmp_path: Path, messy: Path) -> None:
    with pytest.raises(InputError, match="max_quarantine_share"):
        run(tmp_path, messy, config={"ingest": {"max_quarantine_share": 0.1}})
    with Store(tmp_path / "s.duckdb") as store:
        assert store.count("applications") == 0 and store.count("quarantine") == 0
        assert store.rows("SELECT status FROM runs") == [("failed",)]


def test_parallel_and_serial_normalisation_store_the_same(tmp_path: Path, messy: Path) -> None:
    big = tmp_path / "big.csv"
    body = messy_csv().split(b"\n", 1)[1]
    # 2,500 copies of the messy rows with fresh ids: three 1,000-row batches over two workers
    lines = [HEADER] + [
        line.replace(b"A", b"R%d-" % i, 1) + b"\n" for i in range(250) for line in body.splitlines() if line.strip()
    ]
    big.write_bytes(b"".join(lines))
    out = {}
    for workers in (1, 2):
        cfg = {"ingest": {"workers": workers, "chunk_rows": 1000}}
        report = run(tmp_path, big, config=cfg, db=f"w{workers}.duckdb")
        assert report.reconciles and report.rows_read == 2500
        with Store(tmp_path / f"w{workers}.duckdb") as store:
            out[workers] = (
                store.rows("SELECT * FROM applications_normalised ORDER BY record_id"),
                store.rows("SELECT * EXCLUDE (run_id) FROM field_issues ORDER BY ALL"),
                store.rows("SELECT * EXCLUDE (run_id) FROM quarantine ORDER BY ALL"),
            )
    assert out[1] == out[2]
    assert len(out[2][0]) == 1000


def test_cli_json_output(tmp_path: Path, messy: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(messy), "--db", str(tmp_path / "c.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows_read"] == data["accepted"] + data["quarantined"] == 10
    assert (data["new"], data["updated"], data["unchanged"]) == (4, 0, 0)
    assert data["quarantined_by_reason"]["ragged_row"] == 2
    assert "nik_length" in data["field_issues_by_reason"]


# --- ingesting again: new, updated, unchanged --------------------------------------------------------

STORED = (
    ("applications", "SELECT * FROM applications ORDER BY record_id"),
    ("applications_normalised", "SELECT * FROM applications_normalised ORDER BY record_id"),
    ("field_issues", "SELECT * FROM field_issues ORDER BY ALL"),
    ("record_updates", "SELECT * FROM record_updates ORDER BY ALL"),
    ("events", "SELECT * FROM events ORDER BY ALL"),
    ("relink", "SELECT * FROM relink ORDER BY ALL"),
)


def snapshot(db: Path) -> dict[str, list[tuple]]:
    with Store(db) as store:
        return {table: store.rows(sql) for table, sql in STORED}


def test_the_same_file_twice_adds_nothing(tmp_path: Path, messy: Path) -> None:
    first = run(tmp_path, messy)
    before = snapshot(tmp_path / "s.duckdb")
    second = run(tmp_path, messy)
    assert snapshot(tmp_path / "s.duckdb") == before
    assert (second.rows_read, second.accepted, second.quarantined) == (first.rows_read, 4, 6)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 4)
    assert second.reconciles
    with Store(tmp_path / "s.duckdb") as store:
        runs = store.rows("SELECT run_id, status, counts FROM runs ORDER BY started_at")
        # the quarantine is per run: the second run's unusable rows are its own, under its id
        quarantined = store.rows("SELECT run_id, count(*) FROM quarantine GROUP BY ALL ORDER BY ALL")
    assert [(r[0], r[1]) for r in runs] == [(first.run_id, "succeeded"), (second.run_id, "succeeded")]
    manifest = json.loads(runs[1][2])
    assert (manifest["new"], manifest["updated"], manifest["unchanged"]) == (0, 0, 4)
    assert sorted(quarantined) == sorted([(first.run_id, 6), (second.run_id, 6)])


A7_BAD = b"A7,Agus Setiawan,31-02-1990,187101450890001,abc,L,Kalianda\n"
B1 = b"B1,Budi Santoso,1990-01-02,,,L,Kotabumi\n"


@pytest.fixture
def updated(tmp_path: Path):
    """A store holding A1, A7 (bad date, NIK and phone; linked into identity I-1) and B1, then a second
    file changing A1's office and phone, fixing A7's date and NIK, repeating B1 and adding C1."""
    old = tmp_path / "old.csv"
    old.write_bytes(HEADER + GOOD + A7_BAD + B1)
    first = run(tmp_path, old)
    with Store(tmp_path / "s.duckdb") as store:
        store.sql("INSERT INTO membership VALUES ('A7', 1, 'I-1', ?)", [first.run_id])
    new = tmp_path / "new.csv"
    new.write_bytes(
        HEADER
        + b"A1,Siti Aminah,05-08-1990,1871014508900001,0813-1111-2222,P,Kotabumi\n"  # office and phone
        + b"A7,Agus Setiawan,01-02-1990,1871010102900001,abc,L,Kalianda\n"  # date and NIK fixed
        + B1  # as stored
        + b"C1,Cahya Lestari,1991-03-04,,,P,Kotabumi\n"  # new
        + GOOD  # A1 again in the same run: quarantined, the first A1 of the run is the one kept
    )
    second = run(tmp_path, new)
    return tmp_path / "s.duckdb", first, second


def test_an_update_is_counted_and_reconciles(updated) -> None:
    _, _, second = updated
    assert (second.rows_read, second.accepted, second.quarantined) == (5, 4, 1)
    assert (second.new, second.updated, second.unchanged) == (1, 2, 1)
    assert second.quarantined_by_reason == {"duplicate_record_id": 1}
    assert second.reconciles


def test_an_update_replaces_the_stored_record(updated) -> None:
    db, first, second = updated
    with Store(db) as store:
        raw = store.rows("SELECT record_id, run_id, source_file, office, phone FROM applications ORDER BY 1")
        norm = store.rows("SELECT record_id, birth_date, nik, phone FROM applications_normalised ORDER BY 1")
    new, old = str(db.parent / "new.csv"), str(db.parent / "old.csv")
    assert raw == [
        ("A1", second.run_id, new, "Kotabumi", "0813-1111-2222"),
        ("A7", second.run_id, new, "Kalianda", "abc"),
        ("B1", first.run_id, old, "Kotabumi", None),  # unchanged: the stored row, untouched
        ("C1", second.run_id, new, "Kotabumi", None),
    ]
    assert norm == [
        ("A1", dt.date(1990, 8, 5), "1871014508900001", "+6281311112222"),
        ("A7", dt.date(1990, 2, 1), "1871010102900001", None),
        ("B1", dt.date(1990, 1, 2), None, None),
        ("C1", dt.date(1991, 3, 4), None, None),
    ]


def test_an_update_fixing_a_field_removes_its_issue(updated) -> None:
    db, _, second = updated
    with Store(db) as store:
        issues = store.rows("SELECT record_id, run_id, field, reason FROM field_issues ORDER BY ALL")
    # A7's date and NIK are fixed; its phone is still junk, now reported by the run that stored it
    assert issues == [("A7", second.run_id, "phone", "phone_unparseable")]


def test_an_update_keeps_the_previous_row_and_names_the_changed_roles(updated) -> None:
    db, first, second = updated
    with Store(db) as store:
        updates = store.rows("SELECT run_id, record_id, previous, changed FROM record_updates ORDER BY record_id")
        events = store.rows(
            """SELECT event_no IS NOT NULL, run_id, kind, identity_id, record_id, reason, happened_at IS NOT NULL,
                      other_identity_id, other_record_id, probability
               FROM events ORDER BY record_id"""
        )
    assert [(u[0], u[1], u[3]) for u in updates] == [
        (second.run_id, "A1", ["office", "phone"]),
        (second.run_id, "A7", ["birth_date", "nik"]),
    ]
    previous = json.loads(updates[0][2])
    assert previous["phone"] == "0812-3456-7890" and previous["office"] == "Kalianda"
    assert (previous["run_id"], previous["source_file"], previous["source_row"]) == (
        first.run_id,
        str(db.parent / "old.csv"),
        2,
    )
    assert events == [
        (True, second.run_id, "record_updated", None, "A1", "changed: office, phone", True, None, None, None),
        (True, second.run_id, "record_updated", "I-1", "A7", "changed: birth_date, nik", True, None, None, None),
    ]


def test_only_a_linked_record_is_queued_for_relinking(updated) -> None:
    db, _, second = updated
    with Store(db) as store:
        assert store.rows("SELECT record_id, run_id FROM relink") == [("A7", second.run_id)]


def test_a_change_of_extra_columns_is_an_update(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("record_id,full_name,hobby\nr1,Budi,catur\n")
    run(tmp_path, path)
    path.write_text("record_id,full_name,hobby\nr1,Budi,bulu tangkis\n")
    report = run(tmp_path, path)
    assert (report.new, report.updated, report.unchanged) == (0, 1, 0)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT changed FROM record_updates") == [(["extras"],)]
        assert store.rows("SELECT reason FROM events") == [("changed: extras",)]
        assert store.rows("SELECT extras FROM applications") == [('{"hobby": "bulu tangkis"}',)]


def test_ingesting_into_a_store_with_records_stores_what_an_empty_store_would(tmp_path: Path, messy: Path) -> None:
    """An empty store is written directly, one with records through staging: the same rows either way."""
    other = tmp_path / "other.csv"
    other.write_bytes(HEADER + b"Z1,Zainal Arifin,1970-07-07,,,L,Metro\n")
    run(tmp_path, messy, db="direct.duckdb")
    run(tmp_path, other, db="staged.duckdb")
    run(tmp_path, messy, db="staged.duckdb")
    out = {}
    for db in ("direct", "staged"):
        with Store(tmp_path / f"{db}.duckdb") as store:
            out[db] = (
                store.rows("SELECT * EXCLUDE (run_id) FROM applications WHERE record_id <> 'Z1' ORDER BY ALL"),
                store.rows("SELECT * FROM applications_normalised WHERE record_id <> 'Z1' ORDER BY ALL"),
                store.rows("SELECT * EXCLUDE (run_id) FROM field_issues WHERE record_id <> 'Z1' ORDER BY ALL"),
            )
    assert out["direct"] == out["staged"]
    assert len(out["staged"][0]) == 4


def test_a_failed_update_changes_nothing(tmp_path: Path, messy: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_bytes(HEADER + GOOD)
    run(tmp_path, old)
    before = snapshot(tmp_path / "s.duckdb")
    changed = tmp_path / "changed.csv"
    changed.write_bytes(messy_csv().replace(b"Kalianda", b"Metro"))
    with pytest.raises(InputError, match="max_quarantine_share"):
        run(tmp_path, changed, config={"ingest": {"max_quarantine_share": 0.1}})
    assert snapshot(tmp_path / "s.duckdb") == before


# --- hostile and foreign files -------------------------------------------------------------------


def quarantine(db: Path) -> list[tuple]:
    with Store(db) as store:
        return store.rows("SELECT source_file, source_row, reason, field, value, raw FROM quarantine ORDER BY ALL")


def test_a_field_over_the_limit_quarantines_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    huge = "x" * 200_000  # over csv's own field_size_limit (131,072), which used to abort the whole file
    path.write_bytes(
        HEADER
        + GOOD
        + f"A2,Budi Santoso,1990-01-02,,,L,{huge}\n".encode()
        + f"A3,Dewi Lestari,1990-01-02,,,P,{'y' * 5_000}\n".encode()  # long, but under the limit
    )
    report = run(tmp_path, path)
    assert (report.rows_read, report.accepted, report.quarantined) == (3, 2, 1)
    assert report.quarantined_by_reason == {"field_too_long": 1}
    ((_, row, reason, column, value, raw),) = quarantine(tmp_path / "s.duckdb")
    assert (row, reason, column) == (3, "field_too_long", "office")
    assert value.startswith("xxx") and "200,000 characters" in value and len(value) < 1_000
    assert len(raw) < 2_000 and json.loads(raw)["record_id"] == "A2"  # the rest of the row, whole
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT record_id, length(office) FROM applications ORDER BY 1") == [
            ("A1", 8),
            ("A3", 5_000),
        ]


def test_the_field_limit_is_a_setting_for_parquet_and_xlsx_too(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"record_id": ["P1", "P2"], "full_name": ["Djoko Susilo", "Budi " + "b" * 150]}),
        tmp_path / "a.parquet",
    )
    book = openpyxl.Workbook()
    book.active.append(["record_id", "full_name", "address"])
    book.active.append(["X1", "Tjahjo Kumolo", "Jl. Merdeka " * 20])
    book.active.append(["X2", "Siti Aminah", "Jl. Merdeka"])
    book.save(tmp_path / "b.xlsx")
    path = tmp_path / "c.csv"
    path.write_bytes(HEADER + GOOD + b"C2,Budi,1990-01-02,,,L," + b"k" * 101 + b"\n")
    files = (tmp_path / "a.parquet", tmp_path / "b.xlsx", path)
    report = run(tmp_path, *files, config={"ingest": {"max_field_chars": 100}})
    assert (report.accepted, report.quarantined_by_reason) == (3, {"field_too_long": 3})
    got = {(Path(q[0]).name, q[1], q[3]) for q in quarantine(tmp_path / "s.duckdb") if q[2] == "field_too_long"}
    assert got == {("a.parquet", 2, "full_name"), ("b.xlsx", 2, "address"), ("c.csv", 3, "office")}
    with pytest.raises(ConfigError, match="max_field_chars"):
        parse_config({"ingest": {"max_field_chars": 0}})


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-16-le", ","), ("utf-16-be", "\t")])
def test_utf16_without_a_bom_is_detected_and_reported(tmp_path: Path, encoding: str, delimiter: str) -> None:
    path = tmp_path / "unicode.csv"
    text = (HEADER + GOOD).decode() + "A2,Andr\u00e9 Sinaga,1990-01-02,,,L,Kotabumi\r\n"
    path.write_bytes(text.replace(",", delimiter).encode(encoding))
    report = run(tmp_path, path)
    assert (report.accepted, report.quarantined) == (2, 0)
    assert report.files[0].encoding == encoding
    assert any("UTF-16" in note and "byte-order mark" in note for note in report.files[0].notes)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT full_name FROM applications ORDER BY 1") == [("Andr\u00e9 Sinaga",), ("Siti Aminah",)]


def test_undecodable_utf16_quarantines_its_row_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    lone_surrogate = b"\x00\xd8"  # half of a surrogate pair, in UTF-16 LE
    path.write_bytes(
        (HEADER + GOOD).decode().encode("utf-16-le")
        + "A2,Budi".encode("utf-16-le") + lone_surrogate + ",1990-01-02,,,L,Kotabumi\n".encode("utf-16-le")
        + "A3,Dewi,1990-01-02,,,P,Kotabumi\n".encode("utf-16-le")
        + b"x"  # a character cut off at the end of the file
    )  # fmt: skip
    report = run(tmp_path, path)
    assert (report.rows_read, report.accepted) == (4, 2)
    assert report.quarantined_by_reason == {"ragged_row": 1, "undecodable_bytes": 1}
    rows = [(q[1], q[2], q[3]) for q in quarantine(tmp_path / "s.duckdb")]
    assert rows == [(3, "undecodable_bytes", "full_name"), (5, "ragged_row", None)]


def test_text_in_an_encoding_that_cannot_be_told_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "u32.csv"
    path.write_bytes(HEADER.decode().encode("utf-32-le"))  # no BOM: NULs, but not every other byte
    with pytest.raises(InputError) as info:
        run(tmp_path, path)
    text = str(info.value)
    assert "u32.csv" in text and "UTF-16" in text and "UTF-8" in text and "did you mean" not in text


def test_an_unknown_delimiter_is_an_error_naming_the_ones_tried(tmp_path: Path) -> None:
    path = tmp_path / "colons.csv"
    path.write_bytes(HEADER.replace(b",", b":") + GOOD.replace(b",", b":"))
    with pytest.raises(InputError) as info:
        run(tmp_path, path)
    text = str(info.value)
    assert "colons.csv" in text and "could not detect the delimiter" in text
    assert all(repr(d) in text for d in (",", ";", "\t", "|")) and "did you mean" not in text


def test_random_bytes_are_not_a_text_csv_file(tmp_path: Path) -> None:
    import random

    path = tmp_path / "noise.csv"
    path.write_bytes(random.Random(7).randbytes(5_000))
    with pytest.raises(InputError) as info:
        run(tmp_path, path)
    text = str(info.value)
    assert "noise.csv" in text and "not a text CSV file" in text and "binary" in text
    assert "did you mean" not in text and "column" not in text
    zipped = tmp_path / "book.csv"  # a workbook saved under a .csv name
    openpyxl.Workbook().save(zipped)
    with pytest.raises(InputError, match=r"book\.csv: not a text CSV file: it looks like a ZIP archive"):
        run(tmp_path, zipped)


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


MONTHS = {
    "Jan": [["record_id", "full_name"], ["J1", "Siti Aminah"], ["J2", "Budi Santoso"]],
    "Feb": [["record_id", "full_name"], ["F1", "Dewi Lestari"], ["F2", None], ["F3", "Agus Salim"]],
    "Sheet3": [],  # Excel's empty default sheet
}


def test_every_sheet_with_the_same_header_is_read(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx", MONTHS)
    report = run(tmp_path, path)
    assert (report.rows_read, report.accepted, report.quarantined) == (5, 4, 1)
    assert any("2 sheets read" in note for note in report.files[0].notes)
    assert any("'Sheet3' is empty" in note for note in report.files[0].notes)
    with Store(tmp_path / "s.duckdb") as store:
        rows = store.rows("SELECT record_id, source_file, source_row FROM applications ORDER BY 1")
    assert rows == [  # numbered per sheet, as Excel shows them, each named by its sheet
        ("F1", f"{path}#Feb", 2),
        ("F3", f"{path}#Feb", 4),
        ("J1", f"{path}#Jan", 2),
        ("J2", f"{path}#Jan", 3),
    ]
    assert [q[:4] for q in quarantine(tmp_path / "s.duckdb")] == [(f"{path}#Feb", 3, "missing_full_name", "full_name")]


def test_sheets_with_different_headers_are_refused_unless_one_is_chosen(tmp_path: Path) -> None:
    sheets = {**MONTHS, "Notes": [["remark"], ["checked by Budi"]]}
    path = workbook(tmp_path / "book.xlsx", sheets)
    with pytest.raises(InputError) as info:
        run(tmp_path, path)
    text = str(info.value)
    assert "different headers" in text and "--sheet" in text and "ingest.sheet" in text
    assert "'Jan'" in text and "'Feb'" in text and "'Notes'" in text
    report = run(tmp_path, path, config={"ingest": {"sheet": "Feb"}})
    assert (report.rows_read, report.accepted) == (3, 2)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT record_id FROM applications ORDER BY 1") == [("F1",), ("F3",)]
    with pytest.raises(InputError, match=r"no sheet 'Fbe' \(did you mean 'Feb'\?\)"):
        run(tmp_path, path, config={"ingest": {"sheet": "Fbe"}})


def test_cli_ingest_reads_the_sheet_given(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx", {**MONTHS, "Notes": [["remark"], ["x"]]})
    db = str(tmp_path / "c.duckdb")
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", db, "--json", "--sheet", "Jan"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accepted"] == 2
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", db, "--json", "--sheet", "Noets"])
    assert isinstance(result.exception, InputError) and "did you mean 'Notes'" in str(result.exception)


def test_record_ids_with_invisible_characters_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_bytes(
        HEADER
        + GOOD
        + "\u200b,Siti Aminah,05-08-1990,,,P,Kalianda\n".encode()  # 3: only a zero-width space
        + b"A1\x00,Siti Aminah,05-08-1990,,,P,Kalianda\n"  # 4: A1 and a NUL
        + "\ufeffA1,Siti Aminah,05-08-1990,,,P,Kalianda\n".encode()  # 5: a BOM inside the file
        + b"A\x1b[31m1,Siti Aminah,05-08-1990,,,P,Kalianda\n"  # 6: an ANSI escape
        + b"B" * 257 + b",Budi Santoso,1990-01-02,,,L,Kotabumi\n"  # 7: too long
        + b"C" * 256 + b",Budi Santoso,1990-01-02,,,L," + b"z" * 5_000 + b"\n"  # 8: at the limits, accepted
    )  # fmt: skip
    report = run(tmp_path, path)
    assert (report.rows_read, report.accepted, report.quarantined) == (7, 2, 5)
    got = [(q[1], q[2], q[3], q[4]) for q in quarantine(tmp_path / "s.duckdb")]
    assert got == [
        (3, "record_id_invisible_characters", "record_id", "\\u200b"),
        (4, "record_id_invisible_characters", "record_id", "A1\\x00"),
        (5, "record_id_invisible_characters", "record_id", "\\ufeffA1"),
        (6, "record_id_invisible_characters", "record_id", "A\\x1b[31m1"),
        (7, "record_id_too_long", "record_id", "B" * 200 + "… (257 characters)"),
    ]
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows("SELECT record_id, length(office) FROM applications ORDER BY 1") == [
            ("A1", 8),
            ("C" * 256, 5_000),
        ]
    short = run(tmp_path, path, config={"ingest": {"max_record_id_chars": 100}}, db="short.duckdb")
    assert short.quarantined_by_reason == {"record_id_invisible_characters": 4, "record_id_too_long": 2}


def test_the_earliest_date_is_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_bytes(HEADER + b"O1,Raden Ajeng Kartini,21-04-1885,,,P,Jepara\n")
    default = run(tmp_path, path, db="default.duckdb")
    assert default.accepted == 1 and default.field_issues_by_reason == {"date_out_of_range": 1}
    report = run(tmp_path, path, config={"dataset": {"earliest_date": "1850-01-01"}}, db="early.duckdb")
    assert report.accepted == 1 and report.field_issues == 0
    with Store(tmp_path / "early.duckdb") as store:
        assert store.rows("SELECT birth_date FROM applications_normalised") == [(dt.date(1885, 4, 21),)]
