"""Apply the field rules to batches of accepted rows: normalised columns plus field issues.

The rules themselves are pure functions in :mod:`linkage.names`, :mod:`linkage.nik`,
:mod:`linkage.dates`, :mod:`linkage.places`, :mod:`linkage.phone` and :mod:`linkage.passport`;
this module runs them in the order of :data:`STEPS` over columns. Each rule runs once per
*distinct* value of a column (names, places and dates repeat a lot), and batches are spread
over worker processes.

A bad field never costs the row: its normalised value is left empty, the raw value stays in
the store, and a field issue ``(record_id, field, value, reason)`` is recorded.

>>> out = normalise_batch({"record_id": ["a"], "full_name": ["Moch. Rizki"], "nik": ["123"]})
>>> out.columns["full_name_canonical"], out.columns["nik"], out.issues
(['MUHAMMAD RIZKI'], [None], [('a', 'nik', '123', 'nik_length')])
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from linkage import dates, names, nik, passport, phone, places
from linkage.schema import DECISIONS

__all__ = ["COLUMNS", "IDENTITY_EVIDENCE", "STEPS", "Normalised", "normalise_batch", "normalise_parallel"]

T = TypeVar("T")
R = TypeVar("R")
Issue = tuple[str, str, str | None, str]
Columns = dict[str, list[Any]]

# The normalised table, column by column (name, DuckDB type): the store builds its DDL from this.
COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("record_id", "VARCHAR"),
    ("office", "VARCHAR"),
    ("application_date", "DATE"),
    ("full_name_canonical", "VARCHAR"),
    ("full_name_tokens", "VARCHAR[]"),
    ("full_name_concat", "VARCHAR"),
    ("full_name_keys", "VARCHAR[]"),
    ("full_name_key", "VARCHAR"),
    ("name_titles", "VARCHAR[]"),
    ("name_degrees", "VARCHAR[]"),
    ("patronym", "VARCHAR"),
    ("gender_marker", "VARCHAR"),
    ("sex", "VARCHAR"),
    ("birth_date", "DATE"),
    ("birth_place", "VARCHAR"),
    ("birth_place_regency", "VARCHAR"),
    ("nik", "VARCHAR"),
    ("nik_digits", "VARCHAR"),
    ("nik_status", "VARCHAR"),
    ("nik_province", "VARCHAR"),
    ("nik_regency", "VARCHAR"),
    ("nik_district", "VARCHAR"),
    ("nik_birth_date", "DATE"),
    ("nik_sex", "VARCHAR"),
    ("nik_serial", "VARCHAR"),
    ("nik_dob_agrees", "BOOLEAN"),
    ("nik_sex_agrees", "BOOLEAN"),
    ("mother_name_canonical", "VARCHAR"),
    ("mother_name_tokens", "VARCHAR[]"),
    ("mother_name_concat", "VARCHAR"),
    ("mother_name_keys", "VARCHAR[]"),
    ("mother_name_key", "VARCHAR"),
    ("address", "VARCHAR"),
    ("address_rt", "VARCHAR"),
    ("address_rw", "VARCHAR"),
    ("address_village", "VARCHAR"),
    ("phone", "VARCHAR"),
    ("prior_passport_no", "VARCHAR"),
    ("decision", "VARCHAR"),
    ("postcode", "VARCHAR"),
    ("locality", "VARCHAR"),
    ("region", "VARCHAR"),
    ("no_identity_evidence", "BOOLEAN"),
)

# The normalised columns that identify a person beyond the name (issue 12 §4): a record with none of them
# (junk such as "-" is already None here) is an application all the same, but is never linked automatically.
# "nik_digits", not "nik": a mistyped NIK (15 digits, a bad date part) is still evidence the model compares.
IDENTITY_EVIDENCE: Final = (
    "birth_date", "nik_digits", "mother_name_canonical", "phone", "address", "prior_passport_no"
)  # fmt: skip

# Indonesian decision words (domain notes §5.2) onto the canonical decisions.
_DECISION_WORDS: Final[dict[str, str]] = {
    **{d: d for d in DECISIONS},
    "diterbitkan": "issued",
    "terbit": "issued",
    "selesai": "issued",
    "ditolak": "rejected",
    "tolak": "rejected",
    "refused": "rejected",
    "ditunda": "postponed",
    "ditangguhkan": "postponed",
    "tunda": "postponed",
    "dibatalkan": "cancelled",
    "batal": "cancelled",
    "canceled": "cancelled",
    "proses": "pending",
    "diproses": "pending",
    "menunggu": "pending",
}
_SPACES: Final = re.compile(r"\s+")
_WARM_UP: Final[dict[str, list[Any]]] = {
    "record_id": ["warm-up"],
    "full_name": ["Siti Aminah"],
    "nik": ["1871014508900001"],
    "birth_place": ["Bandar Lampung"],
    "address": ["Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa"],
    "phone": ["0812-3456-7890"],
}
_ID_CHARS: Final = re.compile(r"[^0-9A-Z]")
_PLACE_WORDS: Final = re.compile(r"[^\W_]+")


@dataclass
class Normalised:
    """The normalised columns of one batch (see :data:`COLUMNS`) and its field issues."""

    columns: Columns
    issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    id_scheme: Literal["nik", "generic"]
    name_rules: Literal["indonesian", "latin"]
    phone_region: str
    today: dt.date
    earliest: dt.date


Rule = Callable[[str | None], tuple[Any, ...]]
"""A field rule for one raw value: its output values, in order, and last a tuple of issue codes."""


def _apply(raw: Columns, role: str, rule: Rule, outputs: tuple[str, ...], out: Columns, issues: list[Issue]) -> None:
    """Run ``rule`` once per distinct value of ``raw[role]``, spread its outputs over columns, collect issues."""
    values = raw.get(role) or [None] * len(raw["record_id"])
    cache = {v: rule(v) for v in set(values)}
    rows = [cache[v] for v in values]
    for i, name in enumerate(outputs):
        out[name] = [r[i] for r in rows]
    ids, last = raw["record_id"], len(outputs)
    issues.extend((ids[n], role, values[n], why) for n, r in enumerate(rows) if r[last] for why in r[last])


@functools.cache
def _name_rule(rules: Literal["indonesian", "latin"], with_parts: bool) -> Rule:
    @functools.lru_cache(maxsize=1 << 18)  # kept across batches: common names come back in every batch
    def rule(value: str | None) -> tuple[Any, ...]:
        p = names.normalise_name(value, rules=rules)
        found = ("name_no_letters",) if value and value.strip() and not p.tokens else ()
        head = (p.canonical or None, p.tokens or None, p.concat or None, p.keys or None, names.name_key(p) or None)
        if not with_parts:
            return (*head, found)
        return (*head, p.titles or None, p.degrees or None, p.patronym, p.gender_marker, found)

    return rule


_NAME_OUTPUTS: Final = ("canonical", "tokens", "concat", "keys", "key")


def _step_names(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    full = (*tuple(f"full_name_{o}" for o in _NAME_OUTPUTS), "name_titles", "name_degrees", "patronym", "gender_marker")
    _apply(raw, "full_name", _name_rule(ctx.name_rules, True), full, out, issues)
    mother = tuple(f"mother_name_{o}" for o in _NAME_OUTPUTS)
    _apply(raw, "mother_name", _name_rule(ctx.name_rules, False), mother, out, issues)


def _step_sex(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    def rule(value: str | None) -> tuple[Any, ...]:
        r = dates.parse_sex(value)
        return r.value, (r.issue,) if r.issue else ()

    _apply(raw, "sex", rule, ("sex",), out, issues)


@functools.cache
def _date_rule(today: dt.date, earliest: dt.date) -> Rule:
    @functools.lru_cache(maxsize=1 << 17)  # birth dates repeat across batches
    def rule(value: str | None) -> tuple[Any, ...]:
        r = dates.parse_date(value, today=today, earliest=earliest)
        return r.value, (r.issue,) if r.issue else ()

    return rule


def _step_dates(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    for role in ("application_date", "birth_date"):
        _apply(raw, role, _date_rule(ctx.today, ctx.earliest), (role,), out, issues)


_NIK_OUTPUTS: Final = (
    "nik",
    "nik_digits",
    "nik_status",
    "nik_province",
    "nik_regency",
    "nik_district",
    "nik_birth_date",
    "nik_sex",
    "nik_serial",
)


def _step_nik(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    def generic(value: str | None) -> tuple[Any, ...]:
        cleaned = _ID_CHARS.sub("", value.upper()) or None if value else None
        return cleaned, cleaned, "valid" if cleaned else "missing", None, None, None, None, None, None, ()

    def indonesian(value: str | None) -> tuple[Any, ...]:
        i = nik.parse_nik(value, today=ctx.today)
        return (i.nik, i.digits, i.status, i.province_code, i.regency_code, i.district_code, i.birth_date, i.sex,
                i.serial, i.issues)  # fmt: skip

    _apply(raw, "nik", generic if ctx.id_scheme == "generic" else indonesian, _NIK_OUTPUTS, out, issues)
    # NIK-implied birth date and sex against the stated ones: evidence for matching, not errors.
    out["nik_dob_agrees"] = [
        None if a is None or b is None else a == b
        for a, b in zip(out["nik_birth_date"], out["birth_date"], strict=True)
    ]
    out["nik_sex_agrees"] = [
        None if a is None or b is None else a == b for a, b in zip(out["nik_sex"], out["sex"], strict=True)
    ]


def _step_places(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    def birth_place(value: str | None) -> tuple[Any, ...]:
        r = places.normalise_birth_place(value)
        return r.canonical, r.regency_code, (r.issue,) if r.issue else ()

    def address(value: str | None) -> tuple[Any, ...]:
        r = places.normalise_address(value)
        return r.canonical, r.rt, r.rw, r.village, (r.issue,) if r.issue else ()

    _apply(raw, "birth_place", birth_place, ("birth_place", "birth_place_regency"), out, issues)
    _apply(raw, "address", address, ("address", "address_rt", "address_rw", "address_village"), out, issues)
    _apply(raw, "postcode", _postcode, ("postcode",), out, issues)
    for role in ("locality", "region"):
        _apply(raw, role, _place_part, (role,), out, issues)


def _postcode(value: str | None) -> tuple[Any, ...]:
    """A postal code as its digits and letters, upper-cased: ``"sw1a 1aa"`` → ``"SW1A1AA"``."""
    return (_ID_CHARS.sub("", value.upper()) or None if value else None), ()


def _place_part(value: str | None) -> tuple[Any, ...]:
    """A locality or region as upper-case words: punctuation dropped, spaces collapsed."""
    words = _PLACE_WORDS.findall(value.upper()) if value else []
    return (" ".join(words) or None), ()


def _step_contact(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    def phone_rule(value: str | None) -> tuple[Any, ...]:
        r = phone.normalise_phone(value, default_region=ctx.phone_region)
        return r.e164, (r.issue,) if r.issue else ()

    def passport_rule(value: str | None) -> tuple[Any, ...]:
        r = passport.normalise_passport(value)
        return r.number, (r.issue,) if r.issue else ()

    _apply(raw, "phone", phone_rule, ("phone",), out, issues)
    _apply(raw, "prior_passport_no", passport_rule, ("prior_passport_no",), out, issues)


def _office(value: str | None) -> tuple[Any, ...]:
    return (_SPACES.sub(" ", value.strip()) or None if value else None), ()


def _decision(value: str | None) -> tuple[Any, ...]:
    if not value or not value.strip():
        return None, ()
    found = _DECISION_WORDS.get(_SPACES.sub(" ", value.strip().lower()))
    return (found, ()) if found else (None, ("decision_unknown",))


def _step_office_decision(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    _apply(raw, "office", _office, ("office",), out, issues)
    _apply(raw, "decision", _decision, ("decision",), out, issues)


def _step_record_id(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    out["record_id"] = list(raw["record_id"])


def _step_evidence(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    columns = [out[c] for c in IDENTITY_EVIDENCE]
    out["no_identity_evidence"] = [all(v is None for v in row) for row in zip(*columns, strict=True)]


# Order matters: the NIK cross-check reads the normalised birth date and sex; the evidence flag reads them all.
STEPS: Final = (
    ("record_id", _step_record_id),
    ("office_decision", _step_office_decision),
    ("names", _step_names),
    ("sex", _step_sex),
    ("dates", _step_dates),
    ("places", _step_places),
    ("nik", _step_nik),
    ("contact", _step_contact),
    ("evidence", _step_evidence),
)


def normalise_batch(
    raw: Columns,
    *,
    id_scheme: Literal["nik", "generic"] = "nik",
    name_rules: Literal["indonesian", "latin"] = "indonesian",
    phone_region: str = "ID",
    today: dt.date | None = None,
    earliest: dt.date = dates.EARLIEST,
) -> Normalised:
    """Normalise one batch of rows given as columns by role (each a list of raw strings or None).

    Args:
        raw: at least ``record_id``; roles that are absent count as missing.
        id_scheme: ``"nik"`` parses Indonesian NIKs; ``"generic"`` keeps any id's digits and letters.
        name_rules: ``"indonesian"`` or ``"latin"`` (see :func:`linkage.names.normalise_name`).
        phone_region: region for phone numbers without a country code.
        today: reference date for two-digit years and future dates (default: today).
        earliest: the earliest date accepted (setting ``dataset.earliest_date``); earlier ones are
            ``date_out_of_range`` issues.

    Returns:
        The columns of :data:`COLUMNS`, in that order, and the field issues.
    """
    ctx = _Context(id_scheme, name_rules, phone_region, today or dt.date.today(), earliest)
    out: Columns = {}
    issues: list[Issue] = []
    # The rules allocate millions of small objects and create no reference cycles; with the cyclic
    # garbage collector on, its repeated passes over the batch cost a third of the time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _, step in STEPS:
            step(raw, out, issues, ctx)
    finally:
        if collecting:
            gc.enable()
    return Normalised({name: out[name] for name, _ in COLUMNS}, issues)


def normalise_parallel(items: Iterable[T], work: Callable[[T], R], *, workers: int) -> Iterator[R]:
    """``map(work, items)`` over ``workers`` processes, results in input order.

    ``work`` normalises one batch (and may turn it into what the caller stores, so that this too happens
    in the workers). At most ``2 * workers + 1`` items are in flight, so memory stays bounded and the
    caller reads the next batch while workers normalise. One item, or one worker, runs inline.
    """
    items = iter(items)
    head = list(itertools.islice(items, 2))
    if workers <= 1 or len(head) < 2:  # one batch: a process pool would only add its start-up time
        yield from map(work, itertools.chain(head, items))
        return
    # Load the reference tables (region codes, places) once here, so that forked workers share them.
    normalise_batch(_WARM_UP)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: list[Future[R]] = []
        for item in itertools.chain(head, items):
            pending.append(pool.submit(work, item))
            while len(pending) > 2 * workers:  # keep work queued while this process reads and stores
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
