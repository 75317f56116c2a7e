"""A profile of what the store holds: counts, fill rates, identity-number quality and issues.

Aggregates only; this is what the main job prints after ingest and what ``linkage profile`` shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linkage.schema import ROLES
from linkage.store import Store

__all__ = ["Profile", "profile", "runs"]

# normalised column that holds each role's usable value
_NORMALISED = {
    "record_id": "record_id",
    "office": "office",
    "application_date": "application_date",
    "full_name": "full_name_canonical",
    "sex": "sex",
    "birth_date": "birth_date",
    "birth_place": "birth_place",
    "nik": "nik",
    "mother_name": "mother_name_canonical",
    "address": "address",
    "phone": "phone",
    "prior_passport_no": "prior_passport_no",
    "decision": "decision",
    "decision_reason": None,
    "postcode": "postcode",
    "locality": "locality",
    "region": "region",
}


@dataclass
class Profile:
    """Aggregate figures of a store."""

    applications: int = 0
    quarantined: int = 0
    runs: dict[str, dict[str, int]] = field(default_factory=dict)
    """kind (ingest, link) -> status (succeeded, failed, interrupted) -> runs"""
    by_office: dict[str, int] = field(default_factory=dict)
    by_decision: dict[str, int] = field(default_factory=dict)
    fill: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    """role -> (share of rows with a raw value, share with a usable normalised value)"""
    nik_status: dict[str, int] = field(default_factory=dict)
    nik_dob_agrees: float | None = None
    nik_sex_agrees: float | None = None
    distinct_names: int = 0
    with_titles: int = 0
    with_degrees: int = 0
    with_patronym: int = 0
    top_name_tokens: list[tuple[str, int]] = field(default_factory=list)
    no_identity_evidence: int = 0
    """applications with a name and nothing else that identifies a person (never linked on a score)"""
    no_identity_evidence_share: float = 0.0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    field_issues_by_reason: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["field_issues_by_reason"] = {f"{k[0]}:{k[1]}": v for k, v in self.field_issues_by_reason.items()}
        out["fill"] = {k: {"raw": v[0], "normalised": v[1]} for k, v in self.fill.items()}
        return out


def profile(store: Store, *, top: int = 10) -> Profile:
    """Compute the profile of everything in ``store``."""
    p = Profile()
    p.applications = store.count("applications")
    p.quarantined = store.count("quarantine")
    p.runs = runs(store)
    if p.applications:
        p.by_office = _counts(
            store, "SELECT coalesce(office, '(none)'), count(*) FROM applications_normalised GROUP BY 1"
        )
        p.by_decision = _counts(
            store, "SELECT coalesce(decision, '(none)'), count(*) FROM applications_normalised GROUP BY 1"
        )
        raw = ", ".join(f"avg(({r} IS NOT NULL)::INT)" if r != "record_id" else "1.0" for r in ROLES)
        columns = (_NORMALISED[r] for r in ROLES)  # every role has an entry (None: no normalised column)
        norm = ", ".join(f"avg(({c} IS NOT NULL)::INT)" if c else "NULL" for c in columns)
        raw_share = store.rows(f"SELECT {raw} FROM applications")[0]
        norm_share = store.rows(f"SELECT {norm} FROM applications_normalised")[0]
        shares = zip(ROLES, raw_share, norm_share, strict=True)
        p.fill = {r: (float(a), None if b is None else float(b)) for r, a, b in shares}
        p.no_identity_evidence = int(
            store.scalar("SELECT count(*) FILTER (WHERE no_identity_evidence) FROM applications_normalised")
        )
        p.no_identity_evidence_share = p.no_identity_evidence / p.applications
        p.nik_status = _counts(store, "SELECT nik_status, count(*) FROM applications_normalised GROUP BY 1")
        agree = store.rows("SELECT avg(nik_dob_agrees::INT), avg(nik_sex_agrees::INT) FROM applications_normalised")
        p.nik_dob_agrees, p.nik_sex_agrees = agree[0]
        (
            p.distinct_names,
            p.with_titles,
            p.with_degrees,
            p.with_patronym,
        ) = store.rows(
            """SELECT count(DISTINCT full_name_canonical), count(name_titles), count(name_degrees), count(patronym)
               FROM applications_normalised"""
        )[0]
        p.top_name_tokens = [
            (str(t), int(n))
            for t, n in store.rows(
                """SELECT token, count(*) AS n FROM (SELECT unnest(full_name_tokens) AS token
                   FROM applications_normalised) GROUP BY token ORDER BY n DESC, token LIMIT ?""",
                [top],
            )
        ]
    p.quarantine_by_reason = _counts(store, "SELECT reason, count(*) FROM quarantine GROUP BY 1")
    p.field_issues_by_reason = {
        (str(f), str(r)): int(n)
        for f, r, n in store.rows(
            "SELECT field, reason, count(*) FROM field_issues GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        )
    }
    return p


def runs(store: Store) -> dict[str, dict[str, int]]:
    """The store's runs by kind and status, kinds and statuses in name order.

    A run still ``running`` is counted as ``interrupted``: a profile reads the store, which DuckDB does not
    allow while another process writes it, so no run can be going on (the next ingest, link or decide
    marks it so).

    >>> with Store(":memory:") as store:
    ...     for kind, status in [("ingest", "succeeded"), ("link", "running"), ("link", "interrupted")]:
    ...         _ = store.sql("INSERT INTO runs (run_id, kind, status) VALUES (uuid()::VARCHAR, ?, ?)", [kind, status])
    ...     runs(store)
    {'ingest': {'succeeded': 1}, 'link': {'interrupted': 2}}
    """
    found: dict[str, dict[str, int]] = {}
    for kind, status, n in store.rows(
        """SELECT kind, CASE status WHEN 'running' THEN 'interrupted' ELSE status END AS shown, count(*)
           FROM runs GROUP BY ALL ORDER BY kind, shown"""
    ):
        found.setdefault(str(kind), {})[str(status)] = int(n)
    return found


def _counts(store: Store, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(store.rows(sql), key=lambda kv: (-kv[1], str(kv[0])))}
