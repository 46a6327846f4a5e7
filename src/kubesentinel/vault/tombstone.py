"""What retention leaves behind, as records the vault seals: tombstones, rollups and holds.

Retention never rewrites a sealed segment. It deletes records (event rows, rollup rows) and
appends a **retention segment** to the chain, whose records are:

- one ``tombstone`` per segment it removed records from: which segment, what kind of record
  (``event``, ``rollup``, ``incident``), how many, the sha256 of their *entries*, the counts
  per class, action and reason, the policy files, and, when the segment's last events went,
  the sha256 of its evidence, whose bytes go too;
- one ``rollup`` per workload, rule and hour of the noise it rolled up: the count;
- one ``hold`` per legal hold placed or released (``vault hold``/``vault release``).

An entry is either one removed record, its position in the target segment (8 bytes
big-endian: an event's evidence offset, a rollup's id, an incident's index among the incident
states the segment sealed) and its 32-byte leaf hash; or a **run** of consecutive removed
leaves: the first one's position with the top bit set, the count (4 bytes), and the RFC 6962
subtree hashes that cover the run in the segment's tree (1 byte for how many, 32 bytes each:
``merkle.covering_hashes``, O(log n) of them). A run of a whole segment's 2,048 events costs
a few hundred bytes instead of 80 KiB. Stores pruned before runs existed hold single entries
only, which read as before (their top bit is never set: positions are below 2**63).

A tombstone keeps what the removed leaves hashed to, so ``vault verify`` recomputes the old
segment's Merkle root from what is left plus the tombstoned leaves and subtrees: the signed
chain is never touched, a record deleted without a tombstone still breaks its segment's root,
and a tombstone edited afterwards breaks the retention segment's root (and the checkpoints
after it).
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
    "INCIDENT_KIND",
    "MIN_RUN",
    "ROLLUP_KIND",
    "ROLLUP_RECORD",
    "TOMBSTONE_RECORD",
    "Entry",
    "Run",
    "Slot",
    "compact",
    "covered",
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
INCIDENT_KIND: Final = "incident"  # the incident state its target sealed last went (expired)
POSITION_BYTES: Final = 8
ENTRY_BYTES: Final = POSITION_BYTES + LEAF_BYTES
RUN_FLAG: Final = 1 << 63  # in a position: a run follows, not one leaf
COUNT_BYTES: Final = 4
RUN_BYTES: Final = POSITION_BYTES + COUNT_BYTES + 1  # then its hashes
MIN_RUN: Final = 2  # a run is kept only where it is smaller than single entries
# A retention segment has no evidence: its segment record names no codec and the sha256 of
# nothing.
NO_CODEC: Final = "none"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One removed record: its position in its segment and its leaf hash."""

    position: int
    leaf: bytes


@dataclass(frozen=True, slots=True)
class Run:
    """``count`` consecutive removed leaves from ``position`` on, as the subtree hashes that
    cover them in their segment's tree."""

    position: int
    count: int
    hashes: tuple[bytes, ...]

    @property
    def gap(self) -> merkle.Gap:
        return merkle.Gap(self.count, self.hashes)


def covered(entries: Sequence[Entry | Run]) -> int:
    """How many records the entries stand for."""
    return sum(e.count if isinstance(e, Run) else 1 for e in entries)


def pack_entries(entries: Sequence[Entry | Run]) -> bytes:
    parts = []
    for e in entries:
        if isinstance(e, Run):
            parts.append((e.position | RUN_FLAG).to_bytes(POSITION_BYTES, "big"))
            parts.append(e.count.to_bytes(COUNT_BYTES, "big") + bytes([len(e.hashes)]))
            parts.extend(e.hashes)
        else:
            parts.append(e.position.to_bytes(POSITION_BYTES, "big") + e.leaf)
    return b"".join(parts)


def unpack_entries(blob: bytes) -> Iterator[Entry | Run]:
    """ValueError for a blob that is not whole entries."""
    view = memoryview(blob)
    at, end = 0, len(blob)
    while at < end:
        if end - at < ENTRY_BYTES:
            raise ValueError(f"{end - at} bytes at {at} are not a whole entry")
        position = int.from_bytes(view[at : at + POSITION_BYTES], "big")
        at += POSITION_BYTES
        if not position & RUN_FLAG:
            yield Entry(position, bytes(view[at : at + LEAF_BYTES]))
            at += LEAF_BYTES
            continue
        count = int.from_bytes(view[at : at + COUNT_BYTES], "big")
        n = view[at + COUNT_BYTES]
        at += COUNT_BYTES + 1
        if count < 1 or n < 1 or at + n * LEAF_BYTES > end:
            raise ValueError(f"the run at {at} is cut short or empty")
        hashes = tuple(
            bytes(view[k : k + LEAF_BYTES]) for k in range(at, at + n * LEAF_BYTES, LEAF_BYTES)
        )
        yield Run(position & ~RUN_FLAG, count, hashes)
        at += n * LEAF_BYTES


@dataclass(frozen=True, slots=True)
class Slot:
    """One event place of a segment, in evidence order: a stored event (``leaf`` set when
    it is removed now, None when it stays) or records earlier tombstones removed (``width``)."""

    position: int
    width: int = 1
    leaf: bytes | None = None
    earlier: bool = False


def compact(slots: Sequence[Slot], first_leaf: int, size: int) -> list[Entry | Run]:
    """The entries of the slots removed now: each stretch of them with nothing between
    becomes a Run where that takes fewer bytes than single entries. ``first_leaf``: the index of
    the first slot's leaf in the segment's tree of ``size`` leaves."""
    out: list[Entry | Run] = []
    stretch: list[Slot] = []
    start = index = first_leaf

    def flush() -> None:
        if len(stretch) >= MIN_RUN:
            leaves = [slot.leaf for slot in stretch if slot.leaf is not None]
            hashes = tuple(merkle.covering_hashes(leaves, start, size))
            if RUN_BYTES + LEAF_BYTES * len(hashes) < ENTRY_BYTES * len(stretch):
                out.append(Run(stretch[0].position, len(stretch), hashes))
                stretch.clear()
                return
        out.extend(Entry(slot.position, slot.leaf) for slot in stretch if slot.leaf is not None)
        stretch.clear()

    for slot in slots:
        if slot.leaf is None or slot.earlier:
            flush()
        else:
            if not stretch:
                start = index
            stretch.append(slot)
        index += slot.width
    flush()
    return out


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
