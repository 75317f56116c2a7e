"""Labelling samples: record pairs drawn with a design that the estimates respect (issue 14 §1).

Every pair of stored records falls in exactly one **stratum**, by what the latest link run made of it
(its threshold *T* and review floor *F*; *p* is the pair's stored probability, the latest run's score):

* ``linked:strong``, ``linked:near``, ``linked:indirect``: the two records are in one identity, and their pair
  scored *p* >= 0.99, or *T* <= *p* < 0.99 (just above the threshold), or neither (never scored at the
  threshold: linked through other records).
* ``unlinked:near``, ``unlinked:middle``, ``unlinked:low``: a stored pair of two identities with *p* >= 0.5
  (just below the threshold, or kept apart by the guard or a decision), 0.1 <= *p* < 0.5, or *p* < 0.1 (just
  above the review floor).
* ``outside:scored``: a pair that blocking never produced (or scored below the floor), that broader rules
  (:data:`BROADER`: the same birth date; the name key, or the mother's, with the birth year) produce and the
  model scores at or above the floor: the matches blocking missed are here, so recall is estimated over them.
* ``outside:check``: a pair of the broader rules that the model scores below the floor. Such pairs are taken
  for non-matches, as the link takes them; a slice is labelled to check it, and a match found there is
  reported, never silently dropped.
* Every other pair (no broader rule produces it) is taken for a non-match and not drawn.

**Allocation**: each stratum gets a floor share of the labels (the near strata, on both sides of the
threshold, most), and the rest goes by Neyman allocation, ``n_h ~ N_h * sd_h``, with the model's mean
probability in the stratum, kept within [0.02, 0.98], standing for the unknown match rate
(``sd = sqrt(p(1 - p))``; 0.9 for ``linked:indirect``, which has no score); ``outside:check`` gets its floor
share only. Within a stratum the pairs are a simple random sample without
replacement, drawn by a seeded hash of the pair: the same store, size and seed draw the same pairs. A pair's
**inclusion probability** is ``n_h / N_h``. The draw is stored (``samples``, ``sample_pairs``) so that
:mod:`linkage.estimate` can weight the labels by it.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from linkage.errors import InputError
from linkage.history import LATEST_PAIR
from linkage.review import run_cuts
from linkage.spec import ModelSpec
from linkage.store import Store, quote

__all__ = ["BROADER", "FIELDS", "STRATA", "Sample", "Stratum", "allocate", "draw", "write_csv"]

log = logging.getLogger(__name__)

STRATA: Final = ("linked:strong", "linked:near", "linked:indirect", "unlinked:near", "unlinked:middle",
                 "unlinked:low", "outside:scored", "outside:check")  # fmt: skip
ESTIMATED: Final = STRATA[:-1]
# Which stratum a pair inside one identity, or a stored pair across two, falls in by its probability (parameter:
# threshold, the run's): the draw, the estimates at another threshold and the false-alert estimate classify alike.
LINKED_STRATUM: Final = """CASE WHEN match_probability >= greatest(0.99, $threshold) THEN 'linked:strong'
    WHEN match_probability >= $threshold THEN 'linked:near' ELSE 'linked:indirect' END"""
UNLINKED_STRATUM: Final = """CASE WHEN match_probability >= 0.5 THEN 'unlinked:near'
    WHEN match_probability >= 0.1 THEN 'unlinked:middle' ELSE 'unlinked:low' END"""
"""The strata whose labels enter the estimates; ``outside:check`` checks an assumption instead."""

BROADER: Final = (
    "l.dob = r.dob",
    "l.name_key = r.name_key AND l.birth_year = r.birth_year",
    "l.mother_key = r.mother_key AND l.birth_year = r.birth_year",
)
"""Blocking rules broader than the model's: the pairs they produce beyond the stored ones are the outside slice."""

FLOOR_SHARE: Final = {"linked:strong": 0.05, "linked:near": 0.10, "linked:indirect": 0.05, "unlinked:near": 0.15,
                      "unlinked:middle": 0.05, "unlinked:low": 0.05, "outside:scored": 0.05, "outside:check": 0.05}
"""Each stratum's least share of the labels (capped at its size): the threshold's two sides most."""
_UNSCORED_RATE: Final = {"linked:indirect": 0.9}  # the match rate Neyman allocation assumes where no score is
_RATE_BOUND: Final = 0.02
_CHECKED_ONLY: Final = frozenset({"outside:check"})  # its floor share only: its labels check, they do not estimate

FIELDS: Final = ("full_name", "birth_date", "sex", "birth_place", "nik", "mother_name", "phone", "address",
                 "prior_passport_no", "office", "application_date", "decision")  # fmt: skip
"""The applications' fields written side by side (``<field>_l``, ``<field>_r``) in a sample's CSV."""


@dataclass(frozen=True)
class Stratum:
    """One stratum of a draw: its pairs in the store (``population``), those drawn, their mean probability."""

    name: str
    population: int
    drawn: int
    mean_probability: float | None

    @property
    def inclusion_probability(self) -> float:
        return self.drawn / self.population if self.population else 0.0


@dataclass(frozen=True)
class Sample:
    """A stored draw: its design and its pairs (``record_id_l, record_id_r, match_probability, stratum,
    inclusion_probability``)."""

    sample_id: str
    run_id: str
    threshold: float
    review_floor: float
    seed: int
    strata: tuple[Stratum, ...]
    pairs: pd.DataFrame

    def design(self) -> dict[str, Any]:
        return {"strata": [asdict(s) for s in self.strata], "broader_rules": list(BROADER)}


def allocate(n: int, strata: dict[str, tuple[int, float | None]]) -> dict[str, int]:
    """Labels per stratum: each its floor share, the rest by Neyman allocation, none above a stratum's size.

    Args:
        n: labels wanted.
        strata: name -> (pairs in the store, their mean probability or None).

    >>> allocate(10, {"linked:strong": (1000, 0.999), "unlinked:near": (50, 0.6), "outside:check": (0, None)})
    {'linked:strong': 8, 'unlinked:near': 2, 'outside:check': 0}
    """
    sizes = {h: size for h, (size, _) in strata.items()}
    total = sum(sizes.values())
    n = min(n, total)
    got = {h: min(sizes[h], math.floor(FLOOR_SHARE.get(h, 0.0) * n)) for h in strata}
    if sum(got.values()) > n:  # (a tiny n: floors first, in stratum order)
        got, left = dict.fromkeys(strata, 0), n
        for h in strata:
            got[h] = min(sizes[h], left, max(1, math.floor(FLOOR_SHARE.get(h, 0.0) * n)))
            left -= got[h]
        return got
    weight = {}
    for h, (size, mean) in strata.items():
        # the model's mean probability stands for the match rate, kept off 0 and 1: a stratum the model is sure
        # of still needs labels to show it (Jeffreys' interval narrows with the labels, not with the model)
        rate = _UNSCORED_RATE.get(h, 0.5) if mean is None else min(max(mean, _RATE_BOUND), 1 - _RATE_BOUND)
        weight[h] = 0.0 if h in _CHECKED_ONLY else size * math.sqrt(rate * (1 - rate))
    left = n - sum(got.values())
    while left > 0:  # water-filling: Neyman shares of what is left, among strata with room
        room = {h: sizes[h] - got[h] for h in strata if sizes[h] > got[h]}
        if not room:
            break
        if not any(weight[h] for h in room):
            break  # only strata that take their floor share are left
        mass = sum(weight[h] for h in room)
        shares = {h: left * weight[h] / mass for h in room}
        whole = {h: min(room[h], math.floor(s)) for h, s in shares.items()}
        if not any(whole.values()):  # the remainder: the largest fractional shares first
            for h in sorted(room, key=lambda k: (-(shares[k] - math.floor(shares[k])), k))[:left]:
                whole[h] = 1
        for h, k in whole.items():
            got[h] += k
        left -= sum(whole.values())
    return got


def draw(store: Store, spec: ModelSpec, n: int, *, seed: int = 0) -> Sample:
    """Draw ``n`` pairs to label from the store's latest link run (see the module docstring) and store the draw.

    Raises:
        InputError: ``n`` is not positive, or the store has no link run or no model yet.
    """
    from linkage import model

    if n < 1:
        raise InputError(f"a sample needs at least one pair: --n {n}")
    run = store.rows(
        "SELECT run_id FROM runs WHERE kind = 'link' AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1",
        table="runs",
    )
    artefact = model.stored_artefact(store)
    if not run or artefact is None:
        raise InputError("the store has no link run yet: run `linkage link --db PATH` before drawing a sample")
    floor, threshold = run_cuts(store)
    _population(store, spec, artefact, threshold, floor)
    found = store.rows(
        "SELECT stratum, count(*), avg(match_probability) FROM _population GROUP BY stratum", table="population"
    )
    sizes = {h: (0, None) for h in STRATA} | {h: (int(k), None if p is None else float(p)) for h, k, p in found}
    wanted = allocate(n, sizes)
    plan = pa.table({"stratum": list(wanted), "drawn": list(wanted.values())})
    with store.registered("_allocation", plan):
        drawn = store.df(
            """SELECT record_id_l, record_id_r, match_probability, stratum FROM _population JOIN _allocation
               USING (stratum)
               QUALIFY row_number() OVER (PARTITION BY stratum ORDER BY hash(record_id_l, record_id_r, $seed),
                                          record_id_l, record_id_r) <= drawn""",
            {"seed": seed},
            table="population",
        )
    strata = tuple(Stratum(h, sizes[h][0], wanted[h], sizes[h][1]) for h in STRATA)
    rate = {s.name: s.inclusion_probability for s in strata}
    drawn["inclusion_probability"] = drawn["stratum"].map(rate)
    drawn = drawn.sort_values(["stratum", "record_id_l", "record_id_r"], ignore_index=True)
    sample = Sample(f"S-{uuid.uuid4().hex[:12]}", str(run[0][0]), threshold, floor, seed, strata, drawn)
    _store(store, sample, n)
    log.info("sample of %d pairs in %d strata", len(drawn), sum(s.drawn > 0 for s in strata))
    return sample


def _population(store: Store, spec: ModelSpec, artefact: dict[str, Any], threshold: float, floor: float) -> None:
    """The TEMP table ``_population``: every pair in a drawn stratum, its probability and stratum."""
    store.sql(
        """CREATE OR REPLACE TEMP TABLE _within AS
           SELECT a.record_id AS record_id_l, b.record_id AS record_id_r
           FROM membership a JOIN membership b ON a.identity_id = b.identity_id AND a.record_id < b.record_id""",
        table="within",
    )
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE _stored AS
            SELECT p.record_id_l, p.record_id_r, p.match_probability FROM pairs p {LATEST_PAIR}""",
        table="pairs",
    )
    _broader(store, spec, artefact)
    store.sql(
        f"""CREATE OR REPLACE TEMP TABLE _population AS
           SELECT w.record_id_l, w.record_id_r, s.match_probability, {LINKED_STRATUM} AS stratum
           FROM _within w LEFT JOIN _stored s USING (record_id_l, record_id_r)
           UNION ALL
           SELECT s.record_id_l, s.record_id_r, s.match_probability, {UNLINKED_STRATUM}
           FROM _stored s ANTI JOIN _within w USING (record_id_l, record_id_r)
           UNION ALL
           SELECT b.record_id_l, b.record_id_r, b.match_probability,
                  CASE WHEN b.match_probability >= $floor THEN 'outside:scored' ELSE 'outside:check' END
           FROM _broader b ANTI JOIN _within w USING (record_id_l, record_id_r)
                           ANTI JOIN _stored s USING (record_id_l, record_id_r)""",
        {"threshold": threshold, "floor": floor},
        table="population",
    )


def _broader(store: Store, spec: ModelSpec, artefact: dict[str, Any]) -> None:
    """The TEMP table ``_broader``: every pair of the :data:`BROADER` rules, scored by the stored model as a
    link scores (term frequencies of the whole store; the veto applied)."""
    from linkage import model, prepare, score
    from linkage.engine import drop_scratch

    records = prepare.prepare_full(store, spec)
    linker = model.for_store(store, artefact, spec, records, incremental=False)
    for column in spec.tf_columns():
        linker.table_management.compute_tf_table(column)
    (sdf,) = linker._input_tables_dict.values()
    predictions = linker.inference.predict_within(
        sdf, blocking_rules_to_generate_predictions=list(BROADER), threshold_match_probability=0.0,
        warning_mode="never",
    )  # fmt: skip
    score._vetoed(store, predictions.physical_name, spec, 0.0)
    store.sql(
        """CREATE OR REPLACE TEMP TABLE _broader AS
           SELECT least(record_id_l, record_id_r) AS record_id_l, greatest(record_id_l, record_id_r) AS record_id_r,
                  match_probability FROM scored_pairs""",
        table="population",
    )
    drop_scratch(store)


def _store(store: Store, sample: Sample, requested: int) -> None:
    with store.transaction():
        store.sql(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [sample.sample_id, datetime.now(UTC), sample.run_id, sample.threshold, sample.review_floor, sample.seed,
             requested, json.dumps(sample.design())],
            table="samples",
        )  # fmt: skip
        frame = sample.pairs.assign(sample_id=sample.sample_id)[
            ["sample_id", "record_id_l", "record_id_r", "stratum", "inclusion_probability", "match_probability"]
        ]
        with store.registered("_drawn", pa.Table.from_pandas(frame, preserve_index=False)):
            store.sql("INSERT INTO sample_pairs SELECT * FROM _drawn", table="sample_pairs")


def write_csv(store: Store, sample: Sample, path: Path) -> int:
    """The sample as the CSV an analyst fills: ``record_id_l, record_id_r, match_probability, stratum,
    inclusion_probability, label`` (empty), then each of :data:`FIELDS` of both records side by side. Returns rows."""
    pairs = pa.Table.from_pandas(sample.pairs[["record_id_l", "record_id_r"]], preserve_index=False)
    sides = ", ".join(f"l.{quote(f)} AS {quote(f + '_l')}, r.{quote(f)} AS {quote(f + '_r')}" for f in FIELDS)
    with store.registered("_pairs", pairs):
        fields = store.df(
            f"""SELECT p.record_id_l, p.record_id_r, {sides} FROM _pairs p
                JOIN applications l ON l.record_id = p.record_id_l
                JOIN applications r ON r.record_id = p.record_id_r""",
            table="applications",
        )
    frame = sample.pairs.merge(fields, on=["record_id_l", "record_id_r"], how="left")
    frame.insert(list(frame.columns).index("inclusion_probability") + 1, "label", "")
    columns = ["record_id_l", "record_id_r", "match_probability", "stratum", "inclusion_probability", "label"]
    frame = frame[columns + [c for c in frame.columns if c not in columns]]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)
