"""The officer's query: one applicant who is not stored, scored against the store, answered as candidate identities.

The applicant's fields (role names of :data:`linkage.schema.ROLES`) are normalised with the ingest rules
(:func:`linkage.normalise.normalise_batch`), put in the TEMP table ``query_rows`` and scored along the path of
an incremental link (:func:`linkage.prepare.prepare_incremental` with ``rows``, the store's model through
:func:`linkage.model.for_store`, :func:`linkage.score.predict_new`), so a query's probability of a pair is the
one a link of the same application would give it. Nothing is written to the store's tables: the TEMP tables
and Splink's scratch are dropped before the answer is returned. The threshold and the review floor are the
latest link run's (:func:`linkage.review.run_cuts`), the ones its alerts and links were drawn at.

Candidates are identities (``membership``), best pair first; each says why (the levels of its best pair),
shows the evidence comparison by comparison with both sides' values and their weights (a waterfall: the
prior plus every comparison's weight, and the veto's cap where it held, make the pair's weight), and the
identity's applications across offices in time order (:func:`linkage.history.history`). Only counts are
logged: never a name, a NIK or an id.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Final

from linkage import model, nik, prepare, score
from linkage.config import DatasetSettings
from linkage.engine import drop_scratch
from linkage.errors import InputError, Problem, did_you_mean
from linkage.history import history
from linkage.normalise import COLUMNS, normalise_batch
from linkage.review import run_cuts
from linkage.risk import indicators
from linkage.schema import REFUSALS, REQUIRED, ROLES
from linkage.spec import ComparisonSpec, ModelSpec, load_spec
from linkage.store import Store, quote
from linkage.tables import arrow_table
from linkage.warm import QUERY_RECORD_ID, Scorer

__all__ = ["QUERY_FIELDS", "QUERY_RECORD_ID", "query"]

log = logging.getLogger(__name__)

QUERY_FIELDS: Final[tuple[str, ...]] = tuple(
    r for r in ROLES if r not in ("record_id", "office", "application_date", "decision", "decision_reason")
)
"""The roles an applicant is described by: the person, not the application."""

# What the answer's ``query`` shows of the normalised row, by role.
_SHOWN: Final = {
    "full_name": "full_name_canonical",
    "sex": "sex",
    "birth_date": "birth_date",
    "birth_place": "birth_place",
    "nik": "nik_digits",
    "mother_name": "mother_name_canonical",
    "address": "address",
    "phone": "phone",
    "prior_passport_no": "prior_passport_no",
    "postcode": "postcode",
    "locality": "locality",
    "region": "region",
}
# How a comparison is named in a reason ("NIK exact, birth date exact, name: token dropped").
_TITLES: Final = {
    "name": "name",
    "nik": "NIK",
    "dob": "birth date",
    "mother": "mother's name",
    "birth_place": "birth place",
    "sex": "sex",
    "contact": "contact",
    "prior_passport": "prior passport",
    "patronym": "father's name",
}
_REASON_FIELDS: Final = 3  # comparisons of positive weight a reason names
_HELD: Final = "held: possibly a relative"
_SIDE_COLUMN: Final = re.compile(r"\bl\.(\w+)")


def query(
    store: Store,
    fields: Mapping[str, str | None],
    *,
    limit: int = 10,
    spec: ModelSpec | None = None,
    today: dt.date | None = None,
    dataset: DatasetSettings | None = None,
    scorer: Scorer | None = None,
) -> dict[str, Any]:
    """Score one applicant who is not stored against the store; the candidate identities, best first.

    Args:
        store: an open store that a link run has filled (it must be writable: Splink's scratch tables).
        fields: the applicant, by role name (``full_name`` required; see :data:`QUERY_FIELDS`), raw as typed.
        limit: the most candidate identities returned.
        spec: the model spec (default ``configs/model.toml``).
        today: the reference date of date checks (default: today).
        dataset: how values are read (``id_scheme``, ``name_rules``, ``phone_region``, ``earliest_date``).
        scorer: a warm scorer of this store (:class:`linkage.warm.Scorer`, the service's): the applicant is
            scored against its snapshot, in milliseconds; ``store`` may then be any cursor of the store's
            database. Without one, the applicant is scored along a link's own path (a second at 1M).

    Returns:
        ``query`` (the normalised fields), ``model_id``, ``threshold`` and ``review_floor`` (the latest link
        run's), ``prior_match_weight`` (the prior every waterfall starts from) and ``candidates``: each with
        ``identity_id``, ``match_probability`` and ``match_weight`` (its best pair's), ``level`` (``linked``
        or ``review``), ``reason``, ``record_id`` (the best pair's stored record), ``vetoed``,
        ``evidence`` (per comparison: ``comparison``, ``level``, ``match_weight``, ``query`` and ``record``,
        the values of the columns it reads), ``veto_weight`` (what the veto took off; 0 when it did not
        hold), ``indicators`` (the identity's risk indicators as of ``today``, :mod:`linkage.risk`) and
        ``applications`` (the identity's, in time order, refusals marked ``refused``).

    Raises:
        InputError: an unknown field, no name, a field that fails validation (each named), ``limit`` below 1,
            or a store without a model.
    """
    if limit < 1:
        raise InputError(f"limit must be at least 1, not {limit!r}")
    warnings: list[Problem] = []
    row = normalised_row(fields, today=today, dataset=dataset, warnings=warnings)
    if scorer is not None:
        state = scorer.state  # read once: a refresh swaps it whole meanwhile
        spec, model_id = scorer.spec, state.model_id
        floor, threshold, prior = state.floor, state.threshold, state.prior
        pairs, found = scorer.score(store, row, state)
        values = {k: {c: _plain(v) for c, v in r.items()} for k, r in found.items()}
        candidates = _candidates(pairs, spec, values, threshold, limit)
        scorer.applications(candidates, state, today)
    else:
        spec = spec or load_spec(None)
        artefact = model.stored_artefact(store)
        if artefact is None:
            raise InputError("the store has no model yet: run `linkage link --db PATH` first")
        model_id = str(artefact["model_id"])
        floor, threshold = run_cuts(store)
        pairs, values, prior = _score(store, row, spec, artefact, floor)
        candidates = _candidates(pairs, spec, values, threshold, limit)
        risks = indicators(store, [c["identity_id"] for c in candidates if c["identity_id"]], today=today)
        for candidate in candidates:
            candidate["indicators"] = [asdict(i) for i in risks.get(candidate["identity_id"] or "", [])]
            candidate["applications"] = _applications(store, candidate["identity_id"] or candidate["record_id"])
    log.info("query: %d pairs scored, %d identities returned", len(pairs), len(candidates))
    return {
        "query": {role: row[column] for role, column in _SHOWN.items() if row[column] is not None},
        "model_id": model_id,
        "threshold": threshold,
        "review_floor": floor,
        "prior_match_weight": math.log2(prior / (1 - prior)),
        "candidates": candidates,
        "warnings": [{"field": w.column, "problem": w.message} for w in warnings],
    }


def normalised_row(
    fields: Mapping[str, str | None],
    *,
    today: dt.date | None = None,
    dataset: DatasetSettings | None = None,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """The applicant's fields normalised with the ingest rules: one row of :data:`linkage.normalise.COLUMNS`.

    With a ``warnings`` list, a field that fails validation other than the birth date is read as ingest
    stores it (a malformed NIK keeps its digits for the NIK comparison's typo level; an invalid phone is
    missing) and its problem goes into the list: the officer still gets an answer, and is told. A birth date
    that cannot be one (31 February, in the future) is a typing slip to correct before any answer.

    Raises:
        InputError: an unknown field, no full name, or fields that fail validation (without ``warnings``:
            every one; with it: the birth date), every problem listed with its field.

    >>> normalised_row({"full_name": "Moch. Rizki", "phone": "tidak ada"})["full_name_canonical"]
    'MUHAMMAD RIZKI'
    >>> normalised_row({"full_name": "Moch. Rizki", "nik": "123"})
    Traceback (most recent call last):
    linkage.errors.InputError: the applicant's fields are not valid; correct them and query again
      - column 'nik': nik_length (value '123')
    """
    dataset = dataset or DatasetSettings()
    problems = [
        Problem(f"unknown field{did_you_mean(k, QUERY_FIELDS)}; one of {', '.join(QUERY_FIELDS)}", column=k)
        for k in fields
        if k not in QUERY_FIELDS
    ]
    # as ingest reads a cell: stripped, a blank one missing
    given = {k: (v.strip() or None if v else None) for k, v in fields.items() if k in QUERY_FIELDS}
    problems += [Problem("required, and missing", column=r) for r in sorted(REQUIRED & set(QUERY_FIELDS))
                 if given.get(r) is None]  # fmt: skip
    raw: dict[str, list[Any]] = {"record_id": [QUERY_RECORD_ID], **{k: [v] for k, v in given.items()}}
    out = normalise_batch(
        raw, id_scheme=dataset.id_scheme, name_rules=dataset.name_rules, phone_region=dataset.phone_region,
        today=today, earliest=dataset.earliest_date,
    )  # fmt: skip
    # A NIK of a district the current table lacks is valid (nik.WARNINGS): it keeps its first code. A
    # placeholder ("tidak ada", "-") is how a form says "none": the field is missing, as ingest reads it.
    found = [
        (field, value, reason)
        for _, field, value, reason in out.issues
        if reason not in nik.WARNINGS and not reason.endswith("_placeholder")
    ]
    if warnings is not None:  # the officer's own value is not repeated back: the field and what is wrong
        warnings += [Problem(reason, column=field) for field, _, reason in found if field != "birth_date"]
        found = [f for f in found if f[0] == "birth_date"]
    problems += [Problem(f"{reason} (value {value!r})", column=field) for field, value, reason in found]
    if problems:
        raise InputError("the applicant's fields are not valid; correct them and query again", problems=problems)
    return {name: values[0] for name, values in out.columns.items()}


def _score(
    store: Store, row: dict[str, Any], spec: ModelSpec, artefact: dict[str, Any], floor: float
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], float]:
    """Score the normalised ``row`` against the store as a link of it would: its pairs at or above ``floor``
    (best first, the stored record as ``record_id``), the model-input values of the records in them, and λ."""
    try:
        with store.registered("_query_row", arrow_table({k: [v] for k, v in row.items()}, COLUMNS)):
            store.sql("CREATE OR REPLACE TEMP TABLE query_rows AS SELECT * FROM _query_row", table="query_rows")
        _, found = prepare.prepare_incremental(store, spec, rows="query_rows")
        # λ as a link of this application would set it (linkage.engine): the stored records and this one
        records = int(store.scalar("SELECT count(*) FROM applications_normalised")) + 1
        linker = model.for_store(store, artefact, spec, records, incremental=True)
        prior = float(linker._settings_obj._probability_two_random_records_match)
        score.predict_new(store, linker, spec, floor)
        pairs = _pairs(store)
        values = _values(store, spec)
    finally:
        _drop(store, spec)
    log.info("query: %d stored candidates blocked", found)
    return pairs, values, prior


def _pairs(store: Store) -> list[dict[str, Any]]:
    """The scored pairs of the query, the stored record as ``record_id``, best first."""
    frame = store.df(
        """SELECT CASE WHEN record_id_l = $q THEN record_id_r ELSE record_id_l END AS record_id, s.*,
                  m.identity_id
           FROM scored_pairs s
           LEFT JOIN membership m ON m.record_id = CASE WHEN record_id_l = $q THEN record_id_r ELSE record_id_l END
           WHERE $q IN (record_id_l, record_id_r)
           ORDER BY match_probability DESC, match_weight DESC, record_id""",
        {"q": QUERY_RECORD_ID},
        table="query",
    )
    return [{str(k): (None if _missing(v) else v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _values(store: Store, spec: ModelSpec) -> dict[str, dict[str, Any]]:
    """Each model-input row of the query's pairs (the query and its candidates): the columns comparisons read."""
    existing = set(store.columns("model_input"))
    columns = [c for c in dict.fromkeys(c for comp in spec.comparison for c in _inputs(comp)) if c in existing]
    wanted = ", ".join(quote(c) for c in columns)  # model-input columns, checked against its catalogue
    found: dict[str, dict[str, Any]] = {}
    for row in store.df(
        f"""SELECT record_id, {wanted} FROM model_input
            WHERE record_id IN (SELECT record_id_l FROM scored_pairs UNION SELECT record_id_r FROM scored_pairs)""",
        table="query",
    ).to_dict(orient="records"):
        found[str(row.pop("record_id"))] = {str(k): _plain(v) for k, v in row.items()}
    return found


def _inputs(comparison: ComparisonSpec) -> list[str]:
    """The model-input columns a comparison's levels read, in order of first use."""
    return list(dict.fromkeys(c for level in comparison.levels for c in _SIDE_COLUMN.findall(level.sql or "")))


def _plain(value: Any) -> Any:
    """A value as JSON shows it: lists as lists, dates as ISO text, missing as ``None``."""
    if value is None or _missing(value):
        return None
    if hasattr(value, "tolist"):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()[:10]
    if hasattr(value, "item"):
        return value.item()
    return value


def _levels(comparison: ComparisonSpec) -> dict[int, str]:
    """A comparison's levels by Splink's gamma value: the null level -1, then the others counting down to 0."""
    ranked = [level for level in comparison.levels if not level.null]
    labels = {len(ranked) - 1 - i: level.label for i, level in enumerate(ranked)}
    for level in comparison.levels:
        if level.null:
            labels[-1] = level.label
    return labels


def _evidence(pair: dict[str, Any], spec: ModelSpec, values: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per comparison of the spec: its level, its weight (term frequency counted in), both sides."""
    mine, theirs = values.get(QUERY_RECORD_ID, {}), values.get(pair["record_id"], {})
    entries = []
    for comp in spec.comparison:
        gamma = pair.get(f"gamma_{comp.name}")
        weight = float(pair.get(f"mw_{comp.name}") or 0.0) + float(pair.get(f"mw_tf_adj_{comp.name}") or 0.0)
        columns = _inputs(comp)
        entries.append(
            {
                "comparison": comp.name,
                "level": _levels(comp).get(int(gamma), str(gamma)) if gamma is not None else None,
                "match_weight": weight,
                "query": {c: mine.get(c) for c in columns},
                "record": {c: theirs.get(c) for c in columns},
            }
        )
    return entries


def _reason(evidence: list[dict[str, Any]], held: bool) -> str:
    """The best pair in plain words: the comparisons that weighed most for it, or that the veto held it."""
    if held:
        return _HELD
    agreeing = sorted((e for e in evidence if e["match_weight"] > 0), key=lambda e: (-e["match_weight"],
                                                                                     e["comparison"]))  # fmt: skip
    words = []
    for e in agreeing[:_REASON_FIELDS]:
        title = _TITLES.get(e["comparison"], e["comparison"])
        words.append(f"{title} {e['level']}" if e["level"] in ("exact", "same") else f"{title}: {e['level']}")
    return ", ".join(words) or "no comparison agrees"


def _candidates(
    pairs: list[dict[str, Any]], spec: ModelSpec, values: dict[str, dict[str, Any]], threshold: float, limit: int
) -> list[dict[str, Any]]:
    """The identities of the pairs (a stored record no run linked stands alone), each by its best pair."""
    best: dict[str, dict[str, Any]] = {}
    for pair in pairs:  # best first: the first pair of an identity is its best
        best.setdefault(pair["identity_id"] or f"record:{pair['record_id']}", pair)
    found = []
    for pair in list(best.values())[:limit]:
        evidence = _evidence(pair, spec, values)
        model_weight, weight = float(pair["model_match_weight"]), float(pair["match_weight"])
        held = bool(pair["vetoed"]) and model_weight > weight  # as review alerts read it (linkage.review)
        probability = float(pair["match_probability"])
        found.append(
            {
                "identity_id": pair["identity_id"],
                "match_probability": probability,
                "match_weight": weight,
                "level": "linked" if probability >= threshold and not held else "review",
                "reason": _reason(evidence, held),
                "record_id": pair["record_id"],
                "vetoed": held,
                "evidence": evidence,
                "veto_weight": weight - model_weight,
            }
        )
    return found


def _applications(store: Store, key: str) -> list[dict[str, Any]]:
    """An identity's applications across offices in time order (:func:`linkage.history.history`), refusals marked."""
    return [
        {
            "record_id": a["record_id"],
            "office": a["office"],
            "application_date": _plain(a["application_date"]),
            "decision": a["decision"],
            "decision_reason": a["decision_reason"],
            "refused": a["decision"] in REFUSALS,
        }
        for a in history(store, key)["applications"]
    ]


_TEMP: Final = ("query_rows", "pending_rows", "pending_counts", "pending_input", "candidates", "subset_rows",
                "link_counts", "link_totals", "model_input", "scored_pairs")  # fmt: skip


def _drop(store: Store, spec: ModelSpec) -> None:
    """Drop the query's TEMP tables and Splink's scratch: the store is left as it was."""
    tf = [f"tf_{c}" for c in spec.tf_columns()]
    for table in (*_TEMP, *tf):
        store.sql(f"DROP TABLE IF EXISTS temp.{quote(table)}", table=table)
    drop_scratch(store)
