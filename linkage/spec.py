"""The model spec: a declaration of comparisons, blocking, training rules, the veto and the default threshold.

A spec is a TOML file (``configs/model.toml`` is the default, shipped inside the wheel as well). This module
reads it and checks its structure; :mod:`linkage.prepare` defines the model-input columns its SQL
fragments may read, :mod:`linkage.block` turns its blocking rules into keys, :mod:`linkage.model` turns its
comparisons into Splink's settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from linkage.config import read_toml
from linkage.errors import ConfigError, Problem

__all__ = ["DEFAULT_SPEC", "ComparisonSpec", "Level", "ModelSpec", "Veto", "load_spec"]


def _configs() -> Path:
    """``configs/``: inside the package when installed from a wheel, beside it in a checkout (setup.py)."""
    packaged = Path(__file__).resolve().parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "configs"


DEFAULT_SPEC: Final = _configs() / "model.toml"


class Level(BaseModel):
    """One level of a comparison: a condition on the pair, strongest levels first."""

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
    """A comparison: its name (the ``gamma_<name>`` column of scored pairs) and its levels."""

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

    threshold: float = Field(0.9, gt=0, lt=1, description="Match probability at which two records join one identity")
    review_floor: float = Field(0.5, gt=0, lt=1, description="Pairs scored at or above this are kept for review")
    seed: int = Field(20241, ge=0, description="Seed of the random pair sample that estimates u (repeatable training)")
    max_pairs_u: float = Field(2e6, ge=1, description="Random record pairs sampled to estimate u of the lower levels")
    exact_u: bool = True
    """count the u of each comparison's first level, when it is an equality, over all record pairs (see
    :func:`linkage.train.exact_u`) instead of taking it from the random sample"""
    max_pairs_em: float = Field(1e6, ge=1, description="Most blocked pairs EM sees per training rule (above: sampled)")
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

    def tf_columns(self) -> list[str]:
        """The columns whose term frequencies adjust a level's weight, in spec order."""
        return list(dict.fromkeys(level.tf for comp in self.comparison for level in comp.levels if level.tf))


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
