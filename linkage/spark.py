"""The ``model`` and ``score`` stages of a full run on Spark: the same spec, the same records, Parquet between.

``--engine spark`` (or ``link.engine = "spark"`` in the config) trains and scores a full run on Spark
instead of the store's own DuckDB; everything else stays where it is. Ingest and normalisation are the same
Python workers; ``prepare`` builds the model input in the store as always; it goes to Spark as Parquet, and
Splink's ``SparkAPI`` blocks, trains and scores there with the spec's own rules; the scored pairs come back
as Parquet and the veto, clustering and publishing run in the store. The identity store stays the store, and
the model it keeps is the spec's own (:func:`duckdb_settings`): a later incremental run, the officer service
and ``linkage train`` use it on DuckDB as if DuckDB had trained it.

**The same comparisons on both engines.** A comparison level is DuckDB SQL, and many call DuckDB's list
lambdas and the spec's macros (:data:`linkage.prepare.MACROS`), which Spark does not have. A comparison whose
levels are all plain conditions (columns compared with ``=``/``<>``, ``IS NULL``, ``AND``/``OR``/``NOT``) runs
as Spark SQL: those mean the same on both. Any other comparison runs as one Python function on Spark's
workers (:func:`gamma`), which evaluates the levels in order with :mod:`linkage.evaluator`, the compiled
twin of DuckDB's semantics that ``tests/test_evaluator.py`` holds equal to DuckDB on the shipped specs.
Splink's levels then read that function's answer (``linkage_gamma_name(...) = 3``); Spark evaluates a
deterministic Python function once per row however often the levels repeat it.

PySpark is an extra (``pip install -e '.[spark]'``); Java 17 must be on the machine. Nothing here imports
PySpark until a Spark run starts.
"""

from __future__ import annotations

import decimal
import functools
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from linkage.block import blocking_rules
from linkage.errors import ConfigError, EngineError, LinkageError
from linkage.model import _suffixed
from linkage.spec import ModelSpec
from linkage.store import Store

if TYPE_CHECKING:
    from linkage.config import SparkSettings

__all__ = [
    "HASH_FUNCTION",
    "duckdb_hash_of",
    "duckdb_settings",
    "export_input",
    "gamma",
    "is_plain",
    "linker",
    "predict",
    "session",
    "spark_conditions",
    "train",
    "trained_settings",
]

log = logging.getLogger(__name__)

UDF_PREFIX: Final = "linkage_gamma_"
NO_LEVEL: Final = -1
"""What :func:`gamma` returns when no level holds: the pair falls to the comparison's else level."""


def _plain_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    return (exp.Column, exp.Identifier, exp.EQ, exp.NEQ, exp.Is, exp.Null, exp.And, exp.Or, exp.Not, exp.Paren)


def is_plain(sql: str) -> bool:
    """Whether a condition means the same in Spark SQL as in DuckDB: only columns compared and combined.

    >>> is_plain("l.dob IS NULL OR r.dob IS NULL")
    True
    >>> is_plain("l.name_key = r.name_key AND NOT l.nik <> r.nik")
    True
    >>> is_plain("jaro_winkler_similarity(l.name_key, r.name_key) >= 0.85")
    False
    """
    import sqlglot

    kinds = _plain_nodes()
    return all(isinstance(node, kinds) for node in sqlglot.parse_one(sql, read="duckdb").walk())


def _columns(sqls: Sequence[str]) -> list[str]:
    """The model-input columns a comparison's levels read (``l.x`` or ``r.x``), in first-seen order."""
    import sqlglot
    from sqlglot import exp

    seen: dict[str, None] = {}
    for sql in sqls:
        for node in sqlglot.parse_one(sql, read="duckdb").walk(bfs=False):
            if isinstance(node, exp.Column) and node.table in ("l", "r"):
                seen.setdefault(node.name, None)
    return list(seen)


@functools.cache
def _conditions(sqls: tuple[str, ...]) -> tuple[Any, ...]:
    from linkage.evaluator import pair_condition

    return tuple(pair_condition(sql) for sql in sqls)


def _value(x: Any) -> Any:
    """A value as the evaluator takes it: Spark's Arrow path may hand a list over as a NumPy array or a tuple."""
    kind = type(x)
    if x is None or kind is str or kind is list or kind is int or kind is float or kind is bool:
        return x
    if hasattr(x, "tolist"):  # a NumPy array (its items become Python's) or scalar
        return x.tolist()
    if kind is tuple:
        return list(x)
    return x  # a date


def gamma(sqls: tuple[str, ...], columns: tuple[str, ...], *values: Any) -> int:
    """The first level of ``sqls`` that holds for a pair, as DuckDB's ``CASE WHEN`` would take it, else -1.

    ``values`` are the pair's ``columns``, left side then right side.

    >>> gamma(("l.a IS NULL OR r.a IS NULL", "l.a = r.a", "levenshtein(l.a, r.a) = 1"), ("a",), "SITI", "SITE")
    2
    >>> gamma(("l.a IS NULL OR r.a IS NULL", "l.a = r.a"), ("a",), "SITI", "ANI")
    -1
    """
    n = len(columns)
    left = {c: _value(v) for c, v in zip(columns, values[:n], strict=True)}
    right = {c: _value(v) for c, v in zip(columns, values[n:], strict=True)}
    for index, holds in enumerate(_conditions(sqls)):
        if holds(left, right):
            return index
    return NO_LEVEL


Functions = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def spark_conditions(spec: ModelSpec) -> tuple[dict[str, list[str]], Functions]:
    """The level conditions Splink runs on Spark, for each comparison that has a level not plain
    (:func:`is_plain`), and the Python functions they call (name → the levels it evaluates, its columns).
    """
    functions: Functions = {}
    conditions: dict[str, list[str]] = {}
    for comparison in spec.comparison:
        sqls = tuple(level.sql or "" for level in comparison.levels if not level.else_)
        plain = [is_plain(sql) for sql in sqls]
        if all(plain):
            continue
        # Plain levels stay SQL (Splink finds a term-frequency column's exact level by its SQL); the function
        # answers for the others: the first of them that holds. CASE reaches level j only when every level
        # before it failed, so "the function says j" holds there exactly when level j does.
        name = UDF_PREFIX + re.sub(r"\W", "_", comparison.name)
        costly = tuple(sql for sql, p in zip(sqls, plain, strict=True) if not p)
        columns = tuple(_columns(costly))
        functions[name] = (costly, columns)
        call = f"{name}({', '.join([f'{c}_l' for c in columns] + [f'{c}_r' for c in columns])})"
        conditions[comparison.name] = [
            _suffixed(sql) if p else f"{call} = {costly.index(sql)}" for sql, p in zip(sqls, plain, strict=True)
        ]
    return conditions, functions


def _rewritten(
    trained: dict[str, Any], spec: ModelSpec, conditions: dict[str, list[str]], dialect: str
) -> dict[str, Any]:
    """Splink settings ``trained`` with the level conditions of the comparisons in ``conditions`` replaced."""
    settings = {**trained, "sql_dialect": dialect}
    settings["blocking_rules_to_generate_predictions"] = blocking_rules(spec, full=True)
    comparisons = []
    for comparison in settings["comparisons"]:
        replaced = iter(conditions.get(comparison["output_column_name"], ()))
        levels = [
            level if level.get("is_else_level") or "sql_condition" not in level or level["sql_condition"] == "ELSE"
            else {**level, "sql_condition": next(replaced, level["sql_condition"])}
            for level in comparison["comparison_levels"]
        ]
        comparisons.append({**comparison, "comparison_levels": levels})
    settings["comparisons"] = comparisons
    return settings


def duckdb_settings(trained: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """A model trained on Spark, as the store keeps models: each level's condition the spec's own again.

    Splink's saved settings hold the conditions it scored with; on Spark some call :func:`gamma`. The
    parameters (m, u, λ, term-frequency columns) are the trained ones; only the SQL goes back to the spec's.
    """
    own = {
        comparison.name: [_suffixed(level.sql or "") for level in comparison.levels if not level.else_]
        for comparison in spec.comparison
    }
    return _rewritten(trained, spec, own, "duckdb")


@contextmanager
def failures() -> Iterator[None]:
    """Spark's and Py4J's exceptions as an :class:`~linkage.errors.EngineError` of one line: the class and the
    first line of its message (Spark's own words, never a record's values), not a Java stack trace."""
    try:
        yield
    except LinkageError:
        raise
    except Exception as exc:
        if not type(exc).__module__.startswith(("pyspark", "py4j")):
            raise
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        raise EngineError(f"Spark failed ({type(exc).__name__}): {first[:300]}; the store is as it was") from None


@contextmanager
def session(settings: SparkSettings, scratch: Path) -> Iterator[Any]:
    """A Spark session on ``settings.master`` with Splink's similarity functions, its files in ``scratch``
    (a folder of this run's own, removed with everything in it when the session ends).

    Raises:
        ConfigError: PySpark is not installed (the ``spark`` extra).
        EngineError: Spark (Java) did not start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark engine needs PySpark: install the extra with `pip install -e '.[spark]'` (Java 17 on the "
            "machine), or run with --engine duckdb"
        ) from None
    from splink.backends.spark import similarity_jar_location

    scratch.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(settings.master)
        .appName("linkage")
        .config("spark.jars", similarity_jar_location())
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.ui.enabled", "false")
    )
    for key, value in settings.effective().items():
        builder = builder.config(key, value)
    started = time.perf_counter()
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or refusing to start: PySpark raises several kinds
        raise EngineError(f"Spark did not start on {settings.master!r}: {str(exc).splitlines()[0]}") from None
    try:
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
        log.info("Spark %s started on %s in %.1f s", spark.version, settings.master, time.perf_counter() - started)
        with failures():
            yield spark
    finally:
        spark.stop()  # the next run starts its own, with its own settings (getOrCreate would reuse this one)
        shutil.rmtree(scratch, ignore_errors=True)


HASH_FUNCTION: Final = "linkage_duckdb_hash"


def duckdb_hash_of(value: int | str | None) -> decimal.Decimal:
    """DuckDB's ``hash(value)`` of a BIGINT or a VARCHAR (an unsigned 64-bit number, as a decimal for Spark).

    >>> int(duckdb_hash_of("17_20241"))  # DuckDB: SELECT hash('17_20241')
    736685951907281719
    >>> int(duckdb_hash_of(17)) == int(__import__("duckdb").sql("SELECT hash(17::BIGINT)").fetchall()[0][0])
    True
    """
    from linkage.block import duckdb_hash

    kind = "VARCHAR" if isinstance(value, str) else "BIGINT"
    return decimal.Decimal(duckdb_hash((value, kind)))


@functools.cache
def _api_class() -> type:
    """Splink's ``SparkAPI``, except that it samples and chunks records as its DuckDB backend does.

    Splink picks records by a hash of their ids: the sample that u is estimated from, the chunks it counts
    that sample's pairs in (stopping early once every level has enough), and EM's sample above its maximum
    of pairs. Spark's ``hash`` is not DuckDB's, so the engines would count other pairs and train another u.
    Here the hash is DuckDB's own (:func:`duckdb_hash_of`, run on Spark's workers): the same records, the
    same u.
    """
    from splink.backends.spark import SparkAPI
    from splink.internals.dialects import SparkDialect

    class _Dialect(SparkDialect):
        def hash_function_expression(self, col_expression: str) -> str:
            return f"{HASH_FUNCTION}({col_expression})"

        def hash_bucket_expression(self, col_expression: str, modulus: int) -> str:
            return f"({HASH_FUNCTION}({col_expression}) % {int(modulus)})"  # DuckDB's dialect: hash % modulus

    class _SparkAPI(SparkAPI):
        sql_dialect = _Dialect()  # type: ignore[no-untyped-call]

    return _SparkAPI


def linker(spark: Any, spec: ModelSpec, parquet: Path, trained: dict[str, Any]) -> Any:
    """A Splink linker on Spark with the settings ``trained`` (Splink's, from the store's linker), over the model
    input written to ``parquet``, with :func:`gamma` and DuckDB's hash registered."""
    from pyspark.sql.functions import udf
    from pyspark.sql.types import ArrayType, DecimalType, IntegerType
    from splink import Linker

    conditions, functions = spark_conditions(spec)
    frame = spark.read.parquet(str(parquet))
    lists = {field.name for field in frame.schema.fields if isinstance(field.dataType, ArrayType)}
    for name, (sqls, columns) in functions.items():
        # Arrow hands values over faster, except lists: a pair of the name's token lists took 32 µs to arrive
        # through Arrow and 13 µs pickled (7 list columns, local Spark)
        arrow = not lists.intersection(columns)
        spark.udf.register(name, udf(functools.partial(gamma, sqls, columns), IntegerType(), useArrow=arrow))
    spark.udf.register(HASH_FUNCTION, udf(duckdb_hash_of, DecimalType(20, 0), useArrow=True))
    level = logging.getLogger("linkage").getEffectiveLevel()
    shown = logging.ERROR if level >= logging.WARNING else level
    api = _api_class()(spark_session=spark, num_partitions_on_repartition=_partitions(spark))
    settings = _rewritten(trained, spec, conditions, "spark")
    return Linker(api.register(frame, table_name="model_input"), settings, log_level=shown)


def _partitions(spark: Any) -> int:
    return max(2, int(spark.sparkContext.defaultParallelism) * 2)


def export_input(store: Store, path: Path) -> Path:
    """Write the store's TEMP table ``model_input`` to ``path`` (Parquet) for Spark to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store.con.table("model_input").write_parquet(str(path))
    return path


def train(store: Store, spec: ModelSpec, spark: Any, parquet: Path) -> Any:
    """Train the spec's model on Spark (:func:`linkage.train.train`'s steps on Splink's ``SparkAPI``)."""
    from linkage import train as training

    return training.train(store, spec, em_on=lambda trained: linker(spark, spec, parquet, trained))


def trained_settings(store: Store, spec: ModelSpec, settings: SparkSettings, scratch: Path) -> dict[str, Any]:
    """Train the spec's model on the store's ``model_input`` on Spark, in a session of its own (``linkage train
    --engine spark``); Splink's settings of the trained model as the store keeps them (:func:`duckdb_settings`)."""
    folder = scratch / f"train-{os.getpid()}-{time.time_ns()}"
    with session(settings, folder) as spark:
        parquet = export_input(store, folder / "model_input.parquet")
        return duckdb_settings(train(store, spec, spark, parquet).misc.save_model_to_json(), spec)


def predict(store: Store, linker: Any, spec: ModelSpec, floor: float, parquet: Path) -> tuple[int, str]:
    """Score the blocked pairs on Spark; bring them back as the store's TEMP table ``spark_predictions`` and
    make ``scored_pairs`` from it as a DuckDB run does (the veto, the floor)."""
    from linkage.score import _vetoed

    for column in spec.tf_columns():
        linker.table_management.compute_tf_table(column)
    predictions = linker.inference.predict(threshold_match_probability=floor)
    frame = predictions.as_spark_dataframe()
    frame.write.mode("overwrite").parquet(str(parquet))
    store.sql(
        "CREATE OR REPLACE TEMP TABLE spark_predictions AS SELECT * FROM read_parquet(?)",
        [str(parquet / "*.parquet")],
        table="spark_predictions",
    )
    return _vetoed(store, "spark_predictions", spec, floor), "spark_predictions"
