"""Evaluation: figures on hand-computed examples, edge cases, brute-force and networkx differentials, the CLI."""

from __future__ import annotations

import itertools
import json
import random
from datetime import date
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.errors import InputError
from linkage.evaluate import Metrics, evaluate
from linkage.graph import component_labels
from linkage.measure import load_table
from linkage.normalise import COLUMNS as NORMALISED_COLUMNS
from linkage.store import Store
from linkage.sweep import pr_chart, sweep, write_report
from linkage.tables import arrow_table


def connected_components(n: int, left: object, right: object) -> np.ndarray:
    """The components the sweep clusters with (linkage.graph.component_labels), on any sequences of ends."""
    return component_labels(n, np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64))


def frames(clusters: dict[str, str], truth: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.DataFrame({"record_id": list(clusters), "identity_id": list(clusters.values())}),
        pd.DataFrame({"record_id": list(truth), "person_id": list(truth.values())}),
    )


# ------------------------------------------------------------------------------ pairwise and B-cubed


def test_pairwise_and_bcubed_on_a_hand_computed_example() -> None:
    # identities X = {a, b, c}, Y = {d, e}, Z = {f}; persons p = {a, b}, q = {c, d, e, f}
    clusters, truth = frames(
        {"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Y", "f": "Z"},
        {"a": "p", "b": "p", "c": "q", "d": "q", "e": "q", "f": "q"},
    )
    m = evaluate(clusters, truth)
    # contingency n_ij: (X,p) = 2, (X,q) = 1, (Y,q) = 2, (Z,q) = 1
    # correct   = C(2,2) + C(1,2) + C(2,2) + C(1,2) = 1 + 0 + 1 + 0 = 2
    # predicted = C(3,2) + C(2,2) + C(1,2)          = 3 + 1 + 0     = 4
    # true      = C(2,2) + C(4,2)                   = 1 + 6         = 7
    assert (m.pairs_correct, m.pairs_predicted, m.pairs_true) == (2, 4, 7)
    assert m.pairwise_precision == pytest.approx(2 / 4)
    assert m.pairwise_recall == pytest.approx(2 / 7)
    # F1 = 2 * 1/2 * 2/7 / (1/2 + 2/7) = (2/7) / (11/14) = 4/11
    assert m.pairwise_f1 == pytest.approx(4 / 11)
    # B-cubed precision, n_ij / n_i per record: a 2/3, b 2/3, c 1/3, d 2/2, e 2/2, f 1/1 -> (14/3) / 6 = 7/9
    assert m.bcubed_precision == pytest.approx(7 / 9)
    # B-cubed recall, n_ij / n_j per record: a 2/2, b 2/2, c 1/4, d 2/4, e 2/4, f 1/4 -> 3.5 / 6 = 7/12
    assert m.bcubed_recall == pytest.approx(7 / 12)
    # F1 = 2 * 7/9 * 7/12 / (7/9 + 7/12) = (98/108) / (49/36) = 2/3
    assert m.bcubed_f1 == pytest.approx(2 / 3)
    assert (m.records, m.identities, m.persons) == (6, 3, 2)
    assert m.applications is None and m.relative_pairs is None


def test_all_singletons_score_one_not_zero_over_zero() -> None:
    clusters, truth = frames({"a": "1", "b": "2", "c": "3"}, {"a": "p", "b": "q", "c": "r"})
    m = evaluate(clusters, truth)
    # no predicted pairs -> P = 1 by definition; no true pairs -> R = 1
    assert (m.pairs_predicted, m.pairs_true) == (0, 0)
    assert (m.pairwise_precision, m.pairwise_recall, m.pairwise_f1) == (1.0, 1.0, 1.0)
    assert (m.bcubed_precision, m.bcubed_recall, m.bcubed_f1) == (1.0, 1.0, 1.0)


def test_singleton_clusters_against_one_person() -> None:
    clusters, truth = frames({"a": "1", "b": "2", "c": "3", "d": "4"}, dict.fromkeys("abcd", "p"))
    m = evaluate(clusters, truth)
    # predicted 0 -> P = 1; true C(4,2) = 6, correct 0 -> R = 0; F1 = 0
    assert (m.pairwise_precision, m.pairwise_recall, m.pairwise_f1) == (1.0, 0.0, 0.0)
    # B-cubed recall: every record finds 1 of its person's 4 records -> 1/4
    assert (m.bcubed_precision, m.bcubed_recall) == (1.0, 0.25)
    assert m.bcubed_f1 == pytest.approx(2 * 0.25 / 1.25)  # = 0.4


def test_one_big_cluster_against_singletons() -> None:
    clusters, truth = frames(dict.fromkeys("abcd", "X"), {"a": "p", "b": "q", "c": "r", "d": "s"})
    m = evaluate(clusters, truth)
    # predicted C(4,2) = 6, correct 0 -> P = 0; no true pairs -> R = 1
    assert (m.pairwise_precision, m.pairwise_recall, m.pairwise_f1) == (0.0, 1.0, 0.0)
    # B-cubed precision: each record is 1 of 4 in its cluster -> 1/4
    assert (m.bcubed_precision, m.bcubed_recall) == (0.25, 1.0)


def test_empty_inputs() -> None:
    clusters, truth = frames({}, {})
    m = evaluate(clusters, truth, applications=_apps([]), relatives=_relatives([]))
    assert (m.records, m.identities, m.persons, m.pairs_predicted) == (0, 0, 0, 0)
    assert (m.pairwise_f1, m.bcubed_f1) == (1.0, 1.0)
    assert (m.applications, m.traceability, m.false_flag_rate) == (0, None, None)
    assert (m.relative_pairs, m.relative_false_pairs, m.relative_false_pair_share) == (0, 0, None)
    assert (m.relative_record_pairs, m.relative_merge_rate) == (0, None)
    assert (m.twin_record_pairs, m.twin_merge_rate) == (0, None)
    # an empty clustering of labelled records: nothing measured, every truth record counted as unclustered
    m = evaluate(frames({}, {})[0], frames({}, {"a": "p", "b": "p"})[1])
    assert (m.records, m.records_unclustered) == (0, 2)


def test_only_shared_records_are_measured_and_the_rest_counted() -> None:
    clusters, truth = frames({"a": "X", "b": "X", "z": "X"}, {"a": "p", "b": "p", "c": "p"})
    m = evaluate(clusters, truth)
    assert (m.records, m.records_unlabelled, m.records_unclustered) == (2, 1, 1)
    assert (m.pairs_correct, m.pairs_predicted, m.pairs_true) == (1, 1, 1)


def test_results_do_not_depend_on_row_order_or_id_types() -> None:
    rng = random.Random(5)
    ids = [f"r{i}" for i in range(200)]
    clusters, truth = frames({r: f"I{rng.randrange(40)}" for r in ids}, {r: f"P{rng.randrange(50)}" for r in ids})
    base = evaluate(clusters, truth)
    assert evaluate(clusters.sample(frac=1, random_state=1), truth.sample(frac=1, random_state=2)) == base
    assert evaluate(pa.Table.from_pandas(clusters), pa.Table.from_pandas(truth)) == base
    numeric = pd.DataFrame({"record_id": [1, 2], "identity_id": [7, 7]})
    assert evaluate(numeric, frames({}, {"1": "p", "2": "p"})[1]).pairs_correct == 1


def test_bad_inputs_are_reported_with_what_to_fix() -> None:
    clusters, truth = frames({"a": "X"}, {"b": "p"})
    with pytest.raises(InputError, match="share no record_id"):
        evaluate(clusters, truth)
    with pytest.raises(InputError, match="appear more than once"):
        evaluate(pd.concat([clusters, clusters]), truth)
    with pytest.raises(InputError, match="rename 'identiy_id' to 'identity_id'"):
        evaluate(clusters.rename(columns={"identity_id": "identiy_id"}), truth)
    with pytest.raises(InputError, match="empty person_id"):
        evaluate(clusters, pd.DataFrame({"record_id": ["a"], "person_id": [None]}))


def _brute_force(clusters: dict[str, str], truth: dict[str, str]) -> tuple[int, int, int, float, float]:
    ids = sorted(clusters)
    predicted = true = correct = 0
    for x, y in itertools.combinations(ids, 2):
        same_c, same_p = clusters[x] == clusters[y], truth[x] == truth[y]
        predicted += same_c
        true += same_p
        correct += same_c and same_p
    bp = sum(
        sum(clusters[y] == clusters[x] and truth[y] == truth[x] for y in ids)
        / sum(clusters[y] == clusters[x] for y in ids)
        for x in ids
    ) / len(ids)
    br = sum(
        sum(clusters[y] == clusters[x] and truth[y] == truth[x] for y in ids) / sum(truth[y] == truth[x] for y in ids)
        for x in ids
    ) / len(ids)
    return correct, predicted, true, bp, br


@pytest.mark.parametrize("seed", range(20))
def test_contingency_figures_agree_with_enumerating_pairs(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"r{i}" for i in range(rng.randrange(1, 40))]
    c = {r: f"I{rng.randrange(rng.randrange(1, 12))}" for r in ids}
    t = {r: f"P{rng.randrange(rng.randrange(1, 12))}" for r in ids}
    m = evaluate(*frames(c, t))
    correct, predicted, true, bp, br = _brute_force(c, t)
    assert (m.pairs_correct, m.pairs_predicted, m.pairs_true) == (correct, predicted, true)
    assert (m.bcubed_precision, m.bcubed_recall) == (pytest.approx(bp), pytest.approx(br))


# ------------------------------------------------------------------------ traceability and false flags

# Offices BDL (Bandar Lampung), KTB (Kotabumi), KLD (Kalianda). Persons p, q, s, t.
#   record  person  office  date        decision   identity
LITERAL = """
    r1      p       BDL     2024-01-10  rejected   X
    r2      p       KTB     2024-03-01  issued     X
    r3      p       BDL     2024-05-01  issued     Y
    r4      q       KLD     2024-02-01  rejected   Z
    r5      q       BDL     2024-02-01  issued     W
    r6      s       KTB     2024-06-01  issued     X
    r7      t       KLD     2024-04-01  rejected   W
    r8      t       KTB     2024-04-01  issued     W
    r9      p       KLD     -           issued     X
"""


def _literal(**changes: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = [line.split() for line in LITERAL.strip().splitlines()]
    rows = [[*r[:4], changes.get(r[0], r[4]), r[5]] for r in rows]
    table = pd.DataFrame(rows, columns=["record_id", "person_id", "office", "application_date", "decision", "c"])
    table["application_date"] = table["application_date"].replace("-", None)
    clusters = table[["record_id", "c"]].rename(columns={"c": "identity_id"})
    return clusters, table[["record_id", "person_id"]], table[["record_id", "office", "application_date", "decision"]]


def _apps(rows: list[tuple[str, str | None, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_id", "office", "application_date", "decision"])


def _relatives(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["person_id_a", "person_id_b", "relation"])


def test_traceability_and_false_flags_on_a_literal_example() -> None:
    m = evaluate(*_literal())
    # r9 has no date: it takes no part. Refusals: r1 (p, BDL), r4 (q, KLD), r7 (t, KLD).
    assert (m.applications, m.applications_undated) == (8, 1)
    # refused earlier at another office:
    #   r2 (p at KTB after r1 at BDL)                                       yes
    #   r3 (p at BDL: p's only refusal r1 was at BDL, the same office)      no
    #   r5 (q at BDL, same day as r4 at KLD; r4 < r5 breaks the tie)       yes
    #   r8 (t at KTB, same day as r7 at KLD; r7 < r8 breaks the tie)       yes
    # traced: r2 (X holds r1) yes; r5 (W, but r4 is in Z) no; r8 (W holds r7) yes -> 2 / 3
    assert (m.refused_elsewhere, m.traced) == (3, 2)
    assert m.traceability == pytest.approx(2 / 3)
    # false flags: r6 (s) sits in X with r1, p's refusal of 2024-01-10, before r6's 2024-06-01 -> flagged.
    # r2 sees r1 too but it is p's own; r5 sits with r7, a refusal of t, but r7 is later -> not flagged.
    assert m.false_flags == 1
    assert m.false_flag_rate == pytest.approx(1 / 8)


def test_counting_postponements_as_refusals_is_a_parameter() -> None:
    clusters, truth, apps = _literal(r2="postponed")
    assert evaluate(clusters, truth, apps).refused_elsewhere == 3
    m = evaluate(clusters, truth, apps, refusals=("rejected", "postponed"))
    # r2 (p at KTB) now refuses too: r3 (p at BDL) has an earlier refusal at another office, but sits alone in Y
    assert (m.refused_elsewhere, m.traced) == (4, 2)
    assert m.traceability == pytest.approx(0.5)
    assert m.false_flags == 1  # r6 still; r2's refusal adds no new victim


def test_a_later_refusal_or_a_same_day_refusal_with_a_higher_id_is_not_earlier() -> None:
    clusters, truth = frames({"a": "X", "b": "X"}, {"a": "p", "b": "q"})
    # b is refused on the same day as a; "a" < "b", so a came first and is not flagged; b sees no refusal either
    apps = _apps([("a", "BDL", "2024-01-01", "issued"), ("b", "KTB", "2024-01-01", "rejected")])
    assert evaluate(clusters, truth, apps).false_flags == 0
    apps = _apps([("a", "BDL", "2024-01-01", "rejected"), ("b", "KTB", "2024-01-01", "issued")])
    assert evaluate(clusters, truth, apps).false_flags == 1


def test_application_dates_in_any_form_and_missing_offices() -> None:
    clusters, truth = frames({"a": "X", "b": "X", "c": "X"}, dict.fromkeys("abc", "p"))
    written = _apps(
        [
            ("a", "BDL", "5 Januari 2024", " Rejected "),
            ("b", "KTB", "05/02/2024", "issued"),
            ("c", " ", "2024-03-01", ""),
        ]
    )
    typed = written.assign(application_date=[date(2024, 1, 5), date(2024, 2, 5), date(2024, 3, 1)])
    stamped = written.assign(application_date=pd.to_datetime(["2024-01-05", "2024-02-05", "2024-03-01"]))
    for apps in (written, typed, stamped):
        m = evaluate(clusters, truth, apps)
        # b follows a's refusal at another office; c has no office, so "another office" cannot be said
        assert (m.applications, m.refused_elsewhere, m.traced, m.false_flags) == (3, 1, 1, 0)


def _brute_applications(
    cluster: dict[str, str], person: dict[str, str], apps: list[tuple[str, str | None, str, str]]
) -> tuple[int, int, int]:
    refusals = [a for a in apps if a[3] == "rejected"]

    def before(x: tuple[str, str | None, str, str], y: tuple[str, str | None, str, str]) -> bool:
        return (x[2], x[0]) < (y[2], y[0])

    eligible = traced = flagged = 0
    for a in apps:
        elsewhere = [
            r for r in refusals if person[r[0]] == person[a[0]] and before(r, a) and a[1] and r[1] and r[1] != a[1]
        ]
        eligible += bool(elsewhere)
        traced += any(cluster[r[0]] == cluster[a[0]] for r in elsewhere)
        flagged += any(
            cluster[r[0]] == cluster[a[0]] and person[r[0]] != person[a[0]] and before(r, a) for r in refusals
        )
    return eligible, traced, flagged


@pytest.mark.parametrize("seed", range(30))
def test_application_figures_agree_with_a_brute_force_reading_of_the_definitions(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"r{i:02d}" for i in range(rng.randrange(1, 50))]
    person = {r: f"P{rng.randrange(8)}" for r in ids}
    cluster = {r: f"I{rng.randrange(rng.randrange(1, 10))}" for r in ids}
    apps = [
        (
            r,
            rng.choice(["BDL", "KTB", "KLD", None]),
            f"2024-0{rng.randrange(1, 4)}-0{rng.randrange(1, 3)}",  # few dates: many ties
            rng.choice(["rejected", "issued", "issued", "postponed"]),
        )
        for r in ids
    ]
    m = evaluate(*frames(cluster, person), _apps(apps))  # type: ignore[arg-type]
    assert (m.refused_elsewhere, m.traced, m.false_flags) == _brute_applications(cluster, person, apps)


def test_relative_pairs() -> None:
    clusters, truth, apps = _literal()
    # relatives: q-t siblings, p-q siblings (listed twice, once reversed), s-x twins (x is not in the truth)
    relatives = _relatives([("q", "t", "sibling"), ("p", "q", "sibling"), ("q", "p", "sibling"), ("s", "x", "twin")])
    m = evaluate(clusters, truth, apps, relatives)
    # identities X = {r1 p, r2 p, r6 s, r9 p}, Y = {r3 p}, Z = {r4 q}, W = {r5 q, r7 t, r8 t}
    # predicted = C(4,2) + C(3,2) = 6 + 3 = 9; correct = C(3,2) [p in X] + C(2,2) [t in W] = 3 + 1 = 4; false = 5
    assert m.pairs_predicted - m.pairs_correct == 5
    # relative false pairs: (q, t) in W = 1 * 2 = 2; (p, q) share no identity = 0 -> 2, a share of 2 / 5
    assert (m.relative_pairs, m.relatives_merged, m.relative_false_pairs) == (2, 1, 2)
    assert m.relative_false_pair_share == pytest.approx(0.4)
    # record pairs between relatives: n_q * n_t + n_p * n_q = 2 * 2 + 4 * 2 = 12, of which 2 merged
    assert (m.relative_record_pairs, m.relative_merge_rate) == (12, pytest.approx(2 / 12))
    # both pairs are siblings (s-x is dropped: x is not measured), so no twins: 0 record pairs, no rate
    assert (m.sibling_pairs, m.siblings_merged, m.sibling_record_pairs, m.sibling_false_pairs) == (2, 1, 12, 2)
    assert m.sibling_merge_rate == pytest.approx(2 / 12)
    assert (m.twin_pairs, m.twins_merged, m.twin_record_pairs, m.twin_false_pairs, m.twin_merge_rate) == (
        0, 0, 0, 0, None
    )  # fmt: skip


def test_relative_merge_rates_per_relation() -> None:
    clusters, truth, apps = _literal()
    # p-s twins, also listed as siblings (twins win); q-t siblings written loosely; p-t cousins (totals only)
    relatives = _relatives([("p", "s", "twin"), ("s", "p", "sibling"), ("q", "t", " Sibling "), ("p", "t", "cousin")])
    m = evaluate(clusters, truth, apps, relatives)
    # persons p = {r1, r2, r3, r9}, q = {r4, r5}, s = {r6}, t = {r7, r8}
    # identities X = {r1 p, r2 p, r6 s, r9 p}, Y = {r3 p}, Z = {r4 q}, W = {r5 q, r7 t, r8 t}
    # twins p-s: record pairs 4 * 1 = 4; merged in X: 3 (p) * 1 (s) = 3
    assert (m.twin_pairs, m.twins_merged, m.twin_record_pairs, m.twin_false_pairs) == (1, 1, 4, 3)
    assert m.twin_merge_rate == pytest.approx(3 / 4)
    # siblings q-t: record pairs 2 * 2 = 4; merged in W: 1 (q) * 2 (t) = 2
    assert (m.sibling_pairs, m.siblings_merged, m.sibling_record_pairs, m.sibling_false_pairs) == (1, 1, 4, 2)
    assert m.sibling_merge_rate == pytest.approx(2 / 4)
    # all relatives, cousins p-t too: 4 * 2 = 8 record pairs, none merged -> 4 + 4 + 8 = 16, merged 3 + 2 = 5
    assert (m.relative_pairs, m.relatives_merged, m.relative_record_pairs, m.relative_false_pairs) == (3, 2, 16, 5)
    assert m.relative_merge_rate == pytest.approx(5 / 16)
    assert m.relative_false_pair_share == pytest.approx(1.0)  # all 5 false pairs are between relatives
    labels = dict(m.summary())
    assert labels["relatives' record pairs merged / all"] == "5 / 16 (31.250 %)"
    assert labels["twins' record pairs merged / all"] == "3 / 4 (75.000 %)"
    assert labels["sibling pairs merged / known"] == "1 / 1"
    # without a relation column the totals stand and the per-relation figures are not computed
    bare = evaluate(clusters, truth, apps, relatives.drop(columns="relation"))
    assert (bare.relative_record_pairs, bare.relative_false_pairs) == (16, 5)
    assert (bare.twin_pairs, bare.sibling_merge_rate) == (None, None)
    assert "twin pairs merged / known" not in dict(bare.summary())


@pytest.mark.parametrize("seed", range(20))
def test_relative_figures_agree_with_a_brute_force_count_of_record_pairs(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"r{i:02d}" for i in range(rng.randrange(1, 40))]
    person = {r: f"P{rng.randrange(10)}" for r in ids}
    cluster = {r: f"I{rng.randrange(rng.randrange(1, 8))}" for r in ids}
    listed = [(f"P{rng.randrange(11)}", f"P{rng.randrange(11)}", rng.choice(["twin", "sibling"])) for _ in range(8)]
    m = evaluate(*frames(cluster, person), relatives=_relatives(listed))
    relation: dict[frozenset[str], str] = {}
    for x, y, r in listed:  # twins win over siblings
        key = frozenset((x, y))
        relation[key] = "twin" if "twin" in (r, relation.get(key)) else r
    possible = {"twin": 0, "sibling": 0}
    merged = {"twin": 0, "sibling": 0}
    for x, y in itertools.combinations(ids, 2):
        r = relation.get(frozenset((person[x], person[y])))
        if r and person[x] != person[y]:
            possible[r] += 1
            merged[r] += cluster[x] == cluster[y]
    assert (m.twin_record_pairs, m.twin_false_pairs) == (possible["twin"], merged["twin"])
    assert (m.sibling_record_pairs, m.sibling_false_pairs) == (possible["sibling"], merged["sibling"])
    assert m.relative_record_pairs == possible["twin"] + possible["sibling"]
    assert m.relative_false_pairs == merged["twin"] + merged["sibling"]


# ---------------------------------------------------------------------------- connected components


def _assert_same_as_networkx(n: int, edges: list[tuple[int, int]]) -> None:
    labels = connected_components(n, [u for u, _ in edges], [v for _, v in edges])
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    expected = np.empty(n, dtype=np.int64)
    for component in nx.connected_components(graph):
        expected[list(component)] = min(component)
    assert labels.tolist() == expected.tolist()


@pytest.mark.parametrize("seed", range(15))
def test_connected_components_match_networkx_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 10, 100, 2000])
    density = rng.choice([0.0, 0.2, 0.5, 1.0, 2.0])
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(int(n * density))]
    _assert_same_as_networkx(n, edges)
    # and in any edge order, either way round
    shuffled = [(v, u) for u, v in edges]
    rng.shuffle(shuffled)
    _assert_same_as_networkx(n, shuffled)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))))
    )
)
def test_connected_components_match_networkx_on_any_small_graph(case: tuple[int, list[tuple[int, int]]]) -> None:
    _assert_same_as_networkx(*case)


def test_connected_components_of_long_paths_and_no_nodes() -> None:
    perm = np.random.default_rng(3).permutation(50_000)
    assert set(connected_components(50_000, perm[:-1], perm[1:]).tolist()) == {0}
    assert connected_components(0, [], []).tolist() == []


# -------------------------------------------------------------------------------------------- sweep


def _scored(seed: int, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Records of persons with 1-4 records; pairs within a person score high, across persons mostly low."""
    rng = random.Random(seed)
    ids = [f"r{i:04d}" for i in range(n)]
    person = {r: f"P{rng.randrange(n // 2)}" for r in ids}
    rows = []
    for _ in range(3 * n):
        a, b = rng.sample(ids, 2)
        same = person[a] == person[b]
        rows.append((a, b, rng.betavariate(8, 1) if same else rng.betavariate(1, 6)))
    for a, b in itertools.combinations(ids[:60], 2):
        if person[a] == person[b]:
            rows.append((a, b, rng.betavariate(8, 1)))
    pairs = pd.DataFrame(rows, columns=["record_id_l", "record_id_r", "match_probability"])
    return pairs, frames({}, person)[1], ids


def test_sweep_is_monotonic_in_the_threshold() -> None:
    pairs, truth, ids = _scored(11)
    table = sweep(pairs, truth, ids, [0.999, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.5])
    assert table["threshold"].tolist() == [0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
    # a higher threshold keeps a subset of the links, so clusters only split
    for column in ("links", "pairs_predicted", "pairs_correct", "pairwise_recall", "bcubed_recall"):
        assert table[column].is_monotonic_decreasing, column
    for column in ("identities", "bcubed_precision"):
        assert table[column].is_monotonic_increasing, column
    assert table["pairs_true"].nunique() == 1


def test_sweep_rows_equal_evaluate_on_the_components_at_that_threshold() -> None:
    pairs, truth, ids = _scored(12)
    table = sweep(pairs, truth, ids, [0.7])
    kept = pairs[pairs["match_probability"] >= 0.7]
    index = {r: i for i, r in enumerate(ids)}
    labels = connected_components(len(ids), kept["record_id_l"].map(index), kept["record_id_r"].map(index))
    clusters = pd.DataFrame({"record_id": ids, "identity_id": labels})
    expected = evaluate(clusters, truth).to_dict()
    assert {k: table.iloc[0][k] for k in expected} == pytest.approx(expected)


def test_sweep_links_at_or_above_the_threshold_and_never_on_a_missing_probability() -> None:
    pairs = pd.DataFrame(
        {"record_id_l": ["a", "b", "c"], "record_id_r": ["b", "c", "d"], "match_probability": [0.9, None, 0.5]}
    )
    truth = frames({}, dict.fromkeys("abcd", "p"))[1]
    table = sweep(pairs, truth, ["a", "b", "c", "d"], [0.0, 0.5, 0.9, 0.95])
    assert table["links"].tolist() == [2, 2, 1, 0]
    assert table["identities"].tolist() == [2, 2, 3, 4]


def test_sweep_with_applications_and_relatives_and_unknown_records() -> None:
    clusters, truth, apps = _literal()
    pairs = pd.DataFrame({"record_id_l": ["r1", "r4"], "record_id_r": ["r2", "r5"], "match_probability": [0.99, 0.7]})
    table = sweep(pairs, truth, clusters, [0.5, 0.9], apps, _relatives([("q", "t", "sibling")]))
    # at 0.5, r5 joins r4: all three re-applications elsewhere (r2, r5, r8) ... but r8 is alone, so 2 / 3
    assert table["traced"].tolist() == [2, 1]
    assert table["false_flags"].tolist() == [0, 0]
    assert table["relative_false_pairs"].tolist() == [0, 0]
    assert table["sibling_record_pairs"].tolist() == [4, 4] and table["sibling_merge_rate"].tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="not among the records to cluster"):
        sweep(pairs.assign(record_id_r="zz"), truth, clusters)


def test_report_files(tmp_path: Path) -> None:
    pairs, truth, ids = _scored(13, n=100)
    table = sweep(pairs, truth, ids)
    written = write_report(table, tmp_path / "report")
    assert [p.name for p in written] == ["sweep.csv", "pr_curve.html"]
    assert pd.read_csv(written[0])["threshold"].tolist() == [0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
    assert "vega" in written[1].read_text(encoding="utf-8")
    spec = pr_chart(table).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["field"] == "pairwise_recall"


# ---------------------------------------------------------------------------------------------- I/O


def test_load_table_reads_parquet_and_csv_and_refuses_the_rest(tmp_path: Path) -> None:
    frame = pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["X", "X"]})
    frame.to_parquet(tmp_path / "c.parquet")
    frame.to_csv(tmp_path / "c.csv", index=False)
    assert load_table(tmp_path / "c.parquet").equals(frame)
    assert load_table(tmp_path / "c.csv").equals(frame)
    (tmp_path / "c.xlsx").write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        load_table(tmp_path / "c.xlsx")
    with pytest.raises(InputError, match="not found"):
        load_table(tmp_path / "none.csv")


def test_metrics_summary_and_dict() -> None:
    m = evaluate(*_literal(), _relatives([("q", "t", "sibling")]))
    assert isinstance(m, Metrics)
    labels = dict(m.summary())
    assert labels["rejection traceability"] == "0.6667"
    assert labels["false-flag rate"] == "12.500 %"
    assert json.loads(json.dumps(m.to_dict()))["traced"] == 2


# ---------------------------------------------------------------------------------------------- CLI

runner = CliRunner()


def _cli_files(tmp_path: Path) -> dict[str, Path]:
    clusters, truth, apps = _literal()
    paths = {name: tmp_path / f"{name}.parquet" for name in ("clusters", "truth", "applications", "relatives")}
    clusters.to_parquet(paths["clusters"])
    truth.to_csv(paths["truth"].with_suffix(".csv"), index=False)
    paths["truth"] = paths["truth"].with_suffix(".csv")
    apps.to_parquet(paths["applications"])
    _relatives([("q", "t", "sibling")]).to_parquet(paths["relatives"])
    pairs = pd.DataFrame({"record_id_l": ["r1", "r4"], "record_id_r": ["r2", "r5"], "match_probability": [0.99, 0.7]})
    paths["pairs"] = tmp_path / "pairs.parquet"
    pairs.to_parquet(paths["pairs"])
    return paths


def test_cli_evaluate_prints_a_table_and_json(tmp_path: Path) -> None:
    f = _cli_files(tmp_path)
    base = ["evaluate", "--truth", str(f["truth"]), "--clusters", str(f["clusters"])]
    result = runner.invoke(app, [*base, "--applications", str(f["applications"])])
    assert result.exit_code == 0, result.output
    assert "rejection traceability" in result.output and "0.6667" in result.output
    result = runner.invoke(
        app, [*base, "--applications", str(f["applications"]), "--relatives", str(f["relatives"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["metrics"]["traced"] == 2 and data["metrics"]["relative_false_pairs"] == 2
    assert (data["metrics"]["sibling_record_pairs"], data["metrics"]["sibling_merge_rate"]) == (4, 0.5)
    assert data["sweep"] is None
    result = runner.invoke(app, [*base, "--relatives", str(f["relatives"])])
    assert result.exit_code == 0, result.output
    assert "siblings' record pairs merged / all" in result.output and "2 / 4 (50.000 %)" in result.output


def test_cli_evaluate_sweep_writes_the_chart_and_table(tmp_path: Path) -> None:
    f = _cli_files(tmp_path)
    out = tmp_path / "out"
    args = ["evaluate", "--truth", str(f["truth"]), "--clusters", str(f["clusters"]), "--pairs", str(f["pairs"])]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert [row["links"] for row in json.loads(result.output)["sweep"]] == [2, 1, 1, 1, 1, 0]
    assert (out / "pr_curve.html").exists() and (out / "sweep.csv").exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "Threshold sweep" in result.output
    assert "kin merged" not in result.output
    result = runner.invoke(app, [*args, "--relatives", str(f["relatives"])])
    assert result.exit_code == 0 and "kin merged" in result.output


def test_cli_evaluate_reads_applications_from_the_store(tmp_path: Path) -> None:
    f = _cli_files(tmp_path)
    apps = pd.read_parquet(f["applications"])
    columns = {name: [None] * len(apps) for name, _ in NORMALISED_COLUMNS}
    columns["record_id"] = apps["record_id"].tolist()
    columns["office"] = apps["office"].tolist()
    columns["decision"] = apps["decision"].tolist()
    columns["application_date"] = [None if d is None else date.fromisoformat(d) for d in apps["application_date"]]
    db = tmp_path / "store.duckdb"
    with Store(db, create=True) as store:
        store.insert("applications_normalised", arrow_table(columns, NORMALISED_COLUMNS))
    base = ["evaluate", "--truth", str(f["truth"]), "--clusters", str(f["clusters"])]
    result = runner.invoke(app, [*base, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert (metrics["refused_elsewhere"], metrics["traced"], metrics["false_flags"]) == (3, 2, 1)
    both = runner.invoke(app, [*base, "--db", str(db), "--applications", str(f["applications"])])
    assert both.exit_code == 2


def test_cli_evaluate_bad_input_is_a_message(tmp_path: Path) -> None:
    f = _cli_files(tmp_path)
    result = runner.invoke(app, ["evaluate", "--truth", str(f["truth"]), "--clusters", str(tmp_path / "none.parquet")])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and "input file not found" in str(result.exception)
