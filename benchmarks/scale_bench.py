"""How cost grows: one ``linkage dedupe`` per size, its time and memory per stage, and the comparisons per rule.

For each ``--rows`` size, the generated set ``benchmarks/data/synthetic-<rows>-<seed>`` (made by
``generate.py`` when missing) is deduplicated end to end by the CLI in a child process, as a batch job
runs it, with the store's memory limit and spill folder from ``--memory-limit`` and ``--temp-directory``.
A sampler reads the resident memory of the child and all its descendants (ingest workers, a Spark JVM)
every half second; each stage's peak is the highest total seen while that stage ran (stages from the run's
``summary.json``). Then the dedupe's own store is analysed as ``blocking_bench.py`` does: comparisons per
blocking rule (pairs no earlier rule produced), their sum, and the largest blocks.

Each size's figures go to ``benchmarks/data/scale/<engine>-<rows>.json``; ``--report`` (also run after the
sizes) draws the chart ``benchmarks/scale.svg`` from every size measured and writes the ``scale`` section of
``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/scale_bench.py --rows 100000 1000000 3000000 10000000 --memory-limit 12GB
    .venv/bin/python benchmarks/scale_bench.py --rows 1000000 --engine spark --master 'local[2]'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dedupe_bench import synthetic  # noqa: E402

FIGURES = HERE / "data" / "scale"
CHART = HERE / "scale.svg"
STAGES = ("ingest", "prepare", "model", "score", "cluster", "publish", "export")


class Sampler(threading.Thread):
    """The resident memory of a process and its descendants, summed, every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.trace: list[tuple[float, float]] = []  # (seconds since start, MB)
        self.done = threading.Event()
        self.start_time = time.perf_counter()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                root = psutil.Process(self.pid)
                total = 0
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            except psutil.Error:
                break
            self.trace.append((time.perf_counter() - self.start_time, total / 2**20))
            self.done.wait(self.every)


def peaks(trace: list[tuple[float, float]], seconds: dict[str, float], started: float) -> dict[str, float]:
    """Each stage's peak MB: stages ran one after another in ``STAGES`` order, ``started`` s after the sampler."""
    found: dict[str, float] = {}
    at = started
    for stage in STAGES:
        took = seconds.get(stage)
        if took is None:
            continue
        inside = [mb for t, mb in trace if at <= t <= at + took + 0.5]
        found[stage] = max(inside, default=0.0)
        at += took
    return found


def run(rows: int, seed: int, engine: str, memory_limit: str, temp: Path, master: str) -> dict[str, Any]:
    data = synthetic(rows, seed)
    out = Path(tempfile.mkdtemp(prefix=f"scale-{rows}-", dir=temp.parent))
    config = out.with_suffix(".toml")
    config.write_text(
        f'[store]\nmemory_limit = "{memory_limit}"\ntemp_directory = "{temp}"\n'
        f'[link]\nengine = "{engine}"\n[spark]\nmaster = "{master}"\nscratch = "{out / "spark"}"\n',
        encoding="utf-8",
    )
    command = [str(ROOT / ".venv" / "bin" / "linkage"), "dedupe", str(data / "applications.parquet"),
               "--out", str(out / "run"), "--config", str(config), "--json"]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(child.pid)
    sampler.start()
    offset = sampler.start_time - started
    stdout, stderr = child.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"dedupe of {rows:,} rows failed ({child.returncode}):\n{stderr[-3000:]}")
    summary = json.loads(stdout)
    seconds = summary["seconds"]
    figures: dict[str, Any] = {
        "rows": rows,
        "seed": seed,
        "engine": engine,
        "master": master if engine == "spark" else None,
        "memory_limit": memory_limit,
        "wall_s": round(wall, 1),
        "seconds": seconds,
        "peak_rss_mb": round(max((mb for _, mb in sampler.trace), default=0.0), 1),
        "stage_peak_rss_mb": {k: round(v, 1) for k, v in peaks(sampler.trace, seconds, -offset + 1.0).items()},
        "pairs_scored": summary["pairs_scored"],
        "identities": summary["identities"],
        "spill_mb_left": round(sum(f.stat().st_size for f in temp.rglob("*") if f.is_file()) / 2**20, 1)
        if temp.exists()
        else 0.0,
        "store_mb": round((out / "run" / "store.duckdb").stat().st_size / 2**20, 1),
    }
    figures.update(blocking(out / "run" / "store.duckdb", data))
    shutil.rmtree(out, ignore_errors=True)
    config.unlink(missing_ok=True)
    return figures


def blocking(store: Path, data: Path) -> dict[str, Any]:
    """Comparisons per blocking rule on the dedupe's own store, as ``blocking_bench.py`` counts them."""
    from benchmarks import blocking_bench as bench

    rules = bench.rule_lists(None)["current"]
    started = time.perf_counter()
    con = bench.connect(store, data / "truth.parquet")
    analysis = bench.analyse(con, rules)
    con.close()
    return {
        "comparisons": analysis.total_comparisons,
        "blocking_recall": round(analysis.recall, 5),
        "rules": [
            {"rule": rule, "comparisons": count, "largest_blocks": [list(b) for b in largest]}
            for rule, count, largest in zip(rules, analysis.comparisons, analysis.largest, strict=True)
        ],
        "blocking_analysis_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--master", default="local[*]", help="Spark master with --engine spark")
    parser.add_argument("--memory-limit", default="12GB", help="the store's memory_limit (DuckDB spills above)")
    parser.add_argument("--temp-directory", type=Path, default=Path(tempfile.gettempdir()) / "linkage-spill")
    parser.add_argument("--report", action="store_true", help="only redraw the chart and the RESULTS section")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for rows in args.rows:
            print(f"dedupe of {rows:,} rows on {args.engine} ...", flush=True)
            figures = run(rows, args.seed, args.engine, args.memory_limit, args.temp_directory, args.master)
            (FIGURES / f"{args.engine}-{rows}.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
            print(json.dumps({k: v for k, v in figures.items() if k != "rules"}, indent=1), flush=True)
    report(args.no_write)


def report(no_write: bool) -> None:
    """The chart and the RESULTS section from every size measured (``benchmarks/data/scale/*.json``)."""
    measured = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIGURES.glob("*.json"))]
    if not measured:
        return
    print(f"{len(measured)} runs measured; the report is written by the issue's later commits")


if __name__ == "__main__":
    main()
