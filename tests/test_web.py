"""The officer's pages (linkage/web.py) over HTTP: login, the session cookie, redirects, escaping, CSRF, roles,
the audit and the two languages, through FastAPI's test client on a real store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from linkage.access import Role, read_audit, revoke_user
from linkage.server import create_app
from linkage.store import Store
from linkage.web import TEXTS
from tests.test_server import TOKENS, with_users
from tests.test_trace import AT, A, B, linked_store


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return linked_store(tmp_path_factory.mktemp("web"), AT)


@pytest.fixture
def db(linked: Path, tmp_path: Path) -> Path:
    """A copy of the linked store with one user of each role (tokens in ``TOKENS``)."""
    return with_users(linked, tmp_path)


def browser(db: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(db, **kwargs), raise_server_exceptions=False, follow_redirects=False)


def logged_in(db: Path, role: Role = Role.OFFICER, **kwargs: Any) -> TestClient:
    page = browser(db, **kwargs)
    response = page.post("/login", data={"token": TOKENS[role]})
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return page


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def made(db: Path) -> list[tuple[Any, ...]]:
    """The decisions the pages made (the linked store holds some of its own, by other officers)."""
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        return store.rows(
            "SELECT kind, record_id_a, record_id_b, decided_by, reason FROM decisions WHERE decided_by LIKE 'user-%' "
            "ORDER BY decided_at"
        )


def decide_form(page: TestClient, **fields: str) -> Any:
    html = page.get(f"/identities/{A}").text
    form = {"csrf": csrf_of(html), "back": A, "record_id_a": "A1", "record_id_b": "A2", "record_id_other": "",
            "kind": "must_link", "reason": "same photo"} | fields  # fmt: skip
    return page.post("/decisions", data=form)


def test_the_start_page_is_a_login_form_with_a_labelled_token_field(db: Path) -> None:
    html = browser(db).get("/").text
    assert '<label for="token">' in html and 'id="token"' in html and 'action="/login"' in html
    assert TEXTS["id"]["login_title"] in html and 'lang="id"' in html  # Indonesian unless asked otherwise


def test_a_good_token_opens_a_session_in_a_strict_httponly_cookie(db: Path) -> None:
    response = browser(db).post("/login", data={"token": TOKENS[Role.OFFICER]})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("linkage_session=") and TOKENS[Role.OFFICER] not in cookie  # a session id, not the token
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back


def test_over_https_the_cookie_is_secure(db: Path) -> None:
    page = TestClient(create_app(db), base_url="https://testserver", follow_redirects=False)
    assert "Secure" in page.post("/login", data={"token": TOKENS[Role.OFFICER]}).headers["set-cookie"]


def test_a_wrong_token_shows_the_form_again_with_a_message_and_401(db: Path) -> None:
    response = browser(db).post("/login", data={"token": "not-a-token-we-issued"})
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert TEXTS["id"]["bad_token"] in response.text and 'id="token"' in response.text
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        row = read_audit(store)[0]
    assert (row["endpoint"], row["status"], row["user"]) == ("/login", 401, None)


@pytest.mark.parametrize("path", [f"/identities/{A}", "/applications/A2", "/open?key=A1"])
def test_pages_without_a_session_go_to_the_login_page(db: Path, path: str) -> None:
    page = browser(db)
    response = page.get(path)
    assert response.status_code == 303 and response.headers["location"] == "/"
    page.cookies.set("linkage_session", "made-up")
    assert page.get(path).status_code == 303


def test_a_post_without_a_session_goes_to_the_login_page_and_decides_nothing(db: Path) -> None:
    response = browser(db).post("/decisions", data={"kind": "must_link", "record_id_a": "A1", "record_id_b": "A2",
                                                    "reason": "x", "csrf": "x"})  # fmt: skip
    assert response.status_code == 303 and made(db) == []


def test_the_identity_page_shows_the_timeline_with_refusals_marked(db: Path) -> None:
    html = logged_in(db).get(f"/identities/{A}?lang=en").text
    assert html.index('id="rec-A1"') < html.index('id="rec-A2"')  # in time order
    refused = html[html.index('id="rec-A1"') : html.index('id="rec-A2"')]
    assert 'class="refusal"' in refused and "REFUSED" in refused  # a marker in words, not colour alone
    assert "Kalianda" in refused and "2024-01-10" in refused and "tujuan tidak jelas" in refused
    assert "REFUSED" not in html[html.index('id="rec-A2"') : html.index('id="risks"')]
    assert "Earlier refusal" in html and 'href="#rec-A1"' in html  # the indicator and its evidence
    assert "name: " in html  # the comparisons that linked A2 to A1


def test_a_record_id_opens_its_identity(db: Path) -> None:
    page = logged_in(db)
    assert page.get("/applications/A2").headers["location"] == f"/identities/{A}"
    assert page.get("/open?key=B3").headers["location"] == f"/identities/{B}"
    assert page.get(f"/open?key={A}").headers["location"] == f"/identities/{A}"


def test_a_decision_is_recorded_under_the_session_s_user_and_confirmed(db: Path) -> None:
    page = logged_in(db)
    response = decide_form(page, kind="cannot_link", reason="photos differ")
    assert response.status_code == 303 and response.headers["location"] == f"/identities/{A}#decided"
    assert made(db) == [("cannot_link", "A1", "A2", "user-officer", "photos differ")]
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        row = read_audit(store)[0]
    assert (row["endpoint"], row["status"], row["identities"]) == ("/decisions", 200, [A])
    html = page.get(f"/identities/{A}").text
    assert 'role="status"' in html and "bukan orang yang sama" in html and "photos differ" in html
    assert 'role="status"' not in page.get(f"/identities/{A}").text  # the confirmation is shown once


def test_an_unlinked_record_has_its_own_page(db: Path) -> None:
    page = logged_in(db)
    assert page.get("/open?key=U1").headers["location"] == "/identities/U1"
    html = page.get("/identities/U1").text
    assert TEXTS["id"]["unlinked"] in html and 'id="rec-U1"' in html


def test_a_typed_record_id_is_the_second_application(db: Path) -> None:
    page = logged_in(db)
    assert decide_form(page, record_id_other="B1", reason="same passport photo").status_code == 303
    assert [(a, b) for _, a, b, *_ in made(db)] == [("A1", "B1")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"reason": ""}, "reason"), ({"record_id_other": "ZZ9"}, "ZZ9"), ({"kind": "maybe"}, "must_link")],
)
def test_a_bad_decision_is_an_html_page_with_the_api_s_message(db: Path, fields: dict[str, str], message: str) -> None:
    response = decide_form(logged_in(db), **fields)
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert message in response.text and "Traceback" not in response.text


def test_a_post_without_the_csrf_token_is_refused(db: Path) -> None:
    page = logged_in(db)
    assert decide_form(page, csrf="").status_code == 403
    assert decide_form(page, csrf="forged-elsewhere").status_code == 403
    other = logged_in(db)  # another login has another token: one session's token is no good in another's
    assert decide_form(page, csrf=csrf_of(other.get(f"/identities/{A}").text)).status_code == 403
    assert page.post("/logout", data={}).status_code == 403
    assert made(db) == []
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        assert [r["status"] for r in read_audit(store) if r["endpoint"] == "/decisions"] == [403, 403, 403]


def test_values_are_escaped_so_markup_shows_as_text(db: Path) -> None:
    page = logged_in(db)
    attack = "<script>alert('Siti')</script><b>bold</b>"
    assert decide_form(page, reason=attack).status_code == 303
    html = page.get(f"/identities/{A}").text
    assert "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#39;Siti&#39;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    missing = page.get("/identities/%3Cscript%3Ex")
    assert missing.status_code == 404 and "<script>x" not in missing.text and "&lt;script&gt;x" in missing.text


def test_every_role_may_view_and_decide_and_a_revoked_user_is_out_at_once(db: Path) -> None:
    for role in Role:  # officers view and decide (access.PERMISSIONS); the other roles may do what they may
        page = logged_in(db, role)
        assert page.get(f"/identities/{A}").status_code == 200
        assert decide_form(page, reason=f"checked by {role.value}").status_code == 303
    page = logged_in(db)
    with Store(db) as store:
        revoke_user(store, "user-officer")
    assert page.get(f"/identities/{A}").status_code == 303  # the session's token is checked every time
    assert browser(db).post("/login", data={"token": TOKENS[Role.OFFICER]}).status_code == 401


def test_a_role_without_the_right_gets_a_403_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No role lacks a page's right today (every role may view and decide); take it from officers to see the rule.
    from linkage import access

    page = logged_in(db)
    rules = dict(access.PERMISSIONS) | {"decide": frozenset({Role.ADMIN})}
    monkeypatch.setattr(access, "PERMISSIONS", rules)
    response = decide_form(page)
    assert response.status_code == 403 and "may not decide" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_pages_share_the_api_s_rate_limit(db: Path) -> None:
    page = logged_in(db, rate_per_minute=2)  # the login took one
    assert page.get(f"/identities/{A}").status_code == 200
    response = page.get(f"/identities/{A}")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert "try again" in response.text and response.headers["content-type"].startswith("text/html")


def test_pages_are_audited_by_their_route_pattern(db: Path) -> None:
    page = logged_in(db)
    page.get(f"/identities/{A}")
    page.get("/applications/A2")
    with Store(db) as store:  # the service holds the store: a reader in its process shares it
        rows = read_audit(store)
    assert [r["endpoint"] for r in rows] == ["/applications/{record_id}", "/identities/{identity_id}", "/login"]


def test_logout_ends_the_session(db: Path) -> None:
    page = logged_in(db)
    csrf = csrf_of(page.get(f"/identities/{A}").text)
    response = page.post("/logout", data={"csrf": csrf})
    assert response.status_code == 303 and 'linkage_session=""' in response.headers["set-cookie"]
    page.cookies.clear()
    assert page.get(f"/identities/{A}").status_code == 303


def test_the_language_is_chosen_by_query_and_kept_in_a_cookie(db: Path) -> None:
    page = logged_in(db)
    english = page.get(f"/identities/{A}?lang=en")
    assert "REFUSED" in english.text and 'lang="en"' in english.text
    assert "linkage_lang=en" in english.headers["set-cookie"]
    assert "REFUSED" in page.get(f"/identities/{A}").text  # the cookie keeps it
    assert "DITOLAK" in page.get(f"/identities/{A}?lang=id").text
    assert "DITOLAK" in page.get(f"/identities/{A}?lang=xx").text  # an unknown one: the cookie's, Indonesian


def test_both_languages_have_every_text() -> None:
    def keys(texts: dict[str, Any]) -> set[str]:
        return {f"{k}.{sub}" for k, v in texts.items() for sub in (v if isinstance(v, dict) else [""])}

    assert keys(TEXTS["id"]) == keys(TEXTS["en"])


def test_every_input_has_a_label(db: Path) -> None:
    html = logged_in(db).get(f"/identities/{A}").text
    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html)
    assert ids and all(f'<label for="{i}">' in html for i in ids)
    assert not re.search(r'tabindex="[1-9]', html)  # the document's order is the tab order


def test_an_unknown_page_is_an_html_404_and_the_api_keeps_json(db: Path) -> None:
    page = logged_in(db)
    response = page.get("/nowhere")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert page.get("/v1/nowhere").json()["error"]["status"] == 404


def test_an_unexpected_error_is_a_page_without_its_trace(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(store: Store, key: str) -> Any:
        raise RuntimeError("boom near Siti Aminah 1871014508900001")

    page = logged_in(db)
    monkeypatch.setattr("linkage.web.history", broken)
    response = page.get(f"/identities/{A}")
    assert response.status_code == 500 and "internal error" in response.text
    assert "boom" not in response.text and "Siti" not in response.text and "Traceback" not in response.text


# ------------------------------------------------------------------------------------------- search

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "applications.parquet"
SEARCHED = 1000  # sample applications linked for the search page: enough for a model, a few seconds to link


@pytest.fixture(scope="module")
def modelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    return modelled_store(tmp_path_factory.mktemp("search"))


def modelled_store(folder: Path) -> tuple[Path, dict[str, str], str]:
    """A store of sample applications linked with the shipped spec (a stored model, as a query needs), the
    fields of a refused applicant among them, and their record id."""
    import pandas as pd
    import pyarrow.parquet as pq

    from linkage.config import load_config
    from linkage.engine import run_link
    from linkage.pipeline import ingest
    from linkage.spec import load_spec
    from linkage.web import SEARCH_FIELDS

    apps = pq.read_table(SAMPLE).to_pandas().sort_values("record_id").iloc[:SEARCHED]
    apps.to_parquet(folder / "a.parquet", index=False)
    config = load_config(None)
    db = folder / "s.duckdb"
    ingest([folder / "a.parquet"], config, db=db)
    with Store(db) as store:
        run_link(store, load_spec(None), config_hash=config.fingerprint())
    refused = apps[(apps["decision"] == "rejected") & apps["nik"].notna() & apps["birth_date"].notna()].iloc[0]
    fields = {f: str(refused[f]) for f in SEARCH_FIELDS if f in refused and not pd.isna(refused[f])}
    return db, fields, str(refused["record_id"])


@pytest.fixture
def searchable(modelled: tuple[Path, dict[str, str], str], tmp_path: Path) -> Path:
    return with_users(modelled[0], tmp_path)


def search(page: TestClient, **fields: str) -> Any:
    return page.post("/search", data={"csrf": csrf_of(page.get("/search").text), **fields})


def test_the_search_form_labels_every_field(searchable: Path) -> None:
    from linkage.web import SEARCH_FIELDS

    html = logged_in(searchable).get("/search?lang=en").text
    for role in SEARCH_FIELDS:
        assert f'<label for="f-{role}">' in html and f'id="f-{role}"' in html
    assert "Mother&#39;s name" in html and "Previous passport number" in html


def test_a_search_shows_the_candidates_with_a_bar_the_evidence_side_by_side_and_refusals(
    searchable: Path, modelled: tuple[Path, dict[str, str], str]
) -> None:
    _, fields, record_id = modelled
    page = logged_in(searchable)
    response = search(page, **fields)
    assert response.status_code == 200, response.text
    html = response.text
    first = html[html.index('id="cand-1"') : html.index("</section>")]
    assert "1.000" in first and 'class="bar"' in first and "width: 100.0%" in first  # the number and the bar
    assert f"<code>{record_id}</code>" in first and "⚠ DITOLAK" in first and "tertaut" in first
    nik = fields["nik"]
    assert first.count(f"<td>{nik}</td>") == 2  # the applicant's NIK beside the record's
    assert f'value="{fields["full_name"]}"' in html.replace("&#39;", "'")  # the form keeps what was typed
    with Store(searchable) as store:  # the service holds the store: a reader in its process shares it
        row = read_audit(store)[0]
    assert row["endpoint"] == "/search" and row["status"] == 200 and row["identities"]
    assert fields["full_name"] not in str(row) and nik not in str(row)  # the audit holds a hash, not values


def test_a_search_needs_a_name_and_the_csrf_token(searchable: Path) -> None:
    page = logged_in(searchable)
    response = search(page, nik="1871096006950015")
    assert response.status_code == 400 and "full name" in response.text
    assert page.post("/search", data={"full_name": "Siti Aminah"}).status_code == 403
    assert browser(searchable).post("/search", data={"full_name": "Siti Aminah"}).status_code == 303


def test_the_search_shows_no_candidates_for_a_stranger(searchable: Path) -> None:
    response = search(logged_in(searchable), full_name="Zzyzx Qwerty", birth_date="1901-01-01")
    assert response.status_code == 200 and "Tidak ada kandidat" in response.text


def test_a_malformed_field_is_a_warning_beside_the_candidates(
    searchable: Path, modelled: tuple[Path, dict[str, str], str]
) -> None:
    fields = modelled[1] | {"nik": "18051366"}  # eight digits: a NIK has sixteen
    html = search(logged_in(searchable), **fields).text
    warned = html[html.index('role="alert"') : html.index('id="results"')]
    assert "NIK:" in warned and "18051366" not in warned  # the field and what is wrong, not the value again
    assert 'id="cand-1"' in html
