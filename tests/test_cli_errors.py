"""`linkage`'s error path as a user meets it: through ``linkage.cli.main()``, not the typer app.

``CliRunner().invoke(app, ...)`` hands back the raised exception, so the other CLI tests never see what
``main()`` makes of it. Here each bad input goes through ``main()`` (``sys.argv`` set, ``SystemExit``
caught) or through ``python -m linkage.cli``: the exit code, one message line on stderr (an invalid config
adds one line per problem), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from linkage.cli import main
from linkage.config import Config
from linkage.pipeline import ingest


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-errors")
    source = folder / "applications.csv"
    source.write_text("record_id,full_name\nA1,Siti Aminah\nA2,Joko Susilo\n", encoding="utf-8")
    path = folder / "s.duckdb"
    assert ingest([source], Config(), db=path, today=dt.date(2026, 11, 28)).accepted == 2
    return path


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``linkage ARGS`` through ``main()``; return its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["linkage", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    code = exited.value.code
    return (code if isinstance(code, int) else 1), err


def one_line(err: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_missing_store_is_one_line_however_long_its_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # longer than a terminal's 80 columns: the message must not be wrapped onto several lines
    missing = tmp_path / "no-such-folder" / ("a-store-whose-name-is-long-enough-to-wrap" * 2 + ".duckdb")
    code, err = run_main(monkeypatch, capsys, "profile", "--db", str(missing))
    assert code == 1
    line = one_line(err)
    assert line.startswith("error: no store at ") and str(missing) in line and "linkage ingest" in line


def test_a_missing_input_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.csv"
    code, err = run_main(monkeypatch, capsys, "ingest", str(missing), "--db", str(tmp_path / "s.duckdb"))
    assert code == 1
    assert one_line(err) == f"error: input file not found: {missing}"


def test_an_invalid_config_is_one_line_then_one_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("bogus = 1\n[store]\npath = 3\n", encoding="utf-8")
    code, err = run_main(monkeypatch, capsys, "profile", "--config", str(config))
    assert code == 1
    first, *problems = err.strip("\n").splitlines()
    assert first == f"error: invalid config {config}"
    assert len(problems) == 2 and all(p.startswith("  - ") for p in problems)
    assert any("bogus: unknown key" in p for p in problems) and any("store.path" in p for p in problems)


@pytest.mark.parametrize("key", ["nope", "[/x]", "[bold]x[/bold]"])
def test_an_unknown_id_is_shown_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: Path, key: str
) -> None:
    # a key is anything the user typed; square brackets are not markup for the terminal
    code, err = run_main(monkeypatch, capsys, "history", key, "--db", str(db))
    assert code == 1
    assert one_line(err) == f"error: no record or identity {key!r} in the store"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["maybe-link", "A1", "A2"], "error: unknown decision 'maybe_link': use one of must-link, cannot-link"),
        (["must-link", "A1", "A1"], "error: a decision needs two different records, got 'A1' twice"),
        (["must-link", "A1", "Z9"], "error: no application with record_id 'Z9' in "),
    ],
)
def test_a_bad_decision(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: Path, args: list[str], message: str
) -> None:
    code, err = run_main(monkeypatch, capsys, "decide", *args, "--by", "officer.rina", "--reason", "x", "--db", str(db))
    assert code == 1
    assert one_line(err).startswith(message)


def test_a_usage_error_exits_2_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, err = run_main(monkeypatch, capsys, "alerts", "--db", str(db), "--since", "01-03-2024")
    assert code == 2
    assert "not a day written YYYY-MM-DD" in err


def test_python_m_linkage_cli_exits_the_same_way(db: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linkage.cli", "history", "[/x]", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert one_line(done.stderr) == "error: no record or identity '[/x]' in the store"
    assert done.stdout == ""


def test_a_bug_is_one_line_and_exit_code_70_never_a_traceback(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception that is not a LinkageError is a bug: said in one line, the traceback only at -vv."""
    import linkage.cli.ingest

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("math domain error")

    monkeypatch.setattr(linkage.cli.ingest, "profile", broken)  # the name the command calls
    code, err = run_main(monkeypatch, capsys, "profile", "--db", str(db))
    assert code == 70
    assert "internal error: ValueError: math domain error" in err and "-vv" in err
    monkeypatch.setattr(sys, "argv", ["linkage", "-vv", "profile", "--db", str(db)])
    try:
        with pytest.raises(ValueError, match="math domain error"):  # a developer asked for the traceback
            main()
    finally:
        logging.getLogger("linkage").setLevel(logging.NOTSET)  # -vv set it for this process


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a model file (not JSON"),
        ('{"dataset": {"name": "x"}}', "not a model file written by `linkage train`"),
        ("[1, 2]", "not a model file written by `linkage train`"),
    ],
)
def test_a_model_file_that_is_not_a_model_is_refused(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: str,
    message: str,
) -> None:  # fmt: skip
    bad = tmp_path / "model.json"
    bad.write_text(content, encoding="utf-8")
    code, err = run_main(monkeypatch, capsys, "link", "--db", str(db), "--model", str(bad))
    assert code == 1 and message in err
    code, err = run_main(monkeypatch, capsys, "link", "--db", str(db), "--model", str(tmp_path / "none.json"))
    assert code == 1 and "model file not found" in err
