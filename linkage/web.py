"""The officer's web pages (issue 13 §4): server-rendered HTML from the same service, in Indonesian or English.

:func:`router` adds the pages to the app :func:`linkage.server.create_app` builds. Every page that shows or
changes data goes through :func:`linkage.server.guarded`, the API's own code: the user (here from the session
cookie), the per-user rate, the role, the audit by route pattern; only the way a refusal is shown differs (a
missing or expired session is a 303 to the login page, any other error an HTML page with the API's message).

Login takes the token :func:`linkage.access.authenticate` knows and opens a session: a random id in an HttpOnly,
``SameSite=Strict`` cookie (``Secure`` over https), kept in this process's memory with the token and a random
CSRF token. The token is checked against the store on every request, so a revoked user is out at once; the
browser never holds the token itself. Every POST from a session carries the session's CSRF token in a hidden
field and is refused (403) without it. A restart of the server ends every session.

The search page (``/search``) takes an applicant's fields in a POSTed form and shows
:func:`linkage.query.query`'s candidates: each with its probability as a number and a bar, the evidence
comparison by comparison with the applicant's and the record's values side by side, and the identity's
applications with refusals marked.

Pages are Jinja2 templates (``linkage/templates``) with autoescape on: every value is HTML-escaped unless a
template says otherwise, and none does. Fixed texts come from :data:`TEXTS`, one dict per language.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from linkage.access import User, allowed, authenticate
from linkage.cutoff import cost
from linkage.decide import KINDS, decide
from linkage.errors import InputError, NotFoundError
from linkage.history import history
from linkage.query import query
from linkage.schema import REFUSALS
from linkage.server import ApiError, Context, Service, guarded, threshold_args

__all__ = [
    "LANGUAGES", "SEARCH_FIELDS", "SEARCH_LIMIT", "SESSION_COOKIE", "SESSION_SECONDS", "TEXTS", "error_page", "router"
]  # fmt: skip

Language = Literal["id", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("id", "en")
"""The page languages, the default first (the officers' own)."""
SESSION_COOKIE: Final = "linkage_session"
LANG_COOKIE: Final = "linkage_lang"
SEARCH_FIELDS: Final = (
    "full_name", "birth_date", "nik", "mother_name", "birth_place", "sex", "phone", "address", "prior_passport_no"
)  # fmt: skip
"""The applicant's fields the search form asks for, in the order an officer reads them off the documents."""
SEARCH_LIMIT: Final = 10
"""The most candidate identities the search page shows."""
SESSION_SECONDS: Final = 8 * 3600
"""A session ends this long after login (one counter shift); the user logs in again with the token."""
MAX_FORM_BYTES: Final = 16_384  # a decision form is a few hundred bytes; refuse anything far beyond it

_DECISIONS_ID: Final = {
    "issued": "diterbitkan",
    "rejected": "ditolak",
    "postponed": "ditunda",
    "cancelled": "dibatalkan",
    "pending": "menunggu",
}
_DECISIONS_EN: Final = {d: d for d in _DECISIONS_ID}

TEXTS: Final[dict[Language, dict[str, Any]]] = {
    "id": {
        "app": "Layanan Petugas Linkage",
        "language": "Bahasa",
        "signed_in_as": "Masuk sebagai",
        "logout": "Keluar",
        "login_title": "Masuk",
        "token": "Token akses",
        "login": "Masuk",
        "login_help": "Token diberikan oleh admin (`linkage users add`). Jangan bagikan token Anda.",
        "bad_token": "Token tidak dikenal atau sudah dicabut. Periksa token Anda atau minta yang baru kepada admin.",
        "home_title": "Cari identitas atau permohonan",
        "open_label": "ID identitas (ID-…) atau ID permohonan",
        "open": "Buka",
        "search_title": "Pencarian pemohon",
        "error": "Galat",
        "back": "Kembali",
        "back_home": "Kembali ke halaman awal",
        "identity": "Identitas",
        "unlinked": "Permohonan belum ditautkan",
        "refused_marker": "DITOLAK",
        "refusals_count": "Identitas ini memiliki {n} permohonan yang ditolak.",
        "timeline": "Riwayat permohonan di semua kantor",
        "date": "Tanggal",
        "office": "Kantor",
        "record": "Permohonan",
        "decision": "Keputusan",
        "reason": "Alasan",
        "evidence": "Bukti tautan",
        "undated": "tanpa tanggal",
        "linked_to": "tertaut ke",
        "probability": "probabilitas",
        "vetoed": "diveto",
        "indicators": "Indikator risiko",
        "no_indicators": "Tidak ada indikator risiko.",
        "decisions_title": "Keputusan petugas",
        "no_decisions": "Belum ada keputusan petugas.",
        "when": "Waktu",
        "kind": "Jenis",
        "records": "Permohonan",
        "by": "Oleh",
        "decide_title": "Catat keputusan",
        "decide_legend": "Apakah dua permohonan ini orang yang sama?",
        "record_a": "Permohonan pertama",
        "record_b": "Permohonan kedua",
        "choose": "— pilih —",
        "record_other": "Atau ID permohonan lain",
        "record_other_help": "Jika diisi, ini yang dipakai sebagai permohonan kedua.",
        "required": "wajib",
        "same_person": "Orang yang sama",
        "not_same_person": "Bukan orang yang sama",
        "decided": "Keputusan {decision_id} tercatat: {kind}, {a} – {b}.",
        "applicant": "Pemohon",
        "search": "Cari",
        "warnings": "Periksa isian ini (pencarian tetap dijalankan):",
        "candidates": "Kandidat",
        "no_candidates": "Tidak ada kandidat: pemohon ini tidak cocok dengan siapa pun di data.",
        "comparison": "Perbandingan",
        "level": "Tingkat",
        "weight": "Bobot",
        "levels": {"linked": "tertaut", "review": "perlu ditinjau"},
        "thr_title": "Biaya memindahkan ambang tautan",
        "thr_help": (
            "Pasangan yang tersimpan dikelompokkan pada kedua ambang (komponen terhubung; guard dan keputusan "
            "petugas tidak diterapkan ulang, jadi pada ambang run itu sendiri angkanya bisa sedikit berbeda dari "
            "identitas di data)."
        ),
        "thr_from": "Ambang sekarang (A)",
        "thr_to": "Ambang usulan (B)",
        "thr_minutes": "Menit per tinjauan",
        "thr_show": "Hitung",
        "thr_figure": "Angka",
        "thr_at": "pada",
        "thr_change": "Perubahan",
        "thr_identities": "Identitas",
        "thr_linked": "Peringatan tertaut",
        "thr_review": "Peringatan untuk ditinjau",
        "thr_review_week": "Peringatan untuk ditinjau per minggu",
        "thr_hours_week": "Jam kerja petugas per minggu",
        "thr_moves": "Yang berubah",
        "thr_count": "Jumlah",
        "thr_merged": "Klaster yang bergabung",
        "thr_split": "Klaster yang terpecah",
        "thr_gained": "bertambah",
        "thr_lost": "berkurang",
        "thr_volume": (
            "{per_week} permohonan per minggu ({days} hari terakhir yang tersimpan), {applications} tersimpan; "
            "batas tinjauan {floor}, ambang run tautan terakhir {run}; {minutes} menit per tinjauan."
        ),
        "thr_examples": "Contoh",
        "thr_from_clusters": "{records} permohonan dari {parts} klaster",
        "thr_after": "setelah penolakan",
        "fields": {
            "full_name": "Nama lengkap",
            "birth_date": "Tanggal lahir",
            "nik": "NIK",
            "mother_name": "Nama ibu kandung",
            "birth_place": "Tempat lahir",
            "sex": "Jenis kelamin",
            "phone": "Nomor telepon",
            "address": "Alamat",
            "prior_passport_no": "Nomor paspor sebelumnya",
        },
        "sexes": [("", "— tidak diisi —"), ("L", "Laki-laki"), ("P", "Perempuan")],
        "kind_labels": {"must_link": "orang yang sama", "cannot_link": "bukan orang yang sama"},
        "decisions": _DECISIONS_ID,
        "kinds": {
            "earlier_refusal": "Penolakan sebelumnya",
            "several_offices": "Beberapa kantor dalam waktu singkat",
            "several_niks": "Lebih dari satu NIK",
            "nik_contradicts": "NIK bertentangan dengan data",
            "shared_contact": "Kontak yang dipakai identitas lain",
        },
    },
    "en": {
        "app": "Linkage Officer Service",
        "language": "Language",
        "signed_in_as": "Signed in as",
        "logout": "Log out",
        "login_title": "Log in",
        "token": "Access token",
        "login": "Log in",
        "login_help": "An admin gives you the token (`linkage users add`). Do not share your token.",
        "bad_token": "Unknown or revoked token. Check your token or ask an admin for a new one.",
        "home_title": "Open an identity or application",
        "open_label": "Identity id (ID-…) or application id",
        "open": "Open",
        "search_title": "Applicant search",
        "error": "Error",
        "back": "Back",
        "back_home": "Back to the start page",
        "identity": "Identity",
        "unlinked": "Application not linked yet",
        "refused_marker": "REFUSED",
        "refusals_count": "This identity has {n} refused application(s).",
        "timeline": "Applications across offices",
        "date": "Date",
        "office": "Office",
        "record": "Application",
        "decision": "Decision",
        "reason": "Reason",
        "evidence": "Link evidence",
        "undated": "undated",
        "linked_to": "linked to",
        "probability": "probability",
        "vetoed": "vetoed",
        "indicators": "Risk indicators",
        "no_indicators": "No risk indicators.",
        "decisions_title": "Officers' decisions",
        "no_decisions": "No officer decisions yet.",
        "when": "When",
        "kind": "Kind",
        "records": "Applications",
        "by": "By",
        "decide_title": "Record a decision",
        "decide_legend": "Are these two applications the same person?",
        "record_a": "First application",
        "record_b": "Second application",
        "choose": "— choose —",
        "record_other": "Or another application id",
        "record_other_help": "When filled in, this is used as the second application.",
        "required": "required",
        "same_person": "Same person",
        "not_same_person": "Not the same person",
        "decided": "Decision {decision_id} recorded: {kind}, {a} – {b}.",
        "applicant": "Applicant",
        "search": "Search",
        "warnings": "Check these fields (the search ran all the same):",
        "candidates": "Candidates",
        "no_candidates": "No candidates: this applicant matches no one on record.",
        "comparison": "Comparison",
        "level": "Level",
        "weight": "Weight",
        "levels": {"linked": "linked", "review": "to review"},
        "thr_title": "What moving the link threshold costs",
        "thr_help": (
            "The stored pairs clustered at both thresholds (connected components; the guard and officers' "
            "decisions are not applied again, so at the run's own threshold the figures may differ slightly from "
            "the store's identities)."
        ),
        "thr_from": "Threshold now (A)",
        "thr_to": "Threshold proposed (B)",
        "thr_minutes": "Minutes per review",
        "thr_show": "Show",
        "thr_figure": "Figure",
        "thr_at": "at",
        "thr_change": "Change",
        "thr_identities": "Identities",
        "thr_linked": "Linked alerts",
        "thr_review": "Review alerts",
        "thr_review_week": "Review alerts per week",
        "thr_hours_week": "Officer-hours per week",
        "thr_moves": "What changes",
        "thr_count": "Count",
        "thr_merged": "Clusters merged",
        "thr_split": "Clusters split",
        "thr_gained": "gained",
        "thr_lost": "lost",
        "thr_volume": (
            "{per_week} applications per week (the last {days} days held), {applications} stored; review floor "
            "{floor}, the last link run's threshold {run}; {minutes} minutes per review."
        ),
        "thr_examples": "Examples",
        "thr_from_clusters": "{records} applications from {parts} clusters",
        "thr_after": "after refusal",
        "fields": {
            "full_name": "Full name",
            "birth_date": "Birth date",
            "nik": "NIK",
            "mother_name": "Mother's name",
            "birth_place": "Birth place",
            "sex": "Sex",
            "phone": "Phone",
            "address": "Address",
            "prior_passport_no": "Previous passport number",
        },
        "sexes": [("", "— not given —"), ("L", "Male"), ("P", "Female")],
        "kind_labels": {"must_link": "same person", "cannot_link": "not the same person"},
        "decisions": _DECISIONS_EN,
        "kinds": {
            "earlier_refusal": "Earlier refusal",
            "several_offices": "Several offices within a short time",
            "several_niks": "More than one NIK",
            "nik_contradicts": "NIK contradicts the record",
            "shared_contact": "Contact shared with other identities",
        },
    },
}
"""Every fixed text of the pages, one dict per language with the same keys (a test holds them equal)."""

_TEMPLATES: Final = Environment(
    loader=PackageLoader("linkage", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class _Session:
    token: str
    csrf: str
    expires: float
    notice: str | None = None  # shown once, on the next page (the confirmation of a decision)


@dataclass
class _Sessions:
    """The open sessions of this process, by their random id."""

    clock: Callable[[], float] = time.monotonic
    _open: dict[str, _Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, token: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            for old in [k for k, s in self._open.items() if s.expires <= now]:
                del self._open[old]  # expired ones go as new ones come, so the dict stays small
            self._open[sid] = _Session(token, secrets.token_urlsafe(32), now + SESSION_SECONDS)
        return sid

    def get(self, sid: str | None) -> _Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._open.get(sid)
            if session is not None and session.expires <= self.clock():
                del self._open[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._open.pop(sid or "", None)


def language(request: Request) -> Language:
    """The page language: ``?lang=`` first, then the cookie, else Indonesian."""
    for asked in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if asked in LANGUAGES:
            return asked
    return LANGUAGES[0]


def _render(request: Request, name: str, code: int = 200, **values: Any) -> HTMLResponse:
    lang = language(request)
    values.setdefault("user", None)
    values.setdefault("csrf", "")
    values.setdefault("notice", None)
    text = _TEMPLATES.get_template(name).render(lang=lang, t=TEXTS[lang], **values)
    response = HTMLResponse(text, status_code=code)
    _remember_language(request, response)
    return response


def _remember_language(request: Request, response: Response) -> None:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="strict", httponly=True)


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The HTML error page: the API's status and message, never a trace."""
    response = _render(request, "error.html", status, status=status, message=message)
    for key, value in (headers or {}).items():
        if key.lower() != "www-authenticate":  # a page's login is its form, not HTTP auth
            response.headers[key] = value
    return response


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _quote(key: str) -> str:
    return urllib.parse.quote(key, safe="")


_TEMPLATES.filters["path_part"] = _quote  # an id in a link's path: a "/" or "?" in it stays part of the id


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last of a repeated one); a body far past a form's size is refused."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return dict(pairs)


def router(service: Service) -> APIRouter:
    """The pages, on the service's store and rate limit."""
    pages = APIRouter(include_in_schema=False)
    sessions = _Sessions()

    def session_user(service: Service, request: Request) -> User | None:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        with service.store() as store:
            return authenticate(store, session.token)

    async def page(
        request: Request, context: Context, work: Callable[[], Awaitable[Response]], user_of: Any = session_user
    ) -> Response:
        status, body, headers = await guarded(service, request, context, work, user_of)
        if status == 200:
            assert isinstance(body, Response)
            return body
        if status == 401 and context.route != "/login":
            return _see("/")
        return error_page(request, status, str(body), headers)

    def session_of(request: Request) -> _Session:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:  # guarded() authenticated this session a moment ago; it expired since
            raise ApiError(401, "the session has ended: log in again")
        return session

    def checked_csrf(request: Request, form: dict[str, str]) -> _Session:
        session = session_of(request)
        if not hmac.compare_digest(form.get("csrf", "").encode(), session.csrf.encode()):
            raise ApiError(403, "the form is missing its security token or it is out of date: reload the page")
        return session

    def shown(request: Request, name: str, context: Context, **values: Any) -> HTMLResponse:
        session = session_of(request)
        notice, session.notice = session.notice, None
        return _render(request, name, user=context.user, csrf=session.csrf, notice=notice, **values)

    @pages.get("/", response_class=HTMLResponse)
    async def start(request: Request) -> Response:
        # The start page: the login form, or for a live session the box to open an identity. Not audited: it
        # shows no data (opening one is, under /open).
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            context = Context("view_identities", "/")

            async def work() -> Response:
                return shown(request, "home.html", context, analyst=allowed(context.user, "read_evaluations"))

            return await page(request, context, work)
        return _render(request, "login.html")

    @pages.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        context = Context("view_identities", "/login")  # the token is never put in the audit's fields

        def form_user(service: Service, request: Request) -> User | None:
            with service.store() as store:
                return authenticate(store, form.get("token", "").strip())

        async def work() -> Response:
            sid = sessions.open(form.get("token", "").strip())
            response = _see("/")
            response.set_cookie(
                SESSION_COOKIE, sid, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                secure=request.url.scheme == "https", path="/",
            )  # fmt: skip
            return response

        status, body, headers = await guarded(service, request, context, work, form_user)
        if status == 200:
            assert isinstance(body, Response)
            return body
        if status == 401:
            return _render(request, "login.html", 401, message=TEXTS[language(request)]["bad_token"])
        return error_page(request, status, str(body), headers)

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        context = Context("view_identities", "/logout")

        async def work() -> Response:
            checked_csrf(request, form)
            sessions.close(request.cookies.get(SESSION_COOKIE))
            response = _see("/")
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
            return response

        return await page(request, context, work)

    @pages.get("/open")
    async def open_key(request: Request, key: str = "") -> Response:
        context = Context("view_applications", "/open")

        async def work() -> Response:
            if not key.strip():
                raise InputError("give an identity id (ID-…) or an application's record id")
            with service.store() as store:
                found = history(store, key.strip())
            context.identities = [found["identity_id"]] if found["identity_id"] else []
            return _see(f"/identities/{_quote(found['identity_id'] or found['key'])}")

        return await page(request, context, work)

    @pages.get("/applications/{record_id}")
    async def application(record_id: str, request: Request) -> Response:
        context = Context("view_applications", "/applications/{record_id}")

        async def work() -> Response:
            with service.store() as store:
                found = history(store, record_id)
            if found["found_as"] == "identity":
                raise NotFoundError(f"{record_id!r} is an identity id: open /identities/{record_id}")
            context.identities = [found["identity_id"]] if found["identity_id"] else []
            return _see(f"/identities/{_quote(found['identity_id'] or record_id)}")

        return await page(request, context, work)

    @pages.get("/identities/{identity_id}", response_class=HTMLResponse)
    async def identity(identity_id: str, request: Request) -> Response:
        context = Context("view_identities", "/identities/{identity_id}")

        async def work() -> Response:
            with service.store() as store:
                found = history(store, identity_id)
            if found["found_as"] == "record":
                return _see(f"/identities/{_quote(found['identity_id'])}")
            context.identities = [found["identity_id"]] if found["identity_id"] else []
            return shown(request, "identity.html", context, **_identity_view(found))

        return await page(request, context, work)

    @pages.get("/search", response_class=HTMLResponse)
    async def search_form(request: Request) -> Response:
        context = Context("query", "/search")

        async def work() -> Response:
            return shown(request, "search.html", context, roles=SEARCH_FIELDS, given={}, found=None)

        return await page(request, context, work)

    @pages.post("/search", response_class=HTMLResponse)
    async def search(request: Request) -> Response:
        # A POST, not a GET with the fields in the address: an address lands in access logs and browser
        # history, and an applicant's name and NIK must not.
        form = await _form(request)
        given = {role: form[role].strip() for role in SEARCH_FIELDS if form.get(role, "").strip()}
        context = Context("query", "/search", fields=given)

        async def work() -> Response:
            checked_csrf(request, form)
            if "full_name" not in given:
                raise InputError("the applicant's full name is needed: fill in the name field")
            with service.store() as store:
                found = await run_in_threadpool(
                    query, store, given, limit=SEARCH_LIMIT, dataset=service.config.dataset, scorer=service.scorer
                )
            context.identities = [c["identity_id"] for c in found["candidates"] if c["identity_id"]]
            for candidate in found["candidates"]:
                for entry in candidate["evidence"]:
                    entry["shown"] = tuple(_side(entry["comparison"], entry[side]) for side in ("query", "record"))
            return shown(request, "search.html", context, roles=SEARCH_FIELDS, given=given, found=found)

        return await page(request, context, work)

    @pages.get("/threshold", response_class=HTMLResponse)
    async def threshold(request: Request) -> Response:
        # For analysts: what moving the link threshold costs (linkage.cutoff); the form alone until A and B are given
        asked = {k: v for k, v in request.query_params.items() if k in ("from", "to", "minutes_per_review")}
        context = Context("read_evaluations", "/threshold", fields=asked or None)

        async def work() -> Response:
            found = None
            if asked.get("from") or asked.get("to"):
                from_, to, minutes = threshold_args(asked)
                with service.store() as store:
                    found = await run_in_threadpool(cost, store, from_=from_, to=to, minutes_per_review=minutes)
            return shown(request, "threshold.html", context, asked=asked, found=found)

        return await page(request, context, work)

    @pages.post("/decisions")
    async def post_decision(request: Request) -> Response:
        form = await _form(request)
        a, b = form.get("record_id_a", "").strip(), (form.get("record_id_other", "") or form.get("record_id_b", ""))
        kind, reason, back = form.get("kind", ""), form.get("reason", ""), form.get("back", "")
        fields = {"kind": kind, "record_id_a": a, "record_id_b": b.strip(), "reason": reason}
        context = Context("decide", "/decisions", fields=fields)

        async def work() -> Response:
            session = checked_csrf(request, form)
            if kind not in KINDS:
                raise InputError(f"unknown decision kind {kind!r}: use {' or '.join(KINDS)}")
            if not a or not b.strip():
                raise InputError("choose two applications: the first, and the second or another application id")
            assert context.user is not None  # guarded() checked it
            made = await run_in_threadpool(
                service.writing, decide, service.db, kind, a, b.strip(), by=context.user.name, reason=reason,
                memory_limit=service.config.store.memory_limit,
            )  # fmt: skip
            context.identities = sorted({i for i in (made.identity_a, made.identity_b) if i})
            t = TEXTS[language(request)]
            session.notice = t["decided"].format(
                decision_id=made.decision_id, kind=t["kind_labels"][kind], a=made.record_id_a, b=made.record_id_b
            )
            return _see(f"/identities/{_quote(back or made.identity_a or a)}#decided")

        return await page(request, context, work)

    # --- the analysts' labelling and estimates pages (issue 14): their own module, on this router's sessions
    from linkage import label_web

    label_web.add_pages(pages, service, page, shown, checked_csrf)
    # --- end of the labelling pages

    return pages


def _identity_view(found: dict[str, Any]) -> dict[str, Any]:
    """What the identity page shows: the history, refusals flagged, the decisions once each, newest first."""
    applications = [{**a, "refused": a["decision"] in REFUSALS} for a in found["applications"]]
    decisions: dict[str, dict[str, Any]] = {}
    for a in found["applications"]:
        for d in a["decisions"]:
            decisions.setdefault(d["decision_id"], {**d, "record_id": a["record_id"]})
    ordered = sorted(decisions.values(), key=lambda d: str(d["decided_at"]), reverse=True)
    return {
        "found": found,
        "applications": applications,
        "refusals": sum(a["refused"] for a in applications),
        "decisions": ordered,
    }


def _side(comparison: str, values: dict[str, Any]) -> str:
    """One side of a comparison as an officer reads it: the values themselves, not the keys derived from them.

    A comparison reads several derived columns (keys, tokens, prefixes, parts). Shown: the column named after
    the comparison, else the ``*_canonical`` or ``*_digits`` one, else every plain value that is not a part of
    another (``address_village`` is part of ``address``) nor a NIK's part read for a cross-check.

    >>> _side("contact", {"phone": "+62812", "address": "JALAN X", "address_rt": "3", "nik_region": "1805"})
    '+62812 · JALAN X'
    """
    if values.get(comparison) is not None:
        return str(values[comparison])
    for suffix in ("_canonical", "_digits"):
        for column, value in values.items():
            if column.endswith(suffix) and value is not None:
                return str(value)
    shown = [
        str(value)
        for column, value in values.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        and not any(column.startswith(other + "_") for other in values)
        and (comparison == "nik" or not column.startswith("nik"))
    ]  # fmt: skip
    return " · ".join(shown) or "–"
