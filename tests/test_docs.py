"""The README documents the schema, every setting and every command, and its test command is CI's."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import settings_table
from linkage.schema import FIELDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def schema_table() -> str:
    lines = ["| column | type | required | meaning | example |", "|---|---|---|---|---|"]
    lines += [
        f"| `{f.name}` | {f.type} | {'yes' if f.required else 'no'} | {f.meaning} | `{f.example}` |" for f in FIELDS
    ]
    return "\n".join(lines)


def settings_markdown() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | `{d}` | {h} |" for k, t, d, h in settings_table()]
    return "\n".join(lines)


def test_readme_schema_table_matches_the_code() -> None:
    assert schema_table() in README, "README schema table is stale; expected:\n" + schema_table()


def test_readme_settings_table_matches_the_code() -> None:
    assert settings_markdown() in README, "README settings table is stale; expected:\n" + settings_markdown()


def test_default_config_file_matches_the_defaults() -> None:
    from linkage.config import Config, load_config

    assert load_config(ROOT / "configs" / "default.toml") == Config()


def test_every_command_has_help_and_is_in_the_readme() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = [c.name for c in app.registered_commands]
    for name in commands:
        assert name and name in result.output
        assert f"linkage {name}" in README, f"README does not show `linkage {name}`"
        sub = CliRunner().invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and len(sub.output) > 100


def test_ci_runs_the_readme_test_command() -> None:
    block = re.search(r"<!-- test-command -->\s*```(?:sh|bash)?\n(.+?)\n```", README, re.S)
    assert block, "README has no test-command block"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert block.group(1).strip() in ci


def test_readme_data_flow_names_every_stage_and_its_module() -> None:
    """The data-flow picture names each stage of engine.STAGES and its module, and only modules that exist."""
    from linkage.engine import STAGES

    picture = re.search(r"## How data flows.*?```text\n(.+?)```", README, re.S)
    assert picture, "README has no data-flow picture"
    text = picture.group(1)
    for stage in STAGES:
        assert re.search(rf"│ {stage.name}\b", text), f"the picture does not show the stage {stage.name!r}"
        module = stage.module.removeprefix("linkage.") + ".py"
        assert module in text, f"the picture does not name {module} ({stage.name})"
    named = set(re.findall(r"\b([a-z_]+)\.py\b", text))
    existing = {p.stem for p in (ROOT / "linkage").glob("*.py")}
    assert named <= existing, f"the picture names modules that do not exist: {sorted(named - existing)}"
