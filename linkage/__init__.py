"""linkage: identity deduplication and record linkage for Indonesian passport applications.

The public API is listed in ``__all__``; names are imported lazily so that ``import linkage`` stays
cheap and the CLI starts fast. No public name equals a submodule's name (``linkage.ingest`` is the
reader module; the whole ingest run is :func:`ingest_files`), so an import never shadows one.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "Config": ("linkage.config", "Config"),
    "ConfigError": ("linkage.errors", "ConfigError"),
    "DedupeSummary": ("linkage.dedupe", "DedupeSummary"),
    "IngestReport": ("linkage.pipeline", "IngestReport"),
    "InputError": ("linkage.errors", "InputError"),
    "LinkageError": ("linkage.errors", "LinkageError"),
    "Metrics": ("linkage.evaluate", "Metrics"),
    "NameParts": ("linkage.names", "NameParts"),
    "NikInfo": ("linkage.nik", "NikInfo"),
    "Profile": ("linkage.profile", "Profile"),
    "Store": ("linkage.store", "Store"),
    "StoreError": ("linkage.errors", "StoreError"),
    "cluster_pairs": ("linkage.cluster", "cluster"),
    "dedupe_files": ("linkage.dedupe", "dedupe"),
    "evaluate_clusters": ("linkage.evaluate", "evaluate"),
    "ingest_files": ("linkage.pipeline", "ingest"),
    "load_config": ("linkage.config", "load_config"),
    "normalise_batch": ("linkage.normalise", "normalise_batch"),
    "normalise_name": ("linkage.names", "normalise_name"),
    "parse_date": ("linkage.dates", "parse_date"),
    "parse_nik": ("linkage.nik", "parse_nik"),
    "profile_store": ("linkage.profile", "profile"),
}

__all__ = [
    "Config",
    "ConfigError",
    "DedupeSummary",
    "IngestReport",
    "InputError",
    "LinkageError",
    "Metrics",
    "NameParts",
    "NikInfo",
    "Profile",
    "Store",
    "StoreError",
    "__version__",
    "cluster_pairs",
    "dedupe_files",
    "evaluate_clusters",
    "ingest_files",
    "load_config",
    "normalise_batch",
    "normalise_name",
    "parse_date",
    "parse_nik",
    "profile_store",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'linkage' has no attribute {name!r}")
