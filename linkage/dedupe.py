"""``linkage train`` and ``linkage dedupe``: ingest, normalise, train (or load), predict, cluster, write.

:data:`STAGES` lists the stages in order; ``summary.json`` records each one's wall time. Every run
works in a store of its own inside the output folder, so a dedupe never touches the shared store.
"""

from __future__ import annotations

import json
import resource
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from linkage import cluster, model
from linkage.config import Config
from linkage.errors import InputError
from linkage.pipeline import Progress, ingest
from linkage.store import Store

__all__ = ["STAGES", "DedupeSummary", "dedupe", "train"]

STAGES: Final = ("ingest", "prepare", "train", "predict", "cluster", "write")


@dataclass
class DedupeSummary:
    """Counts, timings and provenance of one dedupe run (written as ``summary.json``)."""

    out: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    pairs_scored: int = 0
    identities: int = 0
    multi_record_identities: int = 0
    largest_identity: int = 0
    clusters_cut_by_guard: int = 0
    edges_cut_by_guard: int = 0
    model_id: str = ""
    model_trained: bool = False
    threshold: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fresh_store(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "store.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        if stale.exists():
            stale.unlink()  # the run's own working store from an earlier run into the same folder
    return db


def train(
    paths: Sequence[Path],
    config: Config,
    out: Path,
    *,
    spec_path: Path | None = None,
    progress: Progress | None = None,
) -> tuple[str, Path]:
    """Train a model on the given files without labels and write it to ``out`` (plus its charts).

    Returns:
        The model id and the folder holding the charts.
    """
    spec = _load_spec(spec_path)
    work = out.with_suffix(".work")
    db = _fresh_store(work)
    ingest(paths, config, db=db, progress=progress)
    with Store(db, memory_limit=config.store.memory_limit) as store:
        model.prepare(store.con, spec)
        linker = model.train(store.con, spec)
        model_id = model.save(
            linker, out, spec=spec, data_fingerprint=model.data_fingerprint(store.con), config_hash=config.fingerprint()
        )
        _charts(linker, work)
    return model_id, work


def _load_spec(path: Path | None) -> model.ModelSpec:
    """The model spec, its blocking rules checked against the model input before any long work."""
    spec = model.load_spec(path)
    with Store(":memory:") as scratch:  # the store's schema, no rows
        model.check_blocking(scratch.con, spec)
    return spec


def _charts(linker: Any, folder: Path) -> None:
    """Splink's match-weights and m/u charts of the trained parameters, as HTML."""
    with warnings.catch_warnings():
        # altair notes that Splink's charts repeat a selection parameter; harmless, and not the user's to fix
        warnings.simplefilter("ignore", UserWarning)
        linker.visualisations.match_weights_chart().save(str(folder / "match_weights.html"))
        linker.visualisations.m_u_parameters_chart().save(str(folder / "m_u_parameters.html"))


def _identities_by_size(clusters: Any) -> Any:
    """Identities per size, from each record's ``cluster_size`` (a string group-by takes seconds at 1M)."""
    records = clusters["cluster_size"].value_counts().sort_index()
    return (records // records.index).astype("int64")


def _report(
    path: Path, con: Any, linker: Any, predictions: str, clusters: Any, cut: float, summary: DedupeSummary
) -> None:
    """One HTML page: cluster sizes, match-weight distribution, the model's weights, borderline pairs.

    Charts carry counts and weights only; the borderline pairs' waterfalls are drawn without their
    values (Splink's ``remove_sensitive_data``), so the report holds no personal data.
    """
    import altair as alt

    sizes = _identities_by_size(clusters).rename_axis("size").reset_index(name="identities")
    size_axis = alt.Y("identities:Q", scale=alt.Scale(type="symlog"))  # singletons dwarf the rest
    size_chart = (
        alt.Chart(sizes, title="Identities by number of applications")
        .mark_bar()
        .encode(x=alt.X("size:O", title="applications in the identity"), y=size_axis)
    )
    # binned here: a chart of every pair would embed them all in the page
    weights = con.execute(
        "SELECT floor(match_weight) AS weight, count(*) AS pairs FROM scored_pairs GROUP BY 1 ORDER BY 1"
    ).df()
    weight_chart = (
        alt.Chart(weights, title=f"Match weights of scored pairs (threshold p = {cut})")
        .mark_bar()
        .encode(x=alt.X("weight:Q", title="match weight (bits)"), y="pairs:Q")
    )
    border = con.execute(
        "SELECT record_id_l, record_id_r FROM scored_pairs WHERE NOT vetoed ORDER BY abs(match_probability - ?), "
        "record_id_l, record_id_r LIMIT 5",
        [cut],
    ).fetchall()
    # Splink's chart specs as they are: through altair they were validated again (3 s of a 5 s report)
    model_chart = linker.visualisations.match_weights_chart().chart_dict
    specs = [size_chart.to_dict(), weight_chart.to_dict(), model_chart]
    waterfall = model.waterfalls(con, linker, predictions, [(a, b) for a, b in border])
    if waterfall is not None:
        specs.append(waterfall.chart_dict)
    shown = {k: v for k, v in summary.to_dict().items() if k not in ("seconds", "peak_rss_mb")}
    figures = "".join(f"<li>{k.replace('_', ' ')}: {v}</li>" for k, v in shown.items())
    divs = "".join(f'<div id="chart{i}"></div>' for i in range(len(specs)))
    calls = "".join(f"vegaEmbed('#chart{i}', {json.dumps(spec, default=str)});" for i, spec in enumerate(specs))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>linkage dedupe</title>"
        + "".join(f"<script>{source}</script>" for source in _chart_libraries())
        + f"</head><body><h1>linkage dedupe</h1><ul>{figures}</ul>"
        + "<p>Borderline pairs (nearest the threshold) are drawn with match weights only, no personal data.</p>"
        + f"{divs}<script>{calls}</script></body></html>",
        encoding="utf-8",
    )


def _chart_libraries() -> list[str]:
    """Vega, Vega-Lite and vega-embed as bundled with Splink: the report opens with no network."""
    from splink.internals.html_utils import load_chart_libraries

    libraries = load_chart_libraries()  # type: ignore[no-untyped-call]
    return [libraries[name] for name in ("vega", "vega-lite", "vega-embed")]


def dedupe(
    paths: Sequence[Path],
    config: Config,
    out: Path,
    *,
    model_path: Path | None = None,
    spec_path: Path | None = None,
    threshold: float | None = None,
    progress: Progress | None = None,
) -> DedupeSummary:
    """Deduplicate application files into identities; write clusters, pairs, summary and charts to ``out``.

    Args:
        paths: input files (CSV, Parquet, .xlsx).
        config: settings and column mapping.
        out: output folder (created).
        model_path: a model from ``linkage train``; prediction then never retrains.
        spec_path: the model spec (default ``configs/model.toml``).
        threshold: match probability at which records join one identity (default: the spec's).

    Raises:
        InputError: nothing was accepted, or the model file is missing.
    """
    spec = _load_spec(spec_path)
    cut = spec.threshold if threshold is None else threshold
    if not 0 < cut < 1:
        raise InputError(f"--threshold must be between 0 and 1, got {cut}")
    if model_path is not None and not model_path.exists():
        raise InputError(f"model file not found: {model_path} (make one with `linkage train`)")
    summary = DedupeSummary(out=str(out), threshold=cut)
    seconds = summary.seconds
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    db = _fresh_store(out)
    report = ingest(paths, config, db=db, progress=progress)
    summary.rows_read, summary.accepted, summary.quarantined = report.rows_read, report.accepted, report.quarantined
    if report.accepted == 0:
        raise InputError("no application was accepted: nothing to deduplicate (see the quarantine reasons)")
    lap("ingest")
    with Store(db, memory_limit=config.store.memory_limit) as store:
        con = store.con
        model.prepare(con, spec)
        lap("prepare")
        if model_path is None:
            linker = model.train(con, spec)
            summary.model_id = model.save(
                linker, out / "model.json", spec=spec, data_fingerprint=model.data_fingerprint(store.con),
                config_hash=config.fingerprint(),
            )  # fmt: skip
            summary.model_trained = True
        else:
            linker = model.load(con, model_path, spec)
            summary.model_id = str(json.loads(model_path.read_text(encoding="utf-8"))["model_id"])
        lap("train")
        floor = min(spec.review_floor, cut)
        summary.pairs_scored, predictions = model.predict(con, linker, spec, floor)
        lap("predict")
        # The guard reads the stated birth date and sex: the model's fall back to the NIK's, and a
        # borrowed NIK must not contradict on its own.
        records = con.execute(
            """SELECT m.record_id, m.nik, a.birth_date, m.mother_canonical AS mother_name_canonical,
                      a.sex, m.name_keys AS full_name_tokens
               FROM model_input m JOIN applications_normalised a ON a.record_id = m.record_id"""
        ).df()
        pairs = con.execute("SELECT record_id_l, record_id_r, match_probability FROM scored_pairs").df()
        clusters, found = cluster.cluster(records, pairs, cut)
        lap("cluster")
        clusters.to_parquet(out / "clusters.parquet", index=False)
        # in record-id order: the same input in any row order writes the same file
        con.execute(
            f"COPY (SELECT * FROM scored_pairs ORDER BY record_id_l, record_id_r) TO '{out / 'pairs.parquet'}' "
            "(FORMAT parquet)"
        )
        by_size = _identities_by_size(clusters)
        summary.identities = int(by_size.sum())
        summary.multi_record_identities = int(by_size[by_size.index > 1].sum())
        summary.largest_identity = int(by_size.index.max()) if len(by_size) else 0
        summary.clusters_cut_by_guard = int(getattr(found, "clusters_changed", 0))
        summary.edges_cut_by_guard = int(getattr(found, "edges_cut", 0))
        if summary.model_trained:
            _charts(linker, out)
        _report(out / "report.html", con, linker, predictions, clusters, cut, summary)
    lap("write")
    summary.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary


