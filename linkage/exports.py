"""Files for people: the office-shopping report (HTML that opens offline, or CSV) and the identity export.

The CSV files written here are opened in spreadsheets, which run a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula (CSV injection). Such a text cell is written with a
leading apostrophe, the OWASP rule, which spreadsheets show as text; numbers are written as they are.
Parquet keeps every value exactly. No path or value is formatted into SQL: rows are read through bound
queries and written with pyarrow or pandas.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pandas as pd
import pyarrow as pa

from linkage.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from linkage.store import Store

__all__ = ["EXPORT_FORMATS", "REPORT_FORMATS", "export", "write_report"]

log = logging.getLogger(__name__)

EXPORT_FORMATS: Final = (".parquet", ".csv")
REPORT_FORMATS: Final = (".html", ".csv")


def write_report(table: pd.DataFrame, out: Path) -> Path:
    """Write the :func:`office_shopping` table as ``.csv``, or as an ``.html`` page that opens offline.

    The page holds a stacked bar chart of alerts by month, coloured by office (Vega-Lite), and the table.

    Args:
        table: the rows of :func:`office_shopping`.
        out: the file to write; its folder is created.

    Returns:
        ``out``.

    Raises:
        InputError: ``out`` ends in neither ``.html`` nor ``.csv``.

    >>> import tempfile
    >>> rows = pd.DataFrame({"month": ["2024-03"], "office": ["Metro"], "alerts": [2], "applications": [1],
    ...                      "identities": [1]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_report(rows, Path(tmp) / "shopping.csv").read_text().splitlines()
    ['month,office,alerts,applications,identities', '2024-03,Metro,2,1,1']
    """
    suffix = _suffix(out, REPORT_FORMATS, "report")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(pa.Table.from_pandas(table, preserve_index=False), out)
    else:
        out.write_text(_page(table), encoding="utf-8")
    return out


def _page(table: pd.DataFrame) -> str:
    import altair as alt

    from linkage.charts import page

    chart = (
        alt.Chart(table, title="Applications after a refusal at another office, by month")
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="month of the application"),
            y=alt.Y("sum(alerts):Q", title="alerts (application, earlier refusal elsewhere)", stack="zero"),
            color=alt.Color("office:N", title="office of the application"),
            tooltip=["month:O", "office:N", "alerts:Q", "applications:Q", "identities:Q", "review_alerts:Q"],
        )
        .properties(width=640, height=320)
    )
    body = (
        "<p>An alert is an application whose identity holds a refusal lodged on an earlier day at another "
        "office (definitions: linkage/alerts.py); the chart counts these linked alerts. A review alert, counted "
        "apart (<code>review_alerts</code>, <code>review_applications</code>), is a refused person's record "
        "that a scored pair joins to the application without linking them: a possible match for an officer "
        "to look at. Counts only; the applications are listed by <code>linkage alerts</code>.</p>"
        + table.to_html(index=False, border=0, escape=True)
    )
    return page("linkage: office shopping", body, [chart.to_dict()])


def export(store: Store, out: Path) -> int:
    """Write ``record_id, identity_id, no_identity_evidence`` of every stored record, in record-id order.

    A record that no link run has placed yet has an empty identity_id; one without identity evidence (a
    name and nothing else) is flagged, and is its own identity unless an officer joined it.

    Args:
        store: an open store (read-only will do).
        out: ``.parquet`` or ``.csv`` file to write; its folder is created.

    Returns:
        The number of records written.

    Raises:
        InputError: ``out`` ends in neither ``.parquet`` nor ``.csv``.

    >>> import tempfile
    >>> from linkage.store import Store
    >>> with Store(":memory:") as store, tempfile.TemporaryDirectory() as tmp:
    ...     export(store, Path(tmp) / "identities.csv")
    0
    """
    suffix = _suffix(out, EXPORT_FORMATS, "export")
    rows = store.arrow(
        """SELECT n.record_id, m.identity_id, coalesce(n.no_identity_evidence, false) AS no_identity_evidence
           FROM applications_normalised n LEFT JOIN membership m ON m.record_id = n.record_id
           ORDER BY n.record_id""",
        table="export",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(rows, out)
    else:
        _write_csv(rows, out)
    log.info("export: %d records", rows.num_rows)
    return int(rows.num_rows)


_FORMULA: Final = r"^[=+\-@\t\r]"
"""What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection")."""


def _write_csv(table: pa.Table, out: Path) -> None:
    r"""Write ``table`` as CSV, each text cell a spreadsheet would run as a formula behind an apostrophe.

    >>> import tempfile
    >>> rows = pa.table({"id": ["=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(A1)", "\tx", "Metro", None], "n": range(7)})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _write_csv(rows, Path(tmp) / "x.csv")
    ...     (Path(tmp) / "x.csv").read_text().splitlines()
    ['id,n', "'=1+1,0", "'+cmd|' /C calc'!A0,1", "'-2,2", "'@SUM(A1),3", "'\tx,4", 'Metro,5', ',6']
    """
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            formula = pc.match_substring_regex(column, _FORMULA)
            column = pc.if_else(formula, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    # pandas writes text unquoted unless it must (Arrow's writer quotes every text cell), nulls as empty
    pa.table(columns, names=table.column_names).to_pandas().to_csv(out, index=False)


def _suffix(out: Path, allowed: Sequence[str], what: str) -> str:
    suffix = out.suffix.lower()
    if suffix not in allowed:
        shown = repr(suffix) if suffix else "no suffix"
        raise InputError(
            f"{out}: cannot write the {what} as {shown}{did_you_mean(suffix, allowed)}; use " + " or ".join(allowed)
        )
    return suffix
