"""The Fellegi-Sunter model as Splink runs it: settings from the spec, a linker on ``model_input``, artefacts.

A model is an artefact (:func:`artefact`): Splink's trained parameters with their provenance (data
fingerprint, config hash, spec fingerprint, versions) and a ``model_id`` that hashes the parameters. It is
trained by :mod:`linkage.train`, stored by a link run (the ``models`` table) or written by ``linkage train``,
and scoring (:mod:`linkage.score`) never retrains. Splink is imported only in the stages that run it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from linkage import __version__
from linkage.block import blocking_rules
from linkage.errors import InputError, NotFoundError
from linkage.spec import ModelSpec
from linkage.store import Store, quote

__all__ = [
    "ComparisonParameters", "LevelParameters", "artefact", "export_stored", "for_store", "from_artefact",
    "linker_for", "model_id", "parameters", "read_artefact", "save", "settings_for", "stored_artefact",
]

log = logging.getLogger(__name__)


def settings_for(spec: ModelSpec, conditions: Mapping[str, Sequence[str]] | None = None) -> Any:
    """Splink's settings for the comparisons and blocking rules of ``spec`` (not yet trained).

    ``conditions``: for a comparison named there, its levels' conditions (all but the else level, in order)
    as Splink should run them, in place of the spec's (the Spark engine's, :mod:`linkage.spark`).
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    comparisons: list[Any] = []
    for comp in spec.comparison:
        levels: list[Any] = []
        replaced = iter((conditions or {}).get(comp.name, ()))
        for level in comp.levels:
            created: Any
            if level.else_:
                created = cll.ElseLevel()
            else:
                sql = next(replaced, None) or _suffixed(level.sql or "")
                created = cll.CustomLevel(sql, label_for_charts=level.label)
                if level.null:
                    created = created.configure(is_null_level=True)
                if level.tf:
                    created = created.configure(tf_adjustment_column=level.tf, tf_adjustment_weight=1.0)
                if level.m is not None and level.u is not None:
                    created = created.configure(
                        m_probability=level.m, u_probability=level.u, fix_m_probability=True, fix_u_probability=True
                    )
            levels.append(created.configure(label_for_charts=level.label))
        comparisons.append(cl.CustomComparison(levels, output_column_name=comp.name, comparison_description=comp.name))
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking_rules(spec, full=True),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,  # Splink keeps the gamma (level) columns only with these
        additional_columns_to_retain=[],
    )


_SIDE: Final = re.compile(r"\b([lr])\.(\w+)")


def _suffixed(sql: str) -> str:
    """``l.name_key`` (as in blocking rules) → ``name_key_l`` (as Splink's comparison levels want).

    >>> _suffixed("l.dob = r.dob")
    'dob_l = dob_r'
    """
    return _SIDE.sub(r"\2_\1", sql)


def linker_for(store: Store, settings: Any) -> Any:
    """A Splink linker with ``settings`` on the store's TEMP table ``model_input``."""
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(store.con)  # Splink runs its own SQL on the connection (its stage, its tables)
    # Splink logs progress at INFO and training caveats (levels never observed, default max_pairs) at
    # WARNING; linkage's -v shows them, a plain run shows only errors.
    level = logging.getLogger("linkage").getEffectiveLevel()
    shown = logging.ERROR if level >= logging.WARNING else level
    linker = Linker(db.register("model_input"), settings, log_level=shown)
    linker._settings_obj.__class__ = _settings_without_blocking_columns()
    return linker


@functools.cache
def _settings_without_blocking_columns() -> type:
    """Splink's settings class, except that scored pairs do not carry the blocking rules' own columns.

    Splink copies every column a blocking rule reads into each blocked pair, to show it beside the
    comparison levels. Here that is the list of blocking keys, on both sides of every pair: at 1M
    records (3M pairs) predict took 41.0 s with them and 33.3 s without. The comparisons' own columns
    and levels are kept (waterfall charts and the levels in pairs.parquet need them).
    """
    from splink.internals.settings import Settings

    class _Settings(Settings):
        @property
        def _additional_column_names_to_retain(self) -> list[str]:
            return list(self._additional_col_names_to_retain)

    return _Settings


def read_artefact(path: Path) -> dict[str, Any]:
    """A model artefact from a file written by ``linkage train`` (or ``dedupe``'s ``model.json``).

    Raises:
        InputError: the file is missing, not JSON, or not a model.
    """
    try:
        made = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"model file not found: {path} (make one with `linkage train`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a model file (not JSON: {exc}); make one with `linkage train`") from None
    splink = made.get("splink") if isinstance(made, dict) else None
    if not isinstance(splink, dict) or "comparisons" not in splink or "model_id" not in made:
        raise InputError(f"{path}: not a model file written by `linkage train` (no model_id and Splink settings)")
    return dict(made)


def from_artefact(
    store: Store, artefact: dict[str, Any], spec: ModelSpec, *, prior: float | None = None, full: bool = False
) -> Any:
    """A linker with the parameters of a model artefact (:func:`artefact`), on the TEMP table ``model_input``.

    ``prior``: the probability that two random records match, in place of the trained one (see
    :mod:`linkage.engine`: λ follows the number of records a model is applied to). ``full``: the linker
    predicts over a full run's model input, whose keyed rule may join on its kept pairs
    (:func:`linkage.block.blocking_rules`); otherwise on the blocking keys.
    """
    settings = dict(artefact["splink"])
    settings["blocking_rules_to_generate_predictions"] = blocking_rules(spec, full=full)
    if prior is not None:
        settings["probability_two_random_records_match"] = prior
    return linker_for(store, settings)


def artefact(linker: Any, *, spec: ModelSpec, data_fingerprint: str, config_hash: str) -> dict[str, Any]:
    """The trained model with its provenance, as written by :func:`save`; ``model_id`` hashes the parameters.

    ``linker``: a trained linker, or its settings as Splink saves them (a dict).
    """
    import splink

    # with no path Splink's save returns the settings dict
    model = dict(linker) if isinstance(linker, dict) else linker.misc.save_model_to_json()
    return {
        "model_id": model_id(model),
        "created_at": datetime.now(UTC).isoformat(),
        "linkage_version": __version__,
        "splink_version": splink.__version__,
        "spec_fingerprint": spec.fingerprint(),
        "config_hash": config_hash,
        "data_fingerprint": data_fingerprint,
        "threshold": spec.threshold,
        "splink": model,
    }


def model_id(settings: dict[str, Any]) -> str:
    """The id of a model: a hash of its Splink settings (its parameters), the same for the same parameters."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def save(made: dict[str, Any], path: Path) -> str:
    """Write a model artefact (:func:`artefact`) as JSON; return its model id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(made, indent=1), encoding="utf-8")
    return str(made["model_id"])


def stored_artefact(store: Store) -> dict[str, Any] | None:
    """The store's current model: the newest in ``models`` (``None`` before the first link)."""
    found = store.rows("SELECT artefact FROM models ORDER BY created_at DESC, model_id LIMIT 1", table="models")
    return dict(json.loads(found[0][0])) if found else None


def export_stored(store: Store, path: Path) -> str:
    """Write the store's current model (:func:`stored_artefact`) to ``path`` as ``linkage train`` writes one.

    Returns:
        Its model id.

    Raises:
        NotFoundError: the store holds no model yet (it was never linked).
    """
    made = stored_artefact(store)
    if made is None:
        raise NotFoundError(f"{store.path} holds no model yet: link it first (`linkage link --db {store.path}`)")
    return save(made, path)


@dataclass(frozen=True)
class LevelParameters:
    """One level of a trained comparison as Splink scores it: m, u and the match weight log2(m/u)."""

    label: str
    gamma: int
    """the level's value in a pair's levels (``gammas``): the else level 0, the first level the highest"""
    m: float | None
    u: float | None
    weight: float | None
    """log2(m/u), m and u clamped as Splink clamps them; None when Splink has no m or u for the level"""
    m_fixed: bool
    u_fixed: bool


@dataclass(frozen=True)
class ComparisonParameters:
    """A trained comparison: its name and its levels after the null level, strongest first.

    The null level (a value missing) is left out: it has no m or u, and its weight is 0.
    """

    name: str
    levels: tuple[LevelParameters, ...]


def parameters(made: dict[str, Any]) -> tuple[ComparisonParameters, ...]:
    """Each comparison of a model artefact with its levels' m, u and weights, as Splink reads the artefact.

    Splink fills what the file leaves out (a level EM never saw gets Splink's default m), so the values are
    those a link with this model scores with.
    """
    from splink import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(dict(made["splink"])).get_settings("duckdb")
    found = []
    for comparison in settings.comparisons:
        levels = tuple(
            LevelParameters(
                label=str(level.label_for_charts),
                gamma=int(level.comparison_vector_value),
                m=level.m_probability,
                u=level.u_probability,
                weight=level._match_weight,
                m_fixed=bool(level._fix_m_probability),
                u_fixed=bool(level._fix_u_probability),
            )
            for level in comparison.comparison_levels
            if not level.is_null_level
        )
        found.append(ComparisonParameters(str(comparison.output_column_name), levels))
    return tuple(found)


def applied_prior(artefact: dict[str, Any], records: int) -> float:
    """λ of a stored model applied to ``records`` records: λ·(n−1)/(N−1) for a model trained on ``n``, never
    above the trained λ (:func:`for_store`)."""
    n_trained = int(str(artefact.get("data_fingerprint", "0-")).split("-")[0] or 0)
    trained = float(artefact["splink"]["probability_two_random_records_match"])
    prior = trained * (n_trained - 1) / (records - 1) if n_trained > 1 and records > 1 else trained
    return min(prior, trained)


def for_store(store: Store, artefact: dict[str, Any], spec: ModelSpec, records: int, *, incremental: bool) -> Any:
    """A linker with a stored model, applied to a store of ``records`` records.

    λ follows the store's size: a model trained on ``n`` records is applied to ``N`` with λ·(n−1)/(N−1), the
    same expected number of matches per record (never above the trained λ). An incremental run registers
    the term frequencies of the store (``link_counts``, ``link_totals`` of :mod:`linkage.prepare`), not those
    of the few records it scores.
    """
    linker = from_artefact(store, artefact, spec, prior=applied_prior(artefact, records), full=not incremental)
    if incremental:
        for column in spec.tf_columns():
            table = f"tf_{column}"
            store.sql(
                f"""CREATE OR REPLACE TEMP TABLE {quote(table)} AS
                    SELECT value AS {quote(column)}, c.n / t.n AS {quote(table)}
                    FROM link_counts c JOIN link_totals t USING (kind) WHERE kind = ?""",
                [f"tf:{column}"],
                table=table,
            )
            frame = linker._db_api.register(table)
            linker.table_management.register_term_frequency_lookup(frame, column)
    return linker
