"""benchmarks/dedupe_bench.py: where the untraced re-applications went, counted once each by their best pair."""

from __future__ import annotations

import pandas as pd

from benchmarks.dedupe_bench import UNTRACED, untraced_causes

# X1..X5 follow refusals R1/R2 of the same person at another office (the rows of review_figures' ``later``).
LATER = pd.DataFrame(
    {
        "record_id": ["X1", "X2", "X2", "X3", "X4", "X5", "X6"],
        "record_id_r": ["R1", "R1", "R2", "R1", "R1", "R1", "R1"],
    }
)
PAIRS = pd.DataFrame(
    [
        ("R1", "X2", 0.5, True),  # X2: vetoed with R1, but in the band with R2 (its best pair)
        ("R2", "X2", 0.7, False),
        ("R1", "X3", 0.5, True),
        ("X4", "R1", 0.97, False),  # above the threshold, not linked: the guard cut it
        ("R1", "X5", 0.99, False),  # traced
        ("R1", "X6", 0.2, False),
    ],
    columns=["record_id_l", "record_id_r", "match_probability", "vetoed"],
)


def test_each_untraced_application_is_counted_once_under_its_best_pair() -> None:
    causes = untraced_causes(LATER, {("X5", "R1")}, PAIRS, threshold=0.9)
    assert list(causes) == list(UNTRACED)
    assert causes == {"not_scored": 1, "vetoed": 1, "band": 2, "guard": 1}


def test_a_lower_threshold_moves_the_band_to_the_guard() -> None:
    causes = untraced_causes(LATER, {("X5", "R1")}, PAIRS, threshold=0.6)
    assert causes == {"not_scored": 1, "vetoed": 1, "band": 1, "guard": 2}
