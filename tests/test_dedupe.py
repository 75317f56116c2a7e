"""`linkage dedupe` and `linkage train` end to end on the bundled sample (one trained run, shared)."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dedupe")
    result = runner.invoke(app, ["dedupe", str(SAMPLE / "applications.parquet"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


def pairwise_f1(clusters: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float, float]:
    m = clusters.merge(truth, on="record_id")
    tp = sum(comb(n, 2) for n in m.groupby(["identity_id", "person_id"]).size())
    predicted = sum(comb(n, 2) for n in m.groupby("identity_id").size())
    true = sum(comb(n, 2) for n in m.groupby("person_id").size())
    p, r = tp / predicted, tp / true
    return p, r, 2 * p * r / (p + r)


def test_outputs_cover_every_record(run: Path) -> None:
    clusters = pd.read_parquet(run / "clusters.parquet")
    assert list(clusters.columns) == ["record_id", "identity_id", "cluster_size"]
    assert len(clusters) == 20_000 and clusters.record_id.is_unique
    sizes = clusters.groupby("identity_id").size()
    assert (clusters.cluster_size == clusters.identity_id.map(sizes)).all()
    pairs = pd.read_parquet(run / "pairs.parquet")
    assert {"record_id_l", "record_id_r", "match_probability", "match_weight", "gamma_name", "gamma_nik"} <= set(
        pairs.columns
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["accepted"] == 20_000 and summary["model_trained"]
    assert set(summary["seconds"]) == {"ingest", "prepare", "train", "predict", "cluster", "write"}
    model = json.loads((run / "model.json").read_text())
    assert {"model_id", "data_fingerprint", "config_hash", "splink_version", "created_at"} <= set(model)
    assert (run / "match_weights.html").exists()


def test_quality_on_the_sample_beats_a_floor(run: Path) -> None:
    # The sample is small and hard (twins, siblings, common names); the benchmarks hold the real figures.
    p, r, f1 = pairwise_f1(pd.read_parquet(run / "clusters.parquet"), pd.read_parquet(SAMPLE / "truth.parquet"))
    assert p > 0.98 and r > 0.97 and f1 > 0.98


def test_saved_model_predicts_without_retraining(run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = runner.invoke(
        app,
        ["dedupe", str(SAMPLE / "applications.parquet"), "--out", str(again), "--model", str(run / "model.json"),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert not summary["model_trained"]
    assert summary["model_id"] == json.loads((run / "model.json").read_text())["model_id"]
    first = pd.read_parquet(run / "clusters.parquet").sort_values("record_id").reset_index(drop=True)
    second = pd.read_parquet(again / "clusters.parquet").sort_values("record_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)


def test_same_input_in_another_row_order_gives_the_same_identities(run: Path, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.parquet"
    pd.read_parquet(SAMPLE / "applications.parquet").sample(frac=1.0, random_state=3).to_parquet(shuffled)
    out = tmp_path / "shuffled-out"
    result = runner.invoke(app, ["dedupe", str(shuffled), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    first = pd.read_parquet(run / "clusters.parquet").sort_values("record_id").reset_index(drop=True)
    second = pd.read_parquet(out / "clusters.parquet").sort_values("record_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)
