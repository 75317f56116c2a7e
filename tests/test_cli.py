"""The CLI: one library call per command plus formatting; errors become a message and an exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from linkage.cli import app

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"


def test_ingest_then_profile_on_the_bundled_sample(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--db", db])
    assert result.exit_code == 0, result.output
    assert "reconciles" in result.output and "Store profile" in result.output
    profile = runner.invoke(app, ["profile", "--db", db, "--json"])
    data = json.loads(profile.output)
    assert data["applications"] == 20_000 and data["quarantined"] == 0
    assert set(data["nik_status"]) <= {"valid", "invalid", "missing"}
    assert sum(data["by_decision"].values()) == 20_000
    again = runner.invoke(app, ["ingest", str(SAMPLE), "--db", db, "--json"])
    report = json.loads(again.output)
    assert report["quarantined_by_reason"] == {} and report["reconciles"]
    assert (report["accepted"], report["new"], report["updated"], report["unchanged"]) == (20_000, 0, 0, 20_000)
    assert json.loads(runner.invoke(app, ["profile", "--db", db, "--json"]).output)["applications"] == 20_000


def test_ingest_summary_shows_new_updated_and_unchanged(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    path = tmp_path / "a.csv"
    path.write_text("record_id,full_name\nA1,Siti Aminah\nA2,Budi Santoso\n")
    runner.invoke(app, ["ingest", str(path), "--db", db])
    path.write_text("record_id,full_name\nA1,Siti Aminah\nA2,Budi Santosa\nA3,Dewi Lestari\n")
    result = runner.invoke(app, ["ingest", str(path), "--db", db])
    assert result.exit_code == 0, result.output
    assert "reconciles" in result.output and "Accepted rows" in result.output
    rows = {
        cells[1].strip(): cells[2].strip()
        for line in result.output.splitlines()
        if len(cells := line.split("│")) == 4
    }
    assert (rows["new"], rows["updated"], rows["unchanged"]) == ("1", "1", "1")


def test_settings_lists_every_key() -> None:
    result = runner.invoke(app, ["settings", "--json"])
    keys = {row["key"] for row in json.loads(result.output)}
    assert {"dataset.id_scheme", "store.path", "ingest.workers", "columns.<role>"} <= keys


def test_errors_are_a_message_and_exit_code_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    done = subprocess.run(
        [sys.executable, "-m", "linkage.cli", "ingest", str(missing), "--db", str(tmp_path / "x.duckdb")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "input file not found" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[colums]\n")
    done = subprocess.run(
        [sys.executable, "-m", "linkage.cli", "profile", "--config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "did you mean 'columns'" in done.stderr


def test_profile_of_a_missing_store_says_how_to_make_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code != 0
    assert "linkage ingest" in str(result.exception)
