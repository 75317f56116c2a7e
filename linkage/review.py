"""The review band: pairs a link run scored but did not link, where an officer should look (issue 12 §3, §4).

Queries only, through :class:`~linkage.store.Store` (a read-only store will do). Two readers:

* :func:`review_alerts`, the **review** level of :func:`linkage.alerts.alerts`: an application X whose
  identity does not hold a refusal R (lodged on an earlier day at another office), but a stored pair joins X
  to R, or to another record of R's identity, with a probability at or above the run's review floor. Such a
  refused person's record is a possible match, not a link. One alert per (X, R), with its best pair; none
  when the latest officer decision between a record of X's side and one of R's side is a cannot-link (a
  record no run has linked yet is its own side). Each says why the pair did not link (:data:`REASONS`).
* :func:`unevidenced`: every record without identity evidence (a name and nothing else, the flag
  ``no_identity_evidence`` set by :mod:`linkage.normalise`), with its name-based candidates.

The run's review floor and threshold are the latest succeeded link run's (its manifest); a store whose runs
did not record them reads the threshold off its links, else the defaults of :class:`~linkage.spec.ModelSpec`.
The stored pairs are the latest run's scores of each pair (:data:`linkage.history.LATEST_PAIR`); a vetoed
pair is kept there at its capped probability (0.5 with the shipped spec). Record ids are not logged; counts are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from linkage.history import LATEST_PAIR
from linkage.spec import ModelSpec

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["REASONS", "review_alerts", "run_cuts", "unevidenced"]

log = logging.getLogger(__name__)

REASONS: Final = ("possible_relative", "no_identity_evidence", "split_by_guard", "weak_evidence")
"""Why a review alert's best pair did not link, the first that holds: the veto held it (twins, a parent
and child: :mod:`linkage.score`); X or the pair's other record has no identity evidence (never linked on a
score); the pair scored at or above the threshold but clustering kept them apart (the guard, or a
decision); else the pair scored between the review floor and the threshold."""

_DEFAULT_THRESHOLD: Final = 0.9  # as the links migration (linkage.tables) assumes for a run that recorded none
NAME_ONLY_FLOOR: Final = 0.5
"""The review floor of a pair with a record without identity evidence, when the run's floor is lower: such a
pair's probability rests on the name alone. At 100k (project generator, seed 7, floor 0.01) those below 0.5
were 1.1 alerts per 1,000 applications, 19 % of them the same person (the other review alerts: 36 %). Every
candidate of such a record stays listed (:func:`unevidenced`, dedupe's ``no_identity_evidence.parquet``)."""

# Each stored record's side: its identity, or itself when no run has linked it ('record:' never starts an
# identity id, which is ID- and hex digits). Scoped to a registration's records, only the records its alerts
# can touch (``near``): the records, the other ends of their pairs, and the members of both's identities (a
# refusal is one of the latter; a cannot-link that holds an alert back joins two of them); the store's million
# rows are probed with these instead of joined whole.
def _sides(scoped: bool) -> str:
    near = "WHERE n.record_id IN (SELECT record_id FROM near)" if scoped else ""
    return f"""sides AS (
    SELECT n.record_id, n.office, n.application_date, n.decision, coalesce(n.no_identity_evidence, false) AS bare,
           m.identity_id, coalesce(m.identity_id, 'record:' || n.record_id) AS side
    FROM applications_normalised n LEFT JOIN membership m ON m.record_id = n.record_id {near}
)"""


_SIDES: Final = _sides(scoped=False)
_NEAR: Final = """near AS MATERIALIZED (
    SELECT unnest($records) AS record_id
    UNION SELECT y FROM ends
    UNION SELECT record_id FROM membership WHERE identity_id IN
          (SELECT identity_id FROM membership WHERE record_id IN (SELECT unnest($records) UNION SELECT y FROM ends))
)"""


# Each stored pair (the latest run's score) from both of its records' side, x the record and y the other,
# with whether the veto held it: its condition held and it lowered the weight (a pair below the cap keeps
# its own, so it is no relative held back).
def _ends(scoped: bool) -> str:
    # scoped: the records' pairs by one side, then the other (a filter on either side read every pair: 21 ms
    # at 1M, 10)
    pairs = """(SELECT * FROM pairs WHERE record_id_l IN (SELECT unnest($records))
         UNION ALL SELECT * FROM pairs WHERE record_id_r IN (SELECT unnest($records))
                                         AND record_id_l NOT IN (SELECT unnest($records)))"""
    return f"""scored AS (
    SELECT p.record_id_l, p.record_id_r, p.match_probability,
           coalesce(p.vetoed AND p.model_match_weight > p.match_weight, false) AS vetoed
    FROM {pairs if scoped else "pairs"} p {LATEST_PAIR}
),
ends AS (
    SELECT record_id_l AS x, record_id_r AS y, match_probability, vetoed FROM scored
    UNION ALL
    SELECT record_id_r, record_id_l, match_probability, vetoed FROM scored
)"""

_ENDS: Final = _ends(scoped=False)


def _review(scoped: bool) -> str:
    """The review alerts' query; parameters: floor, name_only_floor, refusals, since, and when ``scoped``,
    records (only X among them, and only their pairs read)."""
    xs = "AND x.record_id IN (SELECT unnest($records))" if scoped else ""
    pairs = f"{_ends(scoped=True)}, {_NEAR}" if scoped else _ENDS
    return f"""
WITH {pairs}, {_sides(scoped)},
latest AS (
    SELECT kind, record_id_a, record_id_b FROM decisions
    QUALIFY row_number() OVER (PARTITION BY least(record_id_a, record_id_b), greatest(record_id_a, record_id_b)
                               ORDER BY decided_at DESC, decision_id DESC) = 1
),
apart AS (
    SELECT a.side AS a, b.side AS b FROM latest d
    JOIN sides a ON a.record_id = d.record_id_a JOIN sides b ON b.record_id = d.record_id_b
    WHERE d.kind = 'cannot_link'
),
candidates AS (
    SELECT x.identity_id, x.record_id, x.office, x.application_date, x.decision,
           r.record_id AS refused_record_id, r.office AS refused_office, r.application_date AS refused_date,
           r.decision AS refused_decision, r.identity_id AS refused_identity_id,
           e.y AS paired_record_id, e.match_probability, e.vetoed, x.bare OR y.bare AS bare
    FROM ends e
    JOIN sides x ON x.record_id = e.x AND e.match_probability >= $floor
    JOIN sides y ON y.record_id = e.y
    JOIN sides r ON r.side = y.side
    WHERE list_contains($refusals::VARCHAR[], r.decision)
      AND x.office IS NOT NULL AND r.office IS NOT NULL AND x.office <> r.office
      AND r.application_date < x.application_date AND x.application_date >= $since {xs}
      AND x.side <> r.side
      AND (NOT (x.bare OR y.bare) OR e.match_probability >= $name_only_floor)
      AND NOT EXISTS (SELECT 1 FROM apart WHERE (apart.a = x.side AND apart.b = r.side)
                                             OR (apart.a = r.side AND apart.b = x.side))
    QUALIFY row_number() OVER (PARTITION BY x.record_id, r.record_id
                               ORDER BY e.match_probability DESC, e.y = r.record_id DESC, e.y) = 1
)
SELECT c.*, a.decision_reason AS refusal_reason
FROM candidates c LEFT JOIN applications a ON a.record_id = c.refused_record_id
ORDER BY c.match_probability DESC, c.application_date, c.record_id, c.refused_record_id"""


_REVIEW: Final = _review(scoped=False)
_REVIEW_OF: Final = _review(scoped=True)


def run_cuts(store: Store) -> tuple[float, float]:
    """The review floor and the threshold of the store's latest succeeded link run.

    A run that did not record them (older stores) falls back to the threshold its links were kept at, then
    to 0.9 (as the links migration does), and to the spec's default review floor.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     run_cuts(store)
    (0.5, 0.9)
    """
    floor = float(ModelSpec.model_fields["review_floor"].default)
    threshold = None
    row = store.rows(
        "SELECT counts FROM runs WHERE kind = 'link' AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1",
        table="runs",
    )
    if row and row[0][0] is not None:
        counts = json.loads(row[0][0]) if isinstance(row[0][0], str) else row[0][0]
        floor = float(counts.get("review_floor") or floor)
        threshold = counts.get("threshold")
    if threshold is None:
        threshold = store.scalar("SELECT max(threshold) FROM links", table="links")
    return floor, float(_DEFAULT_THRESHOLD if threshold is None else threshold)


def review_alerts(
    store: Store, since: date | None, refused: Sequence[str], *, records: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The review alerts (see the module docstring), best probability first.

    Args:
        store: an open store (read-only will do).
        since: only applications X lodged on or after this day.
        refused: the normalised decisions that count as a refusal (checked by the caller).
        records: only the alerts of these applications (X), reading only their pairs.

    Returns:
        One dict per (X, R), ordered by probability (highest first), X's date, X's and R's record ids, with the
        fields of a linked alert (:func:`linkage.alerts.alerts`; ``identity_id`` is X's, ``None`` when no run
        linked it; ``direct`` says the pair is X–R, else ``via`` holds the pair's other record, of R's
        identity) and ``refused_identity_id``, ``level`` (``"review"``), ``reason`` (one of :data:`REASONS`)
        and ``match_probability``, the best pair's.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     review_alerts(store, None, ["rejected"])
    []
    """
    floor, threshold = run_cuts(store)
    params: dict[str, Any] = {
        "floor": floor,
        "name_only_floor": max(floor, NAME_ONLY_FLOOR),
        "refusals": list(refused),
        "since": since or date.min,
    }
    if records is None:
        rows = store.sql(_REVIEW, params, table="alerts")
    else:
        rows = store.sql(_REVIEW_OF, {**params, "records": list(records)}, table="alerts")
    names = [d[0] for d in rows.description]
    found = []
    for row in rows.fetchall():
        alert = dict(zip(names, row, strict=True))
        vetoed, bare, paired = alert.pop("vetoed"), alert.pop("bare"), alert.pop("paired_record_id")
        if vetoed:
            reason = "possible_relative"
        elif bare:
            reason = "no_identity_evidence"
        elif alert["match_probability"] >= threshold:
            reason = "split_by_guard"
        else:
            reason = "weak_evidence"
        direct = paired == alert["refused_record_id"]
        alert.update(level="review", reason=reason, direct=direct, via=[] if direct else [paired])
        found.append(alert)
    log.info("review alerts: %d at a review floor of %s", len(found), floor)
    return found


def unevidenced(store: Store) -> pd.DataFrame:
    """Every record without identity evidence, with its candidates: the records its stored pairs join it to.

    Args:
        store: an open store (read-only will do).

    Returns:
        One row per (record, candidate), ordered by record id then probability (highest first):
        ``record_id, office, application_date, identity_id`` of the record, ``candidate_record_id,
        candidate_identity_id, match_probability, vetoed`` of the candidate and its pair (the latest run's
        score, at or above the review floor). A record without a candidate has one row with the candidate's
        columns empty. Record ids are personal to the office; the file is for officers, not for logs.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     unevidenced(store).columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['record_id', 'office', 'application_date', 'identity_id', 'candidate_record_id', 'candidate_identity_id',
     'match_probability', 'vetoed']
    """
    floor, _ = run_cuts(store)
    listed: pd.DataFrame = store.sql(
        f"""WITH {_SIDES}, {_ENDS}
            SELECT s.record_id, s.office, s.application_date, s.identity_id, e.y AS candidate_record_id,
                   c.identity_id AS candidate_identity_id, e.match_probability, e.vetoed
            FROM sides s
            LEFT JOIN ends e ON e.x = s.record_id AND e.match_probability >= ?
            LEFT JOIN sides c ON c.record_id = e.y
            WHERE s.bare
            ORDER BY s.record_id, e.match_probability DESC NULLS LAST, e.y""",
        [floor],
        table="unevidenced",
    ).df()
    log.info("records without identity evidence: %d", listed["record_id"].nunique())
    return listed
