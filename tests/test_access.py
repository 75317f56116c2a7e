"""Users, tokens, roles and the audit (issue 13 §3): linkage.access, its commands and the 6 → 7 migration."""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import re
import uuid
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from linkage import access
from linkage.access import (
    ACTIONS,
    PERMISSIONS,
    Role,
    User,
    add_user,
    allowed,
    authenticate,
    list_users,
    query_hash,
    read_audit,
    revoke_user,
    write_audit,
)
from linkage.cli import app
from linkage.errors import InputError, NotFoundError
from linkage.store import Store
from linkage.tables import MIGRATIONS, SCHEMA_VERSION

runner = CliRunner()
NIK = "3201234505900001"
NAME = "Siti Nurhaliza binti Ahmad"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    Store(path, create=True).close()
    return path


@pytest.fixture
def store(db: Path):
    with Store(db) as opened:
        yield opened


def stored_bytes(db: Path) -> bytes:
    """Everything the store holds on disk: the file and its write-ahead log, if any."""
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + ".wal")) if p.exists())


# ------------------------------------------------------------------------------------------- tokens


def test_the_token_is_returned_once_and_never_stored_in_clear(db: Path) -> None:
    canary = f"office-{uuid.uuid4().hex}"  # a value that is stored in clear: proves the byte search sees strings
    with Store(db) as store:
        token = add_user(store, "ani", "officer", canary)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        rows = store.rows("SELECT * FROM users")
        listed = list_users(store)
    assert canary.encode() in stored_bytes(db)
    assert token.encode() not in stored_bytes(db)
    assert all(token not in str(value) for row in rows for value in row)
    assert hashlib.sha256(token.encode()).hexdigest() in rows[0]  # the hash is what is kept
    # the listing shows neither the token nor its hash
    assert set(listed[0]) == {"name", "role", "office", "created_at", "revoked_at", "active"}
    assert token not in json.dumps(listed) and rows[0][3] not in json.dumps(listed)


def test_each_user_gets_a_new_random_token(store: Store) -> None:
    tokens = {add_user(store, f"user{i}", "officer") for i in range(5)}
    assert len(tokens) == 5


def test_a_token_authenticates_its_user(store: Store) -> None:
    token = add_user(store, "ani", "analyst", "Metro")
    assert authenticate(store, token) == User("ani", Role.ANALYST, "Metro")


def test_the_hashes_are_compared_in_constant_time() -> None:
    source = inspect.getsource(authenticate)
    assert "hmac.compare_digest(" in source
    assert "==" not in source.split('"""')[-1]  # no plain comparison of secrets after the docstring


def test_a_revoked_token_is_refused_and_a_new_one_replaces_it(store: Store) -> None:
    old = add_user(store, "ani", "officer")
    when = revoke_user(store, "ani")
    assert authenticate(store, old) is None
    assert list_users(store)[0]["revoked_at"] == when.isoformat(timespec="seconds")
    assert list_users(store)[0]["active"] is False
    new = add_user(store, "ani", "admin")  # a revoked name comes back, with a new token and role
    assert authenticate(store, old) is None
    assert authenticate(store, new) == User("ani", Role.ADMIN, None)


@pytest.mark.parametrize(
    "token",
    [
        "jjl32JHFT1ndZKfGiuZPKeF8kmfFDe3utGEK8HPpYB4",  # well formed (secrets.token_urlsafe(32)), never issued
        "",
        None,
        12345,
        b"bytes",
        "x" * 10_000,
        "' OR 1=1 --",
    ],
)
def test_unknown_and_malformed_tokens_are_refused(store: Store, token: object) -> None:
    add_user(store, "ani", "officer")
    assert authenticate(store, token) is None


def test_a_token_altered_or_replaced_by_its_hash_is_refused(store: Store) -> None:
    token = add_user(store, "ani", "officer")
    (stored,) = store.rows("SELECT token_hash FROM users")[0]
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    for bad in (flipped, token + "\n", " " + token, token[:-1], stored, token.upper()):
        if bad != token:
            assert authenticate(store, bad) is None, bad


# ------------------------------------------------------------------------------------------- users


def test_a_user_that_exists_is_refused(store: Store) -> None:
    token = add_user(store, "ani", "officer")
    with pytest.raises(InputError, match=r"user 'ani' exists already: revoke them first"):
        add_user(store, "ani", "admin")
    assert authenticate(store, token) == User("ani", Role.OFFICER, None)  # unchanged


def test_a_bad_role_is_refused_with_the_roles_to_choose_from(store: Store) -> None:
    with pytest.raises(InputError) as caught:
        add_user(store, "ani", "oficer")
    assert str(caught.value) == "unknown role 'oficer' (did you mean 'officer'?): give one of officer, analyst, admin"
    with pytest.raises(InputError, match="unknown role 'root': give one of officer, analyst, admin"):
        add_user(store, "ani", "root")
    assert list_users(store) == []


@pytest.mark.parametrize("name", ["", "a" * 65, "ani budi", "ani\n", "ání", "ani;drop", "../etc", "ani\x1b[2J"])
def test_a_malformed_name_is_refused(store: Store, name: str) -> None:
    with pytest.raises(InputError, match="give 1 to 64 letters"):
        add_user(store, name, "officer")


@pytest.mark.parametrize("name", ["a", "a" * 64, "ani.budi", "ANI-2_x"])
def test_names_of_the_allowed_characters_are_taken(store: Store, name: str) -> None:
    add_user(store, name, "officer")
    assert [u["name"] for u in list_users(store)] == [name]


@pytest.mark.parametrize("office", ["", "  ", "x" * 101, "Metro\nLampung", "Metro\x1b[31m"])
def test_a_malformed_office_is_refused(store: Store, office: str) -> None:
    with pytest.raises(InputError, match="office"):
        add_user(store, "ani", "officer", office)


def test_revoking_an_unknown_or_revoked_user_says_so(store: Store) -> None:
    add_user(store, "ani", "officer")
    with pytest.raises(NotFoundError, match=r"no user 'anni' \(did you mean 'ani'\?\)"):
        revoke_user(store, "anni")
    revoke_user(store, "ani")
    with pytest.raises(InputError, match="user 'ani' was revoked already, at "):
        revoke_user(store, "ani")


def test_users_are_listed_by_name(store: Store) -> None:
    add_user(store, "budi", "admin")
    add_user(store, "ani", "officer", "Metro")
    listed = list_users(store)
    assert [(u["name"], u["role"], u["office"], u["active"]) for u in listed] == [
        ("ani", "officer", "Metro", True),
        ("budi", "admin", None, True),
    ]


# ------------------------------------------------------------------------------------------- permissions

# Written out, not derived from PERMISSIONS: the words, one row per action.
MATRIX = {
    "query": {"officer", "analyst", "admin"},
    "register": {"officer", "analyst", "admin"},
    "view_identities": {"officer", "analyst", "admin"},
    "view_applications": {"officer", "analyst", "admin"},
    "view_history": {"officer", "analyst", "admin"},
    "decide": {"officer", "analyst", "admin"},
    "read_evaluations": {"analyst", "admin"},
    "read_labels": {"analyst", "admin"},
    "write_labels": {"analyst", "admin"},
    "manage_users": {"admin"},
    "manage_runs": {"admin"},
    "read_audit": {"admin"},
}


def test_the_matrix_names_every_action() -> None:
    assert set(MATRIX) == set(ACTIONS) == set(PERMISSIONS)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", sorted(MATRIX))
def test_the_permission_matrix(action: str, role: Role) -> None:
    user = User("someone", role, None)
    assert allowed(user, action) is (role.value in MATRIX[action])  # type: ignore[arg-type]


@pytest.mark.parametrize("action", sorted(MATRIX))
def test_no_user_may_do_nothing(action: str) -> None:
    assert allowed(None, action) is False  # type: ignore[arg-type]


def test_an_unknown_action_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError, match=r"unknown action 'querry' \(did you mean 'query'\?\)"):
        allowed(User("ani", Role.ADMIN, None), "querry")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- audit


def test_audit_rows_are_appended_and_read_newest_first(store: Store) -> None:
    ani = User("ani", Role.OFFICER, "Metro")
    first = write_audit(store, user=ani, endpoint="/v1/match", method="post", status=200, duration_ms=4.5,
                        fields={"full_name": NAME}, identities=["ID-a", "ID-b"])  # fmt: skip
    second = write_audit(store, user=None, endpoint="/v1/match", method="POST", status=401, duration_ms=0.3)
    third = write_audit(store, user=ani, endpoint="/v1/identities/{identity_id}", method="GET", status=404,
                        duration_ms=1.0)  # fmt: skip
    assert first < second < third
    rows = read_audit(store)
    assert [r["audit_no"] for r in rows] == [third, second, first]
    last = rows[-1]
    assert {k: v for k, v in last.items() if k != "at"} == {
        "audit_no": first, "user": "ani", "role": "officer", "endpoint": "/v1/match", "method": "POST",
        "query_hash": query_hash({"full_name": NAME}), "identities": ["ID-a", "ID-b"], "status": 200,
        "duration_ms": 4.5,
    }  # fmt: skip
    assert dt.datetime.fromisoformat(last["at"]) <= dt.datetime.now(dt.UTC)
    assert rows[1]["user"] is None and rows[1]["query_hash"] is None and rows[1]["identities"] == []
    assert [r["audit_no"] for r in read_audit(store, user="ani")] == [third, first]
    assert [r["audit_no"] for r in read_audit(store, limit=1)] == [third]
    assert read_audit(store, since=dt.date.today() + dt.timedelta(days=2)) == []
    assert len(read_audit(store, since=dt.date.today() - dt.timedelta(days=1))) == 3


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_an_audit_limit_out_of_range_is_refused(store: Store, limit: int) -> None:
    with pytest.raises(InputError, match="out of range: give 1 to 10,000"):
        read_audit(store, limit=limit)


def test_the_query_hash_is_stable_in_any_order_and_differs_by_value() -> None:
    one = {"full_name": NAME, "nik": NIK, "birth_date": "1990-05-05"}
    again = dict(reversed(list(one.items())))
    assert list(again) != list(one)
    assert query_hash(one) == query_hash(again)
    assert re.fullmatch(r"[0-9a-f]{64}", query_hash(one))
    assert query_hash(one) != query_hash({**one, "nik": "3201234505900002"})
    assert query_hash(one) != query_hash({**one, "birth_date": "1990-05-06"})
    assert query_hash({"a": "1"}) != query_hash({"b": "1"})  # a value under another field is another query
    assert query_hash({**one, "phone": None}) == query_hash(one)  # a field without a value asks nothing


def test_the_audit_never_stores_the_fields_values(db: Path) -> None:
    canary = f"/v1/canary-{uuid.uuid4().hex}"  # stored in clear: proves the byte search sees strings
    with Store(db) as store:
        write_audit(store, user=User("ani", Role.OFFICER, None), endpoint=canary, method="POST", status=200,
                    duration_ms=2.0, fields={"nik": NIK, "full_name": NAME}, identities=["ID-0001"])  # fmt: skip
        cells = [str(value) for row in store.rows("SELECT * FROM audit") for value in row]
    on_disk = stored_bytes(db)
    assert canary.encode() in on_disk
    assert NIK.encode() not in on_disk and NAME.encode() not in on_disk and b"Nurhaliza" not in on_disk
    assert not any(NIK in cell or "Nurhaliza" in cell for cell in cells)


def test_nothing_in_linkage_updates_or_deletes_an_audit_row() -> None:
    package = Path(access.__file__).parent
    for path in package.rglob("*.py"):
        text = " ".join(path.read_text(encoding="utf-8").split()).upper()
        for statement in ("UPDATE AUDIT", "DELETE FROM AUDIT", "TRUNCATE AUDIT", "DROP TABLE AUDIT"):
            assert statement not in text, f"{path.name}: {statement}"


# ------------------------------------------------------------------------------------------- commands


def test_the_commands_round_trip(db: Path) -> None:
    added = runner.invoke(app, ["users", "add", "ani", "--role", "officer", "--office", "Metro", "--db", str(db),
                                "--json"])  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert set(shown) == {"user", "role", "office", "token"}
    assert (shown["user"], shown["role"], shown["office"]) == ("ani", "officer", "Metro")
    token = shown["token"]

    plain = runner.invoke(app, ["users", "add", "budi", "--role", "admin", "--db", str(db)])
    assert plain.exit_code == 0, plain.output
    budi = plain.stdout.strip()  # the token alone on stdout, the note on stderr
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", budi) and "shown this once" in plain.stderr

    with Store(db) as store:
        assert authenticate(store, token) == User("ani", Role.OFFICER, "Metro")
        assert authenticate(store, budi) == User("budi", Role.ADMIN, None)
        write_audit(store, user=User("ani", Role.OFFICER, "Metro"), endpoint="/v1/match", method="POST", status=200,
                    duration_ms=3.0, fields={"nik": NIK}, identities=["ID-0001"])  # fmt: skip

    listed = runner.invoke(app, ["users", "list", "--db", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [u["name"] for u in json.loads(listed.stdout)] == ["ani", "budi"]
    assert token not in listed.output and budi not in listed.output
    table = runner.invoke(app, ["users", "list", "--db", str(db)])
    assert table.exit_code == 0 and "ani" in table.output and token not in table.output

    audit = runner.invoke(app, ["audit", "--db", str(db), "--json", "--user", "ani", "--since", "2020-01-01"])
    assert audit.exit_code == 0, audit.output
    (row,) = json.loads(audit.stdout)
    assert (row["user"], row["identities"], row["query_hash"]) == ("ani", ["ID-0001"], query_hash({"nik": NIK}))
    assert NIK not in audit.output
    assert runner.invoke(app, ["audit", "--db", str(db)]).exit_code == 0
    none = runner.invoke(app, ["audit", "--db", str(db), "--json", "--user", "budi"])
    assert json.loads(none.stdout) == []

    revoked = runner.invoke(app, ["users", "revoke", "ani", "--db", str(db)])
    assert revoked.exit_code == 0 and "user ani revoked at" in revoked.output
    with Store(db) as store:
        assert authenticate(store, token) is None


def test_the_commands_refuse_what_the_library_refuses(db: Path) -> None:
    bad_role = runner.invoke(app, ["users", "add", "ani", "--role", "oficer", "--db", str(db)])
    assert bad_role.exit_code == 1 and isinstance(bad_role.exception, InputError)
    assert "did you mean 'officer'" in str(bad_role.exception)
    assert runner.invoke(app, ["users", "add", "ani", "--role", "officer", "--db", str(db)]).exit_code == 0
    again = runner.invoke(app, ["users", "add", "ani", "--role", "officer", "--db", str(db)])
    assert again.exit_code == 1 and "exists already" in str(again.exception)
    unknown = runner.invoke(app, ["users", "revoke", "nobody", "--db", str(db)])
    assert unknown.exit_code == 1 and isinstance(unknown.exception, NotFoundError)
    bad_day = runner.invoke(app, ["audit", "--db", str(db), "--since", "07-12-2026"])
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output
    assert runner.invoke(app, ["audit", "--db", str(db), "--limit", "0"]).exit_code == 2
    missing = runner.invoke(app, ["users", "add", "ani", "--role", "officer", "--db", str(db.with_name("no.duckdb"))])
    assert missing.exit_code == 1 and "no store at" in str(missing.exception)
    assert not db.with_name("no.duckdb").exists()


@pytest.mark.parametrize("command", ["add", "revoke", "list"])
def test_every_users_option_has_a_help_sentence(command: str) -> None:
    import typer

    group = typer.main.get_command(app).commands["users"]  # type: ignore[attr-defined]
    result = runner.invoke(app, ["users", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    for param in group.commands[command].params:
        assert param.help and param.help.endswith("."), param.name
        assert " ".join(param.help.split()) in shown, param.name


# ------------------------------------------------------------------------------------------- migration


def test_a_store_at_version_6_migrates_to_the_current_version(tmp_path: Path) -> None:
    db = tmp_path / "v6.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
    for version in range(6):
        for statement in MIGRATIONS[version]:
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (?, now())", [version + 1])
    con.close()
    assert SCHEMA_VERSION == 9
    with Store(db) as store:  # opened read-write: migrated
        assert store.scalar("SELECT max(version) FROM schema_version") == 9
        indexes = store.rows("SELECT table_name, expressions FROM duckdb_indexes() ORDER BY table_name")
        assert indexes == [("applications", "[record_id]"), ("applications_normalised", "[record_id]"),
                           ("membership", "[identity_id]")]  # fmt: skip (the 7 -> 8 lookups of a registration)
        assert store.columns("users") == ["name", "role", "office", "token_hash", "created_at", "revoked_at"]
        assert store.columns("audit") == ["audit_no", "requested_at", "user_name", "role", "endpoint", "method",
                                          "query_hash", "identities", "status", "duration_ms"]  # fmt: skip
        token = add_user(store, "ani", "officer")
        assert write_audit(store, user=None, endpoint="/v1/match", method="POST", status=401, duration_ms=1) >= 1
    with Store(db, read_only=True) as store:
        assert authenticate(store, token) == User("ani", Role.OFFICER, None)
