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
from linkage.errors import InputError
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
    assert second.quarantined_by_reason == {"record_id_already_stored": 1}
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
    assert data["quarantined_by_reason"]["ragged_row"] == 2
    assert "nik_length" in data["field_issues_by_reason"]
