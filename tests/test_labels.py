"""Labelling samples, labels and the estimates from them (issue 14: linkage.sample, linkage.labels, linkage.estimate).

The estimator is checked on small designs computed by hand; the sampler's allocation on its own; the labels'
import on good and bad files; and the whole path (draw, CSV, import, estimate, CLI) on a linked sample store.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.errors import InputError
from linkage.estimate import estimate
from linkage.labels import import_labels, standing
from linkage.sample import FIELDS, STRATA, allocate
from linkage.store import Store

runner = CliRunner()


def design_store(folder: Path, strata: dict[str, tuple[int, list[str]]], threshold: float = 0.9) -> Path:
    """A store holding one sample: per stratum its population and the labels of its drawn pairs, in order
    (``""``: drawn, not labelled). Pair ids are made up; the estimator reads only the design and the labels."""
    db = folder / "design.duckdb"
    with Store(db, create=True) as store:
        design = {"strata": [{"name": h, "population": n, "drawn": len(labels), "mean_probability": None}
                             for h, (n, labels) in strata.items()]}  # fmt: skip
        store.sql("INSERT INTO samples VALUES ('S-1', now(), 'run-1', ?, 0.01, 0, 1, ?)",
                  [threshold, json.dumps(design)])  # fmt: skip
        for h, (_, labels) in strata.items():
            for i, label in enumerate(labels):
                a, b = f"{h}-{i}-a", f"{h}-{i}-b"
                store.sql("INSERT INTO sample_pairs VALUES ('S-1', ?, ?, ?, 0.5, 0.5)", [a, b, h])
                if label:
                    store.sql(
                        """INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                           VALUES (?, ?, ?, 'ana', now(), 'S-1')""",
                        [a, b, label],
                    )
    return db


M, N = "match", "non-match"


def test_the_estimates_of_a_small_design_are_those_computed_by_hand(tmp_path: Path) -> None:
    db = design_store(tmp_path, {
        "linked:strong": (100, [M] * 9 + [N]),          # rate 0.9: 90 true of the 100 predicted pairs
        "unlinked:near": (20, [M] * 5 + [N] * 5),       # rate 0.5: 10 missed matches
        "unlinked:low": (50, [N] * 5),                  # none
        "outside:scored": (4, [M, N]),                  # rate 0.5: 2 more
        "outside:check": (1000, [N, N, ""]),            # checked, not estimated
    })  # fmt: skip
    with Store(db) as store:
        found = estimate(store, draws=2000)
    tp, fn, predicted = 90, 10 + 0 + 2, 100
    assert found.predicted_pairs == predicted
    assert found.pairwise_precision.estimate == pytest.approx(tp / predicted)
    assert found.pairwise_recall.estimate == pytest.approx(tp / (tp + fn))
    assert found.pairwise_f1.estimate == pytest.approx(2 * tp / (predicted + tp + fn))
    for figure in (found.pairwise_precision, found.pairwise_recall, found.pairwise_f1):
        assert figure.low <= figure.estimate <= figure.high and figure.high - figure.low > 0.01
    assert (found.labels, found.check_labelled, found.check_matches) == (29, 2, 0)  # (the check slice's two too)
    by = {s.stratum: s for s in found.strata}
    assert (by["linked:strong"].labelled, by["linked:strong"].matches, by["linked:strong"].predicted) == (10, 9, 100)
    assert found.threshold == 0.9 and not found.stale


def test_agreeing_labels_leave_an_interval_open_and_more_labels_narrow_it(tmp_path: Path) -> None:
    """Jeffreys' prior: ten matches of ten do not make a precision of 1 certain; a hundred narrow it."""
    widths = []
    for k in (10, 100):
        folder = tmp_path / str(k)
        folder.mkdir()
        db = design_store(folder, {"linked:strong": (1000, [M] * k), "unlinked:near": (10, [N] * 5)})
        with Store(db) as store:
            found = estimate(store)
        assert found.pairwise_precision.estimate == 1.0 and found.pairwise_precision.high == 1.0
        widths.append(1 - found.pairwise_precision.low)
    assert widths[0] > 0.05 and widths[1] < widths[0] / 4, widths


def test_unsure_and_disputed_pairs_count_in_no_estimate(tmp_path: Path) -> None:
    db = design_store(tmp_path, {"linked:strong": (10, [M, M, "unsure", M]), "unlinked:near": (10, [N, N])})
    with Store(db) as store:
        # a second labeller disagrees on the first pair: disputed
        store.sql("""INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                     VALUES ('linked:strong-0-a', 'linked:strong-0-b', 'non-match', 'budi', now(), 'S-1')""")
        labels = standing(store).set_index("record_id_l")["label"].to_dict()
        found = estimate(store)
    assert labels["linked:strong-0-a"] == "disputed" and labels["linked:strong-2-a"] == "unsure"
    assert (found.labels, found.unsure, found.disputed) == (4, 1, 1)


def test_disagreements_are_listed_with_each_labellers_label(tmp_path: Path) -> None:
    db = design_store(tmp_path, {"linked:strong": (10, [M, M]), "unlinked:near": (10, [N])})
    with Store(db) as store:
        store.sql("""INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                     VALUES ('linked:strong-1-a', 'linked:strong-1-b', 'non-match', 'budi', now(), 'S-1')""")
    done = runner.invoke(app, ["review", "disagreements", "--db", str(db), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"pairs_labelled": 3, "disputed": [
        {"record_id_l": "linked:strong-1-a", "record_id_r": "linked:strong-1-b",
         "labels": ["ana: match", "budi: non-match"]}]}  # fmt: skip
    done = runner.invoke(app, ["review", "disagreements", "--db", str(db)])
    assert done.exit_code == 0 and "1 disputed of 3 labelled pairs" in done.stdout


def test_a_labellers_latest_label_stands(tmp_path: Path) -> None:
    db = design_store(tmp_path, {"linked:strong": (10, [N]), "unlinked:near": (10, [N])})
    with Store(db) as store:
        store.sql("""INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, sample_id)
                     VALUES ('linked:strong-0-a', 'linked:strong-0-b', 'match', 'ana', now() + INTERVAL 1 MINUTE,
                             'S-1')""")
        assert standing(store).set_index("record_id_l")["label"]["linked:strong-0-a"] == "match"


def test_estimates_need_a_sample_and_labels(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.duckdb", create=True) as store, pytest.raises(InputError, match="no sample yet"):
        estimate(store)
    db = design_store(tmp_path, {"linked:strong": (10, ["", ""])})
    with Store(db) as store:
        with pytest.raises(InputError, match="no pair labelled"):
            estimate(store)
        with pytest.raises(InputError, match="no sample 'S-9'"):
            estimate(store, sample_id="S-9")


# ------------------------------------------------------------------------------------------- allocation


@given(st.integers(1, 2000), st.lists(st.tuples(st.integers(0, 5000), st.floats(0, 1)), min_size=8, max_size=8))
def test_allocation_spends_every_label_it_can_and_never_more_than_a_stratum_holds(
    n: int, strata: list[tuple[int, float]]
) -> None:
    sizes = {h: (size, mean) for h, (size, mean) in zip(STRATA, strata, strict=True)}
    got = allocate(n, sizes)
    assert all(0 <= got[h] <= sizes[h][0] for h in STRATA)
    estimated_room = sum(size for h, (size, _) in sizes.items() if h != "outside:check")
    assert sum(got.values()) <= n
    assert sum(got.values()) >= min(n, estimated_room) or sum(got.values()) == n


def test_the_threshold_sides_get_their_floor_share() -> None:
    sizes = {h: (10_000, 0.999 if h.startswith("linked") else 0.01) for h in STRATA}
    got = allocate(300, sizes)
    assert got["unlinked:near"] >= 45 and got["linked:near"] >= 30 and got["outside:check"] == 15
    assert sum(got.values()) == 300


# ------------------------------------------------------------------------------------------- a real store


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.test_trace import linked_sample

    return linked_sample(tmp_path_factory.mktemp("labels"))


TRUTH = Path(__file__).resolve().parents[1] / "data" / "sample" / "truth.parquet"


def _filled(csv: Path) -> pd.DataFrame:
    truth = pd.read_parquet(TRUTH)
    person = dict(zip(truth["record_id"], truth["person_id"], strict=True))
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pairs = zip(frame.record_id_l, frame.record_id_r, strict=True)
    frame["label"] = [M if person[a] == person[b] else N for a, b in pairs]
    return frame


@pytest.mark.slow
def test_a_sample_is_drawn_labelled_imported_and_estimated_through_the_cli(linked: Path, tmp_path: Path) -> None:
    out = tmp_path / "sample.csv"
    done = runner.invoke(app, ["review", "sample", "--db", str(linked), "--n", "120", "--seed", "3", "--out", str(out),
                               "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    drawn = json.loads(done.stdout)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns[:6]) == ["record_id_l", "record_id_r", "match_probability", "stratum",
                                       "inclusion_probability", "label"]  # fmt: skip
    assert list(frame.columns[6:]) == [f"{f}_{side}" for f in FIELDS for side in "lr"]
    assert len(frame) == drawn["pairs"] == 120 and set(frame["label"]) == {""}
    assert (frame["record_id_l"] < frame["record_id_r"]).all()
    strata = {s["name"]: s for s in drawn["strata"]}
    for stratum, group in frame.groupby("stratum"):
        expected = strata[stratum]["drawn"] / strata[stratum]["population"]
        assert all(math.isclose(float(p), expected) for p in group["inclusion_probability"])
    # the same store, size and seed draw the same pairs
    again = tmp_path / "again.csv"
    assert runner.invoke(app, ["review", "sample", "--db", str(linked), "--n", "120", "--seed", "3", "--out",
                               str(again)]).exit_code == 0  # fmt: skip
    assert pd.read_csv(again, dtype=str, keep_default_na=False)[["record_id_l", "record_id_r"]].equals(
        frame[["record_id_l", "record_id_r"]]
    )
    filled = _filled(out)
    filled.loc[filled.index[-5:], "label"] = ""  # five left for later
    filled.to_csv(out, index=False)
    done = runner.invoke(app, ["review", "import", str(out), "--db", str(linked), "--by", "ana", "--json"])
    assert done.exit_code == 0, done.output
    imported = json.loads(done.stdout)
    assert imported["blank"] == 5 and sum(imported["stored"].values()) == 115 and imported["reconciles"]
    done = runner.invoke(app, ["evaluate", "--labels", "--db", str(linked), "--sample", drawn["sample_id"], "--json"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["labels"] == 115 and found["sample_id"] == drawn["sample_id"]
    for figure in ("pairwise_precision", "pairwise_recall", "pairwise_f1"):
        assert 0.8 <= found[figure]["low"] <= found[figure]["estimate"] <= found[figure]["high"] <= 1
    done = runner.invoke(app, ["evaluate", "--labels", "--db", str(linked), "--sample", drawn["sample_id"],
                               "--threshold", "0.5"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "pairwise precision" in done.stdout and "Labels by stratum" in done.stdout


def test_a_bad_labels_file_is_refused_whole_with_each_line_named(linked: Path, tmp_path: Path) -> None:
    from linkage.sample import draw, write_csv
    from linkage.spec import load_spec

    with Store(linked) as store:
        sample = draw(store, load_spec(None), 10, seed=1)
        write_csv(store, sample, tmp_path / "s.csv")
        before = store.scalar("SELECT count(*) FROM labels")
    frame = _filled(tmp_path / "s.csv")
    frame.loc[0, "label"] = "maybe"
    swapped = frame.loc[1, ["record_id_r", "record_id_l"]].to_numpy()
    frame.loc[1, ["record_id_l", "record_id_r"]] = swapped  # (either order is the pair)
    frame.loc[2, "record_id_l"] = "NOT-A-RECORD"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with Store(linked) as store:
        with pytest.raises(InputError, match="2 bad row") as caught:
            import_labels(store, tmp_path / "bad.csv", "ana")
        assert store.scalar("SELECT count(*) FROM labels") == before  # nothing half-stored
    text = str(caught.value)
    assert "row 2" in text and "'maybe'" in text and "row 4" in text and "NOT-A-RECORD" in text
    done = runner.invoke(app, ["review", "import", str(tmp_path / "bad.csv"), "--db", str(linked), "--by", "ana"])
    assert done.exit_code == 1 and "Traceback" not in done.output
    frame.loc[0, "label"] = "MATCH "
    frame.loc[2, "record_id_l"] = _filled(tmp_path / "s.csv").loc[2, "record_id_l"]
    frame.to_csv(tmp_path / "good.csv", index=False)
    with Store(linked) as store:
        report = import_labels(store, tmp_path / "good.csv", "ana")
        assert report.reconciles and sum(report.stored.values()) == 10
        assert store.scalar("SELECT count(*) FROM labels") == before + 10
    with Store(linked) as store, pytest.raises(InputError, match="--by"):
        import_labels(store, tmp_path / "good.csv", "  ")



def test_samples_are_drawn_and_models_compared_through_the_api(linked: Path, tmp_path: Path) -> None:
    """Item 5's write and model paths: ``POST /v1/samples`` draws as `review sample` does (analysts: write_labels),
    ``GET /v1/models`` lists the store's models and ``GET /v1/models/compare`` sets two side by side (analysts:
    read_evaluations); officers 403, no token 401, bad input in the one error shape."""
    from fastapi.testclient import TestClient

    from linkage.access import Role
    from linkage.server import create_app
    from tests.test_server import TOKENS, assert_error, call, with_users

    db = with_users(linked, tmp_path)
    with TestClient(create_app(db), raise_server_exceptions=False) as api:
        analyst, officer = TOKENS[Role.ANALYST], TOKENS[Role.OFFICER]
        drawn = call(api, "POST", "/v1/samples", {"n": 40, "seed": 5}, analyst)
        assert drawn.status_code == 200, drawn.text
        found = drawn.json()
        assert found["pairs"] == 40 and sum(s["drawn"] for s in found["strata"]) == 40
        listed = call(api, "GET", "/v1/samples", None, analyst).json()["samples"]
        assert found["sample_id"] in {s["sample_id"] for s in listed}
        models = call(api, "GET", "/v1/models", None, analyst).json()["models"]
        assert len(models) >= 1 and models[0]["comparisons"]
        model = models[0]["model_id"]
        compared = call(api, "GET", f"/v1/models/compare?a={model}&b={model}", None, analyst)
        assert compared.status_code == 200, compared.text
        assert compared.json()["model_a"] == compared.json()["model_b"] == model
        assert "no model 'M-none'" in assert_error(
            call(api, "GET", f"/v1/models/compare?a={model}&b=M-none", None, analyst), 404)["message"]
        assert_error(call(api, "POST", "/v1/samples", {"n": 0}, analyst), 422)
        assert_error(call(api, "POST", "/v1/samples", {"n": 5, "sql": "DROP TABLE labels"}, analyst), 422)
        for method, path, body in (("POST", "/v1/samples", {"n": 5}), ("GET", "/v1/models", None),
                                   ("GET", f"/v1/models/compare?a={model}&b={model}", None)):  # fmt: skip
            assert_error(call(api, method, path, body, officer), 403)
            assert_error(call(api, method, path, body, None), 401)
