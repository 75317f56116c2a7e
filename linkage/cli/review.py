"""``linkage review sample|import|disagreements``: pairs drawn for analysts to label, their labels stored, and the
pairs whose labellers disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from linkage.cli import ConfigOption, DbOption, JsonOption, SpecOption, _config, _print_json, _shown, _spinner, console
from linkage.store import Store

review_app: typer.Typer = typer.Typer(
    name="review",
    help="Draw record pairs for analysts to label, and store their labels (for `linkage evaluate --labels`).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _store(config: Path | None, db: Path | None) -> Store:
    settings = _config(config)
    return Store(db or settings.store.path, memory_limit=settings.store.memory_limit)


@review_app.command("sample")
def sample_command(
    n: Annotated[int, typer.Option("--n", min=1, help="Pairs to draw.")],
    out: Annotated[Path, typer.Option("--out", help="The CSV to write, for the analysts to fill (column label).")],
    seed: Annotated[
        int, typer.Option("--seed", help="The draw's seed: the same store, n and seed draw the same pairs.")
    ] = 0,
    config: ConfigOption = None,
    db: DbOption = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draw pairs to label, stratified by what the latest link run made of them, and write them as a CSV.

    Strata: pairs inside one identity (by their score: strong, just above the threshold, linked through others),
    stored pairs of two identities (just below the threshold, middle, just above the review floor), and pairs
    blocking never produced that broader rules do (scored by the model at or above the floor; and a check slice
    below it). Each stratum gets a least share, the threshold's two sides most, the rest by Neyman allocation.
    The draw and its inclusion probabilities are stored for the estimates. The CSV holds both applications'
    fields side by side: personal data, for the analysts who label, not for sharing. Design: linkage/sample.py.
    """
    from linkage.sample import draw, write_csv
    from linkage.spec import load_spec

    model_spec = load_spec(spec)
    with _store(config, db) as store, _spinner("drawing the sample (the broader rules' pairs are scored)"):
        drawn = draw(store, model_spec, n, seed=seed)
        rows = write_csv(store, drawn, out)
    if as_json:
        _print_json({"sample_id": drawn.sample_id, "pairs": rows, "out": str(out), **drawn.design()})
        return
    table = Table(title=f"sample {_shown(drawn.sample_id)}: {rows:,} pairs → {_shown(out)}")
    for column in ("stratum", "pairs in the store", "drawn", "inclusion probability", "mean probability"):
        table.add_column(column, justify="left" if column == "stratum" else "right")
    for s in drawn.strata:
        mean = "" if s.mean_probability is None else f"{s.mean_probability:.3f}"
        table.add_row(s.name, f"{s.population:,}", f"{s.drawn:,}", f"{s.inclusion_probability:.2e}", mean)
    console.print(table)


@review_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="A filled sample CSV (column label: match, non-match, unsure or empty).")
    ],
    by: Annotated[str, typer.Option("--by", help="Who labelled the pairs.")],
    config: ConfigOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the labels of a filled sample CSV: every row checked first, a bad row refuses the file.

    A labeller's latest label of a pair stands; pairs whose labellers disagree are reported by
    `linkage evaluate --labels` and count in no estimate until labelled again. Empty labels are skipped.
    """
    from linkage.labels import import_labels

    with _store(config, db) as store:
        report = import_labels(store, file, by)
    if as_json:
        _print_json({"rows": report.rows, "stored": report.stored, "blank": report.blank,
                     "reconciles": report.reconciles})  # fmt: skip
        return
    stored = ", ".join(f"{k} {v:,}" for k, v in report.stored.items())
    console.print(f"{report.rows:,} rows: stored {stored}; {report.blank:,} left blank")


@review_app.command("disagreements")
def disagreements_command(
    config: ConfigOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The pairs whose labellers disagree (one says match, another non-match), each labeller's latest label.

    A disputed pair counts in no estimate until someone labels it again (`linkage review import` with the pair's
    row, or the labelling page): the latest label of each labeller stands.
    """
    from linkage.labels import standing

    with _store(config, db) as store:
        found = standing(store)
    disputed = found[found["label"] == "disputed"]
    columns = (disputed["record_id_l"], disputed["record_id_r"], disputed["labels"])
    rows = [{"record_id_l": a, "record_id_r": b, "labels": list(labels)} for a, b, labels in zip(*columns, strict=True)]
    if as_json:
        _print_json({"pairs_labelled": len(found), "disputed": rows})
        return
    table = Table(title=f"{len(rows):,} disputed of {len(found):,} labelled pairs")
    for column in ("record_id_l", "record_id_r", "labels"):
        table.add_column(column)
    for row in rows:
        table.add_row(_shown(row["record_id_l"]), _shown(row["record_id_r"]), _shown(", ".join(row["labels"])))
    console.print(table)
