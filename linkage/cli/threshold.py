"""``linkage threshold``: what moving the link threshold from A to B costs and gains, for analysts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from linkage.cli import ConfigOption, DbOption, JsonOption, _print_json, _shown, console
from linkage.cli.trace import _read_store


def threshold_command(
    from_: Annotated[float, typer.Option("--from", metavar="A", help="The threshold now, between 0 and 1.")],
    to: Annotated[float, typer.Option("--to", metavar="B", help="The threshold proposed, between 0 and 1.")],
    minutes_per_review: Annotated[
        float,
        typer.Option("--minutes-per-review", metavar="M", help="An officer's minutes per review alert."),
    ] = 3.0,
    config: ConfigOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what moving the link threshold from A to B costs and gains, on the store's stored pairs.

    Both thresholds cluster the stored pairs (the latest score of each; a record without identity evidence
    never links on a score) into connected components; the cluster guard and officers' decisions are not
    applied again, so at the run's own threshold the figures may differ slightly from the store's identities.
    Identities: the clusters at each threshold. Merged: clusters at B that join two or more clusters of A
    (lowering the threshold), with the records they hold; split: clusters of A that fall apart at B (raising
    it). Linked alerts: an application and an earlier refusal at another office in one cluster; review alerts:
    a refusal in another cluster that a stored pair at or above the review floor joins to the application;
    gained and lost from A to B. Review alerts per week: the store's applications per week (its last 12
    weeks) times the review alerts per application; officer-hours per week: those times the minutes per
    review. Examples: record and identity ids to open with `linkage history`. Definitions: linkage/cutoff.py.
    """
    from linkage.cutoff import cost

    with _read_store(config, db) as store:
        found = cost(store, from_=from_, to=to, minutes_per_review=minutes_per_review)
    if as_json:
        _print_json(found.to_dict())
        return
    a, b = found.at_from, found.at_to
    table = Table(title=f"Moving the threshold from {a.threshold:g} to {b.threshold:g}")
    for header in ("figure", f"at {a.threshold:g}", f"at {b.threshold:g}", "change"):
        table.add_column(_shown(header), justify="left" if header == "figure" else "right")
    counts = (("identities", a.identities, b.identities), ("linked alerts", a.linked_alerts, b.linked_alerts),
              ("review alerts", a.review_alerts, b.review_alerts))  # fmt: skip
    for name, before, after in counts:
        table.add_row(name, f"{before:,}", f"{after:,}", f"{after - before:+,}")
    weekly = (("review alerts per week", a.review_per_week, b.review_per_week),
              ("officer-hours per week", a.officer_hours_per_week, b.officer_hours_per_week))  # fmt: skip
    for name, now, then in weekly:
        table.add_row(name, f"{now:,.2f}", f"{then:,.2f}", f"{then - now:+,.2f}")
    console.print(table)
    moved = Table(title="What changes")
    moved.add_column("change")
    moved.add_column("count", justify="right")
    moved.add_column("records", justify="right")
    moved.add_row("clusters merged", f"{found.merged.clusters:,}", f"{found.merged.records:,}")
    moved.add_row("clusters split", f"{found.split.clusters:,}", f"{found.split.records:,}")
    for level in ("linked", "review"):
        gained, lost = getattr(found, f"{level}_gained"), getattr(found, f"{level}_lost")
        moved.add_row(f"{level} alerts gained", f"{gained:,}", "")
        moved.add_row(f"{level} alerts lost", f"{lost:,}", "")
    console.print(moved)
    console.print(
        f"[dim]{found.applications_per_week:,.1f} applications per week (over the last {found.window_days} days of "
        f"applications held), {found.applications:,} stored; review floor {found.review_floor:g}, the last link "
        f"run's threshold {found.run_threshold:g}; {found.minutes_per_review:g} minutes per review",
        highlight=False,
    )
    for title, clusters in (("Merged", found.merged_examples), ("Split", found.split_examples)):
        for c in clusters:
            more = ", …" if c.records > len(c.record_ids) else ""
            console.print(
                f"{title}: {c.records:,} records from {c.parts} clusters: {_shown(', '.join(c.record_ids))}{more}; "
                f"identities {_shown(', '.join(c.identity_ids) or '–')}",
                highlight=False,
            )
    for title, alerts in (("Gained", found.gained_examples), ("Lost", found.lost_examples)):
        for x in alerts:
            console.print(
                f"{title} {x.level} alert: {_shown(x.record_id)} ({_shown(x.identity_id or 'unlinked')}) after "
                f"refusal {_shown(x.refused_record_id)} ({_shown(x.refused_identity_id or 'unlinked')})",
                highlight=False,
            )
