"""``linkage history``, ``alerts``, ``report`` and ``export``: traces over the identity store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from linkage.cli import ConfigOption, DbOption, JsonOption, _config, _print_json, _shown, console
from linkage.store import Store

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
    officers' decisions on it; then the identity's risk indicators (earlier refusals, several offices within
    180 days, several NIKs, a NIK that contradicts its record, a phone or household shared with two or more
    other identities; see linkage/risk.py) and its events (created, merged, split, records added or moved).
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
    if found["indicators"]:
        table = Table(title="Risk indicators (from what was done, never from who the applicant is)")
        for name in ("kind", "indicator", "records"):
            table.add_column(name, overflow="fold")
        for i in found["indicators"]:
            table.add_row(*(_shown(c) for c in (i["kind"], i["summary"], " ".join(i["evidence"]["records"]))))
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


def alerts_command(
    config: ConfigOption = None,
    db: DbOption = None,
    since: SinceOption = None,
    refusal: Annotated[
        list[str] | None,
        typer.Option("--refusal", help="A decision that counts as a refusal; repeat for more (none given: rejected)."),
    ] = None,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            metavar="linked|review|all",
            help="linked: the identity holds the refusal; review: a pair at or above the review floor "
            "joins them but did not link; all: both, linked first.",
        ),
    ] = "all",
    as_json: JsonOption = False,
) -> None:
    """Show office shopping: applications whose identity was refused on an earlier day at another office.

    Linked alerts: one row per application and earlier refusal elsewhere in its identity, with the refusal's
    office, date and reason and the probability that ties the two: the pair's own when it was scored, else
    the weakest link of the strongest path between them through the identity's links (the records on it
    are listed). Review alerts, apart and highest probability first: a refusal in another identity that a
    scored pair at or above the review floor joins to the application, with why it did not link
    (possible_relative, no_identity_evidence, split_by_guard, weak_evidence). Definitions: linkage/alerts.py.
    """
    from linkage.alerts import LEVELS, alerts
    from linkage.errors import did_you_mean
    from linkage.schema import REFUSALS

    if level not in LEVELS:
        raise typer.BadParameter(
            f"unknown level {level!r}{did_you_mean(level, LEVELS)}; one of {', '.join(LEVELS)}", param_hint="'--level'"
        )
    with _read_store(config, db) as store:
        found = alerts(store, _since(since), tuple(refusal) if refusal else REFUSALS, level)
    if as_json:
        _print_json(found)
        return
    linked = [a for a in found if a["level"] == "linked"]
    review = [a for a in found if a["level"] == "review"]
    if level != "review":
        table = Table(title=f"Office shopping: {len(linked):,} applications after a refusal elsewhere")
        for name in ("date", "office", "record", "decision", "refused", "at office", "refused record", "reason",
                     "p", "tied"):  # fmt: skip
            table.add_column(name, overflow="fold", justify="right" if name == "p" else "left")
        for a in linked:
            p = "–" if a["match_probability"] is None else f"{a['match_probability']:.4f}"
            tied = {"direct": "pair", "no_link_path": "no link path", "must_link": "must-link decision"}.get(
                a["reason"], "via " + ", ".join(a["via"])
            )
            cells = (a["application_date"], a["office"], a["record_id"], a["decision"], a["refused_date"],
                     a["refused_office"], a["refused_record_id"], a["refusal_reason"], p, tied)  # fmt: skip
            table.add_row(*(_shown("–" if c is None else str(c)) for c in cells))
        console.print(table)
    if level != "linked":
        table = Table(title=f"For review: {len(review):,} possible matches with a refused person, not linked")
        for name in ("p", "why", "date", "office", "record", "refused", "at office", "refused record", "reason",
                     "paired with"):  # fmt: skip
            table.add_column(name, overflow="fold", justify="right" if name == "p" else "left")
        for a in review:
            cells = (f"{a['match_probability']:.4f}", a["reason"], a["application_date"], a["office"], a["record_id"],
                     a["refused_date"], a["refused_office"], a["refused_record_id"], a["refusal_reason"],
                     ", ".join(a["via"]) or "the refusal")  # fmt: skip
            table.add_row(*(_shown("–" if c is None else str(c)) for c in cells))
        console.print(table)


def report_command(
    report: Annotated[str, typer.Argument(metavar="REPORT", help="The report: office-shopping.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .html (chart and table, offline) or .csv.")],
    config: ConfigOption = None,
    db: DbOption = None,
    since: SinceOption = None,
) -> None:
    """Write a report. office-shopping: alerts, applications and identities by office and month.

    An alert is an application whose identity was refused on an earlier day at another office (see
    `linkage alerts`); review alerts (a refused person's record a scored pair joins to it without a link)
    are counted apart. The .html page holds a stacked bar chart of linked alerts by month coloured by
    office, and the table; both carry counts only.
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
    alerts, review = int(table["alerts"].sum()), int(table["review_alerts"].sum())
    console.print(
        f"{_shown(report)}: {len(table):,} office-months, {alerts:,} linked and {review:,} review alerts written "
        f"to {_shown(out)}"
    )


def export_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .parquet or .csv.")],
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Write every stored record's identity: record_id, identity_id (empty until linked), no_identity_evidence."""
    from linkage.exports import export

    with _read_store(config, db) as store:
        rows = export(store, out)
    console.print(f"{rows:,} records written to {_shown(out)}")

