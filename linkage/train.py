"""The ``model`` stage's training: λ, u and m estimated without labels, with Splink.

λ (the probability that two random records match) from the spec's deterministic rules and their assumed
recall; u of each comparison's first level, when it is an equality, counted over all pairs of records
(:func:`exact_u`), the other levels' u from random pairs; m by EM, once per training rule, fixed seed.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Any, Final

from linkage.block import key_columns
from linkage.errors import ConfigError
from linkage.model import linker_for, settings_for
from linkage.spec import ModelSpec
from linkage.store import Store

__all__ = ["MIN_TRAINING_PAIRS", "check_trained", "exact_levels", "exact_u", "null_columns", "train", "training_pairs"]

log = logging.getLogger(__name__)


MIN_TRAINING_PAIRS: Final = 1
"""A training rule that blocks fewer pairs is skipped: Splink's EM fails on it, after it has taken the
rule's comparisons out of the model and replaced λ (see :func:`train`)."""


def train(store: Store, spec: ModelSpec, *, em_on: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """Estimate λ, u (random sampling) and m (EM per training rule) without labels; return the linker.

    λ and u are estimated on the store's ``model_input``: λ from the deterministic rules' pairs, u from
    all pairs among a sample of about a thousand records, whatever the store's size. ``em_on``: EM, the
    step whose pairs grow with the store, runs on the linker it makes from the settings trained so far
    (:mod:`linkage.spark`: the same model on Spark); by default on the store's own linker.

    A training rule is counted first (:func:`training_pairs`) and skipped, with a warning, when it blocks
    no pairs; if EM fails on a rule anyway, the model is restored as it was before that rule. After
    training the model must still hold every comparison of the spec and the λ of the deterministic rules.

    Raises:
        ConfigError: no training rule blocks any pair on these records (naming the input roles the rules
            need), or training left the model without a comparison or with another λ.
    """
    from splink.internals.exceptions import EMTrainingException

    linker = linker_for(store, settings_for(spec))
    training = linker.training
    counted = {rule: training_pairs(store, rule) for rule in spec.training}
    runnable = [rule for rule in spec.training if (n := counted[rule]) is None or n >= MIN_TRAINING_PAIRS]
    training.estimate_probability_two_random_records_match(
        list(spec.deterministic), recall=spec.deterministic_recall
    )
    prior = float(linker._settings_obj._probability_two_random_records_match)
    if not 0 < prior < 1:  # no deterministic pair: λ = 0, and every match weight would be -∞
        raise ConfigError(
            "the spec does not fit these records: no deterministic rule finds a pair, so λ (the share of "
            "matching pairs) cannot be estimated: "
            + "; ".join(_needs(rule, "deterministic rule") for rule in spec.deterministic)
            + "".join(f"; {_needs(rule)} and blocks no pair" for rule in spec.training if rule not in runnable)
            + f". {_WHAT_TO_DO}"
        )
    training.estimate_u_using_random_sampling(max_pairs=spec.max_pairs_u, seed=spec.seed)
    if spec.exact_u:
        _set_exact_u(linker, exact_u(store, spec))
    if em_on is not None:
        linker = em_on(linker.misc.save_model_to_json())
        training = linker.training
    for number, rule in enumerate(spec.training):
        if rule not in runnable:
            log.warning("training[%d] (%s) blocks %s pairs on these records: skipped", number, rule, counted[rule])
    trained = 0
    for rule in runnable:
        # Splink's EM session takes the rule's comparisons out of the settings and sets λ before it
        # finds that the rule has no pairs; a copy taken here puts them back.
        saved = copy.deepcopy(linker._settings_obj.core_model_settings)
        try:
            training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=spec.max_pairs_em)
            trained += 1
        except EMTrainingException:
            linker._settings_obj.core_model_settings = saved
            log.warning("EM training rule found no pairs, skipped: %s", rule)
    if trained == 0:
        raise ConfigError(
            "no training rule of the spec blocks any pair of these records, so EM cannot estimate m: "
            + "; ".join(_needs(rule) for rule in spec.training)
            + f". {_WHAT_TO_DO}"
        )
    check_trained(linker, spec, prior)
    return linker


def training_pairs(store: Store, rule: str) -> int | None:
    """The pairs of records of ``model_input`` that a training rule blocks, from its key counts (no join).

    None when the rule is not equalities of columns (:func:`linkage.block.key_columns`): it is not counted.
    """
    keys = key_columns(rule)
    if not keys:
        return None
    present = " AND ".join(f"{c} IS NOT NULL" for c in keys)
    found = store.scalar(
        f"""SELECT coalesce(sum(c * (c - 1) // 2), 0) FROM (
                SELECT count(*) AS c FROM model_input WHERE {present} GROUP BY {", ".join(keys)})""",
        table="training_pairs",
    )
    return int(found)


_WHAT_TO_DO: Final = (
    "Map those roles to the input's columns (columns.<role> in the config), or pass a spec whose rules read "
    "columns the data has (--spec; configs/civil_model.toml needs no NIK; docs/spec.md)"
)


def _needs(rule: str, kind: str = "training rule") -> str:
    """``training rule 'l.nik_digits = r.nik_digits' needs nik (nik_digits)``: the input roles of its columns."""
    from linkage.prepare import INPUT_COLUMNS

    roles = {c.name: c.roles for c in INPUT_COLUMNS}
    columns = list(dict.fromkeys(node.name for node in _columns(rule)))
    needed = " and ".join(f"{' or '.join(roles.get(c, ()))} ({c})" for c in columns)
    return f"{kind} {rule!r} needs {needed}"


def _columns(sql: str) -> list[Any]:
    import sqlglot
    from sqlglot import exp

    return [node for node in sqlglot.parse_one(sql, read="duckdb").walk(bfs=False) if isinstance(node, exp.Column)]


def check_trained(linker: Any, spec: ModelSpec, prior: float) -> None:
    """Check that training left every comparison of ``spec`` in the model, and λ as estimated (``prior``).

    Raises:
        ConfigError: a comparison is missing or λ changed: the model would link on partial evidence.
    """
    settings = linker._settings_obj
    have = [c.output_column_name for c in settings.comparisons]
    missing = [c.name for c in spec.comparison if c.name not in have]
    lam = float(settings._probability_two_random_records_match)
    if missing or not math.isclose(lam, prior, rel_tol=1e-9):
        raise ConfigError(
            f"training damaged the model (comparisons missing: {missing or 'none'}; λ {lam:.6g}, estimated "
            f"{prior:.6g} from the deterministic rules); no model was saved. Check the training rules against "
            "the data (docs/spec.md) and report this as a bug"
        )


def null_columns(sql: str) -> list[str] | None:
    """The columns of a null level that is only ``l.x IS NULL OR r.x IS NULL`` terms, both sides each, else None.

    >>> null_columns("l.nik_digits IS NULL OR r.nik_digits IS NULL")
    ['nik_digits']
    >>> null_columns("l.dob IS NULL") is None
    True
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    sides: dict[str, set[str]] = {}
    for term in tree.flatten() if isinstance(tree, exp.Or) else [tree]:
        column = term.this if isinstance(term, exp.Is) and isinstance(term.expression, exp.Null) else None
        if not isinstance(column, exp.Column) or column.table not in ("l", "r"):
            return None
        sides.setdefault(column.name, set()).add(column.table)
    if any(found != {"l", "r"} for found in sides.values()):
        return None
    return list(sides)


def exact_levels(spec: ModelSpec) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The comparisons whose leading levels' u :func:`exact_u` counts: name → (null columns, key columns per level).

    A comparison qualifies when its null level is ``l.x IS NULL OR r.x IS NULL`` terms and its first
    level after it is equalities of columns (:func:`key_columns`) whose u the spec does not fix. The levels
    after it are counted too while each is equalities of fewer of the same columns (NIK exact and
    consistent, then NIK exact): the pairs a level takes are those equal on its columns less those equal on
    the previous level's.
    """
    found = {}
    for comp in spec.comparison:
        levels = comp.levels
        if len(levels) < 2 or not levels[0].null:
            continue
        nulls = null_columns(levels[0].sql or "")
        chain: list[list[str]] = []
        for level in levels[1:]:
            keys = None if level.null or level.else_ or level.u is not None else key_columns(level.sql or "")
            if not keys or (chain and not set(keys) < set(chain[-1])):
                break
            chain.append(keys)
        if nulls and chain:
            found[comp.name] = (nulls, chain)
    return found


def exact_u(store: Store, spec: ModelSpec) -> dict[str, list[float]]:
    """u of each comparison's leading equality levels (:func:`exact_levels`), counted over all pairs of records.

    A random sample of two million pairs sees a level such as "NIK exact" a handful of times or never
    (then Splink assumes 10^-6), so its weight moved by 4 bits from one sample to the next. Equal values
    are counted exactly instead, from value frequencies: u = Σ c(c-1) / (K(K-1)), with c the records per
    value and K the records not at the null level. Like Splink's sample, this counts all pairs,
    duplicates of one person among them (the estimate Fellegi-Sunter's u takes when matches are rare).
    A later level of the chain counts the pairs equal on its columns less those the level before took.

    Returns:
        Per comparison, the u of its counted levels in order; a comparison with no equal pair is left out.
    """
    out = {}
    for name, (nulls, chain) in exact_levels(spec).items():
        present = " AND ".join(f"{c} IS NOT NULL" for c in nulls)
        total = int(store.scalar(f"SELECT count(*) FROM model_input WHERE {present}", table="exact_u"))
        same = []
        for keys in chain:
            equal = " AND ".join(f"{c} IS NOT NULL" for c in keys)
            same.append(float(store.scalar(
                f"""SELECT coalesce(sum(c * (c - 1)), 0) FROM (SELECT count(*)::DOUBLE AS c FROM model_input
                    WHERE {present} AND {equal} GROUP BY {", ".join(keys)})""",
                table="exact_u",
            )))  # fmt: skip
        if total > 1 and same[0]:
            pairs = float(total) * (total - 1)
            out[name] = [(n - (same[i - 1] if i else 0.0)) / pairs for i, n in enumerate(same)]
    return out


def _set_exact_u(linker: Any, counted: dict[str, list[float]]) -> None:
    """Replace the sampled u of the counted levels, scaling the comparison's other levels to sum to 1."""
    for comparison in linker._settings_obj.comparisons:
        us = counted.get(comparison.output_column_name)
        if us is None:
            continue
        levels = [cl for cl in comparison._comparison_levels_excluding_null if not cl._fix_u_probability]
        head, rest = levels[: len(us)], levels[len(us) :]
        sampled = 0.0
        for cl, u in zip(head, us, strict=True):
            before = cl._trained_u_probabilities[-1]["probability"]
            sampled += before if isinstance(before, float | int) else 0.0
            counted_u = {"probability": u, "description": "exact count over all pairs", "m_or_u": "u"}
            cl._trained_u_probabilities[-1] = counted_u
        for cl in rest:
            record = cl._trained_u_probabilities[-1]
            if isinstance(record["probability"], float | int):
                record["probability"] = record["probability"] * (1 - sum(us)) / (1 - sampled)
    linker._populate_m_u_from_trained_values()
