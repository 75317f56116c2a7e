"""The ``linkage`` command: each command is one library call plus formatting.

A :class:`~linkage.errors.LinkageError` becomes a message on stderr and exit code 1 (2 for usage
errors, from click). Personal data never goes to logs; tables show aggregates only.

Every value put into terminal output (a stored office, reason or officer's name, a file name, an error
message) passes through :func:`_shown`: a value can hold anything, and a terminal runs escape codes
(clearing the screen, retitling the window, writing the clipboard) while rich reads ``[...]`` as markup.
JSON output is escaped by its encoder instead (``ensure_ascii``) and keeps every value exactly. Help texts
are rich markup too: a default is written "(default: ...)", never in square brackets, which rich would
take for a tag and drop.

This package holds the app, the options and output that its commands share, and :func:`main`; the commands
live in one module per group and are registered here, in :data:`COMMANDS` order (the order of ``--help``):

* :mod:`linkage.cli.ingest`: ``ingest``, ``profile``, ``settings`` (what goes into the store, and how);
* :mod:`linkage.cli.link`: ``train``, ``dedupe``, ``link``, ``decide`` (the runs that decide links);
* :mod:`linkage.cli.evaluate`: ``evaluate`` (clusters measured against the truth);
* :mod:`linkage.cli.threshold`: ``threshold`` (what moving the link threshold costs and gains);
* :mod:`linkage.cli.trace`: ``history``, ``alerts``, ``report``, ``export`` (reading the identity store);
* :mod:`linkage.cli.access`: the ``users`` group (``add``, ``revoke``, ``list``) and ``audit`` (who may use
  the officer service, and what they did).
* :mod:`linkage.cli.query`: ``query`` (an applicant who is not stored, matched against the store).
* :mod:`linkage.cli.serve`: ``serve`` (the officer service over HTTP).
* :mod:`linkage.cli.review`: the ``review`` group (``sample``, ``import``: pairs drawn for analysts to label).
* :mod:`linkage.cli.models`: the ``models`` group (``compare``, ``export``: two models side by side).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from linkage import __version__
from linkage.config import Config, load_config
from linkage.errors import LinkageError
from linkage.store import name_process

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
DbOption = Annotated[
    Path | None, typer.Option("--db", help="DuckDB store file (default: store.path from the config).")
]
SpecOption = Annotated[Path | None, typer.Option("--spec", help="Model spec (default: configs/model.toml).")]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        metavar="P",
        help="Match probability at which records join one identity, for this run (default: the spec's threshold).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOption = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        help="Where a full run trains and scores: duckdb (embedded) or spark (needs the spark extra of the package; "
        "settings in the config's spark section). Default: the config's link.engine, duckdb.",
        case_sensitive=False,
    ),
]


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
    logging.getLogger("linkage").setLevel(level)  # also where the root logger was configured before (tests)
    name_process(f"linkage {ctx.invoked_subcommand}")  # what a reader is told is writing the store


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


def _config(path: Path | None, workers: int | None = None, engine: Engine | None = None) -> Config:
    """The config file's settings (the defaults without one), with ``--workers`` and ``--engine`` when given."""
    cfg = load_config(path).with_engine(engine.value if engine is not None else None)
    if workers is not None:
        cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"workers": workers})})
    return cfg


def main() -> None:
    """Entry point: run the app, turning a LinkageError into a message and exit code.

    Usage errors are click's (exit code 2, with the usage line). Anything else is a bug: it is reported in
    one line with exit code 70 (EX_SOFTWARE), and its traceback is shown only at ``-vv``, where a developer
    asked for it; a user never gets a traceback.
    """
    try:
        app()
    except LinkageError as exc:
        message = "\n".join(_shown(line) for line in str(exc).split("\n"))  # the problems' lines kept apart
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # unwrapped: pipes and logs
        sys.exit(exc.exit_code)
    except Exception as exc:
        if logging.getLogger("linkage").isEnabledFor(logging.DEBUG):
            raise
        what = _shown(f"{type(exc).__name__}: {exc}")
        err.print(
            f"[bold red]internal error:[/] {what}. This is a bug in linkage, not in your data or command; "
            "run the command again with -vv to see where it happened, and report it.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(70)


# The commands' modules import the shared parts above from this package, so they come last.
from linkage.cli import access, evaluate, ingest, link, models, query, review, serve, threshold, trace  # noqa: E402

COMMANDS: Final[tuple[tuple[str, Callable[..., None]], ...]] = (
    ("ingest", ingest.ingest_command),
    ("train", link.train_command),
    ("dedupe", link.dedupe_command),
    ("link", link.link_command),
    ("decide", link.decide_command),
    ("profile", ingest.profile_command),
    ("settings", ingest.settings_command),
    ("evaluate", evaluate.evaluate_command),
    ("threshold", threshold.threshold_command),
    ("history", trace.history_command),
    ("alerts", trace.alerts_command),
    ("report", trace.report_command),
    ("export", trace.export_command),
    ("query", query.query_command),
    ("serve", serve.serve_command),
    ("audit", access.audit_command),
)
"""Every command with its function, in the order ``linkage --help`` lists them."""
for _name, _command in COMMANDS:
    app.command(_name)(_command)
app.add_typer(access.users_app, name="users")  # a group: ``linkage users add|revoke|list``
app.add_typer(review.review_app, name="review")  # ``linkage review sample|import``
app.add_typer(models.models_app, name="models")  # ``linkage models compare|export``
