"""What moving the threshold costs (linkage/cutoff.py, issue 14 §3): the library, the CLI, the page and the API.

The literal store below is ingested from a CSV; membership, pairs and the link run's manifest (threshold 0.9,
review floor 0.3) are filled by SQL. Its cases, each refusal at Metro and the later application at Liwa:

    R1 R2 X1  R1 refused and R2 one identity (0.95); X1 paired with R2 at 0.6: a review alert (X1, R1) at 0.9,
              merged into one cluster at 0.5, where (X1, R1) is a linked alert instead
    L1 L2     one identity (0.99): a linked alert at both thresholds
    W1 W2     a pair at 0.4: between the floor and both thresholds, a review alert at both
    S1 S2     a pair at 0.2, below the floor: nothing
    N1 N2     N2 has a name and nothing else, a pair at 0.95: never linked on its score, a review alert at both
    B1 B2     B2 has a name and nothing else, a pair at 0.4: below the name-only floor (0.5), nothing
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkage.access import Role
from linkage.alerts import alerts
from linkage.cli import app
from linkage.config import Config
from linkage.cutoff import AlertExample, ClusterExample, Moved, cost
from linkage.errors import InputError
from linkage.pipeline import ingest
from linkage.store import Store
from tests.test_server import TOKENS, assert_error, call, client, with_users
from tests.test_web import logged_in

runner = CliRunner()

EVIDENCE = "1990-05-12,1871011205900001,Siti Aminah,Jl. Kartini 5,081234567890,B1234567"
BARE = ",,,,,"
HEADER = "record_id,full_name,office,application_date,decision,birth_date,nik,mother_name,address,phone,"
HEADER += "prior_passport_no"
ROWS = [
    # record_id, full_name, office, application_date, decision, identity, evidence
    ("R1", "Rina Wati", "Metro", "2024-01-01", "rejected", "ID-r", EVIDENCE),
    ("R2", "Rina Wati", "Metro", "2024-01-15", "issued", "ID-r", EVIDENCE),
    ("X1", "Rini Wati", "Liwa", "2024-02-01", "issued", "ID-x", EVIDENCE),
    ("L1", "Eko Prasetyo", "Metro", "2024-01-01", "rejected", "ID-l", EVIDENCE),
    ("L2", "Eko Prasetyo", "Liwa", "2024-02-01", "issued", "ID-l", EVIDENCE),
    ("W1", "Dewi Sartika", "Metro", "2024-01-01", "rejected", "ID-w1", EVIDENCE),
    ("W2", "Dewi Sartika", "Liwa", "2024-02-01", "issued", "ID-w2", EVIDENCE),
    ("S1", "Tuti Alawiyah", "Metro", "2024-01-01", "rejected", "ID-s1", EVIDENCE),
    ("S2", "Tuti Alawiyah", "Liwa", "2024-02-01", "issued", "ID-s2", EVIDENCE),
    ("N1", "Bambang Pamungkas", "Metro", "2024-01-01", "rejected", "ID-n1", EVIDENCE),
    ("N2", "Bambang Pamungkas", "Liwa", "2024-02-01", "issued", "ID-n2", BARE),
    ("B1", "Yanti Yusuf", "Metro", "2024-01-01", "rejected", "ID-b1", EVIDENCE),
    ("B2", "Yanti Yusuf", "Liwa", "2024-02-01", "issued", "ID-b2", BARE),
]
PAIRS = [
    ("R1", "R2", 0.95),
    ("R2", "X1", 0.6),
    ("L1", "L2", 0.99),
    ("W1", "W2", 0.4),
    ("S1", "S2", 0.2),
    ("N1", "N2", 0.95),
    ("B1", "B2", 0.4),
]
OLDER = ("R2", "X1", 0.3)  # an older run's score of a pair scored again: the latest counts


def literal_store(folder: Path, rows: list[tuple[str, ...]] = ROWS, pairs: list[tuple[str, str, float]] = PAIRS,
                  *, linked: bool = True) -> Path:  # fmt: skip
    source = folder / "applications.csv"
    source.write_text("\n".join([HEADER, *(",".join((*r[:5], r[6])) for r in rows)]) + "\n", encoding="utf-8")
    db = folder / "threshold.duckdb"
    report = ingest([source], Config(), db=db, today=dt.date(2026, 11, 28))
    assert report.accepted == len(rows)
    if not linked:
        return db
    with Store(db) as store:
        run = store.begin_run("link", [], "test")
        for record, *_, identity, _ in rows:
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, ?)", [record, identity, run])
        scored = [(*pair, run) for pair in pairs] + [(*OLDER, "20000101T000000-00000000")] * (pairs is PAIRS)
        for left, right, p, by in scored:  # run ids begin with their start: the older sorts first
            store.sql("INSERT INTO pairs VALUES (?, ?, ?, 0, 0, false, [], [], 'm1', ?)", [left, right, p, by])
        store.finish_run(run, "succeeded", {"threshold": 0.9, "review_floor": 0.3})
    return db


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return literal_store(tmp_path_factory.mktemp("threshold"))


@pytest.fixture
def store(db: Path):
    with Store(db, read_only=True) as opened:
        yield opened


# ------------------------------------------------------------------------------------------- the figures


def test_moving_down_merges_two_clusters_gains_a_linked_alert_and_loses_a_review_one(store: Store) -> None:
    found = cost(store, from_=0.9, to=0.5, minutes_per_review=6.0)
    assert (found.at_from.identities, found.at_to.identities) == (11, 10)
    assert (found.merged, found.split) == (Moved(1, 3), Moved(0, 0))
    assert found.merged_examples == (ClusterExample(3, 2, ("R1", "R2", "X1"), ("ID-r", "ID-x")),)
    assert found.split_examples == ()
    assert (found.at_from.linked_alerts, found.at_to.linked_alerts) == (1, 2)  # (L2, L1); then (X1, R1) too
    assert (found.at_from.review_alerts, found.at_to.review_alerts) == (3, 2)  # (X1, R1), (W2, W1), (N2, N1)
    assert (found.linked_gained, found.linked_lost, found.review_gained, found.review_lost) == (1, 0, 0, 1)
    assert found.gained_examples == (AlertExample("linked", "X1", "R1", "ID-x", "ID-r"),)
    assert found.lost_examples == (AlertExample("review", "X1", "R1", "ID-x", "ID-r"),)
    assert (found.review_floor, found.run_threshold, found.applications) == (0.3, 0.9, 13)


def test_moving_back_up_is_the_mirror_image(store: Store) -> None:
    down, up = cost(store, from_=0.9, to=0.5), cost(store, from_=0.5, to=0.9)
    assert (up.at_from, up.at_to) == (down.at_to, down.at_from)
    assert (up.merged, up.split) == (Moved(0, 0), Moved(1, 3))
    assert up.split_examples == (ClusterExample(3, 2, ("R1", "R2", "X1"), ("ID-r", "ID-x")),)
    assert (up.linked_gained, up.linked_lost, up.review_gained, up.review_lost) == (0, 1, 1, 0)
    assert (up.gained_examples, up.lost_examples) == (down.lost_examples, down.gained_examples)
    none = cost(store, from_=0.5, to=0.9, examples=0)
    assert none.split == up.split and none.split_examples == none.gained_examples == none.lost_examples == ()


def test_a_pair_with_a_bare_record_never_links_and_reviews_from_the_name_only_floor(store: Store) -> None:
    found = cost(store, from_=0.3, to=0.1)  # every evidenced pair links at 0.1; N1-N2 and B1-B2 never do
    assert found.at_to.identities == 13 - 5  # R1 R2 X1, L1 L2, W1 W2, S1 S2 joined; N1, N2, B1, B2 apart
    assert found.at_to.review_alerts == 1  # (N2, N1) at 0.95; (B2, B1) at 0.4 is below the name-only floor


def test_at_the_run_s_threshold_the_alerts_are_those_the_store_raises(store: Store) -> None:
    """The store's identities are the components at 0.9 here (no guard cut, no decision): the counts at 0.9 are
    those of linkage.alerts, level by level, and the changed alerts are among them."""
    raised = alerts(store)
    found = cost(store, from_=0.9, to=0.5, examples=10)
    by_level = {level: {(a["record_id"], a["refused_record_id"]) for a in raised if a["level"] == level}
                for level in ("linked", "review")}  # fmt: skip
    assert (found.at_from.linked_alerts, found.at_from.review_alerts) == tuple(len(v) for v in by_level.values())
    assert {(a.record_id, a.refused_record_id) for a in found.lost_examples} <= by_level["review"]


def test_the_review_queue_is_the_weekly_volume_times_the_review_alerts_per_application(store: Store) -> None:
    # 13 dated applications over 32 days (2024-01-01 to 2024-02-01), fewer than 12 weeks: all of them
    found = cost(store, from_=0.9, to=0.5, minutes_per_review=6.0)
    assert (found.window_days, found.applications_per_week) == (32, 13 * 7 / 32)
    assert found.at_from.review_per_week == pytest.approx(13 * 7 / 32 * 3 / 13)
    assert found.at_to.review_per_week == pytest.approx(13 * 7 / 32 * 2 / 13)
    assert found.at_to.officer_hours_per_week == pytest.approx(13 * 7 / 32 * 2 / 13 * 6 / 60)


def test_the_weekly_volume_is_that_of_the_last_12_weeks(tmp_path: Path) -> None:
    # 20 weeks of 10 applications from Monday 2024-01-01: the first week's one a day, the others' on its Sunday
    # (the last on day 139, so that the last 84 days hold weeks 8 to 19 whole); two review alerts among them
    def day(week: int, i: int) -> str:
        return (dt.date(2024, 1, 1) + dt.timedelta(days=i if week == 0 else 7 * week + 6)).isoformat()

    rows = [(f"F{week:02d}{i}", "Agus Salim", "Metro", day(week, i), "issued", f"ID-f{week}{i}", EVIDENCE)
            for week in range(20) for i in range(10)]  # fmt: skip
    rows[0] = (*rows[0][:4], "rejected", *rows[0][5:])  # F000, refused at Metro on 2024-01-01
    rows[1] = (rows[1][0], rows[1][1], "Liwa", *rows[1][3:])  # F001 at Liwa on 2024-01-02
    rows[2] = (rows[2][0], rows[2][1], "Kotabumi", *rows[2][3:])  # F002 at Kotabumi on 2024-01-03
    db = literal_store(tmp_path, rows, [("F000", "F001", 0.6), ("F000", "F002", 0.7)])
    with Store(db, read_only=True) as store:
        found = cost(store, from_=0.9, to=0.65, minutes_per_review=30.0)
    assert (found.window_days, found.applications_per_week) == (84, 10.0)  # 120 applications in the last 84 days
    assert (found.at_from.review_alerts, found.at_to.review_alerts) == (2, 1)  # (F001, F000) links at 0.65
    assert found.at_from.review_per_week == pytest.approx(10.0 * 2 / 200)
    assert found.at_from.officer_hours_per_week == pytest.approx(0.1 * 30 / 60)
    assert found.at_to.review_per_week == pytest.approx(10.0 * 1 / 200)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_": 0.0, "to": 0.5}, r"the threshold from must be a probability strictly between 0 and 1, got 0\.0"),
        ({"from_": 0.9, "to": 1.0}, r"the threshold to must be a probability strictly between 0 and 1, got 1\.0"),
        ({"from_": float("nan"), "to": 0.5}, r"the threshold from must be .* got nan"),
        ({"from_": 0.9, "to": 0.9}, r"the thresholds are equal \(0\.9\)"),
        ({"from_": 0.9, "to": 0.5, "minutes_per_review": 0.0}, r"the minutes per review must be a positive number"),
        ({"from_": 0.9, "to": 0.5, "minutes_per_review": -1.0}, r"got -1\.0"),
        ({"from_": 0.9, "to": 0.5, "examples": -1}, r"examples must not be negative"),
    ],
)
def test_bad_arguments_are_input_errors(store: Store, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        cost(store, **kwargs)  # type: ignore[arg-type]


def test_every_bad_argument_is_reported_at_once(store: Store) -> None:
    with pytest.raises(InputError, match=r"from .* 1\.5; the threshold to .* -0\.1; the minutes per review"):
        cost(store, from_=1.5, to=-0.1, minutes_per_review=0.0)


def test_a_store_without_a_link_run_says_to_link_first(tmp_path: Path) -> None:
    db = literal_store(tmp_path, linked=False)
    with Store(db, read_only=True) as store, pytest.raises(InputError, match=r"no link run: run `linkage link` first"):
        cost(store, from_=0.9, to=0.5)


# ------------------------------------------------------------------------------------------- the CLI


def test_the_command_prints_the_figures_as_json(db: Path) -> None:
    result = runner.invoke(app, ["threshold", "--db", str(db), "--from", "0.9", "--to", "0.5",
                                 "--minutes-per-review", "6", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["from"]["identities"], data["to"]["identities"]) == (11, 10)
    assert data["merged"] == {"clusters": 1, "records": 3} and data["split"] == {"clusters": 0, "records": 0}
    assert data["alerts"] == {"linked": {"gained": 1, "lost": 0}, "review": {"gained": 0, "lost": 1}}
    assert data["examples"]["merged"] == [
        {"records": 3, "parts": 2, "record_ids": ["R1", "R2", "X1"], "identity_ids": ["ID-r", "ID-x"]}
    ]
    assert data["examples"]["gained"] == [{"level": "linked", "record_id": "X1", "refused_record_id": "R1",
                                           "identity_id": "ID-x", "refused_identity_id": "ID-r"}]  # fmt: skip
    assert data["minutes_per_review"] == 6.0


def test_the_command_shows_a_table_and_refuses_bad_input(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    shown = runner.invoke(app, ["threshold", "--db", str(db), "--from", "0.9", "--to", "0.5"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "identities" in text and "officer-hours per week" in text and "R1, R2, X1" in text
    bad = runner.invoke(app, ["threshold", "--db", str(db), "--from", "0.9", "--to", "0.9"])
    assert isinstance(bad.exception, InputError) and "thresholds are equal" in str(bad.exception)  # main() prints it


# ------------------------------------------------------------------------------------------- the service


@pytest.fixture
def served(db: Path, tmp_path: Path) -> Path:
    return with_users(db, tmp_path)


def test_the_api_answers_analysts_and_refuses_officers(served: Path) -> None:
    api, path = client(served), "/v1/threshold?from=0.9&to=0.5&minutes_per_review=6"
    answer = call(api, "GET", path, None, TOKENS[Role.ANALYST])
    assert answer.status_code == 200, answer.text
    assert answer.json()["alerts"]["review"] == {"gained": 0, "lost": 1}
    assert answer.json()["to"]["officer_hours_per_week"] == pytest.approx(13 * 7 / 32 * 2 / 13 * 6 / 60)
    assert_error(call(api, "GET", path, None, TOKENS[Role.OFFICER]), 403)
    equal = assert_error(call(api, "GET", "/v1/threshold?from=0.9&to=0.9", None, TOKENS[Role.ADMIN]), 400)
    assert "equal" in equal["message"]
    not_a_number = assert_error(call(api, "GET", "/v1/threshold?from=x&to=0.5", None, TOKENS[Role.ADMIN]), 400)
    assert "from must be a number, got 'x'" in not_a_number["message"]


def test_the_page_shows_the_figures_and_links_the_examples(served: Path) -> None:
    page = logged_in(served, Role.ANALYST)
    html = page.get("/threshold?from=0.9&to=0.5&minutes_per_review=6&lang=en").text
    assert 'name="from"' in html and 'name="to"' in html and 'name="minutes_per_review"' in html
    assert "Officer-hours per week" in html and 'href="/identities/ID-x"' in html and 'href="/applications/R1"' in html
    assert html.index("Clusters merged") < html.index("R1") and "+1" in html  # the merge, and one linked alert more
    assert "Jam kerja petugas per minggu" in page.get("/threshold?from=0.9&to=0.5&lang=id").text
    form = page.get("/threshold").text  # no figures asked for yet: the form alone
    assert 'name="from"' in form and "ID-x" not in form
    bad = page.get("/threshold?from=0.9&to=0.9")
    assert bad.status_code == 400 and "equal" in bad.text
    assert 'href="/threshold"' in page.get("/").text  # linked from the start page, for analysts only
    assert 'href="/threshold"' not in logged_in(served, Role.OFFICER).get("/").text
    officer = logged_in(served, Role.OFFICER).get("/threshold?from=0.9&to=0.5")
    assert officer.status_code == 403 and "may not read evaluations" in officer.text
