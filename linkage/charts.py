"""Charts and HTML pages that open offline: the dedupe report and the model's charts.

Vega, Vega-Lite and vega-embed come from the copies bundled with Splink, so a page needs no network.
Charts carry counts and match weights only: no personal data.
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["chart_libraries", "identities_by_size", "model_charts", "page", "write_dedupe_report"]


def chart_libraries() -> list[str]:
    """Vega, Vega-Lite and vega-embed as bundled with Splink: a page opens with no network."""
    from splink.internals.html_utils import load_chart_libraries

    libraries = load_chart_libraries()  # type: ignore[no-untyped-call]
    return [libraries[name] for name in ("vega", "vega-lite", "vega-embed")]


def page(title: str, body: str, specs: Sequence[Mapping[str, Any]]) -> str:
    """An HTML page with ``body`` (already escaped HTML) and one embedded Vega-Lite chart per spec.

    A spec is JSON inside a script: ``</`` is escaped so no value can close the script element.
    """
    divs = "".join(f'<div id="chart{i}"></div>' for i in range(len(specs)))
    calls = "".join(f"vegaEmbed('#chart{i}', {_script_json(spec)});" for i, spec in enumerate(specs))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        + "".join(f"<script>{source}</script>" for source in chart_libraries())
        + f"</head><body><h1>{html.escape(title)}</h1>{body}{divs}<script>{calls}</script></body></html>"
    )


def _script_json(spec: Mapping[str, Any]) -> str:
    """A chart spec as JSON that is safe inside a script element (no ``</`` to end it early)."""
    return json.dumps(spec, default=str).replace("</", "<\\/")


def model_charts(linker: Any, folder: Path) -> None:
    """Splink's match-weights and m/u charts of the trained parameters, as HTML files in ``folder``."""
    with warnings.catch_warnings():
        # altair notes that Splink's charts repeat a selection parameter; harmless, and not the user's to fix
        warnings.simplefilter("ignore", UserWarning)
        linker.visualisations.match_weights_chart().save(str(folder / "match_weights.html"))
        linker.visualisations.m_u_parameters_chart().save(str(folder / "m_u_parameters.html"))


def identities_by_size(sizes: pd.Series) -> pd.Series:
    """Identities per size, from each record's ``cluster_size`` (a string group-by takes seconds at 1M)."""
    records = sizes.value_counts().sort_index()
    return (records // records.index).astype("int64")


def write_dedupe_report(
    path: Path, weights: pd.DataFrame, sizes: pd.Series, model_chart: Mapping[str, Any], waterfall: Any,
    threshold: float, figures: Mapping[str, Any],
) -> None:  # fmt: skip
    """One HTML page: figures, cluster sizes, match-weight distribution, the model's weights, borderline pairs.

    ``weights`` holds ``weight, pairs`` (pairs binned by whole bits: a chart of every pair would embed them
    all in the page); the borderline pairs' waterfall is drawn without values (Splink's
    ``remove_sensitive_data``), so the report holds no personal data.
    """
    import altair as alt

    by_size = identities_by_size(sizes).rename_axis("size").reset_index(name="identities")
    size_axis = alt.Y("identities:Q", scale=alt.Scale(type="symlog"))  # singletons dwarf the rest
    size_chart = (
        alt.Chart(by_size, title="Identities by number of applications")
        .mark_bar()
        .encode(x=alt.X("size:O", title="applications in the identity"), y=size_axis)
    )
    weight_chart = (
        alt.Chart(weights, title=f"Match weights of scored pairs (threshold p = {threshold})")
        .mark_bar()
        .encode(x=alt.X("weight:Q", title="match weight (bits)"), y="pairs:Q")
    )
    # Splink's chart specs as they are: through altair they were validated again (3 s of a 5 s report)
    specs = [size_chart.to_dict(), weight_chart.to_dict(), model_chart]
    if waterfall is not None:
        specs.append(waterfall.chart_dict)
    items = "".join(
        f"<li>{html.escape(k.replace('_', ' '))}: {html.escape(str(v))}</li>" for k, v in figures.items()
    )
    body = (
        f"<ul>{items}</ul>"
        "<p>Borderline pairs (nearest the threshold) are drawn with match weights only, no personal data.</p>"
    )
    path.write_text(page("linkage dedupe", body, specs), encoding="utf-8")
