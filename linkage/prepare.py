"""The ``prepare`` stage: the model input, one row per record, from the normalised records.

Writes the TEMP table ``model_input`` (:data:`MODEL_INPUT`: the columns that comparisons and blocking rules
read, with each record's blocking keys). A full run prepares every record; an incremental run prepares the
*pending* records (never linked, or changed since: ``relink``) and the stored records a blocking rule pairs
them with, found through ``block_index`` (:func:`prepare_incremental`), so its cost grows with the batch.

Correlated evidence: the NIK encodes a birth date and sex, so comparing the NIK-encoded date as well
as the stated one would count the same fact twice. The model input has one birth date (the stated
one, else the NIK's) and one sex (likewise), and the NIK comparison stands for the number itself.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from linkage import block
from linkage.spec import ModelSpec
from linkage.store import Store

__all__ = [
    "HASHED",
    "INPUT_COLUMNS",
    "MACROS",
    "MODEL_INPUT",
    "InputColumn",
    "cap_candidates",
    "data_fingerprint",
    "hashed_sql",
    "model_input_columns",
    "model_input_row",
    "model_input_sql",
    "prepare_full",
    "prepare_incremental",
    "value_counts_sql",
]


@dataclass(frozen=True)
class InputColumn:
    """One model-input column, as a spec's fragments read it (``l.<name>``, ``r.<name>``), for docs/spec.md."""

    name: str
    meaning: str
    normalisation: str
    example: str
    roles: tuple[str, ...]
    """the input roles (:data:`linkage.schema.ROLES`) it is made from: without them it is always null"""


_NAME = "the full name's tokens (titles, degrees and bin/binti dropped, old spellings modernised)"
_MOTHER = "the mother's name, normalised as the full name"
_FULL = ("full_name",)
_DOB = ("birth_date", "nik")
_ADDR = ("address",)
# The columns of MODEL_INPUT, in its order (tests/test_spec.py checks the names against it). Examples are of
# one application: "H. Moch. Rizki Saputra", born 5 Aug 1990 in B. Lampung, mother Siti Aminah.
INPUT_COLUMNS: Final[tuple[InputColumn, ...]] = (
    InputColumn("unique_id", "Splink's id of the record (a number in record-id order)", "-", "1", ("record_id",)),
    InputColumn("record_id", "the application's id", "as given", "BDL-2024-000123", ("record_id",)),
    InputColumn("name_canonical", "the full name, canonical", _NAME, "MUHAMMAD RIZKI SAPUTRA", _FULL),
    InputColumn("name_key", "the name's matching key: per-token phonetic keys joined", "keys (double letters, "
                "final H, spelling variants folded), spaces dropped", "MUHAMADRIZKISAPUTRA", _FULL),
    InputColumn("name_set", "the name's token keys sorted, space-separated: the name in any order",
                "keys, sorted", "MUHAMAD RIZKI SAPUTRA", _FULL),
    InputColumn("name_keys", "the name's token keys, in order (a list)", "keys", "[MUHAMAD, RIZKI, SAPUTRA]", _FULL),
    InputColumn("name_tokens", "the name's canonical tokens, in order (a list)", _NAME,
                "[MUHAMMAD, RIZKI, SAPUTRA]", _FULL),
    InputColumn("name_full_keys", "the name's token keys longer than one letter", "keys",
                "[MUHAMAD, RIZKI, SAPUTRA]", _FULL),
    InputColumn("name_initials", "the name's one-letter tokens (initials)", "keys", "[] ([M] for M. RIZKI)", _FULL),
    InputColumn("name_first_letters", "the first letter of each token key", "keys", "[M, R, S]", _FULL),
    InputColumn("name_joined", "each two adjacent token keys written together", "keys",
                "[MUHAMADRIZKI, RIZKISAPUTRA]", _FULL),
    InputColumn("name_counts", "how many records hold each name token (aligned with name_tokens)",
                "counted over the records linked", "[20, 3, 1]", _FULL),
    InputColumn("first_key", "the name's first token key", "keys", "MUHAMAD", _FULL),
    InputColumn("last_key", "the name's last token key", "keys", "SAPUTRA", _FULL),
    InputColumn("initial", "the name's first letter", "keys", "M", _FULL),
    InputColumn("second_key", "the name's second token key", "keys", "RIZKI", _FULL),
    InputColumn("set_first", "the first of the name's token keys in sorted order", "keys", "MUHAMAD", _FULL),
    InputColumn("set_last", "the last of the name's token keys in sorted order", "keys", "SAPUTRA", _FULL),
    InputColumn("mother_canonical", "the mother's name, canonical", _MOTHER, "SITI AMINAH", ("mother_name",)),
    InputColumn("mother_key", "the mother's name key", _MOTHER, "SITIAMINA", ("mother_name",)),
    InputColumn("mother_set", "the mother's token keys sorted", _MOTHER, "AMINA SITI", ("mother_name",)),
    InputColumn("mother_keys", "the mother's token keys (a list)", _MOTHER, "[SITI, AMINA]", ("mother_name",)),
    InputColumn("mother_tokens", "the mother's canonical tokens (a list)", _MOTHER, "[SITI, AMINAH]", ("mother_name",)),
    InputColumn("mother_full_keys", "the mother's token keys longer than one letter", _MOTHER, "[SITI, AMINA]",
                ("mother_name",)),
    InputColumn("mother_initials", "the mother's one-letter tokens", _MOTHER, "[]", ("mother_name",)),
    InputColumn("mother_first_letters", "the first letter of each of the mother's keys", _MOTHER, "[S, A]",
                ("mother_name",)),
    InputColumn("mother_joined", "each two adjacent keys of the mother's name written together", _MOTHER,
                "[SITIAMINA]", ("mother_name",)),
    InputColumn("mother_last", "the mother's last token key", _MOTHER, "AMINA", ("mother_name",)),
    InputColumn("nik", "the NIK when it is valid (16 digits, a known region, a possible date)", "digits only",
                "1871014508900001", ("nik",)),
    InputColumn("nik_digits", "the NIK's digits as written, valid or not", "digits only", "1871014508900001",
                ("nik",)),
    InputColumn("nik_prefix", "region and birth date of a 16-digit NIK (its first 12 digits)", "digits only",
                "187101450890", ("nik",)),
    InputColumn("dob", "the birth date: the stated one, else the NIK's", "a DATE (many written forms read)",
                "1990-08-05", _DOB),
    InputColumn("dob_text", "the birth date as YYYYMMDD text (for edit distances)", "from dob", "19900805", _DOB),
    InputColumn("birth_year", "the birth date's year", "from dob", "1990", _DOB),
    InputColumn("sex", "the sex: the stated one, else the NIK's", "M or F", "M", ("sex", "nik")),
    InputColumn("birth_place", "the birth place, canonical", "upper case, abbreviations expanded, old names "
                "modernised", "BANDAR LAMPUNG", ("birth_place",)),
    InputColumn("birth_place_regency", "the birth place's regency or city code, when known", "BPS code",
                "18.71", ("birth_place",)),
    InputColumn("phone", "the phone number", "E.164", "+6281234567890", ("phone",)),
    InputColumn("address", "the address, canonical", "upper case, abbreviations expanded, RT/RW taken out",
                "JALAN KARTINI NO 5 KELURAHAN PALAPA", _ADDR),
    InputColumn("address_village", "the address's village (kelurahan/desa)", "upper case", "PALAPA", _ADDR),
    InputColumn("address_rt", "the address's RT (neighbourhood) number", "digits, no leading zeros", "3", _ADDR),
    InputColumn("address_rw", "the address's RW (hamlet) number", "digits, no leading zeros", "5", _ADDR),
    InputColumn("prior_passport_no", "a previous passport's number", "upper case, letters and digits",
                "B1234567", ("prior_passport_no",)),
    InputColumn("patronym", "the father's name after bin/binti in the full name", _NAME, "SUKARDI", _FULL),
    InputColumn("office", "the office that received the application", "as given", "Kanim Bandar Lampung",
                ("office",)),
    InputColumn("application_date", "the date the application was lodged", "a DATE", "2024-03-05",
                ("application_date",)),
    InputColumn("decision", "the office's decision", "one of issued, rejected, postponed, cancelled, pending",
                "rejected", ("decision",)),
    InputColumn("address_number", "a leading house number of the address, else null", "from address", "7", _ADDR),
    InputColumn("address_street", "the address without a leading house number", "from address",
                "JALAN KARTINI NO 5 KELURAHAN PALAPA", _ADDR),
    InputColumn("postcode", "the postal code, where the input keeps it apart", "letters and digits, upper case",
                "35111", ("postcode",)),
    InputColumn("locality", "suburb, town or village, where kept apart", "upper-case words", "TANJUNG KARANG",
                ("locality",)),
    InputColumn("region", "state or province, where kept apart", "upper-case words", "LAMPUNG", ("region",)),
    InputColumn("nik_head", "the NIK's first 8 digits (region and birth day)", "digits", "18710145", ("nik",)),
    InputColumn("nik_tail", "the NIK's last 8 digits (birth month, year and serial)", "digits", "08900001", ("nik",)),
    InputColumn("birth_month_day", "the birth date's month and day, MMDD", "from dob", "0805", _DOB),
    InputColumn("dob_unordered", "the birth date with day and month in either order (a number)",
                "year*10000 + smaller*100 + larger", "19900508", _DOB),
    InputColumn("first_last", "the name's first and last token keys", "keys", "MUHAMAD SAPUTRA", _FULL),
    InputColumn("bare_name_key", "name_key of a bare record (no birth date, no NIK), else null", "keys", "WATI",
                _FULL),
    InputColumn("bare_name_set", "name_set of a bare record, else null", "keys", "WATI", _FULL),
    InputColumn("bare_first_last", "first_last of a bare record, else null", "keys", "WATI WATI", _FULL),
    InputColumn("name_key_hash", "hash of name_key (a number, cheap to join)", "hash", "2629680180533989203", _FULL),
    InputColumn("name_set_hash", "hash of name_set", "hash", "3934875717666550994", _FULL),
    InputColumn("bare_name_key_hash", "hash of bare_name_key", "hash", "17989327751509984854", _FULL),
    InputColumn("bare_name_set_hash", "hash of bare_name_set", "hash", "17989327751509984854", _FULL),
    InputColumn("nik_region", "the regency a NIK was first registered in (PPKK, its first 4 digits)", "digits", "1871",
                ("nik",)),
    InputColumn("nik_date", "the birth date and sex a valid NIK encodes (DDMMYY, women's day + 40)", "digits",
                "450890", ("nik",)),
    InputColumn("nik_contradicts", "the NIK's encoded birth date or sex contradicts the record's own",
                "true, false (also when nothing can be compared)", "false", ("nik", "birth_date", "sex")),
    InputColumn("nik_date_agrees", "the NIK's encoded birth date is the record's own written one",
                "true, false (also when nothing can be compared)", "true", ("nik", "birth_date")),
)  # fmt: skip


def _token_counts(source: str, records: str, counts: str | None = None) -> str:
    """A CTE ``{source}_counts``: per record, how often each of its written name tokens occurs in all records.

    A typo makes a spelling that is rare, or far rarer than the name it garbles (SITU beside SITI),
    while twins and siblings carry two common names (WAHYUDI/WAHYUNI): the name levels read these counts.
    Counted on the canonical tokens, as written: the keys merge spellings (SAPYTRI and SAPUTRI share one).
    """
    tokens = f"{source}_tokens"
    counted = (
        f"SELECT k, count(*)::INTEGER AS n FROM (SELECT unnest({tokens}) AS k FROM {records}) GROUP BY k"
        if counts is None
        else f"SELECT value AS k, n::INTEGER AS n FROM {counts} WHERE kind = 'full_name_token'"
    )
    return f"""
{source}_counts AS (
    SELECT t.record_id, list(coalesce(c.n, 1) ORDER BY t.pos) AS counts
    FROM (SELECT record_id, unnest({tokens}) AS k, generate_subscripts({tokens}, 1) AS pos
          FROM {records}) AS t
    LEFT JOIN ({counted}) AS c USING (k)
    GROUP BY t.record_id
)"""


def _name_columns(source: str, name: str, *, counts: bool = False) -> str:
    """The model-input columns of one normalised name (``full_name`` or ``mother_name``).

    With ``counts``, also the tokens' counts in the data (from the CTE of :func:`_token_counts`).
    """
    keys = f"{source}_keys"
    counted = f"\n    {source}_counts.counts AS {name}_counts," if counts else ""
    return f"""
    {source}_canonical AS {name}_canonical,
    {source}_key AS {name}_key,
    array_to_string(list_sort({keys}), ' ') AS {name}_set,
    {keys} AS {name}_keys,
    {source}_tokens AS {name}_tokens,
    list_filter({keys}, lambda k: length(k) > 1) AS {name}_full_keys,
    list_filter({keys}, lambda k: length(k) = 1) AS {name}_initials,
    list_transform({keys}, lambda k: replace(k[1], 'J', 'Y')) AS {name}_first_letters,  -- as MACROS' first_letter
    list_transform({keys}[2:], lambda k, i: {keys}[i] || k) AS {name}_joined,{counted}"""


# SQL macros the comparison levels of a spec may call (created with the model input). Token lists with
# their counts in the data (see _token_counts): a typo is one edit that makes a rare spelling.
MACROS: Final = """
-- the letter a token's initial is written with: a key's first letter, an old-spelling J as today's Y (the
-- key of a one-letter token, linkage.names.token_key, folds it the same way)
CREATE OR REPLACE MACRO first_letter(k) AS replace(k[1], 'J', 'Y');
-- every full token of a is one of b's keys or abbreviated to one of b's initials, and every initial of a
-- stands for one of b's tokens (bf: b's first letters): M. WAHYUDI MAHESWARA / MOCHAMAD W. MAHESWARA
CREATE OR REPLACE MACRO names_abbreviated(ak, ai, bk, bi, bf) AS
    list_bool_and(list_transform(list_filter(ak, lambda x: length(x) > 1),
        lambda x: list_contains(bk, x) OR list_contains(bi, first_letter(x))))
    AND list_has_all(bf, ai);
-- (one edit keeps the first or the last letter: a cheap test first, the edit distance only then)
CREATE OR REPLACE MACRO name_typo(x, y, nx, ny) AS
    CASE WHEN length(x) >= 3 AND abs(length(x) - length(y)) <= 1 AND (x[1] = y[1] OR x[-1] = y[-1])
              AND (least(nx, ny) <= 3 OR greatest(nx, ny) >= 20 * least(nx, ny))
         THEN damerau_levenshtein(x, y) = 1 ELSE false END;
-- name lists as (keys, canonical tokens, counts of the tokens), aligned: token i of a matches b when its
-- key is one of b's keys or it is a typo of one of b's tokens, as written or as keys (UHAMAD/MUHAMMAD
-- are two edits apart but their keys one)
CREATE OR REPLACE MACRO token_in(ak, aw, an, i, bk, bw, bn) AS
    list_contains(bk, ak[i]) OR list_bool_or(list_transform(bw, lambda y, j:
        name_typo(aw[i], y, an[i], bn[j]) OR name_typo(ak[i], bk[j], an[i], bn[j])));
-- every token of a matches b
CREATE OR REPLACE MACRO names_typo_within(ak, aw, an, bk, bw, bn) AS
    list_bool_and(list_transform(ak, lambda x, i: token_in(ak, aw, an, i, bk, bw, bn)));
-- every token of a matches b, is an initial of one of b's (bf: b's first letters), is two adjacent
-- tokens of b written together (bj: b's adjacent keys joined), or is written together with its neighbour
-- in b (SITI EFFENDI / SITIEFFENDI LESTARI)
CREATE OR REPLACE MACRO names_explained_by(ak, aw, an, bk, bw, bn, bf, bj) AS
    list_bool_and(list_transform(ak, lambda x, i: list_contains(bj, x)
        OR (length(x) = 1 AND list_contains(bf, x)) OR token_in(ak, aw, an, i, bk, bw, bn)
        OR (i < len(ak) AND list_contains(bk, x || ak[i + 1])) OR (i > 1 AND list_contains(bk, ak[i - 1] || x))));
"""

HASHED: Final = ("name_key", "name_set", "bare_name_key", "bare_name_set")
"""The model-input columns that have a hashed twin, ``<column>_hash`` (:func:`hashed_sql`)."""


def hashed_sql() -> str:
    """The select list of the hashed twins of :data:`HASHED`: ``hash(x)``, null where ``x`` is null."""
    return ",\n    ".join(f"CASE WHEN {c} IS NOT NULL THEN hash({c}) END AS {c}_hash" for c in HASHED)


def model_input_row(row: Mapping[str, Any], counts: Callable[[str], int]) -> dict[str, Any]:
    """The model input of one normalised row (:data:`linkage.normalise.COLUMNS`), as :func:`model_input_sql`
    computes it, in Python: for the warm scorer (:mod:`linkage.warm`), which scores one applicant without a
    statement per record. ``tests/test_prepare.py`` checks the two agree column for column on the sample.

    Left out: ``unique_id`` (a number in the order of the records scored together) and the hashed twins of
    :data:`HASHED` (DuckDB's ``hash``).

    Args:
        row: the normalised row.
        counts: how many records hold a name token (the counts the name levels read; at least 1 is shown).
    """
    dob = row["birth_date"] if row["birth_date"] is not None else row["nik_birth_date"]
    nik_digits, nik = row["nik_digits"], row["nik"]
    keys, tokens = _list(row["full_name_keys"]), _list(row["full_name_tokens"])
    bare = dob is None and nik_digits is None
    name = _name_values("name", row["full_name_canonical"], row["full_name_key"], keys, tokens)
    ordered = sorted(keys) if keys is not None else None
    address = row["address"]
    number = _HOUSE_NUMBER.match(address) if address is not None else None
    dob_agrees, sex_agrees = row["nik_dob_agrees"], row["nik_sex_agrees"]
    contradicts = dob_agrees is False or sex_agrees is False
    found: dict[str, Any] = {
        "record_id": row["record_id"],
        **name,
        "name_counts": [counts(t) or 1 for t in tokens] if tokens else None,
        "first_key": _at(keys, 0),
        "last_key": _at(keys, -1),
        "initial": None if _at(keys, 0) is None else _at(keys, 0)[:1],
        "second_key": _at(keys, 1),
        "set_first": _at(ordered, 0),
        "set_last": _at(ordered, -1),
        **_name_values("mother", row["mother_name_canonical"], row["mother_name_key"],
                       _list(row["mother_name_keys"]), _list(row["mother_name_tokens"])),
        "mother_last": _at(_list(row["mother_name_keys"]), -1),
        "nik": nik,
        "nik_digits": nik_digits,
        "nik_prefix": nik_digits[:12] if nik_digits is not None and len(nik_digits) == 16 else None,
        "dob": dob,
        "dob_text": None if dob is None else f"{dob.year:04d}{dob.month:02d}{dob.day:02d}",
        "birth_year": None if dob is None else dob.year,
        "sex": row["sex"] if row["sex"] is not None else row["nik_sex"],
        **{c: row[c] for c in _PASSED},
        "address_number": number.group(1) if number else None,
        "address_street": None if address is None else _HOUSE_NUMBER.sub("", address, count=1),
        "nik_head": None if nik_digits is None else nik_digits[:8],
        "nik_tail": None if nik_digits is None else nik_digits[-8:],
        "birth_month_day": None if dob is None else f"{dob.month:02d}{dob.day:02d}",
        "dob_unordered": None if dob is None else (
            dob.year * 10000 + min(dob.month, dob.day) * 100 + max(dob.month, dob.day)),
        "first_last": None if not keys else f"{keys[0]} {keys[-1]}",
        "bare_name_key": name["name_key"] if bare else None,
        "bare_name_set": name["name_set"] if bare else None,
        "bare_first_last": f"{keys[0]} {keys[-1]}" if bare and keys else None,
        "nik_region": nik_digits[:4] if nik_digits is not None and len(nik_digits) >= 4 else None,
        "nik_date": nik_digits[6:12] if nik is not None and nik_digits is not None else None,
        "nik_contradicts": contradicts,
        "nik_date_agrees": bool(dob_agrees),
    }  # fmt: skip
    return found


# (regexp_extract(address, '^([0-9]+[A-Z]?) ', 1) and regexp_replace(address, '^[0-9]+[A-Z]? ', ''))
_HOUSE_NUMBER: Final = re.compile(r"^([0-9]+[A-Z]?) ")
# Normalised columns the model input passes on as they are.
_PASSED: Final = ("birth_place", "birth_place_regency", "phone", "address", "address_village", "address_rt",
                  "address_rw", "prior_passport_no", "patronym", "office", "application_date", "decision",
                  "postcode", "locality", "region")  # fmt: skip


def _list(values: Sequence[str] | None) -> list[str] | None:
    """A list value as the model input holds it (a normalised row built in Python may hold a tuple)."""
    return None if values is None else list(values)


def _at(values: list[str] | None, i: int) -> Any:
    """``values[i]`` as DuckDB indexes a list: null when out of range or the list is null."""
    if values is None or not -len(values) <= i < len(values):
        return None
    return values[i]


def _name_values(
    name: str, canonical: str | None, key: str | None, keys: list[str] | None, tokens: list[str] | None
) -> dict[str, Any]:
    """The model-input columns of one name (:func:`_name_columns`), counts left out."""
    if keys is None:
        derived: dict[str, Any] = dict.fromkeys(("set", "full_keys", "initials", "first_letters", "joined"))
    else:
        derived = {
            "set": " ".join(sorted(keys)),
            "full_keys": [k for k in keys if len(k) > 1],
            "initials": [k for k in keys if len(k) == 1],
            "first_letters": [k[:1].replace("J", "Y") for k in keys],
            "joined": [a + b for a, b in itertools.pairwise(keys)],
        }
    return {
        f"{name}_canonical": canonical,
        f"{name}_key": key,
        f"{name}_set": derived["set"],
        f"{name}_keys": keys,
        f"{name}_tokens": tokens,
        **{f"{name}_{part}": derived[part] for part in ("full_keys", "initials", "first_letters", "joined")},
    }


def model_input_sql(records: str = "applications_normalised", counts: str | None = None) -> str:
    """The model input of the normalised rows in ``records``, one row per record.

    Name-token counts are counted over ``records``, or read from the table ``counts`` (``kind, value, n``,
    kind ``full_name_token``): a batch linked into a store counts its tokens among all linked records.
    """
    return _MODEL_INPUT.replace("{token_counts}", _token_counts("full_name", records, counts)).replace(
        "{records}", records
    )


# The model input, one row per record: the columns that the comparisons and blocking rules read
# (:func:`prepare` adds the blocking keys of the spec and makes it the TEMP table ``model_input``).
_MODEL_INPUT: Final = f"""
WITH{{token_counts}},
-- Splink's id: a number in record-id order (pairs keep the record-id orientation), because joining and
-- de-duplicating pairs of numbers is twice as fast as of text ids (at 1M: 10.0 s -> 4.2 s). Numbered
-- apart from the wide rows: a window over them sorts every column (at 1M: 8 s instead of none).
ids AS (
    SELECT record_id, row_number() OVER (ORDER BY record_id) AS unique_id FROM {{records}}
),
base AS (
    -- one birth date (stated, else the NIK's), and whether the record is bare (no birth date, no NIK)
    SELECT *, coalesce(birth_date, nik_birth_date) AS dob,
           coalesce(birth_date, nik_birth_date) IS NULL AND nik_digits IS NULL AS bare
    FROM {{records}}
)
SELECT
    ids.unique_id,
    record_id,{_name_columns("full_name", "name", counts=True)}
    full_name_keys[1] AS first_key,
    full_name_keys[-1] AS last_key,
    full_name_keys[1][1] AS initial,
    full_name_keys[2] AS second_key,
    list_sort(full_name_keys)[1] AS set_first,
    list_sort(full_name_keys)[-1] AS set_last,{_name_columns("mother_name", "mother")}
    mother_name_keys[-1] AS mother_last,
    nik,
    nik_digits,
    CASE WHEN length(nik_digits) = 16 THEN nik_digits[1:12] END AS nik_prefix,
    dob,
    strftime(dob, '%Y%m%d') AS dob_text,
    year(dob) AS birth_year,
    coalesce(sex, nik_sex) AS sex,
    birth_place,
    birth_place_regency,
    phone,
    address,
    address_village,
    address_rt,
    address_rw,
    prior_passport_no,
    patronym,
    office,
    application_date,
    decision,
    -- a leading house number ('7 WALLABY PLACE'; null when there is none) and the address without it,
    -- then the address parts that an input keeps apart (null when it writes the address as one text)
    nullif(regexp_extract(address, '^([0-9]+[A-Z]?) ', 1), '') AS address_number,
    regexp_replace(address, '^[0-9]+[A-Z]? ', '') AS address_street,
    postcode,
    locality,
    region,
    -- Blocking keys that tolerate one fault (benchmarks/blocking_bench.py measures them). A one-digit
    -- NIK typo or a dropped digit leaves one half intact: the region and birth day, or month, year and serial.
    left(nik_digits, 8) AS nik_head,
    right(nik_digits, 8) AS nik_tail,
    -- Birth month and day without the year (a year off by one), and the date with day and month in
    -- either order (a swapped day and month).
    strftime(dob, '%m%d') AS birth_month_day,
    year(dob) * 10000 + least(month(dob), day(dob)) * 100 + greatest(month(dob), day(dob)) AS dob_unordered,
    full_name_keys[1] || ' ' || full_name_keys[-1] AS first_last,
    -- A bare record has a name but neither a birth date nor a NIK: only its name can block it. These
    -- are its name keys (NULL on every other record), so a rule such as l.bare_name_key = r.name_key
    -- pairs bare records with all records of that name and leaves the rest of the name block alone.
    CASE WHEN bare THEN full_name_key END AS bare_name_key,
    CASE WHEN bare THEN array_to_string(list_sort(full_name_keys), ' ') END AS bare_name_set,
    CASE WHEN bare THEN full_name_keys[1] || ' ' || full_name_keys[-1] END AS bare_first_last,
    -- The same keys as numbers, for the bare-record rules: Splink's join on the other rules' keys checks
    -- each candidate pair against these rules, and numbers make that check cheap (strings took 35 s at 1M).
    -- (hash(NULL) is a number: a record without a name key gets none here either)
    {hashed_sql()},
    -- What a NIK says about its holder (domain notes §3.1): where it was first registered, and the birth
    -- date and sex it encodes. Relatives on one family card share the region, twins also the date; a NIK
    -- of another regency is a second KTP or a borrowed one; a NIK that contradicts its own record's birth
    -- date or sex may be a relative's.
    CASE WHEN length(nik_digits) >= 4 THEN nik_digits[1:4] END AS nik_region,
    CASE WHEN nik IS NOT NULL THEN nik_digits[7:12] END AS nik_date,  -- a valid NIK's: not 000000 of junk
    coalesce(NOT nik_dob_agrees OR NOT nik_sex_agrees, false) AS nik_contradicts,
    coalesce(nik_dob_agrees, false) AS nik_date_agrees
FROM base
JOIN ids USING (record_id)
LEFT JOIN full_name_counts USING (record_id)
"""
MODEL_INPUT: Final = model_input_sql()


def model_input_columns(store: Store) -> list[str]:
    """The model input's column names (read from the query's shape; the store may hold no records)."""
    return [c for (c, *_) in store.rows(f"DESCRIBE ({MODEL_INPUT})", table="model_input")]


def data_fingerprint(store: Store) -> str:
    """An order-independent fingerprint of the records in ``model_input``: their count, then a hash."""
    count, digest = store.rows(
        "SELECT count(*), sum(hash(record_id, name_canonical, dob)) FROM model_input", table="model_input"
    )[0]
    return f"{count}-{int(digest or 0) & 0xFFFFFFFFFFFF:012x}"


def prepare_full(store: Store, spec: ModelSpec) -> int:
    """Build ``model_input`` from every normalised record, with the blocking keys of ``spec``; return its rows.

    Raises:
        ConfigError: a blocking rule names a column the model input does not have.
    """
    block.check_blocking(model_input_columns(store), spec)
    store.sql(MACROS, table="macros")  # the comparison levels call them
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE model_input AS
        SELECT *, {block.block_keys(spec.blocking)} AS block_keys FROM ({MODEL_INPUT})""",
        table="model_input",
    )
    records = int(store.scalar("SELECT count(*) FROM model_input", table="model_input"))
    if spec.max_candidates is not None:
        cap_candidates(store, spec.max_candidates, records)
    return records


def cap_candidates(store: Store, k: int, records: int) -> int:
    """Add to ``model_input`` the column ``pair_keys``: a key per pair to score, each record's ``k`` best.

    A pair of records that share blocking keys is weighed by the keys it shares, each by how rare it is
    (``ln(records / records with the key)``: one person's NIK outweighs a birth date and a name token that
    thousands share). A pair is kept when it is among the ``k`` heaviest of either of its records (ties broken
    by a hash of the pair, so a run is repeatable), so at most ``k`` × records pairs are kept, however large
    the blocks grow. Each kept pair gets a key of its own, which both its records hold: the keyed rule then
    joins on ``pair_keys`` (:func:`linkage.block.blocking_rules`) and makes exactly the kept pairs (a hash
    collision only adds a pair to score). Finding the pairs and their weights is a join on the keys,
    cheaper by far than scoring them; it still grows with the blocks.

    Returns:
        The number of pairs kept.
    """
    store.sql(
        # a record's keys are distinct: each hashes its rule's number (a collision only adds weight)
        "CREATE OR REPLACE TEMP TABLE _record_keys AS SELECT unique_id, unnest(block_keys) block_key FROM model_input",
        table="_record_keys",
    )
    store.sql(
        """CREATE OR REPLACE TEMP TABLE _kept_pairs AS
           WITH shared AS (
               -- in millionths, as integers: a sum of floats depends on the order a parallel join adds them,
               -- and two runs over the same 3M records kept 98 pairs of 7.3M differently; integers add exactly
               SELECT block_key, CAST(round(ln($records / count(*)) * 1e6) AS BIGINT) AS weight FROM _record_keys
               GROUP BY block_key HAVING count(*) > 1
           ),
           pairs AS (
               SELECT l.unique_id AS id_l, r.unique_id AS id_r, sum(s.weight) AS weight
               FROM _record_keys l JOIN shared s USING (block_key)
               JOIN _record_keys r ON r.block_key = l.block_key AND l.unique_id < r.unique_id
               GROUP BY ALL
           ),
           sides AS (  -- each pair once for each of its records
               SELECT id_l AS unique_id, id_l, id_r, weight FROM pairs
               UNION ALL SELECT id_r, id_l, id_r, weight FROM pairs
           ),
           ranked AS (
               SELECT id_l, id_r,
                      row_number() OVER (PARTITION BY unique_id ORDER BY weight DESC, hash(id_l, id_r)) AS rank
               FROM sides
           )
           SELECT DISTINCT id_l, id_r, hash(id_l, id_r) AS pair_key FROM ranked WHERE rank <= $k""",
        {"records": float(records), "k": k},
        table="_kept_pairs",
    )
    store.sql(
        """CREATE OR REPLACE TEMP TABLE model_input AS
           SELECT m.*, coalesce(p.pair_keys, []::UBIGINT[]) AS pair_keys
           FROM model_input m LEFT JOIN (
               SELECT unique_id, list(pair_key) AS pair_keys FROM (
                   SELECT id_l AS unique_id, pair_key FROM _kept_pairs
                   UNION ALL SELECT id_r, pair_key FROM _kept_pairs
               ) GROUP BY unique_id
           ) p USING (unique_id)""",
        table="model_input",
    )
    kept = int(store.scalar("SELECT count(*) FROM _kept_pairs", table="_kept_pairs"))
    store.sql("DROP TABLE _record_keys", table="_record_keys")
    store.sql("DROP TABLE _kept_pairs", table="_kept_pairs")
    return kept


def value_counts_sql(rows: str, spec: ModelSpec, *, inputs: str | None = None) -> str:
    """``kind, value, n`` of the normalised ``rows``: name tokens (``full_name_token``), and with ``inputs``
    (the rows' model input) each term-frequency column (``tf:<column>``)."""
    parts = [f"SELECT 'full_name_token' AS kind, unnest(full_name_tokens) AS value FROM {rows}"]
    tf = spec.tf_columns() if inputs else []
    parts += [f"SELECT 'tf:' || {_literal(c)}, {c}::VARCHAR FROM {inputs} WHERE {c} IS NOT NULL" for c in tf]
    return f"SELECT kind, value, count(*)::BIGINT AS n FROM ({' UNION ALL '.join(parts)}) GROUP BY kind, value"


def _literal(column: str) -> str:
    """A model-input column name as a SQL string literal (names are checked identifiers: letters, digits, _)."""
    if not column.replace("_", "").isalnum():
        raise ValueError(f"not a column name: {column!r}")
    return "'" + column + "'"


def prepare_incremental(
    store: Store, spec: ModelSpec, pending: str = "pending", *, rows: str | None = None
) -> tuple[int, int]:
    """The model input of the pending records and of their stored candidates; return (pending, candidates).

    Reads the TEMP table ``pending`` (``record_id``), or with ``rows`` a TEMP table of normalised rows that
    are not stored (:data:`linkage.normalise.COLUMNS`: an officer's query, :mod:`linkage.query`), and
    writes the TEMP tables ``pending_rows`` (their normalised rows), ``pending_counts`` (their own
    name-token and term-frequency counts), ``pending_input`` (their model input with probe and index keys),
    ``candidates`` (the linked records a probe key finds in
    ``block_index``), ``link_counts`` and ``link_totals`` (the store's counts with the pending ones counted in,
    for the values these records hold) and ``model_input`` (pending and candidates, ``is_new`` marking the
    pending ones).
    """
    index_keys, probe_keys = block.lookup_keys(spec.blocking)
    source = f"SELECT a.* FROM applications_normalised a JOIN {pending} USING (record_id)"
    if rows is not None:
        source, pending = f"SELECT * FROM {rows}", f"(SELECT record_id FROM {rows})"
    store.sql(f"CREATE OR REPLACE TEMP TABLE pending_rows AS {source}", table="pending_rows")
    linked = int(store.scalar("SELECT count(*) FROM pending_rows", table="pending_rows"))
    store.sql(MACROS, table="macros")
    # the pending records' own counts: name tokens first (their model input needs them), then with the
    # term-frequency values of that model input
    store.sql(f"CREATE OR REPLACE TEMP TABLE pending_counts AS {value_counts_sql('pending_rows', spec)}")
    _counts(store, spec, "pending_rows", None)
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE pending_input AS
            SELECT *, {probe_keys} AS probe_keys, {index_keys} AS index_keys
            FROM (SELECT *, {block.block_keys(spec.blocking)} AS block_keys
                  FROM ({model_input_sql("pending_rows", "link_counts")}))""",
        table="pending_input",
    )
    store.sql(
        "CREATE OR REPLACE TEMP TABLE pending_counts AS "
        + value_counts_sql("pending_rows", spec, inputs="pending_input"),
        table="pending_counts",
    )
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE candidates AS
           SELECT DISTINCT m.record_id
           FROM block_index b
           JOIN (SELECT DISTINCT unnest(probe_keys) AS block_key FROM pending_input) USING (block_key)
           JOIN membership m USING (record_no)
           WHERE m.record_id NOT IN (SELECT record_id FROM {pending})""",
        table="candidates",
    )
    candidates = int(store.scalar("SELECT count(*) FROM candidates", table="candidates"))
    # (by name: a query's rows are built from COLUMNS, the store's table may have gained columns in its own order)
    store.sql(
        """CREATE OR REPLACE TEMP TABLE subset_rows AS
           SELECT * FROM pending_rows
           UNION ALL BY NAME
           SELECT a.* FROM applications_normalised a WHERE a.record_id IN (SELECT record_id FROM candidates)""",
        table="subset_rows",
    )
    _counts(store, spec, "subset_rows", None)
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE model_input AS
            SELECT *, {block.block_keys(spec.blocking)} AS block_keys,
                   record_id IN (SELECT record_id FROM {pending}) AS is_new
            FROM ({model_input_sql("subset_rows", "link_counts")})""",
        table="model_input",
    )
    _counts(store, spec, "subset_rows", "model_input")
    return linked, candidates


def _counts(store: Store, spec: ModelSpec, rows: str, inputs: str | None) -> None:
    """``link_counts``: the store's counts of the values in ``rows`` (name tokens) and in ``inputs`` (term
    frequency columns), with the pending records (``pending_counts``) counted in; ``link_totals``: each
    kind's total.

    Only the values these records hold are read from ``value_counts``: a join on a small table, where
    summing all of it took seconds at a million records.
    """
    tf = spec.tf_columns() if inputs else []
    needed = " UNION ".join(
        [f"SELECT DISTINCT 'full_name_token' AS kind, unnest(full_name_tokens) AS value FROM {rows}"]
        + [f"SELECT DISTINCT 'tf:' || {_literal(c)}, {c}::VARCHAR FROM {inputs} WHERE {c} IS NOT NULL" for c in tf]
    )
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE link_counts AS
            WITH needed AS ({needed})
            SELECT kind, value, sum(n)::BIGINT AS n FROM (
                SELECT v.kind, v.value, v.n FROM value_counts v JOIN needed USING (kind, value)
                UNION ALL SELECT a.kind, a.value, a.n FROM pending_counts a JOIN needed USING (kind, value)
            ) GROUP BY kind, value""",
        table="link_counts",
    )
    if inputs:
        store.sql(
            """CREATE OR REPLACE TEMP TABLE link_totals AS
               SELECT kind, sum(n)::DOUBLE AS n FROM (
                   SELECT kind, n FROM value_counts WHERE kind LIKE 'tf:%'
                   UNION ALL SELECT kind, n FROM pending_counts WHERE kind LIKE 'tf:%'
               ) GROUP BY kind""",
            table="link_totals",
        )
