"""Two models side by side: each level's m, u and match weight, λ, and each model's decisions on labelled pairs.

The models are artefacts (:func:`linkage.model.read_artefact`, or a store's: :func:`linkage.model.export_stored`);
their parameters are read as Splink reads them (:func:`linkage.model.parameters`). Comparisons are matched by
name and levels by label; a comparison or level in one model only is listed as such. Null levels (a value
missing) are left out: neither model has an m or u for them, and their weight is 0.

**On labelled pairs.** With a store that holds labels (``linkage review import``), each labelled pair that has
a stored scored pair is scored again under each model from its stored levels (:mod:`linkage.labelled`), as
Splink sums a pair's match weight: the prior's log-odds log2(λ/(1-λ)), with λ as a link of this store would
apply it (:func:`linkage.model.applied_prior`), plus log2(m/u) of the pair's level of each comparison; a pair
the spec's veto held (``pairs.vetoed``: the veto reads levels only, so both models see the same) is capped at
the veto's weight. **Term-frequency adjustments are left out**, for both models alike: a pair with a rare
name scores lower here, and one with a common name higher, than a link scores it. A comparison whose levels
are not those of the stored pairs counts as no evidence, and is named. Each model's pairs at or above its
own threshold are counted: pairwise precision and recall **on the labelled pairs**, plain counts on the
sample, not estimates for the population (the sample is stratified and not weighted here;
``linkage evaluate --labels`` estimates them for the store's own model).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

from linkage.labelled import Labelled, labelled_levels
from linkage.model import ComparisonParameters, LevelParameters, applied_prior, parameters
from linkage.spec import ModelSpec
from linkage.store import Store

__all__ = ["COLUMNS", "Comparison", "LabelledAccuracy", "LevelChange", "ModelAccuracy", "compare_models", "write_page"]

DEFAULT_THRESHOLD: Final[float] = ModelSpec.model_fields["threshold"].default
"""A model's threshold when its artefact records none: the spec's default."""

METHOD: Final = (
    "counts on the labelled pairs of the store's sample, not population estimates (`linkage evaluate --labels` "
    "gives those for the store's model); each pair scored from its stored levels under each model as the prior's "
    "log-odds plus each comparison's log2(m/u), the veto's cap applied, term-frequency adjustments left out"
)

Present = Literal["both", "a", "b"]

COLUMNS: Final = (
    "comparison",
    "level",
    "in",
    "m A",
    "m B",
    "m B-A",
    "u A",
    "u B",
    "weight A",
    "weight B",
    "weight B-A",
)
"""The columns of the levels' table, in the terminal and on the page."""


@dataclass(frozen=True)
class LevelChange:
    """One level of a comparison in either model: its m, u and weight in each, and the change from A to B."""

    comparison: str
    level: str
    present: Present
    m_a: float | None
    u_a: float | None
    weight_a: float | None
    m_b: float | None
    u_b: float | None
    weight_b: float | None
    m_change: float | None
    """m of B minus m of A (None unless both have it); likewise ``u_change`` and ``weight_change``"""
    u_change: float | None
    weight_change: float | None


@dataclass(frozen=True)
class ModelAccuracy:
    """One model's decisions on the labelled pairs, at its threshold: plain counts on the sample."""

    model_id: str
    threshold: float
    prior: float
    """λ as a link of this store applies it"""
    matches_at_or_above: int
    non_matches_at_or_above: int
    precision: float | None
    """matches at or above / pairs at or above, on the labelled pairs (None when none is at or above)"""
    recall: float | None
    """matches at or above / labelled matches (None without labelled matches)"""
    no_evidence: tuple[str, ...]
    """comparisons whose levels are not the stored pairs': scored as no evidence"""


@dataclass(frozen=True)
class LabelledAccuracy:
    """Both models on the same labelled pairs (see the module docstring)."""

    matches: int
    non_matches: int
    not_stored: int
    """labelled pairs left out: no stored pair to read their levels from"""
    unsure: int
    disputed: int
    a: ModelAccuracy
    b: ModelAccuracy
    decided_differently: int
    """labelled pairs one model puts at or above its threshold and the other not"""
    method: str = METHOD


@dataclass(frozen=True)
class Comparison:
    """Two models compared (``--json`` gives :meth:`to_dict`)."""

    model_a: str
    model_b: str
    lambda_a: float
    lambda_b: float
    threshold_a: float
    threshold_b: float
    levels: tuple[LevelChange, ...]
    only_in_a: tuple[str, ...]
    """comparisons of A that B does not have"""
    only_in_b: tuple[str, ...]
    accuracy: LabelledAccuracy | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_models(
    a: dict[str, Any], b: dict[str, Any], *, store: Store | None = None, spec: ModelSpec | None = None
) -> Comparison:
    """Compare two model artefacts level by level, and on the store's labelled pairs when a store is given.

    Args:
        a: a model artefact (``linkage train``'s file, or a store's model).
        b: another.
        store: a store with labels (``linkage review import``): each model's decisions on its labelled pairs.
        spec: the spec whose veto held the stored pairs (its cap; default ``configs/model.toml``).

    Returns:
        Per comparison and level, m, u and weight of each and their change; λ and threshold of each; the
        comparisons in one only; with ``store``, both models' counts on the labelled pairs.

    Raises:
        ConfigError: the default spec is invalid (only with ``store`` and no ``spec``).
    """
    params_a, params_b = parameters(a), parameters(b)
    names_a, names_b = [c.name for c in params_a], [c.name for c in params_b]
    accuracy = None
    if store is not None:
        if spec is None:
            from linkage.spec import load_spec

            spec = load_spec()
        accuracy = _accuracy(store, spec, (a, params_a), (b, params_b))
    return Comparison(
        model_a=str(a["model_id"]),
        model_b=str(b["model_id"]),
        lambda_a=_prior(a),
        lambda_b=_prior(b),
        threshold_a=_threshold(a),
        threshold_b=_threshold(b),
        levels=tuple(_levels(params_a, params_b)),
        only_in_a=tuple(n for n in names_a if n not in names_b),
        only_in_b=tuple(n for n in names_b if n not in names_a),
        accuracy=accuracy,
    )


def _prior(made: dict[str, Any]) -> float:
    return float(made["splink"]["probability_two_random_records_match"])


def _threshold(made: dict[str, Any]) -> float:
    found = made.get("threshold")
    return float(found) if isinstance(found, int | float) else DEFAULT_THRESHOLD


def _keyed(levels: tuple[LevelParameters, ...]) -> dict[tuple[str, int], LevelParameters]:
    """Levels by (label, occurrence): a label repeated in one comparison stays two levels."""
    seen: Counter[str] = Counter()
    out = {}
    for level in levels:
        out[(level.label, seen[level.label])] = level
        seen[level.label] += 1
    return out


def _levels(
    params_a: tuple[ComparisonParameters, ...],
    params_b: tuple[ComparisonParameters, ...],
) -> list[LevelChange]:
    """Every level of either model: A's comparisons and levels in A's order, then what B has beyond them."""
    by_a, by_b = {c.name: c for c in params_a}, {c.name: c for c in params_b}
    names = [c.name for c in params_a] + [c.name for c in params_b if c.name not in by_a]
    out = []
    for name in names:
        levels_a = _keyed(by_a[name].levels) if name in by_a else {}
        levels_b = _keyed(by_b[name].levels) if name in by_b else {}
        for key in [*levels_a, *(k for k in levels_b if k not in levels_a)]:
            la, lb = levels_a.get(key), levels_b.get(key)
            present: Present = "both" if la is not None and lb is not None else "a" if la is not None else "b"
            out.append(LevelChange(
                comparison=name, level=key[0], present=present,
                m_a=la.m if la else None, u_a=la.u if la else None, weight_a=la.weight if la else None,
                m_b=lb.m if lb else None, u_b=lb.u if lb else None, weight_b=lb.weight if lb else None,
                m_change=_change(la.m if la else None, lb.m if lb else None),
                u_change=_change(la.u if la else None, lb.u if lb else None),
                weight_change=_change(la.weight if la else None, lb.weight if lb else None),
            ))  # fmt: skip
    return out


def _change(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _accuracy(
    store: Store, spec: ModelSpec, a: tuple[dict[str, Any], tuple[ComparisonParameters, ...]],
    b: tuple[dict[str, Any], tuple[ComparisonParameters, ...]],
) -> LabelledAccuracy:  # fmt: skip
    labelled = labelled_levels(store)
    records = int(store.scalar("SELECT count(*) FROM applications_normalised", table="applications_normalised"))
    cap = spec.veto_cap() if spec.veto else None
    found_a, decided_a = _decide(*a, labelled, records, cap)
    found_b, decided_b = _decide(*b, labelled, records, cap)
    return LabelledAccuracy(
        matches=labelled.matches,
        non_matches=len(labelled.pairs) - labelled.matches,
        not_stored=labelled.not_stored,
        unsure=labelled.unsure,
        disputed=labelled.disputed,
        a=found_a,
        b=found_b,
        decided_differently=sum(x != y for x, y in zip(decided_a, decided_b, strict=True)),
    )


def _decide(
    made: dict[str, Any], params: tuple[ComparisonParameters, ...], labelled: Labelled, records: int,
    cap: float | None,
) -> tuple[ModelAccuracy, list[bool]]:  # fmt: skip
    """One model's decision on each labelled pair (at or above its threshold), and its counts."""
    prior = applied_prior(made, records)  # (the trained λ for a store of one record or none)
    threshold = _threshold(made)
    # compared in bits: p >= t exactly when the weight is at least log2(t / (1 - t)), with no 2^-w to overflow
    cut = math.log2(threshold / (1 - threshold))
    weights = {c.name: {lv.label: lv.weight or 0.0 for lv in c.levels} for c in params if labelled.comparable(c)}
    decided = []
    for pair in labelled.pairs:
        weight = math.log2(prior / (1 - prior))
        weight += sum(by_label.get(pair.levels.get(name) or "", 0.0) for name, by_label in weights.items())
        if pair.vetoed and cap is not None:
            weight = min(weight, cap)
        decided.append(weight >= cut)
    tp = sum(d and p.match for d, p in zip(decided, labelled.pairs, strict=True))
    fp = sum(d and not p.match for d, p in zip(decided, labelled.pairs, strict=True))
    accuracy = ModelAccuracy(
        model_id=str(made["model_id"]),
        threshold=threshold,
        prior=prior,
        matches_at_or_above=tp,
        non_matches_at_or_above=fp,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / labelled.matches if labelled.matches else None,
        no_evidence=tuple(c.name for c in params if c.name not in weights),
    )
    return accuracy, decided


# ------------------------------------------------------------------------------------------ the HTML page


def write_page(comparison: Comparison, path: Path) -> None:
    """An HTML page (opens offline) of the two models side by side: a table of every level, and charts of the
    levels' match weights, m and u, one point per model (:func:`linkage.charts.page`). No personal data."""
    from linkage.charts import page

    a, b = f"A {comparison.model_a}", f"B {comparison.model_b}"
    values = [
        {"comparison": c.comparison, "level": c.level, "model": model, "weight": w, "m": m, "u": u}
        for c in comparison.levels
        for model, w, m, u in ((a, c.weight_a, c.m_a, c.u_a), (b, c.weight_b, c.m_b, c.u_b))
        if w is not None or m is not None or u is not None
    ]
    specs = [
        _chart(values, "weight", "match weight log2(m/u) (bits)", log=False),
        _chart(values, "m", "m: P(level | match)", log=True),
        _chart(values, "u", "u: P(level | non-match)", log=True),
    ]
    order = list(dict.fromkeys(c.comparison for c in comparison.levels))  # the models' order, not the alphabet's
    for spec in specs:
        spec["facet"]["row"]["sort"] = order
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(f"linkage models compare: {a} and {b}", _body(comparison, a, b), specs), encoding="utf-8")


def _chart(values: list[dict[str, Any]], field: str, title: str, *, log: bool) -> dict[str, Any]:
    """A Vega-Lite spec: per comparison (a row), each level's ``field`` with a point per model (where the two
    models agree, one point hides the other). Vega-Lite 5.2, as Splink bundles it: no offsets within a band."""
    scale: dict[str, Any] = {"type": "log"} if log else {"zero": False}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "data": {"values": values},
        "transform": [{"filter": f"isValid(datum.{field})"}],
        "facet": {"row": {"field": "comparison", "type": "nominal", "title": None}},
        "spec": {
            "width": 420,
            "mark": {"type": "point", "filled": True, "size": 70},
            "encoding": {
                "y": {"field": "level", "type": "nominal", "sort": None, "title": None},
                "x": {"field": field, "type": "quantitative", "scale": scale, "title": title},
                "color": {"field": "model", "type": "nominal"},
                "shape": {"field": "model", "type": "nominal"},
                "tooltip": [{"field": k, "type": "nominal" if k in ("comparison", "level", "model") else
                             "quantitative"} for k in ("comparison", "level", "model", "m", "u", "weight")],
            },
        },
        "resolve": {"scale": {"y": "independent"}},
    }  # fmt: skip


def _body(comparison: Comparison, a: str, b: str) -> str:
    """The page's figures and its table of levels, every value escaped."""

    def cell(value: float | None, digits: str = ".4g") -> str:
        return "" if value is None else html.escape(format(value, digits))

    rows = "".join(
        "<tr>" + "".join(f"<td>{x}</td>" for x in (
            html.escape(c.comparison), html.escape(c.level), html.escape(c.present),
            cell(c.m_a), cell(c.m_b), cell(c.m_change, "+.4g"), cell(c.u_a), cell(c.u_b),
            cell(c.weight_a, ".2f"), cell(c.weight_b, ".2f"), cell(c.weight_change, "+.2f"),
        )) + "</tr>"
        for c in comparison.levels
    )  # fmt: skip
    head = "".join(f"<th>{html.escape(h)}</th>" for h in COLUMNS)
    facts = [
        f"{a}: λ {comparison.lambda_a:.4g}, threshold {comparison.threshold_a:g}",
        f"{b}: λ {comparison.lambda_b:.4g}, threshold {comparison.threshold_b:g}",
    ]
    for x, names in (("A", comparison.only_in_a), ("B", comparison.only_in_b)):
        if names:
            facts.append(f"comparisons only in {x}: {', '.join(names)}")
    found = comparison.accuracy
    if found is not None:
        for x, acc in (("A", found.a), ("B", found.b)):
            facts.append(f"{x} on {found.matches} labelled matches and {found.non_matches} non-matches: "
                         f"{acc.matches_at_or_above} matches and {acc.non_matches_at_or_above} non-matches at or "
                         f"above {acc.threshold:g}")  # fmt: skip
        facts.append(found.method)
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return f"<ul>{items}</ul><table><tr>{head}</tr>{rows}</table>"
