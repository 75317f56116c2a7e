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
    "Indicator": ("linkage.risk", "Indicator"),
    "IngestReport": ("linkage.pipeline", "IngestReport"),
    "InputError": ("linkage.errors", "InputError"),
    "LinkageError": ("linkage.errors", "LinkageError"),
    "Metrics": ("linkage.evaluate", "Metrics"),
    "NameParts": ("linkage.names", "NameParts"),
    "NikInfo": ("linkage.nik", "NikInfo"),
    "NotFoundError": ("linkage.errors", "NotFoundError"),
    "Profile": ("linkage.profile", "Profile"),
    "Role": ("linkage.access", "Role"),
    "Store": ("linkage.store", "Store"),
    "StoreError": ("linkage.errors", "StoreError"),
    "User": ("linkage.access", "User"),
    "add_user": ("linkage.access", "add_user"),
    "applications_from_store": ("linkage.measure", "applications_from_store"),
    "audit_query_hash": ("linkage.access", "query_hash"),
    "authenticate": ("linkage.access", "authenticate"),
    "cluster_pairs": ("linkage.cluster", "cluster"),
    "dedupe_files": ("linkage.dedupe", "dedupe"),
    "evaluate_clusters": ("linkage.evaluate", "evaluate"),
    "export_identities": ("linkage.exports", "export"),
    "identity_history": ("linkage.history", "history"),
    "ingest_files": ("linkage.pipeline", "ingest"),
    "link_store": ("linkage.engine", "link"),
    "list_users": ("linkage.access", "list_users"),
    "load_config": ("linkage.config", "load_config"),
    "load_evaluation_table": ("linkage.measure", "load_table"),
    "load_model_spec": ("linkage.spec", "load_spec"),
    "match_applicant": ("linkage.query", "query"),
    "normalise_batch": ("linkage.normalise", "normalise_batch"),
    "normalise_name": ("linkage.names", "normalise_name"),
    "office_shopping_alerts": ("linkage.alerts", "alerts"),
    "office_shopping_by_month": ("linkage.alerts", "office_shopping"),
    "parse_date": ("linkage.dates", "parse_date"),
    "parse_nik": ("linkage.nik", "parse_nik"),
    "profile_store": ("linkage.profile", "profile"),
    "read_audit": ("linkage.access", "read_audit"),
    "record_decision": ("linkage.decide", "decide"),
    "revoke_user": ("linkage.access", "revoke_user"),
    "risk_indicators": ("linkage.risk", "indicators"),
    "create_app": ("linkage.server", "create_app"),
    "settings_table": ("linkage.config", "settings_table"),
    "sweep_thresholds": ("linkage.sweep", "sweep"),
    "threshold_cost": ("linkage.cutoff", "cost"),
    "train_model": ("linkage.dedupe", "train_files"),
    "user_allowed": ("linkage.access", "allowed"),
    "write_audit": ("linkage.access", "write_audit"),
    "write_office_shopping_report": ("linkage.exports", "write_report"),
    "write_sweep_report": ("linkage.sweep", "write_report"),
}

__all__ = [
    "Config",
    "ConfigError",
    "DedupeSummary",
    "Indicator",
    "IngestReport",
    "InputError",
    "LinkageError",
    "Metrics",
    "NameParts",
    "NikInfo",
    "NotFoundError",
    "Profile",
    "Role",
    "Store",
    "StoreError",
    "User",
    "__version__",
    "add_user",
    "applications_from_store",
    "audit_query_hash",
    "authenticate",
    "cluster_pairs",
    "create_app",
    "dedupe_files",
    "evaluate_clusters",
    "export_identities",
    "identity_history",
    "ingest_files",
    "link_store",
    "list_users",
    "load_config",
    "load_evaluation_table",
    "load_model_spec",
    "match_applicant",
    "normalise_batch",
    "normalise_name",
    "office_shopping_alerts",
    "office_shopping_by_month",
    "parse_date",
    "parse_nik",
    "profile_store",
    "read_audit",
    "record_decision",
    "revoke_user",
    "risk_indicators",
    "settings_table",
    "sweep_thresholds",
    "threshold_cost",
    "train_model",
    "user_allowed",
    "write_audit",
    "write_office_shopping_report",
    "write_sweep_report",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'linkage' has no attribute {name!r}")
