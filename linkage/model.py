"""The Fellegi-Sunter model: comparisons declared in ``configs/model.toml``, trained and scored with Splink.

Stages, in order (:data:`STEPS`): ``prepare`` builds the model input from the normalised records
(:data:`MODEL_INPUT`), ``train`` estimates λ from deterministic rules, u by random sampling and m by
EM (fixed seed), ``predict`` scores the blocked pairs. Splink is imported only here.

Correlated evidence: the NIK encodes a birth date and sex, so comparing the NIK-encoded date as well
as the stated one would count the same fact twice. The model compares one birth date (the stated
one, else the NIK's) and one sex (likewise), and the NIK comparison stands for the number itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from linkage import __version__
from linkage.config import read_toml
from linkage.errors import ConfigError, Problem, did_you_mean

__all__ = [
    "DEFAULT_SPEC", "MACROS", "MODEL_INPUT", "STEPS", "ModelSpec", "artefact", "block_keys", "blocking_rules",
    "check_blocking", "data_fingerprint", "exact_levels", "exact_u", "from_artefact", "key_columns", "load_spec",
    "lookup_keys", "model_input_sql", "null_columns", "predict", "predict_new", "prepare", "rule_sides", "tf_columns",
    "train",
]

log = logging.getLogger(__name__)

STEPS: Final = ("prepare", "train", "predict")


def _configs() -> Path:
    """``configs/``: inside the package when installed from a wheel, beside it in a checkout (setup.py)."""
    packaged = Path(__file__).resolve().parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "configs"


DEFAULT_SPEC: Final = _configs() / "model.toml"


def _token_counts(source: str, records: str = "applications_normalised", counts: str | None = None) -> str:
    """A CTE ``{source}_counts``: per record, how often each of its written name tokens occurs in all records.

    A typo makes a spelling that is rare, or far rarer than the name it garbles (SITU beside SITI),
    while twins and siblings carry two common names (WAHYUDI/WAHYUNI): the name levels read these counts.
    Counted on the canonical tokens, as written: the keys merge spellings (SAPYTRI and SAPUTRI share one).
    """
    tokens = f"{source}_tokens"
    counted = (
        f"SELECT k, count(*)::INTEGER AS n FROM (SELECT unnest({tokens}) AS k FROM {records}) GROUP BY k"
        if counts is None
        else f"SELECT value AS k, n::INTEGER AS n FROM {counts} WHERE kind = '{source}_token'"
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
    list_transform({keys}, lambda k: k[1]) AS {name}_first_letters,
    list_transform({keys}[2:], lambda k, i: {keys}[i] || k) AS {name}_joined,{counted}"""


# SQL macros the comparison levels of a spec may call (created with the model input). Token lists with
# their counts in the data (see _token_counts): a typo is one edit that makes a rare spelling.
MACROS: Final = """
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
    CASE WHEN name_key IS NOT NULL THEN hash(name_key) END AS name_key_hash,
    CASE WHEN name_set IS NOT NULL THEN hash(name_set) END AS name_set_hash,
    CASE WHEN bare THEN name_key_hash END AS bare_name_key_hash,
    CASE WHEN bare THEN name_set_hash END AS bare_name_set_hash
FROM base
JOIN ids USING (record_id)
LEFT JOIN full_name_counts USING (record_id)
"""
MODEL_INPUT: Final = model_input_sql()


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    label: str
    sql: str | None = None
    tf: str | None = None
    null: bool = False
    else_: bool = Field(False, alias="else")
    m: float | None = Field(None, gt=0, le=1)
    u: float | None = Field(None, gt=0, le=1)
    why: str | None = None
    """the reason for fixed m/u: domain knowledge where EM cannot learn (independence fails)"""


class ComparisonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    levels: list[Level]


class Veto(BaseModel):
    """Pairs whose identity evidence disagrees cannot be linked on household evidence alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str
    max_weight: float = 0.0
    """a vetoed pair's match weight is at most this (0 bits: probability 0.5), so it is never linked"""
    why: str


class ModelSpec(BaseModel):
    """The declared model: comparisons, blocking, training rules and the default threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.9, gt=0, lt=1)
    review_floor: float = Field(0.5, gt=0, lt=1)
    seed: int = 20241
    max_pairs_u: float = 2e6
    exact_u: bool = True
    """count the u of each comparison's first level, when it is an equality, over all record pairs (see
    :func:`exact_u`) instead of taking it from the random sample"""
    max_pairs_em: float = 1e6
    blocking: list[str]
    deterministic: list[str]
    deterministic_recall: float = Field(0.7, gt=0, le=1)
    training: list[str]
    veto: Veto | None = None
    comparison: list[ComparisonSpec]

    @model_validator(mode="after")
    def _veto_below_threshold(self) -> ModelSpec:
        if self.veto is not None and 1 / (1 + 2 ** -self.veto.max_weight) >= self.threshold:
            raise ValueError(
                f"veto.max_weight {self.veto.max_weight} gives a match probability at or above the threshold "
                f"{self.threshold}: vetoed pairs would still link"
            )
        return self

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def load_spec(path: Path | None = None) -> ModelSpec:
    """Read and validate a model spec (default ``configs/model.toml``).

    Raises:
        ConfigError: the file is missing or invalid, every problem listed.
    """
    path = path or DEFAULT_SPEC
    data = read_toml(path, "model spec")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(f"{'.'.join(map(str, e['loc']))}: {e['msg']}", file=str(path)) for e in exc.errors()]
        raise ConfigError(f"invalid model spec {path}", problems=problems) from None


def key_columns(rule: str) -> list[str] | None:
    """The columns of a rule that is only equalities of one column on both sides, else None.

    >>> key_columns("l.name_key = r.name_key AND l.dob = r.dob")
    ['name_key', 'dob']
    >>> key_columns("l.bare_name_key = r.name_key") is None
    True
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(rule, read="duckdb")
    columns = []
    for term in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        if not (isinstance(term, exp.EQ) and isinstance(term.left, exp.Column) and isinstance(term.right, exp.Column)):
            return None
        left, right = term.left, term.right
        if {left.table, right.table} != {"l", "r"} or left.name != right.name:
            return None
        columns.append(left.name)
    return columns


def block_keys(rules: list[str]) -> str:
    """SQL for a record's blocking keys: one per rule of equalities that the record has all columns of.

    A rule such as ``l.name_key = r.name_key AND l.dob = r.dob`` pairs two records exactly when they share
    its key, the hash of the rule's index and its columns. Splink then finds every rule's pairs with one
    join on the keys (an exploding blocking rule, each pair once), instead of one join per rule that must
    also test every earlier rule to leave out the pairs it found (at 1M records about 2 s per rule).
    A hash collision only adds a pair to score: the comparisons, not the key, decide a match.
    """
    keys = []
    for index, rule in enumerate(rules):
        columns = key_columns(rule)
        if columns:
            present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
            keys.append(f"CASE WHEN {present} THEN hash({index}, {', '.join(columns)}) END")
    if not keys:
        return "[]::UBIGINT[]"
    return f"list_filter([{', '.join(keys)}], lambda k: k IS NOT NULL)"


def rule_sides(rule: str) -> tuple[list[str], list[str]] | None:
    """The columns a rule of equalities compares on its left and right sides, else None.

    ``IS NOT NULL`` terms are left out: an equality already fails on a null.

    >>> rule_sides("l.bare_name_key_hash = r.name_key_hash AND l.bare_name_key_hash IS NOT NULL")
    (['bare_name_key_hash'], ['name_key_hash'])
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(rule, read="duckdb")
    left: list[str] = []
    right: list[str] = []
    for term in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        if isinstance(term, exp.Not) and isinstance(term.this, exp.Is):
            continue
        if not (isinstance(term, exp.EQ) and isinstance(term.left, exp.Column) and isinstance(term.right, exp.Column)):
            return None
        a, b = (term.left, term.right) if term.left.table == "l" else (term.right, term.left)
        if (a.table, b.table) != ("l", "r"):
            return None
        left.append(a.name)
        right.append(b.name)
    return left, right


def lookup_keys(rules: list[str]) -> tuple[str, str]:
    """SQL for a record's index keys and probe keys: a new record pairs with a stored one under some rule
    exactly when one of its probe keys is one of the stored record's index keys (or a hash collides).

    A rule of equalities of the same column on both sides has one key, the blocking key of
    :func:`block_keys`. A rule ``l.x = r.y`` pairs a stored record on either side: it is indexed by
    ``(rule, 'r', y)`` and ``(rule, 'l', x)``, and a new record probes ``(rule, 'r', x)`` and ``(rule, 'l', y)``.

    Raises:
        ConfigError: a rule is not made of equalities, so no index can find its pairs.
    """
    index, probe = [], []
    for number, rule in enumerate(rules):
        if key_columns(rule):
            continue  # in block_keys
        sides = rule_sides(rule)
        if sides is None:
            raise ConfigError(
                f"blocking rule {rule!r} is not equalities of columns: incremental linking cannot index it"
            )
        x, y = sides

        index += [_side_key(number, "r", y), _side_key(number, "l", x)]
        probe += [_side_key(number, "r", x), _side_key(number, "l", y)]

    def listed(keys: list[str]) -> str:
        extra = f"list_filter([{', '.join(keys)}], lambda k: k IS NOT NULL)" if keys else "[]::UBIGINT[]"
        return f"list_concat(block_keys, {extra})"

    return listed(index), listed(probe)


def _side_key(rule: int, side: str, columns: list[str]) -> str:
    present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return f"CASE WHEN {present} THEN hash({rule}, '{side}', {', '.join(columns)}) END"


def blocking_rules(rules: list[str]) -> list[Any]:
    """Splink's blocking rules for prediction: the spec's rules that are not keyed, then one keyed rule."""
    plain: list[Any] = [rule for rule in rules if key_columns(rule) is None]
    if len(plain) < len(rules):
        # Last, so that Splink leaves out of it the pairs of the plain rules (it does not the other way round).
        plain.append({"blocking_rule": "l.block_keys = r.block_keys", "arrays_to_explode": ["block_keys"]})
    return plain


def null_columns(sql: str) -> list[str] | None:
    """The columns of a null level that is only ``l.x IS NULL OR r.x IS NULL`` terms, both sides each, else None.

    >>> null_columns("l.nik_digits IS NULL OR r.nik_digits IS NULL")
    ['nik_digits']
    >>> null_columns("l.dob IS NULL") is None
    True
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    sides: dict[str, set[str]] = {}
    for term in tree.flatten() if isinstance(tree, exp.Or) else [tree]:
        column = term.this if isinstance(term, exp.Is) and isinstance(term.expression, exp.Null) else None
        if not isinstance(column, exp.Column) or column.table not in ("l", "r"):
            return None
        sides.setdefault(column.name, set()).add(column.table)
    if any(found != {"l", "r"} for found in sides.values()):
        return None
    return list(sides)


def exact_levels(spec: ModelSpec) -> dict[str, tuple[list[str], list[str]]]:
    """The comparisons whose first level's u :func:`exact_u` counts: name → (null columns, key columns).

    A comparison qualifies when its null level is ``l.x IS NULL OR r.x IS NULL`` terms and its first
    level after it is equalities of columns (:func:`key_columns`) whose u the spec does not fix.
    """
    found = {}
    for comp in spec.comparison:
        levels = comp.levels
        if len(levels) < 2 or not levels[0].null or levels[1].null or levels[1].else_ or levels[1].u is not None:
            continue
        nulls = null_columns(levels[0].sql or "")
        keys = key_columns(levels[1].sql or "")
        if nulls and keys:
            found[comp.name] = (nulls, keys)
    return found


def exact_u(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> dict[str, float]:
    """u of each comparison's first level, where it is an equality, counted over all pairs of records.

    A random sample of two million pairs sees a level such as "NIK exact" a handful of times or never
    (then Splink assumes 10^-6), so its weight moved by 4 bits from one sample to the next. Equal values
    are counted exactly instead, from value frequencies: u = Σ c(c-1) / (K(K-1)), with c the records per
    value and K the records not at the null level. Like Splink's sample, this counts all pairs,
    duplicates of one person among them (the estimate Fellegi-Sunter's u takes when matches are rare).
    """
    out = {}
    for name, (nulls, keys) in exact_levels(spec).items():
        present = " AND ".join(f"{c} IS NOT NULL" for c in nulls)
        equal = " AND ".join(f"{c} IS NOT NULL" for c in keys)
        total, same = con.execute(
            f"""SELECT (SELECT count(*) FROM model_input WHERE {present}),
                       (SELECT sum(c * (c - 1)) FROM (SELECT count(*)::DOUBLE AS c FROM model_input
                        WHERE {present} AND {equal} GROUP BY {", ".join(keys)}))"""
        ).fetchall()[0]
        if total and total > 1 and same:
            out[name] = float(same) / (float(total) * (total - 1))
    return out


def _set_exact_u(linker: Any, counted: dict[str, float]) -> None:
    """Replace the sampled u of the counted levels, scaling the comparison's other levels to sum to 1."""
    for comparison in linker._settings_obj.comparisons:
        u = counted.get(comparison.output_column_name)
        if u is None:
            continue
        levels = [cl for cl in comparison._comparison_levels_excluding_null if not cl._fix_u_probability]
        first, rest = levels[0], levels[1:]
        sampled = first._trained_u_probabilities[-1]["probability"]
        sampled = sampled if isinstance(sampled, float | int) else 0.0
        counted_u = {"probability": u, "description": "exact count over all pairs", "m_or_u": "u"}
        first._trained_u_probabilities[-1] = counted_u
        for cl in rest:
            record = cl._trained_u_probabilities[-1]
            if isinstance(record["probability"], float | int):
                record["probability"] = record["probability"] * (1 - u) / (1 - sampled)
    linker._populate_m_u_from_trained_values()


def check_blocking(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> None:
    """Check that the keyed blocking rules of ``spec`` name columns of the model input.

    ``con`` needs an ``applications_normalised`` table, which may be empty (a store's schema):
    a dedupe checks its spec this way before the ingest.

    Raises:
        ConfigError: a blocking rule names a column the model input does not have.
    """
    available = [c for c, *_ in con.execute(f"DESCRIBE ({MODEL_INPUT})").fetchall()]
    problems = [
        Problem(f"blocking rule {rule!r}: the model input has no column {column!r}{did_you_mean(column, available)}")
        for rule in spec.blocking
        for column in key_columns(rule) or []
        if column not in available
    ]
    if problems:
        raise ConfigError("a blocking rule names an unknown column", problems=problems)


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """An order-independent fingerprint of the records in ``model_input``: their count, then a hash."""
    sql = "SELECT count(*), sum(hash(record_id, name_canonical, dob)) FROM model_input"
    count, digest = con.execute(sql).fetchall()[0]
    return f"{count}-{int(digest or 0) & 0xFFFFFFFFFFFF:012x}"


def prepare(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> int:
    """Build ``model_input`` from ``applications_normalised``, with the blocking keys of ``spec``; return its rows.

    Raises:
        ConfigError: a blocking rule names a column the model input does not have.
    """
    check_blocking(con, spec)
    con.execute(MACROS)  # the comparison levels call them
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE model_input AS
        SELECT *, {block_keys(spec.blocking)} AS block_keys FROM ({MODEL_INPUT})"""
    )
    return int(con.execute("SELECT count(*) FROM model_input").fetchall()[0][0])


def _settings(spec: ModelSpec) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    comparisons: list[Any] = []
    for comp in spec.comparison:
        levels: list[Any] = []
        for level in comp.levels:
            created: Any
            if level.else_:
                created = cll.ElseLevel()
            else:
                created = cll.CustomLevel(_suffixed(level.sql or ""), label_for_charts=level.label)
                if level.null:
                    created = created.configure(is_null_level=True)
                if level.tf:
                    created = created.configure(tf_adjustment_column=level.tf, tf_adjustment_weight=1.0)
                if level.m is not None and level.u is not None:
                    created = created.configure(
                        m_probability=level.m, u_probability=level.u, fix_m_probability=True, fix_u_probability=True
                    )
            levels.append(created.configure(label_for_charts=level.label))
        comparisons.append(cl.CustomComparison(levels, output_column_name=comp.name, comparison_description=comp.name))
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking_rules(spec.blocking),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,  # Splink keeps the gamma (level) columns only with these
        additional_columns_to_retain=[],
    )


_SIDE: Final = re.compile(r"\b([lr])\.(\w+)")


def _suffixed(sql: str) -> str:
    """``l.name_key`` (as in blocking rules) → ``name_key_l`` (as Splink's comparison levels want).

    >>> _suffixed("l.dob = r.dob")
    'dob_l = dob_r'
    """
    return _SIDE.sub(r"\2_\1", sql)


def _linker(con: duckdb.DuckDBPyConnection, settings: Any) -> Any:
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(con)
    # Splink logs progress at INFO and training caveats (levels never observed, default max_pairs) at
    # WARNING; linkage's -v shows them, a plain run shows only errors.
    level = logging.getLogger("linkage").getEffectiveLevel()
    shown = logging.ERROR if level >= logging.WARNING else level
    linker = Linker(db.register("model_input"), settings, log_level=shown)
    linker._settings_obj.__class__ = _settings_without_blocking_columns()
    return linker


@functools.cache
def _settings_without_blocking_columns() -> type:
    """Splink's settings class, except that scored pairs do not carry the blocking rules' own columns.

    Splink copies every column a blocking rule reads into each blocked pair, to show it beside the
    comparison levels. Here that is the list of blocking keys, on both sides of every pair: at 1M
    records (3M pairs) predict took 41.0 s with them and 33.3 s without. The comparisons' own columns
    and levels are kept (waterfall charts and the levels in pairs.parquet need them).
    """
    from splink.internals.settings import Settings

    class _Settings(Settings):
        @property
        def _additional_column_names_to_retain(self) -> list[str]:
            return list(self._additional_col_names_to_retain)

    return _Settings


def train(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> Any:
    """Estimate λ, u (random sampling) and m (EM per training rule) without labels; return the linker."""
    linker = _linker(con, _settings(spec))
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(spec.deterministic), recall=spec.deterministic_recall
    )
    training.estimate_u_using_random_sampling(max_pairs=spec.max_pairs_u, seed=spec.seed)
    if spec.exact_u:
        _set_exact_u(linker, exact_u(con, spec))
    from splink.internals.exceptions import EMTrainingException

    trained = 0
    for rule in spec.training:
        try:
            training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=spec.max_pairs_em)
            trained += 1
        except EMTrainingException:
            # A dataset without that column (FEBRL has no mother's name) gives the rule no pairs:
            # the other rules still estimate every comparison they can.
            log.warning("EM training rule found no pairs, skipped: %s", rule)
    if trained == 0:
        raise ConfigError("no EM training rule found any pairs: check the [training] rules against the data")
    return linker


def load(con: duckdb.DuckDBPyConnection, path: Path, spec: ModelSpec) -> Any:
    """A linker with a saved model; prediction never retrains.

    The model brings its parameters; the blocking rules are those of ``spec``, whose keys
    :func:`prepare` built (which pairs to score is not a trained parameter).
    """
    return from_artefact(con, json.loads(path.read_text(encoding="utf-8")), spec)


def from_artefact(
    con: duckdb.DuckDBPyConnection, artefact: dict[str, Any], spec: ModelSpec, *, prior: float | None = None
) -> Any:
    """A linker with the parameters of a model artefact (:func:`artefact`), on the TEMP table ``model_input``.

    ``prior``: the probability that two random records match, in place of the trained one (see
    ``linkage.link``: λ follows the number of records a model is applied to).
    """
    settings = dict(artefact["splink"])
    settings["blocking_rules_to_generate_predictions"] = blocking_rules(spec.blocking)
    if prior is not None:
        settings["probability_two_random_records_match"] = prior
    return _linker(con, settings)


def artefact(linker: Any, *, spec: ModelSpec, data_fingerprint: str, config_hash: str) -> dict[str, Any]:
    """The trained model with its provenance, as written by :func:`save`; ``model_id`` hashes the parameters."""
    import splink

    model = linker.misc.save_model_to_json()  # with no path it returns the settings dict
    return {
        "model_id": hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16],
        "created_at": datetime.now(UTC).isoformat(),
        "linkage_version": __version__,
        "splink_version": splink.__version__,
        "spec_fingerprint": spec.fingerprint(),
        "config_hash": config_hash,
        "data_fingerprint": data_fingerprint,
        "threshold": spec.threshold,
        "splink": model,
    }


def save(linker: Any, path: Path, *, spec: ModelSpec, data_fingerprint: str, config_hash: str) -> str:
    """Write the model with its provenance; return the model id."""
    made = artefact(linker, spec=spec, data_fingerprint=data_fingerprint, config_hash=config_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(made, indent=1), encoding="utf-8")
    return str(made["model_id"])


def predict(con: duckdb.DuckDBPyConnection, linker: Any, spec: ModelSpec, floor: float) -> tuple[int, str]:
    """Score the blocked pairs into the TEMP table ``scored_pairs``, veto applied; keep those at or above ``floor``.

    ``scored_pairs`` holds ``record_id_l, record_id_r, match_probability, match_weight``, the model's
    own weight before the veto (``model_match_weight``), ``vetoed``, and each comparison's level
    (``gamma_*``) and weight (``mw_*``).

    Returns:
        The number of pairs kept, and the name of Splink's own predictions table (for waterfall charts).
    """
    for column in tf_columns(spec):
        linker.table_management.compute_tf_table(column)
    # Score everything the veto could push below the floor, then filter after the veto.
    predictions = linker.inference.predict(threshold_match_probability=floor)
    return _vetoed(con, predictions.physical_name, spec, floor), predictions.physical_name


def tf_columns(spec: ModelSpec) -> list[str]:
    """The columns whose term frequencies adjust a level's weight, in spec order."""
    return list(dict.fromkeys(level.tf for comp in spec.comparison for level in comp.levels if level.tf))


def predict_new(con: duckdb.DuckDBPyConnection, linker: Any, spec: ModelSpec, floor: float) -> int:
    """Score into ``scored_pairs`` only the blocked pairs of ``model_input`` with a record whose ``is_new`` holds.

    ``model_input`` holds the new records and every stored record a blocking rule pairs them with; the
    term frequencies must be registered (``register_term_frequency_lookup``): counted over the store,
    not over these records. The same rules as :func:`predict`, each also requiring a new record: the
    pairs are those a prediction over the whole store would find with a new record, and no others.
    """
    rules: list[Any] = []
    for rule in blocking_rules(spec.blocking):
        if isinstance(rule, dict):
            rules.append({**rule, "blocking_rule": f"({rule['blocking_rule']}) AND (l.is_new OR r.is_new)"})
        else:
            rules.append(f"({rule}) AND (l.is_new OR r.is_new)")
    (sdf,) = linker._input_tables_dict.values()  # the registered model_input
    predictions = linker.inference.predict_within(
        sdf, blocking_rules_to_generate_predictions=rules, threshold_match_probability=floor, warning_mode="never"
    )
    return _vetoed(con, predictions.physical_name, spec, floor)


def _vetoed(con: duckdb.DuckDBPyConnection, table: str, spec: ModelSpec, floor: float) -> int:
    """``scored_pairs`` from Splink's predictions ``table``: the veto applied, pairs below ``floor`` left out."""
    veto = f"({spec.veto.sql})" if spec.veto else "FALSE"
    cap = spec.veto.max_weight if spec.veto else 0.0
    columns = [c for c, in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()]
    levels = ", ".join(c for c in columns if c.startswith(("gamma_", "mw_")))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE scored_pairs AS
        WITH adjusted AS (
            SELECT *, {veto} AS vetoed,
                   CASE WHEN {veto} THEN least(match_weight, {cap}) ELSE match_weight END AS adjusted_weight
            FROM {table}
        )
        SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
               1 / (1 + pow(2, -adjusted_weight)) AS match_probability,
               adjusted_weight AS match_weight,
               match_weight AS model_match_weight,
               vetoed, {levels}
        FROM adjusted
        JOIN model_input AS l ON l.unique_id = adjusted.unique_id_l
        JOIN model_input AS r ON r.unique_id = adjusted.unique_id_r
        WHERE 1 / (1 + pow(2, -adjusted_weight)) >= {floor}
        ORDER BY record_id_l, record_id_r
        """
    )
    return int(con.execute("SELECT count(*) FROM scored_pairs").fetchall()[0][0])


def waterfalls(con: duckdb.DuckDBPyConnection, linker: Any, table: str, pairs: list[tuple[str, str]]) -> Any:
    """Splink's waterfall chart of the given pairs, match weights only (no personal data in the chart)."""
    if not pairs:
        return None
    wanted = " OR ".join(f"(l.record_id = '{a}' AND r.record_id = '{b}')" for a, b in pairs)
    frame = con.execute(
        f"""SELECT p.* FROM {table} AS p JOIN model_input AS l ON l.unique_id = p.unique_id_l
            JOIN model_input AS r ON r.unique_id = p.unique_id_r WHERE {wanted}"""
    ).df()
    records = frame.to_dict(orient="records")
    return linker.visualisations.waterfall_chart(records, filter_nulls=False, remove_sensitive_data=True)
