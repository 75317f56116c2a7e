"""The store's tables: their columns, and the forward migrations that make and change them.

Tables, named after the stage that writes them::

    runs                      one row per run: kind, inputs, config hash, code version, counts, status
    applications              ingest: each accepted row as read (raw values by role, extras as JSON)
    quarantine                ingest: rows that could not be used, with file, row, field, value, reason
    applications_normalised   normalise: the columns of linkage.normalise.COLUMNS
    field_issues              normalise: bad fields of accepted rows, with reason
    record_updates            ingest: a stored record_id read again with other values (the previous row kept)
    models                    link: trained models (Splink's JSON with provenance); the newest is current
    membership                link: record → identity, its number for the lookup tables, since which run
    identities                link: every identity id ever minted; retired ones say by which run and into what
    pairs                     link: scored pairs at or above the review floor, with each comparison's level
    links                     link: the edges clustering kept (the link graph), why, the run's threshold and model
    block_index               link: each linked record's blocking keys (the lookup table of candidates)
    value_counts              link: counts of name tokens and term-frequency values over linked records
    relink                    ingest: linked records whose values changed, to be linked again
    decisions                 decide: officers' must-link and cannot-link decisions
    events                    link, decide, ingest: identity changes (created, merged, split, record moved)
    users                     users add: the officer service's users, role, office, token hash, revoked when
    audit                     the officer service: every request, append-only (who, when, what, status)
    schema_version            the version of this layout, for forward migrations

Each migration takes a store from one schema version to the next; :class:`linkage.store.Store` applies the
missing ones when it opens a store read-write (:data:`SCHEMA_VERSION` is the current one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pyarrow as pa

from linkage.normalise import COLUMNS as NORMALISED_COLUMNS
from linkage.normalise import IDENTITY_EVIDENCE
from linkage.schema import ROLES

__all__ = [
    "APPLICATIONS_COLUMNS",
    "COMPARED",
    "ISSUE_COLUMNS",
    "MIGRATIONS",
    "QUARANTINE_COLUMNS",
    "SCHEMA_VERSION",
    "STAGED",
    "arrow_table",
]

_ARROW_TYPES: Final = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR[]": pa.list_(pa.string()),
    "INTEGER": pa.int32(),
}

APPLICATIONS_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("record_id", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "INTEGER"),
    *((role, "VARCHAR") for role in ROLES if role != "record_id"),
    ("extras", "VARCHAR"),
)
QUARANTINE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("run_id", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "INTEGER"),
    ("reason", "VARCHAR"),
    ("field", "VARCHAR"),
    ("value", "VARCHAR"),
    ("raw", "VARCHAR"),
)
ISSUE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("run_id", "VARCHAR"),
    ("record_id", "VARCHAR"),
    ("field", "VARCHAR"),
    ("value", "VARCHAR"),
    ("reason", "VARCHAR"),
)


STAGED: Final = ("applications", "applications_normalised", "field_issues")
"""The tables that hold one record's rows, replaced together when the record is updated."""

# The raw values that make a record what it is: every role but its key, and the unmapped columns.
# Where and when it was read (run_id, source_file, source_row) is not a change. Sorted, so that the
# list of changed roles comes out sorted.
COMPARED: Final = tuple(
    sorted(name for name, _ in APPLICATIONS_COLUMNS if name not in ("record_id", "run_id", "source_file", "source_row"))
)


def _ddl(table: str, columns: Sequence[tuple[str, str]]) -> str:
    return f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns)})"


INDEXES: Final = (
    ("applications_record", "applications", "record_id"),
    ("applications_normalised_record", "applications_normalised", "record_id"),
    ("membership_identity", "membership", "identity_id"),
)
"""(index, table, column): for the officer's registration (issue 13), one record's rows and one identity's members
found by lookup, where each statement that asked for them read every row of the store (at 1M records a lookup by
record id took 13-28 ms, 1-2 ms with the index). Bulk writes drop them and make them again after
(:meth:`linkage.store.Store.unindexed`)."""

# Forward migrations: MIGRATIONS[v] takes a store from version v to v + 1.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR, started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ, inputs JSON, config_hash VARCHAR, code_version VARCHAR, counts JSON)""",
        _ddl("applications", APPLICATIONS_COLUMNS),
        _ddl("quarantine", QUARANTINE_COLUMNS),
        _ddl("applications_normalised", NORMALISED_COLUMNS),
        _ddl("field_issues", ISSUE_COLUMNS),
    ),
    # 1 → 2: address parts (postcode, locality, region). A store made at version 2 already has them
    # (version 1's tables are built from the current columns), hence IF NOT EXISTS.
    tuple(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} VARCHAR"
        for table in ("applications", "applications_normalised")
        for column in ("postcode", "locality", "region")
    ),
    # 2 → 3: the model input is derived on every run and now a TEMP table; a persisted one from an
    # earlier version would shadow its columns in Splink's catalogue lookups.
    ("DROP TABLE IF EXISTS model_input",),
    # 3 → 4: the identity store (issue 4): identities that keep their ids across runs, the pairs and keys
    # that incremental linking and officers' lookups read, decisions and the event log.
    (
        """CREATE TABLE record_updates (
            run_id VARCHAR, record_id VARCHAR, previous JSON, changed VARCHAR[], updated_at TIMESTAMPTZ)""",
        """CREATE TABLE models (
            model_id VARCHAR PRIMARY KEY, run_id VARCHAR, created_at TIMESTAMPTZ, records BIGINT,
            comparisons VARCHAR[], artefact JSON)""",
        """CREATE TABLE membership (
            record_id VARCHAR PRIMARY KEY, record_no BIGINT, identity_id VARCHAR, since_run VARCHAR)""",
        """CREATE TABLE identities (
            identity_id VARCHAR PRIMARY KEY, created_run VARCHAR, retired_run VARCHAR, merged_into VARCHAR)""",
        """CREATE TABLE pairs (
            record_id_l VARCHAR, record_id_r VARCHAR, match_probability DOUBLE, match_weight DOUBLE,
            model_match_weight DOUBLE, vetoed BOOLEAN, gammas TINYINT[], weights FLOAT[], model_id VARCHAR,
            run_id VARCHAR)""",
        "CREATE TABLE block_index (block_key UBIGINT, record_no BIGINT)",
        "CREATE TABLE value_counts (kind VARCHAR, value VARCHAR, n BIGINT)",
        "CREATE TABLE relink (record_id VARCHAR PRIMARY KEY, run_id VARCHAR)",
        """CREATE TABLE decisions (
            decision_id VARCHAR PRIMARY KEY, kind VARCHAR, record_id_a VARCHAR, record_id_b VARCHAR,
            decided_by VARCHAR, reason VARCHAR, decided_at TIMESTAMPTZ, applied_run VARCHAR)""",
        "CREATE SEQUENCE event_seq",
        """CREATE TABLE events (
            event_no BIGINT DEFAULT nextval('event_seq'), run_id VARCHAR, happened_at TIMESTAMPTZ, kind VARCHAR,
            identity_id VARCHAR, other_identity_id VARCHAR, record_id VARCHAR, other_record_id VARCHAR,
            probability DOUBLE, reason VARCHAR)""",
    ),
    # 4 → 5: the link graph (issue 11): the edges clustering kept, with why, and the run's threshold and model,
    # so that alerts, history and officers' queries read what clustering decided. A store linked before has
    # its graph rebuilt from its pairs at the threshold its last link run recorded (0.9 when none did), and
    # its must-link decisions; the guard's cuts are not recorded there, so an edge is kept only inside one
    # identity, as clustering keeps it.
    (
        """CREATE TABLE links (
            record_id_l VARCHAR, record_id_r VARCHAR, match_probability DOUBLE, kept VARCHAR, threshold DOUBLE,
            model_id VARCHAR, run_id VARCHAR)""",
        """INSERT INTO links
            WITH run AS (
                SELECT run_id, coalesce(TRY_CAST(counts->>'threshold' AS DOUBLE), 0.9) AS threshold FROM runs
                WHERE kind = 'link' AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1
            ),
            edges AS (
                SELECT least(p.record_id_l, p.record_id_r) AS a, greatest(p.record_id_l, p.record_id_r) AS b,
                       max(p.match_probability) AS p, 'scored' AS kept, any_value(p.model_id) AS model_id
                FROM pairs p, run WHERE p.match_probability >= run.threshold AND NOT coalesce(p.vetoed, false)
                GROUP BY 1, 2
                UNION ALL
                SELECT least(record_id_a, record_id_b), greatest(record_id_a, record_id_b), NULL, 'must_link', NULL
                FROM decisions d WHERE kind = 'must_link' AND NOT EXISTS (
                    SELECT 1 FROM decisions later WHERE least(later.record_id_a, later.record_id_b)
                        = least(d.record_id_a, d.record_id_b) AND greatest(later.record_id_a, later.record_id_b)
                        = greatest(d.record_id_a, d.record_id_b) AND later.decided_at > d.decided_at)
            )
            SELECT a, b, coalesce(max(p), 1.0), min(kept), any_value(run.threshold), any_value(e.model_id),
                   any_value(run.run_id)
            FROM edges e CROSS JOIN run
            JOIN membership ma ON ma.record_id = e.a JOIN membership mb ON mb.record_id = e.b
            WHERE ma.identity_id = mb.identity_id
            GROUP BY a, b""",
    ),
    # 5 → 6: records without identity evidence (issue 12 §4), flagged from their normalised values, as
    # normalisation flags new ones. A store made at version 6 already has the column, hence IF NOT EXISTS.
    (
        "ALTER TABLE applications_normalised ADD COLUMN IF NOT EXISTS no_identity_evidence BOOLEAN",
        "UPDATE applications_normalised SET no_identity_evidence = "
        + " AND ".join(f"{column} IS NULL" for column in IDENTITY_EVIDENCE),
    ),
    # 6 → 7: access and audit (issue 13 §3): the officer service's users, their tokens as hashes only
    # (linkage.access says why SHA-256), and an append-only audit of every request: who, when, what was
    # asked as a hash of its fields (never the values), which identities came back, and the answer's status.
    # IF NOT EXISTS: a store whose earlier migration is applied again (a test does) keeps its users and audit.
    (
        """CREATE TABLE IF NOT EXISTS users (
            name VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, office VARCHAR, token_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ)""",
        "CREATE SEQUENCE IF NOT EXISTS audit_seq",
        """CREATE TABLE IF NOT EXISTS audit (
            audit_no BIGINT DEFAULT nextval('audit_seq'), requested_at TIMESTAMPTZ NOT NULL, user_name VARCHAR,
            role VARCHAR, endpoint VARCHAR NOT NULL, method VARCHAR NOT NULL, query_hash VARCHAR, identities VARCHAR[],
            status INTEGER NOT NULL, duration_ms DOUBLE)""",
    ),
    # 7 → 8: the INDEXES below
    tuple(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})" for index, table, column in INDEXES),
    # 8 → 9: analysts' labels (issue 14): the samples drawn for labelling with their design (linkage.sample),
    # the pairs drawn with their stratum and inclusion probability, and the labels, appended only (a labeller's
    # latest label of a pair stands: linkage.labels).
    (
        """CREATE TABLE IF NOT EXISTS samples (
            sample_id VARCHAR PRIMARY KEY, drawn_at TIMESTAMPTZ, run_id VARCHAR, threshold DOUBLE,
            review_floor DOUBLE, seed BIGINT, requested INTEGER, design JSON)""",
        """CREATE TABLE IF NOT EXISTS sample_pairs (
            sample_id VARCHAR, record_id_l VARCHAR, record_id_r VARCHAR, stratum VARCHAR,
            inclusion_probability DOUBLE, match_probability DOUBLE)""",
        "CREATE SEQUENCE IF NOT EXISTS label_seq",
        """CREATE TABLE IF NOT EXISTS labels (
            label_no BIGINT DEFAULT nextval('label_seq'), record_id_l VARCHAR, record_id_r VARCHAR, label VARCHAR,
            labeller VARCHAR, labelled_at TIMESTAMPTZ, note VARCHAR, sample_id VARCHAR)""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def arrow_table(columns: dict[str, list[Any]], spec: Sequence[tuple[str, str]]) -> pa.Table:
    """Columns as lists into an Arrow table typed by a (name, DuckDB type) spec."""
    return pa.table({name: pa.array(columns[name], type=_ARROW_TYPES[kind]) for name, kind in spec})
