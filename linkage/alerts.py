"""Office-shopping alerts: applications whose identity was refused on an earlier day at another office.

Queries only, through :class:`~linkage.store.Store` (a read-only store will do). Definitions:

* A **refusal** is an application whose normalised decision is in ``refusals``, by default
  :data:`linkage.schema.REFUSALS` (``("rejected",)``; why postponements are left out is explained in
  :mod:`linkage.evaluate`).
* An **office-shopping alert** is a pair (X, R) of applications of one identity where R is a refusal
  lodged on an earlier *day* than X at *another* office; applications without an office or a date take
  no part, and offices are compared as normalised. One alert per pair: an application after two
  refusals elsewhere raises two. A refusal on the same day as X raises none (:mod:`linkage.evaluate`
  orders same-day applications by record id instead, for a total order; an alert claims that the
  refusal came first, which one day cannot tell).
* An alert's **match probability** says how strongly the store ties X to R: the probability of the
  pair X–R when it was scored (``direct``), else the *bottleneck* of the strongest path between them
  through the identity's *links*: the edges clustering kept (the ``links`` table, written by the link run
  with its threshold; a must-link decision counts as 1). So alerts never disagree with clustering, whatever
  spec or threshold the run used. The strongest path is the maximin path, read off a maximum spanning tree
  (Hu 1961, "The maximum capacity route problem"). ``None`` when no link path joins them.
* A pair scored by more than one run counts as the latest run scored it.
* Each alert has a **level**. ``linked``: the above, X's identity holds R; its ``reason`` says what ties
  them: ``direct`` (the pair X–R), ``via`` (a path of links), ``must_link`` (an officer's decision with no
  scored pair) or ``no_link_path``. ``review``: X's identity does not hold R, but a stored pair at or above
  the run's review floor joins X to R's identity, a possible match that is not a link; its reason says why
  it did not link (:mod:`linkage.review`). Linked alerts come first, then review ones by probability.

Record ids and identity ids are not logged; counts are.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Literal

import pandas as pd

from linkage.errors import InputError, did_you_mean
from linkage.history import LATEST_PAIR
from linkage.review import review_alerts
from linkage.schema import DECISIONS, REFUSALS

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["LEVELS", "alerts", "office_shopping"]

Level = Literal["linked", "review", "all"]
LEVELS: Final[tuple[Level, ...]] = ("linked", "review", "all")

log = logging.getLogger(__name__)

def _candidates(scoped: bool) -> str:
    """Every (X, R) alert of the identities' dated applications at a known office; parameters: refusals,
    since, and when ``scoped``, records (only X among them, and only their identities' members read: the
    members are found first, so the million rows of a store are probed with a handful instead of joined)."""
    members = """mine AS MATERIALIZED (
    SELECT identity_id, record_id FROM membership
    WHERE identity_id IN (SELECT identity_id FROM membership WHERE record_id IN (SELECT unnest($records)))
),""" if scoped else ""
    xs = "AND x.record_id IN (SELECT unnest($records))" if scoped else ""
    return f"""
WITH {members}
dated AS (
    SELECT m.identity_id, n.record_id, n.office, n.application_date, n.decision
    FROM {"mine" if scoped else "membership"} m JOIN applications_normalised n ON n.record_id = m.record_id
    WHERE m.identity_id IS NOT NULL AND n.office IS NOT NULL AND n.application_date IS NOT NULL
),
candidates AS (
    SELECT x.identity_id, x.record_id, x.office, x.application_date, x.decision,
           r.record_id AS refused_record_id, r.office AS refused_office, r.application_date AS refused_date,
           r.decision AS refused_decision
    FROM (SELECT * FROM dated WHERE list_contains($refusals::VARCHAR[], decision)) r
    JOIN dated x ON x.identity_id = r.identity_id AND x.office <> r.office
                AND r.application_date < x.application_date
    WHERE x.application_date >= $since {xs}
)"""  # fmt: skip


_CANDIDATES: Final = _candidates(scoped=False)
_CANDIDATES_OF: Final = _candidates(scoped=True)
_ALERTS: Final = """
    SELECT c.*, a.decision_reason AS refusal_reason
    FROM candidates c LEFT JOIN applications a ON a.record_id = c.refused_record_id
    ORDER BY c.application_date, c.record_id, c.refused_record_id"""


def alerts(
    store: Store,
    since: date | None = None,
    refusals: Sequence[str] = REFUSALS,
    level: str = "all",
    records: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Office shopping: every application whose identity was refused earlier at another office, or may be.

    Args:
        store: an open store (read-only will do).
        since: only applications X lodged on or after this day.
        refusals: the decisions that count as a refusal (see :mod:`linkage.evaluate`).
        level: ``"linked"``, ``"review"`` or ``"all"`` (both, linked first).
        records: only the alerts of these applications (X), reading only what they touch: a registration's
            own alerts in milliseconds where all of a million records' take seconds.

    Returns:
        The linked alerts, one dict per (application X, earlier refusal R elsewhere), ordered by X's date,
        X's record id, R's record id: ``record_id, office, application_date, decision`` of X,
        ``refused_record_id, refused_office, refused_date, refused_decision, refusal_reason`` of R (the
        reason as written), ``identity_id`` and ``refused_identity_id`` (the same), ``level``
        (``"linked"``), ``reason``, ``match_probability``, ``direct`` (the pair X–R was scored) and ``via``
        (the records between them on the strongest path; empty when direct or without a path). Then the
        review alerts, highest probability first, with the same fields (:func:`linkage.review.review_alerts`).

    Raises:
        InputError: a refusal is not one of the normalised decisions, or the level is unknown.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     alerts(store, refusals=("rejected", "postponed"))
    []
    """
    refused = _refusals(refusals)
    if level not in LEVELS:
        raise InputError(f"unknown alert level {level!r}{did_you_mean(level, LEVELS)}; use one of {', '.join(LEVELS)}")
    review = review_alerts(store, since, refused, records=records) if level != "linked" else []
    if level == "review":
        return review
    params: dict[str, Any] = {"refusals": refused, "since": since or date.min}
    if records is None:
        rows = store.sql(_CANDIDATES + _ALERTS, params, table="alerts")
    else:
        rows = store.sql(_CANDIDATES_OF + _ALERTS, {**params, "records": list(records)}, table="alerts")
    names = [d[0] for d in rows.description]
    found = [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
    identities = sorted({a["identity_id"] for a in found})
    edges, scored = _links(store, identities)
    trees: dict[str, Tree] = {}  # built for the identities with an alert that is not a scored pair only
    for alert in found:
        x, r = alert["record_id"], alert["refused_record_id"]
        pair = (x, r) if x < r else (r, x)
        alert.update(refused_identity_id=alert["identity_id"], level="linked")
        if pair in scored:
            alert.update(match_probability=scored[pair], direct=True, via=[], reason="direct")
            continue
        identity = alert["identity_id"]
        if identity not in trees:
            trees[identity] = _spanning_tree((a, b, p) for (a, b), p in edges.get(identity, {}).items())
        path = _maximin(trees[identity], x, r)
        via = [] if path is None else path[1][1:-1]
        alert.update(
            match_probability=None if path is None else path[0],
            direct=False,
            via=via,
            reason="no_link_path" if path is None else "via" if via else "must_link",
        )
    log.info("alerts: %d linked over %d identities, %d for review", len(found), len(identities), len(review))
    return found + review


def _refusals(refusals: Sequence[str]) -> list[str]:
    unknown = [r for r in refusals if r not in DECISIONS]
    if unknown:
        raise InputError(
            f"unknown decision {unknown[0]!r} as a refusal{did_you_mean(unknown[0], DECISIONS)}; "
            f"use one of {', '.join(DECISIONS)}"
        )
    return list(refusals)


Pair = tuple[str, str]  # record ids, the smaller first
Edge = tuple[str, str, float]
Tree = dict[str, list[tuple[str, float]]]
Links = dict[str, dict[Pair, float]]  # identity -> its links and their probabilities


def _ordered(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _links(store: Store, identities: Sequence[str]) -> tuple[Links, dict[Pair, float]]:
    """Each identity's links (the edges clustering kept; a must-link at 1.0), and every pair scored within them."""
    if not identities:
        return {}, {}
    members = "SELECT record_id, identity_id FROM membership WHERE identity_id IN (SELECT unnest(?::VARCHAR[]))"
    pairs = store.rows(
        f"""WITH members AS ({members})
            SELECT p.record_id_l, p.record_id_r, p.match_probability
            FROM pairs p JOIN members l ON l.record_id = p.record_id_l
            JOIN members r ON r.record_id = p.record_id_r AND r.identity_id = l.identity_id
            {LATEST_PAIR}""",
        [list(identities)],
        table="alerts",
    )
    kept = store.rows(
        f"""WITH members AS ({members})
            SELECT l.identity_id, k.record_id_l, k.record_id_r,
                   CASE WHEN k.kept = 'must_link' THEN 1.0 ELSE k.match_probability END
            FROM links k JOIN members l ON l.record_id = k.record_id_l
            JOIN members r ON r.record_id = k.record_id_r AND r.identity_id = l.identity_id""",
        [list(identities)],
        table="alerts",
    )
    scored = {_ordered(left, right): probability for left, right, probability in pairs}
    edges: dict[str, dict[Pair, float]] = defaultdict(dict)
    for identity, left, right, probability in kept:
        edges[identity][_ordered(left, right)] = float(probability)
    return edges, scored


def _spanning_tree(edges: Iterable[Edge]) -> Tree:
    """A maximum spanning forest (Kruskal), as adjacency lists; ties broken by the records' ids.

    >>> sorted(_spanning_tree([("a", "b", 0.9), ("b", "c", 0.95), ("a", "c", 0.92)]).items())
    [('a', [('c', 0.92)]), ('b', [('c', 0.95)]), ('c', [('b', 0.95), ('a', 0.92)])]
    """
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    tree: Tree = defaultdict(list)
    for a, b, p in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
            tree[a].append((b, p))
            tree[b].append((a, p))
    return dict(tree)


def _maximin(tree: Tree, source: str, target: str) -> tuple[float, list[str]] | None:
    """The bottleneck and the records of the path from ``source`` to ``target`` in a spanning forest.

    In a maximum spanning tree the path between two nodes is a path whose weakest edge is as strong as
    possible (Hu 1961), so its weakest edge is the bottleneck. ``None`` when they are not connected.

    >>> tree = _spanning_tree([("a", "b", 0.99), ("b", "c", 0.93), ("a", "d", 0.995), ("d", "c", 0.91)])
    >>> _maximin(tree, "a", "c")
    (0.93, ['a', 'b', 'c'])
    >>> _maximin(tree, "a", "z") is None
    True
    """
    if source not in tree or target not in tree:
        return None
    came: dict[str, tuple[str, float]] = {source: (source, 1.0)}
    stack = [source]
    while stack and target not in came:
        node = stack.pop()
        for nxt, p in tree[node]:
            if nxt not in came:
                came[nxt] = (node, p)
                stack.append(nxt)
    if target not in came:
        return None
    path, weakest, node = [target], 1.0, target
    while node != source:
        node, p = came[node]
        weakest = min(weakest, p)
        path.append(node)
    return weakest, path[::-1]


# ------------------------------------------------------------------------------------------- report


def office_shopping(store: Store, since: date | None = None, refusals: Sequence[str] = REFUSALS) -> pd.DataFrame:
    """Office-shopping alerts by office and month of the application X (see :func:`alerts`).

    Args:
        store: an open store (read-only will do).
        since: only applications X lodged on or after this day.
        refusals: the decisions that count as a refusal.

    Returns:
        ``month`` (``YYYY-MM``), ``office``, then of the linked alerts ``alerts`` ((X, R) pairs),
        ``applications`` (distinct X) and ``identities`` (distinct), and of the review alerts, counted apart,
        ``review_alerts`` and ``review_applications``; ordered by month and office. Counts only: no personal
        data.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     office_shopping(store).columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['month', 'office', 'alerts', 'applications', 'identities', 'review_alerts', 'review_applications']
    """
    refused = _refusals(refusals)
    linked: pd.DataFrame = store.sql(
        f"""{_CANDIDATES}
            SELECT strftime(application_date, '%Y-%m') AS month, office, count(*) AS alerts,
                   count(DISTINCT record_id) AS applications, count(DISTINCT identity_id) AS identities
            FROM candidates GROUP BY ALL ORDER BY month, office""",
        {"refusals": refused, "since": since or date.min},
        table="office_shopping",
    ).df()
    review = pd.DataFrame(review_alerts(store, since, refused), columns=["application_date", "office", "record_id"])
    review["month"] = pd.to_datetime(review["application_date"]).dt.strftime("%Y-%m")
    counted = review.groupby(["month", "office"], as_index=False).agg(
        review_alerts=("record_id", "size"), review_applications=("record_id", "nunique")
    )
    result = linked.merge(counted, on=["month", "office"], how="outer").sort_values(["month", "office"])
    counts = ["alerts", "applications", "identities", "review_alerts", "review_applications"]
    result[counts] = result[counts].fillna(0).astype("int64")
    return result.reset_index(drop=True)
