"""Precision, recall and F1 of the store's clusters estimated from labelled sample pairs, with 95 % intervals.

The estimand is the pairwise precision, recall and F1 of the identities over every pair of stored records, as
:mod:`linkage.evaluate` measures them against a full truth. The labels are those of a sample drawn by
:mod:`linkage.sample` (a stratified simple random sample; its strata and sizes stored with it), each pair's
standing label (:func:`linkage.labels.standing`; ``unsure`` and disputed pairs count as not labelled).

**Point estimates.** Within each stratum *h* the labelled pairs are split by the side of the threshold they
fall on (in one cluster or not: a *cell*); a cell's match rate is estimated by its labelled pairs' share of
matches, and its matches as that rate times the cell's size, which is known for every pair the store holds
(post-stratification). True positives are the matches of the cells inside clusters, false negatives those
outside; the predicted pairs are counted exactly. Precision = TP / predicted, recall = TP / (TP + FN), F1 their
harmonic mean.

**Intervals.** Each cell's rate is drawn 4,000 times from its Jeffreys posterior, Beta(k + 1/2, n - k + 1/2),
a cell without labels taking its stratum's; each draw gives a precision, recall and F1, and the interval is
their 2.5th to 97.5th percentiles. Jeffreys' prior keeps an interval open where every labelled pair agreed
(100 matches of 100 do not prove a precision of 1).

**Assumptions, stated in every answer.** Pairs that no broader rule produces (:data:`linkage.sample.BROADER`),
and those the model scores below the review floor that blocking never produced (``outside:check``), are taken
for non-matches: the labels of the ``outside:check`` slice are reported as a check of it. At a threshold other
than the run's, clusters are the connected components of the stored pairs at or above it (as the threshold
sweep makes them; no guard, no decision), and pairs joined only through others take ``linked:indirect``'s rate.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.errors import InputError
from linkage.graph import component_labels
from linkage.history import LATEST_PAIR
from linkage.labels import standing
from linkage.sample import ESTIMATED, LINKED_STRATUM, STRATA, UNLINKED_STRATUM
from linkage.store import Store

__all__ = ["DRAWS", "Estimate", "Interval", "estimate"]

log = logging.getLogger(__name__)

DRAWS: Final = 4000
MAX_PREDICTED_PAIRS: Final = 20_000_000
"""Pairs inside clusters at a threshold other than the run's are enumerated; past this, the threshold is refused."""


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class StratumCount:
    stratum: str
    population: int
    drawn: int
    labelled: int
    matches: int
    predicted: int
    """the stratum's pairs inside a cluster at the threshold"""


@dataclass(frozen=True)
class Estimate:
    """The estimates of one sample's labels at one threshold (``--json`` gives :meth:`to_dict`)."""

    threshold: float
    sample_id: str
    labels: int
    """labelled pairs that count (match or non-match)"""
    unsure: int
    disputed: int
    pairwise_precision: Interval
    pairwise_recall: Interval
    pairwise_f1: Interval
    predicted_pairs: int
    false_alerts: Interval | None
    """the share of linked office-shopping alerts whose two applications are not one person (run threshold only)"""
    check_labelled: int
    check_matches: int
    strata: tuple[StratumCount, ...]
    stale: bool
    """the store was linked again after the sample was drawn"""
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    store: Store, *, threshold: float | None = None, sample_id: str | None = None, draws: int = DRAWS, seed: int = 0
) -> Estimate:
    """Estimate pairwise precision, recall and F1 of the clusters at ``threshold`` from the labels of a sample.

    Args:
        store: the store with a sample and its labels.
        threshold: the threshold to cluster at; None: the store's identities as its latest run made them.
        sample_id: the sample (default: the latest).
        draws: posterior draws for the intervals.
        seed: the draws' seed.

    Raises:
        InputError: no sample, no labelled pair in it, an unknown sample, a threshold outside (0, 1), or one
            that puts more than :data:`MAX_PREDICTED_PAIRS` pairs inside clusters.
    """
    design = _design(store, sample_id)
    sample_id, run_id, run_threshold = design["sample_id"], design["run_id"], design["threshold"]
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(f"a threshold is a probability strictly between 0 and 1, not {threshold!r}")
    labelled = _labelled(store, sample_id)
    usable = labelled[labelled["label"].isin(["match", "non-match"])]
    if usable.empty:
        raise InputError(
            f"sample {sample_id} has no pair labelled match or non-match yet: fill its CSV and "
            "`linkage review import FILE --by NAME`"
        )
    sizes = dict.fromkeys(STRATA, 0) | {s["name"]: int(s["population"]) for s in design["strata"]}
    drawn = dict.fromkeys(STRATA, 0) | {s["name"]: int(s["drawn"]) for s in design["strata"]}
    if threshold is None:
        inside, transitive = _run_sides(labelled), 0
        predicted = {h: sizes[h] if h.startswith("linked:") else 0 for h in STRATA}
    else:
        predicted, transitive, inside = _threshold_sides(store, labelled, threshold, run_threshold, sizes)
    usable = labelled.assign(inside=inside)[labelled["label"].isin(["match", "non-match"])]
    rng = np.random.default_rng(seed)
    tp = np.zeros(draws + 1)  # column 0: the point estimate; the rest, draws
    fn = np.zeros(draws + 1)
    counts = []
    indirect = None
    for h in ESTIMATED:
        mine = usable[usable["stratum"] == h]
        k, m = int((mine["label"] == "match").sum()), len(mine)
        whole = _rates(k, m, rng, draws, fallback=None)
        if h == "linked:indirect":
            indirect = whole
        for side, size in ((True, predicted[h]), (False, sizes[h] - predicted[h])):
            if not size:
                continue
            cell = mine[mine["inside"] == side]
            kc, mc = int((cell["label"] == "match").sum()), len(cell)
            rate = _rates(kc, mc, rng, draws, fallback=whole)
            (tp if side else fn)[:] += size * rate
        counts.append(StratumCount(h, sizes[h], drawn.get(h, 0), m, k, predicted[h]))
    check = labelled[(labelled["stratum"] == "outside:check") & labelled["label"].isin(["match", "non-match"])]
    counts.append(StratumCount("outside:check", sizes.get("outside:check", 0), drawn.get("outside:check", 0),
                               len(check), int((check["label"] == "match").sum()), 0))  # fmt: skip
    if transitive:
        assert indirect is not None
        tp += transitive * indirect
    total_predicted = sum(predicted[h] for h in ESTIMATED) + transitive
    precision = np.divide(tp, total_predicted) if total_predicted else np.ones_like(tp)
    truth = tp + fn
    recall = np.divide(tp, truth, out=np.ones_like(tp), where=truth > 0)
    f1 = np.divide(2 * tp, total_predicted + truth, out=np.ones_like(tp), where=(total_predicted + truth) > 0)
    alerts = _false_alerts(store, usable, run_threshold, rng, draws) if threshold is None else None
    latest = store.rows(
        "SELECT run_id FROM runs WHERE kind = 'link' AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1",
        table="runs",
    )
    return Estimate(
        threshold=run_threshold if threshold is None else threshold,
        sample_id=sample_id,
        labels=len(usable),
        unsure=int((labelled["label"] == "unsure").sum()),
        disputed=int((labelled["label"] == "disputed").sum()),
        pairwise_precision=_interval(precision),
        pairwise_recall=_interval(recall),
        pairwise_f1=_interval(f1),
        predicted_pairs=int(total_predicted),
        false_alerts=alerts,
        check_labelled=len(check),
        check_matches=int((check["label"] == "match").sum()),
        strata=tuple(counts),
        stale=bool(latest) and latest[0][0] != run_id,
        method=(
            "stratified sample, post-stratified by the threshold's side; 95 % intervals: 2.5-97.5th percentiles of "
            f"{draws:,} draws of each cell's match rate from Beta(k + 1/2, n - k + 1/2)"
        ),
    )


def _interval(values: np.ndarray) -> Interval:
    """The point estimate (``values[0]``) and the draws' 2.5th and 97.5th percentiles, widened to hold the point:
    where every labelled pair agreed, no draw reaches the point (Jeffreys' interval at k = n is closed at 1 for
    this reason; Brown, Cai and DasGupta 2001)."""
    point = float(values[0])
    low, high = np.percentile(values[1:], [2.5, 97.5]) if len(values) > 1 else (point, point)
    return Interval(point, min(float(low), point), max(float(high), point))


def _rates(k: int, m: int, rng: np.random.Generator, draws: int, fallback: np.ndarray | None) -> np.ndarray:
    """A cell's match rate: the point estimate, then ``draws`` from its Jeffreys posterior (the stratum's
    ``fallback`` for a cell without labels; Jeffreys' prior alone for a stratum without any)."""
    if m == 0 and fallback is not None:
        return fallback
    out = np.empty(draws + 1)
    out[0] = k / m if m else 0.5
    out[1:] = rng.beta(k + 0.5, m - k + 0.5, size=draws)
    return out


def _design(store: Store, sample_id: str | None) -> dict[str, Any]:
    import json

    if sample_id is None:
        rows = store.rows(
            "SELECT sample_id, run_id, threshold, design FROM samples ORDER BY drawn_at DESC LIMIT 1", table="samples"
        )
        if not rows:
            raise InputError("the store has no sample yet: `linkage review sample --db PATH --n 300 --out FILE.csv`")
    else:
        rows = store.rows(
            "SELECT sample_id, run_id, threshold, design FROM samples WHERE sample_id = ?", [sample_id], table="samples"
        )
        if not rows:
            raise InputError(f"no sample {sample_id!r} in the store")
    found, run_id, threshold, design = rows[0]
    parsed = json.loads(design) if isinstance(design, str) else design
    return {"sample_id": found, "run_id": run_id, "threshold": float(threshold), "strata": parsed["strata"]}


def _labelled(store: Store, sample_id: str) -> pd.DataFrame:
    """The sample's pairs with their standing label (``None``: not labelled) and stratum."""
    drawn: pd.DataFrame = store.df(
        "SELECT record_id_l, record_id_r, stratum, match_probability FROM sample_pairs WHERE sample_id = ?",
        [sample_id],
        table="sample_pairs",
    )
    labels = standing(store)[["record_id_l", "record_id_r", "label"]]
    return drawn.merge(labels, on=["record_id_l", "record_id_r"], how="left")


def _run_sides(labelled: pd.DataFrame) -> np.ndarray:
    """At the run's threshold a pair is inside a cluster exactly when its stratum is a linked one."""
    return np.asarray(labelled["stratum"].str.startswith("linked:"), dtype=bool)


def _threshold_sides(
    store: Store, labelled: pd.DataFrame, threshold: float, run_threshold: float, sizes: dict[str, int]
) -> tuple[dict[str, int], int, np.ndarray]:
    """Clusters at ``threshold`` (connected components of the stored pairs at or above it): each stratum's pairs
    inside them, the pairs inside them in no stratum the store can tell (joined through others), and whether
    each labelled pair is inside one."""
    stored = store.df(
        f"SELECT p.record_id_l, p.record_id_r, p.match_probability FROM pairs p {LATEST_PAIR}", table="pairs"
    )
    records = pd.Index(sorted({*stored["record_id_l"], *stored["record_id_r"], *labelled["record_id_l"],
                               *labelled["record_id_r"]}))  # fmt: skip
    at = stored[stored["match_probability"] >= threshold]
    labels = component_labels(
        len(records),
        records.get_indexer(at["record_id_l"]).astype(np.int64),
        records.get_indexer(at["record_id_r"]).astype(np.int64),
    )
    _, size = np.unique(labels, return_counts=True)
    total = int((size * (size - 1) // 2).sum())
    if total > MAX_PREDICTED_PAIRS:
        raise InputError(
            f"at a threshold of {threshold} the clusters hold {total:,} pairs, more than {MAX_PREDICTED_PAIRS:,}: "
            "choose a higher threshold"
        )
    # every pair inside a cluster, classified as the sample's strata classify the stored pairs
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
    left, right = [], []
    for group in groups:
        if len(group) > 1:
            a, b = np.triu_indices(len(group), 1)
            left.append(group[a])
            right.append(group[b])
    ids = records.to_numpy(dtype=object)
    lefts = ids[np.concatenate(left)] if left else np.empty(0, dtype=object)
    rights = ids[np.concatenate(right)] if right else np.empty(0, dtype=object)
    inside = pd.DataFrame({"l": lefts, "r": rights})
    inside["record_id_l"] = inside[["l", "r"]].min(axis=1)
    inside["record_id_r"] = inside[["l", "r"]].max(axis=1)
    table = pa.Table.from_pandas(inside[["record_id_l", "record_id_r"]], preserve_index=False)
    with store.registered("_inside", table):
        found = dict(
            store.rows(
                f"""WITH within AS (
                       SELECT i.record_id_l, i.record_id_r, a.identity_id = b.identity_id AS linked
                       FROM _inside i JOIN membership a ON a.record_id = i.record_id_l
                       JOIN membership b ON b.record_id = i.record_id_r
                   ), scored AS (
                       SELECT p.record_id_l, p.record_id_r, p.match_probability FROM pairs p {LATEST_PAIR}
                   )
                   SELECT CASE WHEN w.linked THEN {LINKED_STRATUM}
                               WHEN match_probability IS NOT NULL THEN {UNLINKED_STRATUM}
                               ELSE 'transitive' END AS stratum, count(*)
                   FROM within w LEFT JOIN scored s USING (record_id_l, record_id_r) GROUP BY 1""",
                {"threshold": run_threshold},
                table="pairs",
            )
        )
    predicted = {h: min(int(found.get(h, 0)), sizes.get(h, 0)) for h in STRATA}
    keys = set(zip(inside["record_id_l"], inside["record_id_r"], strict=True))
    sides = np.array([(a, b) in keys for a, b in zip(labelled["record_id_l"], labelled["record_id_r"], strict=True)],
                     dtype=bool)  # fmt: skip
    return predicted, int(found.get("transitive", 0)), sides


def _false_alerts(
    store: Store, usable: pd.DataFrame, threshold: float, rng: np.random.Generator, draws: int
) -> Interval | None:
    """The share of linked office-shopping alerts whose pair is not one person: each alert pair weighted by its
    linked stratum's (at the sample's ``threshold``) estimated non-match rate."""
    from linkage.alerts import alerts

    found = alerts(store, level="linked")
    if not found:
        return None
    pairs = pd.DataFrame({"a": [x["record_id"] for x in found], "b": [x["refused_record_id"] for x in found]})
    pairs["record_id_l"], pairs["record_id_r"] = pairs.min(axis=1), pairs.max(axis=1)
    table = pa.Table.from_pandas(pairs[["record_id_l", "record_id_r"]], preserve_index=False)
    with store.registered("_alert_pairs", table):
        strata = [h for (h,) in store.rows(
            f"""SELECT {LINKED_STRATUM} FROM _alert_pairs a
                LEFT JOIN (SELECT p.record_id_l, p.record_id_r, p.match_probability FROM pairs p {LATEST_PAIR}) s
                     USING (record_id_l, record_id_r)""",
            {"threshold": threshold},
            table="pairs",
        )]  # fmt: skip
    share = np.zeros(draws + 1)
    for h in set(strata):
        mine = usable[usable["stratum"] == h]
        k, m = int((mine["label"] == "match").sum()), len(mine)
        share += strata.count(h) * (1 - _rates(k, m, rng, draws, fallback=None))
    return _interval(share / len(strata))
