"""``linkage models compare|export``: two models side by side, and a store's model written to a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from linkage.cli import ConfigOption, JsonOption, SpecOption, _config, _print_json, _shown, console
from linkage.compare import COLUMNS

if TYPE_CHECKING:
    from linkage.compare import Comparison

models_app: typer.Typer = typer.Typer(
    name="models",
    help="Compare two models level by level (and on a store's labelled pairs), or export a store's model.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

PAGE = "models_compare.html"


@models_app.command("compare")
def compare_command(
    a: Annotated[Path, typer.Argument(help="A model file (`linkage train`, or `linkage models export`).")],
    b: Annotated[Path, typer.Argument(help="Another model file.")],
    db: Annotated[
        Path | None, typer.Option("--db", help="A store with labels: each model's decisions on its labelled pairs.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help=f"A folder for {PAGE}: the two models' m/u side by side (offline).")
    ] = None,
    spec: SpecOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two models: per comparison and level, m, u and match weight of each and their change; λ of each;
    comparisons or levels in one model only.

    With --db, the store's labelled pairs (`linkage review import`) are scored again under each model from their
    stored levels (prior plus each level's log2(m/u), the veto's cap applied, term-frequency adjustments left
    out) and each model's matches and non-matches at or above its own threshold are counted: precision and
    recall on the labelled pairs, plain counts on the sample, not population estimates (`linkage evaluate
    --labels` estimates those for the store's model). --spec names the spec whose veto held the stored pairs.
    """
    from linkage.compare import compare_models, write_page
    from linkage.model import read_artefact
    from linkage.spec import load_spec
    from linkage.store import Store

    first, second = read_artefact(a), read_artefact(b)
    if db is None:
        found = compare_models(first, second)
    else:
        with Store(db, read_only=True, memory_limit=_config(config).store.memory_limit) as store:
            found = compare_models(first, second, store=store, spec=load_spec(spec))
    if out is not None:
        write_page(found, out / PAGE)
    if as_json:
        _print_json(found.to_dict() | ({"page": str(out / PAGE)} if out is not None else {}))
        return
    _print_comparison(found)
    if out is not None:
        console.print(f"page: {_shown(out / PAGE)}")


def _number(value: float | None, digits: str = ".4g") -> str:
    return "" if value is None else format(value, digits)


def _print_comparison(found: Comparison) -> None:
    """The levels' table, λ and thresholds, comparisons in one model only, and the counts on labelled pairs."""
    table = Table(title=f"A {_shown(found.model_a)} and B {_shown(found.model_b)}: m, u and match weight per level")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("comparison", "level", "in") else "right")
    for c in found.levels:
        table.add_row(
            _shown(c.comparison), _shown(c.level), c.present, _number(c.m_a), _number(c.m_b),
            _number(c.m_change, "+.4g"), _number(c.u_a), _number(c.u_b), _number(c.weight_a, ".2f"),
            _number(c.weight_b, ".2f"), _number(c.weight_change, "+.2f"),
        )  # fmt: skip
    console.print(table)
    console.print(f"λ: A {found.lambda_a:.4g}, B {found.lambda_b:.4g}; threshold: A {found.threshold_a:g}, "
                  f"B {found.threshold_b:g}", highlight=False)  # fmt: skip
    for which, names in (("A", found.only_in_a), ("B", found.only_in_b)):
        if names:
            console.print(f"comparisons only in {which}: {_shown(', '.join(names))}", highlight=False)
    acc = found.accuracy
    if acc is None:
        return
    counts = Table(title=f"On the store's labelled pairs: {acc.matches:,} matches, {acc.non_matches:,} non-matches "
                         f"({acc.not_stored:,} without a stored pair, {acc.unsure:,} unsure and {acc.disputed:,} "
                         "disputed left out)")  # fmt: skip
    for column in ("model", "threshold", "λ applied", "matches at or above", "non-matches at or above",
                   "precision (labelled)", "recall (labelled)", "scored as no evidence"):  # fmt: skip
        counts.add_column(column, justify="left" if column in ("model", "scored as no evidence") else "right")
    for which, m in (("A", acc.a), ("B", acc.b)):
        counts.add_row(
            f"{which} {_shown(m.model_id)}", f"{m.threshold:g}", f"{m.prior:.4g}", f"{m.matches_at_or_above:,}",
            f"{m.non_matches_at_or_above:,}", _number(m.precision, ".3f"), _number(m.recall, ".3f"),
            _shown(", ".join(m.no_evidence)),
        )  # fmt: skip
    console.print(counts)
    console.print(f"{acc.decided_differently:,} labelled pairs decided differently by the two models", highlight=False)
    console.print(f"[dim]{_shown(acc.method)}")


@models_app.command("export")
def export_command(
    db: Annotated[Path, typer.Option("--db", help="The store whose current model to write.")],
    out: Annotated[Path, typer.Option("--out", help="The model file to write, e.g. store_model.json.")],
    as_json: JsonOption = False,
) -> None:
    """Write the store's current model (the newest its link runs stored) as a model file, as `linkage train`
    writes one: to compare it with another (`linkage models compare`) or to link with it (`--model`)."""
    from linkage.model import export_stored
    from linkage.store import Store

    with Store(db, read_only=True) as store:
        model_id = export_stored(store, out)
    if as_json:
        _print_json({"model_id": model_id, "out": str(out)})
        return
    console.print(f"model {_shown(model_id)} written to {_shown(out)}", highlight=False)
