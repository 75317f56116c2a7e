"""What moving the link threshold costs and gains (issue 14 §3): identities, alerts and the review queue.

Analysts own the threshold. Before they move it from A to B, :func:`cost` clusters the store's stored pairs
at both and compares: the identities at each, the clusters that merge or split, the office-shopping alerts
gained and lost at each level, and the review queue per week it would give at the store's current volume.

How it is computed, and what it leaves out (queries through :class:`~linkage.store.Store`, a read-only store
will do; the rest in memory with numpy and pandas):

* The **pairs** are the ``pairs`` table, the latest run's score of each pair
  (:data:`linkage.history.LATEST_PAIR`). A pair with a record without identity evidence never links on a
  score, as in :mod:`linkage.cluster`.
* The **clusters** at a threshold are the connected components of the evidenced pairs at or above it, with
  every stored application a node (:func:`linkage.graph.component_labels`, exactly as :mod:`linkage.sweep`
  clusters). The cluster guard and officers' decisions (must-link, cannot-link) are *not* re-applied, so at
  the run's own threshold the clusters may differ slightly from the store's identities.
* A **linked** alert is (X, R): R a refusal (:data:`linkage.schema.REFUSALS`) at another office on an earlier
  day than X, both in one cluster (:mod:`linkage.alerts`). A **review** alert is (X, R) where X's cluster does
  not hold R but a stored pair at or above the run's review floor (:func:`linkage.review.run_cuts`) joins X to
  a record of R's cluster; a pair with a record without identity evidence counts only from
  :data:`linkage.review.NAME_ONLY_FLOOR` up (:mod:`linkage.review`). Simplified here: cannot-link decisions
  do not hold a review alert back, and no reason is given (the veto and the bare record are not told apart).
  Applications without an office or a date take no part in alerts.
* The **review queue per week** is the store's applications per week times the review alerts per stored
  application at the threshold. Applications per week: the dated applications of the last 12 weeks (84 days
  ending on the latest application date the store holds; all of them when the store spans less), times 7,
  divided by the days covered. **Officer-hours per week** are the queue times the minutes per review, / 60.

Record ids and identity ids are not logged; counts are. The examples hold ids only, for an analyst to open
with ``linkage history``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from linkage.errors import InputError
from linkage.graph import component_labels
from linkage.history import LATEST_PAIR
from linkage.review import NAME_ONLY_FLOOR, run_cuts
from linkage.schema import REFUSALS

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["WINDOW_DAYS", "AlertExample", "At", "ClusterExample", "Moved", "ThresholdCost", "cost"]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

WINDOW_DAYS: Final = 84
"""The weeks of volume the review queue is priced at: the last 12 weeks the store holds (in days)."""
_LISTED: Final = 10  # record and identity ids listed in one cluster example


@dataclass(frozen=True)
class At:
    """The figures at one threshold."""

    threshold: float
    identities: int  # clusters, singletons included
    linked_alerts: int
    review_alerts: int
    review_per_week: float  # review alerts per week at the store's current volume
    officer_hours_per_week: float  # review_per_week x minutes per review / 60


@dataclass(frozen=True)
class Moved:
    """How many clusters changed, and how many records they hold."""

    clusters: int
    records: int


@dataclass(frozen=True)
class ClusterExample:
    """A merged cluster (at B) or a split one (at A): its records, the store's identities they are in now, and
    into how many clusters of the other threshold it falls (``parts``)."""

    records: int
    parts: int
    record_ids: tuple[str, ...]  # the first ten, in record-id order
    identity_ids: tuple[str, ...]  # the store's identities of those records (the first ten)


@dataclass(frozen=True)
class AlertExample:
    """An alert gained or lost: the application X, the earlier refusal R and the store's identities of both."""

    level: str
    record_id: str
    refused_record_id: str
    identity_id: str | None
    refused_identity_id: str | None


@dataclass(frozen=True)
class ThresholdCost:
    """What moving the threshold from ``at_from.threshold`` to ``at_to.threshold`` changes."""

    at_from: At
    at_to: At
    merged: Moved  # clusters at B that join two or more clusters of A
    split: Moved  # clusters of A that fall apart at B
    linked_gained: int
    linked_lost: int
    review_gained: int
    review_lost: int
    applications: int  # stored applications (the alerts' denominator)
    applications_per_week: float
    window_days: int  # the days the weekly volume was measured over
    minutes_per_review: float
    review_floor: float
    run_threshold: float  # the latest link run's
    merged_examples: tuple[ClusterExample, ...]
    split_examples: tuple[ClusterExample, ...]
    gained_examples: tuple[AlertExample, ...]  # linked ones first, up to the number of examples of each level
    lost_examples: tuple[AlertExample, ...]

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values; ``at_from`` and ``at_to`` become ``from`` and ``to``."""
        data = asdict(self)
        data["from"], data["to"] = data.pop("at_from"), data.pop("at_to")
        data["alerts"] = {
            "linked": {"gained": data.pop("linked_gained"), "lost": data.pop("linked_lost")},
            "review": {"gained": data.pop("review_gained"), "lost": data.pop("review_lost")},
        }
        data["examples"] = {
            key: [
                {k: list(v) if isinstance(v, tuple) else v for k, v in example.items()}
                for example in data.pop(f"{key}_examples")
            ]
            for key in ("merged", "split", "gained", "lost")
        }
        return data


def cost(store: Store, *, from_: float, to: float, minutes_per_review: float = 3.0, examples: int = 5) -> ThresholdCost:
    """What moving the link threshold from ``from_`` to ``to`` costs and gains, on the store's stored pairs.

    The clusters are connected components of the pairs at each threshold (see the module docstring): the guard
    and officers' decisions are not re-applied, so at the run's own threshold the store's identities may differ
    slightly.

    Args:
        store: an open store with a link run (read-only will do).
        from_: the threshold now (A), strictly between 0 and 1.
        to: the threshold proposed (B), strictly between 0 and 1, not A.
        minutes_per_review: an officer's minutes per review alert.
        examples: the most examples of each change: clusters merged, split; alerts gained, lost (of each level).

    Returns:
        The figures at A and at B, the clusters merged and split, the alerts gained and lost per level, the
        review queue and officer-hours per week, and examples (ids only).

    Raises:
        InputError: a threshold not strictly between 0 and 1, A equal to B, minutes per review not positive,
            a negative number of examples, or a store without a link run.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     cost(store, from_=0.9, to=0.9)
    Traceback (most recent call last):
    linkage.errors.InputError: the thresholds are equal (0.9): give two different ones to see what the move changes
    """
    _check(from_, to, minutes_per_review, examples)
    if not _linked(store):
        raise InputError("the store holds no link run: run `linkage link` first, then price a threshold move")
    floor, run_threshold = run_cuts(store)
    records = store.df(
        """SELECT n.record_id, n.office, n.application_date, n.decision,
                  coalesce(n.no_identity_evidence, false) AS bare, m.identity_id
           FROM applications_normalised n LEFT JOIN membership m ON m.record_id = n.record_id
           ORDER BY n.record_id""",
        table="threshold_records",
    )
    pairs = store.df(
        f"""SELECT p.record_id_l, p.record_id_r, p.match_probability FROM pairs p
            WHERE p.record_id_l IN (SELECT record_id FROM applications_normalised)
              AND p.record_id_r IN (SELECT record_id FROM applications_normalised)
            {LATEST_PAIR}""",
        table="threshold_pairs",
    )
    graph = _Graph.of(records, pairs, floor)
    a, b = graph.labels(from_), graph.labels(to)
    linked_a, linked_b = graph.linked(a), graph.linked(b)
    review_a, review_b = graph.review(a), graph.review(b)
    per_week, days = _weekly(records["application_date"])
    n = len(records)

    def at(threshold: float, labels: IntArray, linked: IntArray, review: IntArray) -> At:
        queue = per_week * len(review) / n if n else 0.0
        return At(threshold, len(np.unique(labels)), len(linked), len(review), queue, queue * minutes_per_review / 60)

    merged, merged_examples = graph.changed(b, a, examples)
    split, split_examples = graph.changed(a, b, examples)
    changes = {  # (level, gained or lost): the alerts' keys
        ("linked", "gained"): np.setdiff1d(linked_b, linked_a),
        ("linked", "lost"): np.setdiff1d(linked_a, linked_b),
        ("review", "gained"): np.setdiff1d(review_b, review_a),
        ("review", "lost"): np.setdiff1d(review_a, review_b),
    }
    shown = {change: graph.alerts(change[0], keys[:examples]) for change, keys in changes.items()}  # each level's
    found = ThresholdCost(
        at_from=at(from_, a, linked_a, review_a),
        at_to=at(to, b, linked_b, review_b),
        merged=merged,
        split=split,
        linked_gained=len(changes["linked", "gained"]),
        linked_lost=len(changes["linked", "lost"]),
        review_gained=len(changes["review", "gained"]),
        review_lost=len(changes["review", "lost"]),
        applications=n,
        applications_per_week=per_week,
        window_days=days,
        minutes_per_review=minutes_per_review,
        review_floor=floor,
        run_threshold=run_threshold,
        merged_examples=merged_examples,
        split_examples=split_examples,
        gained_examples=(*shown["linked", "gained"], *shown["review", "gained"]),
        lost_examples=(*shown["linked", "lost"], *shown["review", "lost"]),
    )
    log.info(
        "threshold %s -> %s: %d merged, %d split, review alerts %d -> %d",
        from_, to, merged.clusters, split.clusters, len(review_a), len(review_b),
    )  # fmt: skip
    return found


def _check(from_: float, to: float, minutes_per_review: float, examples: int) -> None:
    """Every problem with the arguments at once."""
    problems = [
        f"the threshold {name} must be a probability strictly between 0 and 1, got {value!r}"
        for name, value in (("from", from_), ("to", to))
        if not 0.0 < value < 1.0  # NaN fails too
    ]
    if not minutes_per_review > 0.0 or minutes_per_review == float("inf"):
        problems.append(f"the minutes per review must be a positive number, got {minutes_per_review!r}")
    if examples < 0:
        problems.append(f"the number of examples must not be negative, got {examples!r}")
    if not problems and from_ == to:
        problems.append(f"the thresholds are equal ({from_!r}): give two different ones to see what the move changes")
    if problems:
        raise InputError("; ".join(problems))


def _linked(store: Store) -> bool:
    """Whether a link run placed the store's records: a succeeded link run, or (a store from before runs
    recorded them) records in identities."""
    ran = store.scalar("SELECT count(*) FROM runs WHERE kind = 'link' AND status = 'succeeded'", table="runs")
    placed = store.scalar("SELECT count(*) FROM (SELECT 1 FROM membership LIMIT 1)", table="membership")
    return bool(ran) or bool(placed)


def _weekly(dates: pd.Series) -> tuple[float, int]:
    """Dated applications per week over the last :data:`WINDOW_DAYS` days the store holds, and the days."""
    days = pd.to_datetime(dates, errors="coerce").dropna().dt.normalize()
    if days.empty:
        return 0.0, 0
    latest = days.max()
    start = max(days.min(), latest - pd.Timedelta(days=WINDOW_DAYS - 1))
    covered = int((latest - start).days) + 1
    return int((days >= start).sum()) * 7 / covered, covered


@dataclass(frozen=True)
class _Graph:
    """The stored applications as nodes ``0..n-1`` in record-id order, and the stored pairs between them."""

    ids: npt.NDArray[np.object_]
    identity: npt.NDArray[np.object_]  # the store's identity of each record (None when unlinked)
    left: IntArray
    right: IntArray
    p: npt.NDArray[np.float64]
    evidenced: npt.NDArray[np.bool_]  # neither end lacks identity evidence: the pair may link on its score
    reviewable: npt.NDArray[np.bool_]  # at or above the review floor (the name-only floor for a bare end)
    refusals: pd.DataFrame  # node, office, day of each dated refusal at a known office
    dated: pd.DataFrame  # node, office, day of each dated application at a known office

    @classmethod
    def of(cls, records: pd.DataFrame, pairs: pd.DataFrame, floor: float) -> _Graph:
        universe = pd.Index(records["record_id"])
        left = universe.get_indexer(pairs["record_id_l"]).astype(np.int64)
        right = universe.get_indexer(pairs["record_id_r"]).astype(np.int64)
        p = pd.to_numeric(pairs["match_probability"], errors="coerce").to_numpy(dtype=np.float64)
        bare = records["bare"].to_numpy(dtype=bool)
        either_bare = bare[left] | bare[right]
        reviewable = p >= np.where(either_bare, max(floor, NAME_ONLY_FLOOR), floor)  # NaN: never
        day = pd.to_datetime(records["application_date"], errors="coerce")
        known = records["office"].notna().to_numpy() & day.notna().to_numpy()
        dated = pd.DataFrame(
            {"node": np.arange(len(records), dtype=np.int64), "office": records["office"], "day": day}
        ).loc[known]
        refused = records["decision"].isin(REFUSALS).to_numpy()[known]
        return cls(
            ids=records["record_id"].to_numpy(dtype=object),
            identity=records["identity_id"].astype(object).where(records["identity_id"].notna(), None).to_numpy(),
            left=left,
            right=right,
            p=p,
            evidenced=~either_bare,
            reviewable=reviewable,
            refusals=dated.loc[refused].reset_index(drop=True),
            dated=dated.reset_index(drop=True),
        )

    def labels(self, threshold: float) -> IntArray:
        """Each node's cluster at ``threshold``: the smallest node of its component."""
        edge = self.evidenced & (self.p >= threshold)
        return component_labels(len(self.ids), self.left[edge], self.right[edge])

    def _alerts(self, x: pd.DataFrame, clusters: IntArray) -> IntArray:
        """The (X, R) keys ``X * n + R`` of the applications ``x`` (``node``, ``office``, ``day``, ``cluster``:
        the cluster R is looked for in) and the refusals of those clusters at another office on an earlier day."""
        refusals = self.refusals.assign(cluster=clusters[self.refusals["node"].to_numpy()])
        joined = x.merge(refusals, on="cluster", suffixes=("", "_r"))
        keep = (joined["office"] != joined["office_r"]) & (joined["day_r"] < joined["day"])
        keys = joined["node"].to_numpy(dtype=np.int64) * len(self.ids) + joined["node_r"].to_numpy(dtype=np.int64)
        return np.unique(keys[keep.to_numpy()])

    def linked(self, labels: IntArray) -> IntArray:
        """The linked alerts of a clustering, as sorted keys ``X * n + R``."""
        held = np.isin(labels[self.dated["node"].to_numpy()], labels[self.refusals["node"].to_numpy()])
        x = self.dated.loc[held]  # only the clusters with a refusal: the join stays small
        return self._alerts(x.assign(cluster=labels[x["node"].to_numpy()]), labels)

    def review(self, labels: IntArray) -> IntArray:
        """The review alerts of a clustering, as sorted keys ``X * n + R``: X paired (at or above the floor) with
        a record Y of another cluster that holds R."""
        ends = np.concatenate([self.left[self.reviewable], self.right[self.reviewable]])
        others = np.concatenate([self.right[self.reviewable], self.left[self.reviewable]])
        apart = labels[ends] != labels[others]
        pairs = pd.DataFrame({"node": ends[apart], "cluster": labels[others[apart]]}).drop_duplicates()
        x = pairs.merge(self.dated, on="node")
        if x.empty:
            return np.zeros(0, dtype=np.int64)
        return self._alerts(x, labels)  # R is in Y's cluster, so never in X's: no linked alert is counted here

    def alerts(self, level: str, keys: IntArray) -> list[AlertExample]:
        """The alerts of ``keys`` as examples, in X's then R's record-id order."""
        n = len(self.ids)
        return [
            AlertExample(level, str(self.ids[x]), str(self.ids[r]), self.identity[x], self.identity[r])
            for x, r in zip((keys // n).tolist(), (keys % n).tolist(), strict=True)
        ]

    def changed(self, into: IntArray, parts: IntArray, examples: int) -> tuple[Moved, tuple[ClusterExample, ...]]:
        """The clusters of ``into`` that hold nodes of two or more clusters of ``parts``, and examples of them:
        the largest first (then by first record id)."""
        frame = pd.DataFrame({"into": into, "parts": parts})
        grouped = frame.groupby("into")["parts"].agg(["nunique", "size"])
        moved = grouped.loc[grouped["nunique"] > 1]
        ordered = moved.reset_index().sort_values(["size", "into"], ascending=[False, True]).head(examples)
        shown = []
        for label, count, size in ordered[["into", "nunique", "size"]].itertuples(index=False):
            members = np.flatnonzero(into == label)  # in record-id order
            identities = sorted({i for i in self.identity[members] if i is not None})
            listed = tuple(str(r) for r in self.ids[members[:_LISTED]])
            shown.append(ClusterExample(int(size), int(count), listed, tuple(identities[:_LISTED])))
        return Moved(len(moved), int(moved["size"].sum())), tuple(shown)
