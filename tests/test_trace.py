"""Traces over the identity store: history, office-shopping alerts, the report, the export, their commands.

The store is ingested from a small CSV; the tables a link run writes (membership, identities, pairs,
models, decisions, events) are filled by SQL to describe each case. Identities:

    A  refused at Kalianda, then issued at Metro; the two are a scored pair          -> alert, direct
    B  refused at Kotabumi; Liwa tied to it only through B3 (0.97, 0.93) or B4       -> alert via B3, p 0.93
       (0.995, 0.91); B3 re-applied at Kotabumi (same office), B4 came before          -> no alert for them
    C  issued at Metro, refused later at Kalianda                                    -> no alert
    D  refused at Metro; D2 tied to D3 by a must-link decision, D3 to D1 by a pair   -> D2 via D3 (0.95), D3 direct
    E  refused at Metro; the only path to E2 crosses a pair ruled cannot-link        -> alert without a probability
    F  refused at Metro and applied at Liwa on the same day                          -> no alert
    U1 stored, never linked
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import re
from pathlib import Path

import networkx as nx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from linkage import cli
from linkage import spec as model
from linkage.alerts import _maximin, _spanning_tree, alerts, office_shopping
from linkage.cli import app
from linkage.config import Config
from linkage.errors import InputError, NotFoundError
from linkage.exports import export, write_report
from linkage.history import history
from linkage.pipeline import ingest
from linkage.spec import load_spec
from linkage.store import Store

runner = CliRunner()

A, B, C, D, E, F = (f"ID-{c * 16}" for c in "abcdef")
OLD, MIDDLE = "ID-0000000000000001", "ID-0000000000000002"  # retired: OLD -> MIDDLE -> A
SPLIT = "ID-5555555555555555"  # split off A
RUN1, RUN2, RUN3 = "20240101T000000-00000001", "20240301T000000-00000002", "20240401T000000-00000003"
# The threshold of the link run the cases below are drawn for (B's pairs at 0.91 and 0.93 are links at it):
# the links table holds the edges clustering kept at it, and alerts read those, whatever the spec says.
AT = 0.9

ROWS = [
    # record_id, full_name, office, application_date, decision, decision_reason, identity
    ("A1", "Siti Aminah", "Kalianda", "2024-01-10", "ditolak", "tujuan tidak jelas", A),
    ("A2", "Sitti Aminah binti Sukardi", "Metro", "01-03-2024", "diterbitkan", "", A),
    ("B1", "Joko Susilo", "Kotabumi", "2024-02-01", "rejected", "dokumen palsu", B),
    ("B2", "Djoko Soesilo", "Liwa", "2024-05-01", "pending", "", B),
    ("B3", "Joko Susilo", "Kotabumi", "2024-03-01", "issued", "", B),
    ("B4", "Joko Susilo", "Kotabumi", "2023-12-01", "issued", "", B),
    ("C1", "Dewi Lestari", "Metro", "2024-01-05", "issued", "", C),
    ("C2", "Dewi Lestari", "Kalianda", "2024-06-01", "rejected", "indikasi TPPO", C),
    ("D1", "Rahmat Hidayat", "Metro", "2024-01-01", "rejected", "sponsor fiktif", D),
    ("D2", "Rachmat Hidajat", "Kalianda", "2024-02-01", "issued", "", D),
    ("D3", "Rahmat Hidayat", "Kalianda", "2024-03-01", "issued", "", D),
    ("E1", "Nur Hayati", "Metro", "2024-01-01", "rejected", "tujuan tidak jelas", E),
    ("E2", "Nur Hayati", "Liwa", "2024-02-01", "issued", "", E),
    ("E3", "Nur Hayati", "Liwa", "2023-06-01", "issued", "", E),
    ("F1", "Agus Setiawan", "Metro", "2024-04-04", "rejected", "tujuan tidak jelas", F),
    ("F2", "Agus Setiawan", "Liwa", "2024-04-04", "issued", "", F),
    ("U1", "Budi Santoso", "Metro", "2024-02-02", "rejected", "", None),
]
NAMES = {name for _, name, *_ in ROWS}

COMPARISONS = ["name", "nik", "dob", "mother"]
PAIRS = [
    # left, right, probability, weight, vetoed, gammas, weights, run
    ("A1", "A2", 0.6, 0.6, False, [1, 0, 0, 0], [0.6, 0.0, 0.0, 0.0], RUN1),  # scored again by RUN2
    ("A1", "A2", 0.99, 24.5, False, [3, 2, 1, 0], [5.5, 12.0, 8.0, -1.0], RUN2),
    ("B1", "B3", 0.97, 5.0, False, [3, 1, 1, 1], [4.0, 1.0, 0.5, 0.5], RUN1),
    ("B2", "B3", 0.93, 3.8, False, [2, 0, 1, 0], [2.0, -1.0, 1.5, -0.7], RUN1),
    ("B1", "B4", 0.995, 7.6, False, [3, 2, 1, 0], [4.0, 2.5, 1.5, -0.4], RUN1),
    ("B2", "B4", 0.91, 3.3, False, [2, 1, 0, 0], [2.0, 1.3, 0.0, 0.0], RUN1),
    ("B3", "B4", 0.5, 0.0, True, [1, 0, 0, 0], [1.0, 0.0, 0.0, 0.0], RUN1),
    ("C1", "C2", 0.95, 4.2, False, [3, 0, 1, 0], [4.0, 0.0, 0.2, 0.0], RUN1),
    ("D1", "D3", 0.95, 4.2, False, [3, 0, 1, 0], [4.0, 0.0, 0.2, 0.0], RUN1),
    ("E1", "E3", 0.99, 6.6, False, [3, 2, 0, 0], [4.0, 2.6, 0.0, 0.0], RUN1),
    ("E2", "E3", 0.97, 5.0, False, [3, 1, 0, 0], [4.0, 1.0, 0.0, 0.0], RUN1),
    ("F1", "F2", 0.99, 6.6, False, [3, 2, 0, 0], [4.0, 2.6, 0.0, 0.0], RUN1),
]
DECISIONS = [
    # id, kind, a, b, by, reason, at
    ("d1", "must_link", "A2", "A1", "officer.rina", "same photograph", "2024-03-05 10:00:00+00"),
    ("d2", "must_link", "D2", "D3", "officer.rina", "same passport number", "2024-03-05 11:00:00+00"),
    ("d3", "must_link", "E2", "E3", "officer.rina", "looked alike", "2024-03-05 12:00:00+00"),
    ("d4", "cannot_link", "E3", "E2", "officer.agus", "different mothers", "2024-03-06 09:00:00+00"),
    ("d5", "cannot_link", "C1", "A1", "officer.agus", "another woman", "2024-03-07 09:00:00+00"),
]
EVENTS = [
    # run, kind, identity, other identity, record, other record, probability, reason
    (RUN1, "created", A, None, "A1", None, None, None),
    (RUN1, "created", OLD, None, "A2", None, None, None),
    (RUN1, "created", B, None, "B1", None, None, None),
    (RUN2, "merged", MIDDLE, OLD, None, None, 0.95, "joined by pairs at the threshold"),
    (RUN3, "merged", A, MIDDLE, "A2", "A1", 0.99, "joined by pairs at the threshold"),
    (RUN3, "decision", A, None, "A2", "A1", None, "must_link by officer.rina"),
    (RUN3, "split", SPLIT, A, None, None, None, "cut by the guard"),  # names A only as the other identity
]


def csv_text() -> str:
    lines = ["record_id,full_name,office,application_date,decision,decision_reason"]
    lines += [",".join(row[:6]) for row in ROWS]
    return "\n".join(lines) + "\n"


def kept_links(at: float) -> list[tuple[str, str, float, str]]:
    """The edges clustering keeps at threshold ``at``: the latest score of each pair at or above it, not
    vetoed, inside one identity; the latest decision on a pair makes it a must-link or no link."""
    identity = {record: ident for record, *_, ident in ROWS}
    latest = {}
    for left, right, p, _, vetoed, *_ in sorted(PAIRS, key=lambda r: r[-1]):
        latest[tuple(sorted((left, right)))] = (p, vetoed)
    edges = {pair: (p, "scored") for pair, (p, vetoed) in latest.items() if p >= at and not vetoed}
    for _, kind, a, b, *_ in sorted(DECISIONS, key=lambda d: d[6]):
        pair = tuple(sorted((a, b)))
        if kind == "must_link":
            edges[pair] = (edges.get(pair, (1.0, ""))[0], "must_link")
        else:
            edges.pop(pair, None)
    return [
        (a, b, p, kept)
        for (a, b), (p, kept) in sorted(edges.items())
        if identity[a] is not None and identity[a] == identity[b]
    ]


def describe_links(store: Store, at: float = AT) -> None:
    """Fill the tables a link run writes, for the identities of the module docstring, linked at ``at``."""
    for record, *_, identity in ROWS:
        if identity is not None:
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, ?)", [record, identity, RUN1])
    for identity in (A, B, C, D, E, F):
        store.sql("INSERT INTO identities VALUES (?, ?, NULL, NULL)", [identity, RUN1])
    store.sql("INSERT INTO identities VALUES (?, ?, ?, ?)", [OLD, RUN1, RUN2, MIDDLE])
    store.sql("INSERT INTO identities VALUES (?, ?, ?, ?)", [MIDDLE, RUN2, RUN3, A])
    store.sql("INSERT INTO models VALUES ('m1', ?, now(), 17, ?, '{}')", [RUN1, COMPARISONS])
    for left, right, p, weight, vetoed, gammas, weights, run in PAIRS:
        store.sql(
            "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'm1', ?)",
            [left, right, p, weight, weight, vetoed, gammas, weights, run],
        )
    for decision in DECISIONS:
        store.sql("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, ?)", [*decision, RUN3])
    for left, right, p, kept in kept_links(at):
        store.sql("INSERT INTO links VALUES (?, ?, ?, ?, ?, 'm1', ?)", [left, right, p, kept, at, RUN3])
    for i, event in enumerate(EVENTS):
        store.sql(
            """INSERT INTO events (run_id, happened_at, kind, identity_id, other_identity_id, record_id,
                                   other_record_id, probability, reason)
               VALUES (?, TIMESTAMPTZ '2024-03-01 00:00:00+00' + ? * INTERVAL 1 HOUR, ?, ?, ?, ?, ?, ?, ?)""",
            [event[0], i, *event[1:]],
        )


def linked_store(folder: Path, at: float) -> Path:
    source = folder / "applications.csv"
    source.write_text(csv_text(), encoding="utf-8")
    path = folder / "s.duckdb"
    report = ingest([source], Config(), db=path, today=dt.date(2026, 11, 28))
    assert report.accepted == len(ROWS)
    with Store(path) as store:
        describe_links(store, at)
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_store(tmp_path_factory.mktemp("trace"), AT)


@pytest.fixture
def store(db: Path):
    with Store(db, read_only=True) as opened:
        yield opened


# ------------------------------------------------------------------------------------------- alerts


def test_alerts_are_refusals_on_an_earlier_day_at_another_office(store: Store) -> None:
    found = alerts(store)
    assert [(a["record_id"], a["refused_record_id"]) for a in found] == [
        ("D2", "D1"),
        ("E2", "E1"),
        ("A2", "A1"),
        ("D3", "D1"),
        ("B2", "B1"),
    ]  # not B3 (same office), B4, C1 (before the refusal), F2 (same day), U1 (not linked)
    a2 = found[2]
    assert a2 == {
        "identity_id": A,
        "record_id": "A2",
        "office": "Metro",
        "application_date": dt.date(2024, 3, 1),
        "decision": "issued",
        "refused_record_id": "A1",
        "refused_office": "Kalianda",
        "refused_date": dt.date(2024, 1, 10),
        "refused_decision": "rejected",
        "refusal_reason": "tujuan tidak jelas",
        "match_probability": 0.99,  # the latest run's score of the pair, not RUN1's 0.6
        "direct": True,
        "via": [],
        "refused_identity_id": A,
        "level": "linked",
        "reason": "direct",
    }


def test_an_indirect_alert_takes_the_bottleneck_of_the_strongest_path(store: Store) -> None:
    by_pair = {(a["record_id"], a["refused_record_id"]): a for a in alerts(store)}
    b2 = by_pair["B2", "B1"]
    # B1-B3-B2 (0.97, 0.93) beats B1-B4-B2 (0.995, 0.91): the weakest link decides
    assert (b2["match_probability"], b2["direct"], b2["via"]) == (0.93, False, ["B3"])
    # a must-link decision is a link of probability 1
    assert (by_pair["D2", "D1"]["match_probability"], by_pair["D2", "D1"]["via"]) == (0.95, ["D3"])
    assert by_pair["D3", "D1"]["direct"] is True
    # the only path crosses a pair whose latest decision is cannot-link: no probability, still an alert
    assert (by_pair["E2", "E1"]["match_probability"], by_pair["E2", "E1"]["direct"]) == (None, False)
    reasons = {pair: a["reason"] for pair, a in by_pair.items()}
    assert reasons == {("B2", "B1"): "via", ("D2", "D1"): "via", ("D3", "D1"): "direct", ("E2", "E1"): "no_link_path",
                       ("A2", "A1"): "direct"}  # fmt: skip


def test_the_runs_links_decide_which_pairs_tie_records(tmp_path: Path) -> None:
    # linked at 0.94, B2 is tied to B1 by no path of links (0.93 and 0.91 fell below the run's threshold)
    with Store(linked_store(tmp_path, 0.94), read_only=True) as store:
        by_pair = {(a["record_id"], a["refused_record_id"]): a for a in alerts(store)}
    assert by_pair["B2", "B1"]["match_probability"] is None
    assert by_pair["A2", "A1"]["match_probability"] == 0.99  # direct: the pair's own, whatever the threshold


def test_alerts_since_filters_on_the_application_date(store: Store) -> None:
    assert [a["record_id"] for a in alerts(store, since=dt.date(2024, 3, 1))] == ["A2", "D3", "B2"]
    assert [a["record_id"] for a in alerts(store, since=dt.date(2024, 3, 2))] == ["B2"]
    assert alerts(store, since=dt.date(2025, 1, 1)) == []


def test_postponements_count_as_refusals_only_when_asked(store: Store) -> None:
    found = alerts(store, refusals=("rejected", "cancelled"))
    assert len(found) == 5
    with pytest.raises(InputError, match="did you mean 'rejected'"):
        alerts(store, refusals=("rejectd",))


def test_alerts_follow_the_runs_links_not_the_spec_file(store: Store, tmp_path: Path, monkeypatch) -> None:
    """A spec with another threshold, read after the run, changes nothing: the links are the run's."""
    before = alerts(store)
    text = model.DEFAULT_SPEC.read_text(encoding="utf-8")
    spec = tmp_path / "model.toml"
    spec.write_text(re.sub(r"(?m)^threshold = [0-9.]+", "threshold = 0.94", text, count=1), encoding="utf-8")
    monkeypatch.setattr(model, "DEFAULT_SPEC", spec)
    assert load_spec(None).threshold == 0.94
    assert alerts(store) == before
    by_pair = {(a["record_id"], a["refused_record_id"]): a for a in before}
    assert by_pair["B2", "B1"]["match_probability"] == 0.93  # a link at the run's 0.9


def test_maximin_matches_the_widest_path_by_brute_force() -> None:
    """Differential: the bottleneck is the largest t at which the two records are connected by edges >= t."""
    rng = random.Random(7)
    for _ in range(200):
        nodes = [f"r{i}" for i in range(rng.randint(2, 9))]
        edges = {}
        for a in nodes:
            for b in nodes:
                if a < b and rng.random() < 0.35:
                    edges[a, b] = rng.choice([0.9, 0.92, 0.95, 0.97, 0.99, 1.0])
        tree = _spanning_tree([(a, b, p) for (a, b), p in edges.items()])
        source, target = rng.sample(nodes, 2)
        found = _maximin(tree, source, target)
        expected = None
        for t in sorted(set(edges.values()), reverse=True):
            graph = nx.Graph([e for e, p in edges.items() if p >= t])
            if source in graph and target in graph and nx.has_path(graph, source, target):
                expected = t
                break
        assert (found and found[0]) == expected
        if found is not None:
            path = found[1]
            assert path[0] == source and path[-1] == target
            assert min(edges[min(x, y), max(x, y)] for x, y in itertools.pairwise(path)) == expected


# ------------------------------------------------------------------------------------------ history


def test_history_by_record_id(store: Store) -> None:
    found = history(store, "A1")
    assert (found["found_as"], found["identity_id"], found["followed"]) == ("record", A, [])
    apps = found["applications"]
    assert [a["record_id"] for a in apps] == ["A1", "A2"]  # time order
    assert [a["office"] for a in apps] == ["Kalianda", "Metro"]
    assert apps[0]["decision"] == "rejected" and apps[0]["decision_reason"] == "tujuan tidak jelas"
    assert apps[0]["application_date"] == dt.date(2024, 1, 10) and apps[0]["since_run"] == RUN1
    assert apps[0]["evidence"] == {
        "other_record_id": "A2",
        "match_probability": 0.99,
        "match_weight": 24.5,
        "vetoed": False,
        "kept": "must_link",  # scored 0.99 at the threshold, and an officer's must-link
        "agreeing": [
            {"comparison": "nik", "level": 2, "weight": 12.0},
            {"comparison": "dob", "level": 1, "weight": 8.0},
            {"comparison": "name", "level": 3, "weight": 5.5},
        ],
    }
    assert apps[1]["evidence"]["other_record_id"] == "A1"
    assert [(d["kind"], d["other_record_id"], d["decided_by"], d["reason"]) for d in apps[0]["decisions"]] == [
        ("must_link", "A2", "officer.rina", "same photograph"),
        ("cannot_link", "C1", "officer.agus", "another woman"),  # with a record of another identity
    ]
    assert [d["other_record_id"] for d in apps[1]["decisions"]] == ["A1"]
    assert apps[0]["decisions"][0]["decided_at"].date() == dt.date(2024, 3, 5)
    # the identity's events, those of the identities merged into it, and of its records; not B's
    assert [(e["kind"], e["identity_id"]) for e in found["events"]] == [
        ("created", A),
        ("created", OLD),
        ("merged", MIDDLE),
        ("merged", A),
        ("decision", A),
        ("split", SPLIT),
    ]
    assert [e["event_no"] for e in found["events"]] == sorted(e["event_no"] for e in found["events"])


def test_history_evidence_is_the_strongest_pair_in_time_order(store: Store) -> None:
    found = history(store, B)
    assert found["found_as"] == "identity"
    apps = {a["record_id"]: a for a in found["applications"]}
    assert list(apps) == ["B4", "B1", "B3", "B2"]
    assert apps["B2"]["evidence"]["other_record_id"] == "B3"  # 0.93 beats 0.91
    assert apps["B2"]["evidence"]["agreeing"] == [
        {"comparison": "name", "level": 2, "weight": 2.0},
        {"comparison": "dob", "level": 1, "weight": 1.5},
    ]  # NIK and mother weighed against: no agreement
    c1 = history(store, "C1")["applications"][0]["evidence"]
    assert [f["comparison"] for f in c1["agreeing"]] == ["name", "dob"]  # a weight of 0 is no agreement either
    assert apps["B3"]["evidence"]["other_record_id"] == "B1"  # not the vetoed B3-B4
    assert [e["kind"] for e in found["events"]] == ["created"]


def test_history_of_a_retired_identity_follows_it_to_its_successor(store: Store) -> None:
    found = history(store, OLD)
    assert found["identity_id"] == A
    assert found["followed"] == [
        {"identity_id": OLD, "retired_run": RUN2, "merged_into": MIDDLE},
        {"identity_id": MIDDLE, "retired_run": RUN3, "merged_into": A},
    ]
    assert [a["record_id"] for a in found["applications"]] == ["A1", "A2"]
    assert found["retired_run"] is None and found["created_run"] == RUN1


def test_history_of_an_unlinked_record(store: Store) -> None:
    found = history(store, "U1")
    assert (found["found_as"], found["identity_id"]) == ("unlinked record", None)
    assert [(a["record_id"], a["evidence"], a["since_run"]) for a in found["applications"]] == [("U1", None, None)]


def test_an_unknown_key_names_it_and_the_nearest(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no record or identity 'nope'"):
        history(store, "nope")
    with pytest.raises(NotFoundError, match=f"did you mean '{A}'"):
        history(store, "ID-aaaaaaaaaaaaaaab")
    with pytest.raises(NotFoundError, match="did you mean 'A1'"):
        history(store, "A1x")


# ------------------------------------------------------------------------------- report and export


NO_REVIEW = {"review_alerts": 0, "review_applications": 0}


def test_office_shopping_counts_by_office_and_month(store: Store) -> None:
    table = office_shopping(store)
    assert table.to_dict(orient="records") == [
        {"month": "2024-02", "office": "Kalianda", "alerts": 1, "applications": 1, "identities": 1, **NO_REVIEW},
        {"month": "2024-02", "office": "Liwa", "alerts": 1, "applications": 1, "identities": 1, **NO_REVIEW},
        {"month": "2024-03", "office": "Kalianda", "alerts": 1, "applications": 1, "identities": 1, **NO_REVIEW},
        {"month": "2024-03", "office": "Metro", "alerts": 1, "applications": 1, "identities": 1, **NO_REVIEW},
        {"month": "2024-05", "office": "Liwa", "alerts": 1, "applications": 1, "identities": 1, **NO_REVIEW},
    ]
    assert office_shopping(store, since=dt.date(2024, 3, 1))["alerts"].sum() == 3


def test_report_as_csv_and_as_an_offline_page_without_personal_data(store: Store, tmp_path: Path) -> None:
    table = office_shopping(store)
    csv = write_report(table, tmp_path / "shopping.csv")
    assert pd.read_csv(csv).to_dict(orient="list")["alerts"] == [1, 1, 1, 1, 1]
    page = write_report(table, tmp_path / "sub" / "shopping.html").read_text(encoding="utf-8")
    assert "vegaEmbed(" in page and '"mark": {"type": "bar"}' in page
    spec = json.loads(page.split("vegaEmbed('#chart0', ")[1].split(");</script>")[0])
    assert spec["encoding"]["color"]["field"] == "office" and spec["encoding"]["x"]["field"] == "month"
    assert "<table" in page and "Kalianda" in page
    assert "cdn" not in page.lower().split("<script>")[0]  # the libraries are inlined, not fetched
    for name in NAMES:
        assert name not in page and name.upper() not in page
    for record, *_ in ROWS:
        assert f'"{record}"' not in page


def test_report_and_export_refuse_an_unknown_suffix(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.html or \.csv"):
        write_report(office_shopping(store), tmp_path / "shopping.xlsx")
    with pytest.raises(InputError, match=r"did you mean '\.parquet'"):
        export(store, tmp_path / "identities.parquett")
    assert not list(tmp_path.iterdir())


def test_export_writes_every_stored_record_in_record_id_order(store: Store, tmp_path: Path) -> None:
    expected = sorted((record, identity) for record, *_, identity in ROWS)
    assert export(store, tmp_path / "ids.parquet") == len(ROWS)
    table = pq.read_table(tmp_path / "ids.parquet")
    assert table.column_names == ["record_id", "identity_id", "no_identity_evidence"]
    assert list(zip(*table.to_pydict().values(), strict=True)) == [(r, i, True) for r, i in expected]
    assert export(store, tmp_path / "ids.csv") == len(ROWS)
    frame = pd.read_csv(tmp_path / "ids.csv", keep_default_na=False)
    assert list(frame.itertuples(index=False, name=None)) == [(r, i or "", True) for r, i in expected]


# ------------------------------------------------------------------------------------------- commands


def flat(output: str) -> str:
    """The words of a command's output, without the boxes and line breaks rich draws at the terminal width."""
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "_width", 240)  # tables of ten columns fold every cell at 80


def test_history_command(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["history", "--db", str(db), "B2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identity_id"] == B and [a["record_id"] for a in data["applications"]] == ["B4", "B1", "B3", "B2"]
    assert data["applications"][3]["application_date"] == "2024-05-01"
    shown = runner.invoke(app, ["history", OLD, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    text = flat(shown.output)
    assert f"{MIDDLE} was retired by run {RUN3} and merged into {A}" in text
    assert "Applications in time order" in text and "Officers' decisions" in text and "Events" in text


def test_history_command_of_an_unknown_key_is_an_error(db: Path) -> None:
    result = runner.invoke(app, ["history", "--db", str(db), "nope"])
    assert result.exit_code == 1
    assert isinstance(result.exception, NotFoundError) and "'nope'" in str(result.exception)


def test_alerts_command(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["alerts", "--db", str(db), "--since", "2024-03-02", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(a["record_id"], a["refused_record_id"], a["match_probability"], a["via"]) for a in data] == [
        ("B2", "B1", 0.93, ["B3"])
    ]
    shown = runner.invoke(app, ["alerts", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    text = flat(shown.output)
    assert "5 applications after a refusal elsewhere" in text and "via B3" in text and "no link path" in text
    bad = runner.invoke(app, ["alerts", "--db", str(db), "--since", "01-03-2024"])
    assert bad.exit_code == 2 and "not a day written YYYY-MM-DD" in flat(bad.output)


def test_report_command(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "shopping.html"
    result = runner.invoke(app, ["report", "--db", str(db), "office-shopping", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "vegaEmbed" in out.read_text(encoding="utf-8")
    csv = tmp_path / "shopping.csv"
    result = runner.invoke(
        app, ["report", "office-shopping", "--db", str(db), "--out", str(csv), "--since", "2024-03-01"]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(csv)["alerts"].sum() == 3
    unknown = runner.invoke(app, ["report", "--db", str(db), "office-shoping", "--out", str(csv)])
    assert unknown.exit_code == 2 and "did you mean 'office-shopping'" in flat(unknown.output)
    bad = runner.invoke(app, ["report", "--db", str(db), "office-shopping", "--out", str(tmp_path / "x.pdf")])
    assert bad.exit_code == 1 and isinstance(bad.exception, InputError)


def test_export_command(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "ids.csv"
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{len(ROWS)} records written" in result.output
    assert len(pd.read_csv(out)) == len(ROWS)


# ------------------------------------------------------------------------------- after a real link run

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"


def linked_sample(folder: Path, rows: int = 3000) -> Path:
    """The first ``rows`` sample applications in time order, ingested and linked by `linkage link`; the store."""
    from linkage.config import load_config
    from linkage.engine import link

    frame = pq.read_table(SAMPLE).to_pandas().sort_values(["application_date", "record_id"]).head(rows)
    frame.to_parquet(folder / "a.parquet", index=False)
    config, db = load_config(None), folder / "s.duckdb"
    ingest([folder / "a.parquet"], config, db=db)
    link(db, config)
    return db


@pytest.mark.slow
def test_the_alerts_of_some_applications_are_those_of_all_filtered(tmp_path: Path) -> None:
    """``alerts(records=...)`` reads only what those applications touch (a registration's own alerts): it must
    give exactly their alerts among all of them, linked and review, alone and together."""
    db = linked_sample(tmp_path)
    with Store(db) as store:
        everything = alerts(store)
        ids = [r for (r,) in store.rows("SELECT record_id FROM applications ORDER BY record_id")]
    by_level = {level: sorted({a["record_id"] for a in everything if a["level"] == level})
                for level in ("linked", "review")}  # fmt: skip
    assert len(by_level["linked"]) >= 10 and by_level["review"], by_level
    chosen = [*by_level["linked"][:15], *by_level["review"][:15], *ids[:5]]  # alerts of both levels, and none
    with Store(db) as store:
        for record_id in chosen:
            assert alerts(store, records=[record_id]) == [a for a in everything if a["record_id"] == record_id]
        together = alerts(store, records=chosen[:10])
    assert together == [a for a in everything if a["record_id"] in set(chosen[:10])]


def test_alerts_after_a_real_link_run_match_a_pandas_reckoning(tmp_path: Path) -> None:
    """Differential: the SQL candidates against pandas, on what `linkage link` writes (3,000 sample records)."""
    db = linked_sample(tmp_path)
    with Store(db, read_only=True) as store:
        found = alerts(store, level="linked")
        review = alerts(store, level="review")
        apps = store.sql(
            """SELECT m.identity_id, n.record_id, n.office, n.application_date, n.decision
               FROM membership m JOIN applications_normalised n USING (record_id)"""
        ).df()
        pairs = dict(
            (tuple(sorted((a, b))), p)
            for a, b, p in store.rows("SELECT record_id_l, record_id_r, match_probability FROM pairs")
        )
        assert export(store, tmp_path / "ids.parquet") == 3000
        (manifest,) = store.rows("SELECT counts FROM runs WHERE kind = 'link' AND status = 'succeeded'")
    threshold = json.loads(manifest[0])["threshold"]  # the run's, stored with its links
    assert threshold == load_spec(None).threshold
    joined = apps.merge(apps[apps.decision == "rejected"], on="identity_id", suffixes=("", "_r"))
    joined = joined[
        joined.office.notna()
        & joined.office_r.notna()
        & (joined.office != joined.office_r)
        & (joined.application_date_r < joined.application_date)
    ]
    expected = sorted(zip(joined.record_id, joined.record_id_r, strict=True))
    assert sorted((a["record_id"], a["refused_record_id"]) for a in found) == expected
    assert found, "the sample's first 3,000 applications hold refused applicants who re-applied elsewhere"
    for a in found:
        pair = tuple(sorted((a["record_id"], a["refused_record_id"])))
        if a["direct"]:
            assert a["match_probability"] == pairs[pair]
        else:
            assert pair not in pairs and (a["match_probability"] is None or a["match_probability"] >= threshold)
    identity = dict(zip(apps.record_id, apps.identity_id, strict=True))
    for a in review:  # a refused person's record paired with X, in another identity, at or above the floor
        assert identity[a["record_id"]] != identity[a["refused_record_id"]]
        partner = a["refused_record_id"] if a["direct"] else a["via"][0]
        assert pairs[tuple(sorted((a["record_id"], partner)))] == a["match_probability"] >= load_spec(None).review_floor
    assert [a["match_probability"] for a in review] == sorted((a["match_probability"] for a in review), reverse=True)
    exported = pq.read_table(tmp_path / "ids.parquet").to_pandas()
    assert exported.identity_id.notna().all() and exported.record_id.is_monotonic_increasing
