"""What linkage writes for people is safe: CSV cells a spreadsheet would run, terminal escape codes, rich markup.

The store is ingested from a CSV a hostile clerk could have written (formula cells, escape codes,
bracketed text); the link tables are filled by SQL, and one decision is written past ``linkage decide``
(as by an older version, or by hand), so its officer's name holds an escape code too.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage import cli
from linkage.cli import _shown, app
from linkage.config import Config
from linkage.decide import MAX_OFFICER_CHARS, MAX_REASON_CHARS, decide
from linkage.errors import InputError
from linkage.pipeline import ingest
from linkage.store import Store

runner = CliRunner()

FORMULA, COMMAND = "=1+1", "+cmd|' /C calc'!A0"
OFFICE = "\x1b]0;pwned\x07Kalianda\x1b[2J"  # retitles the window, then clears the screen
REASON = "\x1b[31mcheck the [training] rules\x1b[0m"
OFFICER = "\x1b]52;c;cm0gLXJmIC8=\x07officer.rina"  # OSC 52: writes the clipboard
IDENTITY = "ID-" + "7" * 16
ESCAPES = ("\x1b", "\x07", "\x9b", "\x9d")


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["record_id", "full_name", "office", "application_date", "decision", "decision_reason"])
        out.writerows(rows)
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    source = write_csv(
        folder / "applications.csv",
        [
            (FORMULA, "Siti Aminah", OFFICE, "2024-01-10", "rejected", REASON),
            (COMMAND, "Siti Aminah", "@SUM(1+1)", "2024-03-01", "issued", ""),
            ("plain", "Budi Santoso", "Metro", "2024-02-02", "issued", ""),
        ],
    )
    path = folder / "s.duckdb"
    assert ingest([source], Config(), db=path, today=dt.date(2026, 11, 28)).accepted == 3
    with Store(path) as store:
        for record in (FORMULA, COMMAND):
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, 'r1')", [record, IDENTITY])
        store.sql("INSERT INTO identities VALUES (?, 'r1', NULL, NULL)", [IDENTITY])
        store.sql("INSERT INTO models VALUES ('m1', 'r1', now(), 3, ['name'], '{}')")
        store.sql("INSERT INTO pairs VALUES (?, ?, 0.99, 6.6, 6.6, false, [3], [6.6], 'm1', 'r1')", [COMMAND, FORMULA])
        store.sql(
            "INSERT INTO decisions VALUES ('d1', 'must_link', ?, ?, ?, ?, now(), 'r1')",
            [FORMULA, COMMAND, OFFICER, "[bold]same[/bold] photo"],
        )
        store.sql(
            "INSERT INTO events (run_id, happened_at, kind, identity_id, record_id, reason) VALUES "
            "('r1', now(), 'created', ?, ?, ?)",
            [IDENTITY, FORMULA, REASON],
        )
    return path


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "_width", 400)  # no folding inside a cell
    monkeypatch.setattr(cli.err, "_width", 400)


def flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def assert_no_escapes(output: str) -> None:
    found = [c for c in ESCAPES if c in output]
    assert not found, f"terminal control characters in the output: {found}"


# ---------------------------------------------------------------------------------------- CSV cells


def cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_the_csv_export_neutralises_formula_cells(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ids.csv"
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert cells(out) == [
        ["record_id", "identity_id", "no_identity_evidence"],
        ["'" + COMMAND, IDENTITY, "True"],
        ["'" + FORMULA, IDENTITY, "True"],
        ["plain", "", "True"],
    ]


def test_the_parquet_export_keeps_values_exactly(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "it's (a) folder" / "ids.parquet"  # a path COPY ... TO would have had to quote
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pydict() == {
        "record_id": [COMMAND, FORMULA, "plain"],
        "identity_id": [IDENTITY, IDENTITY, None],
        "no_identity_evidence": [True, True, True],  # a name and nothing else
    }


def test_the_csv_report_neutralises_formula_cells(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "shopping.csv"
    result = runner.invoke(app, ["report", "office-shopping", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert cells(out) == [
        ["month", "office", "alerts", "applications", "identities", "review_alerts", "review_applications"],
        ["2024-03", "'@SUM(1+1)", "1", "1", "1", "0", "0"],
    ]


# ------------------------------------------------------------------------------------ terminal output


def test_shown_strips_control_characters_and_escapes_markup() -> None:
    assert _shown(OFFICE) == "Kalianda"
    assert _shown(REASON) == "check the \\[training] rules"
    assert _shown(OFFICER) == "officer.rina"
    assert _shown("a\tb\r\nc\x00d\x9b31m\u202egnp.exe") == "a b  cd31mgnp.exe"
    assert _shown(":warning: [red]x[/red]") == ":warning: \\[red]x\\[/red]"


def test_history_prints_stored_values_without_escape_codes(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["history", "--db", str(db), FORMULA])
    assert result.exit_code == 0, result.output
    assert_no_escapes(result.output)
    text = flat(result.output)
    assert "Kalianda" in text and "check the [training] rules" in text
    assert "officer.rina" in text and "[bold]same[/bold] photo" in text


def test_alerts_print_stored_values_without_escape_codes(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["alerts", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert_no_escapes(result.output)
    text = flat(result.output)
    assert "Kalianda" in text and "check the [training] rules" in text and "@SUM(1+1)" in text


def test_json_output_keeps_values_exactly_but_escaped(db: Path) -> None:
    import json

    result = runner.invoke(app, ["alerts", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert_no_escapes(result.output)
    (alert,) = json.loads(result.output)
    assert (alert["refused_office"], alert["refusal_reason"]) == (OFFICE, REASON)


def test_the_profile_prints_stored_values_without_escape_codes(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["profile", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert_no_escapes(result.output)
    assert "Kalianda" in flat(result.output)


def test_a_file_name_in_brackets_is_shown_as_it_is(tmp_path: Path, wide: None) -> None:
    folder = tmp_path / "[red]x[" / "red]"  # a path that reads [red]x[/red]
    folder.mkdir(parents=True)
    source = write_csv(folder / "[bold]y.csv", [("A1", "Siti Aminah", "Metro", "2024-01-10", "issued", "")])
    db = folder / "s.duckdb"
    result = runner.invoke(app, ["ingest", str(source), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "[bold]y.csv" in result.output  # the file column
    assert f"store {db}" in flat(result.output)


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``linkage ARGS`` through main(), as a user runs it: the error message it prints on stderr."""
    monkeypatch.setattr(sys, "argv", ["linkage", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    return flat(capsys.readouterr().err)


def test_error_messages_keep_bracketed_text_and_drop_escape_codes(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], wide: None
) -> None:
    message = run_main(monkeypatch, capsys, "alerts", "--db", str(db), "--refusal", "[training]")
    assert "unknown decision '[training]' as a refusal" in message
    missing = tmp_path / "[red]x[/red]\x1b]0;pwned\x07.csv"
    message = run_main(monkeypatch, capsys, "ingest", str(missing), "--db", str(tmp_path / "s.duckdb"))
    assert_no_escapes(message)
    assert "input file not found" in message and "[red]x[/red]" in message


# ----------------------------------------------------------------------------------- decision texts


@pytest.fixture
def small(tmp_path: Path) -> Path:
    source = write_csv(
        tmp_path / "a.csv",
        [("A1", "Siti Aminah", "Metro", "2024-01-10", "issued", ""), ("A2", "Siti", "Liwa", "2024-02-10", "", "")],
    )
    db = tmp_path / "s.duckdb"
    ingest([source], Config(), db=db, today=dt.date(2026, 11, 28))
    return db


def test_decision_texts_are_bounded(small: Path) -> None:
    with pytest.raises(InputError, match=r"the officer \(--by\) has 101 characters, more than the limit of 100"):
        decide(small, "must_link", "A1", "A2", by="o" * (MAX_OFFICER_CHARS + 1), reason="same photo")
    with pytest.raises(InputError, match=r"the reason \(--reason\) has 1,001 characters, more than the limit of 1,000"):
        decide(small, "must_link", "A1", "A2", by="officer.rina", reason="r" * (MAX_REASON_CHARS + 1))
    made = decide(small, "must_link", "A1", "A2", by="o" * MAX_OFFICER_CHARS, reason="r" * MAX_REASON_CHARS)
    assert len(made.decided_by) == 100 and len(made.reason) == 1000


@pytest.mark.parametrize(
    ("by", "reason"),
    [(OFFICER, "same photo"), ("officer.rina", REASON), ("officer.rina", "line one\nline two"), ("o\x9b", "x")],
)
def test_decision_texts_hold_no_control_characters(small: Path, by: str, reason: str) -> None:
    with pytest.raises(InputError, match="holds a control character"):
        decide(small, "must_link", "A1", "A2", by=by, reason=reason)
    with Store(small, read_only=True) as store:
        assert store.count("decisions") == 0


def test_decide_help_states_the_limits() -> None:
    result = runner.invoke(app, ["decide", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = flat(result.output)
    assert f"at most {MAX_OFFICER_CHARS} characters" in text and f"at most {MAX_REASON_CHARS:,} characters" in text
