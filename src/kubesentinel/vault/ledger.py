"""What the vault proves about each write: its records' hashes, their Merkle root, the chain.

Every write of the monitor is one **segment**: the evidence bytes of its events (kept as
received, compressed) and three kinds of records, hashed in this order into the segment's
Merkle tree (RFC 6962):

1. the segment record: id, write time, event count, evidence and sidecar sizes, codec, sha256
   of the uncompressed bytes (so evidence re-hashed after an edit no longer matches);
2. one ``facet`` record per facet row the write added (what its events share: rule, workload,
   container...), by id;
3. one ``event`` record per event row, in evidence order: every column, the id as text;
4. one ``incident`` record per incident state the write upserted, in write order: every
   column, the segment that wrote it (an older state put back is found out) and its seq.

Each segment's head chains it to the one before (``record.chain_head``): a removed, inserted
or reordered segment breaks the chain; checkpoints sign heads (``checkpoint``).
The column orders below are the store's (``runtime/store/sqlite.py``); a record is hashed from
the values exactly as stored, so a verifier recomputes it from a plain read of the row.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kubesentinel.vault import merkle
from kubesentinel.vault.record import chain_head, record_hash

__all__ = [
    "EVENT_RECORD",
    "FACET_RECORD",
    "GENESIS_HEAD",
    "INCIDENT_RECORD",
    "LEAF_BYTES",
    "SEGMENT_RECORD",
    "Seal",
    "event_leaf",
    "event_leaves",
    "facet_leaf",
    "incident_leaf",
    "seal",
    "segment_leaf",
]

SEGMENT_RECORD: Final = "segment"
FACET_RECORD: Final = "facet"
EVENT_RECORD: Final = "event"
INCIDENT_RECORD: Final = "incident"
LEAF_BYTES: Final = 32
# The head "before" the first segment: a store starts its chain from nothing.
GENESIS_HEAD: Final = bytes(LEAF_BYTES)


@dataclass(frozen=True, slots=True)
class Seal:
    """What a segment row keeps so the segment can be proven later."""

    root: bytes
    head: bytes
    record_count: int
    incident_ids: list[str]  # the incidents this write upserted, in leaf order
    incident_leaves: bytes  # their record hashes, 32 bytes each: older states stay provable


def segment_leaf(segment: Sequence[Any]) -> bytes:
    """(id, written_ns, event_count, raw_bytes, sidecar_bytes, codec, sha256 hex)."""
    return record_hash(SEGMENT_RECORD, segment)


def facet_leaf(row: Sequence[Any]) -> bytes:
    """A facets row: id, the segment that added it, then its columns in the store's order."""
    return record_hash(FACET_RECORD, row)


def event_leaf(row: Sequence[Any]) -> bytes:
    """An events row, every column in the store's order, the id as text."""
    return record_hash(EVENT_RECORD, row)


_LEAF_PREFIX: Final = hashlib.sha256(b"\x00")  # merkle.leaf_hash's, copied per leaf


def event_leaves(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """``event_leaf`` of each row, in bulk: the writer and verify hash one per event.

    Rows of integers, None and text (every row the store writes) take a fast path whose bytes
    are ``canonical_bytes``' own; anything else (a float or a big integer put in by hand)
    takes ``event_leaf``, which refuses what JSON cannot say exactly.
    """
    if float in set(map(type, itertools.chain.from_iterable(rows))):
        return [event_leaf(row) for row in rows]
    prefix, dumps = _LEAF_PREFIX.copy, orjson.dumps
    leaves = []
    try:
        for row in rows:
            leaf = prefix()
            leaf.update(dumps((EVENT_RECORD, *row)))
            leaves.append(leaf.digest())
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        return [event_leaf(row) for row in rows]
    return leaves


def incident_leaf(row: Sequence[Any]) -> bytes:
    """An incidents row, every column in the store's order, then its segment and seq."""
    return record_hash(INCIDENT_RECORD, row)


def seal(
    previous_head: bytes,
    segment: Sequence[Any],
    facet_rows: Sequence[Sequence[Any]],
    event_rows: Sequence[Sequence[Any]],
    incident_rows: Sequence[Sequence[Any]],
) -> Seal:
    """The seal of a segment (``segment`` as ``segment_leaf`` takes it, its id first)."""
    incident_leaves = [incident_leaf(row) for row in incident_rows]
    leaves = [
        segment_leaf(segment),
        *map(facet_leaf, facet_rows),
        *event_leaves(event_rows),
        *incident_leaves,
    ]
    root = merkle.root(leaves)
    segment_id = int(segment[0])
    return Seal(
        root=root,
        head=chain_head(previous_head, root, segment_id, len(leaves)),
        record_count=len(leaves),
        incident_ids=[str(row[0]) for row in incident_rows],
        incident_leaves=b"".join(incident_leaves),
    )
