"""The model spec: a declaration of comparisons, blocking, training rules, the veto and the default threshold.

A spec is a TOML file (``configs/model.toml`` is the default, shipped inside the wheel as well). This module
reads it and checks it: its structure (pydantic), and each SQL fragment (:func:`spec_problems`: one
condition over the model-input columns, only allowed functions, bound by DuckDB against an empty model
input; :mod:`linkage.fragments`) before any run starts. :mod:`linkage.prepare` defines the model-input
columns its SQL fragments may read (:data:`linkage.prepare.INPUT_COLUMNS`), :mod:`linkage.block` turns its
blocking rules into keys, :mod:`linkage.model` turns its comparisons into Splink's settings. ``docs/spec.md``
is generated from this module (:func:`reference_markdown`).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from linkage.errors import ConfigError, Problem
from linkage.fragments import FUNCTIONS, spec_problems

__all__ = ["DEFAULT_SPEC", "ComparisonSpec", "Level", "ModelSpec", "Veto", "load_spec", "reference_markdown"]


def _configs() -> Path:
    """``configs/``: inside the package when installed from a wheel, beside it in a checkout (setup.py)."""
    packaged = Path(__file__).resolve().parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "configs"


DEFAULT_SPEC: Final = _configs() / "model.toml"


class Level(BaseModel):
    """One level of a comparison: a condition on the pair, strongest levels first."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    label: str = Field(description="the level's name in charts, pairs.parquet and tests")
    sql: str | None = Field(
        None, description="the condition on the pair (`l.`/`r.` model-input columns); none on the else level"
    )
    tf: str | None = Field(
        None, description="a model-input column whose value frequencies adjust the weight (common values count less)"
    )
    null: bool = Field(False, description="the null level: missing values, neutral evidence (the first level)")
    else_: bool = Field(False, alias="else", description="the else level: every pair no level above took (the last)")
    m: float | None = Field(None, gt=0, le=1, description="a fixed m (with `u` and `why`), instead of EM's estimate")
    u: float | None = Field(None, gt=0, le=1, description="a fixed u (with `m` and `why`), instead of the sampled one")
    why: str | None = Field(
        None, description="the reason for the level or for its fixed m/u: domain knowledge where EM cannot learn"
    )


class ComparisonSpec(BaseModel):
    """A comparison: its name (the ``gamma_<name>`` column of scored pairs) and its levels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the comparison's name: the `gamma_<name>` column of scored pairs")
    levels: list[Level] = Field(description="its levels, strongest first: the null level, ..., the else level")


class Veto(BaseModel):
    """Pairs whose identity evidence disagrees cannot be linked on household evidence alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str = Field(description="the condition on a scored pair's levels (`gamma_<comparison>` columns)")
    max_weight: float = Field(
        0.0, description="a vetoed pair's match weight is at most this (0 bits: probability 0.5): never linked"
    )
    why: str = Field(description="why such pairs must not link")


class ModelSpec(BaseModel):
    """The declared model: comparisons, blocking, training rules and the default threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.9, gt=0, lt=1, description="Match probability at which two records join one identity")
    review_floor: float = Field(0.5, gt=0, lt=1, description="Pairs scored at or above this are kept for review")
    seed: int = Field(20241, ge=0, description="Seed of the random pair sample that estimates u (repeatable training)")
    max_pairs_u: float = Field(2e6, ge=1, description="Random record pairs sampled to estimate u of the lower levels")
    exact_u: bool = Field(
        True,
        description="count the u of each comparison's first level, when it is an equality, over all record pairs "
        "(from value frequencies) instead of taking it from the random sample",
    )
    max_pairs_em: float = Field(1e6, ge=1, description="Most blocked pairs EM sees per training rule (above: sampled)")
    blocking: list[str] = Field(
        description="pairs are scored when one of these conditions holds (`l.`/`r.`); each pair once"
    )
    max_candidates: int | None = Field(
        None,
        ge=1,
        description="a full run scores, of each record's pairs that the keyed blocking rules make, only its "
        "`max_candidates` best by the blocking keys they share (a rarer key weighs more); a pair is kept when it is "
        "among the best of either record, so comparisons stay under `max_candidates` × records. Incremental runs and "
        "officers' queries score every candidate of a new record. Unset: every pair",
    )
    deterministic: list[str] = Field(
        description="conditions that almost surely mean one person: they estimate λ, the share of matching pairs"
    )
    deterministic_recall: float = Field(
        0.7, gt=0, le=1, description="the share of all matching pairs that the deterministic rules are assumed to find"
    )
    training: list[str] = Field(
        description="EM runs once per rule on the pairs it blocks; a rule's own comparisons are not estimated from it"
    )
    veto: Veto | None = Field(None, description="pairs that must not link however high their weight")
    comparison: list[ComparisonSpec] = Field(description="the comparisons (`[[comparison]]` tables), in order")

    @model_validator(mode="after")
    def _veto_below_threshold(self) -> ModelSpec:
        if self.veto is not None and 1 / (1 + 2 ** -self.veto.max_weight) >= self.threshold:
            raise ValueError(
                f"veto.max_weight {self.veto.max_weight} gives a match probability at or above the threshold "
                f"{self.threshold}: vetoed pairs would still link"
            )
        return self

    def fingerprint(self) -> str:
        # unset keys added later stay out, so that a spec's fingerprint does not change with linkage's version
        unset = {"max_candidates"} if self.max_candidates is None else None
        return hashlib.sha256(self.model_dump_json(exclude=unset).encode()).hexdigest()[:16]

    def veto_cap(self) -> float:
        """The match weight a vetoed pair is held to (0 without a veto: nothing is held)."""
        return float(self.veto.max_weight) if self.veto else 0.0

    def tf_columns(self) -> list[str]:
        """The columns whose term frequencies adjust a level's weight, in spec order."""
        return list(dict.fromkeys(level.tf for comp in self.comparison for level in comp.levels if level.tf))


def load_spec(path: Path | None = None) -> ModelSpec:
    """Read and validate a model spec (default ``configs/model.toml``), its SQL fragments checked.

    Raises:
        ConfigError: the file is missing, not TOML, not a model spec, or invalid; every problem listed.
    """
    path = path or DEFAULT_SPEC
    data = _read_spec(path)
    if "extends" in data:  # a spec that changes a few keys of another: its keys replace the other's
        base = data.pop("extends")
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{path}: extends must name another model spec file (a path beside it)")
        base_path = path.parent / base
        parent = _read_spec(base_path)
        if "extends" in parent:
            raise ConfigError(f"{path}: extends {base_path}, which extends another spec: one level only")
        data = {**parent, **data}
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(f"{_where(e['loc'], data)}: {e['msg']}", file=str(path)) for e in exc.errors()]
        raise ConfigError(f"invalid model spec {path} ({HINT})", problems=problems) from None
    problems = [Problem(p.message, file=str(path), value=p.value) for p in spec_problems(spec)]
    if problems:
        raise ConfigError(
            f"invalid model spec {path}: {len(problems)} SQL fragment problem(s); a fragment is one condition over "
            "the model-input columns (docs/spec.md)",
            problems=problems,
        )
    return spec


HINT: Final = "a model spec is a TOML file like configs/model.toml, described in docs/spec.md"


def _read_spec(path: Path) -> dict[str, Any]:
    """The keys of a spec file, read and recognised as a spec (not a model, not settings).

    Raises:
        ConfigError: the file is missing, not TOML, or not a model spec.
    """
    hint = HINT
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"model spec not found: {path} (pass --spec with {hint})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"model spec {path} cannot be read ({type(exc).__name__}): {hint}") from None
    except tomllib.TOMLDecodeError as exc:
        model = " (it looks like JSON: a model from `linkage train` is passed as --model)" if text.lstrip()[
            :1] in ("{", "[") else ""  # fmt: skip
        raise ConfigError(f"model spec {path} is not TOML ({exc}){model}: {hint}") from None
    if not (_REQUIRED | {"extends"}) & set(data):
        found = ", ".join(repr(k) for k in list(data)[:5]) or "nothing"
        other = " (it looks like a settings file: pass it as --config)" if {"dataset", "store", "ingest",
                                                                          "columns"} & set(data) else ""  # fmt: skip
        raise ConfigError(f"{path} is not a model spec: it has {found}, none of {sorted(_REQUIRED)}{other}; {hint}")
    return data


_REQUIRED: Final = frozenset({"blocking", "deterministic", "training", "comparison"})


def _where(loc: Sequence[int | str], data: Any) -> str:
    """A pydantic error location as a spec key: ``comparison[name].levels[2].sql``."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            out += f"[{name or part}]"
        else:
            out += f".{part}" if out else str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out or "(top level)"


# ---------------------------------------------------------------------------------------------------------
# Checking the SQL fragments. A fragment is pasted into SQL that DuckDB and Splink run, so it is parsed
# (sqlglot, DuckDB's dialect) and accepted only as one condition: made of the expression kinds below, calling
# only FUNCTIONS, reading only model-input columns on the sides l. and r. (the veto: gamma_<comparison>).
# DuckDB then binds it against an empty model input (nothing runs), which finds what a parse cannot: a type
# that does not fit (a date compared with a list) or a result that is not true/false (``1 + 2``).

_SYNTAX: Final = """\
## Fragments

Every `sql` of a level, every rule of `blocking`, `deterministic` and `training`, and `veto.sql` is a SQL
fragment in DuckDB's dialect, checked when the spec is read (before any run starts; every problem is
reported at once, with its key, such as `comparison[name].levels[3].sql` or `blocking[5]`):

- It is **one condition**: a single expression that is true or false (`l.dob = r.dob`,
  `jaro_winkler_similarity(l.name_key, r.name_key) >= 0.85`). Not a statement, not two (`;`), no subquery
  (`SELECT`), no `COPY`, `ATTACH` or `PRAGMA`, and not a value such as `1 + 2` or `l.name_key`.
- A level, blocking, deterministic or training rule reads the pair's two records as `l.<column>` and
  `r.<column>`, where `<column>` is one of the model-input columns below (unquoted, lower case). A column
  without `l.` or `r.` is refused, except the variables of a lambda (`list_transform(l.name_keys, lambda x: ...)`).
- `veto.sql` reads a scored pair's levels instead: `gamma_<comparison name>` (the level's index: the
  else level is 0, the null level -1, the first level after the null level the highest), without `l.`/`r.`.
- It calls only the functions and macros listed below. Operators (`=`, `<>`, `<`, `AND`, `OR`, `NOT`,
  `IN (...)`, `IS NULL`, `BETWEEN`, `LIKE`, `||`, `+ - * / // %`), `CASE WHEN ... THEN ... ELSE ... END`,
  casts (`x::DATE`), list literals and indexing (`[1, 2]`, `l.name_keys[1]`) and lambdas may be used.
- DuckDB must be able to bind it against the model input (a date compared with a list is refused).

A comparison lists its levels strongest first: the first is its **null level** (`null = true`: a value is
missing, neutral evidence), the last its **else level** (`else = true`, no `sql`: every other pair). A pair
takes the first level whose condition holds. `tf = "<column>"` adjusts the level's weight by how common the
pair's value of that model-input column is (common names count for less). `m` and `u` fix the level's
probabilities instead of estimating them, when independence fails and EM cannot learn them; `why` gives the
reason (and may explain any level).

Blocking rules that are only equalities of one column on both sides (`l.x = r.x AND l.y = r.y`) become
blocking keys (one join finds all of them); other rules run as written. An incremental link needs every
rule to be equalities of columns (`l.x = r.y`). Training rules should each block a few hundred pairs or
more on the data: a rule that blocks none is skipped with a warning, and a spec none of whose training
rules finds pairs is refused, naming the input roles its rules need.
"""


def reference_markdown() -> str:
    """The model spec's reference page (``docs/spec.md``): keys, fragment syntax, columns, functions."""
    from linkage.prepare import INPUT_COLUMNS, MACROS

    lines = [
        "# The model spec",
        "",
        "<!-- Generated by linkage.spec.reference_markdown(); tests/test_spec.py checks it. Do not edit. -->",
        "",
        "A model spec is a TOML file that declares the Fellegi-Sunter model of `linkage dedupe`, `linkage train`",
        "and `linkage link` (`--spec FILE`): its comparisons, blocking rules, training rules, veto and threshold.",
        "`configs/model.toml` is the default (Indonesian passport applications, with NIK); "
        "`configs/febrl_model.toml`",
        "is for FEBRL, and `configs/civil_model.toml` for civil records without a national id.",
        "`configs/national.toml` is the default with blocking for tens of millions of records (docs/scale.md): it",
        "starts with `extends = \"model.toml\"`, and a spec that extends another (a path beside it; one level)",
        "takes every key of that one except those it sets itself.",
        "",
        "## Keys",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for prefix, model in (("", ModelSpec), ("veto.", Veto), ("comparison.", ComparisonSpec),
                          ("comparison.levels.", Level)):  # fmt: skip
        for name, field in model.model_fields.items():
            key = prefix + (field.alias or name)
            default = "required" if field.is_required() else f"`{field.default!r}`"
            meaning = _cell(field.description or "")
            lines.append(f"| `{key}` | {_cell(_type(field.annotation))} | {default} | {meaning} |")
    lines += ["", _SYNTAX, "## Model-input columns", ""]
    lines += [
        "Each record's columns that fragments read (`linkage.prepare.INPUT_COLUMNS`); a column is null when the",
        "input has none of its roles (`columns.<role>` in the settings).",
        "",
        "| column | meaning | normalisation | example | from roles |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{c.name}` | {_cell(c.meaning)} | {_cell(c.normalisation)} | `{_cell(c.example)}` | {', '.join(c.roles)} |"
        for c in INPUT_COLUMNS
    ]
    lines += ["", "## Functions", "", "A fragment may call these functions (`linkage.fragments.FUNCTIONS`), no other:"]
    lines += [""]
    lines += [", ".join(f"`{f}`" for f in sorted(FUNCTIONS)), "", "### Macros", ""]
    lines += ["SQL macros of `linkage.prepare.MACROS`, for the name levels:", "", "```sql", MACROS.strip(), "```", ""]
    return "\n".join(lines)


def _type(annotation: Any) -> str:
    """A field's type as the reference shows it."""
    return str(getattr(annotation, "__name__", None) if isinstance(annotation, type) else annotation).replace(
        "linkage.spec.", ""
    )


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a ``|`` would split it)."""
    return text.replace("|", "\\|").replace("\n", " ")
