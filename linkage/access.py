"""Who may use the officer service and what they did: users, tokens, roles, permissions and the audit.

A user has a name, a :class:`Role` and an optional office. :func:`add_user` makes one and returns its
token, once: the store keeps only the token's SHA-256, so a lost token is replaced by revoking the user
and adding them again. :func:`authenticate` turns a request's bearer token into a :class:`User` (or
``None``), :func:`allowed` says whether that user may take an action (:data:`PERMISSIONS`), and
:func:`write_audit` appends one row per request to the ``audit`` table: who, when, which endpoint, the
query's fields as a hash (:func:`query_hash`, never the values), the identities returned and the
answer's status. Nothing in linkage updates or deletes an audit row; :func:`read_audit` reads them.

The HTTP edge calls these per request, in this order::

    user = authenticate(store, token)            # None: 401
    if not allowed(user, "query"): ...           # False: 403
    write_audit(store, user=user, endpoint="/v1/match", method="POST", fields=body,
                identities=[...], status=200, duration_ms=...)

Nothing here logs a token, a hash or a query's values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final, Literal, get_args

from linkage.errors import InputError, NotFoundError, did_you_mean
from linkage.store import Store

__all__ = [
    "ACTIONS",
    "MAX_AUDIT_ROWS",
    "MAX_OFFICE_CHARS",
    "PERMISSIONS",
    "Action",
    "Role",
    "User",
    "add_user",
    "allowed",
    "authenticate",
    "list_users",
    "query_hash",
    "read_audit",
    "revoke_user",
    "write_audit",
]


class Role(StrEnum):
    """What a user is: each role may do what the one before it may, and more (see :data:`PERMISSIONS`)."""

    OFFICER = "officer"
    ANALYST = "analyst"
    ADMIN = "admin"


Action = Literal[
    "query",
    "register",
    "view_identities",
    "view_applications",
    "view_history",
    "decide",
    "read_evaluations",
    "read_labels",
    "write_labels",
    "manage_users",
    "manage_runs",
    "read_audit",
]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
"""Every action a request can take, in the order of :data:`PERMISSIONS`."""

_EVERYONE: Final = frozenset(Role)
_ANALYSTS: Final = frozenset({Role.ANALYST, Role.ADMIN})
_ADMINS: Final = frozenset({Role.ADMIN})
PERMISSIONS: Final[Mapping[Action, frozenset[Role]]] = {
    # officers at the counter: match an applicant, look at identities and applications, record decisions
    "query": _EVERYONE,
    "register": _EVERYONE,  # a new application at the counter, linked at once
    "view_identities": _EVERYONE,
    "view_applications": _EVERYONE,
    "view_history": _EVERYONE,
    "decide": _EVERYONE,
    # analysts also judge the model: evaluations and the labelled truth behind them
    "read_evaluations": _ANALYSTS,
    "read_labels": _ANALYSTS,
    "write_labels": _ANALYSTS,  # the labelling page and POST /v1/labels (issue 14)
    # admins also run the service: its users, the link runs, and the audit of everyone (themselves included)
    "manage_users": _ADMINS,
    "manage_runs": _ADMINS,
    "read_audit": _ADMINS,
}
"""Action → the roles allowed to take it."""

MAX_OFFICE_CHARS: Final = 100
"""The longest office a user is given, in characters."""
MAX_AUDIT_ROWS: Final = 10_000
"""The most audit rows one :func:`read_audit` returns."""

_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
# secrets.token_urlsafe(32): 32 random bytes in unpadded base64url, always 43 characters of this alphabet
_TOKEN_BYTES: Final = 32
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class User:
    """An authenticated user: who they are, their role and their office (``None``: not tied to one)."""

    name: str
    role: Role
    office: str | None


def add_user(store: Store, name: str, role: str, office: str | None = None) -> str:
    """Add a user and return their token: the only time it is seen, since the store keeps only its hash.

    A revoked user's name can be given again: the user comes back with the new role, office and token.

    Args:
        store: a store opened read-write.
        name: 1 to 64 letters, digits, dots, dashes or underscores.
        role: ``officer``, ``analyst`` or ``admin``.
        office: the user's office (at most :data:`MAX_OFFICE_CHARS` printable characters), or ``None``.

    Returns:
        The bearer token, 43 URL-safe characters.

    Raises:
        InputError: a malformed name or office, an unknown role, or a user of that name who is not revoked.
    """
    _check_name(name)
    checked_role = _role(role)
    if office is not None:
        _check_office(office)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    with store.transaction():
        found = store.rows("SELECT revoked_at FROM users WHERE name = ?", [name], table="users")
        if found and found[0][0] is None:
            raise InputError(
                f"user {name!r} exists already: revoke them first (`linkage users revoke {name}`) to give a new "
                "token, or choose another name"
            )
        values = [checked_role.value, office, _hash(token), datetime.now(UTC)]
        if found:  # revoked: the name comes back
            store.sql(
                """UPDATE users SET role = ?, office = ?, token_hash = ?, created_at = ?, revoked_at = NULL
                   WHERE name = ?""",
                [*values, name],
                table="users",
            )
        else:
            store.sql("INSERT INTO users VALUES (?, ?, ?, ?, ?, NULL)", [name, *values], table="users")
    return token


def revoke_user(store: Store, name: str) -> datetime:
    """Revoke a user: their token is refused from now on. Returns when.

    Raises:
        NotFoundError: no user of that name.
        InputError: the user was revoked already.
    """
    with store.transaction():
        found = store.rows("SELECT revoked_at FROM users WHERE name = ?", [name], table="users")
        if not found:
            known = [n for (n,) in store.rows("SELECT name FROM users ORDER BY name", table="users")]
            raise NotFoundError(f"no user {name!r}{did_you_mean(name, known)}: `linkage users list` shows them")
        if found[0][0] is not None:
            raise InputError(f"user {name!r} was revoked already, at {_iso(found[0][0])}")
        now = datetime.now(UTC)
        store.sql("UPDATE users SET revoked_at = ? WHERE name = ?", [now, name], table="users")
    return now


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user, by name: ``name, role, office, created_at, revoked_at, active`` (never the token's hash)."""
    rows = store.rows("SELECT name, role, office, created_at, revoked_at FROM users ORDER BY name", table="users")
    return [
        {
            "name": name,
            "role": role,
            "office": office,
            "created_at": _iso(created),
            "revoked_at": _iso(revoked),
            "active": revoked is None,
        }
        for name, role, office, created, revoked in rows
    ]


def authenticate(store: Store, token: object) -> User | None:
    """The active user a bearer token belongs to; ``None`` for an unknown, revoked or malformed token.

    The row is found by the token's hash (an index lookup), then the hashes are compared again with
    :func:`hmac.compare_digest`, whose time does not depend on where they differ: nothing about a stored
    hash leaks through how long a refusal takes.
    """
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None  # not one we could have issued: refused before any lookup
    digest = _hash(token)
    found = store.rows(
        "SELECT name, role, office, token_hash FROM users WHERE token_hash = ? AND revoked_at IS NULL",
        [digest],
        table="users",
    )
    if not found:
        return None
    name, role, office, stored = found[0]
    if not hmac.compare_digest(stored.encode("ascii"), digest.encode("ascii")):
        return None
    return User(name=name, role=Role(role), office=office)


def allowed(user: User | None, action: Action) -> bool:
    """Whether ``user`` may take ``action`` (no user: nothing).

    Raises:
        ValueError: an action :data:`PERMISSIONS` does not name (a bug in the caller: it must not pass as "no").

    >>> officer = User("ani", Role.OFFICER, "Metro")
    >>> allowed(officer, "query"), allowed(officer, "read_audit"), allowed(None, "query")
    (True, False, False)
    """
    if action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}{did_you_mean(action, PERMISSIONS)}")
    return user is not None and user.role in PERMISSIONS[action]


def query_hash(fields: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a request's fields as canonical JSON: keys sorted, fields without a value left out.

    The same query gives the same hash whatever the order of its fields, so an audit can tell that two
    requests asked the same thing, or check that a given query was asked, without holding its values.
    A hash of few, guessable values (a NIK alone) can be found again by trying candidates: the audit
    table is for admins only, like the store it lives in.

    >>> query_hash({"full_name": "Siti", "nik": None}) == query_hash({"full_name": "Siti"})
    True
    >>> query_hash({"a": 1, "b": 2}) == query_hash({"b": 2, "a": 1})
    True
    """
    present = {key: value for key, value in fields.items() if value is not None}
    canonical = json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_audit(
    store: Store,
    *,
    user: User | None,
    endpoint: str,
    method: str,
    status: int,
    duration_ms: float,
    fields: Mapping[str, Any] | None = None,
    identities: Sequence[str] = (),
) -> int:
    """Append one request to the audit; return its number. Only the fields' hash is stored, never a value.

    Args:
        store: a store opened read-write.
        user: who asked (``None``: no or a refused token, written with an empty user).
        endpoint: the route, e.g. ``/v1/match`` (the route's pattern, not a path holding a record id).
        method: the HTTP method, e.g. ``POST``.
        status: the answer's HTTP status.
        duration_ms: how long the answer took.
        fields: the query's fields (hashed by :func:`query_hash`); ``None`` when the request has none.
        identities: the identity ids the answer returned.
    """
    number: int = store.scalar(
        """INSERT INTO audit
               (requested_at, user_name, role, endpoint, method, query_hash, identities, status, duration_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING audit_no""",
        [
            datetime.now(UTC),
            None if user is None else user.name,
            None if user is None else user.role.value,
            endpoint,
            method.upper(),
            None if fields is None else query_hash(fields),
            list(identities),
            int(status),
            float(duration_ms),
        ],
        table="audit",
    )
    return number


def read_audit(
    store: Store, since: date | datetime | None = None, user: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The audit's rows, newest first: ``audit_no, at, user, role, endpoint, method, query_hash, identities,
    status, duration_ms``.

    Args:
        store: the store.
        since: only requests at or after this moment (a day: from its start, UTC).
        user: only this user's requests.
        limit: at most this many rows, 1 to :data:`MAX_AUDIT_ROWS`.

    Raises:
        InputError: a limit out of range.
    """
    if not 1 <= limit <= MAX_AUDIT_ROWS:
        raise InputError(f"limit {limit!r} is out of range: give 1 to {MAX_AUDIT_ROWS:,}")
    if since is not None and not isinstance(since, datetime):
        since = datetime.combine(since, time(), tzinfo=UTC)
    rows = store.rows(
        """SELECT audit_no, requested_at, user_name, role, endpoint, method, query_hash, identities, status,
                  duration_ms
           FROM audit
           WHERE (?::TIMESTAMPTZ IS NULL OR requested_at >= ?::TIMESTAMPTZ) AND (?::VARCHAR IS NULL OR user_name = ?)
           ORDER BY audit_no DESC LIMIT ?""",
        [since, since, user, user, limit],
        table="audit",
    )
    return [
        {
            "audit_no": number,
            "at": _iso(at),
            "user": name,
            "role": role,
            "endpoint": endpoint,
            "method": method,
            "query_hash": digest,
            "identities": list(identities or []),
            "status": status,
            "duration_ms": duration,
        }
        for number, at, name, role, endpoint, method, digest, identities, status, duration in rows
    ]


def _hash(token: str) -> str:
    # SHA-256, not a slow password hash (bcrypt, scrypt, argon2): those make guessing a weak password
    # expensive, but a token is 32 random bytes (256 bits), which no amount of guessing reaches, and a fast
    # hash lets every request find its user by one index lookup within the service's milliseconds.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = [r.value for r in Role]
        raise InputError(f"unknown role {role!r}{did_you_mean(role, names)}: give one of {', '.join(names)}") from None


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"user name {name!r} is not allowed: give 1 to 64 letters (A-Z, a-z), digits, dots, dashes or underscores"
        )


def _check_office(office: str) -> None:
    # shown in terminals and pages: one line of printable characters (as linkage.decide asks of an officer)
    if not office.strip() or len(office) > MAX_OFFICE_CHARS:
        raise InputError(f"office {office!r} must hold 1 to {MAX_OFFICE_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in office):
        raise InputError(f"office {office!r} holds a control character (a line break, tab or escape code): remove it")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")
