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
import itertools
import json
import math
import os
import platform
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
from benchmarks.results import write_section  # noqa: E402

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


def run(
    rows: int, seed: int, engine: str, memory_limit: str, temp: Path, master: str, spec: Path
) -> dict[str, Any]:
    data = synthetic(rows, seed)
    out = Path(tempfile.mkdtemp(prefix=f"scale-{rows}-", dir=temp.parent))
    config = out.with_suffix(".toml")
    config.write_text(
        f'[store]\nmemory_limit = "{memory_limit}"\ntemp_directory = "{temp}"\n'
        f'[link]\nengine = "{engine}"\n[spark]\nmaster = "{master}"\nscratch = "{out / "spark"}"\n',
        encoding="utf-8",
    )
    command = [str(ROOT / ".venv" / "bin" / "linkage"), "-v", "dedupe", str(data / "applications.parquet"),
               "--out", str(out / "run"), "--config", str(config), "--spec", str(spec), "--json"]  # fmt: skip
    started = time.perf_counter()
    log = FIGURES / f"{engine}-{spec.stem}-{rows}.log"  # the run's log (-v: stages as they start), live
    errors = log.open("w", encoding="utf-8")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    sampler = Sampler(child.pid)
    sampler.start()
    offset = sampler.start_time - started
    stdout, _ = child.communicate()
    errors.close()
    sampler.done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"dedupe of {rows:,} rows failed ({child.returncode}): see {log}")
    summary = json.loads(stdout)
    seconds = summary["seconds"]
    figures: dict[str, Any] = {
        "rows": rows,
        "seed": seed,
        "spec": spec.name,
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
    figures.update(blocking(out / "run" / "store.duckdb", data, spec))
    figures.update(quality(out / "run", data))
    shutil.rmtree(out, ignore_errors=True)
    config.unlink(missing_ok=True)
    return figures


def quality(out: Path, data: Path) -> dict[str, Any]:
    """Pairwise precision, recall and F1 of the identities against the truth, and traceability (a refused
    person's later application elsewhere in the refusal's identity)."""
    import pandas as pd

    from linkage.evaluate import evaluate

    clusters = pd.read_parquet(out / "clusters.parquet", columns=["record_id", "identity_id"])
    truth = pd.read_parquet(data / "truth.parquet")
    columns = ["record_id", "office", "application_date", "decision"]
    raw = pd.read_parquet(data / "applications.parquet", columns=columns)
    m = evaluate(clusters, truth, raw)
    return {"pairwise_precision": round(m.pairwise_precision, 5), "pairwise_recall": round(m.pairwise_recall, 5),
            "pairwise_f1": round(m.pairwise_f1, 5), "traceability": m.traceability}  # fmt: skip


def blocking(store: Path, data: Path, spec: Path) -> dict[str, Any]:
    """Comparisons per blocking rule on the dedupe's own store, as ``blocking_bench.py`` counts them."""
    from benchmarks import blocking_bench as bench
    from linkage.block import key_columns
    from linkage.spec import load_spec

    loaded = load_spec(spec)
    rules = list(loaded.blocking)
    started = time.perf_counter()
    con = bench.connect(store, data / "truth.parquet", spec)
    analysis = bench.analyse(con, rules)
    scored = {"comparisons": analysis.total_comparisons, "blocking_recall": round(analysis.recall, 5)}
    if loaded.max_candidates is not None:  # the pairs scored are the kept ones (one key each), of the candidates
        if any(key_columns(rule) is None for rule in rules):
            raise SystemExit(f"{spec}: caps its candidates and has rules that are not keyed: not counted here")
        con.execute(
            """CREATE TEMP TABLE kept AS WITH k AS (SELECT unique_id, unnest(pair_keys) AS pair_key FROM model_input)
               SELECT DISTINCT a.unique_id AS id_l, b.unique_id AS id_r
               FROM k a JOIN k b ON a.pair_key = b.pair_key AND a.unique_id < b.unique_id"""
        )
        kept, found = con.execute(
            "SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM true_pairs JOIN kept USING (id_l, id_r))"
        ).fetchall()[0]
        scored = {"candidates": scored["comparisons"], "candidates_recall": scored["blocking_recall"],
                  "comparisons": int(kept), "blocking_recall": round(found / analysis.true_pairs, 5)}  # fmt: skip
    con.close()
    return {
        **scored,
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
    parser.add_argument("--spec", type=Path, default=ROOT / "configs" / "model.toml", help="the model spec")
    parser.add_argument("--report", action="store_true", help="only redraw the chart and the RESULTS section")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for rows in args.rows:
            print(f"dedupe of {rows:,} rows on {args.engine} ...", flush=True)
            figures = run(rows, args.seed, args.engine, args.memory_limit, args.temp_directory, args.master, args.spec)
            name = f"{args.engine}-{args.spec.stem}-{rows}.json"
            (FIGURES / name).write_text(json.dumps(figures, indent=1), encoding="utf-8")
            print(json.dumps({k: v for k, v in figures.items() if k != "rules"}, indent=1), flush=True)
    report(args.no_write)


def report(no_write: bool) -> None:
    """The chart and the RESULTS section from every size measured (``benchmarks/data/scale/*.json``)."""
    measured = [json.loads(p.read_text(encoding="utf-8")) for p in FIGURES.glob("*.json")]
    by_spec: dict[str, list[dict[str, Any]]] = {}
    for m in sorted(measured, key=lambda m: m["rows"]):
        if m["engine"] == "duckdb":
            by_spec.setdefault(m.get("spec", "model.toml"), []).append(m)
    if not by_spec:
        return
    longest = max(by_spec.values(), key=lambda runs: (runs[-1]["rows"], len(runs)))
    others = {spec: runs for spec, runs in by_spec.items() if runs is not longest}
    CHART.write_text(chart(longest, others), encoding="utf-8")
    body = "\n".join(section(by_spec, [m for m in measured if m["engine"] == "spark"]))
    print(body)
    if not no_write:
        # "national.toml, uncapped": runs of national.toml from before it had its cap (max_candidates), kept
        # under that name when the capped one was measured
        commands = "; ".join(
            f"`.venv/bin/python benchmarks/scale_bench.py --spec configs/{spec.split(',')[0]} --rows "
            + " ".join(str(m["rows"]) for m in runs) + " --memory-limit 12GB`"
            + (" at commit bca9d45 (national.toml before its cap)" if "uncapped" in spec else "")
            for spec, runs in by_spec.items()
        )  # fmt: skip
        spark = " and `--rows 1000000 --engine spark --master 'local[2]'` for the Spark row" if measured else ""
        write_section("scale", "How cost grows: one dedupe per size, and Spark beside DuckDB",
                      commands + spark, body)  # fmt: skip


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"  # runs from before the figure was measured


def nlogn(n: float) -> float:
    return n * math.log2(n)


def growth(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return float(b[key]) / float(a[key]) if a[key] else math.nan


def section(by_spec: dict[str, list[dict[str, Any]]], on_spark: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}. Generated sets `synthetic-<rows>-7` (`generate.py`). Each size is one "
        "`linkage dedupe` in a child process, end to end (read, normalise, train, score, cluster, publish, "
        "export), the store's memory limit 12GB; peak RSS sums the process and its children (ingest workers, a "
        "Spark JVM), sampled every 0.5 s. Candidates are the pairs the blocking rules make, counted per rule as "
        "`blocking_bench.py` counts them; comparisons are those the model scores: the candidates, or with a "
        "spec's `max_candidates` cap each record's heaviest (`national.toml`: 5). Blocking recall (of the pairs "
        "scored), pairwise F1 and traceability are against the truth. "
        "![How cost grows](scale.svg)"
        + ("" if any(m["rows"] >= 10_000_000 for runs in by_spec.values() for m in runs)
           else " A 10M run did not finish in this setting: docs/scale.md, section 2."),
        "",
        "| spec | rows | candidates | comparisons | per record | blocking recall | pairwise F1 | traceability | "
        "wall s | ingest | prepare | model | score | cluster | publish | export | peak RSS GiB | store GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, runs in by_spec.items():
        for m in runs:
            s = m["seconds"]
            lines.append(
                f"| {spec} | {m['rows']:,} | {m.get('candidates', m['comparisons']):,} | {m['comparisons']:,} | "
                f"{m['comparisons'] / m['rows']:.2f} | "
                f"{m['blocking_recall']:.4f} | {_shown(m.get('pairwise_f1'))} | {_shown(m.get('traceability'))} | "
                f"{m['wall_s']:,.0f} | "
                + " | ".join(f"{s.get(stage, 0):,.0f}" for stage in STAGES)
                + f" | {m['peak_rss_mb'] / 1024:.1f} | {m['store_mb'] / 1024:.2f} |"
            )
    lines += ["", "Peak RSS per stage (GiB):", "", "| spec | rows | " + " | ".join(STAGES) + " |",
              "|---|---|" + "---|" * len(STAGES)]  # fmt: skip
    for spec, runs in by_spec.items():
        for m in runs:
            peaks = m["stage_peak_rss_mb"]
            lines.append(f"| {spec} | {m['rows']:,} | " + " | ".join(f"{peaks.get(x, 0) / 1024:.1f}" for x in STAGES)
                         + " |")  # fmt: skip
    lines += ["", "Growth from one size to the next (n log n grows by the factor in its column):", "",
              "| spec | from | to | records × | n log n × | comparisons × | wall × | peak RSS × |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for spec, runs in by_spec.items():
        for a, b in itertools.pairwise(runs):
            lines.append(
                f"| {spec} | {a['rows']:,} | {b['rows']:,} | {b['rows'] / a['rows']:.1f} | "
                f"{nlogn(b['rows']) / nlogn(a['rows']):.2f} | {growth(a, b, 'comparisons'):.2f} | "
                f"{growth(a, b, 'wall_s'):.2f} | {growth(a, b, 'peak_rss_mb'):.2f} |"
            )
    for spec, runs in by_spec.items():
        lines += rules_table(spec, runs)
    if on_spark:
        lines += ["", "Spark beside DuckDB, the same set and spec, one run each, this machine:", "",
                  "| spec | rows | engine | wall s | model | score | ratio to DuckDB | peak RSS GiB (with the JVM) |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for m in sorted(on_spark, key=lambda m: m["rows"]):
            spec = m.get("spec", "model.toml")
            ref = next((r for r in by_spec.get(spec, []) if r["rows"] == m["rows"]), None)
            for run, name in ((ref, "duckdb"), (m, f"spark {m['master']}")):
                if run is None:
                    continue
                ratio = f"{run['wall_s'] / ref['wall_s']:.2f}" if ref else "-"
                lines.append(
                    f"| {spec} | {run['rows']:,} | {name} | {run['wall_s']:,.0f} | "
                    f"{run['seconds'].get('model', 0):,.0f} | {run['seconds'].get('score', 0):,.0f} | {ratio} | "
                    f"{run['peak_rss_mb'] / 1024:.1f} |"
                )
    return lines


def rules_table(spec: str, embedded: list[dict[str, Any]]) -> list[str]:
    """Each rule's comparisons per size and its growth over the last step: the rules that grow faster than
    n log n marked."""
    if len(embedded) < 2:
        return []
    a, b = embedded[-2], embedded[-1]
    bound = nlogn(b["rows"]) / nlogn(a["rows"])
    heads = " | ".join(f"{m['rows']:,}" for m in embedded)
    what = "candidates (before the cap)" if "candidates" in b else "comparisons"
    lines = ["", f"{spec}: {what} per blocking rule (pairs no earlier rule made), and their growth from "
             f"{a['rows']:,} to {b['rows']:,} records; **bold**: faster than n log n (× {bound:.2f}):", "",
             f"| # | rule | {heads} | × |", "|---|---|" + "---|" * len(embedded) + "---|"]  # fmt: skip
    for i, rule in enumerate(b["rules"]):
        counts = [m["rules"][i]["comparisons"] for m in embedded]
        factor = counts[-1] / counts[-2] if counts[-2] else math.nan
        shown = f"**{factor:.1f}**" if factor > bound else f"{factor:.1f}"
        lines.append(f"| {i} | `{rule['rule']}` | " + " | ".join(f"{c:,}" for c in counts) + f" | {shown} |")
    return lines


def chart(embedded: list[dict[str, Any]], others: dict[str, list[dict[str, Any]]]) -> str:
    """Comparisons, wall time and peak RSS against records, each as a multiple of its value at the smallest
    size, on log-log axes, with n and n log n for reference, and the comparisons of the ``others`` specs
    (each as a multiple of its own at its smallest size): plain SVG, no script."""
    width, height, left, bottom, top, right = 760, 400, 60, 50, 30, 270
    first = embedded[0]
    xs = [m["rows"] for m in embedded]
    spec = first.get("spec", "model.toml")
    series = {
        f"comparisons, {spec}": [(m["rows"], m["comparisons"] / first["comparisons"]) for m in embedded],
        "wall time": [(m["rows"], m["wall_s"] / first["wall_s"]) for m in embedded],
        "peak RSS": [(m["rows"], m["peak_rss_mb"] / first["peak_rss_mb"]) for m in embedded],
        "n (linear)": [(x, x / xs[0]) for x in xs],
        "n log n": [(x, nlogn(x) / nlogn(xs[0])) for x in xs],
    }
    for name, runs in others.items():
        series[f"comparisons, {name}"] = [(m["rows"], m["comparisons"] / runs[0]["comparisons"]) for m in runs]
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#999", "#555", "#9467bd", "#ff7f0e", "#8c564b"]
    colours = dict(zip(series, palette, strict=False))
    y_max = max(y for points in series.values() for _, y in points)
    x_lo, x_hi = math.log10(xs[0]), math.log10(xs[-1]) if len(xs) > 1 else math.log10(xs[0]) + 1
    y_hi = math.log10(max(y_max, 10))

    def px(x: float) -> float:
        return left + (math.log10(x) - x_lo) / (x_hi - x_lo) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - math.log10(max(y, 1e-9)) / y_hi * (height - bottom - top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">', f'<text x="{left}" y="18">Cost at n records, as a multiple of its cost at '
           f'{xs[0]:,} (log-log)</text>']  # fmt: skip
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{py(1):.1f}" x2="{px(x):.1f}" y2="{top}" stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:,}</text>')
    tick = 1.0
    while tick <= 10 ** y_hi * 1.001:
        out.append(f'<line x1="{left}" y1="{py(tick):.1f}" x2="{width - right}" y2="{py(tick):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:g}×</text>')
        tick *= 10
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">records</text>')
    for i, (name, pairs) in enumerate(series.items()):
        dash = ' stroke-dasharray="5,4"' if name in ("n (linear)", "n log n") else ""
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pairs)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colours[name]}" stroke-width="2"{dash}/>')
        for x, y in pairs:
            if not dash:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colours[name]}"/>')
        out.append(f'<line x1="{width - right + 10}" y1="{top + 20 * i + 6}" x2="{width - right + 30}" '
                   f'y2="{top + 20 * i + 6}" stroke="{colours[name]}" stroke-width="2"{dash}/>')  # fmt: skip
        out.append(f'<text x="{width - right + 36}" y="{top + 20 * i + 10}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
