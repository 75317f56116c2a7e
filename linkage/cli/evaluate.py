"""``linkage evaluate``: identity clusters measured against the truth, over a threshold sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from linkage.cli import JsonOption, _print_json, _shown, console
from linkage.store import Store


def evaluate_command(
    truth: Annotated[Path, typer.Option("--truth", help="Truth: record_id, person_id (Parquet or CSV).")],
    clusters: Annotated[
        Path, typer.Option("--clusters", help="Clusters: record_id, identity_id (e.g. clusters.parquet of dedupe).")
    ],
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="Scored pairs (record_id_l, record_id_r, match_probability): sweep thresholds."),
    ] = None,
    applications: Annotated[
        Path | None,
        typer.Option("--applications", help="Applications with office, application_date, decision (Parquet or CSV)."),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Read office, date and decision from this store instead.")
    ] = None,
    relatives: Annotated[
        Path | None, typer.Option("--relatives", help="Relative person pairs: person_id_a, person_id_b.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="With --pairs: write pr_curve.html and sweep.csv here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Measure identity clusters against the truth, and with --pairs over a threshold sweep.

    Pairwise and B-cubed precision/recall/F1; with --applications or --db, rejection traceability
    (later applications at another office that land with the person's refusal) and the false-flag rate
    (applications shown someone else's earlier refusal); with --relatives, false pairs between relatives
    and the share of relatives' record pairs merged, in all and per relation (twins, siblings).
    Definitions: linkage/evaluate.py.
    """
    from linkage.evaluate import evaluate
    from linkage.measure import applications_from_store, load_table
    from linkage.sweep import sweep, write_report

    if applications is not None and db is not None:
        raise typer.BadParameter("give one of --applications and --db", param_hint="'--applications' / '--db'")
    if out is not None and pairs is None:
        raise typer.BadParameter("the sweep written to --out needs --pairs", param_hint="'--out'")
    truth_table, cluster_table = load_table(truth), load_table(clusters)
    apps = load_table(applications) if applications is not None else None
    if db is not None:
        with Store(db, read_only=True) as store:
            apps = applications_from_store(store)
    kin = load_table(relatives) if relatives is not None else None
    metrics = evaluate(cluster_table, truth_table, apps, kin)
    swept = None
    if pairs is not None:
        swept = sweep(load_table(pairs), truth_table, cluster_table, applications=apps, relatives=kin)
    if swept is not None and out is not None:
        write_report(swept, out)
    if as_json:
        rows = None if swept is None else swept.astype(object).where(swept.notna(), None).to_dict(orient="records")
        _print_json({"metrics": metrics.to_dict(), "sweep": rows})
        return
    table = Table(title=f"Evaluation of {_shown(clusters.name)} against {_shown(truth.name)}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in metrics.summary():
        table.add_row(_shown(name), _shown(value))
    console.print(table)
    if swept is None:
        return
    from rich import box

    sweep_table = Table(
        title="Threshold sweep: components of the pairs at or above it",
        box=box.SIMPLE,
        padding=(0, 0, 0, 2),
        pad_edge=False,
    )
    shown = {"threshold": "≥ p", "links": "links", "identities": "ids", "pairwise_precision": "P",
             "pairwise_recall": "R", "pairwise_f1": "F1", "bcubed_f1": "B³ F1", "traceability": "traced",
             "false_flag_rate": "flagged", "relative_merge_rate": "kin merged"}  # fmt: skip
    if metrics.applications is None:
        del shown["traceability"], shown["false_flag_rate"]
    if metrics.relative_pairs is None:
        del shown["relative_merge_rate"]
    for header in shown.values():
        sweep_table.add_column(header, justify="right", no_wrap=True)
    for row in swept.to_dict(orient="records"):
        cells = [_sweep_cell(key, row[key]) for key in shown]
        sweep_table.add_row(*cells)
    console.print(sweep_table)
    if out is not None:
        console.print(f"[dim]wrote {_shown(out / 'pr_curve.html')} and {_shown(out / 'sweep.csv')}")


def _sweep_cell(key: str, value: Any) -> str:
    if value is None or value != value:  # None or NaN: not computed
        return "–"
    if key in ("links", "identities"):
        return f"{int(value):,}"
    if key == "threshold":
        return f"{value:g}"
    return f"{100 * value:.3f}%" if key in ("false_flag_rate", "relative_merge_rate") else f"{value:.4f}"

