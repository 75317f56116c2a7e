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

Record ids and identity ids are not logged; counts are.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from linkage.errors import InputError, did_you_mean
from linkage.history import LATEST_PAIR
from linkage.schema import DECISIONS, REFUSALS

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["alerts", "office_shopping"]

log = logging.getLogger(__name__)

# Every (X, R) alert of the identities' dated applications at a known office; parameters: refusals, since.
_CANDIDATES: Final = """
WITH dated AS (
    SELECT m.identity_id, n.record_id, n.office, n.application_date, n.decision
    FROM membership m JOIN applications_normalised n ON n.record_id = m.record_id
    WHERE m.identity_id IS NOT NULL AND n.office IS NOT NULL AND n.application_date IS NOT NULL
),
candidates AS (
    SELECT x.identity_id, x.record_id, x.office, x.application_date, x.decision,
           r.record_id AS refused_record_id, r.office AS refused_office, r.application_date AS refused_date,
           r.decision AS refused_decision
    FROM (SELECT * FROM dated WHERE list_contains(?::VARCHAR[], decision)) r
    JOIN dated x ON x.identity_id = r.identity_id AND x.office <> r.office
                AND r.application_date < x.application_date
    WHERE x.application_date >= ?
)"""


def alerts(
    store: Store,
    since: date | None = None,
    refusals: Sequence[str] = REFUSALS,
) -> list[dict[str, Any]]:
    """Office shopping: every application whose identity was refused earlier at another office.

    Args:
        store: an open store (read-only will do).
        since: only applications X lodged on or after this day.
        refusals: the decisions that count as a refusal (see :mod:`linkage.evaluate`).

    Returns:
        One dict per (application X, earlier refusal R elsewhere), ordered by X's date, X's record id,
        R's record id: ``record_id, office, application_date, decision`` of X, ``refused_record_id,
        refused_office, refused_date, refused_decision, refusal_reason`` of R (the reason as written),
        ``identity_id``, ``match_probability``, ``direct`` (the pair X–R was scored) and ``via`` (the
        records between them on the strongest path; empty when direct or without a path).

    Raises:
        InputError: a refusal is not one of the normalised decisions.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     alerts(store, refusals=("rejected", "postponed"))
    []
    """
    refused = _refusals(refusals)
    rows = store.sql(
        f"""{_CANDIDATES}
            SELECT c.*, a.decision_reason AS refusal_reason
            FROM candidates c LEFT JOIN applications a ON a.record_id = c.refused_record_id
            ORDER BY c.application_date, c.record_id, c.refused_record_id""",
        [refused, since or date.min],
        table="alerts",
    )
    names = [d[0] for d in rows.description]
    found = [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
    identities = sorted({a["identity_id"] for a in found})
    edges, scored = _links(store, identities)
    trees: dict[str, Tree] = {}  # built for the identities with an alert that is not a scored pair only
    for alert in found:
        x, r = alert["record_id"], alert["refused_record_id"]
        pair = (x, r) if x < r else (r, x)
        if pair in scored:
            alert.update(match_probability=scored[pair], direct=True, via=[])
            continue
        identity = alert["identity_id"]
        if identity not in trees:
            trees[identity] = _spanning_tree((a, b, p) for (a, b), p in edges.get(identity, {}).items())
        path = _maximin(trees[identity], x, r)
        alert.update(
            match_probability=None if path is None else path[0],
            direct=False,
            via=[] if path is None else path[1][1:-1],
        )
    log.info("alerts: %d alerts over %d identities", len(found), len(identities))
    return found


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
        ``month`` (``YYYY-MM``), ``office``, ``alerts`` ((X, R) pairs), ``applications`` (distinct X) and
        ``identities`` (distinct), ordered by month and office. Counts only: no personal data.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     office_shopping(store).columns.tolist()
    ['month', 'office', 'alerts', 'applications', 'identities']
    """
    result: pd.DataFrame = store.sql(
        f"""{_CANDIDATES}
            SELECT strftime(application_date, '%Y-%m') AS month, office, count(*) AS alerts,
                   count(DISTINCT record_id) AS applications, count(DISTINCT identity_id) AS identities
            FROM candidates GROUP BY ALL ORDER BY month, office""",
        [_refusals(refusals), since or date.min],
        table="office_shopping",
    ).df()
    return result
