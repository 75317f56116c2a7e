"""linkage: identity deduplication and record linkage for Indonesian passport applications.

The public API is listed in ``__all__``; names are imported lazily so that ``import linkage`` stays
cheap and the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "linkage.config",
    "ConfigError": "linkage.errors",
    "IngestReport": "linkage.pipeline",
    "InputError": "linkage.errors",
    "LinkageError": "linkage.errors",
    "NameParts": "linkage.names",
    "NikInfo": "linkage.nik",
    "Profile": "linkage.profile",
    "Store": "linkage.store",
    "StoreError": "linkage.errors",
    "ingest": "linkage.pipeline",
    "load_config": "linkage.config",
    "normalise_batch": "linkage.normalise",
    "normalise_name": "linkage.names",
    "parse_date": "linkage.dates",
    "parse_nik": "linkage.nik",
    "profile": "linkage.profile",
}

__all__ = [
    "Config",
    "ConfigError",
    "IngestReport",
    "InputError",
    "LinkageError",
    "NameParts",
    "NikInfo",
    "Profile",
    "Store",
    "StoreError",
    "__version__",
    "ingest",
    "load_config",
    "normalise_batch",
    "normalise_name",
    "parse_date",
    "parse_nik",
    "profile",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'linkage' has no attribute {name!r}")
