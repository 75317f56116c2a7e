"""The ``linkage`` command: each command is one library call plus formatting.

A :class:`~linkage.errors.LinkageError` becomes a message on stderr and exit code 1 (2 for usage
errors, from click). Personal data never goes to logs; tables show aggregates only.

Every value put into terminal output (a stored office, reason or officer's name, a file name, an error
message) passes through :func:`_shown`: a value can hold anything, and a terminal runs escape codes
(clearing the screen, retitling the window, writing the clipboard) while rich reads ``[...]`` as markup.
JSON output is escaped by its encoder instead (``ensure_ascii``) and keeps every value exactly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage import __version__
from linkage.config import Config, load_config, settings_table
from linkage.decide import MAX_OFFICER_CHARS, MAX_REASON_CHARS
from linkage.errors import LinkageError
from linkage.pipeline import IngestReport, ingest
from linkage.profile import Profile, profile
from linkage.store import Store, name_process

__all__ = ["app", "main"]

app = typer.Typer(
    name="linkage",
    help="Identity deduplication and record linkage for passport applications across immigration offices.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# no emoji codes: a stored ":warning:" is text, not a picture
console = Console(emoji=False)
err = Console(stderr=True, emoji=False)

_ESCAPE_SEQUENCE: Final = re.compile(
    r"\x1b(?:"
    r"\[[0-?]*[ -/]*[@-~]?"  # CSI: colours, cursor moves, clearing the screen
    r"|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (title, hyperlink, clipboard), DCS, SOS, PM, APC: to BEL or ST
    r"|[ -/]*[0-~]?"  # the two-character escapes (ESC c resets the terminal), or a lone ESC
    r")"
)
# C0, DEL and C1 controls and the bidirectional overrides (which reorder what is shown, CVE-2021-42574):
# the ones that move to a new line or column become a space, so that words stay apart; the rest go.
_CONTROLS: Final = {
    **dict.fromkeys((*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))),
    **dict.fromkeys(map(ord, "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"), " "),
}


def _shown(value: object) -> str:
    """``value`` as rich markup that prints it as text: escape sequences and control characters taken out,
    markup escaped. Every value and message put into terminal output goes through here.

    >>> _shown("check the [training] rules")
    'check the \\\\[training] rules'
    >>> _shown("\x1b]0;owned\x07Metro\x1b[2J\x9b\tLampung\x1b[31m")
    'Metro Lampung'
    """
    return escape(_ESCAPE_SEQUENCE.sub("", str(value)).translate(_CONTROLS))


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings and column mapping (see configs/default.toml).", exists=False),
]
DbOption = Annotated[Path | None, typer.Option("--db", help="DuckDB store file [default: store.path from the config].")]
SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Model spec [default: configs/model.toml].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"linkage {_shown(__version__)}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: info, -vv: debug with SQL.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Identity deduplication and record linkage for passport applications across immigration offices."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    name_process(f"linkage {ctx.invoked_subcommand}")  # what a reader is told is writing the store


@app.command("ingest")
def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or .xlsx files of applications.")],
    config: ConfigOption = None,
    db: DbOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes that normalise [default: ingest.workers].")
    ] = None,
    sheet: Annotated[
        str | None,
        typer.Option("--sheet", help="The one sheet of .xlsx workbooks to read [default: ingest.sheet, every sheet]."),
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


@app.command("train")
def train_command(
    files: Annotated[list[Path], typer.Argument(help="Application files to train on (no labels needed).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write, e.g. model.json.")],
    config: ConfigOption = None,
    spec: SpecOption = None,
) -> None:
    """Train the matching model without labels (λ, u counted and sampled, m by EM) and save it with its provenance.

    The model file records the data fingerprint, config hash, linkage and Splink versions and a
    timestamp; `linkage dedupe --model FILE` then predicts without retraining. Charts of the trained
    parameters are written beside it.
    """
    from linkage.dedupe import train_files

    with _spinner("training"):
        model_id, charts = train_files(files, _config(config), out, spec_path=spec)
    console.print(f"model {_shown(model_id)} written to {_shown(out)}; charts in {_shown(charts)}")


@app.command("dedupe")
def dedupe_command(
    files: Annotated[list[Path], typer.Argument(help="Application files to deduplicate.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    config: ConfigOption = None,
    model: Annotated[Path | None, typer.Option("--model", help="A model from `linkage train` (no retraining).")] = None,
    spec: SpecOption = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Match probability that joins records [default: the spec's].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest, normalise, train (unless --model), score pairs and cluster them into identities.

    Writes clusters.parquet (record_id, identity_id, cluster_size), pairs.parquet (scores and the
    level of every comparison), summary.json and the model's charts into --out.
    """
    from linkage.dedupe import dedupe

    with _spinner("deduplicating"):
        summary = dedupe(files, _config(config), out, model_path=model, spec_path=spec, threshold=threshold)
    if as_json:
        _print_json(summary.to_dict())
        return
    shown = ("rows_read", "accepted", "quarantined", "pairs_scored", "identities", "multi_record_identities",
             "largest_identity", "clusters_cut_by_guard", "edges_cut_by_guard", "threshold", "model_id")  # fmt: skip
    _print_summary(f"Dedupe into {out}", summary, shown)


@app.command("link")
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
    as_json: JsonOption = False,
) -> None:
    """Link the store's new or changed applications into identities that keep their ids.

    New applications are scored against the stored ones a blocking rule pairs them with, and among
    themselves, then join, merge or create identities. The first link, and --full, score and cluster
    everything. One atomic run: every change is visible together or not at all, and recorded as events.
    """
    from linkage.engine import link

    settings = _config(config)
    with _spinner("linking") as status:
        summary = link(db or settings.store.path, settings, full=full, spec_path=spec, model_path=model,
                       retrain=retrain, progress=lambda stage: status.update(f"linking: {stage} …"))  # fmt: skip
    if as_json:
        _print_json(summary.to_dict())
        return
    _print_interrupted(summary.interrupted_runs)
    shown = ("records", "linked", "candidates", "pairs_scored", "reclustered", "identities", "created", "merged",
             "split", "records_added", "records_moved", "decisions_applied", "model_id", "model_trained")  # fmt: skip
    _print_summary(f"Link ({summary.mode}), run {summary.run_id}", summary, shown)
    for conflict in summary.decision_conflicts:
        err.print(f"[yellow]decision conflict:[/] {_shown(conflict)}", highlight=False)


@app.command("decide")
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


def _print_json(data: Any) -> None:
    """One JSON object on stdout; control characters and non-ASCII escaped (``\\u001b``), values kept exactly."""
    console.print_json(json.dumps(data, default=str), ensure_ascii=True)


def _print_interrupted(runs: list[dict[str, str]]) -> None:
    """A line for each run a kill left ``running``, which this command has marked ``interrupted``."""
    for run in runs:
        err.print(
            f"[yellow]interrupted run:[/] {_shown(run['kind'])} run {_shown(run['run_id'])} started "
            f"{_shown(run['started_at'])} never finished (the process was killed); marked interrupted",
            highlight=False,
        )


def _print_summary(title: str, summary: Any, shown: tuple[str, ...]) -> None:
    """A run summary's figures as a table, then its stage times."""
    table = Table(title=_shown(title))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in shown:
        value = getattr(summary, key)
        table.add_row(key.replace("_", " "), f"{value:,}" if type(value) is int else _shown(value))
    console.print(table)
    console.print("[dim]" + ", ".join(f"{_shown(k)} {v:.1f} s" for k, v in summary.seconds.items()))


@contextlib.contextmanager
def _spinner(what: str) -> Iterator[Any]:
    with err.status(f"{what} …") as status:
        yield status


@app.command("profile")
def profile_command(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Summarise what the store holds: counts, fill rates, NIK quality, quarantine and field issues."""
    cfg = _config(config)
    with Store(db or cfg.store.path, read_only=True) as store:
        result = profile(store)
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_profile(result)


@app.command("settings")
def settings_command(as_json: JsonOption = False) -> None:
    """List every setting with its type, default and meaning (the keys of configs/default.toml)."""
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


@app.command("evaluate")
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


def _config(path: Path | None, workers: int | None = None) -> Config:
    cfg = load_config(path)
    if workers is not None:
        cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"workers": workers})})
    return cfg


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


# --- traces over the identity store (history.py, alerts.py, exports.py): history, alerts, report, export -------------

SinceOption = Annotated[
    str | None, typer.Option("--since", metavar="YYYY-MM-DD", help="Only applications lodged on or after this day.")
]
_REPORTS = ("office-shopping",)


def _since(value: str | None) -> Any:
    """The --since day as a date; a malformed one is a usage error (exit code 2)."""
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day written YYYY-MM-DD", param_hint="'--since'") from None


def _read_store(config: Path | None, db: Path | None) -> Store:
    return Store(db or _config(config).store.path, read_only=True)


@app.command("history")
def history_command(
    key: Annotated[str, typer.Argument(help="A record_id, or an identity_id (ID- and 16 hex digits).")],
    config: ConfigOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an identity's applications across offices in time order, what linked each one, decisions and events.

    KEY is a record id or an identity id; a retired identity id is followed to the identity it was merged
    into. Each application shows its office, date, decision and reason, the run that placed it, its
    strongest pair within the identity (probability and the comparisons that weighed most for it) and
    officers' decisions on it; then the identity's events (created, merged, split, records added or moved).
    """
    from linkage.history import history

    with _read_store(config, db) as store:
        found = history(store, key)
    if as_json:
        _print_json(found)
        return
    for step in found["followed"]:
        console.print(
            f"{_shown(step['identity_id'])} was retired by run {_shown(str(step['retired_run']))} "
            f"and merged into {_shown(step['merged_into'])}"
        )
    apps = found["applications"]
    if found["identity_id"] is None:
        console.print(f"[bold]Record {_shown(key)}[/] is stored but not linked into an identity yet")
    else:
        offices = len({a["office"] for a in apps if a["office"]})
        retired = f", retired by run {found['retired_run']}" if found["retired_run"] else ""
        console.print(
            f"[bold]Identity {_shown(found['identity_id'])}[/]: {len(apps)} applications at {offices} offices"
            f"{_shown(retired)}"
        )
    table = Table(title="Applications in time order")
    for name in ("date", "office", "record", "decision", "reason", "since run", "linked by"):
        table.add_column(name, overflow="fold")
    for a in apps:
        evidence = a["evidence"]
        linked = "–"
        if evidence is not None:
            fields = ", ".join(f"{f['comparison']} {f['weight']:+.1f}" for f in evidence["agreeing"])
            vetoed = " vetoed" if evidence["vetoed"] else ""
            linked = f"p {evidence['match_probability']:.4f}{vetoed} with {evidence['other_record_id']}: {fields}"
        cells = (a["application_date"], a["office"], a["record_id"], a["decision"], a["decision_reason"],
                 a["since_run"], linked)  # fmt: skip
        table.add_row(*(_shown("–" if c is None else str(c)) for c in cells))
    console.print(table)
    decided = {d["decision_id"]: (a["record_id"], d) for a in apps for d in a["decisions"]}  # once, not per side
    if decided:
        table = Table(title="Officers' decisions")
        for name in ("when", "kind", "records", "by", "reason"):
            table.add_column(name, overflow="fold")
        for record, d in sorted(decided.values(), key=lambda x: (str(x[1]["decided_at"]), x[1]["decision_id"])):
            row = (d["decided_at"], d["kind"], f"{record} {d['other_record_id']}", d["decided_by"], d["reason"])
            table.add_row(*(_shown("–" if c is None else str(c)) for c in row))
        console.print(table)
    if found["events"]:
        table = Table(title="Events")
        for name in ("#", "run", "kind", "identity", "other identity", "records", "p", "reason"):
            table.add_column(name, overflow="fold")
        for e in found["events"]:
            records = " ".join(r for r in (e["record_id"], e["other_record_id"]) if r)
            p = "" if e["probability"] is None else f"{e['probability']:.4f}"
            event = (e["event_no"], e["run_id"], e["kind"], e["identity_id"], e["other_identity_id"], records, p,
                     e["reason"])  # fmt: skip
            table.add_row(*(_shown("" if c is None else str(c)) for c in event))
        console.print(table)


@app.command("alerts")
def alerts_command(
    config: ConfigOption = None,
    db: DbOption = None,
    since: SinceOption = None,
    refusal: Annotated[
        list[str] | None,
        typer.Option("--refusal", help="A decision that counts as a refusal; repeat for more (none given: rejected)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show office shopping: applications whose identity was refused on an earlier day at another office.

    One row per application and earlier refusal elsewhere, with the refusal's office, date and reason and
    the probability that ties the two: the pair's own when it was scored, else the weakest link of the
    strongest path between them through the identity's links (the records on it are listed).
    Definitions: linkage/alerts.py.
    """
    from linkage.alerts import alerts
    from linkage.schema import REFUSALS

    with _read_store(config, db) as store:
        found = alerts(store, _since(since), tuple(refusal) if refusal else REFUSALS)
    if as_json:
        _print_json(found)
        return
    table = Table(title=f"Office shopping: {len(found):,} applications after a refusal elsewhere")
    for name in ("date", "office", "record", "decision", "refused", "at office", "refused record", "reason", "p",
                 "tied"):  # fmt: skip
        table.add_column(name, overflow="fold", justify="right" if name == "p" else "left")
    for a in found:
        p = "–" if a["match_probability"] is None else f"{a['match_probability']:.4f}"
        if a["direct"]:
            tied = "pair"
        elif a["match_probability"] is None:
            tied = "no link path"
        else:
            tied = "via " + ", ".join(a["via"]) if a["via"] else "must-link decision"
        cells = (a["application_date"], a["office"], a["record_id"], a["decision"], a["refused_date"],
                 a["refused_office"], a["refused_record_id"], a["refusal_reason"], p, tied)  # fmt: skip
        table.add_row(*(_shown("–" if c is None else str(c)) for c in cells))
    console.print(table)


@app.command("report")
def report_command(
    report: Annotated[str, typer.Argument(metavar="REPORT", help="The report: office-shopping.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .html (chart and table, offline) or .csv.")],
    config: ConfigOption = None,
    db: DbOption = None,
    since: SinceOption = None,
) -> None:
    """Write a report. office-shopping: alerts, applications and identities by office and month.

    An alert is an application whose identity was refused on an earlier day at another office (see
    `linkage alerts`). The .html page holds a stacked bar chart by month coloured by office, and the
    table; both carry counts only.
    """
    from linkage.alerts import office_shopping
    from linkage.errors import did_you_mean
    from linkage.exports import write_report

    if report not in _REPORTS:
        raise typer.BadParameter(
            f"unknown report {report!r}{did_you_mean(report, _REPORTS)}; one of {', '.join(_REPORTS)}",
            param_hint="REPORT",
        )
    with _read_store(config, db) as store:
        table = office_shopping(store, _since(since))
    write_report(table, out)
    alerts = int(table["alerts"].sum())
    console.print(f"{_shown(report)}: {len(table):,} office-months, {alerts:,} alerts written to {_shown(out)}")


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .parquet or .csv.")],
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Write every stored record's identity: record_id, identity_id (empty until linked), in record_id order."""
    from linkage.exports import export

    with _read_store(config, db) as store:
        rows = export(store, out)
    console.print(f"{rows:,} records written to {_shown(out)}")


def main() -> None:
    """Entry point: run the app, turning a LinkageError into a message and exit code.

    Usage errors are click's (exit code 2, with the usage line); anything else is a bug and keeps its
    traceback.
    """
    try:
        app()
    except LinkageError as exc:
        message = "\n".join(_shown(line) for line in str(exc).split("\n"))  # the problems' lines kept apart
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # unwrapped: pipes and logs
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
