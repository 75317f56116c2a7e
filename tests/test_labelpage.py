"""The analysts' labelling page, estimates page, charts and API (linkage/label_web.py, linkage/label_charts.py,
linkage.labels.store_label), through FastAPI's test client on the small linked store of tests/test_trace.py with
a sample of its pairs stored as a draw stores one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linkage.access import Role
from linkage.cli import app
from linkage.label_charts import FILES
from linkage.label_web import LABEL_TEXTS
from linkage.labels import LABELS
from linkage.store import Store
from tests.test_server import TOKENS, assert_error, call, client, with_users
from tests.test_trace import AT, linked_store
from tests.test_web import csrf_of, logged_in

SAMPLE = "S-page"
# (left, right, stratum, probability): the store's scored pairs inside identities, and one pair never scored
SAMPLED = [
    ("A1", "A2", "linked:strong", 0.99),
    ("B1", "B3", "linked:near", 0.97),
    ("C1", "C2", "linked:near", 0.95),
    ("D1", "D3", "linked:near", 0.95),
    ("E1", "E3", "linked:strong", 0.99),
    ("F1", "F2", "linked:strong", 0.99),
    ("B3", "B4", "linked:indirect", 0.5),
    ("A1", "U1", "unlinked:low", 0.05),
]


def with_sample(db: Path) -> Path:
    """Store a sample of ``SAMPLED`` in ``db`` the way :func:`linkage.sample.draw` stores one (its design, its
    pairs with their inclusion probabilities); the store's pairs are too few for a draw's broader rules."""
    population = {"linked:strong": 3, "linked:near": 3, "linked:indirect": 4, "unlinked:low": 10}
    drawn = {h: sum(s == h for _, _, s, _ in SAMPLED) for h in population}
    design = {"strata": [{"name": h, "population": n, "drawn": drawn[h], "mean_probability": None}
                         for h, n in population.items()], "broader_rules": []}  # fmt: skip
    with Store(db) as store:
        store.sql("INSERT INTO samples VALUES (?, now(), 'run-x', ?, 0.01, 0, ?, ?)",
                  [SAMPLE, AT, len(SAMPLED), json.dumps(design)])  # fmt: skip
        for left, right, stratum, p in SAMPLED:
            store.sql("INSERT INTO sample_pairs VALUES (?, ?, ?, ?, ?, ?)",
                      [SAMPLE, left, right, stratum, drawn[stratum] / population[stratum], p])  # fmt: skip
    return db


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_sample(linked_store(tmp_path_factory.mktemp("labelpage"), AT))


@pytest.fixture
def db(linked: Path, tmp_path: Path) -> Path:
    return with_users(linked, tmp_path)


def stored_labels(db: Path) -> list[tuple[Any, ...]]:
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        return store.rows("SELECT record_id_l, record_id_r, label, labeller, note, sample_id FROM labels "
                          "ORDER BY label_no")  # fmt: skip


def shown_pair(html: str) -> tuple[str, str]:
    found = re.search(r'id="pair" data-record-l="([^"]+)" data-record-r="([^"]+)"', html)
    assert found, "the page shows no pair"
    return found.group(1), found.group(2)


def progress_of(html: str) -> tuple[int, int]:
    found = re.search(r'id="progress" data-done="(\d+)" data-total="(\d+)"', html)
    assert found
    return int(found.group(1)), int(found.group(2))


def label(page: Any, left: str, right: str, value: str, note: str = "", sample: str = SAMPLE) -> Any:
    csrf = csrf_of(page.get("/labels").text)
    return page.post("/labels", data={"csrf": csrf, "sample": sample, "record_id_l": left, "record_id_r": right,
                                      "label": value, "note": note})  # fmt: skip


BLIND_MARKS = ('class="waterfall"', "model-probability", "linked:", "unlinked:", "inclusion")


def test_the_page_hides_the_models_view_until_labelled_then_shows_probability_and_waterfall(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    before = page.get("/labels/A1/A2?lang=en")
    assert before.status_code == 200, before.text
    assert not [m for m in BLIND_MARKS if m in before.text] and "0.990" not in before.text
    # asking for the model's view of a pair not labelled yet does not show it either
    assert not [m for m in BLIND_MARKS if m in page.get("/labels?after_l=A1&after_r=A2").text]

    answer = label(page, "A1", "A2", "match", note="same <b>mother</b>")
    assert answer.status_code == 303, answer.text
    after = page.get(answer.headers["location"].split("#")[0] + "&lang=en").text
    shown = after[after.index('id="previous"') : after.index("</section>", after.index('id="previous"'))]
    assert "model-probability" in shown and "0.990" in shown  # the pair's latest score (RUN2's)
    waterfall = shown[shown.index('class="waterfall"') :]
    assert [c for c in ("name", "nik", "dob", "mother") if f"<td>{c}</td>" in waterfall] == ["name", "nik", "dob",
                                                                                             "mother"]  # fmt: skip
    assert "+12.00" in waterfall and "-1.00" in waterfall  # each comparison's weight, against ones too
    assert "same &lt;b&gt;mother&lt;/b&gt;" in shown  # the note, escaped
    assert shown_pair(after) != ("A1", "A2")  # and the next pair, still blind
    rest = after[after.index('id="pair"') :]
    assert not [m for m in BLIND_MARKS if m in rest]
    # the pair's own page shows the model's view too, now that this analyst labelled it
    assert 'class="waterfall"' in page.get("/labels/A2/A1").text


def test_a_pair_never_scored_shows_the_samples_probability_and_no_waterfall_after_the_label(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    after = page.get(label(page, "A1", "U1", "non-match").headers["location"].split("#")[0] + "&lang=en").text
    assert "0.050" in after and "no score breakdown" in after


def test_the_fields_that_differ_are_marked(db: Path) -> None:
    html = logged_in(db, Role.ANALYST).get("/labels/A1/A2").text
    row = re.search(r'<tr id="field-full_name" class="(\w+)">(.*?)</tr>', html, re.S)
    assert row and row.group(1) == "differs" and "≠" in row.group(2)
    assert "Siti Aminah" in row.group(2) and "Sitti Aminah binti Sukardi" in row.group(2)  # side by side
    same = re.search(r'<tr id="field-birth_date" class="(\w+)">(.*?)</tr>', html, re.S)
    assert same and same.group(1) == "same" and "≠" not in same.group(2)  # both blank: no difference


def test_a_label_is_stored_with_the_users_name_and_the_progress_counts(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    first = page.get("/labels").text
    assert progress_of(first) == (0, len(SAMPLED))
    left, right = shown_pair(first)
    assert label(page, left, right, "unsure", note="foto buram").status_code == 303
    assert stored_labels(db) == [(left, right, "unsure", "user-analyst", "foto buram", SAMPLE)]
    second = page.get("/labels").text
    assert progress_of(second) == (1, len(SAMPLED)) and shown_pair(second) != (left, right)
    # another analyst's progress is their own
    assert progress_of(logged_in(db, Role.ADMIN).get("/labels").text) == (0, len(SAMPLED))


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_page_names_its_buttons_and_keys_in_both_languages(db: Path, lang: str) -> None:
    html = logged_in(db, Role.ANALYST).get(f"/labels?lang={lang}").text
    texts = LABEL_TEXTS[lang]
    assert texts["shortcuts"] in html and texts["progress"].split(":")[0] in html and "built-in" not in html
    for value, key in (("match", "m"), ("non-match", "n"), ("unsure", "u")):
        assert f'value="{value}" data-key="{key}"' in html and f"{texts['labels'][value]} ({key})" in html
    assert 'class="primary">' in html  # the first button, styled as the page's main action


def test_both_languages_have_the_same_texts() -> None:
    assert set(LABEL_TEXTS["id"]) == set(LABEL_TEXTS["en"])
    assert set(LABEL_TEXTS["id"]["labels"]) == set(LABEL_TEXTS["en"]["labels"]) == set(LABELS)


def test_every_pair_labelled_says_so(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    for left, right, *_ in SAMPLED:
        assert label(page, right, left, "match").status_code == 303  # either order names the pair
    html = page.get("/labels").text
    assert 'id="all-done"' in html and progress_of(html) == (len(SAMPLED), len(SAMPLED))


def test_a_label_without_the_csrf_token_or_with_a_bad_label_stores_nothing(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    refused = page.post("/labels", data={"record_id_l": "A1", "record_id_r": "A2", "label": "match"})
    assert refused.status_code == 403
    bad = label(page, "A1", "A2", "maybe")
    assert bad.status_code == 400 and "&#39;maybe&#39;" in bad.text and "Traceback" not in bad.text
    assert label(page, "A1", "B1", "match").status_code == 400  # a pair of no sample
    assert stored_labels(db) == []


@pytest.mark.parametrize("path", ["/labels", "/labels/A1/A2", "/estimates"])
def test_an_officer_may_not_open_the_analysts_pages(db: Path, path: str) -> None:
    response = logged_in(db, Role.OFFICER).get(path)
    assert response.status_code == 403 and "may not" in response.text


def test_an_officer_may_not_post_a_label(db: Path) -> None:
    page = logged_in(db, Role.OFFICER)
    csrf = csrf_of(page.get("/").text)
    response = page.post("/labels", data={"csrf": csrf, "record_id_l": "A1", "record_id_r": "A2", "label": "match"})
    assert response.status_code == 403 and stored_labels(db) == []


def test_the_estimates_page_shows_the_figures_strata_and_two_offline_charts(db: Path) -> None:
    page = logged_in(db, Role.ANALYST)
    for (left, right, *_), value in zip(SAMPLED, ["match"] * 5 + ["non-match", "unsure", "non-match"], strict=True):
        label(page, left, right, value)
    html = page.get("/estimates?lang=en").text
    assert "pairwise precision" in html and "pairwise recall" in html and " – " in html
    assert "unsure: 1" in html and "disputed: 0" in html and "Beta(k + 1/2" in html
    assert all(f"<td>{h}</td>" in html for h in ("linked:strong", "linked:near", "outside:check"))
    assert html.count("<svg") == 2 and "threshold" in html and "recall" in html
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing fetched: the charts are inline SVG


def test_the_api_lists_samples_and_their_pairs_with_both_records_fields(db: Path) -> None:
    api, token = client(db), TOKENS[Role.ANALYST]
    listed = call(api, "GET", "/v1/samples", None, token).json()["samples"]
    assert [(s["sample_id"], s["pairs"], s["labelled"]) for s in listed] == [(SAMPLE, len(SAMPLED), 0)]
    pairs = call(api, "GET", f"/v1/samples/{SAMPLE}/pairs?unlabelled=1&limit=3", None, token).json()["pairs"]
    assert len(pairs) == 3 and pairs[0]["left"]["full_name"] and "office" in pairs[0]["right"]
    first = pairs[0]
    assert call(api, "POST", "/v1/labels", {"record_id_l": first["record_id_r"], "record_id_r": first["record_id_l"],
                                            "label": "Match", "note": None}, token).status_code == 200  # fmt: skip
    again = call(api, "GET", f"/v1/samples/{SAMPLE}/pairs?unlabelled=1&limit=1000", None, token).json()["pairs"]
    assert len(again) == len(SAMPLED) - 1
    assert (first["record_id_l"], first["record_id_r"]) not in {(p["record_id_l"], p["record_id_r"]) for p in again}
    assert len(call(api, "GET", f"/v1/samples/{SAMPLE}/pairs", None, token).json()["pairs"]) == len(SAMPLED)
    assert call(api, "GET", "/v1/samples", None, token).json()["samples"][0]["labelled"] == 1
    assert stored_labels(db) == [(first["record_id_l"], first["record_id_r"], "match", "user-analyst", None, SAMPLE)]


def test_the_api_refuses_bad_input_in_its_one_error_shape(db: Path) -> None:
    api, token = client(db), TOKENS[Role.ANALYST]
    assert_error(call(api, "GET", "/v1/samples/S-none/pairs", None, token), 404)
    assert_error(call(api, "GET", f"/v1/samples/{SAMPLE}/pairs?limit=0", None, token), 400)
    bad_label = assert_error(call(api, "POST", "/v1/labels", {"record_id_l": "A1", "record_id_r": "A2",
                                                              "label": "yes"}, token), 400)  # fmt: skip
    assert "'yes'" in bad_label["message"]
    no_sample = assert_error(call(api, "POST", "/v1/labels", {"record_id_l": "A1", "record_id_r": "B1",
                                                              "label": "match"}, token), 400)  # fmt: skip
    assert "no sample" in no_sample["message"]
    assert_error(call(api, "POST", "/v1/labels", {"record_id_l": "A1", "label": "match"}, token), 422)
    assert_error(call(api, "GET", "/v1/estimates", None, token), 400)  # no label yet
    assert stored_labels(db) == []


def test_the_api_estimates_at_the_stores_identities_and_at_a_threshold(db: Path) -> None:
    api, token = client(db), TOKENS[Role.ANALYST]
    for left, right, *_ in SAMPLED[:5]:
        call(api, "POST", "/v1/labels", {"record_id_l": left, "record_id_r": right, "label": "match"}, token)
    call(api, "POST", "/v1/labels", {"record_id_l": "A1", "record_id_r": "U1", "label": "non-match"}, token)
    found = call(api, "GET", "/v1/estimates", None, token).json()
    assert found["sample_id"] == SAMPLE and found["labels"] == 6 and found["threshold"] == AT
    p = found["pairwise_precision"]
    assert p["low"] <= p["estimate"] <= p["high"] and 0 < p["low"] < 1
    at = call(api, "GET", f"/v1/estimates?threshold=0.95&sample={SAMPLE}", None, token).json()
    assert at["threshold"] == 0.95 and at["pairwise_recall"]["estimate"] <= 1
    assert_error(call(api, "GET", "/v1/estimates?threshold=2", None, token), 400)
    assert_error(call(api, "GET", "/v1/estimates?sample=S-none", None, token), 400)


def test_evaluate_labels_out_writes_the_two_charts_offline(db: Path, tmp_path: Path) -> None:
    with Store(db) as store:
        from linkage.labels import store_label

        for (left, right, *_), value in zip(SAMPLED, ["match"] * 6 + ["non-match"] * 2, strict=True):
            store_label(store, left, right, value, "ana")
    out = tmp_path / "charts"
    done = CliRunner().invoke(app, ["evaluate", "--labels", "--db", str(db), "--out", str(out), "--json"])
    assert done.exit_code == 0, done.output
    for name in FILES:
        text = (out / name).read_text(encoding="utf-8")
        assert text.count("<svg") == 1 and "<circle" in text
        assert not re.search(r"<script[^>]*\bsrc=", text) and "<link" not in text  # opens with no network
    assert "0.99" in (out / "labels_threshold.html").read_text(encoding="utf-8")  # the thresholds on the axis


def test_store_label_is_the_insert_review_import_uses(db: Path, tmp_path: Path) -> None:
    from linkage.labels import import_labels, store_label

    sheet = tmp_path / "filled.csv"
    sheet.write_text("record_id_l,record_id_r,label,note\nA2,A1,match,\nB1,B3,,\n", encoding="utf-8")
    with Store(db) as store:
        assert import_labels(store, sheet, by="ana").stored["match"] == 1
        assert store_label(store, "C2", "C1", " Non-Match ", "budi", "x") == SAMPLE
    assert stored_labels(db) == [("A1", "A2", "match", "ana", None, SAMPLE), ("C1", "C2", "non-match", "budi", "x",
                                                                            SAMPLE)]  # fmt: skip


@pytest.mark.slow  # linking 1,000 sample applications with the shipped model takes about 10 s
def test_a_drawn_sample_of_a_store_linked_with_the_model_is_labelled_and_estimated(tmp_path: Path) -> None:
    """The whole path on a real draw: :func:`linkage.sample.draw` on a store the shipped model linked, the
    page's waterfall in the model's own comparisons, labels through the API, the estimates from them."""
    from linkage.sample import draw
    from linkage.spec import load_spec
    from tests.test_web import modelled_store

    source, _, _ = modelled_store(tmp_path)
    with Store(source) as store:
        sample = draw(store, load_spec(None), 12, seed=1)
        comparisons = store.rows("SELECT comparisons FROM models ORDER BY created_at DESC LIMIT 1")[0][0]
    (tmp_path / "u").mkdir()
    db = with_users(source, tmp_path / "u")
    page, api, token = logged_in(db, Role.ANALYST), client(db), TOKENS[Role.ANALYST]
    html = page.get("/labels?lang=en").text
    assert progress_of(html) == (0, len(sample.pairs)) and SAMPLE not in html and sample.sample_id in html
    left, right = shown_pair(html)
    assert not [m for m in BLIND_MARKS if m in html[html.index('id="pair"') :]]
    after = page.get(
        label(page, left, right, "match", sample=sample.sample_id).headers["location"].split("#")[0] + "&lang=en"
    ).text
    stored = sample.pairs[
        sample.pairs["stratum"].isin(["linked:strong", "linked:near"])
        | sample.pairs["stratum"].str.startswith("unlinked:")
    ]  # pairs the link scored and kept
    if (left, right) in set(zip(stored["record_id_l"], stored["record_id_r"], strict=True)):
        assert 'class="waterfall"' in after and all(f"<td>{c}</td>" in after for c in comparisons)
    pairs = call(api, "GET", f"/v1/samples/{sample.sample_id}/pairs?unlabelled=1", None, token).json()["pairs"]
    assert len(pairs) == len(sample.pairs) - 1
    for pair in pairs:
        body = {"record_id_l": pair["record_id_l"], "record_id_r": pair["record_id_r"], "label": "match"}
        assert call(api, "POST", "/v1/labels", body, token).status_code == 200
    found = call(api, "GET", "/v1/estimates", None, token).json()
    assert found["labels"] == len(sample.pairs) and found["sample_id"] == sample.sample_id
