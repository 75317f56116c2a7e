"""``linkage evaluate``: identity clusters measured against the truth, over a threshold sweep; or, with
``--labels``, estimated from analysts' labels of a sample (:mod:`linkage.estimate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from linkage.cli import JsonOption, _print_json, _shown, console, err
from linkage.store import Store


def evaluate_command(
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Truth: record_id, person_id (Parquet or CSV).")
    ] = None,
    clusters: Annotated[
        Path | None,
        typer.Option("--clusters", help="Clusters: record_id, identity_id (e.g. clusters.parquet of dedupe)."),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option("--labels", help="Estimate from the labels of the store's latest sample (with --db) instead."),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", metavar="P", help="With --labels: cluster at P (default: the store's identities)."),
    ] = None,
    sample: Annotated[
        str | None, typer.Option("--sample", help="With --labels: this sample (default: the latest).")
    ] = None,
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
        Path | None, typer.Option("--out", help="With --pairs: write pr_curve.html and sweep.csv here; with --labels: "
                     "labels_threshold.html and labels_pr.html (estimates at several thresholds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Measure identity clusters against the truth, and with --pairs over a threshold sweep.

    Pairwise and B-cubed precision/recall/F1; with --applications or --db, rejection traceability
    (later applications at another office that land with the person's refusal) and the false-flag rate
    (applications shown someone else's earlier refusal); with --relatives, false pairs between relatives
    and the share of relatives' record pairs merged, in all and per relation (twins, siblings).
    Definitions: linkage/evaluate.py.

    With --labels and --db, no truth is needed: pairwise precision, recall and F1 of the store's identities (or
    of the clusters at --threshold) are estimated from the labels of a sample (`linkage review sample`, then
    `linkage review import`), each with a 95 % interval that respects how the sample was drawn, and the share of
    linked office-shopping alerts that are false. Method and assumptions: linkage/estimate.py.
    """
    from linkage.evaluate import evaluate
    from linkage.measure import applications_from_store, load_table
    from linkage.sweep import sweep, write_report

    if labels:
        if truth is not None or clusters is not None or pairs is not None:
            raise typer.BadParameter("--labels estimates without a truth: leave out --truth, --clusters and --pairs",
                                     param_hint="'--labels'")  # fmt: skip
        if db is None:
            raise typer.BadParameter("--labels reads the labels from a store: give --db", param_hint="'--db'")
        _labelled(db, threshold, sample, as_json, out)
        return
    if truth is None or clusters is None:
        raise typer.BadParameter("give --truth and --clusters (or --labels with --db)", param_hint="'--truth'")
    if threshold is not None or sample is not None:
        raise typer.BadParameter("--threshold and --sample go with --labels", param_hint="'--threshold'")
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



def _labelled(db: Path, threshold: float | None, sample: str | None, as_json: bool, out: Path | None) -> None:
    """``evaluate --labels``: the estimates and their intervals, per stratum what was labelled; with ``out``, the
    threshold-selection and precision-recall charts written there too."""
    from linkage.estimate import estimate
    from linkage.label_charts import estimates_at, write_charts

    with Store(db) as store:
        found = estimate(store, threshold=threshold, sample_id=sample)
        if out is not None:
            written = write_charts(estimates_at(store, sample_id=found.sample_id), out)
            err.print(f"charts written: {', '.join(_shown(str(p)) for p in written)}")
    if as_json:
        _print_json(found.to_dict())
        return
    table = Table(title=f"Estimated from {found.labels:,} labels of sample {_shown(found.sample_id)} "
                        f"at threshold {found.threshold:g}")  # fmt: skip
    for column in ("figure", "estimate", "95 % interval"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    shown = [("pairwise precision", found.pairwise_precision), ("pairwise recall", found.pairwise_recall),
             ("pairwise F1", found.pairwise_f1), ("false linked alerts (share)", found.false_alerts)]  # fmt: skip
    for name, value in shown:
        if value is not None:
            table.add_row(name, f"{value.estimate:.4f}", f"{value.low:.4f} – {value.high:.4f}")
    console.print(table)
    strata = Table(title="Labels by stratum", show_edge=False)
    for column in ("stratum", "pairs", "drawn", "labelled", "matches", "inside clusters"):
        strata.add_column(column, justify="left" if column == "stratum" else "right")
    for s in found.strata:
        strata.add_row(s.stratum, f"{s.population:,}", f"{s.drawn:,}", f"{s.labelled:,}", f"{s.matches:,}",
                       f"{s.predicted:,}")  # fmt: skip
    console.print(strata)
    console.print(f"[dim]{_shown(found.method)}; unsure {found.unsure:,}, disputed {found.disputed:,}")
    if found.check_matches:
        err.print(f"[yellow]{found.check_matches} of {found.check_labelled} labelled pairs of the outside:check "
                  "slice are matches: recall is overstated (linkage/estimate.py, assumptions)")  # fmt: skip
    if found.stale:
        err.print("[yellow]the store was linked again after this sample was drawn: draw a new one")
