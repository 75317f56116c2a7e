"""The public surface: ``linkage.__all__`` is sorted, complete and every name resolves."""

from __future__ import annotations

import linkage


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in linkage.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in linkage.__all__:
        assert getattr(linkage, name) is not None


def test_every_lazy_export_is_listed() -> None:
    assert set(linkage._EXPORTS) | {"__version__"} == set(linkage.__all__)
