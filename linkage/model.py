"""The Fellegi-Sunter model: comparisons declared in ``configs/model.toml``, trained and scored with Splink.

Stages, in order (:data:`STEPS`): ``prepare`` builds the model input from the normalised records
(:data:`MODEL_INPUT`), ``train`` estimates λ from deterministic rules, u by random sampling and m by
EM (fixed seed), ``predict`` scores the blocked pairs. Splink is imported only here.

Correlated evidence: the NIK encodes a birth date and sex, so comparing the NIK-encoded date as well
as the stated one would count the same fact twice. The model compares one birth date (the stated
one, else the NIK's) and one sex (likewise), and the NIK comparison stands for the number itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkage import __version__
from linkage.errors import ConfigError, Problem

__all__ = ["DEFAULT_SPEC", "MODEL_INPUT", "STEPS", "ModelSpec", "load_spec", "predict", "prepare", "train"]

log = logging.getLogger(__name__)

STEPS: Final = ("prepare", "train", "predict")
DEFAULT_SPEC: Final = Path(__file__).resolve().parents[1] / "configs" / "model.toml"

# The model input, one row per record: the columns that the comparisons and blocking rules read.
MODEL_INPUT: Final = """
CREATE OR REPLACE TABLE model_input AS
SELECT
    record_id AS unique_id,
    full_name_canonical AS name_canonical,
    full_name_key AS name_key,
    array_to_string(list_sort(full_name_keys), ' ') AS name_set,
    full_name_keys AS name_keys,
    list_filter(full_name_keys, lambda k: length(k) > 1) AS name_full_keys,
    list_filter(full_name_keys, lambda k: length(k) = 1) AS name_initials,
    list_transform(full_name_keys, lambda k: k[1]) AS name_first_letters,
    full_name_keys[1] AS first_key,
    full_name_keys[-1] AS last_key,
    full_name_keys[1][1] AS initial,
    mother_name_canonical AS mother_canonical,
    mother_name_key AS mother_key,
    array_to_string(list_sort(mother_name_keys), ' ') AS mother_set,
    mother_name_keys AS mother_keys,
    list_filter(mother_name_keys, lambda k: length(k) > 1) AS mother_full_keys,
    list_filter(mother_name_keys, lambda k: length(k) = 1) AS mother_initials,
    list_transform(mother_name_keys, lambda k: k[1]) AS mother_first_letters,
    nik,
    nik_digits,
    CASE WHEN length(nik_digits) = 16 THEN nik_digits[1:12] END AS nik_prefix,
    coalesce(birth_date, nik_birth_date) AS dob,
    strftime(coalesce(birth_date, nik_birth_date), '%Y%m%d') AS dob_text,
    year(coalesce(birth_date, nik_birth_date)) AS birth_year,
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
    decision
FROM applications_normalised
"""


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    label: str
    sql: str | None = None
    tf: str | None = None
    null: bool = False
    else_: bool = Field(False, alias="else")


class ComparisonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    levels: list[Level]


class ModelSpec(BaseModel):
    """The declared model: comparisons, blocking, training rules and the default threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.9, gt=0, lt=1)
    review_floor: float = Field(0.5, gt=0, lt=1)
    seed: int = 20241
    max_pairs_u: float = 2e6
    max_pairs_em: float = 1e6
    blocking: list[str]
    deterministic: list[str]
    deterministic_recall: float = Field(0.7, gt=0, le=1)
    training: list[str]
    comparison: list[ComparisonSpec]

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def load_spec(path: Path | None = None) -> ModelSpec:
    """Read and validate a model spec (default ``configs/model.toml``).

    Raises:
        ConfigError: the file is missing or invalid, every problem listed.
    """
    path = path or DEFAULT_SPEC
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model spec not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(f"{'.'.join(map(str, e['loc']))}: {e['msg']}", file=str(path)) for e in exc.errors()]
        raise ConfigError(f"invalid model spec {path}", problems=problems) from None


def prepare(con: duckdb.DuckDBPyConnection) -> int:
    """Build ``model_input`` from ``applications_normalised``; return its row count."""
    con.execute(MODEL_INPUT)
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
            levels.append(created.configure(label_for_charts=level.label))
        comparisons.append(cl.CustomComparison(levels, output_column_name=comp.name, comparison_description=comp.name))
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[*spec.blocking],  # type: ignore[list-item]
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
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
    return Linker(db.register("model_input"), settings)


def train(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> Any:
    """Estimate λ, u (random sampling) and m (EM per training rule) without labels; return the linker."""
    linker = _linker(con, _settings(spec))
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(spec.deterministic), recall=spec.deterministic_recall
    )
    training.estimate_u_using_random_sampling(max_pairs=spec.max_pairs_u, seed=spec.seed)
    for rule in spec.training:
        training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=spec.max_pairs_em)
    return linker


def load(con: duckdb.DuckDBPyConnection, path: Path) -> Any:
    """A linker with a saved model; prediction never retrains."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return _linker(con, data["splink"])


def save(linker: Any, path: Path, *, spec: ModelSpec, data_fingerprint: str, config_hash: str) -> str:
    """Write the model with its provenance; return the model id."""
    import splink

    model = linker.misc.save_model_to_json()  # with no path it returns the settings dict
    model_id = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]
    artefact = {
        "model_id": model_id,
        "created_at": datetime.now(UTC).isoformat(),
        "linkage_version": __version__,
        "splink_version": splink.__version__,
        "spec_fingerprint": spec.fingerprint(),
        "config_hash": config_hash,
        "data_fingerprint": data_fingerprint,
        "threshold": spec.threshold,
        "splink": model,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(artefact, indent=1), encoding="utf-8")
    return model_id


def predict(linker: Any, floor: float) -> Any:
    """Score the blocked pairs; keep those at or above ``floor``. Returns a Splink dataframe."""
    for column in ("name_canonical", "mother_canonical", "birth_place", "phone"):
        linker.table_management.compute_tf_table(column)
    return linker.inference.predict(threshold_match_probability=floor)
