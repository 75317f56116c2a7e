"""benchmarks/blocking_bench.py: Splink's counts and our recall agree with a brute-force cross join."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks import blocking_bench as bench
from benchmarks.generate import generate
from linkage.spec import load_spec

ROWS = 400


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("blocking")
    generate(ROWS, 3, out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def con(data: Path):
    store = bench.store_for(data, data / "store.duckdb")
    assert bench.store_for(data, store) == store  # a second call reuses the store
    connection = bench.connect(store, data / "truth.parquet")
    yield connection
    connection.close()


def test_true_pairs_are_pairs_of_one_person(con, data: Path) -> None:
    truth = pq.read_table(data / "truth.parquet").to_pylist()
    per_person = Counter(row["person_id"] for row in truth)
    expected = sum(n * (n - 1) // 2 for n in per_person.values())
    assert expected > 20  # the sample has re-applications to find
    assert con.execute("SELECT count(*) FROM true_pairs").fetchall()[0][0] == expected


PROPOSED = Path(bench.HERE) / "blocking_proposed.toml"


@pytest.mark.parametrize("which", ["current", "proposed"])
def test_counts_and_recall_match_a_cross_join_rule_by_rule(con, which: str) -> None:
    rules = bench.rule_lists(PROPOSED if PROPOSED.exists() else None).get(which)
    if rules is None:
        pytest.skip("no proposed rules")
    result = bench.analyse(con, rules)
    assert result.records == ROWS
    assert len(result.comparisons) == len(result.kept) == len(result.largest) == len(rules)
    comparisons = list(itertools.accumulate(result.comparisons))
    kept = list(itertools.accumulate(result.kept))
    for k in range(1, len(rules) + 1):
        # Each rule counts only pairs no earlier rule produced, so the first k rules' running totals are
        # what those k rules produce together.
        assert (comparisons[k - 1], kept[k - 1]) == bench.brute_force(con, rules[:k]), rules[k - 1]
    assert result.recall == kept[-1] / result.true_pairs
    assert result.linkable[1] + result.name_only[1] == result.true_pairs
    assert result.linkable[0] + result.name_only[0] == kept[-1]
    assert sum(n for _, n in result.missed_by_shared) == result.true_pairs - kept[-1]


def test_a_bare_record_is_blocked_on_its_name_only(con) -> None:
    """The bare_* keys are set only where neither a birth date nor a NIK is known."""
    rows = con.execute(
        """SELECT count(*) FILTER (WHERE bare_name_key IS NOT NULL AND (dob IS NOT NULL OR nik_digits IS NOT NULL)),
                  count(*) FILTER (WHERE bare_name_key IS NULL AND dob IS NULL AND nik_digits IS NULL
                                   AND name_key IS NOT NULL)
           FROM model_input"""
    ).fetchall()
    assert rows == [(0, 0)]


def test_rule_lists_reads_a_blocking_only_file(tmp_path: Path) -> None:
    spec = tmp_path / "rules.toml"
    spec.write_text('blocking = ["l.dob = r.dob"]\n', encoding="utf-8")
    lists = bench.rule_lists(spec)
    assert lists["proposed"] == ["l.dob = r.dob"]
    assert lists["current"] == list(load_spec(None).blocking)
