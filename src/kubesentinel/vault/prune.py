"""Apply the retention policy to a store: expire, roll up, and evict down to the size cap.

One run (``prune``) does, in transactions of at most ``batch`` records each (so the monitor's
writer never waits long for the write lock):

0. **expire incidents** older than the ``incident`` class's ``keep_days`` after their last
   signal, a chain of linked incidents as one, never a held one (``incident_expiry``): each
   incident row goes under a tombstone of the state its segment sealed, and its events lose
   the incident's protection: step 1 classifies them by rule, tier or default;
1. **expire and roll up**: every event older than the youngest age any class acts at is
   classified (``retention.Classifier``: hold > incident evidence > rule > tier > default);
   an event past its class's ``keep_days`` is deleted, noise past ``rollup_after_days`` is
   counted per workload, rule and hour, then deleted; rollup rows past their class's
   ``keep_days`` are deleted;
2. **size cap**: while the store's pages in use plus the dead-letter files exceed
   ``forensics.max_size_mb``, evict the lowest ``evict_rank`` first (its rollups, then its
   events, oldest written first); hold and incident evidence never. When nothing is left to
   evict and the cap is still exceeded, the report says so (``over_cap``): the caller raises
   the health alert.

Every transaction that removes records appends one retention segment sealing tombstones for
them (``tombstone.py``). A segment none of whose events is left loses its evidence bytes too;
one that still holds events keeps all its bytes (``docs/vault-integrity.md`` says why).

``dry_run`` classifies the same way inside read transactions and writes nothing; what the
size cap would evict is then estimated from the store's average bytes per record.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.incident_expiry import expired_chains
from kubesentinel.vault.ledger import event_leaves, incident_leaf
from kubesentinel.vault.policy import INCIDENT as INCIDENT_CLASS
from kubesentinel.vault.policy import Policy, eviction_order
from kubesentinel.vault.retention import (
    DAY_NS,
    Action,
    Classifier,
    FacetInfo,
    Verdict,
    decide,
    horizon_ns,
    hour_of,
)
from kubesentinel.vault.retention_backend import RetentionQueries, queries_for
from kubesentinel.vault.tombstone import (
    EVENT_KIND,
    INCIDENT_KIND,
    MIN_RUN,
    ROLLUP_KIND,
    Entry,
    Run,
    Slot,
    compact,
    pack_entries,
    rollup_leaf,
    unpack_entries,
)

__all__ = ["PruneOptions", "PruneReport", "dead_letter_files", "prune"]

log = logging.getLogger("kubesentinel.vault")

BATCH: Final = 20_000  # records per transaction: a short hold of the write lock
MAX_CAP_ROUNDS: Final = 16
# Positions in event_rows rows: the rowid (a key on PostgreSQL), then the event's record.
ROWID, TIME, INCIDENT, ROLE, FACET, SEGMENT, OFFSET = 0, 1, 3, 4, 5, 6, 7
# Positions in a rollup record.
ROLLUP_ID, ROLLUP_SEGMENT, ROLLUP_CLASS, ROLLUP_COUNT = 0, 1, 8, 9
INCIDENT_ID, INCIDENT_SEGMENT = 0, 20  # in an incident record
INCIDENT_EXPIRED: Final = "incident_expired"  # the action in a tombstone's reasons


_EVENT_ACTIONS: Final = frozenset(a.value for a in Action)


@dataclass(frozen=True, slots=True)
class PruneOptions:
    policy: Policy
    now_ns: int
    max_bytes: int | None = None  # forensics.max_size_mb in bytes; None: no cap
    dead_letter: Sequence[Path] = ()  # files that count against the cap
    dry_run: bool = False
    batch: int = BATCH


@dataclass(slots=True)
class PruneReport:
    dry_run: bool
    scanned: int = 0  # events classified
    removed: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # class, action, why
    segments_touched: set[int] = field(default_factory=set)
    evidence_dropped: set[int] = field(default_factory=set)  # segments whose bytes went
    rollup_rows: int = 0  # written
    rolled_up_events: int = 0
    rollups_removed: int = 0
    incidents_removed: int = 0
    tombstones: int = 0
    retention_segments: list[int] = field(default_factory=list)
    size_before: int = 0
    size_after: int = 0
    cap_bytes: int | None = None
    over_cap: bool = False  # the cap could not be met: only protected evidence is left
    seconds: float = 0.0

    @property
    def events_removed(self) -> int:
        return sum(n for (_, action, _), n in self.removed.items() if action in _EVENT_ACTIONS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "events_classified": self.scanned,
            "events_removed": self.events_removed,
            "removed": [
                {"class": c, "action": a, "why": w, "count": n}
                for (c, a, w), n in sorted(self.removed.items())
            ],
            "segments_touched": len(self.segments_touched),
            "segments_evidence_removed": len(self.evidence_dropped),
            "rollup_rows_written": self.rollup_rows,
            "rolled_up_events": self.rolled_up_events,
            "rollup_rows_removed": self.rollups_removed,
            "incidents_removed": self.incidents_removed,
            "tombstones": self.tombstones,
            "retention_segments": self.retention_segments,
            "size_before_bytes": self.size_before,
            "size_after_bytes": self.size_after,
            "cap_bytes": self.cap_bytes,
            "over_cap": self.over_cap,
            "seconds": round(self.seconds, 3),
        }


def dead_letter_files(path: Path) -> list[Path]:
    """The dead-letter file and its rotations (``.1``, ``.2``...) that exist."""
    if not path.parent.is_dir():
        return []
    return sorted(
        p for p in path.parent.iterdir()
        if p.name == path.name or (p.name.startswith(f"{path.name}.")
                                   and p.name[len(path.name) + 1:].isdigit())
    )  # fmt: skip


def _files_bytes(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # rotated away meanwhile
    return total


class _Tags:
    """Falco tags per rule, read from the evidence of one event of the rule (tags are a
    property of a Falco rule); the last segment read is kept, as events come in its order."""

    def __init__(self, sql: RetentionQueries) -> None:
        self._sql = sql
        self.known: dict[str, tuple[str, ...]] = {}
        self._segment: tuple[int, bytes | None] = (0, None)

    def learn(self, db: Any, rule: str, segment: int, offset: int, length: int) -> None:
        if self._segment[0] != segment:
            self._segment = (segment, self._sql.evidence(db, segment))
        data = self._segment[1]
        tags: tuple[str, ...] = ()
        if data is not None:
            try:
                alert = orjson.loads(data[offset : offset + length])
            except orjson.JSONDecodeError:
                alert = None
            found = alert.get("tags") if isinstance(alert, dict) else None
            if isinstance(found, list):
                tags = tuple(t for t in found if isinstance(t, str))
        self.known[rule] = tags

    def of(self, rule: str) -> tuple[str, ...]:
        return self.known.get(rule, ())


class Session:
    """What classifying needs, read once and refreshed when incidents or holds change."""

    def __init__(self, policy: Policy, sql: RetentionQueries) -> None:
        self.policy = policy
        self.sql = sql
        self.tags = _Tags(sql)
        self.facets: dict[int, FacetInfo] = {}
        self._mark: tuple[int, int, int, int] | None = None
        self._held: dict[str, str] | None = None
        self.classifier: Classifier | None = None
        self._needs_tags = any(rule.tags for rule in policy.rules)
        self.skip: set[str] = set()  # a dry run's expired incidents, still stored

    def refresh(self, db: Any) -> Classifier:
        sql = self.sql
        held = sql.held_incidents(db)
        incidents = sql.incident_mark(db)
        facet_count = int(db.execute("SELECT coalesce(max(id), 0) FROM facets").fetchone()[0])
        mark = (*incidents, facet_count, len(self.skip))
        if self.classifier is None or mark != self._mark or held != self._held:
            if facet_count != (self._mark or (0, 0, -1, 0))[2]:
                self.facets = sql.facets(db)
            windows, held_seqs = sql.windows(
                db, self.policy.context_before_s, self.policy.context_after_s, held, self.skip
            )
            live = sql.incident_seqs(db, self.skip)
            self.classifier = Classifier(
                self.policy, self.facets, windows, held_seqs, self.tags.of, live=live
            )
            self._mark, self._held = mark, held
        return self.classifier

    def verdict(self, db: Any, row: Sequence[Any]) -> Verdict:
        classifier = self.classifier
        assert classifier is not None  # refresh() runs first
        if self._needs_tags:
            info = self.facets.get(row[FACET])
            if info is not None and info.rule not in self.tags.known:
                self.tags.learn(db, info.rule, row[SEGMENT], row[OFFSET], row[OFFSET + 1])
        return classifier.verdict(row[TIME], row[INCIDENT], row[ROLE], row[FACET])


@dataclass(slots=True)
class _Plan:
    """What one transaction removes."""

    events: list[tuple[Sequence[Any], Verdict, Action]] = field(default_factory=list)
    rollups: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)  # (record, action)

    def __len__(self) -> int:
        return len(self.events) + len(self.rollups)


class _Run:
    def __init__(self, store: VaultStore, options: PruneOptions) -> None:
        self.store = store
        self.sql = queries_for(store)
        self.options = options
        self.policy = options.policy
        self.report = PruneReport(dry_run=options.dry_run, cap_bytes=options.max_bytes)
        self.session = Session(options.policy, self.sql)
        self.policy_json = _policy_json(options.policy)
        # Dry run: what earlier transactions of this run would have removed.
        self.pending_removed: Counter[int] = Counter()
        self.excluded: set[int] = set()  # dry run: event rowids already counted
        self.excluded_rollups: set[int] = set()

    def transaction(self) -> AbstractContextManager[Any]:
        if self.options.dry_run:
            return self.store.read_snapshot("plan retention")
        return self.store.write_transaction("apply retention")

    # -- 0. expire incidents -----------------------------------------------------------------

    def expire_incidents(self) -> None:
        keep = self.policy.classes[INCIDENT_CLASS].keep_days
        if keep is None:
            return
        before = self.options.now_ns - keep * DAY_NS
        sql = self.sql
        done: set[str] = set()  # removed, or refused (see _drop_incidents)
        while True:
            with self.transaction() as db:
                chosen: list[str] = []
                for chain in expired_chains(sql.incident_ages(db), sql.held_incidents(db), before):
                    if done.isdisjoint(chain):
                        chosen.extend(chain)
                        if len(chosen) >= self.options.batch:
                            break
                if not chosen:
                    return
                done.update(chosen)
                self._drop_incidents(db, chosen, f"last signal over {keep} days ago")

    def _drop_incidents(self, db: Any, ids: list[str], why: str) -> None:
        """Delete the incidents, each under a tombstone entry of the state the segment that
        last wrote it sealed: its index there and its record's leaf, hashed from the row as
        stored (a row changed since would not match its seal, and verify says so)."""
        sql = self.sql
        by_target: dict[int, list[Entry]] = {}
        sealed: dict[int, list[str]] = {}
        removed: list[str] = []
        for row in sql.incident_records(db, ids):
            target = row[INCIDENT_SEGMENT]
            if type(target) is not int:
                continue
            order = sealed.setdefault(target, sql.sealed_incident_ids(db, target))
            at = _last_index(order, str(row[INCIDENT_ID]))
            try:
                leaf = incident_leaf(row)
            except (TypeError, ValueError):
                at = None
            if at is None:  # no lawful tombstone can say it went: leave it to verify
                log.warning("incident %s does not match its segment's seal; not expired", row[0])
                continue
            by_target.setdefault(target, []).append(Entry(at, leaf))
            removed.append(str(row[INCIDENT_ID]))
        if not removed:
            return
        key = (INCIDENT_CLASS, INCIDENT_EXPIRED, why)
        self.report.removed[key] += len(removed)
        self.report.incidents_removed += len(removed)
        tombstones = [
            self._tombstone(target, INCIDENT_KIND, sorted(entries, key=lambda e: e.position),
                            Counter({key: len(entries)}), None, count=len(entries))
            for target, entries in sorted(by_target.items())
        ]  # fmt: skip
        self.report.tombstones += len(tombstones)
        if self.options.dry_run:
            self.session.skip.update(removed)
            return
        sql.delete_incidents(db, removed)
        self.report.retention_segments.append(
            sql.append_retention_segment(db, tombstones, [], [], self.options.now_ns)
        )

    # -- 1. expire and roll up ---------------------------------------------------------------

    def expire(self) -> None:
        now = self.options.now_ns
        before = horizon_ns(self.policy, now)
        after_rowid = 0
        while True:
            with self.transaction() as db:
                self.session.refresh(db)
                rows = self.sql.event_rows(db, after_rowid, before, self.options.batch)
                if not rows:
                    break
                after_rowid = rows[-1][ROWID]
                plan = _Plan()
                for row in rows:
                    verdict = self.session.verdict(db, row)
                    action = decide(self.policy, verdict, row[TIME], now)
                    if action is not Action.KEEP:
                        plan.events.append((row, verdict, action))
                self.report.scanned += len(rows)
                self.apply(db, plan)
        for name, cls in sorted(self.policy.classes.items()):
            if cls.keep_days is None or cls.protected:
                continue
            self._expire_rollups(name, now - cls.keep_days * DAY_NS)

    def _expire_rollups(self, class_name: str, before_ns: int) -> None:
        while True:
            with self.transaction() as db:
                limit = self.options.batch + len(self.excluded_rollups)
                rows = [
                    r for r in self.sql.rollups_of_class(db, class_name, before_ns, limit)
                    if r[ROLLUP_ID] not in self.excluded_rollups
                ][: self.options.batch]  # fmt: skip
                if not rows:
                    return
                self.apply(db, _Plan(rollups=[(row, "rollup_expired") for row in rows]))

    # -- 2. size cap -------------------------------------------------------------------------

    def cap(self) -> None:
        cap = self.options.max_bytes
        with self.store.read_snapshot("measure the vault") as db:
            size = self.size(db)
            events, rollups = self.sql.counts(db)
        per_record = max(size / max(events + rollups, 1), 1.0)
        estimate = size - self._estimated_freed(per_record)
        self.report.size_after = size if not self.options.dry_run else round(estimate)
        if cap is None:
            return
        for _ in range(MAX_CAP_ROUNDS):
            current = self.report.size_after
            if current <= cap:
                return
            need = min(math.ceil((current - cap) / per_record * 1.1) + 1, self.options.batch)
            with self.transaction() as db:
                self.session.refresh(db)
                plan = self._evictions(db, need)
                if not plan:
                    break
                self.apply(db, plan)
                freed = len(plan) * per_record
            if self.options.dry_run:
                self.report.size_after = round(current - freed)
            else:
                with self.store.read_snapshot("measure the vault") as db:
                    self.report.size_after = self.size(db)
        self.report.over_cap = self.report.size_after > cap
        if self.report.over_cap:
            log.warning(
                "the vault is over its size cap (forensics.max_size_mb): %d bytes in use with "
                "the dead-letter files, cap %d, and nothing evictable is left (held and "
                "incident evidence, facets and tombstones stay)",
                self.report.size_after,
                cap,
            )

    def _estimated_freed(self, per_record: float) -> float:
        if not self.options.dry_run:
            return 0.0
        gone = self.report.events_removed + self.report.rollups_removed
        return gone * per_record

    def size(self, db: Any) -> int:
        return self.sql.used_bytes(db) + _files_bytes(self.options.dead_letter)

    def _evictions(self, db: Any, need: int) -> _Plan:
        """Up to ``need`` records, lowest evict_rank first: a class's rollups (oldest first),
        then its events (oldest written first); never protected ones."""
        order = eviction_order(self.policy)
        plan = _Plan()
        for class_name in order:
            for row in self.sql.rollups_of_class(
                db, class_name, self.options.now_ns + 1, need + len(self.excluded_rollups)
            ):
                if row[ROLLUP_ID] not in self.excluded_rollups and len(plan) < need:
                    plan.rollups.append((row, "rollup_evicted"))
            if len(plan) >= need:
                return plan
            for event_row, verdict in self._events_of(db, class_name, need - len(plan)):
                plan.events.append((event_row, verdict, Action.EVICT))
            if len(plan) >= need:
                return plan
        return plan

    def _events_of(
        self, db: Any, class_name: str, limit: int
    ) -> Iterator[tuple[Sequence[Any], Verdict]]:
        """Events of the class, oldest written first."""
        after_rowid, found = 0, 0
        end = self.options.now_ns + DAY_NS * 36_500
        while found < limit:
            rows = self.sql.event_rows(db, after_rowid, end, self.options.batch)
            if not rows:
                return
            after_rowid = rows[-1][ROWID]
            for row in rows:
                if row[ROWID] in self.excluded:
                    continue
                verdict = self.session.verdict(db, row)
                if verdict.class_name == class_name and not verdict.protected:
                    found += 1
                    yield row, verdict
                    if found >= limit:
                        return

    # -- applying ----------------------------------------------------------------------------

    def apply(self, db: Any, plan: _Plan) -> None:
        """Delete what the plan says, leave tombstones and rollups in one retention segment."""
        if not plan:
            return
        report = self.report
        tombstones, dropped, new_rollups = self._event_tombstones(db, plan)
        tombstones.extend(self._rollup_tombstones(plan))
        report.evidence_dropped.update(dropped)
        report.rollup_rows += len(new_rollups)
        report.rolled_up_events += sum(row[7] for row in new_rollups)
        report.rollups_removed += len(plan.rollups)
        report.tombstones += len(tombstones)
        if self.options.dry_run:
            self.excluded.update(row[ROWID] for row, _, _ in plan.events)
            self.excluded_rollups.update(record[ROLLUP_ID] for record, _ in plan.rollups)
            return
        sql = self.sql
        sql.delete_events(db, [row[ROWID] for row, _, _ in plan.events])
        sql.delete_rollups(db, [record[ROLLUP_ID] for record, _ in plan.rollups])
        sql.drop_evidence(db, dropped)
        now = self.options.now_ns
        report.retention_segments.append(
            sql.append_retention_segment(db, tombstones, new_rollups, [], now)
        )

    def _event_tombstones(
        self, db: Any, plan: _Plan
    ) -> tuple[list[tuple[Any, ...]], list[int], list[tuple[Any, ...]]]:
        """(a tombstone per segment losing events, the segments losing their last events,
        the rollup rows of the events rolled up)."""
        by_segment: dict[int, tuple[list[Entry], Counter[tuple[str, str, str]], list[Any]]] = {}
        rollups: dict[tuple[Any, ...], list[int]] = {}
        leaves = event_leaves([row[1:] for row, _, _ in plan.events])
        for (row, verdict, action), leaf in zip(plan.events, leaves, strict=True):
            entries, reasons, rowids = by_segment.setdefault(row[SEGMENT], ([], Counter(), []))
            entries.append(Entry(row[OFFSET], leaf))
            rowids.append(row[ROWID])
            key = (verdict.class_name, action.value, verdict.why)
            reasons[key] += 1
            self.report.removed[key] += 1
            info = self.session.facets.get(row[FACET])
            if action is Action.ROLLUP and info is not None:
                group = (hour_of(row[TIME]), *info.workload, info.rule, verdict.class_name)
                counts = rollups.setdefault(group, [0, row[TIME], row[TIME]])
                counts[0] += 1
                counts[1] = min(counts[1], row[TIME])
                counts[2] = max(counts[2], row[TIME])
        tombstones = []
        dropped = []
        figures: dict[int, tuple[int, str | None]] = {}  # (events sealed, digest if emptied)
        for segment_id, (entries, _, _) in by_segment.items():
            event_count, digest = self.sql.segment_figures(db, segment_id)
            gone = self.sql.removed_so_far(db, segment_id) + self.pending_removed[segment_id]
            emptied = gone + len(entries) >= event_count
            figures[segment_id] = (event_count, digest if emptied else None)
        # Where the events that stay sit, in the segments keeping some (one read for them all);
        # a segment losing its last events holds exactly those being removed.
        stored = self.sql.event_offsets(db, {
            segment_id: (figures[segment_id][0], keys)
            for segment_id, (entries, _, keys) in by_segment.items()
            if len(entries) >= MIN_RUN and figures[segment_id][1] is None
        })  # fmt: skip
        for segment_id, (entries, reasons, _) in sorted(by_segment.items()):
            event_count, evidence = figures[segment_id]
            if evidence is not None:
                dropped.append(segment_id)
            if self.options.dry_run:
                self.pending_removed[segment_id] += len(entries)
            entries.sort(key=lambda e: e.position)
            offsets = (
                stored.get(segment_id, []) if evidence is None else [e.position for e in entries]
            )
            packed = _compacted(self.sql, db, segment_id, entries, offsets=offsets,
                                event_count=event_count)  # fmt: skip
            tombstones.append(
                self._tombstone(
                    segment_id, EVENT_KIND, packed, reasons, evidence, count=len(entries)
                )
            )
        self.report.segments_touched.update(by_segment)
        new_rollups = [
            (*group, n, first, last) for group, (n, first, last) in sorted(rollups.items())
        ]
        return tombstones, dropped, new_rollups

    def _rollup_tombstones(self, plan: _Plan) -> list[tuple[Any, ...]]:
        """A tombstone per retention segment losing rollup rows."""
        by_segment: dict[int, tuple[list[Entry], Counter[tuple[str, str, str]]]] = {}
        for record, action in plan.rollups:
            entries, reasons = by_segment.setdefault(record[ROLLUP_SEGMENT], ([], Counter()))
            entries.append(Entry(record[ROLLUP_ID], rollup_leaf(record)))
            key = (str(record[ROLLUP_CLASS]), action, "rollup")
            reasons[key] += 1
            self.report.removed[key] += 1
        tombstones = []
        for segment_id, (entries, reasons) in sorted(by_segment.items()):
            entries.sort(key=lambda e: e.position)
            tombstones.append(
                self._tombstone(segment_id, ROLLUP_KIND, entries, reasons, None, count=len(entries))
            )
        return tombstones

    def _tombstone(
        self,
        target: int,
        kind: str,
        entries: Sequence[Entry | Run],
        reasons: Counter[tuple[str, str, str]],
        evidence: str | None,
        *,
        count: int,
    ) -> tuple[Any, ...]:
        blob = pack_entries(entries)
        return (target, kind, count, hashlib.sha256(blob).hexdigest(),
                self.sql.reasons_json(dict(reasons)), self.policy_json, evidence,
                self.options.now_ns, blob)  # fmt: skip


def _last_index(items: list[str], item: str) -> int | None:
    """Where the segment sealed the incident's state last (verify keeps the last one)."""
    for at in range(len(items) - 1, -1, -1):
        if items[at] == item:
            return at
    return None


def _compacted(
    sql: RetentionQueries,
    db: Any,
    segment_id: int,
    entries: list[Entry],
    *,
    offsets: Sequence[int],
    event_count: int,
) -> Sequence[Entry | Run]:
    """The entries, consecutive ones as runs of subtree hashes (``tombstone.compact``).
    ``offsets``: the evidence offsets of the segment's stored events, those removed now
    included. Left as they are when the segment's event places cannot be read back whole: a
    run's hashes depend on where it sits in the tree, and a wrong guess would fail verify."""
    if len(entries) < MIN_RUN:
        return entries
    slots: list[Slot] = []
    try:
        for blob in sql.earlier_entries(db, segment_id):
            slots.extend(Slot(e.position, e.count if isinstance(e, Run) else 1, earlier=True)
                         for e in unpack_entries(blob))  # fmt: skip
    except ValueError:  # a damaged tombstone: verify reports it
        return entries
    removing = {entry.position: entry.leaf for entry in entries}
    slots.extend(Slot(offset, leaf=removing.get(offset)) for offset in offsets)
    slots.sort(key=lambda slot: slot.position)
    found = sum(slot.leaf is not None for slot in slots)
    if sum(slot.width for slot in slots) != event_count or found != len(entries):
        return entries
    try:
        size, incidents = sql.segment_shape(db, segment_id)
    except ValueError:  # its sealed incident list is damaged: verify reports it
        return entries
    return compact(slots, size - event_count - incidents, size)


def _policy_json(policy: Policy) -> str:
    """The policy a tombstone names: its files and the sha256 of their bytes."""
    digest = hashlib.sha256()
    for source in policy.sources:
        try:
            digest.update(Path(source).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    names = [Path(source).name for source in policy.sources]
    return orjson.dumps({"files": names, "sha256": digest.hexdigest()}).decode()


def prune(store: VaultStore, options: PruneOptions) -> PruneReport:
    """Apply the policy to the store now (see the module's docstring); a checkpoint signs
    what it sealed."""
    started = time.monotonic()
    run = _Run(store, options)
    if not options.dry_run:
        with store.write_transaction("prepare retention") as db:
            run.sql.ensure_schema(db)
    with store.read_snapshot("measure the vault") as db:  # no lock: measuring reads every row
        run.report.size_before = run.size(db)
    run.expire_incidents()
    run.expire()
    run.cap()
    if not options.dry_run and run.report.retention_segments:
        store.seal_tail()  # a checkpoint signs the tombstones
    run.report.seconds = time.monotonic() - started
    return run.report
