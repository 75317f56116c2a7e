"""A stored Fellegi-Sunter model as Python: one pair scored in microseconds, as Splink's SQL scores it.

Splink scores pairs with SQL (comparison vectors, then match weights with term-frequency adjustments, then
the prior): right for a link of a million pairs, and 30-80 ms of a DuckDB statement's fixed cost for the
one to forty pairs of an officer's query. :class:`Compiled` holds the same model as Python: each
comparison's levels compiled by :mod:`linkage.evaluator` (which evaluates a spec's SQL fragments as DuckDB
does), each level's match weight and term-frequency adjustment taken from Splink's own objects (the very
floats Splink writes into its SQL), summed in Splink's order, and the veto of the spec. A model that the
evaluator cannot compile (a fragment calling a function it does not implement) raises
:class:`linkage.evaluator.Unsupported`, and the warm scorer scores with Splink's SQL instead.

``tests/test_query.py`` checks a query scored this way against a link of the same application, pair for
pair, to 1e-9.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from linkage.evaluator import Unsupported, pair_condition, row_condition
from linkage.spec import ModelSpec

__all__ = ["Compiled", "Unsupported"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class _Adjustment:
    """A level's term-frequency adjustment (Splink's ``_tf_adjustment_sql``): ``weight * (log2(u of the exact
    level) - log2(the greater frequency of the two values, at least minimum))``."""

    column: str
    weight: float
    log2_u: float
    minimum: float

    def of(self, left: float | None, right: float | None) -> float:
        if left is None and right is None:
            return 0.0
        a = left if left is not None else right
        b = right if right is not None else left
        assert a is not None and b is not None
        return self.weight * (self.log2_u - math.log2(max(a, b, self.minimum)))


@dataclass(frozen=True)
class _Level:
    gamma: int
    holds: Callable[[Row, Row], bool] | None
    """whether the level holds of ``(l, r)``; None for the else level"""
    weight: float
    adjustment: _Adjustment | None


@dataclass(frozen=True)
class _Comparison:
    name: str
    levels: tuple[_Level, ...]
    adjusted: bool
    """whether Splink gives it a ``mw_tf_adj_`` column"""

    def level(self, left: Row, right: Row) -> _Level:
        for level in self.levels:
            if level.holds is None or level.holds(left, right):
                return level
        raise AssertionError("unreachable: the last level is an else level")  # (checked in Compiled.of)


@dataclass(frozen=True)
class Compiled:
    """A linker's model (its settings object) compiled to Python; :meth:`score` one pair."""

    prior_weight: float
    comparisons: tuple[_Comparison, ...]
    terms: tuple[str, ...]
    """the match-weight columns in the order Splink sums them"""
    veto: Callable[[Row], bool] | None
    cap: float

    @classmethod
    def of(cls, settings: Any, spec: ModelSpec, columns: Collection[str]) -> Compiled:
        """Compile Splink's settings object (``linker._settings_obj``) and the spec's veto.

        Args:
            settings: the linker's settings, with the stored parameters and the prior it scores with.
            spec: the model spec (its veto and the veto's cap).
            columns: the model input's columns (Splink writes ``l.x`` as ``x_l``; these tell them apart).

        Raises:
            Unsupported: a level or the veto calls what :mod:`linkage.evaluator` does not implement, or a
                comparison has no else level.
        """
        from splink.internals.misc import prob_to_match_weight

        comparisons = []
        terms: list[str] = []
        for comparison in settings.comparisons:
            levels = comparison.comparison_levels
            if not levels or not levels[-1]._is_else_level:
                raise Unsupported(f"comparison {comparison.output_column_name!r} has no else level")
            compiled = []
            for level in levels:
                adjustment = None
                if (level._has_tf_adjustments and level.comparison_vector_value != -1 and not level._is_else_level
                        and level._tf_adjustment_weight != 0):  # fmt: skip
                    adjustment = _Adjustment(
                        level._tf_adjustment_input_column.unquote().name,
                        float(level._tf_adjustment_weight),
                        math.log2(level._u_probability_corresponding_to_exact_match(levels)),
                        float(level._tf_minimum_u_value),
                    )
                holds = None if level._is_else_level else pair_condition(_sided(level.sql_condition, columns))
                compiled.append(_Level(int(level.comparison_vector_value), holds, float(level._match_weight),
                                       adjustment))  # fmt: skip
            comparisons.append(_Comparison(comparison.output_column_name, tuple(compiled),
                                           bool(comparison._has_tf_adjustments)))  # fmt: skip
            terms.extend(comparison._match_weight_columns_to_sum)
        veto = row_condition(spec.veto.sql) if spec.veto else None
        prior = prob_to_match_weight(settings._probability_two_random_records_match)
        return cls(float(prior), tuple(comparisons), tuple(terms), veto, spec.veto_cap())

    def with_prior(self, prior: float) -> Compiled:
        """The same model applied with another λ (it follows the records a model is applied to)."""
        from splink.internals.misc import prob_to_match_weight

        return dataclasses.replace(self, prior_weight=float(prob_to_match_weight(prior)))

    def score(self, left: Row, right: Row, tf_left: Row, tf_right: Row) -> dict[str, Any]:
        """Score one pair as Splink's prediction and the veto score it (:func:`linkage.warm._scoring_sql`).

        Args:
            left, right: the two records' model input, ``left`` the one of the lower ``unique_id``.
            tf_left, tf_right: each record's term frequencies by column (a missing one: no adjustment).

        Returns:
            ``gamma_<c>``, ``mw_<c>``, ``mw_tf_adj_<c>`` of each comparison, ``model_match_weight`` (Splink's),
            ``vetoed``, ``match_weight`` (the veto's cap applied) and ``match_probability`` (of that weight).
        """
        found: dict[str, Any] = {}
        for comparison in self.comparisons:
            level = comparison.level(left, right)
            found[f"gamma_{comparison.name}"] = level.gamma
            found[f"mw_{comparison.name}"] = level.weight
            if comparison.adjusted:
                adjustment = level.adjustment
                found[f"mw_tf_adj_{comparison.name}"] = (
                    adjustment.of(tf_left.get(adjustment.column), tf_right.get(adjustment.column))
                    if adjustment is not None else 0.0
                )  # fmt: skip
        weight = self.prior_weight
        for term in self.terms:  # in Splink's order: a float sum depends on it
            weight = weight + found[term]
        vetoed = bool(self.veto(found)) if self.veto is not None else False
        adjusted = min(weight, self.cap) if vetoed else weight
        return {
            **found,
            "model_match_weight": weight,
            "vetoed": vetoed,
            "match_weight": adjusted,
            "match_probability": _probability(adjusted),
        }


def _probability(weight: float) -> float:
    """``1 / (1 + 2^-weight)``, as the scoring SQL computes it (0 where 2^-weight overflows)."""
    try:
        return 1 / (1 + math.pow(2, -weight))
    except OverflowError:
        return 0.0


def _sided(sql: str, columns: Collection[str]) -> str:
    """A level's condition as Splink stores it (``name_key_l = name_key_r``) written as the spec writes it
    (``l.name_key = r.name_key``): a bare column ``x_l`` or ``x_r`` of a model-input column ``x``."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")

    def sided(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            name, _, side = node.name.rpartition("_")
            if side in ("l", "r") and name in columns:
                return exp.column(name, table=side)
        return node

    return tree.transform(sided).sql("duckdb")
