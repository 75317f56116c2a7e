"""The public surface: ``linkage.__all__`` is sorted, complete (what the CLI calls, every error) and resolves."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
from pathlib import Path

import linkage
import linkage.cli as cli


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in linkage.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in linkage.__all__:
        assert getattr(linkage, name) is not None


def test_every_lazy_export_is_listed() -> None:
    assert set(linkage._EXPORTS) | {"__version__"} == set(linkage.__all__)


def test_no_public_name_is_shadowed_by_a_submodule() -> None:
    submodules = {m.name for m in pkgutil.iter_modules(linkage.__path__)}
    for module in submodules:
        importlib.import_module(f"linkage.{module}")
    assert not submodules & set(linkage.__all__)
    for name in linkage.__all__:
        assert not isinstance(getattr(linkage, name), types.ModuleType), name


# What the CLI calls from linkage's submodules: the CLI is a thin edge over the library, so a caller
# (the API, a notebook) must reach every such function and class through the public surface.
CLI = Path(linkage.__file__).with_name("cli")  # a package: the app in __init__.py, one module per command group
# Imported by the CLI yet not a library operation: each with the reason it stays out of __all__.
NOT_PUBLIC = {
    ("linkage.errors", "did_you_mean"): "formats the hint of a usage error; no caller needs it on its own",
    ("linkage.store", "name_process"): "labels the CLI's process in a writer sidecar; a library caller has none",
}


def cli_modules() -> list[Path]:
    return sorted(CLI.glob("*.py"))


def cli_imports() -> list[tuple[str, str]]:
    """(module, name) of every ``from linkage.<submodule> import name`` in the CLI's modules, inside functions too.

    Imports between the CLI's own modules (the app and its shared options) are not library calls.
    """
    return [
        (node.module, alias.name)
        for path in cli_modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and node.level == 0
        and (node.module or "").startswith("linkage.")
        and not (node.module or "").startswith("linkage.cli")
        for alias in node.names
    ]


def test_every_module_of_the_cli_is_read() -> None:
    # a command group's module left out would hide its library calls from the check below
    names = {path.stem for path in cli_modules()}
    assert {"__init__", "ingest", "link", "evaluate", "trace"} <= names
    registered = {command.callback.__module__ for command in cli.app.registered_commands if command.callback}
    assert registered <= {f"linkage.cli.{name}" for name in names}


def test_cli_imports_are_parsed_from_functions_too() -> None:
    # the commands import their stage lazily (the CLI starts fast); a parse of the top level only misses them
    found = cli_imports()
    assert ("linkage.engine", "link") in found and ("linkage.store", "Store") in found
    assert ("linkage.history", "history") in found and ("linkage.sweep", "sweep") in found  # in other modules


def test_everything_the_cli_calls_is_public() -> None:
    public = {id(getattr(linkage, name)) for name in linkage.__all__}
    missing = []
    for module, name in cli_imports():
        obj = getattr(importlib.import_module(module), name)
        if name.startswith("_") or (module, name) in NOT_PUBLIC:
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and id(obj) not in public:
            missing.append(f"{module}.{name}")
    assert not missing, f"the CLI uses these but linkage.__all__ does not reach them: {missing}"


def test_the_allow_list_names_only_what_the_cli_imports() -> None:
    assert set(NOT_PUBLIC) <= set(cli_imports())


def test_every_error_a_caller_can_catch_is_public() -> None:
    from linkage import errors

    raised = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.LinkageError) and not name.startswith("_")
    }
    assert raised - set(linkage.__all__) == set()
