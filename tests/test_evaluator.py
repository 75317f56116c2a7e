"""The Python evaluator of a spec's SQL fragments (linkage/evaluator.py) against DuckDB itself: every
fragment of the bundled specs on real pairs of the sample's model input, and the functions on random text."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage import evaluator
from linkage.evaluator import Unsupported, pair_condition, row_condition
from linkage.fragments import fragments
from linkage.spec import ModelSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["model.toml", "civil_model.toml", "febrl_model.toml"]


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


# ---------------------------------------------------------------------------------------------------------
# 1. Every fragment of the three specs on real pairs of the sample's model input


def spec(name: str) -> ModelSpec:
    return load_spec(ROOT / "configs" / name)


@pytest.fixture(scope="module")
def sample_pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Any]]]:
    """The model input of 3,000 sample applications, and a table ``pairs`` (n, li, ri) of about 4,000 pairs
    of it: pairs sharing a name key, pairs born the same year, pairs sharing a NIK region, random pairs."""
    import pandas as pd

    from linkage import prepare
    from linkage.config import Config
    from linkage.pipeline import ingest
    from linkage.store import Store

    tmp = tmp_path_factory.mktemp("evaluator")
    frame = pd.read_parquet(ROOT / "data" / "sample" / "applications.parquet").head(3000)
    frame.to_parquet(tmp / "in.parquet")
    ingest([tmp / "in.parquet"], Config(), db=tmp / "store.duckdb", progress=None)
    with Store(tmp / "store.duckdb") as store:
        prepare.prepare_full(store, spec("model.toml"))
        con = store.con
        con.execute(EDGE_ROWS)
        con.execute(
            """CREATE TEMP TABLE pairs AS
            WITH tokens AS (SELECT unique_id, unnest(name_keys) AS k FROM model_input),
            by_token AS (SELECT DISTINCT a.unique_id AS li, b.unique_id AS ri FROM tokens a JOIN tokens b
                         ON a.k = b.k AND a.unique_id < b.unique_id),
            by_year AS (SELECT l.unique_id AS li, r.unique_id AS ri FROM model_input l JOIN model_input r
                        ON l.birth_year = r.birth_year AND l.unique_id <> r.unique_id),
            by_region AS (SELECT l.unique_id AS li, r.unique_id AS ri FROM model_input l JOIN model_input r
                          ON l.nik_region = r.nik_region AND l.unique_id <> r.unique_id),
            chosen AS (
                (SELECT * FROM by_token ORDER BY hash(li, ri) LIMIT 2000)
                UNION ALL (SELECT * FROM by_year ORDER BY hash(li, ri, 1) LIMIT 800)
                UNION ALL (SELECT * FROM by_region ORDER BY hash(li, ri, 2) LIMIT 400)
                UNION ALL (SELECT l.unique_id, r.unique_id FROM model_input l, model_input r
                           ORDER BY hash(l.unique_id, r.unique_id, 3) LIMIT 800)
                UNION ALL (SELECT unique_id, unique_id FROM model_input LIMIT 20)
                UNION ALL (SELECT e.unique_id, m.unique_id FROM model_input e, model_input m
                           WHERE e.unique_id > 1000000 ORDER BY hash(e.unique_id, m.unique_id, 4) LIMIT 900)
                UNION ALL (SELECT m.unique_id, e.unique_id FROM model_input e, model_input m
                           WHERE e.unique_id > 1000000 ORDER BY hash(e.unique_id, m.unique_id, 5) LIMIT 900)
                UNION ALL (SELECT e.unique_id, f.unique_id FROM model_input e, model_input f
                           WHERE e.unique_id > 1000000 AND f.unique_id > 1000000
                           ORDER BY hash(e.unique_id, f.unique_id, 6) LIMIT 600)
            )
            SELECT row_number() OVER (ORDER BY li, ri) AS n, li, ri FROM chosen"""
        )
        rows = {r["unique_id"]: r for r in con.sql("SELECT * FROM model_input").to_arrow_table().to_pylist()}
        pairs = [(rows[li], rows[ri]) for li, ri in con.execute("SELECT li, ri FROM pairs ORDER BY n").fetchall()]
        yield con, pairs


# Rows the sample rarely has, made from copies of 72 sample rows (unique_id + 1,000,000), six kinds of 12:
# names of nothing but one initial, empty lists and strings, a short malformed NIK, no birth date, NULL names
# and contact, a name with a one-letter typo in its first token (name_typo and its counts).
EDGE_ROWS = """
CREATE TEMP TABLE edge AS
SELECT * REPLACE (unique_id + 1000000 AS unique_id), row_number() OVER (ORDER BY unique_id) % 6 AS kind
FROM (SELECT * FROM model_input ORDER BY hash(unique_id) LIMIT 72);
UPDATE edge SET name_keys = ['A'], name_tokens = ['A'], name_counts = [1], name_full_keys = [], name_initials = ['A'],
    name_first_letters = ['A'], name_joined = [], name_key = 'A', name_set = 'A', name_canonical = 'A',
    mother_keys = ['S'], mother_full_keys = [], mother_initials = ['S'], mother_first_letters = ['S']
WHERE kind = 0;
UPDATE edge SET name_keys = [], name_tokens = [], name_counts = [], name_full_keys = [], name_initials = [],
    name_first_letters = [], name_joined = [], name_key = '', name_set = '', name_canonical = '', address = '',
    address_street = '', mother_key = '', patronym = ''
WHERE kind = 1;
UPDATE edge SET nik_digits = left(nik_digits, 5), nik = NULL, nik_prefix = NULL, nik_date = NULL,
    nik_head = left(nik_digits, 5), nik_tail = left(nik_digits, 5)
WHERE kind = 2;
UPDATE edge SET dob = NULL, dob_text = NULL, birth_year = NULL, birth_month_day = NULL, dob_unordered = NULL
WHERE kind = 3;
UPDATE edge SET name_keys = NULL, name_tokens = NULL, name_counts = NULL, name_full_keys = NULL,
    name_initials = NULL, name_first_letters = NULL, name_joined = NULL, name_key = NULL, name_set = NULL,
    mother_keys = NULL, mother_key = NULL, address = NULL, phone = NULL, patronym = NULL, address_village = NULL
WHERE kind = 4;
UPDATE edge SET name_tokens = list_concat([name_tokens[1][2:] || 'A'], name_tokens[2:])
WHERE kind = 5 AND len(name_tokens) > 0;
INSERT INTO model_input SELECT * EXCLUDE (kind) FROM edge;
"""


def duckdb_holds(con: duckdb.DuckDBPyConnection, sql: str) -> list[bool]:
    return [
        bool(v)
        for (v,) in con.execute(
            f"""SELECT coalesce(({sql}), false) FROM pairs p
                JOIN model_input l ON l.unique_id = p.li JOIN model_input r ON r.unique_id = p.ri ORDER BY p.n"""
        ).fetchall()
    ]


PAIR_FRAGMENTS = sorted(
    {(key, sql) for name in SPECS for key, sql, sides in fragments(spec(name)) if sides}, key=lambda f: f[1]
)


def test_the_pairs_are_varied(sample_pairs) -> None:
    con, pairs = sample_pairs
    assert len(pairs) > 6000
    assert sum(left["unique_id"] > 1_000_000 or right["unique_id"] > 1_000_000 for left, right in pairs) > 2000
    # the levels that need it hold on some pairs and not on others (else equal answers prove little)
    for sql in ("l.name_key = r.name_key", "jaro_winkler_similarity(l.name_key, r.name_key) >= 0.85",
                "l.nik_digits IS NULL OR r.nik_digits IS NULL", "l.dob = r.dob"):  # fmt: skip
        answers = duckdb_holds(con, sql)
        assert 0 < sum(answers) < len(answers), sql


def test_every_pair_fragment_of_the_specs_gives_duckdbs_answer(sample_pairs) -> None:
    con, pairs = sample_pairs
    wrong = []
    for key, sql in PAIR_FRAGMENTS:
        holds = pair_condition(sql)
        expected = duckdb_holds(con, sql)
        got = [holds(left, right) for left, right in pairs]
        differ = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
        if differ:
            wrong.append((key, sql, len(differ), pairs[differ[0]][0]["unique_id"], pairs[differ[0]][1]["unique_id"]))
    assert not wrong


def test_the_name_levels_hold_on_many_pairs(sample_pairs) -> None:
    # the macros' levels are the ones worth checking: they must be exercised both ways
    con, _ = sample_pairs
    for level in spec("model.toml").comparison[0].levels[4:7]:
        assert level.sql is not None
        answers = duckdb_holds(con, level.sql)
        assert 10 < sum(answers) < len(answers) - 10, level.sql


def test_the_vetoes_give_duckdbs_answer_on_gamma_rows(duck) -> None:
    rng = random.Random(7)
    for name in SPECS:
        veto = spec(name).veto
        if veto is None:
            continue
        columns = [f"gamma_{c.name}" for c in spec(name).comparison]
        rows = [
            {c: rng.choice([-1, 0, 1, 2, 3, 4, 5, 6, 7, None] if rng.random() < 0.1 else [-1, 0, 1, 2, 3, 4, 5, 6])
             for c in columns}
            for _ in range(1500)
        ]  # fmt: skip
        holds = row_condition(veto.sql)
        values = ", ".join(f"${i + 1}::INTEGER AS {c}" for i, c in enumerate(columns))
        for row in rows:
            (expected,) = duck.execute(f"SELECT coalesce(({veto.sql}), false) FROM (SELECT {values})",
                                       [row[c] for c in columns]).fetchone()  # fmt: skip
            assert holds(row) == expected, (name, row)


# ---------------------------------------------------------------------------------------------------------
# 2. The functions on random text, against DuckDB with bound parameters

# (ASCII-only strings take jellyfish, the others the Python code; CR LF is one grapheme to jellyfish)
LETTERS = "abcAB É éßİ\u0301\r\n"
text = st.text(alphabet=LETTERS, max_size=9)
maybe_text = st.one_of(st.none(), text)
small = st.one_of(st.none(), st.integers(min_value=-7, max_value=7))
text_list = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.text(alphabet="abAB", max_size=2)), max_size=5))
HYPOTHESIS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HYPOTHESIS
@given(a=text, b=text)
def test_the_similarity_functions_equal_duckdbs_bit_for_bit(duck, a: str, b: str) -> None:
    got = (evaluator.levenshtein(a, b), evaluator.damerau_levenshtein(a, b), evaluator.jaro_similarity(a, b),
           evaluator.jaro_winkler_similarity(a, b))  # fmt: skip
    expected = duck.execute(
        "SELECT levenshtein($1, $2), damerau_levenshtein($1, $2), jaro_similarity($1, $2), "
        "jaro_winkler_similarity($1, $2)",
        [a, b],
    ).fetchone()
    assert got == expected  # floats compared exactly: levels compare them with >= 0.85


def close_words(alphabet: str, longest: int) -> st.SearchStrategy[tuple[str, str]]:
    """Two words over few letters, the second often the first with a few edits: many matches, transpositions
    and windows that matter (up to 90 letters: DuckDB's rapidfuzz takes another path past 64)."""
    word = st.text(alphabet=alphabet, min_size=4, max_size=longest)

    def edited(a: str, edits: list[tuple[int, str]]) -> str:
        for at, c in edits:
            at %= len(a) + 1
            a = a[:at] + c + a[at + 1 :] if c != "-" else a[:at] + a[at + 1 :]
        return a

    edits = st.lists(st.tuples(st.integers(0, 100), st.sampled_from(alphabet + "-")), max_size=4)
    return st.one_of(st.tuples(word, word), st.builds(lambda a, e: (a, edited(a, e)), word, edits))


@HYPOTHESIS
@given(pair=st.one_of(close_words("abcdefgh", 14), close_words("abcÉ", 14), close_words("ABCD E", 90)))
def test_jaro_and_edit_distances_on_longer_close_words(duck, pair: tuple[str, str]) -> None:
    a, b = pair
    expected = duck.execute(
        "SELECT jaro_similarity($1, $2), jaro_winkler_similarity($1, $2), levenshtein($1, $2), "
        "damerau_levenshtein($1, $2)",
        [a, b],
    ).fetchone()
    got = (evaluator.jaro_similarity(a, b), evaluator.jaro_winkler_similarity(a, b), evaluator.levenshtein(a, b),
           evaluator.damerau_levenshtein(a, b))  # fmt: skip
    assert got == expected


EXPRESSIONS = [
    "levenshtein(a, b)", "damerau_levenshtein(a, b)", "jaro_winkler_similarity(a, b)", "jaro_similarity(a, b)",
    "length(a)", "len(a)", "lower(a)", "upper(a)", "trim(a)", "left(a, n)", "right(a, n)", "substr(a, n)",
    "substr(a, n, m)", "substring(a, m, n)", "a[n]", "a[n:m]", "a[n:]", "a[:3]", "a[-2:]", "a[:m]",
    "replace(a, b, 'x')",
    "contains(a, b)", "starts_with(a, b)", "ends_with(a, b)", "a || b", "a < b", "a = b", "a <> b", "a >= b",
    "least(a, b)", "greatest(a, b)", "least(n, m)", "greatest(n, m, 3)", "coalesce(a, b)", "nullif(a, b)",
    "abs(n)", "n // m", "n % m", "n + m * 2", "n - m", "n / m", "-n", "n IN (1, m, 3)", "n BETWEEN m AND 5",
    "n IS NULL", "n IS NOT DISTINCT FROM m", "CASE WHEN n > 0 THEN a WHEN m > 0 THEN b END", "if(n > m, n, m)",
    "CASE n WHEN 1 THEN 'one' WHEN m THEN 'm' ELSE 'other' END", "NOT (n > m)", "n > m AND a = b", "n > m OR a = b",
    "xs[n]", "xs[n:m]", "xs[2:]", "xs[-1]", "len(xs)", "array_length(xs)", "list_contains(xs, b)", "list_has(xs, a)",
    "list_has_all(xs, ys)", "list_has_any(xs, ys)", "len(list_intersect(xs, ys))",
    "list_bool_and(list_transform(xs, lambda x: x = 'a'))",
    "list_bool_or(list_transform(xs, lambda x: x = 'a'))", "list_transform(xs, lambda x, i: x || i::VARCHAR)",
    "list_transform(xs, lambda x, i: coalesce(x, '') || ys[i])", "list_filter(xs, lambda x: length(x) > 1)",
    "list_sort(xs)", "list_reverse(xs)", "list_extract(xs, n)", "list_element(xs, m)",
    "list_transform(xs[2:], lambda k, i: xs[i] || k)", "first_letter(a)",
    "name_typo(a, b, n, m)", "xs = ys", "list_contains(xs, NULL)", "n::VARCHAR", "(n > m)::VARCHAR",
    "(n > m)::INTEGER", "n::BIGINT", "n::SMALLINT", "(n / 4)::INTEGER", "(n / 4)::BIGINT", "n::DOUBLE",
    "a::VARCHAR", "n::BOOLEAN", "CAST(n AS TEXT) || a",
]  # fmt: skip


def supported(sql: str) -> bool:
    try:
        evaluator._row_value(sql)
    except Unsupported:
        return False
    return True


# (a[:m], which sqlglot reads as a[$m], is refused: checked to be refused instead)
VALUE_EXPRESSIONS = [e for e in EXPRESSIONS if supported(e)]


def test_only_a_placeholder_is_refused() -> None:
    refused = sorted(set(EXPRESSIONS) - set(VALUE_EXPRESSIONS))
    assert refused == ["a[:m]"]


DIVISIONS = ("n // m", "n % m", "n / m")


@HYPOTHESIS
@given(a=maybe_text, b=maybe_text, n=small, m=small, xs=text_list, ys=text_list)
def test_the_functions_and_operators_equal_duckdbs(duck, a, b, n, m, xs, ys) -> None:
    from linkage.prepare import MACROS

    row = {"a": a, "b": b, "n": n, "m": m, "xs": xs, "ys": ys}
    duck.execute(MACROS)
    # one query for all (a division by zero fails DuckDB's query: TRY makes it NULL, and the evaluator must raise)
    columns = ", ".join(f"TRY({sql})" if sql in DIVISIONS else sql for sql in VALUE_EXPRESSIONS)
    expected = duck.execute(
        f"SELECT {columns} FROM (SELECT $1::VARCHAR AS a, $2::VARCHAR AS b, $3::INTEGER AS n, $4::INTEGER AS m, "
        "$5::VARCHAR[] AS xs, $6::VARCHAR[] AS ys)",
        [a, b, n, m, xs, ys],
    ).fetchone()
    wrong = []
    for sql, value in zip(VALUE_EXPRESSIONS, expected, strict=True):
        if sql in DIVISIONS and m == 0 and n is not None:
            with pytest.raises(ZeroDivisionError):
                evaluator._row_value(sql)(row)
            continue
        got = evaluator._row_value(sql)(row)
        if got != value or type(got) is not type(value):
            wrong.append((sql, got, value))
    assert not wrong, row


@HYPOTHESIS
@given(d=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
       e=st.one_of(st.none(), st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2030, 12, 31))))  # fmt: skip
def test_the_date_functions_equal_duckdbs(duck, d: dt.date, e: dt.date | None) -> None:
    sqls = ["year(d)", "month(d)", "day(d)", "d::VARCHAR", "d::DATE = e", "strftime(d, '%Y%m%d')",
            "strftime(d, '%m%d')", "strftime(d, '%d/%m/%y %j %%')", "d = e", "d < e", "day(d) = month(e)",
            "abs(year(d) - year(e)) = 1"]  # fmt: skip
    for sql in sqls:
        (expected,) = duck.execute(f"SELECT {sql} FROM (SELECT $1::DATE AS d, $2::DATE AS e)", [d, e]).fetchone()
        assert evaluator._row_value(sql)({"d": d, "e": e}) == expected, sql


# ---------------------------------------------------------------------------------------------------------
# 3. What the evaluator does not implement is refused when the fragment is compiled


@pytest.mark.parametrize(
    "sql",
    [
        "regexp_matches(l.name_key, 'A+')",  # a function it does not implement
        "hash(l.name_key) = hash(r.name_key)",
        "l.birth_year::FLOAT = r.birth_year",  # a cast to a type it does not implement
        "TRY_CAST(l.dob_text AS INTEGER) = r.birth_year",
        "l.name_key LIKE 'A%'",  # a node
        "strftime(l.dob, '%B') = strftime(r.dob, '%B')",  # a format specifier
        "l.birth_year + 0.5 > r.birth_year",  # decimal arithmetic
        "name_key = r.name_key",  # a column without a side
        "x.name_key = r.name_key",
        "list_transform(l.name_keys, lambda x, i, j: x) = r.name_keys",
        "first_letter(l.name_key, r.name_key) = 'A'",  # a macro with the wrong arguments
    ],
)
def test_what_is_not_implemented_is_refused_at_compile_time(sql: str) -> None:
    with pytest.raises(Unsupported):
        pair_condition(sql)


def test_a_macro_argument_a_lambda_of_its_body_would_capture_is_refused() -> None:
    # token_in's body binds y and j: DuckDB, substituting the argument y there, would read its own y
    sql = "list_bool_or(list_transform(l.name_keys, lambda y: token_in(r.name_keys, r.name_tokens, " \
          "r.name_counts, len(y), l.name_keys, l.name_tokens, l.name_counts)))"  # fmt: skip
    with pytest.raises(Unsupported, match="rebind"):
        pair_condition(sql)
    pair_condition(sql.replace("lambda y: ", "lambda z: ").replace("len(y)", "len(z)"))  # no capture: compiles


def test_a_veto_reads_bare_columns_only() -> None:
    with pytest.raises(Unsupported):
        row_condition("l.gamma_name = 0")
    assert row_condition("gamma_name = 0 OR gamma_dob IN (2, 6)")({"gamma_name": 1, "gamma_dob": 6})


def test_values_duckdb_would_cast_are_refused_not_guessed() -> None:
    holds = pair_condition("l.birth_year = r.dob_text")
    with pytest.raises(Unsupported):
        holds({"birth_year": 1990}, {"dob_text": "1990"})
