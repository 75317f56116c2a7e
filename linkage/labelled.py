"""What labelled pairs say about a model's levels: each pair's stored levels, and m estimated from them.

A labelled pair (:func:`linkage.labels.standing`: ``match`` or ``non-match``; ``unsure`` and disputed pairs
count nowhere) is read with the levels its stored pair has (``pairs.gammas``, in the order of its model's
comparisons, ``models.comparisons``): the latest stored row of the pair. A pair the store holds no scored
pair for (one joined only through others, or one of the outside slice, or scored below the review floor) is
left out and counted. A level is named by its label, not its number, so that another model with the same
levels can read it (:func:`linkage.model.parameters`).

:func:`m_from_labels` re-estimates each comparison's m from the labelled matches, where there are enough
(issue 14 §4): m = (matches at the level + 1/2) / (matches + levels/2), Jeffreys' prior over the levels
after the null level (a match at the null level says nothing of the levels: it is not counted). Levels whose
m the spec fixes keep it: the spec fixes them where an estimate is not wanted (docs/spec.md). Record ids are
not logged; counts are.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import pyarrow as pa

from linkage.labels import standing
from linkage.model import ComparisonParameters, model_id, parameters
from linkage.store import Store

__all__ = ["MIN_LABELS", "Labelled", "LabelledPair", "MSource", "MUpdate", "labelled_levels", "m_from_labels"]

log = logging.getLogger(__name__)

MIN_LABELS: Final = 30
"""Labelled matches a comparison needs (after its null level) before its m is taken from the labels."""


@dataclass(frozen=True)
class LabelledPair:
    """A labelled pair with its stored levels: comparison name → level label (None at the null level)."""

    match: bool
    vetoed: bool
    levels: dict[str, str | None]


@dataclass(frozen=True)
class Labelled:
    """The store's labelled pairs that have stored levels, and what was left out."""

    pairs: tuple[LabelledPair, ...]
    not_stored: int
    """labelled (match or non-match) pairs without a stored pair: no levels to read"""
    unsure: int
    disputed: int
    stored_levels: dict[str, tuple[tuple[str, ...], ...]]
    """per comparison of the stored pairs' models, the level labels after the null level (one tuple per
    distinct set of levels: more than one when models of the pairs differ)"""

    @property
    def matches(self) -> int:
        return sum(p.match for p in self.pairs)

    def comparable(self, comparison: ComparisonParameters) -> bool:
        """Whether the stored pairs' levels of ``comparison`` are its levels (the same labels, in order)."""
        return self.stored_levels.get(comparison.name) == (tuple(level.label for level in comparison.levels),)


def labelled_levels(store: Store) -> Labelled:
    """The store's standing labels of match and non-match with each pair's stored levels (module docstring)."""
    labels = standing(store)
    counted = labels["label"].value_counts()
    usable = labels[labels["label"].isin(["match", "non-match"])][["record_id_l", "record_id_r", "label"]]
    ids = pa.table({c: pa.array(usable[c], pa.string()) for c in usable.columns})  # typed when empty too
    with store.registered("_labelled", ids):
        rows = store.rows(
            # the latest row of each pair, as history.LATEST_PAIR, in either order of its two ids
            """SELECT s.label, coalesce(p.vetoed, false), p.gammas, p.model_id FROM _labelled s
                JOIN pairs p ON least(p.record_id_l, p.record_id_r) = s.record_id_l
                             AND greatest(p.record_id_l, p.record_id_r) = s.record_id_r
                QUALIFY row_number() OVER (PARTITION BY s.record_id_l, s.record_id_r ORDER BY p.run_id DESC) = 1""",
            table="pairs",
        )
    names = _models(store, {model for *_, model in rows})
    pairs, missing = [], 0
    for label, vetoed, gammas, model in rows:
        if model not in names:  # a pair whose model the store does not hold: its levels cannot be named
            missing += 1
            continue
        levels = {name: by_gamma.get(gamma) for (name, by_gamma), gamma in zip(names[model], gammas, strict=False)}
        pairs.append(LabelledPair(label == "match", bool(vetoed), levels))
    stored: dict[str, set[tuple[str, ...]]] = {}
    for comparisons in names.values():
        for name, by_gamma in comparisons:
            stored.setdefault(name, set()).add(tuple(by_gamma[g] for g in sorted(by_gamma, reverse=True)))
    found = Labelled(
        pairs=tuple(pairs),
        not_stored=len(usable) - len(rows) + missing,
        unsure=int(counted.get("unsure", 0)),
        disputed=int(counted.get("disputed", 0)),
        stored_levels={name: tuple(sorted(sets)) for name, sets in stored.items()},
    )
    log.info("labelled pairs with stored levels: %d, without: %d", len(found.pairs), found.not_stored)
    return found


def _models(store: Store, ids: set[str]) -> dict[str, list[tuple[str, dict[int, str]]]]:
    """Per model id, its comparisons in the order of ``pairs.gammas``, each with its level labels by gamma."""
    if not ids:
        return {}
    rows = store.rows(
        "SELECT model_id, artefact FROM models WHERE model_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted(ids)],
        table="models",
    )
    found = {}
    for model, text in rows:
        found[str(model)] = [
            (c.name, {level.gamma: level.label for level in c.levels}) for c in parameters(json.loads(text))
        ]
    return found


MSource = Literal["labels", "em"]


@dataclass(frozen=True)
class MUpdate:
    """What :func:`m_from_labels` did with one comparison."""

    comparison: str
    labelled_matches: int
    """labelled matches at a level after the null level"""
    source: MSource
    reason: str
    """why m came from where it did, in words"""
    m_before: tuple[float | None, ...]
    m_after: tuple[float | None, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def m_from_labels(
    made: dict[str, Any], labelled: Labelled, *, min_labels: int = MIN_LABELS
) -> tuple[dict[str, Any], tuple[MUpdate, ...]]:
    """A copy of the model artefact ``made`` with m re-estimated from the labelled matches, per comparison.

    A comparison takes m from the labels when it has at least ``min_labels`` labelled matches at a level
    after its null level and the stored pairs' levels of it are its levels; every level then gets
    m = (matches at the level + 1/2) / (matches + levels/2), except those whose m the spec fixes. Otherwise
    it keeps EM's m. The new artefact has a new ``model_id`` and says in its provenance (``m_from_labels``)
    which comparisons took m from the labels, from how many labelled matches.

    Args:
        made: a model artefact (:func:`linkage.model.artefact`).
        labelled: the store's labelled pairs (:func:`labelled_levels`).
        min_labels: labelled matches a comparison needs.

    Returns:
        The new artefact, and what was done with each comparison, in the model's order.
    """
    out = copy.deepcopy(made)
    by_name = {c["output_column_name"]: c for c in out["splink"]["comparisons"]}
    updates = []
    for comparison in parameters(made):
        at = Counter(p.levels.get(comparison.name) for p in labelled.pairs if p.match)
        at.pop(None, None)
        n = sum(at.values())
        before = tuple(level.m for level in comparison.levels)
        if not labelled.comparable(comparison):
            reason = "EM's m kept: the stored pairs' levels of this comparison are not this model's"
            updates.append(MUpdate(comparison.name, n, "em", reason, before, before))
            continue
        if n < min_labels:
            reason = f"EM's m kept: {n} labelled matches, fewer than {min_labels}"
            updates.append(MUpdate(comparison.name, n, "em", reason, before, before))
            continue
        k = len(comparison.levels)
        levels = [level for level in by_name[comparison.name]["comparison_levels"] if not level.get("is_null_level")]
        after = []
        for level, found in zip(levels, comparison.levels, strict=True):
            if found.m_fixed:
                after.append(found.m)
                continue
            level["m_probability"] = (at[found.label] + 0.5) / (n + k / 2)
            after.append(level["m_probability"])
        fixed = sum(found.m_fixed for found in comparison.levels)
        reason = f"m from {n} labelled matches" + (f"; {fixed} level(s) fixed by the spec kept" if fixed else "")
        updates.append(MUpdate(comparison.name, n, "labels", reason, before, tuple(after)))
    out["model_id"] = model_id(out["splink"])
    out["m_from_labels"] = {
        "from_model_id": made["model_id"],
        "min_labels": min_labels,
        "labelled_pairs": len(labelled.pairs),
        "labelled_matches": labelled.matches,
        "labelled_pairs_not_stored": labelled.not_stored,
        "comparisons": [u.comparison for u in updates if u.source == "labels"],
        "labelled_matches_by_comparison": {u.comparison: u.labelled_matches for u in updates},
    }
    log.info("m from labels for %d of %d comparisons", len(out["m_from_labels"]["comparisons"]), len(updates))
    return out, tuple(updates)
