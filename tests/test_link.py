"""`linkage link`: identities that keep their ids, incremental runs against one-shot dedupe, decisions, atomicity."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.engine import link
from linkage.identities import carry_over
from linkage.pipeline import ingest
from linkage.spec import DEFAULT_SPEC
from linkage.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"
runner = CliRunner()


def _no_ids_taken(ids: list[str]) -> set[str]:
    return set()


# --- carry_over: pure ---------------------------------------------------------------------------------------------


def test_a_cluster_keeps_the_id_of_the_old_identity_it_overlaps_most() -> None:
    clusters = pd.DataFrame({"record_id": ["a", "b", "c", "d"], "identity_id": ["L1", "L1", "L1", "L2"]})
    old = pd.DataFrame({"record_id": ["a", "b", "c"], "identity_id": ["X", "Y", "Y"]})
    assigned, events = carry_over(clusters, old, _no_ids_taken, "run")
    ids = dict(zip(assigned.record_id, assigned.identity_id, strict=True))
    assert ids == {"a": "Y", "b": "Y", "c": "Y", "d": "L2"}
    kinds = sorted(events.kind)
    assert kinds == ["created", "merged", "record_moved"]
    merged = events[events.kind == "merged"].iloc[0]
    assert (merged.identity_id, merged.other_identity_id) == ("Y", "X")
    moved = events[events.kind == "record_moved"].iloc[0]
    assert (moved.record_id, moved.other_identity_id, moved.identity_id) == ("a", "X", "Y")


def test_a_split_keeps_the_id_on_the_larger_part_and_records_it() -> None:
    clusters = pd.DataFrame({"record_id": ["a", "b", "c"], "identity_id": ["L1", "L1", "L2"]})
    old = pd.DataFrame({"record_id": ["a", "b", "c"], "identity_id": ["X", "X", "X"]})
    assigned, events = carry_over(clusters, old, _no_ids_taken, "run")
    ids = dict(zip(assigned.record_id, assigned.identity_id, strict=True))
    assert ids["a"] == ids["b"] == "X" and ids["c"] == "L2"
    split = events[events.kind == "split"].iloc[0]
    assert (split.identity_id, split.other_identity_id) == ("X", "L2")
    assert list(events[events.kind == "record_moved"].record_id) == ["c"]


def test_ties_go_to_the_smaller_old_id_whatever_the_row_order() -> None:
    clusters = pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["L", "L"]})
    old = pd.DataFrame({"record_id": ["b", "a"], "identity_id": ["Z", "Y"]})
    for frame in (old, old.iloc[::-1]):
        assigned, _ = carry_over(clusters, frame, _no_ids_taken, "run")
        assert set(assigned.identity_id) == {"Y"}


def test_an_id_used_before_is_never_minted_again() -> None:
    clusters = pd.DataFrame({"record_id": ["a"], "identity_id": ["L1"]})
    empty = pd.DataFrame({"record_id": [], "identity_id": []})
    assigned, events = carry_over(clusters, empty, lambda ids: set(ids), "run-2")
    assert assigned.identity_id[0] != "L1" and assigned.identity_id[0].startswith("ID-")
    assert list(events.kind) == ["created"]


def test_unchanged_clusters_make_no_events() -> None:
    clusters = pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["L1", "L1"]})
    old = pd.DataFrame({"record_id": ["a", "b"], "identity_id": ["X", "X"]})
    assigned, events = carry_over(clusters, old, _no_ids_taken, "run")
    assert set(assigned.identity_id) == {"X"} and events.empty


# --- link on real data -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_batches(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The first 6,000 sample applications in date order, in three batches."""
    folder = tmp_path_factory.mktemp("batches")
    frame = pq.read_table(SAMPLE).to_pandas().sort_values(["application_date", "record_id"]).head(6000)
    paths = []
    for k in range(3):
        path = folder / f"b{k}.parquet"
        frame.iloc[k * 2000 : (k + 1) * 2000].to_parquet(path, index=False)
        paths.append(path)
    return paths


def _copy(db: Path, folder: Path) -> Path:
    """A copy of a linked store to change, leaving the module's fixture alone."""
    copy = folder / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    return copy


def _membership(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as store:
        return dict(store.rows("SELECT record_id, identity_id FROM membership"))


@pytest.fixture(scope="module")
def linked(
    sample_batches: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, str]], list[str]]:
    """A store linked batch by batch: the membership after each run, and the run ids."""
    db = tmp_path_factory.mktemp("store") / "store.duckdb"
    config = load_config(None)
    states, runs = [], []
    for path in sample_batches:
        ingest([path], config, db=db)
        summary = link(db, config)
        states.append(_membership(db))
        runs.append(summary.run_id)
    return db, states, runs


def test_every_stored_record_is_linked_after_each_batch(linked: tuple[Path, list[dict[str, str]], list[str]]) -> None:
    _, states, _ = linked
    assert [len(s) for s in states] == [2000, 4000, 6000]


def test_ids_change_only_through_recorded_events(linked: tuple[Path, list[dict[str, str]], list[str]]) -> None:
    db, states, runs = linked
    with Store(db, read_only=True) as store:
        for before, after, run in zip(states, states[1:], runs[1:], strict=False):
            changed = {r for r, i in before.items() if after[r] != i}
            moved = {
                r
                for (r,) in store.rows("SELECT record_id FROM events WHERE run_id = ? AND kind = 'record_moved'", [run])
            }
            assert changed == moved
            for record in changed:  # and the identity it left merged or split in that run
                old = before[record]
                found = store.rows(
                    "SELECT count(*) FROM events WHERE run_id = ? AND kind IN ('merged', 'split')"
                    " AND ? IN (identity_id, other_identity_id)",
                    [run, old],
                )
                assert found[0][0] >= 1


def test_incremental_equals_one_shot_full_run(
    linked: tuple[Path, list[dict[str, str]], list[str]], tmp_path: Path
) -> None:
    """Linking in batches finds (nearly) the identities of one full run over the same records."""
    db, states, _ = linked
    config = load_config(None)
    copy = _copy(db, tmp_path)
    link(copy, config, full=True)
    full = _membership(copy)
    inc = states[-1]
    frame = pd.DataFrame({"record_id": list(inc), "a": list(inc.values())})
    frame["b"] = frame.record_id.map(full)

    def pairs(labels: pd.Series) -> int:
        sizes = labels.value_counts()
        return int((sizes * (sizes - 1) // 2).sum())

    both = pairs(frame.a + "|" + frame.b)
    p, r = both / pairs(frame.a), both / pairs(frame.b)
    assert 2 * p * r / (p + r) >= 0.99
    # the full run carried the ids over: most records keep theirs
    kept = (frame.a == frame.b).mean()
    assert kept >= 0.99


def test_a_run_with_nothing_new_changes_nothing(
    linked: tuple[Path, list[dict[str, str]], list[str]], tmp_path: Path
) -> None:
    db, states, _ = linked
    copy = _copy(db, tmp_path)
    summary = link(copy, load_config(None))
    assert (summary.linked, summary.pairs_scored, summary.created) == (0, 0, 0)
    assert _membership(copy) == states[-1]


def test_the_link_graph_holds_each_identity_together(linked: tuple[Path, list[dict[str, str]], list[str]]) -> None:
    """The links a run publishes lie inside one identity each, and connect all of its records."""
    import networkx as nx

    db, states, _ = linked
    with Store(db, read_only=True) as store:
        links = store.rows("SELECT record_id_l, record_id_r, match_probability, kept, threshold FROM links")
        (manifest,) = store.rows("SELECT counts FROM runs WHERE kind = 'link' ORDER BY started_at DESC LIMIT 1")[0]
    member = states[-1]
    graph = nx.Graph()
    graph.add_nodes_from(member)
    for left, right, p, kept, threshold in links:
        assert member[left] == member[right] and left < right
        assert kept == "must_link" or p >= threshold == json.loads(manifest)["threshold"]
        graph.add_edge(left, right)
    by_identity: dict[str, set[str]] = {}
    for record, identity in member.items():
        by_identity.setdefault(identity, set()).add(record)
    components = {frozenset(c) for c in nx.connected_components(graph)}
    assert components == {frozenset(records) for records in by_identity.values()}


def test_dedupe_and_a_full_link_give_the_same_identities(sample_batches: list[Path], tmp_path: Path) -> None:
    """One orchestration: dedupe's clusters are those of `linkage link` (its first run is full) on the same data."""
    from linkage.dedupe import dedupe

    config = load_config(None)
    dedupe([sample_batches[0]], config, tmp_path / "out")
    deduped = pd.read_parquet(tmp_path / "out" / "clusters.parquet")
    db = tmp_path / "store.duckdb"
    ingest([sample_batches[0]], config, db=db)
    assert link(db, config).mode == "full"
    linked = _membership(db)
    assert dict(zip(deduped.record_id, deduped.identity_id, strict=True)) == linked
    assert deduped.identity_id.nunique() < len(deduped)  # it did link records


# --- decisions through the CLI -------------------------------------------------------------------------------------


def _two_record_identity(db: Path) -> tuple[str, str, str]:
    with Store(db, read_only=True) as store:
        a, b, identity = store.rows(
            """SELECT min(record_id), max(record_id), identity_id FROM membership GROUP BY identity_id
               HAVING count(*) = 2 ORDER BY identity_id LIMIT 1"""
        )[0]
    return a, b, identity


def test_cannot_link_splits_and_must_link_joins_through_the_cli(
    linked: tuple[Path, list[dict[str, str]], list[str]], tmp_path: Path
) -> None:
    db, _, _ = linked
    copy = _copy(db, tmp_path)
    a, b, identity = _two_record_identity(copy)
    result = runner.invoke(
        app, ["decide", "cannot-link", a, b, "--by", "officer-7", "--reason", "different fathers", "--db", str(copy)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["link", "--db", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["decisions_applied"] == 1 and summary["split"] == 1
    ids = _membership(copy)
    assert ids[a] != ids[b] and identity in (ids[a], ids[b])
    # the split survives a full run: the decision is honoured every time
    assert runner.invoke(app, ["link", "--db", str(copy), "--full"]).exit_code == 0
    ids = _membership(copy)
    assert ids[a] != ids[b]
    # now an officer joins them again (the later decision stands)
    result = runner.invoke(
        app, ["decide", "must-link", a, b, "--by", "officer-9", "--reason", "same passport photo", "--db", str(copy)]
    )
    assert result.exit_code == 0
    assert runner.invoke(app, ["link", "--db", str(copy)]).exit_code == 0
    ids = _membership(copy)
    assert ids[a] == ids[b]
    with Store(copy, read_only=True) as store:
        kinds = [
            k
            for (k,) in store.rows(
                "SELECT kind FROM events WHERE ? IN (record_id, other_record_id) ORDER BY event_no", [a]
            )
        ]
    assert kinds.count("decision") == 2


def test_cannot_link_holds_along_a_chain() -> None:
    from linkage.cluster import cluster

    records = pd.DataFrame({"record_id": ["a", "b", "c"]})
    pairs = pd.DataFrame({"record_id_l": ["a", "b"], "record_id_r": ["b", "c"], "match_probability": [0.99, 0.95]})
    clusters, report = cluster(records, pairs, 0.9, guard=False, cannot_link=[("a", "c")])
    ids = dict(zip(clusters.record_id, clusters.identity_id, strict=True))
    assert ids["a"] == ids["b"] != ids["c"]  # the weaker edge b-c is cut
    assert report.edges_cut == 1


def test_a_must_link_cut_by_a_cannot_link_is_reported() -> None:
    from linkage.cluster import cluster

    records = pd.DataFrame({"record_id": ["a", "b", "c"]})
    pairs = pd.DataFrame({"record_id_l": [], "record_id_r": [], "match_probability": []})
    clusters, report = cluster(
        records, pairs, 0.9, guard=False, must_link=[("a", "b"), ("b", "c")], cannot_link=[("a", "c")]
    )
    ids = dict(zip(clusters.record_id, clusters.identity_id, strict=True))
    assert ids["a"] != ids["c"]
    assert len(report.decision_conflicts) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decide", "maybe-link", "x", "y", "--by", "o", "--reason", "r"], "unknown decision"),
        (["decide", "must-link", "x", "x", "--by", "o", "--reason", "r"], "two different records"),
        (["decide", "must-link", "nope-1", "nope-2", "--by", "o", "--reason", "r"], "no application"),
    ],
)
def test_bad_decisions_are_refused_with_a_reason(
    linked: tuple[Path, list[dict[str, str]], list[str]], args: list[str], message: str
) -> None:
    db, _, _ = linked
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_link_on_an_empty_store_says_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    Store(db, create=True).close()
    result = runner.invoke(app, ["link", "--db", str(db)])
    assert result.exit_code == 1
    assert "linkage ingest" in str(result.exception)


# --- atomicity: SIGKILL at random points ---------------------------------------------------------------------------


def _consistent(db: Path) -> None:
    """The store holds one run's complete state: nothing half-written."""
    with Store(db, read_only=True) as store:
        rows = store.rows
        assert (
            rows("SELECT count(*) FROM membership WHERE record_id NOT IN (SELECT record_id FROM applications)")[0][0]
            == 0
        )
        assert rows("SELECT count(*) - count(DISTINCT record_id) FROM membership")[0][0] == 0
        assert (
            rows(
                """SELECT count(*) FROM membership m LEFT JOIN identities i USING (identity_id)
               WHERE i.identity_id IS NULL OR i.retired_run IS NOT NULL"""
            )[0][0]
            == 0
        )
        assert (
            rows("SELECT count(*) FROM block_index WHERE record_no NOT IN (SELECT record_no FROM membership)")[0][0]
            == 0
        )
        last = rows(
            "SELECT counts FROM runs WHERE kind = 'link' AND status = 'succeeded' ORDER BY finished_at DESC LIMIT 1"
        )
        if last:
            manifest = json.loads(last[0][0])
            identities = rows("SELECT count(DISTINCT identity_id) FROM membership")[0][0]
            assert identities == manifest["identities"]
            assert (
                rows(
                    "SELECT count(*) FROM pairs WHERE run_id NOT IN"
                    " (SELECT run_id FROM runs WHERE status = 'succeeded')"
                )[0][0]
                == 0
            )
            assert (
                rows(
                    "SELECT count(*) FROM events WHERE run_id IS NOT NULL AND run_id NOT IN"
                    " (SELECT run_id FROM runs WHERE status = 'succeeded')"
                )[0][0]
                == 0
            )


@pytest.mark.slow  # about 40 s: 20 killed runs and a timed whole one
def test_sigkill_at_random_points_leaves_the_store_consistent(sample_batches: list[Path], tmp_path: Path) -> None:
    """Kill `linkage link` 20 times at random points of its run (incremental and full runs alternating)."""
    db = tmp_path / "store.duckdb"
    config = load_config(None)
    ingest([sample_batches[0]], config, db=db)
    link(db, config)
    ingest([sample_batches[1]], config, db=db)
    command = [sys.executable, "-m", "linkage.cli", "link", "--db", str(db)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    copy = tmp_path / "timing.duckdb"  # how long a whole run takes here, on a copy
    copy.write_bytes(db.read_bytes())
    started = time.perf_counter()
    subprocess.run([*command[:-1], str(copy), "--full"], capture_output=True, env=env, check=True)
    whole = time.perf_counter() - started
    rng = random.Random(20261128)
    kills = attempts = 0
    while kills < 20 and attempts < 60:
        extra = ["--full"] if attempts % 2 else []
        attempts += 1
        process = subprocess.Popen([*command, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.05, 0.95) * whole)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        _consistent(db)
    assert kills == 20
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    _consistent(db)
    with Store(db, read_only=True) as store:
        assert store.count("membership") == store.count("applications")
        assert store.scalar("SELECT count(*) FROM runs WHERE status = 'running'") == 0


def _reference_carry(clusters: pd.DataFrame, old: pd.DataFrame) -> dict[str, str]:
    """The rule written plainly: overlaps largest first, then smaller old id, then smaller first record."""
    label = dict(zip(clusters.record_id, clusters.identity_id, strict=True))
    before = dict(zip(old.record_id, old.identity_id, strict=True))
    first = {lab: min(r for r, x in label.items() if x == lab) for lab in set(label.values())}
    counts: dict[tuple[str, str], int] = {}
    for record, lab in label.items():
        if record in before:
            counts[(lab, before[record])] = counts.get((lab, before[record]), 0) + 1
    final: dict[str, str] = {}
    used: set[str] = set()
    for (lab, was), _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1], first[kv[0][0]])):
        if lab not in final and was not in used:
            final[lab] = was
            used.add(was)
    return {record: final.get(lab, lab) for record, lab in label.items()}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 5))), min_size=1, max_size=25),
)
def test_carry_over_follows_its_rule_on_any_input(rows: list[tuple[int, int | None]]) -> None:
    records = [f"r{k:02d}" for k in range(len(rows))]
    clusters = pd.DataFrame({"record_id": records, "identity_id": [f"L{c}" for c, _ in rows]})
    had = [(r, f"X{o}") for r, (_, o) in zip(records, rows, strict=True) if o is not None]
    old = (
        pd.DataFrame(had, columns=["record_id", "identity_id"])
        if had
        else pd.DataFrame({"record_id": [], "identity_id": []})
    )
    assigned, events = carry_over(clusters.sample(frac=1, random_state=1), old, _no_ids_taken, "run")
    got = dict(zip(assigned.record_id, assigned.identity_id, strict=True))
    assert got == _reference_carry(clusters, old)
    moved = {r for r, o in had if got[r] != o}
    assert set(events.loc[events.kind == "record_moved", "record_id"]) == moved


def test_an_updated_record_is_linked_again(
    linked: tuple[Path, list[dict[str, str]], list[str]], sample_batches: list[Path], tmp_path: Path
) -> None:
    """A correction that makes a record another person's moves it; ingesting the same file again adds nothing."""
    db, _, _ = linked
    copy = _copy(db, tmp_path)
    config = load_config(None)
    a, b, identity = _two_record_identity(copy)
    frame = pd.read_parquet(sample_batches[-1])
    again = ingest([sample_batches[-1]], config, db=copy)
    assert again.unchanged == len(frame) and again.new == again.updated == 0
    assert link(copy, config).linked == 0
    # record b is corrected into a stranger: another name, birth date, NIK, mother, phone and address
    with Store(copy, read_only=True) as store:
        row = store.con.execute("SELECT * FROM applications WHERE record_id = ?", [b]).df()
    columns = [c for c in frame.columns if c in row.columns]
    changed = row[columns].copy()
    changed.loc[:, ["full_name", "birth_date", "nik", "mother_name", "phone", "address"]] = [
        "Zulkarnain Wibisono", "1971-02-03", "1871010302710009", "Sumarni", "081399990000", "Jl. Lain No. 9",
    ]  # fmt: skip
    fix = tmp_path / "fix.parquet"
    changed.to_parquet(fix, index=False)
    report = ingest([fix], config, db=copy)
    assert (report.updated, report.new) == (1, 0)
    summary = link(copy, config)
    assert summary.linked == 1
    ids = _membership(copy)
    assert ids[b] != identity and ids[a] == identity
    with Store(copy, read_only=True) as store:
        kinds = [k for (k,) in store.rows("SELECT kind FROM events WHERE record_id = ? ORDER BY event_no", [b])]
        assert kinds[-2:] == ["record_updated", "record_moved"]
        assert store.count("relink") == 0


def test_a_spec_that_caps_candidates_links_full_then_incrementally(sample_batches: list[Path], tmp_path: Path) -> None:
    """A full run keeps each record's 2 best candidates; the batches after it score every candidate of their new
    records, and end (nearly) where one full run over the same records ends."""
    spec = tmp_path / "capped.toml"
    spec.write_text(f'extends = "{DEFAULT_SPEC.as_posix()}"\nmax_candidates = 2\n', encoding="utf-8")
    config = load_config(None)
    db = tmp_path / "store.duckdb"
    modes = []
    for path in sample_batches:
        ingest([path], config, db=db)
        modes.append(link(db, config, spec_path=spec).mode)
    assert modes == ["full", "incremental", "incremental"]
    inc = _membership(db)
    capped = link(db, config, full=True, spec_path=spec)
    full = _membership(db)
    assert capped.pairs_scored < link(_copy(db, tmp_path), config, full=True).pairs_scored, "the cap never bit"
    assert len(inc) == len(full) == 6000
    frame = pd.DataFrame({"a": list(inc.values()), "b": [full[r] for r in inc]})
    sizes = (frame.a + "|" + frame.b).value_counts()
    both = int((sizes * (sizes - 1) // 2).sum())
    a, b = frame.a.value_counts(), frame.b.value_counts()
    p, r = both / int((a * (a - 1) // 2).sum()), both / int((b * (b - 1) // 2).sum())
    assert 2 * p * r / (p + r) >= 0.99
