"""An identity's history: its applications across offices in time order, what linked each, decisions, events.

Queries only, through :class:`~linkage.store.Store` (a read-only store will do). A record's evidence is its
strongest *link*, an edge clustering kept (the ``links`` table a link run publishes: a pair at or above the
run's threshold, or an officer's must-link), with the comparisons of its scored pair that weighed most. A
pair scored by more than one run counts as the latest run scored it: run ids begin with the run's start
time (:meth:`~linkage.store.Store.begin_run`), so they sort in time. Record ids and identity ids are not
logged; counts are.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from linkage.errors import NotFoundError, did_you_mean
from linkage.risk import indicators

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["IDENTITY_ID", "LATEST_PAIR", "history"]

log = logging.getLogger(__name__)

IDENTITY_ID: Final = re.compile(r"ID-[0-9a-f]{16}")
_TOP_FIELDS: Final = 3  # agreeing comparisons shown as a record's evidence

# The latest row of each scored pair among the pairs of a query (alerts use it too).
LATEST_PAIR: Final = "QUALIFY row_number() OVER (PARTITION BY p.record_id_l, p.record_id_r ORDER BY p.run_id DESC) = 1"


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
        other) or one of its records; ``indicators``, the identity's risk indicators as of today
        (:func:`linkage.risk.indicators`: ``kind, summary, evidence`` each; none for an unlinked record).

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
    risks = indicators(store, [identity_id])[identity_id] if identity_id is not None else []
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
        "indicators": [asdict(i) for i in risks],
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
    """Each record's strongest link to another of ``ids`` (its pair's score; 1 for a must-link never scored
    at the threshold), why it was kept, and its pair's strongest agreeing comparisons when it was scored."""
    if len(ids) < 2:
        return {}
    rows = store.rows(
        f"""WITH scored AS (
                SELECT p.* FROM pairs p
                WHERE p.record_id_l IN (SELECT unnest($ids::VARCHAR[]))
                  AND p.record_id_r IN (SELECT unnest($ids::VARCHAR[]))
                {LATEST_PAIR}
            )
            SELECT k.record_id_l, k.record_id_r, k.match_probability,
                   p.match_weight, coalesce(p.vetoed, false), p.gammas, p.weights, m.comparisons, k.kept
            FROM links k
            LEFT JOIN scored p ON least(p.record_id_l, p.record_id_r) = k.record_id_l
                               AND greatest(p.record_id_l, p.record_id_r) = k.record_id_r
            LEFT JOIN models m ON m.model_id = p.model_id
            WHERE k.record_id_l IN (SELECT unnest($ids::VARCHAR[]))
              AND k.record_id_r IN (SELECT unnest($ids::VARCHAR[]))""",
        {"ids": list(ids)},
        table="history",
    )
    best: dict[str, dict[str, Any]] = {}
    for left, right, probability, weight, vetoed, gammas, weights, comparisons, kept in rows:
        for record, other in ((left, right), (right, left)):
            found = {
                "other_record_id": other,
                "match_probability": probability,
                "match_weight": weight,
                "vetoed": bool(vetoed),
                "kept": kept,
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
