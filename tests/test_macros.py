"""The Python twins of the SQL macros (linkage/macros.py) give DuckDB's values, NULLs included.

Each twin is called on random token lists (a small alphabet, so that keys repeat and typos happen), with
NULL lists, empty lists, NULL tokens and NULL counts among them, and compared with DuckDB running the macro
itself (linkage.prepare.MACROS). The evaluator calls the twins (tests/test_evaluator.py holds whole levels
to DuckDB on real pairs); here each twin is held alone, on inputs real data rarely has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage import macros
from linkage.evaluator import pair_condition
from linkage.prepare import MACROS


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute(MACROS)
    yield connection
    connection.close()


TOKEN = st.sampled_from(["SITI", "SITE", "STI", "AMINAH", "AMINA", "M", "A", "S", "MUHAMAD", "MUHAMMAD", "AMAD",
                         "J", "JOKO", "YOKO", "SITIAMINA", "AMINASITI", ""])  # fmt: skip
TOKENS = st.one_of(st.none(), st.lists(st.one_of(TOKEN, st.none()), max_size=4), st.lists(TOKEN, max_size=4))
COUNTS = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(1, 60)), max_size=4))
INDEX = st.one_of(st.none(), st.integers(-1, 5))


def duckdb_value(con: duckdb.DuckDBPyConnection, name: str, *args: Any) -> Any:
    typed = ", ".join(f"?::{kind}" for kind in _types(name))
    return con.execute(f"SELECT {name}({typed})", list(args)).fetchall()[0][0]


def _types(name: str) -> list[str]:
    text, number, index = "VARCHAR[]", "BIGINT[]", "BIGINT"
    return {
        "first_letter": ["VARCHAR"],
        "name_typo": ["VARCHAR", "VARCHAR", "BIGINT", "BIGINT"],
        "names_abbreviated": [text] * 5,
        "token_in": [text, text, number, index, text, text, number],
        "names_typo_within": [text, text, number, text, text, number],
        "names_explained_by": [text, text, number, text, text, number, text, text],
    }[name]


@settings(max_examples=300, deadline=None)
@given(k=st.one_of(st.none(), TOKEN))
def test_first_letter(con: duckdb.DuckDBPyConnection, k: str | None) -> None:
    assert macros.first_letter(k) == duckdb_value(con, "first_letter", k)


@settings(max_examples=400, deadline=None)
@given(x=st.one_of(st.none(), TOKEN), y=st.one_of(st.none(), TOKEN), nx=st.one_of(st.none(), st.integers(1, 60)),
       ny=st.one_of(st.none(), st.integers(1, 60)))  # fmt: skip
def test_name_typo(con: duckdb.DuckDBPyConnection, x: str | None, y: str | None, nx: int | None, ny: int | None) -> None:  # noqa: E501
    assert macros.name_typo(x, y, nx, ny) == duckdb_value(con, "name_typo", x, y, nx, ny)


@settings(max_examples=400, deadline=None)
@given(ak=TOKENS, ai=TOKENS, bk=TOKENS, bi=TOKENS, bf=TOKENS)
def test_names_abbreviated(con: duckdb.DuckDBPyConnection, ak: Any, ai: Any, bk: Any, bi: Any, bf: Any) -> None:
    assert macros.names_abbreviated(ak, ai, bk, bi, bf) == duckdb_value(con, "names_abbreviated", ak, ai, bk, bi, bf)


@settings(max_examples=400, deadline=None)
@given(ak=TOKENS, aw=TOKENS, an=COUNTS, i=INDEX, bk=TOKENS, bw=TOKENS, bn=COUNTS)
def test_token_in(con: duckdb.DuckDBPyConnection, ak: Any, aw: Any, an: Any, i: Any, bk: Any, bw: Any, bn: Any) -> None:
    assert macros.token_in(ak, aw, an, i, bk, bw, bn) == duckdb_value(con, "token_in", ak, aw, an, i, bk, bw, bn)


@settings(max_examples=400, deadline=None)
@given(ak=TOKENS, aw=TOKENS, an=COUNTS, bk=TOKENS, bw=TOKENS, bn=COUNTS)
def test_names_typo_within(
    con: duckdb.DuckDBPyConnection, ak: Any, aw: Any, an: Any, bk: Any, bw: Any, bn: Any
) -> None:
    expected = duckdb_value(con, "names_typo_within", ak, aw, an, bk, bw, bn)
    assert macros.names_typo_within(ak, aw, an, bk, bw, bn) == expected


@settings(max_examples=400, deadline=None)
@given(ak=TOKENS, aw=TOKENS, an=COUNTS, bk=TOKENS, bw=TOKENS, bn=COUNTS, bf=TOKENS, bj=TOKENS)
def test_names_explained_by(
    con: duckdb.DuckDBPyConnection, ak: Any, aw: Any, an: Any, bk: Any, bw: Any, bn: Any, bf: Any, bj: Any
) -> None:
    expected = duckdb_value(con, "names_explained_by", ak, aw, an, bk, bw, bn, bf, bj)
    assert macros.names_explained_by(ak, aw, an, bk, bw, bn, bf, bj) == expected


def test_every_macro_has_a_twin_and_the_evaluator_calls_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from linkage.evaluator import _macros_source

    assert set(macros.TWINS) == set(_macros_source())
    called: list[str] = []
    original = macros.TWINS["name_typo"]
    monkeypatch.setitem(macros.TWINS, "name_typo", lambda *a: called.append("yes") or original(*a))
    holds = pair_condition("name_typo(l.a, r.a, l.n, r.n) OR name_typo(l.a, r.a, l.n, r.n)")  # not cached yet
    assert holds({"a": "SITI", "n": 1}, {"a": "SITE", "n": 40}) and called
