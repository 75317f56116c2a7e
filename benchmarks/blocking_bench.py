"""Blocking: comparisons, recall of true pairs and the largest blocks, per rule and cumulatively.

For each synthetic dataset (cached by ``dedupe_bench.synthetic``) the applications are ingested into a
store (a temporary one, or kept under ``--store DIR`` and reused), and the model input is built from it
in memory by :func:`linkage.prepare.prepare_full`. Then, for the current rules (``blocking`` in
``configs/model.toml``) and, with ``--spec``, a proposed list (any TOML with a ``blocking`` list):

* comparisons per rule, counting only pairs that no earlier rule produced, and cumulatively: Splink's
  ``count_comparisons_from_blocking_rules`` with ``record_sample_proportion=1.0`` (exact counts);
* true pairs (two records with the same ``person_id`` in the truth) that each rule keeps, in the same
  first-rule-wins order, computed in DuckDB on the true pairs alone, and the blocking recall so far;
* recall on the pairs a model could link (they share identity evidence besides the name: NIK within one
  edit, birth date within the dob comparison's levels, mother, phone or prior passport) and on the pairs
  that share no such evidence, and the missed pairs grouped by what they do share;
* each rule's largest blocks (Splink's ``n_largest_blocks``, before filter conditions): sizes only, never
  the key values, which are names and dates of birth;
* the wall time of the analysis (comparisons, recall and largest blocks; not ingest or model input).

Results are printed and written to the ``blocking`` section of ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/blocking_bench.py --rows 100000 1000000 --spec benchmarks/blocking_proposed.toml
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dedupe_bench import synthetic  # noqa: E402
from benchmarks.results import write_section  # noqa: E402

# What a true pair can share besides its name. The strong facts are identity evidence that the model
# weighs heavily (the non-null, non-else levels of its nik, dob, mother, phone and prior-passport
# comparisons, except the NIK's "same region and date, other serial", which counts against a match). A
# pair with none of them has at most a name, a birth place and a village in common (in the synthetic data
# mostly a "sparse" record that has only a name), and a model can link it on the name alone or not at all.
STRONG: dict[str, str] = {
    "NIK": "damerau_levenshtein(l.nik_digits, r.nik_digits) <= 1",
    "dob": (
        "l.dob = r.dob"
        " OR (day(l.dob) = month(r.dob) AND month(l.dob) = day(r.dob) AND year(l.dob) = year(r.dob))"
        " OR (day(l.dob) = day(r.dob) AND month(l.dob) = month(r.dob) AND abs(year(l.dob) - year(r.dob)) = 1)"
        " OR levenshtein(l.dob_text, r.dob_text) = 1"
    ),
    "mother": (
        "l.mother_key = r.mother_key OR l.mother_set = r.mother_set"
        " OR jaro_winkler_similarity(l.mother_key, r.mother_key) >= 0.9"
    ),
    "phone": "l.phone = r.phone",
    "prior passport": "l.prior_passport_no = r.prior_passport_no",
}
WEAK: dict[str, str] = {
    "birth place": "l.birth_place = r.birth_place",
    "village": "l.address_village = r.address_village",
}
NAME_LEVEL = """CASE
    WHEN l.name_key = r.name_key OR l.name_set = r.name_set THEN 'name same'
    WHEN list_has_any(l.name_keys, r.name_keys) THEN 'name shares a token'
    WHEN jaro_winkler_similarity(l.name_key, r.name_key) >= 0.85 THEN 'name similar'
    ELSE 'name differs' END"""


@dataclass
class Analysis:
    """One rule list on one dataset."""

    rules: list[str]
    records: int
    true_pairs: int
    comparisons: list[int] = field(default_factory=list)  # marginal, per rule
    kept: list[int] = field(default_factory=list)  # true pairs first kept by each rule
    linkable: tuple[int, int] = (0, 0)  # (kept, all) of true pairs sharing strong evidence
    name_only: tuple[int, int] = (0, 0)  # (kept, all) of the rest
    missed_by_shared: list[tuple[str, int]] = field(default_factory=list)
    # per rule, its largest blocks as (records with the left key, records with the right key): equal for
    # a symmetric rule such as l.dob = r.dob, not for l.bare_name_key = r.name_key
    largest: list[list[tuple[int, int]]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_comparisons(self) -> int:
        return sum(self.comparisons)

    @property
    def recall(self) -> float:
        return sum(self.kept) / self.true_pairs if self.true_pairs else 1.0


# --------------------------------------------------------------------------------------------- inputs


def store_for(data: Path, store: Path) -> Path:
    """Ingest ``data`` into ``store`` unless it already holds the normalised applications."""
    if store.exists():
        with duckdb.connect(str(store), read_only=True) as con:
            if con.execute("SELECT count(*) FROM applications_normalised").fetchall()[0][0] > 0:
                return store
    from linkage.config import load_config
    from linkage.pipeline import ingest

    print(f"ingesting {data.name} into {store} ...", flush=True)
    ingest([data / "applications.parquet"], load_config(None), db=store)
    return store


def connect(store: Path, truth: Path, spec: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the model input of ``store`` and the true pairs of ``truth``.

    The store is attached read-only, so a reused store is never changed by an analysis. The model input is
    the same whatever the rules analysed (given later), except that a ``spec`` that caps its candidates adds
    the kept pairs' keys (``pair_keys``, :func:`linkage.prepare.cap_candidates`).
    """
    from linkage.prepare import prepare_full
    from linkage.spec import load_spec
    from linkage.store import Store

    con = duckdb.connect()
    con.execute(f"ATTACH '{store}' AS store (READ_ONLY)")
    con.execute("CREATE VIEW applications_normalised AS SELECT * FROM store.applications_normalised")
    prepare_full(Store.on(con), load_spec(spec))
    # Pairs of Splink's ids (unique_id), oriented as Splink orients them in a dedupe (l.unique_id <
    # r.unique_id), both records present.
    con.execute(
        f"""CREATE TABLE true_pairs AS
        WITH t AS (SELECT m.unique_id, p.person_id FROM read_parquet('{truth}') AS p
                   JOIN model_input AS m USING (record_id))
        SELECT a.unique_id AS id_l, b.unique_id AS id_r
        FROM t a JOIN t b ON a.person_id = b.person_id AND a.unique_id < b.unique_id"""
    )
    shared = {**STRONG, **WEAK}
    flags = ",\n".join(f'coalesce({sql}, false) AS "{name}"' for name, sql in shared.items())
    con.execute(
        f"""CREATE TABLE true_pair_facts AS
        SELECT t.id_l, t.id_r, {NAME_LEVEL} AS name_level, {flags}
        FROM true_pairs t JOIN model_input l ON l.unique_id = t.id_l JOIN model_input r ON r.unique_id = t.id_r"""
    )
    return con


# ------------------------------------------------------------------------------------------- analysis


def first_rule(rules: list[str]) -> str:
    """SQL for the index of the first rule that holds for a pair (NULL: no rule), as Splink's match_key."""
    whens = " ".join(f"WHEN coalesce(({rule}), false) THEN {i}" for i, rule in enumerate(rules))
    return f"CASE {whens} END"


def analyse(con: duckdb.DuckDBPyConnection, rules: list[str], n_largest: int = 5) -> Analysis:
    """Comparisons (Splink, exact), true pairs kept, recall by evidence and largest blocks of ``rules``."""
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules, n_largest_blocks

    records = con.execute("SELECT count(*) FROM model_input").fetchall()[0][0]
    true_pairs = con.execute("SELECT count(*) FROM true_pairs").fetchall()[0][0]
    result = Analysis(rules=list(rules), records=records, true_pairs=true_pairs)
    sdf = DuckDBAPI(con).register("model_input")

    # Splink's first call in a process builds its SQL machinery (seconds); a call that finds no pairs
    # takes that out of the timing, so rule lists are timed alike whichever runs first.
    count_comparisons_from_blocking_rules(
        sdf, blocking_rules=["l.unique_id = r.unique_id"], link_type="dedupe_only", record_sample_proportion=1.0
    )
    t0 = time.perf_counter()
    counts = count_comparisons_from_blocking_rules(
        sdf, blocking_rules=list(rules), link_type="dedupe_only", record_sample_proportion=1.0
    )
    result.comparisons = [int(c["marginal_comparison_count"]) for c in sorted(counts, key=lambda c: c["match_key"])]
    t1 = time.perf_counter()

    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE true_pair_keys AS
        SELECT t.id_l, t.id_r, {first_rule(rules)} AS match_key
        FROM true_pairs t JOIN model_input l ON l.unique_id = t.id_l JOIN model_input r ON r.unique_id = t.id_r"""
    )
    by_key = dict(
        con.execute("SELECT match_key, count(*) FROM true_pair_keys WHERE match_key IS NOT NULL GROUP BY 1").fetchall()
    )
    result.kept = [int(by_key.get(i, 0)) for i in range(len(rules))]
    strong = " OR ".join(f'f."{name}"' for name in STRONG)
    rows = con.execute(
        f"""SELECT ({strong}) AS linkable, count(*) FILTER (WHERE k.match_key IS NOT NULL), count(*)
        FROM true_pair_keys k JOIN true_pair_facts f USING (id_l, id_r) GROUP BY 1"""
    ).fetchall()
    groups = {bool(linkable): (int(kept), int(total)) for linkable, kept, total in rows}
    result.linkable = groups.get(True, (0, 0))
    result.name_only = groups.get(False, (0, 0))
    shared = [*STRONG, *WEAK]
    listed = ", ".join(f"CASE WHEN f.\"{name}\" THEN '{name}' END" for name in shared)
    result.missed_by_shared = [
        (str(what), int(n))
        for what, n in con.execute(
            f"""SELECT concat_ws(' + ', f.name_level, {listed}) AS what, count(*) AS n
            FROM true_pair_keys k JOIN true_pair_facts f USING (id_l, id_r)
            WHERE k.match_key IS NULL GROUP BY 1 ORDER BY n DESC, what"""
        ).fetchall()
    ]
    t2 = time.perf_counter()

    for rule in rules:
        blocks = n_largest_blocks(sdf, blocking_rule=rule, link_type="dedupe_only", n_largest=n_largest)
        sizes = blocks.as_duckdbpyrelation().select("count_l, count_r").fetchall()
        result.largest.append([(int(n_l), int(n_r)) for n_l, n_r in sizes])
    t3 = time.perf_counter()
    result.seconds = {"comparisons": t1 - t0, "recall": t2 - t1, "largest blocks": t3 - t2, "total": t3 - t0}
    return result


def brute_force(con: duckdb.DuckDBPyConnection, rules: list[str]) -> tuple[int, int]:
    """(comparisons, true pairs kept) by a full cross join: the check on :func:`analyse` for small data."""
    any_rule = " OR ".join(f"coalesce(({rule}), false)" for rule in rules)
    comparisons, kept = con.execute(
        f"""SELECT count(*), count(t.id_l)
        FROM model_input l JOIN model_input r ON l.unique_id < r.unique_id
        LEFT JOIN true_pairs t ON t.id_l = l.unique_id AND t.id_r = r.unique_id
        WHERE {any_rule}"""
    ).fetchall()[0]
    return int(comparisons), int(kept)


# --------------------------------------------------------------------------------------------- report


def pct(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "n/a"


def report(label: str, name: str, a: Analysis, missed_rows: int = 8) -> list[str]:
    lines = [
        f"#### {label}: {name} rules",
        "",
        f"{a.records:,} records, {a.true_pairs:,} true pairs. Largest blocks: records sharing the rule's keys in "
        "its 5 largest blocks, before filter conditions and before removing pairs of earlier rules.",
        "",
        "| # | rule | comparisons | cumulative | true pairs kept | recall so far | largest blocks (records) |",
        "|---|---|---|---|---|---|---|",
    ]
    cumulative = kept = 0
    for i, rule in enumerate(a.rules):
        cumulative += a.comparisons[i]
        kept += a.kept[i]
        sizes = ", ".join(f"{n_l:,}" if n_l == n_r else f"{n_l:,}×{n_r:,}" for n_l, n_r in a.largest[i])
        lines.append(
            f"| {i} | `{rule}` | {a.comparisons[i]:,} | {cumulative:,} | {a.kept[i]:,} | "
            f"{pct(kept, a.true_pairs)} | {sizes} |"
        )
    missed = a.true_pairs - sum(a.kept)
    lines += [
        "",
        f"Total: **{a.total_comparisons:,} comparisons, blocking recall {a.recall:.4f}** "
        f"({missed:,} true pairs missed). "
        f"Pairs sharing identity evidence besides the name ({', '.join(STRONG)}): recall "
        f"{pct(*a.linkable)} ({a.linkable[1] - a.linkable[0]:,} of {a.linkable[1]:,} missed); pairs sharing "
        f"none of it: recall {pct(*a.name_only)} ({a.name_only[1] - a.name_only[0]:,} of {a.name_only[1]:,} missed). "
        f"Analysis {a.seconds['total']:.1f} s (comparisons {a.seconds['comparisons']:.1f}, recall "
        f"{a.seconds['recall']:.1f}, largest blocks {a.seconds['largest blocks']:.1f}).",
    ]
    if a.missed_by_shared:
        lines += ["", "Missed true pairs by what they share:", "", "| shared | pairs |", "|---|---|"]
        lines += [f"| {what} | {n:,} |" for what, n in a.missed_by_shared[:missed_rows]]
        rest = sum(n for _, n in a.missed_by_shared[missed_rows:])
        if rest:
            lines.append(f"| (other combinations) | {rest:,} |")
    return [*lines, ""]


def block_pairs(n_l: int, n_r: int) -> int:
    """Pairs in a block: n(n-1)/2 when both sides are the same records, else (an asymmetric rule) n_l × n_r."""
    return n_l * (n_l - 1) // 2 if n_l == n_r else n_l * n_r


def summary_row(label: str, name: str, a: Analysis) -> str:
    biggest = max((block_pairs(n_l, n_r) for sizes in a.largest for n_l, n_r in sizes), default=0)
    return (
        f"| {label} | {name} | {len(a.rules)} | {a.total_comparisons:,} | {a.recall:.4f} | {pct(*a.linkable)} | "
        f"{pct(*a.name_only)} | {biggest:,} | {a.seconds['total']:.1f} |"
    )


def rule_lists(spec: Path | None) -> dict[str, list[str]]:
    from linkage.config import read_toml
    from linkage.spec import load_spec

    lists = {"current": list(load_spec(None).blocking)}
    if spec is not None:
        data = read_toml(spec, "blocking rules")
        if not isinstance(data.get("blocking"), list):
            raise SystemExit(f"{spec}: no `blocking` list")
        lists["proposed"] = [str(rule) for rule in data["blocking"]]
    return lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spec", type=Path, help="TOML with a `blocking` list to measure as `proposed`")
    parser.add_argument("--store", type=Path, help="keep and reuse stores in this folder (default: temporary)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    lists = rule_lists(args.spec)
    summary = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. Exact counts (Splink's "
        "`count_comparisons_from_blocking_rules`, `record_sample_proportion=1.0`); true pairs are pairs of",
        "records of one person in the truth. Recall (linkable) is on true pairs sharing identity evidence besides",
        f"the name ({', '.join(STRONG)}); recall (name only) on the rest. Largest block: pairs in the largest",
        "block of any rule (before filters). Analysis s: comparisons, recall and largest blocks (not ingest or",
        "model input).",
        "",
        "| dataset | rules | n rules | comparisons | blocking recall | recall (linkable) | recall (name only) | "
        "largest block (pairs) | analysis s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = args.store or Path(tmp)
        for rows in args.rows:
            data = synthetic(rows, args.seed)
            label = f"synthetic {rows:,}"
            store = store_for(data, stores / f"{data.name}.duckdb")
            t0 = time.perf_counter()
            con = connect(store, data / "truth.parquet")
            print(f"{label}: model input and true pairs in {time.perf_counter() - t0:.1f} s", flush=True)
            for name, rules in lists.items():
                a = analyse(con, rules)
                details += report(label, name, a)
                summary.append(summary_row(label, name, a))
                print("\n".join(report(label, name, a)), flush=True)
            con.close()
    print("\n".join(summary), flush=True)
    command = "`.venv/bin/python benchmarks/blocking_bench.py --rows " + " ".join(map(str, args.rows))
    command += f" --seed {args.seed}" + (f" --spec {args.spec}" if args.spec else "") + "`"
    if not args.no_write:
        write_section(
            "blocking",
            "Blocking: comparisons, recall of true pairs, largest blocks",
            command,
            "\n".join([*summary, "", *details]),
        )


if __name__ == "__main__":
    main()
