"""``linkage COMMAND --help`` shows every option's help whole: rich reads ``[...]`` in a help text as markup
and drops it, which once left "Model spec ." where "[default: configs/model.toml]" had been."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from linkage.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # no help text wraps: each is found whole on its line
COMMANDS = [c.name for c in app.registered_commands if c.name]


def _command(name: str | None) -> Any:
    """The click command behind ``linkage NAME`` (the root for ``None``): its params hold the declared help."""
    root: Any = typer.main.get_command(app)
    return root if name is None else root.commands[name]


def _help(name: str | None) -> str:
    result = runner.invoke(app, [name, "--help"] if name else ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _cells(output: str) -> str:
    """The help's text with the frame's lines taken out and spaces collapsed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_no_help_text_lost_its_bracketed_part(name: str | None) -> None:
    output = _help(name)
    for line in output.splitlines():
        text = line.strip(" │")
        assert not re.search(r"\s\.$", text), f"a help text ends in ' .' (markup eaten?): {line!r}"
        assert "()" not in text and "[]" not in text, f"an empty () or []: {line!r}"


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_every_option_and_argument_has_its_whole_help_shown(name: str | None) -> None:
    shown = _cells(_help(name))
    for param in _command(name).params:
        help_text = getattr(param, "help", None)
        assert help_text, f"{param.name} of `linkage {name or ''}` has no help text"
        # the declared text, word for word: nothing in it was taken for markup
        assert " ".join(help_text.split()) in shown, f"{param.name}: {help_text!r} not shown whole"
        assert help_text.rstrip().endswith("."), f"{param.name}: {help_text!r} is not a sentence"


def test_the_defaults_are_named_in_the_help() -> None:
    assert "DuckDB store file (default: store.path from the config)." in _cells(_help("link"))
    dedupe = _cells(_help("dedupe"))
    assert "Model spec (default: configs/model.toml)." in dedupe
    assert "(default: the spec's threshold)." in dedupe


def test_link_takes_the_same_threshold_option_as_dedupe() -> None:
    (on_link,) = [p for p in _command("link").params if p.name == "threshold"]
    (on_dedupe,) = [p for p in _command("dedupe").params if p.name == "threshold"]
    assert on_link.opts == on_dedupe.opts == ["--threshold"] and on_link.help == on_dedupe.help
