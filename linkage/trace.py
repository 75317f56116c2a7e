"""Traces over the identity store: an identity's history, office-shopping alerts, a report, an export.

Queries only, through :class:`~linkage.store.Store` (a read-only store is enough); nothing here writes
to the store. They read the tables of schema 4 (see :mod:`linkage.store`): ``applications`` (the decision
reason as written), ``applications_normalised`` (office, date and decision as normalised), ``membership``,
``identities``, ``pairs``, ``models``, ``decisions`` and ``events``.

Definitions:

* A **refusal** is an application whose normalised decision is in ``refusals``, by default
  :data:`linkage.evaluate.REFUSALS` (``("rejected",)``; why postponements are left out is explained in
  :mod:`linkage.evaluate`).
* An **office-shopping alert** is a pair (X, R) of applications of one identity where R is a refusal
  lodged on an earlier *day* than X at *another* office; applications without an office or a date take
  no part, and offices are compared as normalised. One alert per pair: an application after two
  refusals elsewhere raises two. A refusal on the same day as X raises none (:mod:`linkage.evaluate`
  orders same-day applications by record id instead, for a total order; an alert claims that the
  refusal came first, which one day cannot tell).
* An alert's **match probability** says how strongly the store ties X to R: the probability of the
  pair X–R when it was scored (``direct``), else the *bottleneck* of the strongest path between them
  through the identity's links, the pairs at or above the threshold and must-link decisions
  (probability 1). The strongest path is the maximin path, read off a maximum spanning tree (Hu 1961,
  "The maximum capacity route problem"). A pair whose latest decision is cannot-link is no link.
  ``None`` when no such path joins them (records held together by something else than their links).
* A pair scored by more than one run counts as the latest run scored it: run ids begin with the run's
  start time (:meth:`~linkage.store.Store.begin_run`), so they sort in time.

Record ids and identity ids are not logged; counts are.

The CSV files written here are opened in spreadsheets, which run a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula (CSV injection). Such a text cell is written with a
leading apostrophe, the OWASP rule, which spreadsheets show as text; numbers are written as they are.
Parquet keeps every value exactly.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa

from linkage.errors import InputError, NotFoundError, did_you_mean
from linkage.evaluate import REFUSALS
from linkage.schema import DECISIONS

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = [
    "EXPORT_FORMATS",
    "REPORT_FORMATS",
    "alerts",
    "export",
    "history",
    "office_shopping",
    "write_report",
]

log = logging.getLogger(__name__)

EXPORT_FORMATS: Final = (".parquet", ".csv")
REPORT_FORMATS: Final = (".html", ".csv")
IDENTITY_ID: Final = re.compile(r"ID-[0-9a-f]{16}")
_TOP_FIELDS: Final = 3  # agreeing comparisons shown as a record's evidence

# The latest row of each scored pair among the pairs of a query (see "A pair scored by more than one run").
_LATEST_PAIR: Final = "QUALIFY row_number() OVER (PARTITION BY p.record_id_l, p.record_id_r ORDER BY p.run_id DESC) = 1"

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


# ------------------------------------------------------------------------------------------ history


def history(store: Store, key: str) -> dict[str, Any]:
    """An identity's applications across offices in time order, what linked each one, decisions, events.

    Args:
        store: an open store (read-only will do).
        key: a record id, or an identity id (``ID-`` and 16 hex digits). A retired identity id is followed
            through ``merged_into`` to the identity it lives on in, and ``followed`` says so.

    Returns:
        ``key``; ``found_as`` (``"record"``, ``"identity"`` or ``"unlinked record"``, a stored record no
        link run has placed yet); ``identity_id`` (``None`` for an unlinked record); ``followed``, the
        retired identities passed through (``identity_id, retired_run, merged_into`` each); ``created_run``
        and ``retired_run`` of the identity reached (a retired one without a successor keeps its id);
        ``applications`` ordered by date (undated last) then record id, each with ``record_id, office,
        application_date, decision, decision_reason, since_run``, ``evidence`` (its strongest pair to
        another record of the identity: ``other_record_id, match_probability, match_weight, vetoed`` and
        ``agreeing``, up to three comparisons of positive weight as ``comparison, level, weight``,
        strongest first; ``None`` without such a pair) and ``decisions`` on the record (``decision_id,
        kind, other_record_id, decided_by, reason, decided_at, applied_run``); and ``events`` in order, those
        that name the identity or one merged into it (either side: a split names the new identity as the
        other) or one of its records.

    Raises:
        NotFoundError: the store holds no record and no identity with this id.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     history(store, "ID-0123456789abcdef")
    Traceback (most recent call last):
    linkage.errors.NotFoundError: no record or identity 'ID-0123456789abcdef' in the store
    """
    found_as, identity_id, followed = _resolve(store, key)
    if identity_id is None:
        members = "SELECT ?::VARCHAR AS record_id, NULL::VARCHAR AS since_run"
        param = key
    else:
        members = "SELECT record_id, since_run FROM membership WHERE identity_id = ?"
        param = identity_id
    rows = store.sql(
        f"""WITH members AS ({members})
            SELECT n.record_id, n.office, n.application_date, n.decision, a.decision_reason, m.since_run
            FROM members m JOIN applications_normalised n ON n.record_id = m.record_id
            LEFT JOIN applications a ON a.record_id = m.record_id
            ORDER BY n.application_date NULLS LAST, n.record_id""",
        [param],
        table="history",
    ).fetchall()
    names = ("record_id", "office", "application_date", "decision", "decision_reason", "since_run")
    applications = [dict(zip(names, row, strict=True)) for row in rows]
    ids = [a["record_id"] for a in applications]
    evidence = _evidence(store, ids)
    decisions = _decisions(store, ids)
    for application in applications:
        application["evidence"] = evidence.get(application["record_id"])
        application["decisions"] = decisions.get(application["record_id"], [])
    lifetime = (
        store.rows("SELECT created_run, retired_run FROM identities WHERE identity_id = ?", [identity_id])
        if identity_id is not None
        else []
    )
    created_run, retired_run = lifetime[0] if lifetime else (None, None)
    events = _events(store, identity_id, ids)
    log.info("history: %d applications, %d events, %d retired ids followed", len(ids), len(events), len(followed))
    return {
        "key": key,
        "found_as": found_as,
        "identity_id": identity_id,
        "followed": followed,
        "created_run": created_run,
        "retired_run": retired_run,
        "applications": applications,
        "events": events,
    }


def _resolve(store: Store, key: str) -> tuple[str, str | None, list[dict[str, Any]]]:
    """What ``key`` names: (found as, the identity id it leads to, the retired identities followed)."""
    linked = store.rows("SELECT identity_id FROM membership WHERE record_id = ?", [key])
    if linked and linked[0][0] is not None:
        return "record", linked[0][0], []
    if linked or store.rows("SELECT 1 FROM applications_normalised WHERE record_id = ?", [key]):
        return "unlinked record", None, []
    followed: list[dict[str, Any]] = []
    current, seen = key, {key}
    while row := store.rows("SELECT retired_run, merged_into FROM identities WHERE identity_id = ?", [current]):
        retired_run, merged_into = row[0]
        if retired_run is None or merged_into is None or merged_into in seen:  # live, or retired for good
            return "identity", current, followed
        followed.append({"identity_id": current, "retired_run": retired_run, "merged_into": merged_into})
        current = merged_into
        seen.add(current)
    if followed:  # merged into an id that identities does not list: show what membership holds for it
        return "identity", current, followed
    if store.rows("SELECT 1 FROM membership WHERE identity_id = ? LIMIT 1", [key]):
        return "identity", key, []
    raise NotFoundError(f"no record or identity {key!r} in the store{_closest(store, key)}")


def _closest(store: Store, key: str) -> str:
    """A "did you mean" hint: the nearest stored id of the kind ``key`` looks like, within two edits."""
    table, column = (
        ("identities", "identity_id") if IDENTITY_ID.fullmatch(key) else ("applications_normalised", "record_id")
    )
    row = store.rows(
        f"""SELECT {column} FROM {table} WHERE levenshtein({column}, ?) <= 2
            ORDER BY levenshtein({column}, ?), {column} LIMIT 1""",
        [key, key],
    )
    return did_you_mean(key, [row[0][0]]) if row else ""


def _evidence(store: Store, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each record's strongest pair to another of ``ids``, with its strongest agreeing comparisons."""
    if len(ids) < 2:
        return {}
    rows = store.sql(
        f"""SELECT p.record_id_l, p.record_id_r, p.match_probability, p.match_weight, p.vetoed, p.gammas,
                   p.weights, m.comparisons
            FROM pairs p LEFT JOIN models m ON m.model_id = p.model_id
            WHERE p.record_id_l IN (SELECT unnest(?::VARCHAR[])) AND p.record_id_r IN (SELECT unnest(?::VARCHAR[]))
            {_LATEST_PAIR}""",
        [list(ids), list(ids)],
        table="history",
    ).fetchall()
    best: dict[str, dict[str, Any]] = {}
    for left, right, probability, weight, vetoed, gammas, weights, comparisons in rows:
        for record, other in ((left, right), (right, left)):
            found = {
                "other_record_id": other,
                "match_probability": probability,
                "match_weight": weight,
                "vetoed": bool(vetoed),
                "agreeing": _agreeing(comparisons, gammas, weights),
            }
            if record not in best or _stronger(found, best[record]):
                best[record] = found
    return best


def _stronger(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether pair ``a`` is stronger evidence than ``b``: probability, then weight, then the other id."""

    def rank(x: dict[str, Any]) -> tuple[float, float, str]:
        return (-(x["match_probability"] or 0.0), -(x["match_weight"] or 0.0), x["other_record_id"])

    return rank(a) < rank(b)


def _agreeing(
    comparisons: Sequence[str] | None, gammas: Sequence[int] | None, weights: Sequence[float] | None
) -> list[dict[str, Any]]:
    """The comparisons of positive weight, strongest first (ties by name), at most ``_TOP_FIELDS``.

    >>> _agreeing(["name", "nik", "dob"], [3, 2, 0], [4.25, 12.5, -3.0])
    [{'comparison': 'nik', 'level': 2, 'weight': 12.5}, {'comparison': 'name', 'level': 3, 'weight': 4.25}]
    """
    names = list(comparisons or [])
    fields: list[dict[str, Any]] = [
        {
            # a model row that is missing or shorter than the pair's levels still shows the levels
            "comparison": names[i] if i < len(names) else f"comparison_{i}",
            "level": int(gamma),
            "weight": round(float(weight), 3),  # FLOAT in the store: float32 noise past 3 decimals
        }
        for i, (gamma, weight) in enumerate(zip(gammas or [], weights or [], strict=False))
        if gamma is not None and weight is not None and weight > 0
    ]
    fields.sort(key=lambda f: (-f["weight"], f["comparison"]))
    return fields[:_TOP_FIELDS]


def _decisions(store: Store, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Officers' decisions on each of ``ids``, oldest first, each seen from that record."""
    if not ids:
        return {}
    rows = store.sql(
        """SELECT decision_id, kind, record_id_a, record_id_b, decided_by, reason, decided_at, applied_run
           FROM decisions
           WHERE record_id_a IN (SELECT unnest(?::VARCHAR[])) OR record_id_b IN (SELECT unnest(?::VARCHAR[]))
           ORDER BY decided_at, decision_id""",
        [list(ids), list(ids)],
        table="history",
    ).fetchall()
    members = set(ids)
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for decision_id, kind, a, b, by, reason, at, applied in rows:
        for record, other in ((a, b), (b, a)) if a != b else ((a, b),):
            if record in members:
                found[record].append(
                    {"decision_id": decision_id, "kind": kind, "other_record_id": other, "decided_by": by,
                     "reason": reason, "decided_at": at, "applied_run": applied}
                )  # fmt: skip
    return found


_EVENT_COLUMNS: Final = ("event_no", "run_id", "happened_at", "kind", "identity_id", "other_identity_id",
                         "record_id", "other_record_id", "probability", "reason")  # fmt: skip


def _events(store: Store, identity_id: str | None, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The events of an identity, of the identities merged into it (transitively) and of its records."""
    rows = store.sql(
        f"""WITH RECURSIVE lineage(identity_id) AS (
                SELECT ?::VARCHAR WHERE ?::VARCHAR IS NOT NULL
                UNION
                SELECT i.identity_id FROM identities i JOIN lineage l ON i.merged_into = l.identity_id
            )
            SELECT {", ".join(_EVENT_COLUMNS)} FROM events
            WHERE identity_id IN (SELECT identity_id FROM lineage)
               OR other_identity_id IN (SELECT identity_id FROM lineage)
               OR record_id IN (SELECT unnest(?::VARCHAR[])) OR other_record_id IN (SELECT unnest(?::VARCHAR[]))
            ORDER BY event_no""",
        [identity_id, identity_id, list(ids), list(ids)],
        table="history",
    ).fetchall()
    return [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows]


# ------------------------------------------------------------------------------------------- alerts


def alerts(
    store: Store,
    since: date | None = None,
    refusals: Sequence[str] = REFUSALS,
    *,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Office shopping: every application whose identity was refused earlier at another office.

    Args:
        store: an open store (read-only will do).
        since: only applications X lodged on or after this day.
        refusals: the decisions that count as a refusal (see :mod:`linkage.evaluate`).
        threshold: match probability at which a pair links records (default: the model spec's).

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
    ...     alerts(store, refusals=("rejected", "postponed"), threshold=0.9)
    []
    """
    refused = _refusals(refusals)
    cut = _threshold(threshold)
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
    edges, scored = _links(store, identities, cut)
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


def _threshold(threshold: float | None) -> float:
    if threshold is None:
        from linkage.spec import load_spec

        return float(load_spec(None).threshold)
    if not 0 < threshold <= 1:
        raise InputError(f"the threshold must be a probability in (0, 1], got {threshold}")
    return threshold


Pair = tuple[str, str]  # record ids, the smaller first
Edge = tuple[str, str, float]
Tree = dict[str, list[tuple[str, float]]]
Links = dict[str, dict[Pair, float]]  # identity -> its links and their probabilities


def _ordered(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _links(store: Store, identities: Sequence[str], threshold: float) -> tuple[Links, dict[Pair, float]]:
    """Each identity's links (pairs at or above the threshold, must-links at 1.0); every pair scored within them."""
    if not identities:
        return {}, {}
    members = "SELECT record_id, identity_id FROM membership WHERE identity_id IN (SELECT unnest(?::VARCHAR[]))"
    pairs = store.sql(
        f"""WITH members AS ({members})
            SELECT l.identity_id, p.record_id_l, p.record_id_r, p.match_probability, coalesce(p.vetoed, false)
            FROM pairs p JOIN members l ON l.record_id = p.record_id_l
            JOIN members r ON r.record_id = p.record_id_r AND r.identity_id = l.identity_id
            {_LATEST_PAIR}""",
        [list(identities)],
        table="alerts",
    ).fetchall()
    decided = store.sql(
        f"""WITH members AS ({members})
            SELECT l.identity_id, d.kind, d.record_id_a, d.record_id_b
            FROM decisions d JOIN members l ON l.record_id = d.record_id_a
            JOIN members r ON r.record_id = d.record_id_b AND r.identity_id = l.identity_id
            ORDER BY d.decided_at, d.decision_id""",
        [list(identities)],
        table="alerts",
    ).fetchall()
    latest: dict[str, dict[Pair, str]] = defaultdict(dict)
    for identity, kind, a, b in decided:  # oldest first: the latest decision on a pair wins
        latest[identity][_ordered(a, b)] = kind
    edges: dict[str, dict[Pair, float]] = defaultdict(dict)
    scored: dict[Pair, float] = {}
    for identity, left, right, probability, vetoed in pairs:
        pair = _ordered(left, right)  # stored smaller first already; not trusted blindly
        scored[pair] = probability
        if probability is not None and probability >= threshold and not vetoed:
            edges[identity][pair] = probability
    for identity, kinds in latest.items():
        for pair, kind in kinds.items():
            if kind == "must_link":
                edges[identity][pair] = 1.0
            elif kind == "cannot_link":
                edges[identity].pop(pair, None)
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


def write_report(table: pd.DataFrame, out: Path) -> Path:
    """Write the :func:`office_shopping` table as ``.csv``, or as an ``.html`` page that opens offline.

    The page holds a stacked bar chart of alerts by month, coloured by office (Vega-Lite), and the table.

    Args:
        table: the rows of :func:`office_shopping`.
        out: the file to write; its folder is created.

    Returns:
        ``out``.

    Raises:
        InputError: ``out`` ends in neither ``.html`` nor ``.csv``.

    >>> import tempfile
    >>> rows = pd.DataFrame({"month": ["2024-03"], "office": ["Metro"], "alerts": [2], "applications": [1],
    ...                      "identities": [1]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_report(rows, Path(tmp) / "shopping.csv").read_text().splitlines()
    ['month,office,alerts,applications,identities', '2024-03,Metro,2,1,1']
    """
    suffix = _suffix(out, REPORT_FORMATS, "report")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(pa.Table.from_pandas(table, preserve_index=False), out)
    else:
        out.write_text(_page(table), encoding="utf-8")
    return out


def _page(table: pd.DataFrame) -> str:
    import altair as alt

    from linkage.charts import chart_libraries

    chart = (
        alt.Chart(table, title="Applications after a refusal at another office, by month")
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="month of the application"),
            y=alt.Y("sum(alerts):Q", title="alerts (application, earlier refusal elsewhere)", stack="zero"),
            color=alt.Color("office:N", title="office of the application"),
            tooltip=["month:O", "office:N", "alerts:Q", "applications:Q", "identities:Q"],
        )
        .properties(width=640, height=320)
    )
    title = "linkage: office shopping"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        + "".join(f"<script>{source}</script>" for source in chart_libraries())
        + f"</head><body><h1>{title}</h1>"
        + "<p>An alert is an application whose identity holds a refusal lodged on an earlier day at another "
        + "office (definitions: linkage/trace.py). Counts only; the applications are listed by "
        + "<code>linkage alerts</code>.</p>"
        + "<div id='chart'></div>"
        + f"<script>vegaEmbed('#chart', {json.dumps(chart.to_dict(), default=str)});</script>"
        + table.to_html(index=False, border=0, escape=True)
        + "</body></html>"
    )


# ------------------------------------------------------------------------------------------- export


def export(store: Store, out: Path) -> int:
    """Write ``record_id, identity_id`` of every stored record, in record-id order, as Parquet or CSV.

    A record that no link run has placed yet has an empty identity_id.

    Args:
        store: an open store (read-only will do).
        out: ``.parquet`` or ``.csv`` file to write; its folder is created.

    Returns:
        The number of records written.

    Raises:
        InputError: ``out`` ends in neither ``.parquet`` nor ``.csv``.

    >>> import tempfile
    >>> from linkage.store import Store
    >>> with Store(":memory:") as store, tempfile.TemporaryDirectory() as tmp:
    ...     export(store, Path(tmp) / "identities.csv")
    0
    """
    suffix = _suffix(out, EXPORT_FORMATS, "export")
    rows = store.arrow(
        """SELECT n.record_id, m.identity_id
           FROM applications_normalised n LEFT JOIN membership m ON m.record_id = n.record_id
           ORDER BY n.record_id""",
        table="export",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(rows, out)
    else:
        _write_csv(rows, out)
    log.info("export: %d records", rows.num_rows)
    return int(rows.num_rows)


_FORMULA: Final = r"^[=+\-@\t\r]"
"""What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection")."""


def _write_csv(table: pa.Table, out: Path) -> None:
    r"""Write ``table`` as CSV, each text cell a spreadsheet would run as a formula behind an apostrophe.

    >>> import tempfile
    >>> rows = pa.table({"id": ["=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "\tx", "Metro", None], "n": range(7)})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _write_csv(rows, Path(tmp) / "x.csv")
    ...     (Path(tmp) / "x.csv").read_text().splitlines()
    ['id,n', "'=1+1,0", "'+cmd|' /C calc'!A0,1", "'-2,2", "'@SUM(A1),3", "'\tx,4", 'Metro,5', ',6']
    """
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            formula = pc.match_substring_regex(column, _FORMULA)
            column = pc.if_else(formula, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    # pandas writes text unquoted unless it must (Arrow's writer quotes every text cell), nulls as empty
    pa.table(columns, names=table.column_names).to_pandas().to_csv(out, index=False)


def _suffix(out: Path, allowed: Sequence[str], what: str) -> str:
    suffix = out.suffix.lower()
    if suffix not in allowed:
        shown = repr(suffix) if suffix else "no suffix"
        raise InputError(
            f"{out}: cannot write the {what} as {shown}{did_you_mean(suffix, allowed)}; use " + " or ".join(allowed)
        )
    return suffix
