"""``vault verify``: recompute every record hash, segment root, chain head and checkpoint.

The verifier reads a store through ``LedgerReader`` (one pass over segments and event rows,
both in write order, so memory stays flat however large the store is) and reports problems
naming the segment, event or incident first found wrong. It never trusts a stored hash it can
recompute: roots come from the rows, heads from the roots, and checkpoints from the key.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kubesentinel.errors import CheckpointError
from kubesentinel.runtime.store import codec
from kubesentinel.vault import merkle
from kubesentinel.vault.checkpoint import Checkpoint
from kubesentinel.vault.ledger import (
    GENESIS_HEAD,
    LEAF_BYTES,
    event_leaf,
    event_leaves,
    facet_leaf,
    incident_leaf,
    segment_leaf,
)
from kubesentinel.vault.record import chain_head
from kubesentinel.vault.tombstone import Entry, Run
from kubesentinel.vault.verify_retention import Removed, RetentionCheck, RetentionRows, merge_leaves

__all__ = ["LedgerReader", "Problem", "SegmentRow", "VaultMeta", "VerifyReport", "verify"]

# Positions in the rows a LedgerReader yields (the store's column order, segment id last).
EVENT_ID, EVENT_SEGMENT, EVENT_OFFSET, EVENT_LENGTH = 1, 5, 6, 7
FACET_ID, FACET_SEGMENT = 0, 1
INCIDENT_SEGMENT: Final = 20
MAX_LISTED: Final = 20  # problems listed one by one; the rest are counted


@dataclass(frozen=True, slots=True)
class VaultMeta:
    store_id: str
    origin: str  # the checkpoints' origin line
    public_key: bytes  # raw Ed25519 public key the store was sealed with
    created_ns: int
    sealed_from_ns: int  # when sealing began (an upgraded store: the upgrade)
    upgraded_from: int | None  # the schema version an upgrade sealed, None for a new store


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    written_ns: int
    event_count: int
    raw_bytes: int
    sidecar_bytes: int
    codec: str
    sha256: str
    data: bytes
    incident_ids: list[str]
    incident_leaves: bytes
    record_count: int
    root: bytes
    head: bytes

    @property
    def record(self) -> tuple[Any, ...]:
        return (self.id, self.written_ns, self.event_count, self.raw_bytes, self.sidecar_bytes,
                self.codec, self.sha256)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    id: int
    segment_id: int
    note: str


class LedgerReader(Protocol):
    def meta(self) -> VaultMeta: ...

    def segments(self) -> Iterator[SegmentRow]:
        """Every segment, by id."""
        ...

    def facet_rows(self) -> Iterator[Sequence[Any]]:
        """Every facet row (id, segment, columns), by id."""
        ...

    def event_rows(self) -> Iterator[Sequence[Any]]:
        """Every event row (its record: the id as text) in write order."""
        ...

    def incident_rows(self) -> Iterator[Sequence[Any]]:
        """Every incident row, the segment that wrote its current state last."""
        ...

    def checkpoints(self) -> Iterator[CheckpointRow]:
        """Every checkpoint, by id."""
        ...

    def retention(self) -> RetentionRows:
        """Retention's tombstones, rollups and holds (verify_retention)."""
        ...


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "segment 12", "event abc... (segment 12)", "incident inc-...", "checkpoint 3"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    segments: int = 0
    checked_segments: int = 0  # whose records were re-hashed (all, unless verify(only=...))
    records: int = 0
    facets: int = 0
    events: int = 0
    incidents: int = 0
    checkpoints: int = 0
    last_checkpoint_segment: int | None = None
    last_segment: int | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)
    tombstones: int = 0
    removed_records: int = 0  # event rows retention removed, each tombstoned
    removed_incidents: int = 0  # incidents retention expired, each tombstoned

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def unsigned_segments(self) -> int:
        """Segments after the last checkpoint: chained, not yet signed."""
        if self.last_segment is None:
            return 0
        return self.last_segment - (self.last_checkpoint_segment or 0)

    def add(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(where, what))


def verify(
    reader: LedgerReader, checkpoint_key: CheckpointKey, *, only: Collection[int] | None = None
) -> VerifyReport:
    """Check everything the reader holds; ``checkpoint_key`` verifies the checkpoint notes.

    ``only``: recompute the records of these segments alone, for a command that reads a few
    (``incidents show``); the reader then gives their rows and the incidents asked about. The
    chain, its checkpoints and which segment last wrote each incident are checked whole: they
    cost one small row per segment.
    """
    report = VerifyReport()
    meta = reader.meta()
    # Checkpoints first (far fewer than segments): the heads they sign are all the segment
    # pass must remember.
    signed = _read_checkpoints(reader.checkpoints(), meta, checkpoint_key, report)
    signed_ids = {entry.checkpoint.size for entry in signed}
    heads: dict[int, tuple[bytes, int]] = {}  # segment id -> (head, records up to it)
    sealed_records = 0
    latest_incident: dict[str, tuple[int, bytes]] = {}
    tombstoned: dict[str, tuple[int, bytes]] = {}  # incidents retention removed lawfully
    events = _Lookahead(_by_segment(reader.event_rows()))
    facets = _Lookahead(reader.facet_rows())
    previous_head = GENESIS_HEAD
    previous_id = 0
    retention = RetentionCheck(reader.retention())
    for segment in reader.segments():
        report.segments += 1
        report.last_segment = segment.id
        where = f"segment {segment.id}"
        if segment.id <= previous_id:
            report.add(where, f"out of order (after segment {previous_id})")
        elif segment.id > previous_id + 1:
            gap = previous_id + 1
            span = f"segment {gap}" if segment.id == gap + 1 else f"segments {gap}-{segment.id - 1}"
            report.add(span, "missing: removed")
        removed = retention.removed(segment.id, report)  # lawful deletions (tombstones)
        incident_leaves = _incident_leaves(segment, report)
        for incident_id, leaf in incident_leaves:
            latest_incident[incident_id] = (segment.id, leaf)
        _tombstoned_incidents(segment, incident_leaves, removed, tombstoned, report)
        if only is None or segment.id in only:
            report.checked_segments += 1
            parts: list[bytes | merkle.Gap] = [_hashed(segment_leaf, segment.record, where, report)]
            _check_evidence(segment, report, removed)
            parts.extend(_facet_leaves(segment, facets, report))
            parts.extend(_event_leaves(segment, events, report, removed))
            parts.extend(leaf for _, leaf in incident_leaves)
            parts.extend(retention.sealed_leaves(segment.id, removed, report))
            _check_root(segment, parts, report)
        else:
            retention.sealed_leaves(segment.id, removed, report)  # keeps its readers in step
        if _head(previous_head, segment) != segment.head:
            report.add(
                where,
                f"breaks the hash chain after segment {previous_id or 'start'}: a segment was "
                "removed, inserted or reordered, or its seal was changed",
            )
        sealed_records += segment.record_count
        if segment.id in signed_ids:
            heads[segment.id] = (segment.head, sealed_records)
        previous_head, previous_id = segment.head, segment.id
    for _, run in events.rest():
        for row in run:
            report.add(_event_where(row), "belongs to no segment: inserted or moved")
    for row in facets.rest():
        report.add(f"facet {row[FACET_ID]}", f"names segment {row[FACET_SEGMENT]}, which does "
                   "not seal it: inserted or moved")  # fmt: skip
    retention.finish(report)
    report.tombstones = retention.tombstones
    _check_incidents(
        reader.incident_rows(), latest_incident, tombstoned, report, every=only is None
    )
    _match_checkpoints(signed, heads, report)
    return report


class CheckpointKey(Protocol):
    def check(self, note: str, origin: str) -> Checkpoint:
        """The checkpoint a note holds once its signature verifies; CheckpointError naming
        what is wrong otherwise."""
        ...

    def note_hash(self, note: str) -> bytes: ...


def _check_evidence(segment: SegmentRow, report: VerifyReport, removed: Removed) -> None:
    where = f"segment {segment.id}"
    if removed.evidence is not None:  # a tombstone says its bytes went with its last events
        if removed.evidence != segment.sha256:
            report.add(where, "a tombstone removed evidence of another sha256: altered")
        return
    try:
        evidence = codec.decompress(
            segment.data, segment.codec, segment.raw_bytes + segment.sidecar_bytes
        )
    except codec.CodecError as exc:
        report.add(where, f"its evidence cannot be read: {exc}")
        return
    if hashlib.sha256(evidence).hexdigest() != segment.sha256:
        report.add(where, "its evidence does not match its sha256: altered or corrupt")


def _facet_leaves(segment: SegmentRow, facets: _Lookahead, report: VerifyReport) -> Iterator[bytes]:
    """The leaves of the facet rows the segment added (they are sealed where first used)."""
    while (row := facets.peek()) is not None and row[FACET_SEGMENT] <= segment.id:
        facets.take()
        if row[FACET_SEGMENT] != segment.id:
            report.add(f"facet {row[FACET_ID]}", f"found among segment {segment.id}'s "
                       "facets: its segment is missing, or it was inserted or moved")  # fmt: skip
            continue
        report.facets += 1
        yield _hashed(facet_leaf, row, f"facet {row[FACET_ID]}", report)


def _by_segment(rows: Iterator[Sequence[Any]]) -> Iterator[tuple[Any, list[Sequence[Any]]]]:
    """Runs of consecutive rows naming the same segment, as (segment, rows)."""
    for segment, run in itertools.groupby(rows, key=operator.itemgetter(EVENT_SEGMENT)):
        yield segment, list(run)


def _check_root(
    segment: SegmentRow, parts: Sequence[bytes | merkle.Gap], report: VerifyReport
) -> None:
    count = sum(part.count if isinstance(part, merkle.Gap) else 1 for part in parts)
    report.records += count
    if count != segment.record_count or _root(parts) != segment.root:
        report.add(f"segment {segment.id}", "its records do not match its Merkle root: a "
                   "record of it was changed, added or removed")  # fmt: skip


def _tombstoned_incidents(
    segment: SegmentRow,
    incident_leaves: list[tuple[str, bytes]],
    removed: Removed,
    tombstoned: dict[str, tuple[int, bytes]],
    report: VerifyReport,
) -> None:
    """Incident states tombstones say retention removed: each must be a state the segment
    sealed, leaf for leaf (its id comes from the segment, not from the tombstone)."""
    for tombstone_id, entry in removed.incidents:
        where = f"tombstone {tombstone_id}"
        if not 0 <= entry.position < len(incident_leaves):
            report.add(where, f"names incident state {entry.position} of segment {segment.id}, "
                       f"which sealed {len(incident_leaves)}: altered")  # fmt: skip
            continue
        incident_id, leaf = incident_leaves[entry.position]
        if entry.leaf != leaf:
            report.add(where, f"removes incident {incident_id} with a record segment "
                       f"{segment.id} did not seal: altered")  # fmt: skip
            continue
        tombstoned[incident_id] = (segment.id, leaf)


def _root(parts: Sequence[bytes | merkle.Gap]) -> bytes | None:
    """The root of the leaves and tombstoned runs; None when a run's hashes cannot be
    placed (its tombstone was altered: the mismatch is reported)."""
    try:
        return merkle.root_of_parts(parts)
    except ValueError:
        return None


def _event_leaves(
    segment: SegmentRow, events: _Lookahead, report: VerifyReport, removed: Removed
) -> Sequence[bytes | merkle.Gap]:
    """The leaves of the segment's event rows, checking their order and bounds, with the
    leaves of rows retention removed put back in their places (by evidence offset)."""
    rows: list[Sequence[Any]] = []
    while (run := events.peek()) is not None:
        if type(run[0]) is int and run[0] > segment.id:
            break  # a later segment's (a segment that is not a number is no segment's)
        events.take()
        if run[0] == segment.id:
            rows.extend(run[1])
            continue
        for row in run[1]:
            report.add(_event_where(row), f"found among segment {segment.id}'s events: its "
                       "segment is missing, or it was inserted, moved or reordered")  # fmt: skip
    _check_places(rows, segment.raw_bytes, report)
    report.events += len(rows)
    gone = removed.event_count
    report.removed_records += gone
    if len(rows) + gone != segment.event_count:
        tombstoned = f" and {gone} tombstoned" if gone else ""
        report.add(f"segment {segment.id}", f"holds {len(rows)} event rows{tombstoned}, sealed "
                   f"with {segment.event_count}: rows were deleted or inserted")  # fmt: skip
    try:
        leaves = event_leaves(rows)
    except (TypeError, ValueError):  # a value JSON cannot say: find it, hash the rest
        leaves = [_leaf_or_report(row, report) for row in rows]
    if not gone:
        return leaves
    present: list[Entry | Run] = [
        Entry(_position(row), leaf) for row, leaf in zip(rows, leaves, strict=True)
    ]
    return merge_leaves(present, removed.events, report, f"segment {segment.id}")


def _position(row: Sequence[Any]) -> int:
    offset = row[EVENT_OFFSET]
    return offset if type(offset) is int else -1  # reported by _check_places


def _check_places(rows: list[Sequence[Any]], raw_bytes: int, report: VerifyReport) -> None:
    """Rows point into the evidence in order and within it."""
    end = 0
    for row in rows:
        offset, length = row[EVENT_OFFSET], row[EVENT_LENGTH]
        try:
            if offset < end:
                report.add(_event_where(row), "out of order within its segment: reordered or "
                           "inserted")  # fmt: skip
            end = offset + length
            if end > raw_bytes:
                report.add(_event_where(row), "points past its segment's evidence")
        except TypeError:  # not numbers: no writer stores that
            report.add(_event_where(row), "its offset or length is not a number: altered")


def _leaf_or_report(row: Sequence[Any], report: VerifyReport) -> bytes:
    return _hashed(event_leaf, row, _event_where(row), report)


def _hashed(
    leaf_of: Callable[[Sequence[Any]], bytes],
    row: Sequence[Any],
    where: str,
    report: VerifyReport,
) -> bytes:
    """The row's leaf; a row holding what JSON cannot say is reported and hashes to zeros."""
    try:
        return leaf_of(row)
    except (TypeError, ValueError) as exc:
        report.add(where, f"holds a value no writer stores ({exc}): altered")
        return bytes(LEAF_BYTES)


def _incident_leaves(segment: SegmentRow, report: VerifyReport) -> list[tuple[str, bytes]]:
    leaves = segment.incident_leaves
    ids = segment.incident_ids
    if len(leaves) != LEAF_BYTES * len(ids):
        report.add(f"segment {segment.id}", "its incident record list is damaged")
        return []
    return [(incident_id, leaves[n * LEAF_BYTES : (n + 1) * LEAF_BYTES])
            for n, incident_id in enumerate(ids)]  # fmt: skip


def _check_incidents(
    rows: Iterable[Sequence[Any]],
    latest: dict[str, tuple[int, bytes]],
    tombstoned: dict[str, tuple[int, bytes]],
    report: VerifyReport,
    *,
    every: bool,
) -> None:
    """The incident rows against the states their segments sealed; ``every``: the rows are
    all of them, so a sealed state without a row was deleted, unless a tombstone removed
    that very state (an expired incident)."""
    for row in rows:
        report.incidents += 1
        incident_id = str(row[0])
        where = f"incident {incident_id}"
        sealed = latest.pop(incident_id, None)
        if sealed is None:
            report.add(where, "was never written by a sealed segment: inserted")
            continue
        segment_id, leaf = sealed
        if tombstoned.get(incident_id) == sealed:
            report.add(where, f"was removed by retention (the state segment {segment_id} "
                       "wrote is tombstoned) but is present: put back")  # fmt: skip
        elif row[INCIDENT_SEGMENT] != segment_id:
            report.add(where, f"is not the state segment {segment_id} last wrote: an older "
                       "state was put back, or it was moved")  # fmt: skip
        elif _hashed(incident_leaf, row, where, report) != leaf:
            report.add(where, f"was changed after segment {segment_id} wrote it")
    for incident_id, sealed in latest.items() if every else ():
        if tombstoned.get(incident_id) == sealed:
            report.removed_incidents += 1
        else:
            report.add(f"incident {incident_id}", f"written by segment {sealed[0]}, is "
                       "missing: deleted")  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Signed:
    row: CheckpointRow
    checkpoint: Checkpoint  # verified


def _read_checkpoints(
    rows: Iterable[CheckpointRow], meta: VaultMeta, key: CheckpointKey, report: VerifyReport
) -> list[_Signed]:
    """Check each checkpoint's signature and its link to the one before."""
    signed: list[_Signed] = []
    previous: bytes | None = None
    for row in rows:
        report.checkpoints += 1
        where = f"checkpoint {row.id}"
        try:
            checkpoint = key.check(row.note, meta.origin)
        except CheckpointError as exc:
            report.add(where, f"not valid: {exc.message}")
            previous = None
            continue
        size = checkpoint.size
        if size != row.segment_id:
            report.add(where, f"signs segment {size}, filed under segment {row.segment_id}")
        if checkpoint.previous != previous:
            report.add(where, "does not link to the checkpoint before it: a checkpoint was "
                       "removed, inserted or forged")  # fmt: skip
        previous = key.note_hash(row.note)
        signed.append(_Signed(row, checkpoint))
        report.last_checkpoint_segment = size
    return signed


def _match_checkpoints(
    signed: list[_Signed], heads: dict[int, tuple[bytes, int]], report: VerifyReport
) -> None:
    """Each checkpoint against the segment it signs: its head and the records up to it."""
    for entry in signed:
        where = f"checkpoint {entry.row.id}"
        checkpoint = entry.checkpoint
        size = checkpoint.size
        sealed = heads.get(size)
        if sealed is None:
            report.add(where, f"signs segment {size}, which is missing")
        elif sealed[0] != checkpoint.root_hash:
            report.add(where, f"does not match segment {size}: the chain up to it was changed")
        elif sealed[1] != checkpoint.record_count:
            report.add(where, f"signs {checkpoint.record_count} records up to segment {size}, "
                       f"the store holds {sealed[1]}")  # fmt: skip


def _head(previous_head: bytes, segment: SegmentRow) -> bytes | None:
    """The head the segment's seal should hold; None for a seal too damaged to chain."""
    try:
        return chain_head(previous_head, segment.root, segment.id, segment.record_count)
    except ValueError:  # a root of the wrong size, a negative count
        return None


def _event_where(row: Sequence[Any]) -> str:
    return f"event {row[EVENT_ID]} (segment {row[EVENT_SEGMENT]})"


class _Lookahead:
    """An iterator one can peek at."""

    def __init__(self, rows: Iterator[Sequence[Any]]) -> None:
        self._rows = rows
        self._next: Sequence[Any] | None = next(rows, None)

    def peek(self) -> Sequence[Any] | None:
        return self._next

    def take(self) -> None:
        self._next = next(self._rows, None)

    def rest(self) -> Iterator[Sequence[Any]]:
        while self._next is not None:
            yield self._next
            self.take()
