"""Incremental linking: daily batches against one-shot dedupe, a batch into a large store, lookups, alerts.

Two parts, each writing its own section of ``benchmarks/RESULTS.md``:

* ``--batches K`` on ``--rows N`` synthetic applications: the applications in order of application date,
  cut into K batches; each is ingested and linked (``linkage.pipeline.ingest``, ``linkage.engine.link``) into
  one store. The final identities are set against a one-shot ``linkage.dedupe.dedupe`` of the same file
  (pairwise P/R/F1 between the two) and both against the truth. Identity ids are checked from batch to
  batch: a record's id may change only with a ``record_moved`` event of that run. ``linkage.alerts.alerts``
  on the final store is scored against the truth: the share of all re-applications after a refusal at
  another office that were alerted, and the share of alerts that point at another person's refusal.
* ``--store N --new M``: a store of N applications (all but the last M·R, linked in one full run), then R
  batches of M new applications, each linked incrementally (median of the R), then ``link --full`` on the
  same store; and ``--lookups L`` single-record lookups (``linkage.engine.lookup``: candidates from the
  block index, scored with the store's model), p50 and p95.

    .venv/bin/python benchmarks/link_bench.py --rows 100000 --batches 10
    .venv/bin/python benchmarks/link_bench.py --store 1000000 --new 1000 --repeat 3 --lookups 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dedupe_bench import synthetic  # noqa: E402
from benchmarks.results import write_section  # noqa: E402


def _split(data: Path, parts: int, out: Path) -> list[Path]:
    """The applications in order of application date (then record id), cut into ``parts`` files."""
    import pandas as pd

    from linkage.dates import parse_date

    frame = pd.read_parquet(data / "applications.parquet")
    # read as linkage reads it (day first, Indonesian months); an unreadable date goes last
    dates = {raw: parse_date(raw).value for raw in frame["application_date"].dropna().unique()}
    frame = frame.assign(_d=pd.to_datetime(frame["application_date"].map(dates), errors="coerce"))
    frame = frame.sort_values(["_d", "record_id"], kind="stable", na_position="last").drop(columns="_d")
    size = -(-len(frame) // parts)
    paths = []
    for k in range(parts):
        path = out / f"batch-{k:02d}.parquet"
        frame.iloc[k * size : (k + 1) * size].to_parquet(path, index=False)
        paths.append(path)
    return paths


def _membership(db: Path) -> Any:
    from linkage.store import Store

    with Store(db, read_only=True) as store:
        return store.con.execute("SELECT record_id, identity_id FROM membership ORDER BY record_id").df()


def _agreement(a: Any, b: Any) -> dict[str, float]:
    """Pairwise precision, recall and F1 of clustering ``a`` against clustering ``b`` (same records)."""
    joined = a.merge(b, on="record_id", suffixes=("_a", "_b"))

    def pairs(labels: Any) -> int:
        sizes = labels.value_counts()
        return int((sizes * (sizes - 1) // 2).sum())

    both = pairs(joined["identity_id_a"] + "|" + joined["identity_id_b"])
    pa_, pb = pairs(joined["identity_id_a"]), pairs(joined["identity_id_b"])
    p = both / pa_ if pa_ else 1.0
    r = both / pb if pb else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _unexplained_changes(db: Path, before: Any, run_id: str) -> int:
    """Records whose identity id changed in ``run_id`` without a record_moved event of that run."""
    from linkage.store import Store

    after = _membership(db).set_index("record_id")["identity_id"]
    old = before.set_index("record_id")["identity_id"]
    common = old.index.intersection(after.index)
    changed = set(common[(old[common] != after[common]).to_numpy()])
    with Store(db, read_only=True) as store:
        moved = {
            r
            for (r,) in store.rows("SELECT record_id FROM events WHERE run_id = ? AND kind = 'record_moved'", [run_id])
        }
    return len(changed - moved)


def _alert_figures(db: Path, data: Path) -> dict[str, Any]:
    """Alerts against the truth: re-applications after a refusal elsewhere that were alerted, wrong alerts."""
    import pandas as pd

    from linkage.alerts import alerts
    from linkage.store import Store

    truth = pd.read_parquet(data / "truth.parquet")[["record_id", "person_id"]]
    with Store(db, read_only=True) as store:
        apps = store.con.execute(
            "SELECT record_id, office, application_date, decision FROM applications_normalised"
        ).df()
        found = pd.DataFrame(alerts(store))
    apps = apps.merge(truth, on="record_id")
    refused = apps[apps["decision"] == "rejected"].dropna(subset=["office", "application_date"])
    later = apps.dropna(subset=["office", "application_date"])
    true = later.merge(refused, on="person_id", suffixes=("", "_r"))
    true = true[(true["application_date_r"] < true["application_date"]) & (true["office_r"] != true["office"])]
    wanted = set(zip(true["record_id"], true["record_id_r"], strict=True))
    person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    got = set(zip(found["record_id"], found["refused_record_id"], strict=True)) if len(found) else set()
    wrong = sum(person.get(x) != person.get(r) for x, r in got)
    return {
        "re_applications": len(wanted),
        "alerted": len(wanted & got),
        "alerts": len(got),
        "wrong": wrong,
        "alerted_share": len(wanted & got) / len(wanted) if wanted else None,
        "wrong_share": wrong / len(got) if got else None,
    }


def batches(rows: int, parts: int, seed: int, write: bool) -> None:
    import pandas as pd

    from linkage.config import load_config
    from linkage.dedupe import dedupe
    from linkage.engine import link
    from linkage.evaluate import evaluate
    from linkage.pipeline import ingest

    data = synthetic(rows, seed)
    config = load_config(None)
    truth = pd.read_parquet(data / "truth.parquet")
    relatives = pd.read_parquet(data / "relatives.parquet")
    lines = [
        "| batch | records after | linked | candidates | pairs | merged | split | moved | ingest s | link s | "
        "ids changed without an event |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print(*lines, sep="\n", flush=True)
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        work = Path(tmp)
        db = work / "store.duckdb"
        total_link = 0.0
        for k, path in enumerate(_split(data, parts, work)):
            before = _membership(db) if db.exists() else pd.DataFrame({"record_id": [], "identity_id": []})
            t0 = time.perf_counter()
            ingest([path], config, db=db)
            t1 = time.perf_counter()
            s = link(db, config)
            t2 = time.perf_counter()
            total_link += t2 - t1
            unexplained = _unexplained_changes(db, before, s.run_id) if len(before) else 0
            line = (
                f"| {k + 1} | {s.records:,} | {s.linked:,} | {s.candidates:,} | {s.pairs_scored:,} | {s.merged} | "
                f"{s.split} | {s.records_moved} | {t1 - t0:.1f} | {t2 - t1:.1f} | {unexplained} |"
            )
            print(line, flush=True)
            lines.append(line)
        incremental = _membership(db)
        t0 = time.perf_counter()
        dedupe([data / "applications.parquet"], config, work / "oneshot")
        oneshot_s = time.perf_counter() - t0
        oneshot = pd.read_parquet(work / "oneshot" / "clusters.parquet")[["record_id", "identity_id"]]
        agree = _agreement(incremental, oneshot)
        from linkage.measure import applications_from_store
        from linkage.store import Store

        with Store(db, read_only=True) as store:
            applications = applications_from_store(store)
        quality = {
            name: evaluate(frame, truth, applications, relatives)
            for name, frame in (("incremental", incremental), ("one-shot", oneshot))
        }
        figures = _alert_figures(db, data)
    body = [
        f"{rows:,} synthetic applications (seed {seed}) in {parts} batches by application date, each ingested and "
        "linked incrementally into one store (the first link trains the model on the first batch); then a one-shot "
        "`linkage dedupe` of the same file.",
        "",
        *lines,
        "",
        f"Linking time over all batches: {total_link:.1f} s; the one-shot dedupe (ingest included): {oneshot_s:.1f} s.",
        "",
        f"Incremental against one-shot, pairwise: P {agree['precision']:.4f}, R {agree['recall']:.4f}, "
        f"F1 {agree['f1']:.4f}.",
        "",
        "| clusters | pairwise P | pairwise R | pairwise F1 | traceability | false-flag rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in quality.items():
        body.append(
            f"| {name} | {m.pairwise_precision:.4f} | {m.pairwise_recall:.4f} | {m.pairwise_f1:.4f} | "
            f"{m.traceability:.4f} | {100 * (m.false_flag_rate or 0):.2f} % |"
        )
    body += [
        "",
        f"Alerts (`linkage alerts` on the final store) against the truth: {figures['re_applications']:,} "
        f"re-applications after a refusal at another office (application–refusal pairs); "
        f"{figures['alerted']:,} alerted ({100 * (figures['alerted_share'] or 0):.2f} %); "
        f"{figures['alerts']:,} alerts, {figures['wrong']:,} of them pointing at another person's refusal "
        f"({100 * (figures['wrong_share'] or 0):.2f} %).",
    ]
    print("\n".join(body[len(lines) + 2 :]), flush=True)
    if write:
        command = f"`.venv/bin/python benchmarks/link_bench.py --rows {rows} --batches {parts} --seed {seed}`"
        write_section("link-batches", "Link: daily batches against one-shot dedupe", command, "\n".join(body))


def store_bench(rows: int, new: int, repeat: int, lookups: int, seed: int, write: bool) -> None:
    import pandas as pd

    from linkage.config import load_config
    from linkage.engine import link, lookup
    from linkage.pipeline import ingest
    from linkage.store import Store

    data = synthetic(rows, seed)
    config = load_config(None)
    frame = pd.read_parquet(data / "applications.parquet")
    held = new * repeat
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        work = Path(tmp)
        db = work / "store.duckdb"
        base = work / "base.parquet"
        frame.iloc[: len(frame) - held].to_parquet(base, index=False)
        t0 = time.perf_counter()
        ingest([base], config, db=db)
        t1 = time.perf_counter()
        link(db, config)
        t2 = time.perf_counter()
        print(f"base: {len(frame) - held:,} ingested in {t1 - t0:.1f} s, linked (full, trained) in {t2 - t1:.1f} s",
              flush=True)  # fmt: skip
        times, runs = [], []
        for k in range(repeat):
            path = work / f"new-{k}.parquet"
            frame.iloc[len(frame) - held + k * new : len(frame) - held + (k + 1) * new].to_parquet(path, index=False)
            ingest([path], config, db=db)
            t0 = time.perf_counter()
            s = link(db, config)
            times.append(time.perf_counter() - t0)
            runs.append(s)
            print(f"batch {k + 1}: {new:,} new linked in {times[-1]:.2f} s {json.dumps(s.seconds)}", flush=True)
        t0 = time.perf_counter()
        full = link(db, config, full=True)
        full_s = time.perf_counter() - t0
        print(f"full re-run: {full_s:.1f} s {json.dumps(full.seconds)}", flush=True)
        lookup_times, steps = [], []
        with Store(db) as store:
            ids = [
                r for (r,) in store.rows(f"SELECT record_id FROM membership USING SAMPLE {lookups} ROWS (reservoir, 7)")
            ]
            for record_id in ids:
                t0 = time.perf_counter()
                _, seconds = lookup(store, record_id)
                lookup_times.append(time.perf_counter() - t0)
                steps.append(seconds)
    median = statistics.median(times)
    q = statistics.quantiles(lookup_times, n=20) if len(lookup_times) > 1 else lookup_times * 19
    step_medians = {k: statistics.median(s[k] for s in steps) for k in steps[0]} if steps else {}
    body = [
        f"A store of {rows:,} synthetic applications (seed {seed}): all but the last {held:,} ingested and linked in "
        "one "
        f"full run ({t2 - t1:.1f} s, model trained), then {repeat} batches of {new:,} new applications, each ingested "
        "and linked incrementally, then `link --full` on the same store (the stored model, everything scored and "
        "clustered again, ids carried over).",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| link {new:,} new (batch {k + 1}) | {t:.2f} |" for k, t in enumerate(times)),
        f"| link {new:,} new, median of {repeat} | **{median:.2f}** |",
        f"| link --full on the same store | {full_s:.1f} |",
        "",
        "Stages of the median batch (s): "
        + ", ".join(
            f"{k} {v}" for k, v in runs[times.index(min(times, key=lambda t: abs(t - median)))].seconds.items()
        ),
        "",
        f"Single-record lookup (`linkage.engine.lookup`, {len(lookup_times)} stored records scored as if new): "
        f"p50 {1000 * statistics.median(lookup_times):.0f} ms, p95 {1000 * q[18]:.0f} ms; median per step (ms): "
        + ", ".join(f"{k} {1000 * v:.0f}" for k, v in step_medians.items()),
    ]
    print("\n".join(body), flush=True)
    if write:
        command = (
            f"`.venv/bin/python benchmarks/link_bench.py --store {rows} --new {new} --repeat {repeat} "
            f"--lookups {lookups} --seed {seed}`"
        )
        write_section(
            "link-store", f"Link: {new:,} new applications into a store of {rows:,}", command, "\n".join(body)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=0, help="run the daily-batch comparison with this many batches")
    parser.add_argument("--store", type=int, default=0, help="run the large-store benchmark with this many records")
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if not args.batches and not args.store:
        parser.error("give --batches K and/or --store N")
    if args.batches:
        batches(args.rows, args.batches, args.seed, not args.no_write)
    if args.store:
        store_bench(args.store, args.new, args.repeat, args.lookups, args.seed, not args.no_write)


if __name__ == "__main__":
    main()
