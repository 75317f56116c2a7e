"""Identity ids: minted for new identities, carried over from the last run for the others. The one place ids are made.

An id is ``"ID-"`` and 16 hex digits of the SHA-1 of a cluster's smallest record id (:func:`mint_identity_id`).
A link run then gives each new cluster the id of the old identity it shares most records with
(:func:`carry_over`), so an identity keeps its id through any number of runs unless it merges into another
or splits; every change is an event (created, merged, split, record_added, record_moved).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from linkage.errors import LinkageError
from linkage.graph import IntArray
from linkage.guard import Cut

__all__ = ["carry_over", "label_clusters", "mint_identity_id"]


def mint_identity_id(record_id: Any) -> str:
    """Mint the identity id of a cluster from its smallest record id.

    Sixteen hex digits (64 bits) rather than twelve: ids accumulate across runs, and at 10 million
    identities twelve digits would collide with a probability of about 17 %, sixteen with about 3 in a
    million. :func:`cluster` still checks every run for a collision and refuses to merge on one.

    Args:
        record_id: the smallest record id of the cluster (hashed as ``str(record_id)`` in UTF-8).

    Returns:
        ``"ID-"`` and 16 lowercase hex digits.

    >>> mint_identity_id("a")
    'ID-86f7e437faa5a7fc'
    """
    return "ID-" + hashlib.sha1(str(record_id).encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def label_clusters(ids: NDArray[Any], root: IntArray) -> tuple[NDArray[np.object_], IntArray]:
    """Each record's minted identity id and cluster size; :func:`carry_over` then keeps the old ids it can.

    ``ids`` are the record ids in sorted order and ``root[k]`` the smallest rank in record ``k``'s cluster.
    """
    anchors = np.flatnonzero(root == np.arange(len(root)))  # each cluster's smallest record
    minted = [mint_identity_id(x) for x in ids[anchors].tolist()]
    if len(set(minted)) != len(minted):  # 64 bits: about 3e-8 at a million identities, but never silently
        raise LinkageError("two clusters minted the same identity id; refusing to merge them silently")
    number = np.empty(len(root), dtype=np.int64)
    number[anchors] = np.arange(len(anchors))
    identity = np.array(minted, dtype=object)[number[root]]
    size = np.bincount(root, minlength=len(root))[root]
    return identity, np.asarray(size, dtype=np.int64)


def carry_over(
    clusters: pd.DataFrame,
    old: pd.DataFrame,
    taken: Callable[[list[str]], set[str]],
    run_id: str,
    *,
    cuts: Sequence[Cut] = (),
    new: set[str] | frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each new cluster the id of the old identity it overlaps most, and list the identity changes.

    Args:
        clusters: ``record_id, identity_id`` as :func:`linkage.cluster.cluster` minted them (a label per cluster).
        old: ``record_id, identity_id`` of the records that had an identity before this run.
        taken: which of the given ids were ever used (a minted id that was is minted again with the run id).
        run_id: this run.
        cuts: the edges the guard cut (:class:`linkage.guard.Cut`), for the reasons of splits.
        new: the records linked for the first time (or again after a change) in this run.

    Returns:
        ``(assigned, events)``: ``record_id, identity_id`` for every clustered record, and one row per
        event (``kind, identity_id, other_identity_id, record_id, other_record_id, probability, reason``).

    Overlaps are taken largest first; among equal overlaps the smaller old id, then the cluster of the
    smaller record id, wins; an old id goes to one cluster only. A cluster that receives no old id gets
    its minted id. Events: ``created`` (a cluster of records none of which had an identity), ``merged``
    (an old identity whose records went to a cluster with another id and that lost its id), ``split`` (an
    old identity that kept its id but lost records to another cluster), ``record_moved``, ``record_added``.
    """
    # Everything on integer codes: strings sorted and grouped by pandas run in Python (75 s at 1M records).
    records = clusters["record_id"].to_numpy(dtype=object)
    rec_code, rec_values = pd.factorize(records, sort=True)  # code order is record-id order
    lab_code, lab_values = pd.factorize(clusters["identity_id"].to_numpy(dtype=object))
    old_of = pd.Series(old["identity_id"].to_numpy(dtype=object), index=old["record_id"].to_numpy(dtype=object))
    old_ids = pd.Series(records).map(old_of).to_numpy(dtype=object)
    old_code, old_values = pd.factorize(old_ids, sort=True)  # -1: no old identity; code order is id order
    n_lab, n_old = len(lab_values), max(len(old_values), 1)
    first = np.full(n_lab, len(rec_values), dtype=np.int64)  # each cluster's smallest record
    np.minimum.at(first, lab_code, rec_code)
    had = old_code >= 0
    pair, size = np.unique(lab_code[had].astype(np.int64) * n_old + old_code[had], return_counts=True)
    o_lab, o_old = pair // n_old, pair % n_old
    order = np.lexsort((first[o_lab], o_old, -size))  # largest overlap, then smaller old id, then record
    o_lab, o_old = o_lab[order], o_old[order]
    final = np.full(n_lab, -1, dtype=np.int64)  # old code given to each cluster
    # an overlap whose cluster and old id occur in no other overlap cannot be contested: given at once
    alone = (np.bincount(o_lab, minlength=n_lab)[o_lab] == 1) & (np.bincount(o_old, minlength=n_old)[o_old] == 1)
    final[o_lab[alone]] = o_old[alone]
    used = np.zeros(len(old_values), dtype=bool)
    used[o_old[alone]] = True
    for lab, old_id in zip(o_lab[~alone].tolist(), o_old[~alone].tolist(), strict=True):
        if final[lab] < 0 and not used[old_id]:
            final[lab] = old_id
            used[old_id] = True
    ids = np.empty(n_lab, dtype=object)
    kept = final >= 0
    ids[kept] = old_values[final[kept]]
    fresh = np.flatnonzero(~kept)
    clash = taken(lab_values[fresh].tolist()) | set(old_values[used].tolist())
    for k in fresh.tolist():
        label = lab_values[k]
        ids[k] = label if label not in clash else mint_identity_id(f"{rec_values[first[k]]}:{run_id}")
    identity = ids[lab_code]
    assigned = pd.DataFrame({"record_id": records, "identity_id": identity})

    events: list[tuple[Any, ...]] = []
    had_old = np.zeros(n_lab, dtype=bool)
    had_old[o_lab] = True
    with_new = set(lab_code[pd.Series(records).isin(list(new)).to_numpy()].tolist()) if new else set()
    cut_reasons: dict[str, set[str]] = {}
    for c in cuts:
        owner = old_of.get(c.record_id_l)
        if isinstance(owner, str):
            cut_reasons.setdefault(owner, set()).add(c.reason)
    for k in np.flatnonzero(~had_old).tolist():
        events.append(("created", ids[k], None, rec_values[first[k]], None, None, "new applications"))
    for lab, old_id in zip(o_lab.tolist(), o_old.tolist(), strict=True):
        target, before = ids[lab], old_values[old_id]
        if before == target:
            continue
        if used[old_id]:  # the old identity lives on elsewhere: it lost these records
            why = "; ".join(sorted(cut_reasons.get(before, set()))) or "no longer joined by pairs at the threshold"
            events.append(("split", before, target, None, None, None, why))
        else:
            through = "through new applications" if lab in with_new else "by pairs at the threshold"
            events.append(("merged", target, before, None, None, None, f"joined {through}"))
    moved = np.flatnonzero(had & (old_ids != identity))
    for k in moved.tolist():
        events.append(("record_moved", identity[k], old_ids[k], records[k], None, None, "its identity merged or split"))
    for k in np.flatnonzero(~had & had_old[lab_code]).tolist():
        events.append(("record_added", identity[k], None, records[k], None, None, "linked to an existing identity"))
    columns = ["kind", "identity_id", "other_identity_id", "record_id", "other_record_id", "probability", "reason"]
    table = pd.DataFrame(events, columns=columns)
    table["probability"] = table["probability"].astype("float64")
    for column in columns:
        if column != "probability":
            table[column] = table[column].astype("object")
    return assigned, table
