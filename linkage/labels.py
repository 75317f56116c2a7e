"""Analysts' labels of record pairs: stored, read back as each pair's standing label, disagreements reported.

A label says of a pair ``match``, ``non-match`` or ``unsure``, by a labeller, at a time, with an optional note
(``labels`` table; nothing updates or deletes a label). A labeller's latest label of a pair stands for them;
a pair's **standing** label is the one its labellers' standing labels agree on; when they disagree (one says
match, another non-match) the pair is **disputed** and, like ``unsure``, counts in no estimate until someone
labels it again. Record ids are not logged; counts are.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa

from linkage.errors import InputError, Problem
from linkage.store import Store

__all__ = ["LABELS", "Imported", "import_labels", "standing"]

log = logging.getLogger(__name__)

LABELS: Final = ("match", "non-match", "unsure")
_REQUIRED: Final = ("record_id_l", "record_id_r", "label")
_MAX_NOTE: Final = 1000


@dataclass
class Imported:
    """What ``review import`` stored: labels by kind, rows left blank (not labelled yet), and the file's rows."""

    rows: int = 0
    stored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    blank: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows == sum(self.stored.values()) + self.blank


def import_labels(store: Store, path: Path, by: str) -> Imported:
    """Store the labels of a filled sample CSV (``linkage review sample``), all of them or none.

    Every row is checked first: its pair is one drawn into a sample of this store (either order), its label one
    of :data:`LABELS` or empty (not labelled yet: skipped), its note at most 1,000 characters. One bad row refuses
    the whole file, each problem named by its line.

    Raises:
        InputError: the file cannot be read, lacks a column, or has bad rows (each listed), or ``by`` is empty.
    """
    labeller = by.strip()
    if not labeller:
        raise InputError("a label needs its labeller: --by NAME")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no labels file at {path}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"{path} cannot be read as CSV ({type(exc).__name__}): {exc}") from None
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks the column(s) {', '.join(missing)}: fill the CSV of `linkage review sample`")
    notes = frame["note"] if "note" in frame.columns else pd.Series([""] * len(frame), dtype=object)
    left = frame["record_id_l"].str.strip()
    right = frame["record_id_r"].str.strip()
    ordered = left <= right
    pairs = pd.DataFrame({"record_id_l": left.where(ordered, right), "record_id_r": right.where(ordered, left)})
    with store.registered("_labelled", pa.Table.from_pandas(pairs, preserve_index=False)):
        drawn = {
            (a, b): sample
            for a, b, sample in store.rows(
                """SELECT s.record_id_l, s.record_id_r, max(s.sample_id) FROM sample_pairs s
                   JOIN _labelled USING (record_id_l, record_id_r) GROUP BY ALL""",
                table="sample_pairs",
            )
        }
    problems, rows, report = [], [], Imported(rows=len(frame))
    labels = frame["label"].str.strip().str.lower()
    rows_in = zip(pairs["record_id_l"], pairs["record_id_r"], labels, notes, strict=True)
    for line, (a, b, label, note) in enumerate(rows_in, start=2):  # (the header is line 1)
        if not label:
            report.blank += 1
            continue
        if label not in LABELS:
            problems.append(Problem(f"label {label!r} is none of {', '.join(LABELS)} (or empty)",
                                    file=str(path), row=line, column="label"))  # fmt: skip
        elif (a, b) not in drawn:
            problems.append(Problem(f"the pair {a!r}, {b!r} was drawn into no sample of this store",
                                    file=str(path), row=line, column="record_id_l"))  # fmt: skip
        elif len(note) > _MAX_NOTE:
            problems.append(Problem(f"the note has {len(note):,} characters, more than {_MAX_NOTE:,}",
                                    file=str(path), row=line, column="note"))  # fmt: skip
        else:
            rows.append((a, b, label, note or None, drawn[(a, b)]))
            report.stored[label] += 1
    if problems:
        raise InputError(f"{path}: {len(problems)} bad row(s); nothing was stored", problems=problems)
    now = datetime.now(UTC)
    table = pa.table({
        "record_id_l": [r[0] for r in rows], "record_id_r": [r[1] for r in rows], "label": [r[2] for r in rows],
        "labeller": [labeller] * len(rows), "labelled_at": pa.array([now] * len(rows), pa.timestamp("us", "UTC")),
        "note": pa.array([r[3] for r in rows], pa.string()), "sample_id": [r[4] for r in rows],
    })  # fmt: skip
    with store.transaction(), store.registered("_new_labels", table):
        store.sql(
            """INSERT INTO labels (record_id_l, record_id_r, label, labeller, labelled_at, note, sample_id)
               SELECT * FROM _new_labels""",
            table="labels",
        )
    log.info("labels stored: %d, blank rows: %d", sum(report.stored.values()), report.blank)
    return report


def standing(store: Store) -> pd.DataFrame:
    """Each labelled pair's standing label: ``record_id_l, record_id_r, label`` (``match``, ``non-match``,
    ``unsure`` or ``disputed``), ``labellers`` (how many) and ``labels`` (each labeller's, ``name: label``)."""
    frame: pd.DataFrame = store.df(
        """WITH latest AS (
               SELECT record_id_l, record_id_r, labeller, label FROM labels
               QUALIFY row_number() OVER (PARTITION BY record_id_l, record_id_r, labeller
                                          ORDER BY labelled_at DESC, label_no DESC) = 1
           )
           SELECT record_id_l, record_id_r,
                  CASE WHEN count(DISTINCT label) FILTER (WHERE label <> 'unsure') > 1 THEN 'disputed'
                       WHEN count(*) FILTER (WHERE label <> 'unsure') = 0 THEN 'unsure'
                       ELSE any_value(label) FILTER (WHERE label <> 'unsure') END AS label,
                  count(*) AS labellers, list(labeller || ': ' || label ORDER BY labeller) AS labels
           FROM latest GROUP BY record_id_l, record_id_r ORDER BY record_id_l, record_id_r""",
        table="labels",
    )
    return frame
