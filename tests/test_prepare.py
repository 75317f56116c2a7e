"""The model input in Python (:func:`linkage.prepare.model_input_row`) against the SQL a link runs.

The warm scorer builds the model input of an applicant and its candidates in Python; a link builds it with
:func:`linkage.prepare.model_input_sql`. The two must agree column for column, or a query would score a
pair differently from a link: checked on every application of the bundled sample (20,000, with its
mistyped NIKs, missing fields, initials and bare records) and on rows made to hit the edge cases.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

from linkage.config import load_config
from linkage.normalise import COLUMNS
from linkage.pipeline import ingest
from linkage.prepare import HASHED, model_input_row, model_input_sql
from linkage.store import Store
from linkage.tables import arrow_table

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"
LEFT_OUT = {"unique_id", *(f"{c}_hash" for c in HASHED)}


def _compare(store: Store, table: str) -> int:
    """Compare the two on every row of the normalised ``table``; return the rows compared."""
    rows = store.arrow(f"SELECT * FROM {table} ORDER BY record_id").to_pylist()
    counted = Counter(t for r in rows for t in r["full_name_tokens"] or [])
    expected = store.arrow(f"SELECT * FROM ({model_input_sql(table)}) ORDER BY record_id").to_pylist()
    assert len(expected) == len(rows)
    for row, want in zip(rows, expected, strict=True):
        got = model_input_row(row, counted.__getitem__)
        assert set(got) == set(want) - LEFT_OUT
        wrong = {c: (got[c], want[c]) for c in got if got[c] != want[c] or type(got[c]) is not type(want[c])}
        assert not wrong, (row["record_id"], wrong)
    return len(rows)


def test_the_python_model_input_is_the_sql_one_on_the_whole_sample(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    ingest([SAMPLE], load_config(None), db=db)
    with Store(db) as store:
        assert _compare(store, "applications_normalised") == 20000


def _row(record_id: str, **values: Any) -> dict[str, Any]:
    return {name: values.get(name) for name, _ in COLUMNS} | {"record_id": record_id}


EDGES = [
    _row("a"),  # nothing but an id: every derived column null
    _row("b", full_name_keys=[], full_name_tokens=[], mother_name_keys=[]),  # empty names
    _row("c", full_name_keys=["M"], full_name_tokens=["M"], full_name_key="M", full_name_canonical="M"),
    _row("d", full_name_keys=["", "JOKO", "A"], full_name_tokens=["", "JOKO", "A"], nik_digits="12",
         nik_dob_agrees=False, address="7A JALAN 7B X"),
    _row("e", birth_date=dt.date(999, 3, 4), nik_digits="1871014508900001", nik="1871014508900001",
         nik_dob_agrees=True, nik_sex_agrees=None, address="12 ", sex=None, nik_sex="F"),
    _row("f", nik_birth_date=dt.date(1990, 12, 1), nik_digits="187101450890", nik_sex_agrees=False,
         full_name_keys=["SITI", "ZULAIKA"], full_name_tokens=["SITI", "ZULAIKHA"], address="JALAN 5 "),
]  # fmt: skip


def test_the_python_model_input_is_the_sql_one_on_edge_cases() -> None:
    with Store(":memory:") as store, store.registered("edges", arrow_table(
            {name: [r[name] for r in EDGES] for name, _ in COLUMNS}, COLUMNS)):  # fmt: skip
        assert _compare(store, "edges") == len(EDGES)
