"""Risk indicators per identity (issue 13 §5): what a person *did*, never who the person *is*.

An officer at the counter sees, beside a matched identity, the facts in its records that call for a closer look.
Each :class:`Indicator` has a ``kind`` (one of :data:`KINDS`), an English ``summary`` and its ``evidence``: the
record ids it rests on and counts, so that every indicator can be followed to the applications behind it.

* ``earlier_refusal``: one per refusal in the identity (decision in ``refusals``, by default
  :data:`linkage.schema.REFUSALS`) lodged on or before ``today`` (an undated one counts: it is on record), with
  its office, date and reason as written.
* ``several_offices``: applications at two or more offices within ``window_days`` of each other (at most that
  many days from the first to the last). The dated applications are read in date order and cut into windows
  greedily: each window starts at the earliest application not in an earlier window that starts one, so windows
  never overlap and the same store always gives the same ones. One indicator per window that spans two offices.
* ``several_niks``: more than one distinct valid NIK among the identity's records (a second KTP, or a borrowed
  one). The evidence groups the record ids by NIK and never holds a NIK: the caller decides what to show.
* ``nik_contradicts``: records whose valid NIK encodes another birth date or sex than the record's own (the
  normalised ``nik_dob_agrees`` / ``nik_sex_agrees``, as the model input's ``nik_contradicts`` reads them; a
  NIK that is not valid is a typo more often than someone else's, so it takes no part).
* ``shared_contact``: a phone, or a household address (village, RT and RW all known), that records of at least
  :data:`SHARED_WITH` *other* identities carry too (a possible recruiter's or agent's). Records no link run
  has placed yet take no part: they may be this very person's.

**What no indicator uses.** Age, sex, religion, ethnicity and region of origin are not risk: profiling by them
(domain notes §5.3 quotes offices that did) would flag people for who they are. No indicator reads a birth date,
a sex, a place of birth or a NIK's region as a value. ``nik_contradicts`` compares a NIK with the record that
carries it (consistency of one document with another), whatever either says; ``several_niks`` counts NIKs.
``tests/test_risk.py`` holds the kinds to exactly these five, and checks that giving every applicant the other
sex, another age and another province of birth (their NIKs to match) changes no indicator.

Queries only, through :class:`~linkage.store.Store` (a read-only store will do), the same few for any number
of identities, each on one table by one key: the members of the identities (``membership.identity_id``),
their records and the reasons of their refusals (``record_id``), the records that carry their phones
(``phone``) and households (``address_village``), and those records' identities (``membership.record_id``).
The first four kinds are reckoned from the members' rows in Python. Where those keys are indexed each
statement is a lookup of a few rows (about 2 ms at 1M records); without an index it scans its table (about
30 ms at 1M). Only ``membership.record_id`` is indexed today (its primary key): the others await a migration.
Record ids and identity ids are not logged; counts are.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from linkage.errors import InputError, did_you_mean
from linkage.schema import DECISIONS, REFUSALS

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["KINDS", "SHARED_WITH", "WINDOW_DAYS", "Carriers", "Indicator", "Record", "indicators", "reckon"]

log = logging.getLogger(__name__)

Kind = Literal["earlier_refusal", "several_offices", "several_niks", "nik_contradicts", "shared_contact"]
KINDS: Final[tuple[Kind, ...]] = (
    "earlier_refusal", "several_offices", "several_niks", "nik_contradicts", "shared_contact"
)  # fmt: skip
"""The kinds of indicator, in the order an identity's indicators are listed."""

WINDOW_DAYS: Final = 180
"""Applications at several offices within this many days of each other are an indicator ("a few months")."""

# A phone or a household is an indicator when records of at least this many other identities carry it. One
# other is the common innocent case and must not flag anyone: a family shares one phone and the family card's
# address (domain notes §3.2, §3.4), so a spouse, a parent or a sibling who also applied makes one. Two others
# still happen in a family, but then the officer sees the count and the records, and a recruiter's number or a
# sponsor's address gathers many more; three would miss a small agent's first few clients.
SHARED_WITH: Final = 2
_LISTED: Final = 20  # other identities' record ids listed in a shared contact's evidence (all are counted)

# Each statement below reads one table by one key, a list of bound values (the first parameter), so that an
# index on the key answers it with a lookup of a few rows instead of a scan of the table (see the module
# docstring). DuckDB turns the semi-join into such a lookup only for a list of at most 50 values (its setting
# dynamic_or_filter_threshold; 51 keys took 56 ms against 3 ms for 50 at 1M rows), so lists go in chunks.
_CHUNK: Final = 50
# Past this many keys (an analyst's ask, not an officer's) one scan of the table is cheaper than the lookups: a
# scan costs about as much as 20 lookups at 1M rows.
_SCAN_FROM: Final = 1000
_MEMBERS: Final = """
SELECT identity_id, record_id FROM membership WHERE identity_id IN (SELECT unnest(?::VARCHAR[]))"""
_RECORDS: Final = """
SELECT record_id, office, application_date, decision, nik,
       nik IS NOT NULL AND NOT nik_dob_agrees AS nik_date_contradicts,
       nik IS NOT NULL AND NOT nik_sex_agrees AS nik_sex_contradicts,
       phone, address_village, address_rt, address_rw
FROM applications_normalised WHERE record_id IN (SELECT unnest(?::VARCHAR[]))"""
_REASONS: Final = """
SELECT record_id, decision_reason FROM applications WHERE record_id IN (SELECT unnest(?::VARCHAR[]))"""
_BY_PHONE: Final = """
SELECT record_id, phone FROM applications_normalised WHERE phone IN (SELECT unnest(?::VARCHAR[]))"""
_BY_VILLAGE: Final = """
SELECT record_id, address_village, address_rt, address_rw FROM applications_normalised
WHERE address_village IN (SELECT unnest(?::VARCHAR[]))
  AND address_rt IN (SELECT unnest(?::VARCHAR[])) AND address_rw IN (SELECT unnest(?::VARCHAR[]))"""
_LINKED: Final = """
SELECT record_id, identity_id FROM membership
WHERE record_id IN (SELECT unnest(?::VARCHAR[])) AND identity_id IS NOT NULL"""


@dataclass(frozen=True)
class Indicator:
    """One risk indicator of an identity: its kind, a line of English, and the records and counts behind it."""

    kind: Kind
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)  # record ids, counts, offices, ISO dates: plain JSON


@dataclass(frozen=True)
class Record:
    """One record of an identity, as the indicators read it (the reason as written only for a refusal)."""

    identity_id: str
    record_id: str
    office: str | None
    application_date: dt.date | None
    decision: str | None
    decision_reason: str | None
    nik: str | None
    nik_date_contradicts: bool | None
    nik_sex_contradicts: bool | None
    phone: str | None
    village: str | None
    rt: str | None
    rw: str | None

    @property
    def household(self) -> tuple[str, str, str] | None:
        """Village, RT and RW when all three are known: one household (a street address alone is not)."""
        if self.village is None or self.rt is None or self.rw is None:
            return None
        return self.village, self.rt, self.rw


def indicators(
    store: Store,
    identity_ids: Sequence[str],
    *,
    today: dt.date | None = None,
    window_days: int = WINDOW_DAYS,
    refusals: Sequence[str] = REFUSALS,
) -> dict[str, list[Indicator]]:
    """The risk indicators of each identity, from its records in the store (see the module docstring).

    Args:
        store: an open store (read-only will do).
        identity_ids: the identities; an id the store does not hold has no indicators.
        today: the day of the question; a refusal lodged after it is not an earlier one, and applications
            after it take no part in ``several_offices`` (default: the machine's date).
        window_days: the longest span, in days, of applications at several offices that is an indicator.
        refusals: the decisions that count as a refusal (see :mod:`linkage.evaluate`).

    Returns:
        Every identity asked for, each with its indicators in the order of :data:`KINDS`; within a kind,
        refusals and windows by date (undated refusals last), shared contacts by their first record id.

    Raises:
        InputError: ``window_days`` is negative, or a refusal is not one of the normalised decisions.

    >>> from linkage.store import Store
    >>> with Store(":memory:") as store:
    ...     indicators(store, ["ID-0123456789abcdef"])
    {'ID-0123456789abcdef': []}
    """
    if window_days < 0:
        raise InputError(f"window_days must be 0 or more days, not {window_days!r}")
    unknown = [r for r in refusals if r not in DECISIONS]
    if unknown:
        raise InputError(
            f"unknown decision {unknown[0]!r} as a refusal{did_you_mean(unknown[0], DECISIONS)}; "
            f"use one of {', '.join(DECISIONS)}"
        )
    ids = sorted(set(identity_ids))
    records = _records(store, ids, refusals)
    return reckon(ids, records, _carriers(store, records), today=today, window_days=window_days, refusals=refusals)


Carriers = tuple[dict[tuple[str, Any], set[str]], dict[str, str]]
"""The records that carry each phone and household of the identities asked for, ``(contact, value) -> record
ids``, with every identity's own records among them; and the identity of each such record that a run linked."""


def reckon(
    ids: Sequence[str],
    records: dict[str, list[Record]],
    carriers: Carriers,
    *,
    today: dt.date | None = None,
    window_days: int = WINDOW_DAYS,
    refusals: Sequence[str] = REFUSALS,
) -> dict[str, list[Indicator]]:
    """The indicators of the identities ``ids`` (:func:`indicators`) from their records and the carriers of their
    contacts, however those were read: from the store (:func:`indicators`) or from the warm scorer's snapshot
    (:mod:`linkage.warm`, which ``tests/test_query.py`` holds to the same answer)."""
    day = today if today is not None else dt.date.today()
    shared = _shared_contacts(records, carriers)
    found: dict[str, list[Indicator]] = {}
    for identity in ids:
        mine = records.get(identity, [])
        found[identity] = [
            *_earlier_refusals(mine, day, refusals),
            *_several_offices(mine, day, window_days),
            *_several_niks(mine),
            *_nik_contradicts(mine),
            *shared.get(identity, []),
        ]
    log.info(
        "risk: %d identities, %d records, %d indicators",
        len(ids), sum(map(len, records.values())), sum(map(len, found.values())),
    )  # fmt: skip
    return found


def _records(store: Store, ids: list[str], refusals: Sequence[str]) -> dict[str, list[Record]]:
    """The records of each identity, by record id; the reason as written is read for the refusals only."""
    identity = {r: i for i, r in _lookup(store, _MEMBERS, ids)}
    rows = sorted(_lookup(store, _RECORDS, identity), key=lambda row: str(row[0]))
    reasons = dict(_lookup(store, _REASONS, (row[0] for row in rows if row[3] in refusals)))
    records: dict[str, list[Record]] = defaultdict(list)
    for record_id, office, day, decision, nik, date_contradicts, sex_contradicts, *contact in rows:
        records[identity[record_id]].append(
            Record(identity[record_id], record_id, office, day, decision, reasons.get(record_id), nik,
                    date_contradicts, sex_contradicts, *contact)
        )  # fmt: skip
    return records


def _lookup(store: Store, sql: str, keys: Iterable[str], *lists: list[str]) -> list[tuple[Any, ...]]:
    """The rows of one keyed statement for all ``keys`` (sorted, each once), :data:`_CHUNK` keys at a time
    (all at once from :data:`_SCAN_FROM` keys)."""
    ordered = sorted(set(keys))
    step = len(ordered) if len(ordered) >= _SCAN_FROM else _CHUNK
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(ordered), step):
        found += store.rows(sql, [ordered[start : start + step], *lists], table="risk")
    return found


def _earlier_refusals(records: Iterable[Record], today: dt.date, refusals: Sequence[str]) -> list[Indicator]:
    """One indicator per refusal lodged on or before ``today`` (or undated), oldest first."""
    refused = [
        r for r in records
        if r.decision in refusals and (r.application_date is None or r.application_date <= today)
    ]  # fmt: skip
    refused.sort(key=lambda r: (r.application_date or dt.date.max, r.record_id))
    return [
        Indicator(
            "earlier_refusal",
            f"{r.decision} at {r.office or 'an unknown office'}"
            f"{f' on {r.application_date.isoformat()}' if r.application_date else ', undated'}"
            f"{f': {r.decision_reason}' if r.decision_reason else ''}",
            {
                "records": [r.record_id],
                "office": r.office,
                "date": r.application_date.isoformat() if r.application_date else None,
                "decision": r.decision,
                "reason": r.decision_reason,
            },
        )
        for r in refused
    ]


def _several_offices(records: Iterable[Record], today: dt.date, window_days: int) -> list[Indicator]:
    """Windows of at most ``window_days`` that hold applications at two or more offices (see the module doc).

    >>> from datetime import date
    >>> def app(i, office, day):
    ...     return Record("I", i, office, day, None, None, None, None, None, None, None, None, None)
    >>> found = _several_offices([app("a", "Metro", date(2024, 1, 1)), app("b", "Liwa", date(2024, 6, 29)),
    ...                           app("c", "Liwa", date(2025, 1, 1))], date(2025, 6, 1), 180)
    >>> [(i.evidence["records"], i.evidence["span_days"]) for i in found]
    [(['a', 'b'], 180)]
    """
    dated = sorted(
        (r.application_date, r.record_id, r)
        for r in records
        if r.office is not None and r.application_date is not None and r.application_date <= today
    )
    found: list[Indicator] = []
    start = 0
    while start < len(dated):
        first = dated[start][0]
        end = start
        while end + 1 < len(dated) and dated[end + 1][0] <= first + dt.timedelta(days=window_days):
            end += 1
        window = [r for _, _, r in dated[start : end + 1]]
        offices = sorted({r.office for r in window if r.office is not None})
        if len(offices) < 2:
            start += 1
            continue
        last = dated[end][0]
        span = (last - first).days
        found.append(
            Indicator(
                "several_offices",
                f"{len(window)} applications at {len(offices)} offices ({', '.join(offices)}) within {span} days, "
                f"{first.isoformat()} to {last.isoformat()}",
                {
                    "records": [r.record_id for r in window],
                    "offices": offices,
                    "span_days": span,
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                },
            )
        )
        start = end + 1
    return found


def _several_niks(records: Iterable[Record]) -> list[Indicator]:
    """One indicator when the records hold two or more distinct valid NIKs: record ids grouped by NIK."""
    by_nik: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.nik is not None:
            by_nik[r.nik].append(r.record_id)
    if len(by_nik) < 2:
        return []
    groups = sorted(sorted(group) for group in by_nik.values())  # by their first record id: no NIK order leaks
    return [
        Indicator(
            "several_niks",
            f"{len(groups)} different valid NIKs across {sum(map(len, groups))} applications",
            {"niks": len(groups), "records_by_nik": groups, "records": [r for group in groups for r in group]},
        )
    ]


def _nik_contradicts(records: Iterable[Record]) -> list[Indicator]:
    """One indicator naming the records whose valid NIK encodes another birth date or sex than theirs."""
    date = sorted(r.record_id for r in records if r.nik_date_contradicts)
    sex = sorted(r.record_id for r in records if r.nik_sex_contradicts)
    both = sorted(set(date) | set(sex))
    if not both:
        return []
    what = " and ".join(part for part, ids in (("birth date", date), ("sex", sex)) if ids)
    return [
        Indicator(
            "nik_contradicts",
            f"{len(both)} application{'s' if len(both) > 1 else ''} whose NIK encodes another {what} than the "
            f"record states",
            {"records": both, "birth_date": date, "sex": sex},
        )
    ]


def _carriers(store: Store, records: dict[str, list[Record]]) -> Carriers:
    """The carriers of the records' phones and households (:data:`Carriers`): the same lookups for all of them."""
    phones = {r.phone for rs in records.values() for r in rs if r.phone is not None}
    households = {h for rs in records.values() for r in rs if (h := r.household) is not None}
    # (contact, value) -> the records that carry it, from every identity and none
    carriers: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for record, phone in _lookup(store, _BY_PHONE, phones):
        carriers[("phone", phone)].add(record)
    rts, rws = sorted({h[1] for h in households}), sorted({h[2] for h in households})
    for record, *household in _lookup(store, _BY_VILLAGE, (h[0] for h in households), rts, rws):
        if tuple(household) in households:  # another RT or RW of the village is another household
            carriers[("household", tuple(household))].add(record)
    identity = dict(_lookup(store, _LINKED, set().union(*carriers.values())))
    return carriers, identity


def _shared_contacts(records: dict[str, list[Record]], found_carriers: Carriers) -> dict[str, list[Indicator]]:
    """The ``shared_contact`` indicators of each identity."""
    carriers, linked = found_carriers
    identity = dict(linked)
    for rs in records.values():  # the identities asked for hold their records, as far as the store goes
        identity.update((r.record_id, r.identity_id) for r in rs)
    found: dict[str, list[Indicator]] = defaultdict(list)
    for me, mine in sorted(records.items()):
        values: set[tuple[str, Any]] = {("phone", r.phone) for r in mine if r.phone is not None}
        values |= {("household", h) for r in mine if (h := r.household) is not None}
        for contact, value in values:
            own = sorted(r.record_id for r in mine if (r.phone if contact == "phone" else r.household) == value)
            by_identity: dict[str, list[str]] = defaultdict(list)
            for record in carriers.get((contact, value), ()):
                if identity.get(record, me) != me:  # not linked (no identity yet): maybe this very person
                    by_identity[identity[record]].append(record)
            if len(by_identity) < SHARED_WITH:
                continue
            other_records = sorted(r for rs in by_identity.values() for r in rs)
            what = "phone number" if contact == "phone" else "household address (village, RT and RW)"
            found[me].append(
                Indicator(
                    "shared_contact",
                    f"{what} shared with {len(by_identity)} other identities ({len(other_records)} applications)",
                    {
                        "contact": contact,
                        "records": own,
                        "other_identities": len(by_identity),
                        "other_records": len(other_records),
                        "other_record_ids": other_records[:_LISTED],
                    },
                )
            )
        found[me].sort(key=lambda i: (i.evidence["records"][0], i.evidence["contact"]))
    return found
