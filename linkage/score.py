"""The ``score`` stage: Splink scores the blocked pairs of ``model_input``; the veto caps the relatives' pairs.

Writes the TEMP table ``scored_pairs``: ``record_id_l, record_id_r, match_probability, match_weight``, the
model's own weight before the veto (``model_match_weight``), ``vetoed``, and each comparison's level
(``gamma_*``) and weight (``mw_*``), for the pairs at or above the review floor.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

from linkage.block import blocking_rules
from linkage.spec import ModelSpec
from linkage.store import Store, quote

__all__ = ["predict", "predict_new", "waterfalls"]


def predict(store: Store, linker: Any, spec: ModelSpec, floor: float) -> tuple[int, str]:
    """Score the blocked pairs into the TEMP table ``scored_pairs``, veto applied; keep those at or above ``floor``.

    ``scored_pairs`` holds ``record_id_l, record_id_r, match_probability, match_weight``, the model's
    own weight before the veto (``model_match_weight``), ``vetoed``, and each comparison's level
    (``gamma_*``) and weight (``mw_*``).

    Returns:
        The number of pairs kept, and the name of Splink's own predictions table (for waterfall charts).
    """
    for column in spec.tf_columns():
        linker.table_management.compute_tf_table(column)
    # Score everything the veto could push below the floor, then filter after the veto.
    predictions = linker.inference.predict(threshold_match_probability=floor, **chunks(store, spec))
    return _vetoed(store, predictions.physical_name, spec, floor), predictions.physical_name


CHUNK_RECORDS: Final = 1_000_000
"""Records on the right side of one chunk of a full prediction without a cap. Splink joins each blocked pair to
both records' model input: at 10M records in one piece that held tens of GB of wide rows at once and spilled
them; in chunks of a million records (by a hash of the record's id, each pair in exactly one chunk) one chunk's
pairs do."""

CHUNK_PAIRS: Final = 32_000_000
"""Kept pairs in one chunk of a full prediction with a cap (``max_candidates``). A chunk is not free: Splink makes
each chunk's pairs by unnesting every record's keys and joining them again, and only then keeps the chunk's
share. With the cap the pairs are few enough to score at once: at 3M records (7.3M kept pairs) the score stage
took 72 s in one chunk and 119 s in three (``configs/national.toml``, the same store and model); at 10M (30.6M
kept pairs) 347 s in one and 883 s in ten, within DuckDB's memory limit (docs/scale.md, section 2)."""


def chunks(store: Store, spec: ModelSpec) -> dict[str, int]:
    """Splink's ``predict`` chunking for the store's ``model_input``: none up to one chunk's worth.

    A run whose spec caps its candidates is chunked by its kept pairs (:data:`CHUNK_PAIRS`), others by their
    records (:data:`CHUNK_RECORDS`).
    """
    if spec.max_candidates is not None:
        pairs = store.scalar("SELECT coalesce(sum(len(pair_keys)), 0) // 2 FROM model_input", table="model_input")
        parts = -(-int(pairs) // CHUNK_PAIRS)
    else:
        records = int(store.scalar("SELECT count(*) FROM model_input", table="model_input"))
        parts = -(-records // CHUNK_RECORDS)
    return {"num_chunks_left": 1, "num_chunks_right": parts} if parts > 1 else {}


def predict_new(store: Store, linker: Any, spec: ModelSpec, floor: float) -> int:
    """Score into ``scored_pairs`` only the blocked pairs of ``model_input`` with a record whose ``is_new`` holds.

    ``model_input`` holds the new records and every stored record a blocking rule pairs them with; the
    term frequencies must be registered (``register_term_frequency_lookup``): counted over the store,
    not over these records. The same rules as :func:`predict`, each also requiring a new record: the
    pairs are those a prediction over the whole store would find with a new record, and no others.
    """
    rules: list[Any] = []
    for rule in blocking_rules(spec):
        if isinstance(rule, dict):
            rules.append({**rule, "blocking_rule": f"({rule['blocking_rule']}) AND (l.is_new OR r.is_new)"})
        else:
            rules.append(f"({rule}) AND (l.is_new OR r.is_new)")
    (sdf,) = linker._input_tables_dict.values()  # the registered model_input
    predictions = linker.inference.predict_within(
        sdf, blocking_rules_to_generate_predictions=rules, threshold_match_probability=floor, warning_mode="never"
    )
    return _vetoed(store, predictions.physical_name, spec, floor)


def _vetoed(store: Store, table: str, spec: ModelSpec, floor: float) -> int:
    """``scored_pairs`` from Splink's predictions ``table``: the veto applied, pairs below ``floor`` left out.

    The veto's condition is a spec fragment, parsed and checked (:mod:`linkage.spec`) before it gets here;
    the cap and the floor are bound values.
    """
    veto = f"({spec.veto.sql})" if spec.veto else "FALSE"
    levels = ", ".join(quote(c) for c in store.columns(table) if c.startswith(("gamma_", "mw_")))
    store.sql(
        f"""
        CREATE OR REPLACE TEMP TABLE scored_pairs AS
        WITH adjusted AS (
            SELECT *, {veto} AS vetoed,
                   CASE WHEN {veto} THEN least(match_weight, $cap) ELSE match_weight END AS adjusted_weight
            FROM {quote(table)}
        )
        SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
               1 / (1 + pow(2, -adjusted_weight)) AS match_probability,
               adjusted_weight AS match_weight,
               match_weight AS model_match_weight,
               vetoed, {levels}
        FROM adjusted
        JOIN model_input AS l ON l.unique_id = adjusted.unique_id_l
        JOIN model_input AS r ON r.unique_id = adjusted.unique_id_r
        WHERE 1 / (1 + pow(2, -adjusted_weight)) >= $floor
        ORDER BY record_id_l, record_id_r
        """,
        {"cap": spec.veto_cap(), "floor": float(floor)},
        table="scored_pairs",
    )
    return int(store.scalar("SELECT count(*) FROM scored_pairs", table="scored_pairs"))


def waterfalls(store: Store, linker: Any, table: str, pairs: list[tuple[str, str]]) -> Any:
    """Splink's waterfall chart of the given pairs, match weights only (no personal data in the chart).

    The pairs' record ids are bound values (an Arrow table joined in), never SQL text.
    """
    if not pairs:
        return None
    wanted = pa.table({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}, schema=_PAIR_IDS)
    with store.registered("_waterfall_pairs", wanted):
        frame = store.df(
            f"""SELECT p.* FROM {quote(table)} AS p JOIN model_input AS l ON l.unique_id = p.unique_id_l
                JOIN model_input AS r ON r.unique_id = p.unique_id_r
                JOIN _waterfall_pairs w ON w.a = l.record_id AND w.b = r.record_id
                ORDER BY l.record_id, r.record_id""",
            table="waterfalls",
        )
    records = frame.to_dict(orient="records")
    return linker.visualisations.waterfall_chart(records, filter_nulls=False, remove_sensitive_data=True)


_PAIR_IDS: Final = pa.schema([("a", pa.string()), ("b", pa.string())])
