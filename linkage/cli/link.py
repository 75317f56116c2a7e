"""``linkage train``, ``dedupe``, ``link`` and ``decide``: the runs that decide links, and officers' decisions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from linkage.cli import (
    ConfigOption,
    DbOption,
    EngineOption,
    JsonOption,
    SpecOption,
    ThresholdOption,
    _config,
    _print_interrupted,
    _print_json,
    _print_summary,
    _shown,
    _spinner,
    console,
    err,
)
from linkage.decide import MAX_OFFICER_CHARS, MAX_REASON_CHARS
from linkage.labelled import MIN_LABELS

if TYPE_CHECKING:
    from linkage.dedupe import Trained


def train_command(
    files: Annotated[list[Path], typer.Argument(help="Application files to train on (no labels needed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write, e.g. model.json.")],
    config: ConfigOption = None,
    spec: SpecOption = None,
    labels: Annotated[
        bool,
        typer.Option("--labels", help="Then take each comparison's m from the labelled pairs of the store --db."),
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="With --labels: the store whose labels (`linkage review import`) to read."),
    ] = None,
    min_labels: Annotated[
        int,
        typer.Option("--min-labels", min=1, help="With --labels: labelled matches a comparison needs."),
    ] = MIN_LABELS,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the matching model without labels (λ, u counted and sampled, m by EM) and save it with its provenance.

    The model file records the data fingerprint, config hash, linkage and Splink versions and a
    timestamp; `linkage dedupe --model FILE` then predicts without retraining. Charts of the trained
    parameters are written beside it.

    With --labels and --db, each comparison then takes m from the store's labelled matches where it has at
    least --min-labels of them: m = (matches at the level + 1/2) / (matches + levels/2), levels whose m the spec
    fixes kept; the other comparisons keep EM's m, and the table says which and why. Levels are read from the
    labelled pairs' stored pairs: a labelled pair without one (the outside slice) is skipped and counted. The
    model's provenance names the comparisons that took m from the labels.
    """
    from linkage.dedupe import train_files, train_with_labels

    if not labels and (db is not None or min_labels != MIN_LABELS):
        raise typer.BadParameter("--db and --min-labels go with --labels", param_hint="'--db'")
    if labels and db is None:
        raise typer.BadParameter("--labels reads the labels from a store: give --db", param_hint="'--db'")
    settings = _config(config, engine=engine)
    with _spinner("training"):
        if db is not None:
            trained = train_with_labels(files, settings, out, db=db, min_labels=min_labels, spec_path=spec)
            model_id, charts = trained.model_id, Path(trained.charts)
        else:
            model_id, charts = train_files(files, settings, out, spec_path=spec)
    if as_json:
        extra = trained.to_dict() if db is not None else {"model_id": model_id, "out": str(out), "charts": str(charts)}
        _print_json(extra)
        return
    if db is not None:
        _print_m_sources(trained)
    console.print(f"model {_shown(model_id)} written to {_shown(out)}; charts in {_shown(charts)}")


def _print_m_sources(trained: Trained) -> None:
    """Per comparison: its labelled matches and where its m came from (the labels, or EM and why)."""
    title = (f"m of each comparison ({trained.labelled_pairs:,} labelled pairs, {trained.labelled_matches:,} "
             f"matches; {trained.not_stored:,} skipped: no stored pair)")  # fmt: skip
    table = Table(title=title)
    for column in ("comparison", "labelled matches", "m from", "why"):
        table.add_column(column, justify="right" if column == "labelled matches" else "left")
    for c in trained.comparisons:
        source = "labels" if c.source == "labels" else "[yellow]EM[/]"
        table.add_row(_shown(c.comparison), f"{c.labelled_matches:,}", source, _shown(c.reason))
    console.print(table)


def dedupe_command(
    files: Annotated[list[Path], typer.Argument(help="Application files to deduplicate.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    config: ConfigOption = None,
    model: Annotated[Path | None, typer.Option("--model", help="A model from `linkage train` (no retraining).")] = None,
    spec: SpecOption = None,
    threshold: ThresholdOption = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest, normalise, train (unless --model), score pairs and cluster them into identities.

    Writes clusters.parquet (record_id, identity_id, cluster_size), pairs.parquet (scores and the
    level of every comparison), summary.json and the model's charts into --out.
    """
    from linkage.dedupe import dedupe

    with _spinner("deduplicating"):
        summary = dedupe(
            files, _config(config, engine=engine), out, model_path=model, spec_path=spec, threshold=threshold
        )
    if as_json:
        _print_json(summary.to_dict())
        return
    shown = ("rows_read", "accepted", "quarantined", "pairs_scored", "identities", "multi_record_identities",
             "largest_identity", "clusters_cut_by_guard", "edges_cut_by_guard", "threshold", "model_id",
             "engine")  # fmt: skip
    _print_summary(f"Dedupe into {out}", summary, shown)


def link_command(
    db: DbOption = None,
    config: ConfigOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Score and cluster every record again; identity ids are carried over.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train a new model on the store first (a full run).")
    ] = False,
    model: Annotated[
        Path | None, typer.Option("--model", help="A model from `linkage train` to use and store.")
    ] = None,
    spec: SpecOption = None,
    threshold: ThresholdOption = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Link the store's new or changed applications into identities that keep their ids.

    New applications are scored against the stored ones a blocking rule pairs them with, and among
    themselves, then join, merge or create identities. The first link, and --full, score and cluster
    everything. One atomic run: every change is visible together or not at all, and recorded as events.
    """
    from linkage.engine import link

    settings = _config(config, engine=engine)
    with _spinner("linking") as status:
        summary = link(db or settings.store.path, settings, full=full, spec_path=spec, model_path=model,
                       retrain=retrain, threshold=threshold,
                       progress=lambda stage: status.update(f"linking: {stage} …"))  # fmt: skip
    if as_json:
        _print_json(summary.to_dict())
        return
    _print_interrupted(summary.interrupted_runs)
    shown = ("records", "linked", "candidates", "pairs_scored", "reclustered", "identities", "created", "merged",
             "split", "records_added", "records_moved", "decisions_applied", "model_id", "model_trained",
             "engine")  # fmt: skip
    _print_summary(f"Link ({summary.mode}), run {summary.run_id}", summary, shown)
    for conflict in summary.decision_conflicts:
        err.print(f"[yellow]decision conflict:[/] {_shown(conflict)}", highlight=False)


def decide_command(
    kind: Annotated[str, typer.Argument(help="must-link (one person) or cannot-link (two people).")],
    record_a: Annotated[str, typer.Argument(help="record_id of one application.")],
    record_b: Annotated[str, typer.Argument(help="record_id of the other application.")],
    by: Annotated[
        str, typer.Option("--by", help=f"The officer deciding: at most {MAX_OFFICER_CHARS} characters, on one line.")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help=f"Why: shown in the history and the event log; at most {MAX_REASON_CHARS:,} characters, on one line.",
        ),
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an officer's decision that two applications are (must-link) or are not (cannot-link) one person.

    The next `linkage link` honours it: a cannot-link is never merged through, not even along a chain; a
    must-link holds unless a cannot-link contradicts it (reported). The officer (--by) and the reason
    (--reason) are limited in length and may not hold control characters (line breaks, tabs, escape codes).
    """
    from linkage.decide import decide

    settings = _config(config)
    made = decide(db or settings.store.path, kind.replace("-", "_"), record_a, record_b, by=by, reason=reason,
                  memory_limit=settings.store.memory_limit)  # fmt: skip
    if as_json:
        _print_json(made.to_dict())
        return
    _print_interrupted(made.interrupted_runs)
    console.print(
        f"{_shown(made.decision_id)}: {_shown(kind)} {_shown(record_a)} {_shown(record_b)} stored; "
        "the next `linkage link` applies it",
        highlight=False,
    )

