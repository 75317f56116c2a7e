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
import itertools
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from linkage import dates, names, nik, passport, phone, places
from linkage.schema import DECISIONS

__all__ = ["COLUMNS", "STEPS", "Normalised", "normalise_batch", "normalise_parallel"]

T = TypeVar("T")
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
)

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


def _distinct(values: list[str | None], rule: Callable[[str | None], T]) -> list[T]:
    """``[rule(v) for v in values]``, computing the rule once per distinct value."""
    cache = {v: rule(v) for v in set(values)}
    return [cache[v] for v in values]


def _names(role: str, prefix: str) -> Callable[[Columns, Columns, list[Issue], _Context], None]:
    def step(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
        values = _column(raw, role)
        parts = _distinct(values, lambda v: names.normalise_name(v, rules=ctx.name_rules))
        out[f"{prefix}_canonical"] = [p.canonical or None for p in parts]
        out[f"{prefix}_tokens"] = [list(p.tokens) or None for p in parts]
        out[f"{prefix}_concat"] = [p.concat or None for p in parts]
        out[f"{prefix}_keys"] = [list(p.keys) or None for p in parts]
        out[f"{prefix}_key"] = [names.name_key(p) or None for p in parts]
        if role == "full_name":
            out["name_titles"] = [list(p.titles) or None for p in parts]
            out["name_degrees"] = [list(p.degrees) or None for p in parts]
            out["patronym"] = [p.patronym for p in parts]
            out["gender_marker"] = [p.gender_marker for p in parts]
        issues.extend(
            (rid, role, value, "name_no_letters")
            for rid, value, p in zip(raw["record_id"], values, parts, strict=True)
            if value and not p.tokens
        )

    return step


def _column(raw: Columns, role: str) -> list[str | None]:
    return raw.get(role) or [None] * len(raw["record_id"])


def _issues_of(raw: Columns, role: str, found: list[str | None], issues: list[Issue]) -> None:
    ids, values = raw["record_id"], _column(raw, role)
    issues.extend((ids[i], role, values[i], why) for i, why in enumerate(found) if why)


def _step_sex(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    results = _distinct(_column(raw, "sex"), dates.parse_sex)
    out["sex"] = [r.value for r in results]
    _issues_of(raw, "sex", [r.issue for r in results], issues)


def _dates(role: str) -> Callable[[Columns, Columns, list[Issue], _Context], None]:
    def step(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
        results = _distinct(_column(raw, role), lambda v: dates.parse_date(v, today=ctx.today))
        out[role] = [r.value for r in results]
        _issues_of(raw, role, [r.issue for r in results], issues)

    return step


def _step_nik(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    values = _column(raw, "nik")
    if ctx.id_scheme == "generic":
        cleaned = _distinct(values, lambda v: _ID_CHARS.sub("", v.upper()) or None if v else None)
        out["nik"] = out["nik_digits"] = cleaned
        out["nik_status"] = ["valid" if c else "missing" for c in cleaned]
        for name in ("nik_province", "nik_regency", "nik_district", "nik_birth_date", "nik_sex", "nik_serial"):
            out[name] = [None] * len(values)
        out["nik_dob_agrees"] = out["nik_sex_agrees"] = [None] * len(values)
        return
    infos = _distinct(values, lambda v: nik.parse_nik(v, today=ctx.today))
    out["nik"] = [i.nik for i in infos]
    out["nik_digits"] = [i.digits for i in infos]
    out["nik_status"] = [i.status for i in infos]
    out["nik_province"] = [i.province_code for i in infos]
    out["nik_regency"] = [i.regency_code for i in infos]
    out["nik_district"] = [i.district_code for i in infos]
    out["nik_birth_date"] = [i.birth_date for i in infos]
    out["nik_sex"] = [i.sex for i in infos]
    out["nik_serial"] = [i.serial for i in infos]
    # NIK-implied birth date and sex against the stated ones: evidence for matching, not errors.
    out["nik_dob_agrees"] = [
        None if i.birth_date is None or b is None else i.birth_date == b
        for i, b in zip(infos, out["birth_date"], strict=True)
    ]
    out["nik_sex_agrees"] = [
        None if i.sex is None or s is None else i.sex == s for i, s in zip(infos, out["sex"], strict=True)
    ]
    ids = raw["record_id"]
    issues.extend((ids[n], "nik", values[n], why) for n, i in enumerate(infos) for why in i.issues)


def _step_birth_place(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    results = _distinct(_column(raw, "birth_place"), places.normalise_birth_place)
    out["birth_place"] = [r.canonical for r in results]
    out["birth_place_regency"] = [r.regency_code for r in results]
    _issues_of(raw, "birth_place", [r.issue for r in results], issues)


def _step_address(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    results = _distinct(_column(raw, "address"), places.normalise_address)
    out["address"] = [r.canonical for r in results]
    out["address_rt"] = [r.rt for r in results]
    out["address_rw"] = [r.rw for r in results]
    out["address_village"] = [r.village for r in results]
    _issues_of(raw, "address", [r.issue for r in results], issues)


def _step_phone(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    results = _distinct(_column(raw, "phone"), lambda v: phone.normalise_phone(v, default_region=ctx.phone_region))
    out["phone"] = [r.e164 for r in results]
    _issues_of(raw, "phone", [r.issue for r in results], issues)


def _step_passport(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    results = _distinct(_column(raw, "prior_passport_no"), passport.normalise_passport)
    out["prior_passport_no"] = [r.number for r in results]
    _issues_of(raw, "prior_passport_no", [r.issue for r in results], issues)


def _decision(raw: str | None) -> tuple[str | None, str | None]:
    if not raw or not raw.strip():
        return None, None
    word = _SPACES.sub(" ", raw.strip().lower())
    found = _DECISION_WORDS.get(word)
    return (found, None) if found else (None, "decision_unknown")


def _step_office_decision(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    out["office"] = _distinct(_column(raw, "office"), lambda v: _SPACES.sub(" ", v.strip()) if v else None)
    results = _distinct(_column(raw, "decision"), _decision)
    out["decision"] = [r[0] for r in results]
    _issues_of(raw, "decision", [r[1] for r in results], issues)


def _step_record_id(raw: Columns, out: Columns, issues: list[Issue], ctx: _Context) -> None:
    out["record_id"] = list(raw["record_id"])


# Order matters: the NIK cross-check reads the normalised birth date and sex.
STEPS: Final = (
    ("record_id", _step_record_id),
    ("office_decision", _step_office_decision),
    ("application_date", _dates("application_date")),
    ("full_name", _names("full_name", "full_name")),
    ("sex", _step_sex),
    ("birth_date", _dates("birth_date")),
    ("birth_place", _step_birth_place),
    ("nik", _step_nik),
    ("mother_name", _names("mother_name", "mother_name")),
    ("address", _step_address),
    ("phone", _step_phone),
    ("prior_passport_no", _step_passport),
)


def normalise_batch(
    raw: Columns,
    *,
    id_scheme: Literal["nik", "generic"] = "nik",
    name_rules: Literal["indonesian", "latin"] = "indonesian",
    phone_region: str = "ID",
    today: dt.date | None = None,
) -> Normalised:
    """Normalise one batch of rows given as columns by role (each a list of raw strings or None).

    Args:
        raw: at least ``record_id``; roles that are absent count as missing.
        id_scheme: ``"nik"`` parses Indonesian NIKs; ``"generic"`` keeps any id's digits and letters.
        name_rules: ``"indonesian"`` or ``"latin"`` (see :func:`linkage.names.normalise_name`).
        phone_region: region for phone numbers without a country code.
        today: reference date for two-digit years and future dates (default: today).

    Returns:
        The columns of :data:`COLUMNS`, in that order, and the field issues.
    """
    ctx = _Context(id_scheme, name_rules, phone_region, today or dt.date.today())
    out: Columns = {}
    issues: list[Issue] = []
    for _, step in STEPS:
        step(raw, out, issues, ctx)
    return Normalised({name: out[name] for name, _ in COLUMNS}, issues)


def normalise_parallel(
    batches: Iterable[tuple[T, Columns]],
    *,
    workers: int,
    id_scheme: Literal["nik", "generic"] = "nik",
    name_rules: Literal["indonesian", "latin"] = "indonesian",
    phone_region: str = "ID",
    today: dt.date | None = None,
) -> Iterator[tuple[T, Normalised]]:
    """Normalise batches in ``workers`` processes, yielding results in input order with their tag.

    At most ``workers + 1`` batches are in flight, so memory stays bounded and the caller can read
    the next batch while workers normalise.
    """
    kwargs: dict[str, Any] = {
        "id_scheme": id_scheme,
        "name_rules": name_rules,
        "phone_region": phone_region,
        "today": today,
    }
    batches = iter(batches)
    head = list(itertools.islice(batches, 2))
    if workers <= 1 or len(head) < 2:  # one batch: a process pool would only add its start-up time
        for tag, raw in itertools.chain(head, batches):
            yield tag, normalise_batch(raw, **kwargs)
        return
    # Load the reference tables (region codes, places) once here, so that forked workers share them.
    normalise_batch(_WARM_UP, **kwargs)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: list[tuple[T, Future[Normalised]]] = []
        for tag, raw in itertools.chain(head, batches):
            pending.append((tag, pool.submit(normalise_batch, raw, **kwargs)))
            while len(pending) > workers:
                done_tag, future = pending.pop(0)
                yield done_tag, future.result()
        for done_tag, future in pending:
            yield done_tag, future.result()
