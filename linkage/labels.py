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
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from linkage.errors import InputError, NotFoundError, Problem
from linkage.history import LATEST_PAIR
from linkage.sample import FIELDS
from linkage.store import Store, quote

__all__ = [
    "LABELS", "Imported", "import_labels", "pair_view", "progress", "sample_id_of", "sample_pairs", "samples",
    "standing", "store_label",
]  # fmt: skip

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
    _insert(store, rows, labeller)
    log.info("labels stored: %d, blank rows: %d", sum(report.stored.values()), report.blank)
    return report


def store_label(store: Store, record_id_l: str, record_id_r: str, label: str, labeller: str,
                note: str | None = None) -> str:  # fmt: skip
    """Store one label of a drawn pair (either order) by ``labeller``, as ``review import`` stores a file's.

    Returns:
        The sample the pair was drawn into (the latest, when several drew it).

    Raises:
        InputError: the label is none of :data:`LABELS`, the labeller is empty, the note is longer than 1,000
            characters, or no sample of this store drew the pair.
    """
    who, label, note = labeller.strip(), label.strip().lower(), (note or "").strip()
    if not who:
        raise InputError("a label needs its labeller")
    if label not in LABELS:
        raise InputError(f"label {label!r} is none of {', '.join(LABELS)}")
    if len(note) > _MAX_NOTE:
        raise InputError(f"the note has {len(note):,} characters, more than {_MAX_NOTE:,}")
    a, b = sorted((record_id_l.strip(), record_id_r.strip()))
    drawn = store.rows(
        "SELECT max(sample_id) FROM sample_pairs WHERE record_id_l = ? AND record_id_r = ? HAVING count(*) > 0",
        [a, b],
        table="sample_pairs",
    )
    if not drawn:
        raise InputError(f"the pair {a!r}, {b!r} was drawn into no sample of this store: label a sample's pairs")
    _insert(store, [(a, b, label, note or None, str(drawn[0][0]))], who)
    log.info("label stored: %s", label)  # (the label kind only: record ids stay out of the log)
    return str(drawn[0][0])


def _insert(store: Store, rows: list[tuple[str, str, str, str | None, str]], labeller: str) -> None:
    """Append labels ``(record_id_l, record_id_r, label, note, sample_id)`` by ``labeller``, all in one statement."""
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


def samples(store: Store) -> list[dict[str, Any]]:
    """The store's samples, newest first: ``sample_id, drawn_at, pairs`` (drawn) and ``labelled`` (pairs with a
    label by anyone)."""
    rows = store.rows(
        """SELECT s.sample_id, s.drawn_at, count(p.record_id_l),
                  count(p.record_id_l) FILTER (WHERE EXISTS (
                      SELECT 1 FROM labels l WHERE l.record_id_l = p.record_id_l AND l.record_id_r = p.record_id_r))
           FROM samples s LEFT JOIN sample_pairs p USING (sample_id)
           GROUP BY s.sample_id, s.drawn_at ORDER BY s.drawn_at DESC, s.sample_id""",
        table="samples",
    )
    return [{"sample_id": i, "drawn_at": at, "pairs": int(n), "labelled": int(k)} for i, at, n, k in rows]


def sample_id_of(store: Store, sample_id: str | None) -> str:
    """``sample_id`` when the store holds it, else the latest sample's id when none is given.

    Raises:
        NotFoundError: no such sample.
        InputError: none given and the store has no sample yet.
    """
    if sample_id is None:
        found = store.rows("SELECT sample_id FROM samples ORDER BY drawn_at DESC, sample_id LIMIT 1", table="samples")
        if not found:
            raise InputError("the store has no sample yet: `linkage review sample --db PATH --n 300 --out FILE.csv`")
        return str(found[0][0])
    if not store.rows("SELECT 1 FROM samples WHERE sample_id = ?", [sample_id], table="samples"):
        raise NotFoundError(f"no sample {sample_id!r} in the store")
    return sample_id


def sample_pairs(
    store: Store, sample_id: str, *, unlabelled_by: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """A sample's pairs with both applications' fields (:data:`linkage.sample.FIELDS`, as ``left`` and ``right``).

    The order is a hash of the pair, not the stratum: a labeller going through them one by one learns nothing
    of what the model made of a pair from its place (the labels stay blind).

    Args:
        unlabelled_by: only the pairs this labeller has not labelled yet.
        limit: at most this many.
    """
    rows = store.rows(
        """SELECT p.record_id_l, p.record_id_r FROM sample_pairs p
           WHERE p.sample_id = $sample AND ($who IS NULL OR NOT EXISTS (
               SELECT 1 FROM labels l WHERE l.record_id_l = p.record_id_l AND l.record_id_r = p.record_id_r
                                        AND l.labeller = $who))
           ORDER BY hash(p.record_id_l, p.record_id_r, p.sample_id), p.record_id_l, p.record_id_r
           LIMIT $limit""",
        {"sample": sample_id, "who": unlabelled_by, "limit": limit if limit is not None else 2**62},
        table="sample_pairs",
    )
    fields = _fields(store, {r for pair in rows for r in pair})
    return [{"record_id_l": a, "record_id_r": b, "left": fields.get(a, {}), "right": fields.get(b, {})}
            for a, b in rows]  # fmt: skip


def progress(store: Store, sample_id: str, labeller: str) -> tuple[int, int]:
    """``(pairs of the sample this labeller has labelled, pairs in the sample)``."""
    done, total = store.rows(
        """SELECT count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM labels l WHERE l.record_id_l = p.record_id_l AND l.record_id_r = p.record_id_r
                                               AND l.labeller = $who)), count(*)
           FROM sample_pairs p WHERE p.sample_id = $sample""",
        {"sample": sample_id, "who": labeller},
        table="sample_pairs",
    )[0]
    return int(done), int(total)


def pair_view(store: Store, record_id_l: str, record_id_r: str, labeller: str) -> dict[str, Any]:
    """One pair as the labelling page shows it: both applications' fields, which differ, this labeller's latest
    label (``None``: not labelled by them) and, only once they have labelled it, the model's probability and
    its waterfall (each comparison of the stored model with the pair's level and weight).

    Raises:
        NotFoundError: no sample drew the pair.
    """
    a, b = sorted((record_id_l, record_id_r))
    if not store.rows("SELECT 1 FROM sample_pairs WHERE record_id_l = ? AND record_id_r = ?", [a, b],
                      table="sample_pairs"):  # fmt: skip
        raise NotFoundError(f"the pair {a!r}, {b!r} was drawn into no sample of this store")
    fields = _fields(store, {a, b})
    left, right = fields.get(a, {}), fields.get(b, {})
    mine = store.rows(
        """SELECT label, note FROM labels WHERE record_id_l = ? AND record_id_r = ? AND labeller = ?
           ORDER BY labelled_at DESC, label_no DESC LIMIT 1""",
        [a, b, labeller],
        table="labels",
    )
    view: dict[str, Any] = {
        "record_id_l": a, "record_id_r": b, "left": left, "right": right,
        "differs": [f for f in FIELDS if _shown(left.get(f)) != _shown(right.get(f))],
        "label": mine[0][0] if mine else None, "note": mine[0][1] if mine else None,
        "match_probability": None, "waterfall": None,
    }  # fmt: skip
    if mine:  # blind until labelled: the model's view only after the labeller's own
        view["match_probability"], view["waterfall"] = _evidence(store, a, b)
    return view


def _evidence(store: Store, a: str, b: str) -> tuple[float | None, list[dict[str, Any]] | None]:
    """The pair's latest score and its comparisons (as ``linkage.history`` reads them), or the sample's
    probability and no waterfall for a pair the model scored only when the sample was drawn."""
    rows = store.rows(
        f"""SELECT p.match_probability, p.gammas, p.weights, m.comparisons FROM pairs p
            LEFT JOIN models m ON m.model_id = p.model_id
            WHERE p.record_id_l = $a AND p.record_id_r = $b {LATEST_PAIR}""",
        {"a": a, "b": b},
        table="pairs",
    )
    if not rows:
        drawn = store.rows(
            "SELECT max(match_probability) FROM sample_pairs WHERE record_id_l = ? AND record_id_r = ?", [a, b],
            table="sample_pairs",
        )  # fmt: skip
        return (None if drawn[0][0] is None else float(drawn[0][0])), None
    probability, gammas, weights, comparisons = rows[0]
    names = list(comparisons or [])
    waterfall = [
        {"comparison": names[i] if i < len(names) else f"comparison_{i}", "level": None if g is None else int(g),
         "weight": None if w is None else round(float(w), 3)}
        for i, (g, w) in enumerate(zip(gammas or [], weights or [], strict=False))
    ]  # fmt: skip
    return (None if probability is None else float(probability)), waterfall


def _fields(store: Store, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Each application's :data:`linkage.sample.FIELDS`, by record id."""
    if not ids:
        return {}
    columns = ", ".join(quote(f) for f in FIELDS)
    rows = store.arrow(
        f"SELECT record_id, {columns} FROM applications WHERE record_id IN (SELECT unnest($ids::VARCHAR[]))",
        {"ids": sorted(ids)},
    ).to_pylist()
    return {str(r.pop("record_id")): r for r in rows}


def _shown(value: Any) -> str:
    """A value as the page shows it (None and blanks alike), so that two blanks do not count as a difference."""
    return "" if value is None else str(value).strip()
