"""The officer's pages end to end in a real browser: Playwright for Python driving Debian's chromium against the
real server (uvicorn on a free loopback port) on a small linked store. Screenshots go to ``test-artefacts/``.

Chromium comes from ``apt-get install -y chromium`` (the README's test command runs it): Playwright's own
browser download is not reachable here. Without it this test is skipped, saying so; it never passes silently.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from linkage.access import add_user
from linkage.server import create_app
from linkage.store import Store
from tests.test_trace import AT, A, linked_store
from tests.test_web import modelled_store

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTEFACTS = Path(__file__).resolve().parents[1] / "test-artefacts" / "web"
SHOTS = ("01-login-refused.png", "02-identity.png", "03-decided.png", "04-english.png", "05-logged-out.png")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: apt-get install -y chromium (the README's test command)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real server on a linked store with one officer: (its address, the officer's token)."""
    yield from serve(linked_store(tmp_path, AT))


@pytest.fixture
def modelled(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    return modelled_store(tmp_path)


@pytest.fixture
def served_modelled(modelled: tuple[Path, dict[str, str], str]) -> Iterator[tuple[str, str]]:
    """The real server on sample applications linked with a model, as the search page needs."""
    yield from serve(modelled[0])


def serve(db: Path) -> Iterator[tuple[str, str]]:
    with Store(db) as store:
        token = add_user(store, "rina", "officer", office="Metro")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_officer_logs_in_sees_a_refusal_decides_switches_language_and_logs_out(served: tuple[str, str]) -> None:
    base, token = served
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for name in SHOTS:  # a screenshot from an earlier run must not stand in for this one's
        (ARTEFACTS / name).unlink(missing_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = chromium.new_page()
            page.goto(f"{base}/identities/{A}")
            assert page.url == f"{base}/"  # no session: the login form
            shot = page.screenshot

            # A wrong token: the form again, with a message
            page.get_by_label("Token akses").fill("not-a-token-we-issued")
            page.keyboard.press("Enter")
            page.get_by_role("alert").wait_for()
            assert "Token tidak dikenal" in page.get_by_role("alert").inner_text()
            shot(path=str(ARTEFACTS / "01-login-refused.png"), full_page=True)

            # Log in by keyboard only: the token field has focus, Enter submits
            page.get_by_label("Token akses").fill(token)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/")
            page.get_by_label("ID identitas (ID-…) atau ID permohonan").fill("A2")
            page.get_by_role("button", name="Buka").click()
            page.wait_for_url(f"{base}/identities/{A}")
            shot(path=str(ARTEFACTS / "02-identity.png"), full_page=True)

            # The refusal is marked in words, on its row (A1, at Kalianda), not on the issued one
            refused = page.locator("tr.refusal")
            assert refused.count() == 1
            assert "DITOLAK" in refused.inner_text() and "Kalianda" in refused.inner_text()
            assert "DITOLAK" not in page.locator("#rec-A2").inner_text()

            # Keyboard: Tab from the reason reaches the two buttons in order, with a visible focus ring
            page.get_by_label("Alasan (wajib)").focus()
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.textContent")
            assert focused == "Orang yang sama"
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none"

            # "Not the same person" between A1 and A2 needs a reason: the browser will not send it empty
            page.get_by_role("button", name="Bukan orang yang sama").click()
            assert page.url == f"{base}/identities/{A}"  # still here: the required reason stopped it
            page.get_by_label("Alasan (wajib)").fill("foto berbeda, <b>ibu</b> berbeda")
            page.get_by_role("button", name="Bukan orang yang sama").click()
            page.get_by_role("status").wait_for()
            assert "tercatat" in page.get_by_role("status").inner_text()
            decided = page.locator("#decided + table")
            assert "foto berbeda, <b>ibu</b> berbeda" in decided.inner_text()  # shown as text, not markup
            assert "rina" in decided.inner_text() and "bukan orang yang sama" in decided.inner_text()
            shot(path=str(ARTEFACTS / "03-decided.png"), full_page=True)

            # English, kept across pages
            page.get_by_role("link", name="English").click()
            assert "REFUSED" in page.locator("tr.refusal").inner_text()
            page.goto(f"{base}/identities/{A}")
            assert page.get_by_role("heading", name="Risk indicators").is_visible()
            shot(path=str(ARTEFACTS / "04-english.png"), full_page=True)

            # Log out: the pages are closed again
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(f"{base}/")
            assert page.get_by_label("Access token").is_visible()
            page.goto(f"{base}/identities/{A}")
            assert page.url == f"{base}/"
            shot(path=str(ARTEFACTS / "05-logged-out.png"), full_page=True)
        finally:
            chromium.close()
    assert all((ARTEFACTS / name).stat().st_size > 0 for name in SHOTS)


@pytest.mark.slow  # linking the sample store for a model takes about 10 s of the test's time
def test_an_officer_searches_an_applicant_and_opens_the_refused_candidate(
    served_modelled: tuple[str, str], modelled: tuple[Path, dict[str, str], str]
) -> None:
    base, token = served_modelled
    _, fields, record_id = modelled
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = chromium.new_page()
            page.goto(f"{base}/?lang=en")
            page.get_by_label("Access token").fill(token)
            page.keyboard.press("Enter")
            page.get_by_role("link", name="Applicant search").click()
            page.get_by_label("Full name (required)").fill(fields["full_name"])
            page.get_by_label("NIK").fill(fields["nik"])
            page.get_by_label("Birth date").fill(fields["birth_date"])
            page.get_by_role("button", name="Search").click()
            first = page.locator("section.candidate").first
            first.wait_for()
            assert "REFUSED" in first.inner_text() and "1.000" in first.inner_text()
            assert first.locator(".bar span").bounding_box()["width"] > 100  # type: ignore[index]
            nik_row = first.locator("tr", has_text="nik").first.inner_text()
            assert nik_row.count(fields["nik"]) == 2  # the applicant's value beside the record's
            page.screenshot(path=str(ARTEFACTS / "06-search.png"), full_page=True)
            first.locator("h3 a").click()
            page.locator(f"#rec-{record_id}").wait_for()
            assert "REFUSED" in page.locator(f"#rec-{record_id}").inner_text()
            page.screenshot(path=str(ARTEFACTS / "07-search-identity.png"), full_page=True)
        finally:
            chromium.close()


# --- the analysts' labelling page (issue 14): keyboard labelling in a real browser
@pytest.fixture
def served_labels(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real server on a linked store with a sample to label and one analyst: (its address, their token)."""
    from tests.test_labelpage import with_sample

    db = with_sample(linked_store(tmp_path, AT))
    with Store(db) as store:
        token = add_user(store, "ana", "analyst")
    for base, _ in serve(db):
        yield base, token


def test_an_analyst_labels_a_pair_by_keyboard_and_sees_the_next_one(served_labels: tuple[str, str]) -> None:
    base, token = served_labels
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shots = [ARTEFACTS / name for name in ("08-labels.png", "09-labelled.png")]
    for shot in shots:
        shot.unlink(missing_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = chromium.new_page()
            page.goto(f"{base}/?lang=en")
            page.get_by_label("Access token").fill(token)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/labels")
            pair = page.locator("#pair")
            first = (pair.get_attribute("data-record-l"), pair.get_attribute("data-record-r"))
            assert page.locator("#progress").get_attribute("data-done") == "0"
            assert page.locator("table.waterfall").count() == 0  # blind before the label
            assert page.locator("tr.differs .diff-mark").count() >= 1  # every pair here differs in office or name
            page.screenshot(path=str(shots[0]), full_page=True)

            page.keyboard.press("m")  # the match button, pressed by its key
            page.locator("#previous").wait_for()
            assert page.locator("#progress").get_attribute("data-done") == "1"
            pair = page.locator("#pair")
            assert (pair.get_attribute("data-record-l"), pair.get_attribute("data-record-r")) != first
            previous = page.locator("#previous")
            assert "Match" in previous.locator(".given-label").inner_text()
            assert previous.locator(".model-probability").is_visible()  # the model's view, after the label
            page.screenshot(path=str(shots[1]), full_page=True)

            # typing an m in the note writes an m; it labels nothing
            page.get_by_label("Note (optional)").type("mmm")
            assert page.locator("#progress").get_attribute("data-done") == "1"
            assert page.get_by_label("Note (optional)").input_value() == "mmm"
        finally:
            chromium.close()
    assert all(shot.stat().st_size > 0 for shot in shots)
# --- end of the labelling page
