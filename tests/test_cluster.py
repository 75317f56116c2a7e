"""Clustering: the contradiction rule on literal pairs, the guard on literal graphs, and invariants.

Differential tests hold the components equal to networkx's, the vectorised contradiction rule equal to
:func:`contradicts`, and the guard equal to the literal algorithm of issue 3 (remove edges weakest first
until no contradicting pair is connected, then add back what reconnects none).
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from datetime import date
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage import graph as gr
from linkage import guard as gd
from linkage.cluster import EVIDENCE, ClusterReport, cluster
from linkage.contradict import (
    NIK_BIRTH_DATE_BY_NIK,
    NIK_BIRTH_DATE_MOTHER,
    NIK_BIRTH_DATE_NAME,
    SEX_AND_BIRTH_DATE,
    SEX_BY_NIK,
    TWIN_NIKS_NAME,
    contradicts,
)
from linkage.errors import LinkageError
from linkage.graph import connected_components
from linkage.guard import Cut
from linkage.identities import mint_identity_id
from linkage.nik import parse_nik

# ---------------------------------------------------------------------------------------------------------------------
# A family in Bandar Lampung (NIK region 18.71.01). Women's NIKs carry day + 40.

BUDI = {
    "nik": "1871011205900001",
    "birth_date": date(1990, 5, 12),
    "mother_name_canonical": "SITI AMINAH",
    "sex": "M",
    "full_name_tokens": ["BUDI", "SANTOSO"],
}
ANI = {  # his younger sister
    "nik": "1871014208930002",
    "birth_date": date(1993, 8, 2),
    "mother_name_canonical": "SITI AMINAH",
    "sex": "F",
    "full_name_tokens": ["ANI", "SANTOSO"],
}
RINA = {  # his twin sister: same birth date and mother; her NIK differs from his in one digit only
    "nik": "1871015205900001",
    "birth_date": date(1990, 5, 12),
    "mother_name_canonical": "SITI AMINAH",
    "sex": "F",
    "full_name_tokens": ["RINA", "SANTOSO"],
}
AGUS = {  # his younger brother
    "nik": "1871010507950003",
    "birth_date": date(1995, 7, 5),
    "mother_name_canonical": "SITI AMINAH",
    "sex": "M",
    "full_name_tokens": ["AGUS", "SANTOSO"],
}
HARTONO = {  # an unrelated man with the same given name
    "nik": "1801022001850004",
    "birth_date": date(1985, 1, 20),
    "mother_name_canonical": "RATNA DEWI",
    "sex": "M",
    "full_name_tokens": ["BUDI", "HARTONO"],
}


def like(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


# The same two, on a birth date one day off what their NIK says: rule 3 cannot fire, the names decide.
AGUS_OFF = like(AGUS, birth_date=date(1995, 7, 6))
HARTONO_OFF = like(HARTONO, birth_date=date(1985, 1, 21))

# Twin brothers: registered together, NIKs one serial apart, one birth date and mother (domain notes §3.1).
JOKO = like(BUDI, nik="1871011205900002", full_name_tokens=["JOKO", "SANTOSO"])

CONTRADICTING = [
    pytest.param(BUDI, JOKO, TWIN_NIKS_NAME, id="twin-brothers"),
    pytest.param(BUDI, like(JOKO, full_name_tokens=["BUDU", "SANTOSO"]), TWIN_NIKS_NAME, id="twins-one-letter-apart"),
    pytest.param(
        BUDI, like(JOKO, nik="1871011205900009", mother_name_canonical=None), TWIN_NIKS_NAME, id="twins-far-serials"
    ),
    # with Budi's mistyped NIK, Agus is still his brother: his own name and birth date
    pytest.param(BUDI, like(AGUS, nik="1871011205900007"), TWIN_NIKS_NAME, id="brother-on-a-mistyped-nik"),
    pytest.param(BUDI, ANI, SEX_AND_BIRTH_DATE, id="brother-sister"),
    pytest.param(BUDI, RINA, SEX_BY_NIK, id="twins-of-other-sexes"),
    pytest.param(BUDI, AGUS, NIK_BIRTH_DATE_BY_NIK, id="brothers"),
    pytest.param(BUDI, like(AGUS, full_name_tokens=BUDI["full_name_tokens"]), NIK_BIRTH_DATE_BY_NIK, id="same-name"),
    pytest.param(BUDI, like(ANI, sex=None), NIK_BIRTH_DATE_BY_NIK, id="sister-sex-missing"),
    pytest.param(BUDI, HARTONO, NIK_BIRTH_DATE_BY_NIK, id="strangers"),
    pytest.param(BUDI, HARTONO_OFF, NIK_BIRTH_DATE_MOTHER, id="strangers-mothers"),
    pytest.param(BUDI, like(HARTONO_OFF, full_name_tokens=None), NIK_BIRTH_DATE_MOTHER, id="strangers-no-name"),
    pytest.param(BUDI, like(HARTONO_OFF, mother_name_canonical=None), NIK_BIRTH_DATE_NAME, id="strangers-no-mother"),
    pytest.param(BUDI, AGUS_OFF, NIK_BIRTH_DATE_NAME, id="brothers-names"),
    pytest.param(BUDI, like(AGUS, birth_date=date(1990, 6, 13)), NIK_BIRTH_DATE_NAME, id="two-digits-off"),
    pytest.param(
        BUDI, like(AGUS, birth_date=date(1988, 5, 12)), NIK_BIRTH_DATE_NAME, id="two-years-and-two-digits-off"
    ),
]

COMPATIBLE = [
    pytest.param(BUDI, BUDI, id="same-record"),
    pytest.param(BUDI, like(BUDI, sex="F"), id="sex-keyed-wrongly"),
    pytest.param(BUDI, like(RINA, nik=None), id="twins-without-niks: sex alone is one field"),
    pytest.param(BUDI, like(RINA, nik=None, full_name_tokens=None), id="twins-sister-only-sex"),
    pytest.param(BUDI, like(RINA, nik=BUDI["nik"]), id="twin-sister-on-his-nik: her NIK says M"),
    pytest.param(BUDI, like(ANI, birth_date=None, nik=None), id="sister-with-only-sex-known-to-differ"),
    pytest.param(
        BUDI, like(AGUS, nik="1871011205900007", full_name_tokens=BUDI["full_name_tokens"]), id="nik-one-digit-typo"
    ),
    # a typo in the serial beside a name that differs only as typos and initials do is no twin
    pytest.param(BUDI, like(BUDI, nik="1871011205900002", full_name_tokens=["B", "SANTOSO"]), id="serial-and-initial"),
    pytest.param(BUDI, like(BUDI, nik="1871011205900002", full_name_tokens=["SANTOSO"]), id="serial-name-dropped"),
    # one given name spelt two ways beside a serial typo: the names' keys agree (RIZKY/RIZKI, SOFYAN/SOPIAN)
    pytest.param(
        like(BUDI, full_name_tokens=["RIZKY", "SANTOSO"]),
        like(BUDI, nik="1871011205900002", full_name_tokens=["RIZKI", "SANTOSO"]),
        id="serial-and-spelling",
    ),
    pytest.param(
        like(BUDI, full_name_tokens=["SOFYAN"]), like(JOKO, full_name_tokens=["SOPIAN"]), id="serial-and-sundanese-p"
    ),
    # the same given name with another family name: the model decides (a shared passport may confirm him)
    pytest.param(BUDI, like(JOKO, full_name_tokens=["BUDI", "RAMADHAN"]), id="serial-family-name-changed"),
    pytest.param(BUDI, like(AGUS, nik="1871011250900001"), id="nik-neighbours-swapped"),
    pytest.param(BUDI, like(AGUS, nik="18710112059"), id="nik-invalid-is-missing"),
    pytest.param(BUDI, like(AGUS, nik=None), id="nik-missing"),
    pytest.param(BUDI, like(AGUS, birth_date=date(1990, 12, 5)), id="day-month-swapped"),
    pytest.param(BUDI, like(AGUS, birth_date=date(1991, 5, 12)), id="one-year-off"),
    pytest.param(BUDI, like(AGUS, birth_date=date(1990, 5, 19)), id="one-digit-off"),
    pytest.param(BUDI, like(AGUS, birth_date=date(1909, 5, 12)), id="year-digits-swapped"),
    pytest.param(BUDI, like(AGUS, birth_date=None), id="dob-missing"),
    pytest.param(BUDI, like(AGUS_OFF, full_name_tokens=BUDI["full_name_tokens"]), id="same-name-nik-date-off"),
    pytest.param(BUDI, like(HARTONO_OFF, mother_name_canonical="AMINAH", full_name_tokens=None), id="mother-dropped"),
    pytest.param(
        BUDI, like(HARTONO_OFF, mother_name_canonical="SITI AMINNAH", full_name_tokens=None), id="mother-typo"
    ),
    pytest.param(
        like(BUDI, mother_name_canonical="NURHAYATI"),
        like(HARTONO_OFF, mother_name_canonical="NUR HAYATI", full_name_tokens=None),
        id="mother-spacing",
    ),
    pytest.param(
        like(BUDI, full_name_tokens=["MUHAMMAD", "RIZKI"]),
        like(AGUS_OFF, full_name_tokens=["M", "RIZKI"]),
        id="initial",
    ),
    pytest.param(BUDI, like(AGUS_OFF, full_name_tokens=["SANTOSO"]), id="given-name-dropped"),
    pytest.param(BUDI, like(AGUS_OFF, full_name_tokens=["BUDI", "SANTOSA"]), id="name-typo"),
    pytest.param(BUDI, like(HARTONO_OFF, mother_name_canonical=None, full_name_tokens=None), id="names-missing"),
    pytest.param({}, HARTONO, id="empty-record"),
    pytest.param(
        like(BUDI, sex=float("nan"), nik=float("nan"), birth_date=pd.NaT),
        like(ANI, birth_date=np.datetime64("NaT")),
        id="nan-and-nat-are-missing",
    ),
]


@pytest.mark.parametrize(("a", "b", "reason"), CONTRADICTING)
def test_contradicting_pairs(a: dict[str, Any], b: dict[str, Any], reason: str) -> None:
    assert contradicts(a, b) == reason
    assert contradicts(b, a) == reason


@pytest.mark.parametrize(("a", "b"), COMPATIBLE)
def test_compatible_pairs(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert contradicts(a, b) is None
    assert contradicts(b, a) is None


def test_contradicts_reads_dates_and_tokens_in_other_forms() -> None:
    as_strings = like(ANI, birth_date="1993-08-02")
    assert contradicts(BUDI, as_strings) == SEX_AND_BIRTH_DATE
    assert contradicts(like(BUDI, birth_date=pd.Timestamp("1990-05-12")), ANI) == SEX_AND_BIRTH_DATE
    assert contradicts(like(BUDI, birth_date="12/05/1990"), ANI) != SEX_AND_BIRTH_DATE  # unparsed = missing
    tokens = like(AGUS_OFF, full_name_tokens=np.array(["AGUS", "SANTOSO"], dtype=object))
    assert contradicts(BUDI, tokens) == NIK_BIRTH_DATE_NAME
    assert contradicts(BUDI, like(AGUS_OFF, full_name_tokens="agus santoso")) == NIK_BIRTH_DATE_NAME


# ---------------------------------------------------------------------------------------------------------------------
# Literal graphs


STATED = ("nik", "birth_date", "mother_name_canonical", "sex", "full_name_tokens")  # as an application states them


def decoded(person: dict[str, Any]) -> dict[str, Any]:
    """A record as the store holds it: with what its NIK encodes, decoded once as ingest does."""
    nik = person.get("nik")
    info = parse_nik(nik if isinstance(nik, str) else None)
    return {**{c: person.get(c) for c in STATED}, "nik_sex": info.sex, "nik_birth_date": info.birth_date}


def records(**people: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"record_id": rid, **decoded(person)} for rid, person in people.items()])


def edges(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["record_id_l", "record_id_r", "match_probability"])


def groups(frame: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g["record_id"]) for _, g in frame.groupby("identity_id")}


def fs(*sets: str) -> set[frozenset[str]]:
    return {frozenset(s) for s in sets}


# B is Budi applying on his sister's... no: on his own NIK, with the sister's given name keyed in and no sex or
# birth date. It matches both Budi and Ani well enough, and chains them.
LINK = {"nik": BUDI["nik"], "mother_name_canonical": "SITI AMINAH", "full_name_tokens": ["ANI", "SANTOSO"]}


@pytest.mark.parametrize(("ab", "bc", "cut"), [(0.99, 0.95, ("B", "C")), (0.95, 0.99, ("A", "B"))])
def test_chain_is_cut_at_its_weaker_edge(ab: float, bc: float, cut: tuple[str, str]) -> None:
    frame, report = cluster(records(A=BUDI, B=LINK, C=ANI), edges(("A", "B", ab), ("B", "C", bc)), 0.9)
    kept = fs("AB", "C") if cut == ("B", "C") else fs("A", "BC")
    assert groups(frame) == kept
    assert (report.edges_cut, report.clusters_changed, report.contradicting_pairs) == (1, 1, 1)
    assert report.cuts == (Cut(*cut, min(ab, bc), SEX_AND_BIRTH_DATE, "A", "C"),)
    assert frame.set_index("record_id")["cluster_size"].to_dict() == {k: len(g) for g in kept for k in g}


def test_without_the_guard_the_chain_stays() -> None:
    frame, report = cluster(records(A=BUDI, B=LINK, C=ANI), edges(("A", "B", 0.99), ("B", "C", 0.95)), 0.9, False)
    assert groups(frame) == fs("ABC")
    assert (report.guard, report.edges_cut, report.contradicting_pairs) == (False, 0, 0)


def test_guard_false_needs_only_record_id() -> None:
    frame, _ = cluster(pd.DataFrame({"record_id": ["a", "b"]}), edges(("a", "b", 1.0)), 0.5, guard=False)
    assert groups(frame) == fs("ab")


def test_triangle_without_contradiction_stays() -> None:
    typo = like(BUDI, nik="1871011205900007", birth_date=date(1990, 12, 5), full_name_tokens=["BUDI"])
    frame, report = cluster(
        records(A=BUDI, B=typo, C=like(BUDI, sex=None, mother_name_canonical="AMINAH")),
        edges(("A", "B", 0.91), ("B", "C", 0.92), ("A", "C", 0.99)),
        0.9,
    )
    assert groups(frame) == fs("ABC")
    assert (report.edges_cut, report.clusters_changed, report.multi_record_clusters) == (0, 0, 1)


def test_twins_of_other_sexes_split_even_when_linked_directly() -> None:
    frame, report = cluster(records(A=BUDI, B=RINA), edges(("A", "B", 0.97)), 0.9)
    assert groups(frame) == fs("A", "B")
    assert report.cuts == (Cut("A", "B", 0.97, SEX_BY_NIK, "A", "B"),)


def test_twins_with_their_own_reapplications_split_between_them() -> None:
    people = records(A1=BUDI, A2=like(BUDI, nik=None), B1=RINA, B2=like(RINA, sex=None))
    pairs = edges(("A1", "A2", 0.99), ("B1", "B2", 0.98), ("A2", "B1", 0.93), ("A1", "B2", 0.91))
    frame, report = cluster(people, pairs, 0.9)
    assert groups(frame) == fs(("A1", "A2"), ("B1", "B2"))
    assert report.edges_cut == 2


def test_missing_values_never_split() -> None:
    blank = {k: None for k in BUDI}
    people = records(A=BUDI, B=LINK, C=like(ANI, sex=None, nik=None), D=blank)
    pairs = edges(("A", "B", 0.99), ("B", "C", 0.95), ("C", "D", 0.95))
    frame, report = cluster(people, pairs, 0.9)
    assert groups(frame) == fs("ABCD")
    assert report.edges_cut == 0


def test_removed_edges_that_reconnect_nothing_are_added_back() -> None:
    # Weakest first: X-A (0.7) goes, then B-D (0.8) separates A from D. X-A reconnects nothing and returns.
    people = records(X=like(BUDI, sex=None, birth_date=None), A=BUDI, B=LINK, D=ANI)
    frame, report = cluster(people, edges(("X", "A", 0.7), ("A", "B", 0.95), ("B", "D", 0.8)), 0.5)
    assert groups(frame) == fs("XAB", "D")
    assert [(c.record_id_l, c.record_id_r) for c in report.cuts] == [("B", "D")]


def test_equal_probabilities_are_ordered_by_record_ids() -> None:
    # Among equal edges the one between smaller ids counts as stronger, so B-C is cut, whatever the input order.
    people = records(A=BUDI, B=LINK, C=ANI)
    for pairs in (edges(("A", "B", 0.9), ("B", "C", 0.9)), edges(("C", "B", 0.9), ("B", "A", 0.9))):
        frame, report = cluster(people.iloc[::-1], pairs, 0.9)
        assert groups(frame) == fs("AB", "C")
        assert report.cuts[0][:2] == ("B", "C")


def test_several_contradictions_in_one_cluster() -> None:
    # Budi, Ani and Agus all on one chain of re-applications: three people, three identities.
    people = records(A=BUDI, B=LINK, C=ANI, D=like(AGUS, sex=None), E=AGUS)
    pairs = edges(("A", "B", 0.99), ("B", "C", 0.95), ("C", "D", 0.93), ("D", "E", 0.99), ("A", "E", 0.92))
    frame, report = cluster(people, pairs, 0.9)
    assert groups(frame) == fs("AB", "C", "DE")
    assert report.clusters_changed == 1
    assert report.edges_cut == 3


def test_huge_clusters_are_left_whole_and_reported() -> None:
    frame, report = cluster(
        records(A=BUDI, B=LINK, C=ANI), edges(("A", "B", 1.0), ("B", "C", 1.0)), 0.9, max_guard_size=2
    )
    assert groups(frame) == fs("ABC")
    assert (report.unguarded_clusters, report.edges_cut) == (1, 0)


def test_every_record_is_in_the_output_and_pairs_are_cleaned() -> None:
    people = pd.DataFrame({"record_id": ["d", "c", "b", "a", "e"]})
    pairs = edges(
        ("a", "b", 0.5),  # below the threshold
        ("b", "a", 0.95),  # the same pair swapped, above it
        ("c", "c", 1.0),  # a self-pair
        ("c", "d", float("nan")),
        ("e", "d", None),  # type: ignore[arg-type]
    )
    frame, report = cluster(people, pairs, 0.9, guard=False)
    assert list(frame["record_id"]) == ["a", "b", "c", "d", "e"]
    assert groups(frame) == fs("ab", "c", "d", "e")
    assert list(frame["cluster_size"]) == [2, 2, 1, 1, 1]
    assert (report.records, report.clusters, report.multi_record_clusters, report.largest_cluster_size) == (5, 4, 1, 2)
    assert report.pairs_at_threshold == 1


def test_identity_id_is_minted_from_the_smallest_record_id() -> None:
    frame, _ = cluster(pd.DataFrame({"record_id": ["z", "m", "q"]}), edges(("z", "m", 1.0)), 0.9, guard=False)
    ids = frame.set_index("record_id")["identity_id"]
    assert ids["z"] == ids["m"] == mint_identity_id("m") == "ID-6b0d31c0d5632230"
    assert ids["q"] == mint_identity_id("q")
    assert frame["identity_id"].str.fullmatch(r"ID-[0-9a-f]{16}").all()


def test_integer_record_ids() -> None:
    frame, _ = cluster(pd.DataFrame({"record_id": [3, 1, 2]}), edges((3, 1, 1.0)), 0.9, guard=False)  # type: ignore[arg-type]
    assert list(frame["record_id"]) == [1, 2, 3]
    assert frame["identity_id"].tolist() == [mint_identity_id(1), mint_identity_id(2), mint_identity_id(1)]


def test_arrow_and_pandas_inputs_agree() -> None:
    people = records(A=BUDI, B=LINK, C=ANI, D=AGUS)
    pairs = edges(("A", "B", 0.99), ("B", "C", 0.95), ("C", "D", 0.9))
    from_pandas = cluster(people, pairs, 0.9)
    from_arrow = cluster(pa.Table.from_pandas(people), pa.Table.from_pandas(pairs), 0.9)
    pd.testing.assert_frame_equal(from_pandas[0], from_arrow[0])
    assert from_pandas[1] == from_arrow[1]


def test_iso_string_birth_dates_work_like_dates() -> None:
    people = records(A=BUDI, B=LINK, C=ANI)
    people["birth_date"] = [str(d) if d else None for d in people["birth_date"]]
    frame, _ = cluster(people, edges(("A", "B", 0.99), ("B", "C", 0.95)), 0.9)
    assert groups(frame) == fs("AB", "C")


@pytest.mark.parametrize(
    ("people", "pairs", "threshold", "message"),
    [
        (pd.DataFrame({"record_id": ["a", "a", "b"]}), edges(), 0.5, "occur more than once"),
        (pd.DataFrame({"record_id": ["a", None]}), edges(), 0.5, "have no record_id"),
        (pd.DataFrame({"record_id": ["a"]}), edges(("a", "x", 0.9)), 0.5, "name no record"),
        (pd.DataFrame({"record_id": ["a"]}), edges(), 1.5, "between 0 and 1"),
        (pd.DataFrame({"record_id": ["a"]}), pd.DataFrame({"record_id_l": []}), 0.5, "record_id_r"),
        (pd.DataFrame({"id": ["a"]}), edges(), 0.5, "record_id"),
        (pd.DataFrame({"record_id": [1, 2]}), edges(("a", "b", 0.9)), 0.5, "not of the records' type"),
    ],
)
def test_bad_inputs_fail_with_a_message(
    people: pd.DataFrame, pairs: pd.DataFrame, threshold: float, message: str
) -> None:
    with pytest.raises(LinkageError, match=message):
        cluster(people, pairs, threshold, guard=False)


def test_the_guard_needs_the_evidence_columns() -> None:
    with pytest.raises(LinkageError, match=", ".join(EVIDENCE)) as err:
        cluster(pd.DataFrame({"record_id": ["a"]}), edges(), 0.5)
    assert [p.column for p in err.value.problems] == list(EVIDENCE)


def test_report_as_dict_is_json_ready() -> None:
    import json

    _, report = cluster(records(A=BUDI, B=RINA), edges(("A", "B", 0.97)), 0.9)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["cuts"] == [
        {
            "record_id_l": "A",
            "record_id_r": "B",
            "match_probability": 0.97,
            "reason": SEX_BY_NIK,
            "contradiction_l": "A",
            "contradiction_r": "B",
        }
    ]
    assert set(data) == set(ClusterReport.__dataclass_fields__)


# ---------------------------------------------------------------------------------------------------------------------
# Invariants: networkx, the literal algorithm, shuffling


def nx_partition(n: int, pairs: list[tuple[int, int, float]], threshold: float) -> set[frozenset[int]]:
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((a, b) for a, b, p in pairs if p >= threshold)
    return {frozenset(c) for c in nx.connected_components(graph)}


def label_partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)}


graphs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 1)), max_size=3 * n),
    )
)


@settings(max_examples=60, deadline=None)
@given(graphs, st.floats(0, 1))
def test_components_equal_networkx(graph: tuple[int, list[tuple[int, int, float]]], threshold: float) -> None:
    n, pairs = graph
    ids = [f"r{k:03d}" for k in range(n)]
    frame = edges(*((ids[a], ids[b], p) for a, b, p in pairs))
    labels = connected_components(ids, frame, threshold)
    assert label_partition(labels) == nx_partition(n, pairs, threshold)
    # labels are numbered by each component's smallest record id
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in range(labels.max() + 1)]
    assert firsts == sorted(firsts)
    u = np.array([a for a, b, p in pairs if p >= threshold], dtype=np.int64)
    v = np.array([b for a, b, p in pairs if p >= threshold], dtype=np.int64)
    assert np.array_equal(gr._components_numpy(n, u, v), gr.component_labels(n, u, v))


@pytest.mark.parametrize("seed", [1, 2])
def test_numpy_and_scipy_components_equal_networkx_on_a_larger_graph(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    u, v = rng.integers(0, n, 18_000), rng.integers(0, n, 18_000)
    chain = np.arange(5_000)  # a long path, the worst case for label propagation
    u, v = np.r_[u, chain[:-1]], np.r_[v, chain[1:]]
    expected = nx_partition(n, list(zip(u.tolist(), v.tolist(), itertools.repeat(1.0))), 0.5)
    for root in (gr.component_labels(n, u, v), gr._components_numpy(n, u, v)):
        assert label_partition(root) == expected


def test_without_scipy_the_numpy_components_give_the_same_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    people, pairs = synthetic(200, seed=2)
    with_scipy = cluster(people, pairs, 0.9)
    monkeypatch.setitem(sys.modules, "scipy.sparse.csgraph", None)  # makes the import fail
    without = cluster(people, pairs, 0.9)
    pd.testing.assert_frame_equal(with_scipy[0], without[0])
    assert with_scipy[1] == without[1]


def literal_guard(
    people: list[dict[str, Any]], pairs: list[tuple[int, int, float]], threshold: float
) -> set[frozenset[int]]:
    """Issue 3's algorithm, literally, with networkx and every pair of records through `contradicts`."""
    best: dict[tuple[int, int], float] = {}
    for a, b, p in pairs:
        if p >= threshold and a != b:
            key = (min(a, b), max(a, b))
            best[key] = max(best.get(key, p), p)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(people)))
    graph.add_edges_from(best)
    out: set[frozenset[int]] = set()
    for component in nx.connected_components(graph):
        sub = graph.subgraph(component).copy()
        bad = [(x, y) for x, y in itertools.combinations(sorted(component), 2) if contradicts(people[x], people[y])]

        def joined(g: nx.Graph, bad: list[tuple[int, int]] = bad) -> bool:
            return any(nx.has_path(g, x, y) for x, y in bad)

        # weakest first; among equal probabilities the edge between larger ids is the weaker
        ordered = sorted((min(e), max(e)) for e in sub.edges)
        weakest_first = sorted(ordered, key=lambda e: (-best[e], e[0], e[1]), reverse=True)
        removed = []
        for e in weakest_first:
            if not joined(sub):
                break
            sub.remove_edge(*e)
            removed.append(e)
        for e in reversed(removed):
            sub.add_edge(*e)
            if joined(sub):
                sub.remove_edge(*e)
        out |= {frozenset(c) for c in nx.connected_components(sub)}
    return out


def blank_some(person: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    fields = st.lists(st.sampled_from(sorted(STATED)), max_size=2, unique=True)
    return fields.map(lambda blank: {k: (None if k in blank else person.get(k)) for k in STATED})


# the family, a stranger, the chaining record and Budi's re-application with typos, some fields left blank
BUDI_TYPOS = like(BUDI, nik="1871011205900007", birth_date=date(1990, 12, 5), mother_name_canonical="AMINAH")
people_pool = st.sampled_from([BUDI, ANI, RINA, AGUS, HARTONO, LINK, BUDI_TYPOS]).flatmap(blank_some)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(people_pool, min_size=1, max_size=8).flatmap(
        lambda ppl: st.tuples(
            st.just(ppl),
            st.lists(
                st.tuples(
                    st.integers(0, len(ppl) - 1),
                    st.integers(0, len(ppl) - 1),
                    st.sampled_from([0.3, 0.9, 0.92, 0.95, 0.97, 0.99, 1.0]),
                ),
                min_size=len(ppl) - 1,
                max_size=20,
            ),
        )
    )
)
def test_guard_equals_the_literal_algorithm(case: tuple[list[dict[str, Any]], list[tuple[int, int, float]]]) -> None:
    people, pairs = case
    ids = [f"r{k}" for k in range(len(people))]
    frame = pd.DataFrame([{"record_id": i, **decoded(p)} for i, p in zip(ids, people, strict=True)])
    out, _ = cluster(frame, edges(*((ids[a], ids[b], p) for a, b, p in pairs)), 0.9)
    got = {frozenset(int(r[1:]) for r in g) for g in groups(out)}
    assert got == literal_guard(people, pairs, 0.9)


def nik_variants(base: str) -> st.SearchStrategy[str]:
    def substitute(k: int, d: str) -> str:
        return base[:k] + d + base[k + 1 :]

    def swap(k: int) -> str:
        return base[:k] + base[k + 1] + base[k] + base[k + 2 :]

    return st.one_of(
        st.just(base),
        st.builds(substitute, st.integers(0, 15), st.sampled_from("0123456789")),
        st.builds(swap, st.integers(0, 14)),
        st.from_regex(r"\A[0-9]{6}[0-7][0-9]{9}\Z"),
    )


def date_variants(base: date) -> st.SearchStrategy[date]:
    text = f"{base:%Y%m%d}"

    def parse(s: str) -> date:
        try:
            return date(int(s[:4]), int(s[4:6]), int(s[6:]))
        except ValueError:
            return base

    return st.one_of(
        st.just(base),
        st.builds(lambda k, d: parse(text[:k] + d + text[k + 1 :]), st.integers(0, 7), st.sampled_from("0123456789")),
        st.builds(lambda k: parse(text[:k] + text[k + 1] + text[k] + text[k + 2 :]), st.integers(0, 6)),
        st.builds(lambda y: parse(f"{base.year + y:04d}{text[4:]}"), st.sampled_from([-1, 1, 2])),
        st.just(date(base.year, base.day, base.month) if base.day <= 12 else base),
        st.dates(date(1, 1, 1), date(9999, 12, 31)),
    )


varied_people = st.fixed_dictionaries(
    {
        "nik": st.none() | nik_variants(BUDI["nik"]) | nik_variants(ANI["nik"]) | nik_variants(AGUS["nik"]),
        "birth_date": st.none() | date_variants(BUDI["birth_date"]) | date_variants(AGUS["birth_date"]),
        "mother_name_canonical": st.sampled_from([None, "SITI AMINAH", "AMINAH", "RATNA DEWI", "SITI AMINNAH"]),
        "sex": st.sampled_from([None, "M", "F"]),
        "full_name_tokens": st.sampled_from([None, ["BUDI", "SANTOSO"], ["AGUS", "SANTOSO"], ["BUDI"], ["B"]]),
    }
)


@settings(max_examples=120, deadline=None)
@given(st.lists(varied_people, min_size=2, max_size=8))
def test_vectorised_rule_equals_contradicts(people: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist([decoded(p) for p in people], schema=pa.schema(
        [("nik", pa.string()), ("birth_date", pa.date32()), ("mother_name_canonical", pa.string()),
         ("sex", pa.string()), ("full_name_tokens", pa.list_(pa.string())), ("nik_sex", pa.string()),
         ("nik_birth_date", pa.date32())]
    ))  # fmt: skip
    rows = np.arange(len(people), dtype=np.int64)
    i, j = (np.array(x, dtype=np.int64) for x in zip(*itertools.combinations(range(len(people)), 2), strict=True))
    found, reasons = gd._contradictions(gd._evidence(table, rows), i, j, gd._NameCheck(table, rows))
    got = dict(zip(zip(i[found].tolist(), j[found].tolist(), strict=True), reasons, strict=True))
    expected = {
        (a, b): r for a, b in zip(i.tolist(), j.tolist(), strict=True) if (r := contradicts(people[a], people[b]))
    }
    assert got == expected


def synthetic(n_people: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """People with 1-4 applications, in families that share a mother; some families chained by a strong edge."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    pairs: list[tuple[str, str, float]] = []
    family_first: list[str] = []
    for person in range(n_people):
        family = person // 3
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2005)
        sex = rng.choice("MF")
        day_code = day + (40 if sex == "F" else 0)
        nik = f"1871{rng.randint(10, 99)}{day_code:02d}{month:02d}{year % 100:02d}{person % 9999 + 1:04d}"
        ids = [f"P{person:05d}-{k}" for k in range(rng.randint(1, 4))]
        for rid in ids:
            rows.append(
                {
                    "record_id": rid,
                    "nik": nik if rng.random() > 0.2 else None,
                    "birth_date": date(year, month, day) if rng.random() > 0.1 else None,
                    "mother_name_canonical": f"MOTHER {family}" if rng.random() > 0.1 else None,
                    "sex": sex if rng.random() > 0.05 else None,
                    "full_name_tokens": [f"GIVEN{person}", f"FAMILY{family}"],
                }
            )
        pairs += [(a, b, rng.uniform(0.9, 1.0)) for a, b in itertools.combinations(ids, 2) if rng.random() < 0.8]
        if family_first and person % 3 and rng.random() < 0.3:
            pairs.append((family_first[-1], ids[0], rng.choice([0.2, 0.91, 0.93])))
        family_first.append(ids[0])
    return pd.DataFrame([{"record_id": r["record_id"], **decoded(r)} for r in rows]), edges(*pairs)


def test_output_does_not_depend_on_row_order_or_pair_sides() -> None:
    people, pairs = synthetic(600, seed=5)
    frame, report = cluster(people, pairs, 0.9)
    assert report.edges_cut > 0
    rng = np.random.default_rng(9)
    for _ in range(3):
        shuffled_pairs = pairs.sample(frac=1, random_state=rng).reset_index(drop=True)
        swap = rng.random(len(shuffled_pairs)) < 0.5
        shuffled_pairs.loc[swap, ["record_id_l", "record_id_r"]] = shuffled_pairs.loc[
            swap, ["record_id_r", "record_id_l"]
        ].to_numpy()
        again = cluster(people.sample(frac=1, random_state=rng), shuffled_pairs, 0.9)
        pd.testing.assert_frame_equal(frame, again[0])
        assert report == again[1]


def test_200k_records_in_a_few_seconds() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    person = np.sort(rng.integers(0, n // 2, n))
    ids = np.array([f"APP-{k:07d}" for k in rng.permutation(n)], dtype=object)
    same = np.flatnonzero(person[1:] == person[:-1])
    noise = rng.integers(0, n, (n, 2))
    left, right = np.r_[same, noise[:, 0]], np.r_[same + 1, noise[:, 1]]
    prob = np.r_[rng.uniform(0.9, 1, len(same)), rng.uniform(0, 1, n) ** 4]
    pairs = pd.DataFrame({"record_id_l": ids[left], "record_id_r": ids[right], "match_probability": prob})
    sexes = np.array(["M", "F"], dtype=object)[rng.integers(0, 2, n // 2)]
    births = np.datetime64("1960-01-01") + rng.integers(0, 15_000, n // 2).astype("timedelta64[D]")
    niks = rng.integers(10**15, 10**16, n // 2).astype(str)
    parts = [parse_nik(nik) for nik in niks]
    people = pd.DataFrame(
        {
            "record_id": ids,
            "nik": pd.Series(niks[person], dtype=object),
            "nik_sex": pd.Series(np.array([p.sex for p in parts], dtype=object)[person], dtype=object),
            "nik_birth_date": pd.Series(np.array([p.birth_date for p in parts], dtype=object)[person], dtype=object),
            "birth_date": births[person],
            "mother_name_canonical": "SITI",
            "sex": sexes[person],
            "full_name_tokens": [["X"]] * n,
        }
    )
    start = time.perf_counter()
    frame, report = cluster(people, pairs, 0.9)
    elapsed = time.perf_counter() - start
    assert len(frame) == n and frame["record_id"].is_monotonic_increasing
    assert report.clusters_changed > 0  # the noise edges above 0.9 chain strangers, and the guard cuts them
    assert elapsed < 10, f"clustering 200k records took {elapsed:.1f} s"
