"""``linkage query``: one applicant who is not stored, matched against the store (:func:`linkage.query.query`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from linkage.cli import ConfigOption, DbOption, JsonOption, SpecOption, _config, _print_json, _shown, console


def _field(flag: str, what: str) -> Any:
    return typer.Option(flag, help=f"The applicant's {what}, as written on the form.")


def query_command(
    name: Annotated[str, _field("--name", "full name")],
    birth_date: Annotated[str | None, _field("--birth-date", "birth date")] = None,
    nik: Annotated[str | None, _field("--nik", "NIK")] = None,
    mother: Annotated[str | None, _field("--mother", "mother's name")] = None,
    birth_place: Annotated[str | None, _field("--birth-place", "birth place")] = None,
    sex: Annotated[str | None, _field("--sex", "sex")] = None,
    phone: Annotated[str | None, _field("--phone", "phone number")] = None,
    address: Annotated[str | None, _field("--address", "address")] = None,
    passport: Annotated[str | None, _field("--passport", "prior passport number")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The most candidate identities shown.")] = 10,
    config: ConfigOption = None,
    db: DbOption = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Match an applicant who is not stored against the store: candidate identities, best first, and why.

    The fields are normalised as ingest does (a field that fails validation is an error naming it) and scored
    with the store's model against the records a blocking rule pairs them with, as a link of this application
    would score them; nothing is written. Each candidate identity shows its best pair's probability, its level
    (linked at or above the last link run's threshold, review at or above its review floor; a pair the veto
    held is review) and the reason; then the best candidate's evidence comparison by comparison (prior plus
    each weight makes the total), its applications across offices in time order, refusals marked, and its
    risk indicators.
    """
    from linkage.query import query
    from linkage.spec import load_spec
    from linkage.store import Store

    settings = _config(config)
    fields = {"full_name": name, "birth_date": birth_date, "nik": nik, "mother_name": mother,
              "birth_place": birth_place, "sex": sex, "phone": phone, "address": address,
              "prior_passport_no": passport}  # fmt: skip
    given = {k: v for k, v in fields.items() if v is not None}
    model_spec = load_spec(spec)
    with Store(db or settings.store.path, memory_limit=settings.store.memory_limit) as store:
        found = query(store, given, limit=limit, spec=model_spec, dataset=settings.dataset)
    if as_json:
        _print_json(found)
        return
    _print(found)


def _print(found: dict[str, Any]) -> None:
    candidates = found["candidates"]
    console.print(
        f"[bold]{len(candidates)} candidate identities[/] (model {_shown(found['model_id'])}, linked at "
        f"p ≥ {found['threshold']:g}, review at p ≥ {found['review_floor']:g})"
    )
    for warning in found.get("warnings", []):
        console.print(f"[yellow]warning:[/] {_shown(str(warning['field']))}: {_shown(str(warning['problem']))}")
    if not candidates:
        console.print("No stored person matches this applicant at or above the review floor.")
        return
    table = Table(title="Candidates, best first")
    for column in ("#", "identity", "p", "level", "reason", "record", "applications", "refusals"):
        table.add_column(column, overflow="fold", justify="right" if column in ("#", "p") else "left")
    for i, c in enumerate(candidates, 1):
        refusals = sum(a["refused"] for a in c["applications"])
        cells = (i, c["identity_id"] or "–", f"{c['match_probability']:.4f}", c["level"], c["reason"], c["record_id"],
                 len(c["applications"]), refusals)  # fmt: skip
        table.add_row(*(_shown(str(x)) for x in cells))
    console.print(table)
    best = candidates[0]
    table = Table(title=f"Evidence for {best['record_id']}: prior + each weight = total")
    for column in ("comparison", "level", "weight", "running total", "query", "record"):
        table.add_column(column, overflow="fold", justify="right" if column in ("weight", "running total") else "left")
    total = found["prior_match_weight"]
    table.add_row("prior", "", f"{total:+.2f}", f"{total:.2f}", "", "")
    for e in best["evidence"]:
        total += e["match_weight"]
        shown = _sides(e["query"], e["record"])
        table.add_row(*(_shown(x) for x in (e["comparison"], e["level"] or "–", f"{e['match_weight']:+.2f}",
                                             f"{total:.2f}", *shown)))  # fmt: skip
    if best["veto_weight"]:
        total += best["veto_weight"]
        table.add_row("veto", _shown(best["reason"]), f"{best['veto_weight']:+.2f}", f"{total:.2f}", "", "")
    console.print(table)
    table = Table(title=f"Applications of {best['identity_id'] or best['record_id']} in time order")
    for column in ("date", "office", "record", "decision", "reason"):
        table.add_column(column, overflow="fold")
    for a in best["applications"]:
        lodged = (a["application_date"], a["office"], a["record_id"], a["decision"], a["decision_reason"])
        row = [_shown("–" if x is None else str(x)) for x in lodged]
        table.add_row(*row, style="bold red" if a["refused"] else None)
    console.print(table)
    for indicator in best["indicators"]:  # what the identity did that calls for a closer look (linkage.risk)
        console.print(f"[bold yellow]risk:[/] {_shown(indicator['kind'])}: {_shown(indicator['summary'])}")


def _sides(mine: dict[str, Any], theirs: dict[str, Any]) -> tuple[str, str]:
    """A comparison's two sides in a cell each: the first column it reads that either side has a value in."""
    for column in mine:
        if any(v is not None and v != [] for v in (mine[column], theirs.get(column))):
            return _cell(mine[column]), _cell(theirs.get(column))
    return "–", "–"


def _cell(value: Any) -> str:
    if value is None or value == []:
        return "–"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
