"""Calibration of a dedupe's match probabilities against the generator's truth, at each size.

    .venv/bin/linkage dedupe benchmarks/data/synthetic-1000000-7/applications.parquet --out OUT \
        --spec configs/national.toml
    .venv/bin/python benchmarks/calibration.py OUT benchmarks/data/synthetic-1000000-7 [OUT2 DATA2 ...]

For each (dedupe output, generated set): the scored pairs kept at the review floor (``pairs.parquet``), per
band of match probability, with the share that are one person; and at each threshold the pairs at or above
it, their precision and their recall of all true pairs. A calibrated model makes about p of its pairs at
probability p true; precision that falls with the size of the set while the model is calibrated is the
threshold's doing, and while it is not, the model's.

It also counts the false pairs that share one NIK (``gamma_nik`` 5, the NIK comparison's level "exact" in
``configs/model.toml``) between persons of two generator chunks (the chunk is the person id's first five digits)
(``benchmarks/generate.py`` keeps a NIK unique only within its chunk of 50,000 rows, so different people get
one NIK across chunks, about as often as the square of the rows; real serials are a sequence per region and
date, and two people share a NIK only by a documented fault, which the generator makes on purpose within a
chunk). Precision without them is the model's on data without that artefact. Figures go to the section
``calibration`` of ``benchmarks/RESULTS.md`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402

BANDS = ((0.01, 0.1), (0.1, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 0.999), (0.999, 1.01))
THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)


def measure(out: Path, data: Path) -> list[str]:
    """The band and threshold tables of one dedupe output against its truth, as markdown lines."""
    con = duckdb.connect()
    con.execute("SET memory_limit = '8GB'")
    con.execute(
        """CREATE TEMP TABLE scored AS
           SELECT p.match_probability AS p, tl.person_id = tr.person_id AS same,
                  tl.person_id <> tr.person_id AND p.gamma_nik = 5
                      AND substr(tl.person_id, 2, 5) <> substr(tr.person_id, 2, 5) AS collision
           FROM read_parquet($pairs) p
           JOIN read_parquet($truth) tl ON tl.record_id = p.record_id_l
           JOIN read_parquet($truth) tr ON tr.record_id = p.record_id_r""",
        {"pairs": str(out / "pairs.parquet"), "truth": str(data / "truth.parquet")},
    )
    true_pairs = con.execute(
        "SELECT sum(n * (n - 1) // 2) FROM (SELECT count(*) AS n FROM read_parquet($truth) GROUP BY person_id)",
        {"truth": str(data / "truth.parquet")},
    ).fetchone()
    total = int(true_pairs[0]) if true_pairs else 0
    truth = {"truth": str(data / "truth.parquet")}
    records = con.execute("SELECT count(*) FROM read_parquet($truth)", truth).fetchone()
    count = int(records[0]) if records else 0
    lines = [
        f"**{data.name}** ({count:,} records, {total:,} true pairs; pairs from `{out.name}`)",
        "",
        "| probability | pairs | one person | share | false: one NIK across generator chunks |",
        "|---|---|---|---|---|",
    ]
    for lo, hi in BANDS:
        n, same, collisions = con.execute(
            "SELECT count(*), coalesce(sum(same::INT), 0), coalesce(sum(collision::INT), 0) FROM scored "
            "WHERE p >= $lo AND p < $hi",
            {"lo": lo, "hi": hi},
        ).fetchone() or (0, 0, 0)
        lines.append(f"| {lo}-{min(hi, 1.0)} | {n:,} | {same:,} | {same / n if n else 0:.4f} | {collisions:,} |")
    lines += [
        "",
        "| threshold | pairs at or above | precision | recall of true pairs | precision without the collisions |",
        "|---|---|---|---|---|",
    ]
    for cut in THRESHOLDS:
        n, same, collisions = con.execute(
            "SELECT count(*), coalesce(sum(same::INT), 0), coalesce(sum(collision::INT), 0) FROM scored "
            "WHERE p >= $cut",
            {"cut": cut},
        ).fetchone() or (0, 0, 0)
        clean = same / (n - collisions) if n > collisions else 0.0
        precision, recall = same / n if n else 0.0, same / total if total else 0.0
        lines.append(f"| {cut} | {n:,} | {precision:.4f} | {recall:.4f} | {clean:.4f} |")
    con.close()
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pairs of: a dedupe's --out folder, its generated set")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if len(args.runs) % 2:
        parser.error("give the runs in pairs: OUT DATA [OUT DATA ...]")
    for path in args.runs:
        if not path.is_dir():
            parser.error(f"{path}: not a folder")
    body: list[str] = []
    for out, data in zip(args.runs[::2], args.runs[1::2], strict=True):
        for name, folder in (("pairs.parquet", out), ("truth.parquet", data)):
            if not (folder / name).is_file():
                parser.error(f"{folder / name}: missing")
        body += measure(out, data)
    print("\n".join(body))
    if not args.no_write:
        command = "`.venv/bin/python benchmarks/calibration.py " + " ".join(
            f"OUT{i} {data}" for i, data in enumerate(args.runs[1::2], 1)
        ) + "`, each OUT a `linkage dedupe DATA/applications.parquet --spec configs/national.toml` output"
        write_section("calibration", "Calibration of match probabilities at size", command, "\n".join(body))


if __name__ == "__main__":
    main()
