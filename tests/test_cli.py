"""The CLI: one library call per command plus formatting; errors become a message and an exit code."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.store import Store

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
    run_parameters = {"spec.threshold", "spec.review_floor", "spec.seed", "spec.max_pairs_u", "spec.max_pairs_em"}
    assert run_parameters | {"link.max_guard_size"} <= keys
    rows = {row["key"]: row for row in json.loads(result.output)}
    assert rows["spec.threshold"]["default"] == "0.9" and rows["spec.threshold"]["help"].startswith("Match probability")


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


# --- a store is made by ingest only ----------------------------------------------------------------------------------


def _files(tmp_path: Path) -> dict[str, Path]:
    """An applications file, and the truth and clusters that evaluate reads before it opens --db."""
    apps = tmp_path / "a.csv"
    apps.write_text("record_id,full_name,office\nA1,Siti Aminah,Metro\nA2,Budi Santoso,Liwa\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("record_id,person_id\nA1,p1\nA2,p2\n")
    clusters = tmp_path / "clusters.csv"
    clusters.write_text("record_id,identity_id\nA1,i1\nA2,i2\n")
    return {"applications": apps, "truth": truth, "clusters": clusters}


def test_every_command_but_ingest_refuses_a_missing_store_and_makes_none(tmp_path: Path) -> None:
    f = _files(tmp_path)
    db = tmp_path / "typo" / "stroe.duckdb"
    commands = {
        "link": ["link"],
        "decide": ["decide", "must-link", "A1", "A2", "--by", "officer.rina", "--reason", "same photo"],
        "history": ["history", "A1"],
        "alerts": ["alerts"],
        "profile": ["profile"],
        "report": ["report", "office-shopping", "--out", str(tmp_path / "r.csv")],
        "export": ["export", "--out", str(tmp_path / "ids.csv")],
        "evaluate": ["evaluate", "--truth", str(f["truth"]), "--clusters", str(f["clusters"])],
    }
    for name, args in commands.items():
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 1, (name, result.output)
        assert f"no store at {db}: run `linkage ingest FILE --db {db}` first" in str(result.exception), name
        assert not db.parent.exists(), f"`linkage {name}` made {db.parent}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "clusters.csv", "truth.csv"]
    made = runner.invoke(app, ["ingest", str(f["applications"]), "--db", str(db)])
    assert made.exit_code == 0 and db.exists()


# --- interrupted runs ------------------------------------------------------------------------------------------------


def _store_with_runs(tmp_path: Path, *runs: tuple[str, str]) -> tuple[Path, list[str]]:
    """A store holding two applications, linked into one identity each, and runs of (kind, status)."""
    db = tmp_path / "s.duckdb"
    assert runner.invoke(app, ["ingest", str(_files(tmp_path)["applications"]), "--db", str(db)]).exit_code == 0
    ids = []
    with Store(db) as store:
        store.sql("DELETE FROM runs")
        for record in ("A1", "A2"):
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, 'r0')", [record, f"ID-{record}"])
        for kind, status in runs:
            run_id = store.begin_run(kind, [], "h")
            if status != "running":  # a process killed mid-run leaves it running
                store.finish_run(run_id, status, {})
            ids.append(run_id)
    return db, ids


def _statuses(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as store:
        return dict(store.rows("SELECT run_id, status FROM runs"))


def test_ingest_marks_and_reports_runs_a_kill_left_running(tmp_path: Path) -> None:
    db, (killed,) = _store_with_runs(tmp_path, ("ingest", "running"))
    result = runner.invoke(app, ["ingest", str(tmp_path / "a.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"interrupted run: ingest run {killed} started" in " ".join(result.output.split())
    assert _statuses(db)[killed] == "interrupted"
    again = json.loads(runner.invoke(app, ["ingest", str(tmp_path / "a.csv"), "--db", str(db), "--json"]).output)
    assert again["interrupted_runs"] == []


def test_ingest_json_lists_the_interrupted_runs(tmp_path: Path) -> None:
    db, (killed,) = _store_with_runs(tmp_path, ("link", "running"))
    result = runner.invoke(app, ["ingest", str(tmp_path / "a.csv"), "--db", str(db), "--json"])
    (run,) = json.loads(result.output)["interrupted_runs"]
    assert (run["run_id"], run["kind"]) == (killed, "link") and run["started_at"][:4] == killed[:4]


def test_link_marks_and_reports_runs_a_kill_left_running(tmp_path: Path) -> None:
    db, (ingest_killed, link_killed, done) = _store_with_runs(
        tmp_path, ("ingest", "running"), ("link", "running"), ("link", "succeeded")
    )
    result = runner.invoke(app, ["link", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [(r["run_id"], r["kind"]) for r in summary["interrupted_runs"]] == [
        (ingest_killed, "ingest"),
        (link_killed, "link"),
    ]
    statuses = _statuses(db)
    assert [statuses[r] for r in (ingest_killed, link_killed, done)] == ["interrupted", "interrupted", "succeeded"]
    assert statuses[summary["run_id"]] == "succeeded" and "abandoned" not in statuses.values()


def test_decide_marks_and_reports_runs_a_kill_left_running(tmp_path: Path) -> None:
    db, (killed,) = _store_with_runs(tmp_path, ("link", "running"))
    args = ["decide", "cannot-link", "A1", "A2", "--by", "officer.rina", "--reason", "different mothers"]
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"interrupted run: link run {killed}" in " ".join(result.output.split())
    assert _statuses(db)[killed] == "interrupted"


def test_profile_shows_runs_by_kind_and_status(tmp_path: Path) -> None:
    db, _ = _store_with_runs(
        tmp_path, ("ingest", "succeeded"), ("ingest", "running"), ("link", "succeeded"), ("link", "failed")
    )
    data = json.loads(runner.invoke(app, ["profile", "--db", str(db), "--json"]).output)
    assert data["runs"] == {"ingest": {"interrupted": 1, "succeeded": 1}, "link": {"failed": 1, "succeeded": 1}}
    result = runner.invoke(app, ["profile", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "4 runs" in result.output and "ingest runs" not in result.output
    lines = [line.replace("┃", "│").split("│") for line in result.output.splitlines()]
    rows = {cells[1].strip(): [c.strip() for c in cells[2:-1]] for cells in lines if len(cells) == 6}
    assert rows["kind"] == ["failed", "interrupted", "succeeded"]
    assert rows["ingest"] == ["0", "1", "1"] and rows["link"] == ["1", "0", "1"]


# --- a store being written ---------------------------------------------------------------------------------------


def test_readers_say_plainly_that_a_link_is_writing_the_store(tmp_path: Path) -> None:
    from tests.test_store import HOLD

    db = tmp_path / "s.duckdb"
    Store(db, create=True).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), "linkage link"], stdout=subprocess.PIPE, text=True, cwd=SAMPLE.parents[2]
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for args in (["alerts"], ["history", "A1"], ["profile"]):
            result = runner.invoke(app, [*args, "--db", str(db)])
            assert result.exit_code == 1, result.output
            message = str(result.exception)
            assert f"is being written by `linkage link` (process {holder.pid}) since " in message, args
            assert "try again when it finishes" in message and "Conflicting lock" not in message
    finally:
        holder.kill()
        holder.wait()


# --- the run parameters: --threshold and link.max_guard_size reach the run ------------------------------------


def test_link_takes_a_threshold_for_the_run(tmp_path: Path) -> None:
    db, _ = _store_with_runs(tmp_path)
    result = runner.invoke(app, ["link", "--db", str(db), "--threshold", "0.97", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["threshold"] == 0.97
    with Store(db, read_only=True) as store:
        (counts,) = store.rows("SELECT counts FROM runs WHERE kind = 'link' ORDER BY started_at DESC LIMIT 1")[0]
    assert json.loads(counts)["threshold"] == 0.97  # the run's manifest records it


def test_a_bad_threshold_is_refused_before_the_store_is_opened(tmp_path: Path) -> None:
    db = tmp_path / "never.duckdb"  # no such store: the threshold is checked first
    for command in (["link", "--db", str(db)], ["dedupe", str(tmp_path / "a.csv"), "--out", str(tmp_path / "out")]):
        result = runner.invoke(app, [*command, "--threshold", "1.5"])
        assert result.exit_code == 1, result.output
        message = str(result.exception)
        assert message == "invalid threshold 1.5 for the model spec\n  - threshold: Input should be less than 1"
    assert not db.exists() and not (tmp_path / "out").exists()


def test_the_guard_size_limit_from_the_config_reaches_the_link_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 520 applications of the sample holding three clusters of 3-4 records that the guard examines
    frame = pq.read_table(SAMPLE).to_pandas().sort_values(["application_date", "record_id"]).head(2000)
    guarded = {"BDL-2022-00011848", "BDL-2025-00016652", "KTB-2025-00018986", "KTB-2024-00007767",
               "KTB-2024-00011796", "KTB-2025-00019587"}  # fmt: skip
    frame[frame.record_id.isin(guarded) | (frame.index % 4 == 0)].to_parquet(tmp_path / "a.parquet", index=False)
    config = tmp_path / "small_guard.toml"
    config.write_text("[link]\nmax_guard_size = 2\n", encoding="utf-8")
    db = str(tmp_path / "s.duckdb")
    assert runner.invoke(app, ["ingest", str(tmp_path / "a.parquet"), "--db", db]).exit_code == 0
    with caplog.at_level(logging.WARNING, logger="linkage.guard"):
        result = runner.invoke(app, ["link", "--db", db, "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert "above max_guard_size=2 records left unguarded" in caplog.text
