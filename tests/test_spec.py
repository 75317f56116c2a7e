"""The model spec: every SQL fragment checked before a run (linkage/spec.py), errors through the CLI, the
generated reference page (docs/spec.md), and a hostile fragment never runs."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from linkage import prepare
from linkage.errors import ConfigError
from linkage.fragments import FUNCTIONS, spec_problems
from linkage.spec import ModelSpec, load_spec, reference_markdown
from linkage.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = load_spec()
with Store(":memory:") as _scratch:
    COLUMNS = prepare.model_input_columns(_scratch)


def with_fragment(key: str, sql: str, spec: ModelSpec = DEFAULT) -> ModelSpec:
    """``spec`` with ``sql`` as the fragment of ``key``: blocking, deterministic, training, level or veto."""
    if key in ("blocking", "deterministic", "training"):
        return spec.model_copy(update={key: [*getattr(spec, key), sql]})
    if key == "veto":
        assert spec.veto is not None
        return spec.model_copy(update={"veto": spec.veto.model_copy(update={"sql": sql})})
    first = spec.comparison[0]
    levels = [first.levels[0], first.levels[1].model_copy(update={"sql": sql, "tf": None}), *first.levels[2:]]
    return spec.model_copy(update={"comparison": [first.model_copy(update={"levels": levels}), *spec.comparison[1:]]})


def write_spec(path: Path, change: dict[str, Any]) -> Path:
    """The default spec as a TOML file, with some top-level keys replaced (a file to pass as --spec)."""
    data = tomllib.loads((ROOT / "configs" / "model.toml").read_text(encoding="utf-8"))
    assert set(change) <= set(data)
    data.update(change)
    lines = [f"{key} = {_toml(value)}" for key, value in data.items() if key not in ("comparison", "veto")]
    lines += ["[veto]", *[f"{k} = {_toml(v)}" for k, v in data["veto"].items()]]
    for comp in data["comparison"]:
        lines += ["[[comparison]]", f"name = {_toml(comp['name'])}", f"levels = {_toml(comp['levels'])}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return repr(value)


# ---------------------------------------------------------------------------------------------------------
# The check


@pytest.mark.parametrize(
    "path", ["configs/model.toml", "configs/febrl_model.toml", "configs/civil_model.toml", "configs/national.toml"]
)
def test_shipped_specs_pass_the_check(path: str) -> None:
    load_spec(ROOT / path)


def test_a_spec_extends_another_replacing_the_keys_it_sets(tmp_path: Path) -> None:
    national = load_spec(ROOT / "configs" / "national.toml")
    assert national.model_copy(update={"blocking": DEFAULT.blocking, "max_candidates": None}) == DEFAULT  # all else
    assert len(national.blocking) < len(DEFAULT.blocking)
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{(ROOT / "configs" / "model.toml").as_posix()}"\nthreshold = 0.95\n')
    assert load_spec(child) == DEFAULT.model_copy(update={"threshold": 0.95})
    with pytest.raises(ConfigError, match="extends must name"):
        bad = tmp_path / "bad.toml"
        bad.write_text("extends = 3\n")
        load_spec(bad)
    grandchild = tmp_path / "grandchild.toml"
    grandchild.write_text('extends = "child.toml"\n')
    with pytest.raises(ConfigError, match="one level only"):
        load_spec(grandchild)
    missing = tmp_path / "missing.toml"
    missing.write_text('extends = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match="not found"):
        load_spec(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text(f'extends = "{(ROOT / "configs" / "model.toml").as_posix()}"\nblocking = ["l.nope = r.nope"]\n')
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_spec(broken)


def test_proposed_blocking_rules_pass_the_check() -> None:
    rules = tomllib.loads((ROOT / "benchmarks" / "blocking_proposed.toml").read_text(encoding="utf-8"))["blocking"]
    assert spec_problems(DEFAULT.model_copy(update={"blocking": rules})) == []


@pytest.mark.parametrize(
    ("key", "sql", "where", "token"),
    [
        ("veto", "gamma_name = 0; COPY (SELECT 1) TO 'x.csv'", "veto.sql", ";"),
        ("blocking", "l.nik = r.nik AND (SELECT count(*) FROM model_input) > 0", "blocking[", "SELECT"),
        ("blocking", "l.nik_digit = r.nik_digit", "blocking[", "'nik_digit' (did you mean 'nik_digits'?)"),
        ("blocking", "read_csv('/etc/passwd') IS NOT NULL", "blocking[", "read_csv"),
        ("training", "nik_digits = r.nik_digits", "training[", "without a side"),
        ("deterministic", "1 + 2", "deterministic[", "INTEGER"),
        ("level", "l.dob = ", "comparison[name].levels[1].sql", "not valid SQL"),
        ("level", "l.dob = r.dob OR pragma_version() IS NULL", "comparison[name].levels[1].sql", "pragma_version"),
        ("level", "l.x.y = 1", "comparison[name].levels[1].sql", "l.x.y"),
        ("veto", "l.dob IS NULL", "veto.sql", "gamma_<comparison>"),
        ("veto", "gamma_nam = 1", "veto.sql", "did you mean 'gamma_name'"),
    ],
)
def test_a_bad_fragment_is_refused_naming_its_key_the_fragment_and_the_token(
    key: str, sql: str, where: str, token: str
) -> None:
    problems = [str(p) for p in spec_problems(with_fragment(key, sql))]
    assert problems, sql
    assert all(where in p and repr(sql) in p for p in problems), problems
    assert any(token in p for p in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "bad.toml", {"blocking": ["l.dob = r.dob", "l.nik_digit = r.nik_digits", "2"],
                                              "training": ["copy(1)"]})  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    shown = str(caught.value)
    assert "blocking[1]" in shown and "blocking[2]" in shown and "training[0]" in shown
    assert "did you mean 'nik_digits'" in shown and str(path) in shown


def test_a_level_needs_a_condition_and_a_known_tf_column() -> None:
    first = DEFAULT.comparison[0]
    levels = [first.levels[0], first.levels[1].model_copy(update={"tf": "name_canonicl"}),
              first.levels[2].model_copy(update={"sql": None}), *first.levels[3:]]  # fmt: skip
    spec = DEFAULT.model_copy(update={"comparison": [first.model_copy(update={"levels": levels})]})
    problems = [str(p) for p in spec_problems(spec)]
    assert any("levels[1].tf" in p and "did you mean 'name_canonical'" in p for p in problems), problems
    assert any("levels[2]: a level needs sql" in p for p in problems), problems


def test_lambda_variables_are_columns_of_the_lambda_only() -> None:
    ok = "list_bool_or(list_transform(l.name_keys, lambda x: list_contains(r.name_keys, x)))"
    assert spec_problems(with_fragment("level", ok)) == []
    problems = [str(p) for p in spec_problems(with_fragment("level", "list_contains(r.name_keys, x)"))]
    assert any("without a side" in p for p in problems)


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("getenv('HOME') IS NULL", "function 'getenv'"),
        ("l.dob IN (SELECT dob FROM model_input)", "subquery"),
        ("l.dob = r.dob) AS c FROM t; COPY t TO 'x.csv'; SELECT (1", "more than one statement"),
    ],
)
def test_duckdb_reads_the_fragment_as_sqlglot_does(sql: str, found: str, tmp_path: Path, monkeypatch) -> None:
    """The second line: what reaches DuckDB is parsed by DuckDB too, before it is bound, never run."""
    from linkage.fragments import _bind_problems

    monkeypatch.chdir(tmp_path)
    with Store(":memory:") as store:
        store.sql(f"CREATE TEMP TABLE t AS SELECT * FROM ({prepare.MODEL_INPUT}) LIMIT 0")
        problems = [str(p) for p in _bind_problems(store, sql, "blocking[0]", "t AS l, t AS r")]
    assert any(found in p for p in problems), problems
    assert os.listdir(tmp_path) == []


def test_the_allow_list_has_the_macros_and_no_file_or_database_function() -> None:
    assert {"name_typo", "token_in", "names_typo_within", "names_explained_by"} <= FUNCTIONS
    assert not {"read_csv", "read_parquet", "copy", "attach", "pragma", "query", "getenv", "read_text"} & FUNCTIONS
    assert all(f == f.lower() for f in FUNCTIONS)


# ---------------------------------------------------------------------------------------------------------
# Errors through the CLI: a message, a non-zero exit, no traceback


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from linkage.cli import main

    monkeypatch.setattr(sys, "argv", ["linkage", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    out = capsys.readouterr()
    return int(caught.value.code or 0), out.out + out.err


def bad_specs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad --spec files, each with a phrase its message must hold."""
    folder.mkdir(exist_ok=True)
    (folder / "not.toml").write_text("this is [not TOML\n", encoding="utf-8")
    (folder / "binary.toml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    (folder / "model.json").write_text('{"model_id": "x", "splink": {"comparisons": []}}', encoding="utf-8")
    return {
        "syntax": (write_spec(folder / "syntax.toml", {"blocking": ["l.dob = = r.dob"]}), "not valid SQL"),
        "column": (write_spec(folder / "column.toml", {"training": ["l.nik_digit = r.nik_digit"]}), "nik_digits"),
        "blocking": (write_spec(folder / "blocking.toml", {"blocking": ["l.dob = r.dob OR query('x')"]}), "query"),
        "not toml": (folder / "not.toml", "is not TOML"),
        "binary": (folder / "binary.toml", "cannot be read"),
        "config": (ROOT / "configs" / "default.toml", "not a model spec"),
        "model.json": (folder / "model.json", "passed as --model"),
        "missing": (folder / "missing.toml", "not found"),
    }


@pytest.mark.parametrize("case", ["syntax", "column", "blocking", "not toml", "binary", "config", "model.json",
                                  "missing"])  # fmt: skip
def test_a_bad_spec_fails_through_the_cli_with_a_message(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, phrase = bad_specs(tmp_path / "specs")[case]
    data = tmp_path / "in.csv"
    data.write_text("record_id,full_name\na,Siti Aminah\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for args in (["dedupe", str(data), "--out", str(tmp_path / "out"), "--spec", str(spec)],
                 ["link", "--db", str(tmp_path / "store.duckdb"), "--spec", str(spec)]):  # fmt: skip
        code, shown = run_cli(args, monkeypatch, capsys)
        assert code != 0, shown
        assert "Traceback" not in shown and phrase in shown and "error" in shown, shown
    assert not (tmp_path / "out").exists() and not (tmp_path / "store.duckdb").exists()


# ---------------------------------------------------------------------------------------------------------
# Token soup: a fragment is refused (ConfigError) or accepted, never anything else, nothing is written, and
# an accepted fragment can be planned by DuckDB against an empty model input.

WORDS = [
    "SELECT", "FROM", "WHERE", "COPY", "TO", "ATTACH", "PRAGMA", "INSTALL", "LOAD", "CREATE", "DROP", "TABLE",
    "AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN", "ELSE", "END", "LIKE",
    "BETWEEN", "lambda", "x", "AS", "UNION", "EXISTS", "INTERVAL", "DAY", "::", "DATE", "INTEGER", "VARCHAR[]",
    "l.dob", "r.dob", "l.name_keys", "r.name_key", "l.nik_digits", "r.sex", "gamma_name", "gamma_nik", "l.x",
    "model_input", "read_csv", "read_parquet", "copy", "query", "getenv", "levenshtein", "list_has_all",
    "jaro_winkler_similarity", "name_typo", "length", "year", "abs", "list_transform", "glob", "read_text",
    "(", ")", ",", ";", "'", '"', "=", "<>", ">=", "<", "+", "-", "*", "/", "||", "[", "]", ":", ".", "$1",
    "?", "--", "/*", "*/", "'x.csv'", "'/tmp/x'", "0", "1", "2", "0.85", "$$", "\\", "\n",
]  # fmt: skip
SOUP = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join),
    st.text(max_size=40),
)
KEYS = ["blocking", "deterministic", "training", "level", "veto"]
# a small spec to put the soup in (the default has a hundred fragments to check each time)
SMALL = DEFAULT.model_copy(
    update={
        "blocking": ["l.dob = r.dob"], "deterministic": ["l.nik = r.nik"], "training": ["l.dob = r.dob"],
        "comparison": [c for c in DEFAULT.comparison if c.name in ("name", "nik", "sex", "prior_passport")],
    }
)  # fmt: skip
EMPTY: duckdb.DuckDBPyConnection | None = None


def _empty() -> duckdb.DuckDBPyConnection:
    """An empty model input, the gamma columns of the default spec (``scored``) and the macros."""
    global EMPTY
    if EMPTY is None:
        store = Store(":memory:")  # the schema, no rows; kept open for the module
        store.sql(prepare.MACROS)
        store.sql(f"CREATE TABLE model_input AS SELECT * FROM ({prepare.MODEL_INPUT}) LIMIT 0")
        gammas = ", ".join(f"0::INTEGER AS gamma_{c.name}" for c in DEFAULT.comparison)
        store.sql(f"CREATE TABLE scored AS SELECT {gammas} LIMIT 0")
        EMPTY = store.con
    return EMPTY


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), sql=SOUP)
@example(key="level", sql="l.dob = r.dob OR levenshtein(l.nik_digits, r.nik_digits) <= 1")
@example(key="veto", sql="gamma_name IN (0, 1) AND NOT gamma_sex = 1")
@example(key="blocking", sql="l.dob = r.dob; COPY model_input TO 'x.csv'")
def test_token_soup_is_refused_or_runs_and_writes_nothing(
    key: str, sql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    spec = with_fragment(key, sql, SMALL)
    try:
        refused = bool(spec_problems(spec))
    except ConfigError:
        refused = True
    assert set(os.listdir(tmp_path)) == before, sql
    if refused:
        return
    source = "scored" if key == "veto" else "model_input l, model_input r"
    _empty().execute(f"SELECT count(*) FROM {source} WHERE {sql}").fetchall()
    assert set(os.listdir(tmp_path)) == before, sql


# ---------------------------------------------------------------------------------------------------------
# The reference page


def test_docs_spec_md_is_generated_from_the_code() -> None:
    expected = reference_markdown()
    actual = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/spec.md is stale: regenerate it with\n"
        "  python -c 'from linkage.spec import reference_markdown as r; open(\"docs/spec.md\", \"w\").write(r())'"
    )


def test_input_columns_are_the_model_inputs_columns() -> None:
    assert [c.name for c in prepare.INPUT_COLUMNS] == COLUMNS
    from linkage.schema import ROLES

    assert all(set(c.roles) <= set(ROLES) and c.meaning and c.example for c in prepare.INPUT_COLUMNS)


def test_the_reference_lists_every_key_column_and_function() -> None:
    page = reference_markdown()
    for key in ("`blocking`", "`veto.sql`", "`comparison.levels.else`", "`comparison.levels.tf`", "gamma_<"):
        assert key in page
    assert all(f"`{c}`" in page for c in COLUMNS)
    assert all(f"`{f}`" in page for f in FUNCTIONS)


def test_the_default_spec_header_points_at_the_reference() -> None:
    header = (ROOT / "configs" / "model.toml").read_text(encoding="utf-8").split("\n\n")[0]
    assert "docs/spec.md" in header and "_l/_r" not in header


# ---------------------------------------------------------------------------------------------------------
# configs/civil_model.toml: data without a national id (names, birth dates of two centuries, places,
# postcodes, sex), on a small generated register with known duplicates (tests/fixtures/civil.py).


@pytest.fixture(scope="module")
def civil(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    from tests.fixtures.civil import CONFIG, civil_register

    folder = tmp_path_factory.mktemp("civil")
    register, truth = civil_register(folder)
    (folder / "civil.toml").write_text(CONFIG, encoding="utf-8")
    return register, folder / "civil.toml", truth


def pairwise_f1(clusters: Any, truth: dict[str, str]) -> tuple[float, float, float]:
    from math import comb

    import pandas as pd

    m = clusters.merge(pd.DataFrame({"record_id": list(truth), "person_id": list(truth.values())}), on="record_id")
    tp = sum(comb(n, 2) for n in m.groupby(["identity_id", "person_id"]).size())
    predicted = sum(comb(n, 2) for n in m.groupby("identity_id").size())
    true = sum(comb(n, 2) for n in m.groupby("person_id").size())
    p, r = tp / predicted, tp / true
    return p, r, 2 * p * r / (p + r)


def test_the_civil_register_has_duplicates_and_19th_century_births(civil: tuple[Path, Path, dict[str, str]]) -> None:
    register, _, truth = civil
    text = register.read_text(encoding="utf-8")
    assert ",18" in text and len(truth) > len(set(truth.values())) + 80


def test_civil_spec_finds_the_duplicates_without_a_national_id(
    civil: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    import pandas as pd

    register, config, truth = civil
    out = tmp_path / "out"
    spec = ROOT / "configs" / "civil_model.toml"
    from typer.testing import CliRunner

    from linkage.cli import app

    result = CliRunner().invoke(
        app, ["dedupe", str(register), "--config", str(config), "--spec", str(spec), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert len(clusters) == len(truth)  # every record accepted, the 19th-century births too
    p, r, f1 = pairwise_f1(clusters, truth)
    assert f1 > 0.97 and p > 0.97 and r > 0.95, (p, r, f1)  # measured: p 1.000, r 0.983, F1 0.991


def test_the_default_spec_on_civil_data_fails_naming_the_roles_it_needs(
    civil: tuple[Path, Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    register, config, _ = civil
    code, shown = run_cli(["dedupe", str(register), "--config", str(config), "--out", str(tmp_path / "out")],
                          monkeypatch, capsys)  # fmt: skip
    assert code != 0 and "Traceback" not in shown
    assert "training rule 'l.nik_digits = r.nik_digits' needs nik" in shown
    assert "mother_name" in shown and "civil_model.toml" in shown
