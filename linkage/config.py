"""Settings and column mappings, declared once, typed, with a default and a line of help each.

A config is a TOML file (``configs/default.toml`` documents every key). Its sections:

``[dataset]``
    how to read this kind of data (identity-number scheme, phone region);
``[columns]``
    maps the canonical roles of :mod:`linkage.schema` onto the input's column names. A role may
    take one column (``birth_date = "dob"``) or several joined by a space
    (``full_name = ["given_name", "surname"]``). Roles left out map to a column of the same name
    when the input has one, and are missing otherwise;
``[store]``, ``[ingest]``, ``[link]``
    where the DuckDB store lives, how ingest runs and how a link run clusters.

The run parameters that decide links (threshold, review floor, seed, pair caps) belong to a model and are
declared on :class:`linkage.spec.ModelSpec` (``configs/model.toml``); :func:`settings_table` lists them
beside the config's keys as ``spec.<name>``.

Every invalid key is reported at once, each with "did you mean …?" when a valid key is close.

>>> cfg = parse_config({"columns": {"full_name": ["given_name", "surname"]}})
>>> cfg.columns["full_name"]
['given_name', 'surname']
>>> parse_config({"colums": {}})
Traceback (most recent call last):
...
linkage.errors.ConfigError: invalid config
  - colums: unknown key (did you mean 'columns'?)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from linkage.dates import EARLIEST
from linkage.errors import ConfigError, Problem, did_you_mean
from linkage.schema import ROLES

__all__ = [
    "DEFAULT_MAX_GUARD_SIZE",
    "DEFAULT_SPARK_SETTINGS",
    "ENGINES",
    "SPEC_SETTINGS",
    "Config",
    "DatasetSettings",
    "IngestSettings",
    "LinkSettings",
    "SparkSettings",
    "StoreSettings",
    "load_config",
    "parse_config",
    "read_toml",
    "settings_table",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSettings(_Section):
    """How to read this kind of data."""

    name: str = Field("applications", description="Name of the dataset, shown in reports and run manifests")
    id_scheme: Literal["nik", "generic"] = Field(
        "nik",
        description="'nik': the id column holds Indonesian NIKs, parsed and validated; "
        "'generic': any identity number, kept as its digits and letters",
    )
    name_rules: Literal["indonesian", "latin"] = Field(
        "indonesian",
        description="'indonesian': titles, bin/binti, old spellings and the Indonesian phonetic key; "
        "'latin': plain upper-case tokens, for other countries' data such as FEBRL",
    )
    phone_region: str = Field("ID", description="Region assumed for phone numbers written without a country code")
    earliest_date: dt.date = Field(
        EARLIEST,
        description="Earliest birth or application date accepted (an ISO date); an earlier one is the field issue "
        "date_out_of_range",
    )

    @field_validator("earliest_date")
    @classmethod
    def _not_in_the_future(cls, value: dt.date) -> dt.date:
        # A lower bound after today would make every date out of range: surely a typo.
        if value > dt.date.today():
            raise ValueError(f"dataset.earliest_date: {value.isoformat()} is in the future")
        return value


DEFAULT_MEMORY_LIMIT: Final = "2GB"


class StoreSettings(_Section):
    """Where the DuckDB store lives."""

    path: Path = Field(Path("linkage.duckdb"), description="DuckDB file of the store (created when missing)")
    memory_limit: str = Field(
        DEFAULT_MEMORY_LIMIT,
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use before it spills to disk (blocking joins at 1M records need ~2GB)",
    )
    temp_directory: Path | None = Field(
        None,
        description="Folder DuckDB spills to when a run needs more than memory_limit (default: <store>.tmp "
        "beside the store); put it on a disk with room (a 10M-record run with configs/national.toml spilled 23 GB)",
    )

    def options(self) -> dict[str, Any]:
        """The keyword arguments :class:`~linkage.store.Store` takes from these settings."""
        return {"memory_limit": self.memory_limit, "temp_directory": self.temp_directory}


class IngestSettings(_Section):
    """How ingest runs."""

    workers: int = Field(2, ge=1, le=64, description="Processes that normalise records in parallel")
    chunk_rows: int = Field(
        50_000, ge=1_000, description="Rows normalised per task; bounds a worker's memory and paces progress"
    )
    max_quarantine_share: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Fail the ingest when more than this share of rows is quarantined (1.0: never fail)",
    )
    max_field_chars: int = Field(
        131_072,
        ge=1,
        description="Longest value a cell may hold, in characters (CSV, Parquet, .xlsx); a row with a longer one "
        "is quarantined as field_too_long",
    )
    max_record_id_chars: int = Field(
        256, ge=1, description="Longest record_id, in characters; a row with a longer one is quarantined"
    )
    sheet: str | None = Field(
        None,
        min_length=1,
        description="The one sheet of each .xlsx workbook to read, as `ingest --sheet` (left out: every sheet that "
        "holds anything, all with one header)",
    )


DEFAULT_MAX_GUARD_SIZE: Final = 2000


ENGINES: Final = ("duckdb", "spark")
DEFAULT_SPARK_SETTINGS: Final[dict[str, str]] = {
    "spark.driver.memory": "8g",
    "spark.sql.shuffle.partitions": "16",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


class SparkSettings(_Section):
    """The Spark engine (``--engine spark``): where Spark runs and how (``pip install -e '.[spark]'``)."""

    master: str = Field(
        "local[*]",
        min_length=1,
        description="Spark master URL: local[*] (every core of this machine), local[N], spark://host:7077, yarn...",
    )
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="Spark settings (spark.executor.memory = \"16g\", ...), over linkage's defaults: "
        + ", ".join(f"{k} = {v}" for k, v in DEFAULT_SPARK_SETTINGS.items()),
    )
    scratch: Path | None = Field(
        None,
        description="Folder for the Parquet handed to and from Spark and its checkpoints (default: <store>.spark "
        "beside the store); on a cluster, a path every node reads",
    )

    @field_validator("settings")
    @classmethod
    def _spark_keys(cls, settings: dict[str, str]) -> dict[str, str]:
        wrong = [key for key in settings if not re.fullmatch(r"spark\.[A-Za-z0-9_.\-]+", key)]
        if wrong:
            raise ValueError(f"spark.settings: not a Spark setting name: {', '.join(wrong)} (spark.<name>)")
        return settings

    def effective(self) -> dict[str, str]:
        """linkage's defaults, with this config's own settings over them."""
        return {**DEFAULT_SPARK_SETTINGS, **self.settings}


class LinkSettings(_Section):
    """How a link run (``linkage link``, ``linkage dedupe``, ``linkage train``) runs and clusters."""

    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="Where a full run trains and scores: duckdb (the store's own, embedded) or spark ([spark] "
        "section); incremental runs always score in the store",
    )

    max_guard_size: int = Field(
        DEFAULT_MAX_GUARD_SIZE,
        ge=2,
        description="Largest cluster, in records, that the guard searches for contradicting records; a larger one "
        "is left whole, logged and counted as unguarded",
    )


class Config(_Section):
    """A whole config file. Unknown keys are errors."""

    dataset: DatasetSettings = Field(default_factory=lambda: DatasetSettings(), description="How to read this data")
    columns: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Canonical role = input column, or a list of columns joined by a space"
    )
    store: StoreSettings = Field(default_factory=lambda: StoreSettings(), description="The DuckDB store")
    ingest: IngestSettings = Field(default_factory=lambda: IngestSettings(), description="Ingest")
    link: LinkSettings = Field(default_factory=lambda: LinkSettings(), description="Link runs")
    spark: SparkSettings = Field(default_factory=lambda: SparkSettings(), description="The Spark engine")

    def with_engine(self, engine: str | None) -> Config:
        """These settings with the run engine ``engine`` (``--engine``), or as they are when None."""
        if engine is None:
            return self
        return self.model_copy(update={"link": self.link.model_copy(update={"engine": engine})})

    @field_validator("columns")
    @classmethod
    def _known_roles(cls, columns: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        problems = [
            f"columns.{role}: unknown role{did_you_mean(role, ROLES)}; roles are {', '.join(ROLES)}"
            for role in columns
            if role not in ROLES
        ]
        problems += [f"columns.{role}: empty column list" for role, src in columns.items() if src in ("", [])]
        if problems:
            raise ValueError("\n".join(problems))
        return columns

    def source_columns(self, role: str) -> list[str]:
        """The input columns that make up ``role`` (its own name when the mapping leaves it out)."""
        src = self.columns.get(role, role)
        return [src] if isinstance(src, str) else list(src)

    def fingerprint(self) -> str:
        """A short hash of the settings that change results (for run manifests and model files)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]



def parse_config(data: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a config given as a dict, reporting every invalid key at once.

    Raises:
        ConfigError: with one :class:`~linkage.errors.Problem` per invalid key.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = f" {source}" if source else ""
        raise ConfigError(f"invalid config{where}", problems=_problems(exc, source)) from None


def _problems(exc: ValidationError, source: Path | None = None) -> list[Problem]:
    """Turn pydantic's errors into located problems with a "did you mean" for unknown keys."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            key = str(err["loc"][-1])
            msg = f"unknown key{did_you_mean(key, parent.model_fields) if parent else ''}"
        elif err["type"] == "value_error":
            # one validator may find several problems: report each on its own line
            for part in str(err["msg"]).removeprefix("Value error, ").split("\n"):
                out.append(Problem(part, file=str(source) if source else None))
            continue
        else:
            msg = str(err["msg"])
        out.append(Problem(f"{loc}: {msg}" if loc else msg, file=str(source) if source else None))
    return out


def _model_at(path: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def load_config(path: Path | None = None) -> Config:
    """Read and validate a config file; ``None`` gives the defaults.

    Args:
        path: a TOML file such as ``configs/febrl.toml``.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: the file is missing, is not TOML, or has invalid keys (all of them listed).
    """
    if path is None:
        return Config()
    return parse_config(read_toml(path, "config file"), path)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a :class:`ConfigError` naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


SPEC_SETTINGS: Final = ("threshold", "review_floor", "seed", "max_pairs_u", "max_pairs_em")
"""The model spec's run parameters that decide links, listed with the settings as ``spec.<name>``."""


def settings_table() -> Iterator[tuple[str, str, str, str]]:
    """Every setting as (key, type, default, help), in declaration order; drives docs and ``linkage settings``.

    The config's sections come first, then the run parameters of the model spec (:data:`SPEC_SETTINGS`), each
    with the value of the default spec (``configs/model.toml``) as its default: that is what a run without
    ``--spec`` uses.

    >>> next(settings_table())[:3]
    ('dataset.name', 'str', "'applications'")
    >>> [row[:3] for row in settings_table() if row[0] == "spec.threshold"]
    [('spec.threshold', 'float', '0.9')]
    """
    # spec.py reads its TOML through this module: imported here, not at the top, to keep the two apart
    from linkage.spec import ModelSpec, load_spec

    sections: list[tuple[str, type[BaseModel]]] = [
        ("dataset", DatasetSettings),
        ("store", StoreSettings),
        ("ingest", IngestSettings),
        ("link", LinkSettings),
        ("spark", SparkSettings),
    ]
    for section, model in sections:
        for name, field in model.model_fields.items():
            yield f"{section}.{name}", _type_name(field.annotation), _shown(field.default), field.description or ""
    yield "columns.<role>", "str or list[str]", "the role's own name", Config.model_fields["columns"].description or ""
    spec = load_spec(None)
    for name in SPEC_SETTINGS:
        field = ModelSpec.model_fields[name]
        yield f"spec.{name}", _type_name(field.annotation), _shown(getattr(spec, name)), field.description or ""


def _type_name(annotation: Any) -> str:
    """A setting's type as the docs show it: choices quoted, unions with "or" (a "|" would split a table cell)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(map(repr, typing.get_args(annotation)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _shown(default: Any) -> str:
    """A default as the docs show it: paths and dates as the strings a TOML file would hold."""
    if isinstance(default, Path | dt.date):
        return repr(str(default))
    return repr(default)

