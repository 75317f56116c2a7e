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
from collections import Counter
from pathlib import Path
from typing import Any

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
        "مكتب 🙂 \x1b[31m nul\x00 zero\u200bwidth",
        "K" * LONG,
        _copy_payload(where.parent / "pwned-office.csv"),
    ]
    frame["office"] = frame["office"].map(dict(zip(offices, hostile_offices * 2, strict=False)))
    reasons = [*SQL_BREAKERS, *ESCAPES, "R" * LONG, "[bold]x" * 700]
    refused = frame["decision_reason"].notna()
    frame.loc[refused, "decision_reason"] = [reasons[i % len(reasons)] for i in range(int(refused.sum()))]
    added = ("O'Brien", 'a"b', "[red]x[/red]", "محمد", "🙂", "100% a_b", "back\\slash", "{}", "$$", "bin Ali\x1b[2J",
             "x\u200by", "nul\x00")  # fmt: skip
    suffixes = dict(zip(sorted(frame["person_id"].unique()), added, strict=False))
    frame["full_name"] = [
        f"{name} {suffixes[p]}" if p in suffixes and name else name
        for name, p in zip(frame["full_name"], frame["person_id"], strict=True)
    ]
    return frame


def write_inputs(folder: Path) -> tuple[pd.DataFrame, Path, Path]:
    frame = hostile_frame(folder)
    columns = [c for c in frame.columns if c not in ("person_id", "kind")]
    csv_path = folder / "in" / "applications.csv"
    parquet_path = folder / "in" / "O'Brien; --[bold]x \x1b[31m🙂.parquet"  # a file name is shown too
    csv_path.parent.mkdir()
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        out.writerows(frame[columns].itertuples(index=False))
    pq.write_table(pa.Table.from_pandas(frame[columns], preserve_index=False), parquet_path)
    return frame, csv_path, parquet_path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def tables(db: Path) -> set[str]:
    with Store(db, read_only=True) as store:
        return {t for (t,) in store.rows("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}


# The store's tables a payload such as ``DROP TABLE applications`` would take away.
CORE = {"applications", "applications_normalised", "quarantine", "runs", "decisions", "events", "membership", "links"}


class Cli:
    """Runs ``python -m linkage.cli`` in ``cwd`` and checks, after every command, what each must hold.

    No traceback and no escape, bell, C1 or NUL character in its output; exit code 0, or for a refusal
    1 with a one-line ``error:`` (2: a usage error); no file but the command's outputs appeared under
    ``cwd``, in the test's working directory or beside ``cwd``, and no payload's target anywhere; the
    store still has its tables.
    """

    def __init__(self, cwd: Path, db: Path) -> None:
        self.cwd, self.db = cwd, db
        self.env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")}
        self.env |= {"NO_COLOR": "1", "COLUMNS": "120", "PYTHONIOENCODING": "utf-8"}
        self.outside = {folder: set(folder.iterdir()) for folder in (Path.cwd(), cwd.parent)}
        self.known = files_under(cwd)

    def run(self, *args: str | Path, refused: bool = False, makes: tuple[Path, ...] = ()) -> str:
        """Run one command; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "linkage.cli", *map(str, args)],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, encoding="utf-8", check=False, timeout=600,
        )  # fmt: skip
        shown = f"{args[0]}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        for stream in (done.stdout, done.stderr):
            assert "Traceback" not in stream, shown
            assert not {"\x1b", "\x00", "\x07", "\x9b", "\x9d"} & set(stream), shown
        if refused:
            assert done.returncode in (1, 2), shown
            if done.returncode == 1:
                assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, shown
        else:
            assert done.returncode == 0, shown
        self._check(makes)
        return done.stdout

    def json(self, *args: str | Path, makes: tuple[Path, ...] = ()) -> Any:
        return json.loads(self.run(*args, "--json", makes=makes))

    def _check(self, makes: tuple[Path, ...]) -> None:
        self.known |= set(makes)
        appeared = {p for p in files_under(self.cwd) if not any(p.is_relative_to(known) for known in self.known)}
        assert not appeared, f"files no command should have written: {sorted(appeared)}"
        for folder, before in self.outside.items():
            assert set(folder.iterdir()) - before <= {self.cwd}, folder
        assert not list(self.cwd.rglob("pwned*")) and not list(self.cwd.parent.glob("pwned*"))
        if self.db.exists():
            assert tables(self.db) >= CORE


@pytest.mark.slow  # about 70 s: some 45 commands, each a Python process that imports splink
def test_every_command_on_hostile_values(tmp_path: Path) -> None:
    frame, csv_path, parquet_path = write_inputs(tmp_path)
    ids = list(frame["record_id"])
    refused = {r: why for r in ids if (why := quarantined_by_rule(r)) is not None}
    accepted = [r for r in ids if r not in refused]
    assert len(accepted) > 250 and len(refused) >= 8
    db = tmp_path / "store.duckdb"
    cli = Cli(tmp_path, db)

    # ingest: every row accepted or quarantined by the rules, and the CSV and its Parquet copy agree
    report = cli.json("ingest", csv_path, "--db", db, makes=(db,))
    assert (report["rows_read"], report["accepted"], report["quarantined"]) == (len(ids), len(accepted), len(refused))
    assert report["reconciles"] and report["quarantined_by_reason"] == Counter(refused.values())
    again = cli.json("ingest", parquet_path, "--db", db)
    assert (again["accepted"], again["unchanged"], again["new"], again["updated"]) == (len(accepted), len(accepted),
                                                                                       0, 0)  # fmt: skip
    with Store(db, read_only=True) as store:
        stored = [r for (r,) in store.rows("SELECT record_id FROM applications ORDER BY record_id")]
        rows = {path: set(store.rows("SELECT source_row, reason FROM quarantine WHERE source_file = ?", [str(path)]))
                for path in (csv_path, parquet_path)}  # fmt: skip
    assert stored == sorted(accepted)
    # CSV rows are numbered by line (the header is line 1), Parquet rows from 1
    assert rows[csv_path] == {(n + 2, refused[r]) for n, r in enumerate(ids) if r in refused}
    assert rows[parquet_path] == {(n + 1, refused[r]) for n, r in enumerate(ids) if r in refused}
    cli.run("ingest", csv_path, "--db", db)  # the tables a terminal shows

    profile = cli.json("profile", "--db", db)
    assert profile["applications"] == len(accepted)
    cli.run("profile", "--db", db)

    # dedupe: one, on the Parquet copy; its clusters hold exactly the accepted ids
    out = tmp_path / "dedupe"
    summary = cli.json("dedupe", parquet_path, "--out", out, makes=(out,))
    assert summary["accepted"] == len(accepted) and summary["multi_record_identities"] > 20
    assert sorted(pq.read_table(out / "clusters.parquet").column("record_id").to_pylist()) == sorted(accepted)
    assert tables(out / "store.duckdb") >= CORE

    # train on the CSV, and link with that model: the store's first link scores and clusters everything
    model = tmp_path / "model.json"
    cli.run("train", csv_path, "--out", model, makes=(model, tmp_path / "model.work"))
    assert cli.json("link", "--model", model, "--db", db)["records"] == len(accepted)
    cli.run("link", "--db", db)
    assert cli.json("link", "--full", "--db", db)["records"] == len(accepted)

    # history by a hostile record id (after `--`: an id may begin with a dash) and by an identity id:
    # ids, offices and 5,000-character reasons come back exactly
    written = {
        r: (" ".join(o.split()) if isinstance(o, str) else None, w if isinstance(w, str) else None)
        for r, o, w in zip(frame["record_id"], frame["office"], frame["decision_reason"], strict=True)
    }
    keys = [ids[0], ids[1], "O'Brien", "ID-0123456789abcdef", "--", "a\u2028b", "é" * MAX_ID]
    assert set(keys) <= set(accepted)
    for key in keys:
        found = json.loads(cli.run("history", "--db", db, "--json", "--", key))
        assert found["key"] == key and key in {a["record_id"] for a in found["applications"]}
        for application in found["applications"]:
            assert written[application["record_id"]] == (application["office"], application["decision_reason"])
    for key in keys[:2]:
        cli.run("history", "--db", db, "--", key)
    by_identity = json.loads(cli.run("history", "--db", db, "--json", found["identity_id"]))
    assert [a["record_id"] for a in by_identity["applications"]] == [a["record_id"] for a in found["applications"]]
    cli.run("history", "--db", db, found["identity_id"])
    for key in (next(iter(refused)), "nope'); DROP TABLE runs; --"):
        cli.run("history", "--db", db, "--", key, refused=True)

    alerts = cli.json("alerts", "--db", db)
    shown = {a["record_id"] for a in alerts} | {a["refused_record_id"] for a in alerts}
    assert shown <= set(accepted) and len(shown) > 20, "the sample's re-applications after a refusal give alerts"
    for alert in alerts:
        assert written[alert["record_id"]][0] == alert["office"]
        assert written[alert["refused_record_id"]] == (alert["refused_office"], alert["refusal_reason"])
    assert any(len(alert["refusal_reason"] or "") == LONG for alert in alerts)
    cli.run("alerts", "--db", db)
    cli.run("alerts", "--db", db, "--refusal", "x'); DROP TABLE runs; --", refused=True)

    # decisions by a hostile officer for a hostile reason, within the limits; then a link applies them
    a, b, c = accepted[1], accepted[2], accepted[3]
    officer = "O'Brien; DROP TABLE decisions; -- [red]x[/red] $$ \\ % _ {} محمد 🙂 zero\u200bwidth"
    reason = _copy_payload(tmp_path.parent / "pwned-reason.csv") + " [bold]x " + "R" * 800
    made = json.loads(cli.run("decide", "must-link", "--by", officer, "--reason", reason, "--json", "--db", db,
                              "--", a, b))  # fmt: skip
    assert (made["record_id_a"], made["record_id_b"], made["decided_by"], made["reason"]) == (a, b, officer, reason)
    cli.run("decide", "cannot-link", "--by", officer, "--reason", "[red]x[/red] 'a\"b", "--db", db, "--", a, c)
    for by, why, other in (("x\x1b[2J", "r", b), ("x", "r" * 1001, b), ("x", "r", "no'such")):
        cli.run("decide", "must-link", "--by", by, "--reason", why, "--db", db, "--", a, other, refused=True)
    assert cli.json("link", "--db", db)["decisions_applied"] == 2
    decided = json.loads(cli.run("history", "--db", db, "--json", "--", a))
    assert {(d["other_record_id"], d["decided_by"], d["reason"]) for x in decided["applications"]
            for d in x["decisions"]} >= {(b, officer, reason)}  # fmt: skip

    # exports: every accepted id byte for byte (the CSV puts an apostrophe before a formula's first character)
    cli.run("export", "--out", tmp_path / "x.parquet", "--db", db, makes=(tmp_path / "x.parquet",))
    cli.run("export", "--out", tmp_path / "x.csv", "--db", db, makes=(tmp_path / "x.csv",))
    assert pq.read_table(tmp_path / "x.parquet").column("record_id").to_pylist() == sorted(accepted)
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as fh:
        exported = [row["record_id"] for row in csv.DictReader(fh)]
    assert exported == ["'" + r if r.startswith(FORMULA_START) else r for r in sorted(accepted)]

    cli.run("report", "office-shopping", "--out", tmp_path / "r.html", "--db", db, makes=(tmp_path / "r.html",))
    report_csv = tmp_path / "r'); DROP TABLE runs; --.csv"
    cli.run("report", "office-shopping", "--out", report_csv, "--db", db, makes=(report_csv,))
    with report_csv.open(newline="", encoding="utf-8") as fh:  # pandas' reader would stop a value at its NUL
        assert {row["office"] for row in csv.DictReader(fh)} == {office for office, _ in written.values() if office}

    # evaluate: a truth file of the hostile ids (Parquet and CSV), the clusters exported as Parquet and as CSV
    truth = frame[["record_id", "person_id"]]
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), tmp_path / "truth.parquet")
    truth.to_csv(tmp_path / "truth.csv", index=False)
    # ids a CSV reader would take for numbers, in a column of nothing else, stay the ids they are
    truth[truth["record_id"].isin(["007", "1e5"])].to_csv(tmp_path / "numeric.csv", index=False)
    cli.known |= {tmp_path / "truth.parquet", tmp_path / "truth.csv", tmp_path / "numeric.csv"}
    # an id the CSV export wrote behind an apostrophe is not the truth's id
    plain = [r for r in accepted if not r.startswith(FORMULA_START)]
    for truth_file, clusters_file, measured in (
        ("truth.parquet", "x.parquet", accepted),
        ("truth.csv", "x.parquet", accepted),
        ("truth.csv", "x.csv", plain),
        ("numeric.csv", "x.parquet", ["007", "1e5"]),
    ):
        result = cli.json("evaluate", "--truth", truth_file, "--clusters", clusters_file, "--db", db)["metrics"]
        assert result["records"] == len(measured), (truth_file, clusters_file, result)
    cli.run("evaluate", "--truth", "truth.csv", "--clusters", "x.parquet", "--db", db)
    # the dedupe's own clusters and scored pairs, swept over thresholds into files
    sweep = tmp_path / "sweep"
    swept = cli.json("evaluate", "--truth", "truth.csv", "--clusters", out / "clusters.parquet", "--pairs",
                     out / "pairs.parquet", "--applications", parquet_path, "--out", sweep, makes=(sweep,))  # fmt: skip
    assert swept["metrics"]["records"] == len(accepted) and swept["sweep"]
    with Store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM applications") == len(accepted)
