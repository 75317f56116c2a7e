"""The public surface: ``linkage.__all__`` is sorted, complete and every name resolves."""

from __future__ import annotations

import importlib
import pkgutil
import types

import linkage


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
