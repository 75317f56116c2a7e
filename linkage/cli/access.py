"""``linkage users add|revoke|list`` and ``linkage audit``: who may use the officer service, and what they did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from linkage.cli import ConfigOption, DbOption, JsonOption, _config, _print_json, _shown, console, err
from linkage.cli.trace import _read_store, _since
from linkage.store import Store

users_app: typer.Typer = typer.Typer(
    name="users",
    help="Add, revoke and list the users of the officer service (their tokens are stored hashed).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

NameArgument = Annotated[
    str, typer.Argument(help="The user's name: 1 to 64 letters, digits, dots, dashes or underscores.")
]


def _write_store(config: Path | None, db: Path | None) -> Store:
    settings = _config(config)
    return Store(db or settings.store.path, memory_limit=settings.store.memory_limit)


@users_app.command("add")
def add_command(
    name: NameArgument,
    role: Annotated[str, typer.Option("--role", metavar="officer|analyst|admin", help="What the user may do.")],
    office: Annotated[str | None, typer.Option("--office", help="The user's office (default: none).")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user and print their token, once: the store keeps only its hash.

    Officers query, view identities, applications and histories, and decide; analysts also read evaluations
    and labels; admins also manage users and runs and read the audit. A lost token cannot be shown again:
    revoke the user and add them again for a new one.
    """
    from linkage.access import add_user

    with _write_store(config, db) as store:
        token = add_user(store, name, role, office)
    if as_json:
        _print_json({"user": name, "role": role, "office": office, "token": token})
        return
    where = f" at {_shown(office)}" if office else ""
    err.print(f"user {_shown(name)} added as {_shown(role)}{where}; the token below is shown this once:")
    console.print(token, highlight=False, soft_wrap=True)  # alone on stdout, for a script to take


@users_app.command("revoke")
def revoke_command(name: NameArgument, config: ConfigOption = None, db: DbOption = None) -> None:
    """Revoke a user: their token is refused from now on (their audit rows stay)."""
    from linkage.access import revoke_user

    with _write_store(config, db) as store:
        when = revoke_user(store, name)
    console.print(f"user {_shown(name)} revoked at {_shown(when.isoformat(timespec='seconds'))}", highlight=False)


@users_app.command("list")
def list_command(config: ConfigOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the users: name, role, office, when added and when revoked (never a token or its hash)."""
    from linkage.access import list_users

    with _read_store(config, db) as store:
        users = list_users(store)
    if as_json:
        _print_json(users)
        return
    table = Table(title=f"{len(users):,} users")
    for column in ("name", "role", "office", "added", "revoked"):
        table.add_column(column, overflow="fold")
    for user in users:
        cells = (user["name"], user["role"], user["office"], user["created_at"], user["revoked_at"])
        table.add_row(*(_shown("–" if c is None else c) for c in cells))
    console.print(table)


def audit_command(
    config: ConfigOption = None,
    db: DbOption = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="YYYY-MM-DD", help="Only requests on or after this day (UTC).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's requests.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows, newest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show the audit of the officer service, newest first: every request with who, when and what came back.

    A request's fields are shown as their hash (the same query gives the same hash), never their values.
    """
    from linkage.access import read_audit

    with _read_store(config, db) as store:
        rows = read_audit(store, _since(since), user, limit)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"Audit: {len(rows):,} requests, newest first")
    for column in ("#", "at", "user", "role", "method", "endpoint", "status", "ms", "query hash", "identities"):
        table.add_column(column, overflow="fold", justify="right" if column in ("#", "status", "ms") else "left")
    for row in rows:
        ms = "–" if row["duration_ms"] is None else f"{row['duration_ms']:.1f}"
        digest = "–" if row["query_hash"] is None else row["query_hash"][:16]
        cells = (row["audit_no"], row["at"], row["user"], row["role"], row["method"], row["endpoint"],
                 row["status"], ms, digest, " ".join(row["identities"]) or "–")  # fmt: skip
        table.add_row(*(_shown("–" if c is None else str(c)) for c in cells))
    console.print(table)
