"""Every command of the ``linkage`` CLI on data whose ids, offices, reasons, officers and names are hostile.

The end-to-end proof of three rules: values are bound as SQL parameters, never formatted into SQL text
(a record id that closes a quote and runs ``COPY ... TO`` must stay a record id); ingest quarantines
record ids with control or format characters or over ``ingest.max_record_id_chars``, and accepts every
other id byte for byte; and terminal output never carries an escape sequence or a NUL. Each command runs
in a subprocess through ``main()``, so an error ends as a one-line ``error:`` and an exit code, never a
traceback.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linkage.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
MAX_ID = 256  # ingest.max_record_id_chars, by default
LONG = 5_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what the CSV export puts an apostrophe before

# Values that break a query built by formatting, a shell, a format string, rich markup or a terminal.
SQL_BREAKERS = (
    "O'Brien", 'a"b', "x;y", "x -- y", "/* c */", "$$x$$", "back\\slash\\", "100%", "a_b", "{}", "{0}", "%s",
    "'); DROP TABLE applications; --", "[red]x[/red]", "[link=http://x]y[/link]", "محمد عبد الله", "🙂👍🏽",
    "NULL", "NA", "None", "007", "1e5", "true", "-x", "--", "ID-0123456789abcdef", "a\u2028b", "a\xa0b",
)  # fmt: skip
ESCAPES = ("\x1b[31mred\x1b[0m", "\x1b]8;;http://x\x07link\x1b]8;;\x07", "nul\x00byte", "zero\u200bwidth",
           "rtl\u202eoverride", "bell\x07", "\x9bc1")  # fmt: skip


def _copy_payload(target: Path | str) -> str:
    """A record id that, formatted into SQL between quotes, would write ``target``."""
    return (
        f"X'); COPY (SELECT 'pwned' AS x) TO '{target}'; "
        "SELECT * FROM model_input l, model_input r WHERE false AND ('1"
    )


def quarantined_by_rule(record_id: str) -> str | None:
    """The reason ingest's rules give for refusing ``record_id``, or None when it is accepted."""
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in record_id):
        return "record_id_invisible_characters"
    if len(record_id) > MAX_ID:
        return "record_id_too_long"
    return None


def _sample(persons: int = 90) -> pd.DataFrame:
    """About 300 applications of people with several records, refusals and re-applications among them."""
    apps = pd.read_parquet(SAMPLE / "applications.parquet")
    truth = pd.read_parquet(SAMPLE / "truth.parquet")[["record_id", "person_id", "kind"]]
    both = apps.merge(truth, on="record_id")
    reapplied = both.loc[both["kind"] == "reapply_after_refusal", "person_id"].drop_duplicates()
    sizes = both.groupby("person_id").size()
    several = sizes[sizes >= 3].index.difference(reapplied)
    chosen = list(reapplied.sort_values()[:persons]) + list(several.sort_values()[: persons // 3])
    picked = both[both["person_id"].isin(chosen)].sort_values("record_id").reset_index(drop=True)
    return picked


def hostile_frame(where: Path) -> pd.DataFrame:
    """The sample with hostile record ids, offices, reasons and name suffixes; ``person_id`` kept for the truth."""
    frame = _sample()
    n = len(frame)
    payloads = [
        _copy_payload("pwned.csv"),  # relative: the subprocesses run in tmp_path
        _copy_payload(where.parent / "pwned.csv"),
        *SQL_BREAKERS,
        *ESCAPES,
        "L" * (MAX_ID + 1),
        "é" * MAX_ID,  # 256 characters, 512 bytes: accepted
        "Z" + "'" * (MAX_ID - 1),
    ]
    ids = [payloads[i] if i < len(payloads) else f"{payloads[i % len(payloads)]}#{i}" for i in range(n)]
    assert len(set(ids)) == n
    frame["record_id"] = ids
    offices = sorted(frame["office"].dropna().unique())
    hostile_offices = [
        "Kantor O'Brien; DROP TABLE applications; --",
        'Kantor "Kalianda" /* */ $$ \\ % _ {}',
        "[red]Kotabumi[/red] \x1b]8;;http://x\x07link\x1b]8;;\x07",
        "مكتب 🙂 \x1b[31m",
        "K" * LONG,
        _copy_payload(where.parent / "pwned-office.csv"),
    ]
    frame["office"] = frame["office"].map(dict(zip(offices, hostile_offices * 2, strict=False)))
    reasons = [*SQL_BREAKERS, *ESCAPES, "R" * LONG, "[bold]x" * 700]
    refused = frame["decision_reason"].notna()
    frame.loc[refused, "decision_reason"] = [reasons[i % len(reasons)] for i in range(int(refused.sum()))]
    suffixes = {p: s for p, s in zip(sorted(frame["person_id"].unique()), ("O'Brien", 'a"b', "[red]x[/red]",
                "محمد", "🙂", "100% a_b", "back\\slash", "{}", "$$", "bin Ali\x1b[2J", "x\u200by"), strict=False)}  # fmt: skip
    frame["full_name"] = [
        f"{name} {suffixes[p]}" if p in suffixes and name else name
        for name, p in zip(frame["full_name"], frame["person_id"], strict=True)
    ]
    return frame


def write_inputs(folder: Path) -> tuple[pd.DataFrame, Path, Path]:
    frame = hostile_frame(folder)
    columns = [c for c in frame.columns if c not in ("person_id", "kind")]
    csv_path, parquet_path = folder / "in" / "applications.csv", folder / "in" / "applications.parquet"
    csv_path.parent.mkdir()
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        out.writerows(frame[columns].itertuples(index=False))
    pq.write_table(pa.Table.from_pandas(frame[columns], preserve_index=False), parquet_path)
    return frame, csv_path, parquet_path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def tables(db: Path) -> set[str]:
    with Store(db, read_only=True) as store:
        return {t for (t,) in store.rows("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}


class Cli:
    """Runs ``python -m linkage.cli`` in ``cwd`` and checks what every command must hold."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")}
        self.env |= {"NO_COLOR": "1", "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}

    def run(self, *args: str | Path, refused: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "linkage.cli", *map(str, args)],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, encoding="utf-8", check=False, timeout=600,
        )  # fmt: skip
        shown = f"{args[0]}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        for stream in (done.stdout, done.stderr):
            assert "Traceback" not in stream, shown
            assert "\x1b" not in stream and "\x00" not in stream, shown
            assert "\x07" not in stream and "\x9b" not in stream, shown
        if refused:
            assert done.returncode in (1, 2), shown
            if done.returncode == 1:
                assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, shown
        else:
            assert done.returncode == 0, shown
        return done

    def json(self, *args: str | Path) -> object:
        return json.loads(self.run(*args, "--json").stdout)


@pytest.mark.slow  # about 60 s: some 40 commands, each a Python process that imports splink
def test_every_command_on_hostile_values(tmp_path: Path) -> None:
    frame, csv_path, parquet_path = write_inputs(tmp_path)
    ids = list(frame["record_id"])
    expected_quarantine = {r: why for r in ids if (why := quarantined_by_rule(r)) is not None}
    accepted = [r for r in ids if r not in expected_quarantine]
    assert len(accepted) > 250 and len(expected_quarantine) >= 8
    cli = Cli(tmp_path)
    db = tmp_path / "store.duckdb"
    outside = [Path.cwd(), tmp_path.parent]
    before_outside = {folder: {p for p in folder.iterdir()} for folder in outside}
    before = files_under(tmp_path)
    made: set[Path] = set()

    def check_files(*new: Path) -> None:
        """Only the command's own outputs appeared; the store kept its tables; no payload ran."""
        made.update(new)
        appeared = files_under(tmp_path) - before - made
        assert not {p for p in appeared if not p.is_relative_to(tmp_path / "dedupe")}, appeared
        for folder in outside:
            assert {p for p in folder.iterdir()} - before_outside[folder] <= {tmp_path}
        assert not list(tmp_path.rglob("pwned*")) and not list(tmp_path.parent.glob("pwned*"))
        assert tables(db) >= core

    # ingest: every row accepted or quarantined by the rules, and the CSV and the Parquet copy agree
    report = cli.json("ingest", csv_path, "--db", db)
    core = {"applications", "applications_normalised", "quarantine", "runs", "decisions", "events", "membership"}
    assert (report["rows_read"], report["accepted"], report["quarantined"]) == (len(ids), len(accepted),
                                                                                 len(expected_quarantine))  # fmt: skip
    assert report["quarantined_by_reason"] == pd.Series(expected_quarantine).value_counts().to_dict()
    check_files(db)
    again = cli.json("ingest", parquet_path, "--db", db)
    assert (again["accepted"], again["unchanged"], again["new"], again["updated"]) == (len(accepted), len(accepted),
                                                                                       0, 0)  # fmt: skip
    with Store(db, read_only=True) as store:
        stored = [r for (r,) in store.rows("SELECT record_id FROM applications ORDER BY record_id")]
        quarantined = dict(store.rows("SELECT value, reason FROM quarantine WHERE reason LIKE 'record_id%'"))
    assert stored == sorted(accepted)
    assert set(quarantined.values()) == set(expected_quarantine.values())
    cli.run("ingest", csv_path, "--db", db)  # the tables a terminal shows
    check_files()

    profile = cli.json("profile", "--db", db)
    assert profile["applications"] == len(accepted)
    cli.run("profile", "--db", db)
    check_files()

    # dedupe: one, on the Parquet copy; its clusters hold exactly the accepted ids
    summary = cli.json("dedupe", parquet_path, "--out", tmp_path / "dedupe")
    assert summary["accepted"] == len(accepted) and summary["multi_record_identities"] > 20
    clusters = pq.read_table(tmp_path / "dedupe" / "clusters.parquet").column("record_id").to_pylist()
    assert sorted(clusters) == sorted(accepted)
    assert tables(tmp_path / "dedupe" / "store.duckdb") >= core
    check_files()

    linked = cli.json("link", "--db", db)
    assert linked["records"] == len(accepted)
    cli.run("link", "--db", db)
    cli.run("link", "--full", "--db", db)
    check_files()

    # history by a hostile record id (after `--`: an id may begin with a dash) and by an identity id:
    # ids, offices and 5,000-character reasons come back exactly
    stored_as = {r: (" ".join(o.split()) if isinstance(o, str) else None, w if isinstance(w, str) else None)
                 for r, o, w in zip(frame["record_id"], frame["office"], frame["decision_reason"], strict=True)}  # fmt: skip
    keys = [ids[0], ids[1], "O'Brien", "'); DROP TABLE applications; --", "--", "-x", "NA", "a\u2028b", "é" * MAX_ID]
    assert set(keys) <= set(accepted)
    for key in keys:
        found = json.loads(cli.run("history", "--db", db, "--json", "--", key).stdout)
        assert found["key"] == key and key in {a["record_id"] for a in found["applications"]}
        for application in found["applications"]:
            assert stored_as[application["record_id"]] == (application["office"], application["decision_reason"])
    for key in keys[:2]:
        cli.run("history", "--db", db, "--", key)
    identity = found["identity_id"]
    by_identity = json.loads(cli.run("history", "--db", db, "--json", identity).stdout)
    assert {a["record_id"] for a in by_identity["applications"]} == {a["record_id"] for a in found["applications"]}
    for key in (next(iter(expected_quarantine)), "nope'); DROP TABLE runs; --"):
        cli.run("history", "--db", db, "--", key, refused=True)
    check_files()

    alerts = cli.json("alerts", "--db", db)
    assert alerts, "the sample's re-applications after a refusal give alerts"
    shown = {a["record_id"] for a in alerts} | {a["refused_record_id"] for a in alerts}
    assert shown <= set(accepted) and len(shown) > 20
    for alert in alerts:
        assert stored_as[alert["record_id"]][0] == alert["office"]
        assert stored_as[alert["refused_record_id"]] == (alert["refused_office"], alert["refusal_reason"])
    assert any(len(alert["refusal_reason"] or "") == LONG for alert in alerts)
    cli.run("alerts", "--db", db)
    check_files()

    # decisions by a hostile officer for a hostile reason, within the limits; then a link applies them
    a, b, c = accepted[1], accepted[2], accepted[3]
    officer = "O'Brien; DROP TABLE decisions; -- [red]x[/red] $$ \\ % _ {} محمد 🙂 zero\u200bwidth"
    reason = _copy_payload(tmp_path.parent / "pwned-reason.csv") + " [bold]x " + "R" * 800
    made_a = json.loads(cli.run("decide", "must-link", "--by", officer, "--reason", reason, "--db", db, "--json",
                                "--", a, b).stdout)  # fmt: skip
    assert (made_a["record_id_a"], made_a["record_id_b"], made_a["decided_by"]) == (a, b, officer)
    cli.run("decide", "cannot-link", "--by", officer, "--reason", "[red]x[/red] 'a\"b", "--db", db, "--", a, c)
    cli.run("decide", "must-link", "--by", "x\x1b[2J", "--reason", "r", "--db", db, "--", a, b, refused=True)
    cli.run("decide", "must-link", "--by", "x", "--reason", "r" * 1001, "--db", db, "--", a, b, refused=True)
    cli.run("decide", "must-link", "--by", "x", "--reason", "r", "--db", db, "--", a, "no'such", refused=True)
    relinked = cli.json("link", "--db", db)
    assert relinked["decisions_applied"] == 2
    decisions = json.loads(cli.run("history", "--db", db, "--json", "--", a).stdout)
    assert {(d["other_record_id"], d["decided_by"]) for x in decisions["applications"] for d in x["decisions"]} >= {
        (b, officer)
    }
    check_files()

    # exports round-trip every accepted id byte for byte
    cli.run("export", "--out", tmp_path / "x.parquet", "--db", db)
    cli.run("export", "--out", tmp_path / "x.csv", "--db", db)
    check_files(tmp_path / "x.parquet", tmp_path / "x.csv")
    exported = pq.read_table(tmp_path / "x.parquet").column("record_id").to_pylist()
    assert exported == sorted(accepted)
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["record_id"] for r in rows] == ["'" + r if r.startswith(FORMULA_START) else r for r in sorted(accepted)]

    cli.run("report", "office-shopping", "--out", tmp_path / "r.html", "--db", db)
    cli.run("report", "office-shopping", "--out", tmp_path / "r.csv", "--db", db)
    check_files(tmp_path / "r.html", tmp_path / "r.csv")

    # evaluate: a truth file of the hostile ids, the clusters exported as Parquet and as CSV
    truth = frame[["record_id", "person_id"]]
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), tmp_path / "truth.parquet")
    truth.to_csv(tmp_path / "truth.csv", index=False)
    # ids a CSV reader would take for numbers, in a column of nothing else, stay the ids they are
    numeric = truth[truth["record_id"].isin(["007", "1e5"])]
    assert len(numeric) == 2
    numeric.to_csv(tmp_path / "numeric.csv", index=False)
    check_files(tmp_path / "truth.parquet", tmp_path / "truth.csv", tmp_path / "numeric.csv")
    # The CSV export puts an apostrophe before a cell a spreadsheet would run as a formula (exports.py):
    # those ids are not matched by the truth, by design.
    plain = [r for r in accepted if not r.startswith(FORMULA_START)]
    runs = (("truth.parquet", "x.parquet", accepted), ("truth.csv", "x.parquet", accepted), ("truth.csv", "x.csv", plain),
            ("numeric.csv", "x.parquet", ["007", "1e5"]))
    for truth_file, clusters_file, measured in runs:
        result = json.loads(cli.run("evaluate", "--truth", truth_file, "--clusters", clusters_file, "--db", db,
                                    "--json").stdout)["metrics"]  # fmt: skip
        assert result["records"] == len(measured), (truth_file, clusters_file, result)
        cli.run("evaluate", "--truth", truth_file, "--clusters", clusters_file, "--db", db)
    check_files()
    with Store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM applications") == len(accepted)
