"""``vault verify`` after retention: put tombstoned leaves back, and seal retention's records.

``verify`` walks segments in order. For each one, ``RetentionCheck.removed`` gives what
tombstones say went from it (event leaves by evidence offset, rollup leaves by rollup id, and
its evidence digest when its bytes went too), which verify merges with the rows still there
to recompute the segment's original Merkle root; ``sealed_leaves`` gives the leaves of the
tombstones, rollups and holds the segment itself sealed. Each query is walked once, in order,
so memory stays flat (one segment's removals at a time).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kubesentinel.vault.merkle import Gap
from kubesentinel.vault.tombstone import (
    EVENT_KIND,
    INCIDENT_KIND,
    ROLLUP_KIND,
    Entry,
    Run,
    covered,
    hold_leaf,
    rollup_leaf,
    tombstone_leaf,
    unpack_entries,
)

__all__ = ["Removed", "RetentionCheck", "RetentionRows", "merge_leaves"]

# Positions in the rows RetentionRows yields.
ROW_ID, ROW_SEGMENT = 0, 1
TOMBSTONE_SHA, TOMBSTONE_REMOVED, TOMBSTONE_ENTRIES = 5, 4, 10
ROLLUP_ID: Final = 0


class Report(Protocol):
    def add(self, where: str, what: str) -> None: ...


class RetentionRows(Protocol):
    def tombstones(self) -> Iterator[Sequence[Any]]:
        """Every tombstone row (its record, then its entries blob), by segment and id."""
        ...

    def removals(self) -> Iterator[Sequence[Any]]:
        """(target, kind, evidence, entries, id) of every tombstone, by target and id."""
        ...

    def rollups(self) -> Iterator[Sequence[Any]]:
        """Every rollup row (its record), by segment and id."""
        ...

    def holds(self) -> Iterator[Sequence[Any]]:
        """Every hold row (its record), by segment and id."""
        ...


@dataclass(slots=True)
class Removed:
    """What tombstones say went from one segment."""

    events: list[Entry | Run] = field(default_factory=list)
    rollups: list[Entry | Run] = field(default_factory=list)
    incidents: list[tuple[int, Entry]] = field(default_factory=list)  # (tombstone id, entry)
    evidence: str | None = None  # its evidence sha256, when its bytes went

    @property
    def event_count(self) -> int:
        return covered(self.events)


class _Ahead:
    def __init__(self, rows: Iterator[Sequence[Any]], key: int) -> None:
        self._rows = rows
        self._key = key
        self.next: Sequence[Any] | None = next(rows, None)

    def take_until(self, segment_id: int) -> Iterator[Sequence[Any]]:
        """Rows whose key is at most ``segment_id``, in order."""
        while self.next is not None and _int(self.next[self._key]) <= segment_id:
            row = self.next
            self.next = next(self._rows, None)
            yield row

    def rest(self) -> Iterator[Sequence[Any]]:
        while self.next is not None:
            row = self.next
            self.next = next(self._rows, None)
            yield row


def _int(value: Any) -> int:
    return value if type(value) is int else -1  # a damaged key sorts first and is reported


class RetentionCheck:
    def __init__(self, rows: RetentionRows) -> None:
        self._removals = _Ahead(rows.removals(), 0)
        self._tombstones = _Ahead(rows.tombstones(), ROW_SEGMENT)
        self._rollups = _Ahead(rows.rollups(), ROW_SEGMENT)
        self._holds = _Ahead(rows.holds(), ROW_SEGMENT)
        self.tombstones = 0
        self.rollups = 0
        self.holds = 0

    def removed(self, segment_id: int, report: Report) -> Removed:
        removed = Removed()
        for target, kind, evidence, entries, tombstone_id in self._removals.take_until(segment_id):
            where = f"tombstone {tombstone_id}"
            if target != segment_id:
                report.add(where, f"names segment {target}, which is missing")
                continue
            try:
                unpacked = list(unpack_entries(bytes(entries)))
            except (TypeError, ValueError) as exc:
                report.add(where, f"its entries are damaged: {exc}")
                continue
            if kind == EVENT_KIND:
                removed.events.extend(unpacked)
            elif kind == ROLLUP_KIND:
                removed.rollups.extend(unpacked)
            elif kind == INCIDENT_KIND and all(isinstance(e, Entry) for e in unpacked):
                removed.incidents.extend((int(tombstone_id), e) for e in unpacked
                                         if isinstance(e, Entry))  # fmt: skip
            else:
                report.add(where, f"removes records of unknown kind {kind!r}: altered")
            if evidence is not None:
                removed.evidence = str(evidence)
        return removed

    def sealed_leaves(self, segment_id: int, removed: Removed, report: Report) -> list[bytes | Gap]:
        """The leaves of the tombstones, rollups (tombstoned ones put back) and holds the
        segment sealed, in that order."""
        leaves: list[bytes | Gap] = []
        for row in self._tombstones.take_until(segment_id):
            if not self._misplaced(row, "tombstone", segment_id, report):
                leaves.append(self._tombstone_leaf(row, report))
        present: list[Entry | Run] = []
        for row in self._rollups.take_until(segment_id):
            if self._misplaced(row, "rollup", segment_id, report):
                continue
            self.rollups += 1
            present.append(Entry(_int(row[ROLLUP_ID]), _leaf(rollup_leaf, row, report, "rollup")))
        leaves.extend(merge_leaves(present, removed.rollups, report, f"segment {segment_id}"))
        for row in self._holds.take_until(segment_id):
            if self._misplaced(row, "hold", segment_id, report):
                continue
            self.holds += 1
            leaves.append(_leaf(hold_leaf, row, report, "hold"))
        return leaves

    def _tombstone_leaf(self, row: Sequence[Any], report: Report) -> bytes:
        where = f"tombstone {row[ROW_ID]}"
        self.tombstones += 1
        entries = row[TOMBSTONE_ENTRIES]
        blob = bytes(entries) if isinstance(entries, bytes | bytearray | memoryview) else b""
        if hashlib.sha256(blob).hexdigest() != row[TOMBSTONE_SHA]:
            report.add(where, "its entries do not match their sha256: altered")
        elif _covered(blob) != row[TOMBSTONE_REMOVED]:
            report.add(where, "its entries are not the records it counts: altered")
        return _leaf(tombstone_leaf, row[:TOMBSTONE_ENTRIES], report, where)

    @staticmethod
    def _misplaced(row: Sequence[Any], kind: str, segment_id: int, report: Report) -> bool:
        if row[ROW_SEGMENT] == segment_id:
            return False
        report.add(f"{kind} {row[ROW_ID]}", f"names segment {row[ROW_SEGMENT]}, which does not "
                   "seal it: inserted or moved")  # fmt: skip
        return True

    def finish(self, report: Report) -> None:
        """Rows naming a segment after the last one."""
        for rows, kind in ((self._tombstones, "tombstone"), (self._rollups, "rollup"),
                           (self._holds, "hold")):  # fmt: skip
            for row in rows.rest():
                report.add(f"{kind} {row[ROW_ID]}", "belongs to no segment: inserted or moved")
        for row in self._removals.rest():
            report.add(f"tombstone {row[4]}", f"names segment {row[0]}, which is missing")


def _leaf(leaf_of: Any, row: Sequence[Any], report: Report, where: str) -> bytes:
    try:
        leaf: bytes = leaf_of(row)
    except (TypeError, ValueError) as exc:
        report.add(where, f"holds a value no writer stores ({exc}): altered")
        return bytes(32)
    return leaf


def _covered(blob: bytes) -> int | None:
    try:
        return covered(list(unpack_entries(blob)))
    except ValueError:
        return None


def merge_leaves(
    present: list[Entry | Run], removed: list[Entry | Run], report: Report, where: str
) -> list[bytes | Gap]:
    """The leaves of records still there and of tombstoned ones (single leaves, or runs as
    the subtree hashes covering them), in position order: the segment's leaves as sealed. A
    position both present and tombstoned is reported."""
    if not removed:
        return [_part(entry) for entry in present]
    merged = sorted([*present, *removed], key=lambda entry: entry.position)
    for first, second in itertools.pairwise(merged):
        if first.position == second.position:
            report.add(where, f"the record at {first.position} is both present and tombstoned")
    return [_part(entry) for entry in merged]


def _part(entry: Entry | Run) -> bytes | Gap:
    return entry.gap if isinstance(entry, Run) else entry.leaf
