"""``linkage ingest``, ``linkage profile`` and ``linkage settings``: what goes into the store, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage.cli import (
    ConfigOption,
    DbOption,
    JsonOption,
    _config,
    _print_interrupted,
    _print_json,
    _shown,
    console,
    err,
)
from linkage.config import settings_table
from linkage.pipeline import IngestReport, ingest
from linkage.profile import Profile, profile
from linkage.store import Store


def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or .xlsx files of applications.")],
    config: ConfigOption = None,
    db: DbOption = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes that normalise (default: ingest.workers from the config)."),
    ] = None,
    sheet: Annotated[
        str | None,
        typer.Option(
            "--sheet",
            help="The one sheet of .xlsx workbooks to read (default: ingest.sheet from the config, else every sheet).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read, validate and normalise application files into the store.

    Unusable rows (no record_id or full_name, ragged or undecodable lines, an id repeated within the
    run) are quarantined with their reason; bad fields (impossible dates, malformed NIKs, junk phones)
    keep the row and are recorded as field issues. An accepted row is new, unchanged (its record_id
    stored with the same values: nothing written, so ingesting a file again adds nothing) or updated
    (other values: the stored record replaced, the previous row kept in record_updates, linked records
    queued for relinking). rows_read = accepted + quarantined and accepted = new + updated + unchanged.
    """
    cfg = _config(config, workers)
    if sheet is not None:
        cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"sheet": sheet})})
    if as_json:
        report = ingest(files, cfg, db=db)
        _print_json(_ingest_json(report))
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(file: str, rows: int) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(_shown(Path(file).name), total=_rows_estimate(Path(file)))
            bar.advance(tasks[file], rows)

        report = ingest(files, cfg, db=db, progress=advance)
    _print_interrupted(report.interrupted_runs)
    _print_ingest(report)
    with Store(report.db, read_only=True) as store:
        # this run's quarantine and field issues were just shown; `linkage profile` has the store's
        _print_profile(profile(store), issues=False)


def profile_command(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise what the store holds: counts, fill rates, NIK quality, quarantine and field issues."""
    cfg = _config(config)
    with Store(db or cfg.store.path, read_only=True) as store:
        result = profile(store)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_profile(result)


def settings_command(as_json: JsonOption = False) -> None:
    """List every setting with its type, default and meaning.

    The keys of configs/default.toml (pass such a file with --config), then the run parameters of the model
    spec as spec.* (configs/model.toml, or the file given with --spec), with that file's values.
    """
    rows = list(settings_table())
    if as_json:
        _print_json([dict(zip(("key", "type", "default", "help"), r, strict=True)) for r in rows])
        return
    table = Table(title="Settings", show_lines=False)
    for name in ("key", "type", "default", "help"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*map(_shown, row))
    console.print(table)


def _rows_estimate(path: Path) -> int | None:
    """Rows in a file, for the progress bar: Parquet metadata, else newlines counted in the bytes."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffix in (".csv", ".txt", ".tsv"):
            with path.open("rb") as fh:
                return max(sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b"")) - 1, 1)
    except OSError:
        return None
    return None


def _ingest_json(report: IngestReport) -> dict[str, Any]:
    out = report.to_dict()
    out["files"] = [
        {k: v for k, v in f.__dict__.items() if v not in (None, [], "")} | {"file": f.file} for f in report.files
    ]
    return out


def _print_ingest(report: IngestReport) -> None:
    table = Table(title=f"Ingest run {_shown(report.run_id)}", show_header=True)
    table.add_column("file")
    table.add_column("format")
    for name in ("read", "accepted", "quarantined"):
        table.add_column(name, justify="right")
    table.add_column("notes")
    for f in report.files:
        fmt = f.format + (f" {f.encoding}" if f.encoding else "") + (f" {f.delimiter!r}" if f.delimiter else "")
        table.add_row(
            _shown(Path(f.file).name), _shown(fmt), f"{f.rows_read:,}", f"{f.accepted:,}", f"{f.quarantined:,}",
            _shown("; ".join(f.notes)),
        )  # fmt: skip
    ok = "[green]reconciles[/]" if report.reconciles else "[red]DOES NOT RECONCILE[/]"
    table.add_row("[bold]total", "", f"{report.rows_read:,}", f"{report.accepted:,}", f"{report.quarantined:,}", ok)
    console.print(table)
    # A table of its own: new / updated / unchanged are decided for the run as a whole against the
    # store, not per file, and three more columns above would not fit an 80-column terminal.
    against = {"new": report.new, "updated": report.updated, "unchanged": report.unchanged}
    _print_counts("Accepted rows", against, label="against the store")
    _print_counts("Quarantined rows by reason", report.quarantined_by_reason)
    _print_counts("Field issues by reason (rows kept)", report.field_issues_by_reason)
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    rate = report.rows_read / report.seconds["total"] if report.seconds.get("total") else 0
    console.print(
        f"[dim]{_shown(secs)}; {rate:,.0f} rows/s; peak memory {report.peak_rss_mb:,.0f} MB; store {_shown(report.db)}"
    )


def _print_counts(title: str, counts: dict[str, int], label: str = "reason") -> None:
    if not counts:
        return
    table = Table(title=title)
    table.add_column(label)
    table.add_column("rows", justify="right")
    for key, value in counts.items():
        table.add_row(_shown(key), f"{value:,}")
    console.print(table)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _print_profile(p: Profile, *, issues: bool = True) -> None:
    runs = sum(n for statuses in p.runs.values() for n in statuses.values())
    console.print(
        f"[bold]Store profile[/]: {p.applications:,} applications, {p.quarantined:,} quarantined rows, {runs:,} runs"
    )
    if p.runs:
        table = Table(title="Runs by kind and status")  # interrupted: killed before they finished
        table.add_column("kind")
        statuses = sorted({status for counts in p.runs.values() for status in counts})
        for status in statuses:
            table.add_column(_shown(status), justify="right")
        for kind, counts in p.runs.items():
            table.add_row(_shown(kind), *(f"{counts.get(status, 0):,}" for status in statuses))
        console.print(table)
    fill = Table(title="Fields: share written, share usable after normalisation")
    fill.add_column("field")
    fill.add_column("written", justify="right")
    fill.add_column("usable", justify="right")
    for role, (raw, norm) in p.fill.items():
        fill.add_row(_shown(role), _pct(raw), _pct(norm))
    console.print(fill)
    _print_counts("Applications by office", p.by_office, "office")
    _print_counts("Applications by decision", p.by_decision, "decision")
    _print_counts("NIK status", p.nik_status, "status")
    console.print(
        f"Without identity evidence (a name and nothing else; never linked on a score): "
        f"{p.no_identity_evidence:,} applications ({_pct(p.no_identity_evidence_share)})"
    )
    console.print(
        f"NIK-encoded birth date agrees with the stated one: {_pct(p.nik_dob_agrees)}; "
        f"NIK-encoded sex agrees: {_pct(p.nik_sex_agrees)}"
    )
    console.print(
        f"Names: {p.distinct_names:,} distinct canonical names; {p.with_titles:,} with titles, "
        f"{p.with_degrees:,} with degrees, {p.with_patronym:,} with a bin/binti patronym"
    )
    if p.top_name_tokens:
        console.print("Most common name tokens: " + ", ".join(f"{_shown(t)} ({n:,})" for t, n in p.top_name_tokens))
    _print_counts("Quarantine by reason", p.quarantine_by_reason)
    _print_counts(
        "Field issues by field and reason", {f"{f}: {r}": n for (f, r), n in p.field_issues_by_reason.items()}
    )

