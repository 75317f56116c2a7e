"""The officer service over HTTP (linkage/server.py): every endpoint x every role x no token, the one error
shape, the rate limit and the audit, through FastAPI's test client on a real store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from linkage.access import PERMISSIONS, Role, add_user, read_audit, revoke_user
from linkage.errors import InputError
from linkage.query import query
from linkage.server import RateLimit, create_app, register
from linkage.spec import load_spec
from linkage.store import Store
from linkage.warm import Scorer
from tests.test_trace import AT, A, linked_store

# (method, path, body, the action it needs): each answers 200 for a role that may take the action
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", f"/v1/identities/{A}", None, "view_identities"),
    ("GET", "/v1/applications/A2", None, "view_applications"),
    ("POST", "/v1/decisions", {"kind": "cannot_link", "record_id_a": "A1", "record_id_b": "B1",
                               "reason": "two people: photos differ"}, "decide"),
    ("GET", "/v1/audit", None, "read_audit"),
    ("GET", "/v1/threshold?from=0.9&to=0.5", None, "read_evaluations"),
]  # fmt: skip


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_store(tmp_path_factory.mktemp("server"), AT)


TOKENS: dict[Role, str] = {}


def with_users(source: Path, folder: Path) -> Path:
    """A copy of the store ``source`` in ``folder`` with one user of each role (their tokens in ``TOKENS``)."""
    path = folder / "s.duckdb"
    shutil.copy(source, path)
    with Store(path) as store:
        TOKENS.clear()
        TOKENS.update({role: add_user(store, f"user-{role.value}", role.value) for role in Role})
    return path


@pytest.fixture
def db(linked: Path, tmp_path: Path) -> Path:
    """A copy of the linked store with one user of each role."""
    return with_users(linked, tmp_path)


def client(db: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(db, **kwargs), raise_server_exceptions=False)


def call(api: TestClient, method: str, path: str, body: dict[str, Any] | None, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.request(method, path, json=body, headers=headers)


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(("method", "path", "body", "action"), ENDPOINTS, ids=[e[3] for e in ENDPOINTS])
def test_every_endpoint_for_every_role_and_without_a_token(
    db: Path, method: str, path: str, body: dict[str, Any] | None, action: str
) -> None:
    api = client(db)
    error = assert_error(call(api, method, path, body, None), 401)
    assert "bearer token" in error["message"]
    assert_error(call(api, method, path, body, "not-a-token-we-issued"), 401)
    for role in Role:
        response = call(api, method, path, body, TOKENS[role])
        if role in PERMISSIONS[action]:  # type: ignore[index]
            assert response.status_code == 200, (role, response.text)
        else:
            assert_error(response, 403)
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        rows = read_audit(store, limit=100)
    route = path.replace(A, "{identity_id}").replace("A2", "{record_id}").partition("?")[0]  # no query in it
    assert {r["endpoint"] for r in rows} == {route}  # the route's pattern, never a path with an id in it
    assert len(rows) == 2 + len(Role) and [r["status"] for r in rows].count(401) == 2
    assert {r["user"] for r in rows} == {None} | {f"user-{role.value}" for role in Role}


def test_the_answers_carry_the_identity_and_its_history(db: Path) -> None:
    api = client(db)
    identity = call(api, "GET", f"/v1/identities/{A}", None, TOKENS[Role.OFFICER]).json()
    assert identity["identity_id"] == A and [a["record_id"] for a in identity["applications"]] == ["A1", "A2"]
    application = call(api, "GET", "/v1/applications/A2", None, TOKENS[Role.OFFICER]).json()
    assert application["found_as"] == "record" and application["identity_id"] == A
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        rows = read_audit(store)
    assert [r["identities"] for r in rows] == [[A], [A]]


def test_a_decision_is_stored_under_the_token_s_user(db: Path) -> None:
    body = {"kind": "must_link", "record_id_a": "A1", "record_id_b": "A2", "reason": "same photo"}
    made = call(client(db), "POST", "/v1/decisions", body, TOKENS[Role.OFFICER]).json()
    assert made["kind"] == "must_link"
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        assert store.rows("SELECT decided_by, reason FROM decisions ORDER BY decided_at DESC LIMIT 1") == [
            ("user-officer", "same photo")
        ]


def test_unknown_ids_and_bad_decisions_are_errors_of_one_shape(db: Path) -> None:
    api, token = client(db), TOKENS[Role.OFFICER]
    assert_error(call(api, "GET", "/v1/identities/ID-9999999999999999", None, token), 404)
    assert_error(call(api, "GET", "/v1/applications/NO-SUCH", None, token), 404)
    body = {"kind": "maybe", "record_id_a": "A1", "record_id_b": "A2", "reason": "x"}
    assert "must_link" in assert_error(call(api, "POST", "/v1/decisions", body, token), 400)["message"]
    body = {"kind": "must_link", "record_id_a": "A1", "record_id_b": "ZZ9", "reason": "x"}
    assert "ZZ9" in assert_error(call(api, "POST", "/v1/decisions", body, token), 400)["message"]
    assert_error(call(api, "GET", "/v1/nowhere", None, token), 404)


def test_an_invalid_body_names_the_field_and_never_echoes_a_value(db: Path) -> None:
    body = {"kind": "must_link", "record_id_a": "1871014508900001", "record_id_b": ["Siti Aminah"]}
    error = assert_error(call(client(db), "POST", "/v1/decisions", body, TOKENS[Role.OFFICER]), 422)
    assert "record_id_b" in error["message"] and "reason" in error["message"]
    assert "Siti" not in error["message"] and "1871014508900001" not in error["message"]


def test_a_revoked_token_is_refused(db: Path) -> None:
    with Store(db) as store:
        revoke_user(store, "user-officer")
    assert_error(call(client(db), "GET", f"/v1/identities/{A}", None, TOKENS[Role.OFFICER]), 401)


def test_a_token_past_its_rate_gets_429_with_retry_after(db: Path) -> None:
    api = client(db, rate_per_minute=2)
    for _ in range(2):
        assert call(api, "GET", f"/v1/identities/{A}", None, TOKENS[Role.OFFICER]).status_code == 200
    response = call(api, "GET", f"/v1/identities/{A}", None, TOKENS[Role.OFFICER])
    assert_error(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    assert call(api, "GET", f"/v1/identities/{A}", None, TOKENS[Role.ANALYST]).status_code == 200  # per token


def test_the_bucket_refills_with_time() -> None:
    now = [0.0]
    limit = RateLimit(60, clock=lambda: now[0])
    assert all(limit.take("u") == 0 for _ in range(60))
    assert limit.take("u") == pytest.approx(1.0)
    now[0] += 1.0
    assert limit.take("u") == 0 and limit.take("u") > 0


def test_an_unexpected_error_is_a_500_without_its_trace_or_values(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(store: Store, key: str) -> Any:
        raise RuntimeError("boom near Siti Aminah 1871014508900001")

    monkeypatch.setattr("linkage.server.history", broken)
    error = assert_error(call(client(db), "GET", f"/v1/identities/{A}", None, TOKENS[Role.OFFICER]), 500)
    assert "boom" not in error["message"] and "Siti" not in error["message"]
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        assert read_audit(store)[0]["status"] == 500


def test_the_log_holds_routes_and_statuses_never_values(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="linkage")
    body = {"kind": "cannot_link", "record_id_a": "A1", "record_id_b": "B1", "reason": "Siti Aminah 1871014508900001"}
    call(client(db), "POST", "/v1/decisions", body, TOKENS[Role.OFFICER])
    assert "/v1/decisions 200 user-officer" in caplog.text
    assert "Siti" not in caplog.text and "1871014508900001" not in caplog.text


def test_the_api_description_is_served(db: Path) -> None:
    api = client(db)
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/match", "/v1/identities/{identity_id}", "/v1/applications/{record_id}", "/v1/applications",
            "/v1/decisions", "/v1/audit"} <= set(paths)


def test_no_store_is_a_clear_error(tmp_path: Path) -> None:
    from linkage.errors import StoreError

    with pytest.raises(StoreError, match="no store at"):
        create_app(tmp_path / "missing.duckdb")


# ------------------------------------------------------------------- registering one application

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """3,000 sample applications ingested and linked for real; and a refused person's application."""
    import pandas as pd

    from linkage.config import Config
    from linkage.engine import link
    from linkage.pipeline import ingest

    folder = tmp_path_factory.mktemp("register")
    frame = pd.read_parquet(SAMPLE).head(3000)
    frame.to_parquet(folder / "a.parquet")
    path = folder / "s.duckdb"
    ingest([folder / "a.parquet"], Config(), db=path)
    link(path, Config())
    refused = frame[(frame.decision == "rejected") & frame.nik.notna() & frame.birth_date.notna()].iloc[0]
    return path, {k: (None if pd.isna(v) else str(v)) for k, v in refused.items()}


@pytest.fixture
def sampled(sample_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, dict[str, Any], str]:
    """A copy of the sample store with one user of each role, the refused person's application and identity."""
    path = with_users(sample_store[0], tmp_path)
    refused = sample_store[1]
    with Store(path) as store:  # the service holds the store: a reader in its process shares it
        identity = store.rows("SELECT identity_id FROM membership WHERE record_id = ?", [refused["record_id"]])[0][0]
    return path, refused, identity


@pytest.mark.slow
def test_a_registered_application_joins_its_identity_and_raises_the_refusal(
    sampled: tuple[Path, dict[str, Any], str],
) -> None:
    path, refused, identity = sampled
    api, token = client(path), TOKENS[Role.OFFICER]
    # the refused applicant again, at another office a year later, the name respelt
    body = {**refused, "record_id": "NEW-0001", "office": "Kanim Metro", "decision": "pending",
            "decision_reason": None, "application_date": "2026-11-30",
            "full_name": refused["full_name"].upper().replace("U", "OE", 1)}  # fmt: skip
    answer = call(api, "POST", "/v1/applications", body, token)
    assert answer.status_code == 200, answer.text
    made = answer.json()
    assert made["identity_id"] == identity
    assert [a["refused_record_id"] for a in made["alerts"]] == [refused["record_id"]]
    assert made["alerts"][0]["level"] == "linked"
    again = call(api, "POST", "/v1/applications", body, token)
    assert "stored already" in assert_error(again, 400)["message"]
    with Store(path) as store:  # the service holds the store: a reader in its process shares it
        row = read_audit(store)[1]
    assert row["endpoint"] == "/v1/applications" and row["identities"] == [identity] and row["status"] == 200


# What a run writes, without its run ids and times: two stores that hold the same are the same store.
_WRITTEN = {
    "membership": "SELECT record_id, record_no, identity_id FROM membership",
    "identities": "SELECT identity_id, retired_run IS NULL, merged_into FROM identities",
    "pairs": "SELECT record_id_l, record_id_r, round(match_probability, 9), round(match_weight, 6), vetoed, gammas,"
             " [round(w, 4) for w in weights] FROM pairs",
    "links": "SELECT record_id_l, record_id_r, round(match_probability, 9), kept FROM links",
    "block_index": "SELECT block_key, record_no FROM block_index",
    "value_counts": "SELECT kind, value, n FROM value_counts",
    "events": "SELECT kind, identity_id, other_identity_id, record_id, other_record_id, round(probability, 9), reason"
              " FROM events",
}  # fmt: skip


def _written(path: Path) -> dict[str, list[Any]]:
    with Store(path) as store:
        return {table: sorted(store.rows(sql), key=repr) for table, sql in _WRITTEN.items()}


@pytest.mark.slow
def test_a_registration_scored_warm_writes_what_a_link_writes(
    sample_store: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Twenty applications registered one after another into two copies of a store: into one scored by the warm
    scorer (the link run only clusters and publishes), into the other by a link run alone. The two stores must
    hold the same identities, pairs, links, block index, value counts and events: nothing the warm path skips
    is missed. Later applications of stored people (their identities grow, some merge) and new people."""
    import pandas as pd

    from linkage.config import Config

    warm, cold = tmp_path / "warm.duckdb", tmp_path / "cold.duckdb"
    shutil.copy(sample_store[0], warm)
    shutil.copy(sample_store[0], cold)
    frame = pd.read_parquet(SAMPLE).iloc[3000:3020]
    config = Config()
    with Store(warm) as store:
        scorer = Scorer(store, load_spec(None))
    for _, row in frame.iterrows():
        fields = {k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
        made = register(warm, config, fields, scorer)
        register(cold, config, fields)
        with Store(warm) as store:
            counts = json.loads(store.rows("SELECT counts FROM runs WHERE run_id = ?", [made["run_id"]])[0][0])
            assert counts["scored_warm"], fields["record_id"]
            # (reckoned from the snapshot's count and the records clustered, not counted: the same)
            assert counts["identities"] == store.scalar("SELECT count(DISTINCT identity_id) FROM membership")
            assert scorer.patch(store)  # the snapshot patched with the run, not loaded again
    warm_tables, cold_tables = _written(warm), _written(cold)
    for table in _WRITTEN:
        assert warm_tables[table] == cold_tables[table], table
    assert len(warm_tables["events"]) >= 20
    # the patched snapshot answers as one loaded afresh: the new applications, their identities, counts, λ
    assert scorer.state.snapshot.patches == len(frame)
    with Store(warm) as store:
        loaded = Scorer(store, load_spec(None))
        assert scorer.state.snapshot.identities == loaded.state.snapshot.identities
        cursor = Store.on(store.con.cursor())
        for _, row in pd.read_parquet(SAMPLE).iloc[2990:3030].iterrows():
            fields = {k: str(row[k]) for k in ("full_name", "birth_date", "nik", "mother_name") if not pd.isna(row[k])}
            try:
                answers = [query(cursor, fields, limit=20, scorer=s) for s in (scorer, loaded)]
            except InputError:
                continue  # (an impossible birth date: the officer corrects it first)
            patched, fresh = (json.dumps(a, sort_keys=True, default=str) for a in answers)
            assert patched == fresh


def test_a_registered_application_needs_its_id_and_name_and_no_unknown_field(db: Path) -> None:
    api, token = client(db), TOKENS[Role.OFFICER]
    error = assert_error(call(api, "POST", "/v1/applications", {"office": "Metro"}, token), 422)
    assert "record_id" in error["message"] and "full_name" in error["message"]
    body = {"record_id": "N1", "full_name": "Siti", "religion": "x"}
    assert "religion" in assert_error(call(api, "POST", "/v1/applications", body, token), 422)["message"]
    assert_error(call(api, "POST", "/v1/applications", body, None), 401)


@pytest.mark.slow
def test_a_match_finds_the_refused_identity_for_every_role_and_none_without_a_token(
    sampled: tuple[Path, dict[str, Any], str],
) -> None:
    path, refused, identity = sampled
    api, tokens = client(path), TOKENS
    wanted = ("full_name", "birth_date", "nik", "mother_name", "sex")
    body = {k: refused[k] for k in wanted} | {"full_name": refused["full_name"].upper(), "limit": 3}
    assert_error(call(api, "POST", "/v1/match", body, None), 401)
    for role in Role:
        answer = call(api, "POST", "/v1/match", body, tokens[role])
        assert answer.status_code == 200, answer.text
        best = answer.json()["candidates"][0]
        assert best["identity_id"] == identity and best["level"] == "linked"
        assert any(a["record_id"] == refused["record_id"] and a["refused"] for a in best["applications"])
        assert {e["comparison"] for e in best["evidence"]} >= {"name", "nik", "dob"}
    bad = {"full_name": "Siti", "birth_date": "31-02-1990"}
    error = assert_error(call(api, "POST", "/v1/match", bad, tokens[Role.OFFICER]), 400)
    assert "birth_date" in error["message"] and "Traceback" not in error["message"]
    too_many = call(api, "POST", "/v1/match", {**body, "limit": 1000}, tokens[Role.OFFICER])
    assert "limit" in assert_error(too_many, 422)["message"]
    with Store(path) as store:  # the service holds the store: a reader in its process shares it
        rows = read_audit(store, limit=10)
    assert rows[2]["endpoint"] == "/v1/match" and identity in rows[2]["identities"]
    assert all(refused["nik"] not in str(r) for r in rows)


@pytest.mark.slow
def test_a_link_run_goes_on_while_matches_are_answered_and_shows_at_once(
    sampled: tuple[Path, dict[str, Any], str], tmp_path: Path
) -> None:
    """An admin starts a link of new applications through the service; every match during it is answered
    (from the snapshot before it), and once the run succeeded the new applications are matched."""
    import time

    import pandas as pd

    path = sampled[0]
    api = client(path, rate_per_minute=100_000)
    batch = pd.read_parquet(SAMPLE).iloc[3000:3400]
    batch.to_parquet(tmp_path / "batch.parquet")
    new = batch.dropna(subset=["nik", "birth_date"]).iloc[0]
    body = {"full_name": new["full_name"], "birth_date": str(new["birth_date"]), "nik": new["nik"], "limit": 50}
    run = {"inputs": [str(tmp_path / "batch.parquet")]}
    assert_error(call(api, "POST", "/v1/runs", run, None), 401)
    assert_error(call(api, "POST", "/v1/runs", run, TOKENS[Role.OFFICER]), 403)
    missing = call(api, "POST", "/v1/runs", {"inputs": [str(tmp_path / "none.parquet")]}, TOKENS[Role.ADMIN])
    assert "no such file" in assert_error(missing, 400)["message"]
    started = call(api, "POST", "/v1/runs", run, TOKENS[Role.ADMIN])
    assert started.status_code == 202, started.text
    job = started.json()["job_id"]
    during = []
    deadline = time.monotonic() + 600
    while (state := call(api, "GET", f"/v1/runs/{job}", None, TOKENS[Role.ADMIN]).json())["state"] in (
        "queued", "running"
    ):
        answer = call(api, "POST", "/v1/match", body, TOKENS[Role.OFFICER])
        assert answer.status_code == 200, answer.text
        during.append({c["record_id"] for c in answer.json()["candidates"]})
        assert time.monotonic() < deadline
    assert state["state"] == "succeeded" and state["run_id"] and state["finished_at"], state
    assert during, "the run ended before a match was sent"
    # the old snapshot until the run committed and the new one was swapped in (the job says succeeded just
    # after): never the new record and then not again
    seen = [new["record_id"] in found for found in during]
    assert not seen[0] and seen == sorted(seen), seen
    after = call(api, "POST", "/v1/match", body, TOKENS[Role.OFFICER]).json()["candidates"]
    assert after[0]["record_id"] == new["record_id"] and after[0]["level"] == "linked"
    assert_error(call(api, "GET", "/v1/runs/job-unknown", None, TOKENS[Role.ADMIN]), 404)


# --- the analysts' samples, labels and estimates (issue 14 §5): the same matrix on a store with a labelled sample
LABEL_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str, str]] = [
    # (method, path, body, action, the route's pattern in the audit)
    ("GET", "/v1/samples", None, "read_labels", "/v1/samples"),
    ("GET", "/v1/samples/S-page/pairs?unlabelled=1&limit=5", None, "read_labels", "/v1/samples/{sample_id}/pairs"),
    ("POST", "/v1/labels", {"record_id_l": "B1", "record_id_r": "B3", "label": "match"}, "write_labels",
     "/v1/labels"),
    ("GET", "/v1/estimates?threshold=0.95", None, "read_evaluations", "/v1/estimates"),
    ("GET", "/v1/models", None, "read_evaluations", "/v1/models"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "action", "route"), LABEL_ENDPOINTS,
                         ids=[e[4] for e in LABEL_ENDPOINTS])  # fmt: skip
def test_every_label_endpoint_for_every_role_and_without_a_token(
    linked: Path, tmp_path: Path, method: str, path: str, body: dict[str, Any] | None, action: str, route: str
) -> None:
    from linkage.labels import store_label
    from tests.test_labelpage import with_sample

    db = with_sample(with_users(linked, tmp_path))
    with Store(db) as store:  # labels for the estimates to count
        store_label(store, "A1", "A2", "match", "ana")
        store_label(store, "A1", "U1", "non-match", "ana")
    api = client(db)
    assert "bearer token" in assert_error(call(api, method, path, body, None), 401)["message"]
    for role in Role:
        response = call(api, method, path, body, TOKENS[role])
        if role in PERMISSIONS[action]:  # type: ignore[index]
            assert response.status_code == 200, (role, response.text)
        else:
            assert_error(response, 403)
    with Store(db) as store:
        rows = read_audit(store, limit=100)
    assert {r["endpoint"] for r in rows} == {route} and len(rows) == 1 + len(Role)
    assert {r["user"] for r in rows} == {None} | {f"user-{role.value}" for role in Role}
# --- end of the analysts' endpoints
