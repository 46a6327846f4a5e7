"""What retention leaves behind, as records the vault seals: tombstones, rollups and holds.

Retention never rewrites a sealed segment. It deletes records (event rows, rollup rows) and
appends a **retention segment** to the chain, whose records are:

- one ``tombstone`` per segment it removed records from: which segment, what kind of record,
  how many, the sha256 of their *entries* (each removed record's position in that segment,
  8 bytes big-endian: an event's evidence offset or a rollup's id, then its 32-byte leaf
  hash), the counts per class, action and reason, the policy files, and, when the segment's
  last events went, the sha256 of its evidence, whose bytes go too;
- one ``rollup`` per workload, rule and hour of the noise it rolled up: the count;
- one ``hold`` per legal hold placed or released (``vault hold``/``vault release``).

A tombstone keeps the removed records' leaf hashes, so ``vault verify`` recomputes the old
segment's Merkle root from what is left plus the tombstoned leaves: the signed chain is never
touched, a record deleted without a tombstone still breaks its segment's root, and a tombstone
edited afterwards breaks the retention segment's root (and the checkpoints after it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubesentinel.vault import merkle
from kubesentinel.vault.ledger import LEAF_BYTES
from kubesentinel.vault.record import chain_head, record_hash

__all__ = [
    "ENTRY_BYTES",
    "EVENT_KIND",
    "HOLD_RECORD",
    "ROLLUP_KIND",
    "ROLLUP_RECORD",
    "TOMBSTONE_RECORD",
    "Entry",
    "hold_leaf",
    "pack_entries",
    "retention_seal",
    "rollup_leaf",
    "tombstone_leaf",
    "unpack_entries",
]

TOMBSTONE_RECORD: Final = "tombstone"
ROLLUP_RECORD: Final = "rollup"
HOLD_RECORD: Final = "hold"
EVENT_KIND: Final = "event"  # a tombstone's kind: event rows of its target segment went
ROLLUP_KIND: Final = "rollup"  # rollup rows its target (a retention segment) sealed went
POSITION_BYTES: Final = 8
ENTRY_BYTES: Final = POSITION_BYTES + LEAF_BYTES
# A retention segment has no evidence: its segment record names no codec and the sha256 of
# nothing.
NO_CODEC: Final = "none"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One removed record: its position in its segment and its leaf hash."""

    position: int
    leaf: bytes


def pack_entries(entries: Sequence[Entry]) -> bytes:
    return b"".join(e.position.to_bytes(POSITION_BYTES, "big") + e.leaf for e in entries)


def unpack_entries(blob: bytes) -> Iterator[Entry]:
    """ValueError for a blob that is not whole entries."""
    if len(blob) % ENTRY_BYTES:
        raise ValueError(f"{len(blob)} bytes is not a whole number of {ENTRY_BYTES}-byte entries")
    view = memoryview(blob)
    for at in range(0, len(blob), ENTRY_BYTES):
        position = int.from_bytes(view[at : at + POSITION_BYTES], "big")
        yield Entry(position, bytes(view[at + POSITION_BYTES : at + ENTRY_BYTES]))


def tombstone_leaf(row: Sequence[Any]) -> bytes:
    """(id, segment, target, kind, removed, entries_sha256, reasons, policy, evidence,
    written_ns): the tombstones row without its entries, which the sha256 covers."""
    return record_hash(TOMBSTONE_RECORD, row)


def rollup_leaf(row: Sequence[Any]) -> bytes:
    """(id, segment, hour_ns, cluster, namespace, kind, name, rule, class, count, first_ns,
    last_ns)."""
    return record_hash(ROLLUP_RECORD, row)


def hold_leaf(row: Sequence[Any]) -> bytes:
    """(id, segment, incident_id, action, reason, written_ns)."""
    return record_hash(HOLD_RECORD, row)


@dataclass(frozen=True, slots=True)
class RetentionSeal:
    record: tuple[Any, ...]  # the segment record
    root: bytes
    head: bytes
    record_count: int


def retention_seal(  # noqa: PLR0917 - the parts of one retention segment, in sealing order
    segment_id: int,
    written_ns: int,
    previous_head: bytes,
    tombstones: Sequence[Sequence[Any]],
    rollups: Sequence[Sequence[Any]],
    holds: Sequence[Sequence[Any]],
) -> RetentionSeal:
    """The seal of a retention segment: its segment record (no events, no evidence), then its
    tombstones, rollups and holds, each in id order, as ``verify`` reads them back."""
    from kubesentinel.vault.ledger import segment_leaf

    record = (segment_id, written_ns, 0, 0, 0, NO_CODEC, EMPTY_SHA256)
    leaves = [
        segment_leaf(record),
        *map(tombstone_leaf, tombstones),
        *map(rollup_leaf, rollups),
        *map(hold_leaf, holds),
    ]
    root = merkle.root(leaves)
    head = chain_head(previous_head, root, segment_id, len(leaves))
    return RetentionSeal(record, root, head, len(leaves))
