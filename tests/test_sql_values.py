"""No value is formatted into SQL text: every statement goes through the store with its values bound.

The rule this test holds (style principle 13): code in ``linkage/`` passes SQL to the store's methods
(``sql``, ``rows``, ``scalar``, ``df``, ``arrow``) as a string literal, or as an f-string (or a sum of
strings) whose every placeholder is an identifier quoted by :func:`linkage.store.quote` or one of the
SQL fragments in :data:`FRAGMENTS` below (each built by code from checked names or parsed spec
fragments, never from values). A placeholder inside quotes (``'{x}'``) is a value by definition and
always refused, as are ``%`` and ``.format`` on SQL. Only ``linkage/store.py`` calls DuckDB's
``execute``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "linkage"
# The store's methods that take SQL, and helpers that pass their SQL on to one (checked at their callers).
METHODS = {"sql": 0, "rows": 0, "scalar": 0, "df": 0, "arrow": 0, "_counts": 1}  # method -> the SQL's position
NOT_SQL = {"pa", "pc", "np", "pd"}  # pyarrow's scalar(), numpy: not the store

# Names that may appear in a placeholder, each an identifier or a fragment of SQL that code builds from
# checked names (model-input columns, stage tables) or from the spec's parsed conditions, never a value.
NAMES = {
    # stage tables chosen by code (prepare's TEMP tables, Splink's predictions table named by Splink)
    "rows", "inputs", "records", "counts", "pending", "source", "table", "tokens", "staged",
    # model-input columns, checked against it (prepare, block, train), and comprehension variables over them
    "c", "column", "columns", "keys", "nulls", "name", "present", "equal", "tf", "parts",
    # SQL built by code: blocking keys of the spec's parsed rules, the veto (parsed and checked by linkage.spec)
    "probe_keys", "index_keys", "needed", "counted", "veto", "levels", "gammas", "weights", "raw", "norm",
    "changed", "spec", "block",
    # the schema's DDL, from the MIGRATIONS constant; the store, whose columns() lists a table's column names
    "statement", "store", "names", "n",
}
BUILDERS = {"quote", "block_keys", "lookup_keys", "model_input_sql", "value_counts_sql", "_token_counts", "_literal",
            "_name_columns", "join", "columns", "startswith",
            "level", "weight"}  # fmt: skip  (publish's helpers that quote a comparison's column names)


def _free_names(node: ast.expr) -> set[str]:
    """Names an expression reads that it does not bind itself (comprehension variables are bound)."""
    bound = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    } | {a.arg for n in ast.walk(node) if isinstance(n, ast.Lambda) for a in n.args.args}
    called = {
        (n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id)
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute | ast.Name)
    }
    read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return {n for n in read - bound if n not in called} | {n for n in called if n not in BUILDERS}


def _allowed(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    # the warm scorer's statements, built once from the spec's parsed fragments (checked where built)
    if isinstance(node, ast.Attribute) and ast.unparse(node.value) in ("self", "state") and node.attr.endswith("_sql"):
        return True
    free = _free_names(node)
    return all(n in NAMES or n in BUILDERS or n.lstrip("_").isupper() for n in free)


def _placeholders(node: ast.JoinedStr) -> list[tuple[ast.expr, bool]]:
    """Each placeholder, and whether it stands inside single quotes."""
    out = []
    text = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            text += str(part.value)
        elif isinstance(part, ast.FormattedValue):
            out.append((part.value, text.count("'") % 2 == 1))
            text += "X"
    return out


def _problems(node: ast.expr, assigned: dict[str, list[ast.expr]], params: set[str], depth: int = 0) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return []
    if isinstance(node, ast.JoinedStr):
        found = []
        for value, quoted in _placeholders(node):
            source = ast.unparse(value)
            if quoted:
                found.append(f"'{{{source}}}' puts a value inside quotes")
            elif isinstance(value, ast.Name) and value.id in assigned and depth < 3:
                found += [p for v in assigned[value.id] for p in _problems(v, assigned, params, depth + 1)]
            elif not _allowed(value):
                found.append(f"{{{source}}} is neither quote(...) nor a listed fragment")
        return found
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _problems(node.left, assigned, params, depth) + _problems(node.right, assigned, params, depth)
    if isinstance(node, ast.IfExp):
        return _problems(node.body, assigned, params, depth) + _problems(node.orelse, assigned, params, depth)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return ["% formatting of SQL"]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [".format() of SQL"]
    if isinstance(node, ast.Name) and node.id in assigned and depth < 3:
        return [p for value in assigned[node.id] for p in _problems(value, assigned, params, depth + 1)]
    if isinstance(node, ast.Name) and node.id == "sql" and node.id in params:
        return []  # a helper passing its caller's SQL on (store.py's methods, METHODS): checked at the caller
    if _allowed(node):
        return []
    return [f"{ast.unparse(node)[:60]} is not a literal, an f-string or a listed fragment"]


def _findings() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
            params = {a.arg for a in function.args.args + function.args.kwonlyargs}
            assigned: dict[str, list[ast.expr]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    assigned.setdefault(node.targets[0].id, []).append(node.value)
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                if called == "execute" and path.name != "store.py":
                    found.append(f"{where}: execute() outside the store")
                at = METHODS.get(called)
                if at is not None and receiver not in NOT_SQL and len(node.args) > at:
                    found += [f"{where}: {p}" for p in _problems(node.args[at], assigned, params)]
    return sorted(set(found))


def test_no_value_is_formatted_into_sql() -> None:
    findings = _findings()
    assert not findings, "SQL text built from something other than identifiers:\n" + "\n".join(findings)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("def f(store, a):\n    store.sql(f\"SELECT * FROM t WHERE id = '{a}'\")\n", "inside quotes"),
        ("def f(store, a):\n    store.rows(\"SELECT %s\" % a)\n", "% formatting"),
        ("def f(store, a):\n    store.df(\"SELECT {}\".format(a))\n", ".format()"),
        ("def f(store, a):\n    store.scalar(f\"SELECT {a}\")\n", "neither quote"),
        ("def f(store, a):\n    sql = f\"SELECT {a}\"\n    store.sql(sql)\n", "neither quote"),
        ("def f(con, a):\n    con.execute(\"SELECT 1\")\n", "outside the store"),
    ],
)
def test_the_check_catches_each_kind_of_formatting(tmp_path: Path, source: str, problem: str) -> None:
    (tmp_path / "linkage").mkdir()
    (tmp_path / "linkage" / "bad.py").write_text(source, encoding="utf-8")
    globals()["PACKAGE"], saved = tmp_path / "linkage", PACKAGE
    try:
        findings = _findings()
    finally:
        globals()["PACKAGE"] = saved
    assert any(problem in f for f in findings), findings


def test_bound_values_and_quoted_identifiers_pass(tmp_path: Path) -> None:
    source = (
        "def f(store, a, table):\n"
        "    store.sql(\"SELECT * FROM t WHERE id = ?\", [a])\n"
        "    store.rows(f\"SELECT count(*) FROM {quote(table)} WHERE id = $id\", {\"id\": a})\n"
    )
    (tmp_path / "linkage").mkdir()
    (tmp_path / "linkage" / "good.py").write_text(source, encoding="utf-8")
    globals()["PACKAGE"], saved = tmp_path / "linkage", PACKAGE
    try:
        assert _findings() == []
    finally:
        globals()["PACKAGE"] = saved
