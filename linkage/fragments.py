"""A spec's SQL fragments checked before anything runs: one condition over the model input, allowed calls only.

Each fragment (blocking, deterministic and training rules, comparison levels: over ``l.``/``r.`` model-input
columns; the veto: over ``gamma_<comparison>`` columns) is parsed with sqlglot and accepted only as one
boolean expression of allowed kinds, calling only :data:`FUNCTIONS`; then DuckDB's own parser must agree
(one statement, no subquery, the same calls), and DuckDB binds it, without running it, against empty
tables of the model input's shape, where it must be a condition. A spec is data: nothing of it runs as
code before it passes.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from linkage.errors import Problem, StoreError, did_you_mean

if TYPE_CHECKING:
    from linkage.spec import ModelSpec

__all__ = ["FUNCTIONS", "fragment_problems", "fragments", "spec_problems"]


FUNCTIONS: Final[frozenset[str]] = frozenset(
    {
        # the SQL macros of linkage.prepare.MACROS
        "name_typo", "token_in", "names_typo_within", "names_explained_by", "first_letter", "names_abbreviated",
        # text
        "length", "len", "strlen", "lower", "upper", "trim", "ltrim", "rtrim", "left", "right", "substr",
        "substring", "replace", "reverse", "concat", "contains", "starts_with", "ends_with", "prefix", "suffix",
        "split_part", "string_split", "str_split", "regexp_matches", "regexp_replace", "regexp_extract",
        "array_to_string", "strip_accents", "lpad", "rpad",
        # string similarity
        "levenshtein", "damerau_levenshtein", "hamming", "jaro_similarity", "jaro_winkler_similarity", "jaccard",
        # numbers
        "abs", "least", "greatest", "round", "floor", "ceil", "sign",
        # dates
        "year", "month", "day", "dayofyear", "date_diff", "datediff", "date_part", "strftime", "make_date",
        # lists (lambdas allowed: ``lambda x: ...``)
        "list_contains", "list_has", "list_has_any", "list_has_all", "list_intersect", "list_filter",
        "list_transform", "list_sort", "list_distinct", "list_extract", "list_element", "list_bool_and",
        "list_bool_or", "list_concat", "list_slice", "list_position", "list_reverse", "list_unique",
        "array_length", "flatten",
        # nulls, conditions, types
        "coalesce", "nullif", "ifnull", "if", "cast", "try_cast", "hash",
    }
)  # fmt: skip
"""The functions a fragment may call (lower case): the macros of :data:`linkage.prepare.MACROS` and scalar
functions of DuckDB that read only their arguments. Nothing that reads or writes files, attaches a database,
changes a setting or queries a table (``read_csv``, ``copy``, ``attach``, ``pragma``, ``query``...)."""

# Words that a parenthesis may follow without being a call.
_NOT_CALLS: Final = frozenset({"and", "or", "not", "in", "when", "then", "else", "case", "is", "like", "ilike",
                               "between", "end", "lambda"})  # fmt: skip


def _kinds() -> tuple[type, ...]:
    from sqlglot import exp

    return (
        exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.And, exp.Or, exp.Not,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In,
        exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg,
        exp.DPipe, exp.Case, exp.If, exp.Bracket, exp.Slice, exp.Lambda, exp.DataType, exp.Array,
        exp.Interval, exp.Var,
    )  # fmt: skip


def fragment_problems(sql: str, key: str, columns: Sequence[str], *, sides: bool) -> list[Problem]:
    """What is wrong with one fragment (empty when it is one condition of allowed parts); no DuckDB.

    Args:
        sql: the fragment.
        key: where it is in the spec (``blocking[3]``).
        columns: the columns it may read.
        sides: columns are written ``l.x`` / ``r.x`` (pair conditions); else bare (the veto).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    def problem(what: str, token: str) -> Problem:
        return Problem(f"{key} = {sql!r}: {what} (at {token!r})", value=sql)

    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (SqlglotError, ValueError, RecursionError) as exc:
        reason = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", str(exc).splitlines()[0] if str(exc) else repr(exc))
        return [Problem(f"{key} = {sql!r}: not valid SQL: {reason}", value=sql)]
    if len(statements) != 1 or any(t.token_type.name == "SEMICOLON" for t in tokens):
        return [problem(f"one condition wanted, found {len(statements)} statements", ";")]
    found: list[Problem] = []
    for before, after in itertools.pairwise(tokens):
        name = before.text.lower()
        called = after.token_type.name == "L_PAREN" and (
            before.text.isidentifier() or before.token_type.name == "IDENTIFIER"
        )
        if called and name not in _NOT_CALLS and name not in FUNCTIONS:
            what = f"function {name!r} is not allowed{did_you_mean(name, FUNCTIONS)} (docs/spec.md lists those allowed)"
            found.append(problem(what, before.text))
    kinds = _kinds()
    seen: set[str] = set()
    tree = statements[0]
    for node in tree.walk():
        if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc | exp.Window):
            continue  # a call: its name was checked on the tokens
        if not isinstance(node, kinds):
            refused = f"{type(node).__name__.lower()} is not allowed in a condition"
            found.append(problem(refused, node.sql("duckdb")[:40]))
            continue
        wrong = _column_problem(node, columns, sides=sides) if isinstance(node, exp.Column) else None
        if wrong and wrong not in seen:  # an unknown column once, though both sides name it
            seen.add(wrong)
            found.append(problem(wrong, node.sql("duckdb")))
    return found


def _column_problem(node: Any, columns: Sequence[str], *, sides: bool) -> str | None:
    """What is wrong with one column reference (a side, a name the model input has, a lambda's variable)."""
    from sqlglot import exp

    bound = {p.name for lam in _ancestors(node, exp.Lambda) for p in lam.expressions}
    parts = [p for p in (node.args.get("catalog"), node.args.get("db"), node.args.get("table")) if p]
    if any(isinstance(part, exp.Identifier) and part.quoted for part in [*parts, node.this]):
        return "write column names unquoted"
    if not parts and node.name in bound:
        return None  # a lambda's variable
    if len(parts) > 1 or (parts and not sides):
        return f"not a column; {'write l.<column> or r.<column>' if sides else 'write gamma_<comparison>'}"
    if sides and (not parts or parts[0].name not in ("l", "r")):
        return f"column {node.name!r} without a side: write l.{node.name} or r.{node.name}"
    if node.name not in columns:
        return f"unknown column {node.name!r}{did_you_mean(node.name, columns)}"
    return None


def _ancestors(node: Any, kind: type) -> list[Any]:
    found = []
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kind):
            found.append(parent)
        parent = parent.parent
    return found


def fragments(spec: ModelSpec) -> list[tuple[str, str, bool]]:
    """Every SQL fragment of ``spec`` as (key, fragment, whether it reads the sides l. and r.)."""
    found = [(f"blocking[{i}]", rule, True) for i, rule in enumerate(spec.blocking)]
    found += [(f"deterministic[{i}]", rule, True) for i, rule in enumerate(spec.deterministic)]
    found += [(f"training[{i}]", rule, True) for i, rule in enumerate(spec.training)]
    for comp in spec.comparison:
        for i, level in enumerate(comp.levels):
            if level.sql is not None and not level.else_:
                found.append((f"comparison[{comp.name}].levels[{i}].sql", level.sql, True))
    if spec.veto is not None:
        found.append(("veto.sql", spec.veto.sql, False))
    return found


def spec_problems(spec: ModelSpec, store: Any = None) -> list[Problem]:
    """Every problem of the SQL fragments of ``spec``, checked against the model input (none: it is valid).

    ``store``: a store holding the model input's schema (default: a fresh in-memory one); its TEMP tables
    ``_spec_pairs`` and ``_spec_gammas`` are (re)made empty to bind the fragments against.
    """
    from linkage.prepare import MACROS, MODEL_INPUT
    from linkage.store import Store, quote

    if store is None:
        with Store(":memory:") as scratch:
            return spec_problems(spec, scratch)
    columns = [c for (c, *_) in store.rows(f"DESCRIBE ({MODEL_INPUT})", table="model_input")]
    names = [f"gamma_{c.name}" for c in spec.comparison]
    found: list[Problem] = []
    for comp in spec.comparison:
        for i, level in enumerate(comp.levels):
            key = f"comparison[{comp.name}].levels[{i}]"
            if level.sql is None and not level.else_:
                found.append(Problem(f"{key}: a level needs sql (a condition) unless it is the else level"))
            if level.tf is not None and level.tf not in columns:
                found.append(Problem(f"{key}.tf = {level.tf!r}: unknown column{did_you_mean(level.tf, columns)}"))
    checked = [(key, sql, sides, fragment_problems(sql, key, columns if sides else names, sides=sides))
               for key, sql, sides in fragments(spec)]  # fmt: skip
    for _, _, _, problems in checked:
        found += problems
    if any(not problems for *_, problems in checked):
        store.sql(MACROS, table="macros")
        store.sql(f"CREATE OR REPLACE TEMP TABLE _spec_pairs AS SELECT * FROM ({MODEL_INPUT}) LIMIT 0",
                  table="_spec_pairs")  # fmt: skip
        store.sql(
            f"""CREATE OR REPLACE TEMP TABLE _spec_gammas AS
                SELECT 0 AS _unused{"".join(f", 0::INTEGER AS {quote(n)}" for n in names)} LIMIT 0""",
            table="_spec_gammas",
        )
    for key, sql, sides, problems in checked:
        if not problems:  # only a fragment of allowed parts reaches DuckDB, and it is bound, never run
            found += _bind_problems(store, sql, key, "_spec_pairs AS l, _spec_pairs AS r" if sides else "_spec_gammas")
    return found


def _bind_problems(store: Any, sql: str, key: str, source: str) -> list[Problem]:
    """DuckDB's objections to a checked fragment, bound (not run) against empty tables: types, a non-condition."""
    import duckdb

    query = f"SELECT ({sql}) AS condition FROM {source}"
    try:
        # DuckDB's own parser must agree with sqlglot's: one statement, no subquery, only allowed calls
        if len(store.con.extract_statements(query)) != 1:
            return [Problem(f"{key} = {sql!r}: one condition wanted, found more than one statement", value=sql)]
        calls, subquery = _duckdb_calls(json.loads(store.scalar("SELECT json_serialize_sql(?)", [query])))
        refused = sorted(calls - FUNCTIONS - _OPERATORS)
        if refused or subquery:
            what = f"function {refused[0]!r} is not allowed" if refused else "a subquery is not allowed"
            return [Problem(f"{key} = {sql!r}: {what} (as DuckDB reads it)", value=sql)]
        kind = _described(store, "DESCRIBE " + query)
    except (duckdb.Error, StoreError) as exc:
        reason = str(exc).split(": ", 1)[-1].splitlines()[0]
        return [Problem(f"{key} = {sql!r}: DuckDB cannot evaluate it: {reason}", value=sql)]
    if kind != "BOOLEAN":
        return [Problem(f"{key} = {sql!r}: not a condition (it gives {kind}, not true or false)", value=sql)]
    return []


# Operators that DuckDB's parser writes as function calls (LIKE is ~~), and list literals ([1, 2]).
_OPERATORS: Final = frozenset({"+", "-", "*", "/", "//", "%", "^", "**", "||", "~~", "!~~", "~~*", "!~~*", "&", "|",
                               "<<", ">>", "list_value", "row", "array_slice", "array_extract"})  # fmt: skip


def _duckdb_calls(tree: Any) -> tuple[set[str], bool]:
    """The function names in DuckDB's parse of a query (``json_serialize_sql``), and whether it has a subquery.

    A parse DuckDB could not make counts as a subquery: refused.
    """
    calls: set[str] = set()
    subquery = isinstance(tree, dict) and bool(tree.get("error"))
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("function_name"), str):
                calls.add(node["function_name"].lower())
            subquery = subquery or node.get("class") == "SUBQUERY" or node.get("type") == "SUBQUERY"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return calls, subquery


def _described(store: Any, sql: str) -> str:
    """The type of the one column of a query, as DuckDB binds it (nothing runs)."""
    return str(store.rows(sql, table="spec check")[0][1])


# ---------------------------------------------------------------------------------------------------------
# The reference page, docs/spec.md, generated from the declarations above and in linkage.prepare
# (tests/test_spec.py checks that the file is what this writes).
