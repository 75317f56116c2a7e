"""The officer service under load: ``POST /v1/match`` latency and throughput over loopback HTTP.

Builds a store from a generated dataset (``linkage dedupe``), adds an officer, starts ``linkage serve`` as
its own process and sends it applicants taken from the dataset's applications (their raw fields, as a
counter would type them): one at a time for latency (p50, p95, p99), then from several client threads at
once for throughput. The server's start (until it answers) is timed too, and its peak memory read from
``/proc``. Issue 13's targets: p95 <= 50 ms and >= 100 queries/s at 1M, start <= 30 s.

    .venv/bin/python benchmarks/service_bench.py --rows 100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dedupe_bench import synthetic  # noqa: E402
from benchmarks.results import write_section  # noqa: E402

FIELDS = ("full_name", "birth_date", "nik", "mother_name", "birth_place", "sex", "phone", "address")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def applicants(data: Path, n: int, seed: int) -> list[dict[str, Any]]:
    import pandas as pd

    frame = pd.read_parquet(data / "applications.parquet").sample(n, random_state=seed)
    out = []
    for _, row in frame.iterrows():
        body = {k: (None if pd.isna(row.get(k)) else str(row[k])) for k in FIELDS}
        if body["full_name"]:
            out.append(body)
    return out


def peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="client threads for the throughput run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import httpx

    data = synthetic(args.rows, args.seed)
    linkage = shutil.which("linkage", path=str(Path(sys.executable).parent)) or "linkage"
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        out = Path(tmp) / "out"
        print(f"dedupe of {args.rows:,} rows into {out} ...", flush=True)
        subprocess.run([linkage, "dedupe", str(data / "applications.parquet"), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        db = out / "store.duckdb"
        token = subprocess.run(
            [linkage, "users", "add", "bench", "--role", "officer", "--db", str(db)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        port = free_port()
        started = time.perf_counter()
        server = subprocess.Popen(
            [linkage, "serve", "--db", str(db), "--port", str(port), "--rate", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                while True:
                    try:
                        if client.get("/openapi.json").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.05)
                start_s = time.perf_counter() - started
                bodies = applicants(data, args.queries, args.seed)
                client.post("/v1/match", json=bodies[0])  # warm
                latencies, found = [], 0
                for body in bodies:
                    t0 = time.perf_counter()
                    answer = client.post("/v1/match", json=body)
                    latencies.append(1000 * (time.perf_counter() - t0))
                    if answer.status_code != 200:
                        raise SystemExit(f"match failed: {answer.status_code} {answer.text[:300]}")
                    found += bool(answer.json()["candidates"])

            def one(body: dict[str, Any]) -> int:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                    return c.post("/v1/match", json=body).status_code

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                statuses = list(pool.map(one, bodies))
            rate = len(bodies) / (time.perf_counter() - t0)
            memory = peak_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    q = statistics.quantiles(latencies, n=100)
    rows = [
        "| store rows | queries | with candidates | p50 ms | p95 ms | p99 ms | queries/s "
        f"({args.clients} clients) | failed | server start s | server peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.rows:,} | {len(latencies):,} | {found:,} | {statistics.median(latencies):.0f} | {q[94]:.0f} | "
        f"{q[98]:.0f} | {rate:.1f} | {sum(s != 200 for s in statuses)} | {start_s:.1f} | {memory:,.0f} |",
    ]
    body = "\n".join(
        [
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. `linkage serve` in its own process,",
            "queried over loopback by httpx with applicants drawn from the dataset's applications (their raw fields).",
            "Latency: one query at a time; throughput: the same queries from several client threads at once.",
            "Issue 13's targets at 1M: p95 <= 50 ms, >= 100 queries/s, start <= 30 s.",
            "",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        command = f"`.venv/bin/python benchmarks/service_bench.py --rows {args.rows} --queries {args.queries}`"
        write_section(f"service-{args.rows}", f"Officer service: POST /v1/match ({args.rows:,} rows)", command, body)
    print(json.dumps({"p50": statistics.median(latencies), "p95": q[94], "rate": rate}))


if __name__ == "__main__":
    main()
