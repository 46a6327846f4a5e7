"""``vault export``: the selected evidence with what proves it, checked against the store first.

Every record written is recomputed from the store's rows, not copied from stored hashes: each
segment the bundle draws on gets its Merkle root rebuilt from all its records (which is also
how the inclusion proofs are made), its evidence checked against its sha256, its head chained
to a checkpoint whose signature verifies. Anything that does not hold is returned as a
problem, and the caller discards what was written: tampered evidence is reported, never
exported as if it were good.

The seal commits to a segment's evidence with one sha256 over all its bytes, so a bundle
carries the whole evidence of every segment it exports events from: the other alerts of the
same write come with it (docs/vault-export.md says so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kubesentinel.errors import CheckpointError, VaultError
from kubesentinel.runtime.store import codec
from kubesentinel.vault import merkle
from kubesentinel.vault.bundle import BundleWriter, Selection, b64
from kubesentinel.vault.ledger import (
    GENESIS_HEAD,
    LEAF_BYTES,
    event_leaves,
    facet_leaf,
    incident_leaf,
    segment_leaf,
)
from kubesentinel.vault.record import chain_head
from kubesentinel.vault.tombstone import Entry, Run
from kubesentinel.vault.verify import CheckpointKey, CheckpointRow, Problem, SegmentRow, VaultMeta
from kubesentinel.vault.verify_retention import RetentionCheck, RetentionRows, merge_leaves

__all__ = ["ExportSource", "Exported", "export", "export_source"]

# Positions in the sealed records (ledger): event (time, id, incident seq, role, facet,
# segment, offset, length), facet (id, segment, rule, priority, source, cluster, namespace...),
# incident (id, ..., segment, seq).
EV_TIME, EV_ID, EV_INCIDENT, EV_FACET, EV_SEGMENT, EV_OFFSET, EV_LENGTH = 0, 1, 2, 4, 5, 6, 7
FACET_ID, FACET_SEGMENT = 0, 1
INCIDENT_ID, INCIDENT_SEGMENT, INCIDENT_SEQ = 0, 20, 21
_HINT: Final = "run `kubesentinel vault verify` on the store; keep a copy of the file"

Record = Sequence[Any]


class ExportSource(Protocol):
    """What an export reads from a store, inside one read transaction. Records are sealed
    records (``ledger``), as ``verify.LedgerReader`` yields them; lists are in write order."""

    def meta(self) -> VaultMeta: ...

    def incident(self, incident_id: str) -> Record | None: ...

    def incidents_by_seq(self, seqs: Iterable[int]) -> list[Record]: ...

    def events_of_incident(self, seq: int) -> list[Record]: ...

    def events_between(self, from_ns: int, to_ns: int, namespace: str | None) -> list[Record]: ...

    def facets(self, ids: Iterable[int]) -> list[Record]: ...

    def segment(self, segment_id: int) -> SegmentRow | None: ...

    def segment_facets(self, segment_id: int) -> list[Record]:
        """The facets the segment sealed, by id."""
        ...

    def segment_events(self, segment_id: int) -> list[Record]:
        """The event records the segment sealed, in write order."""
        ...

    def links(self, first: int, last: int) -> list[tuple[int, bytes, int, bytes]]:
        """(id, root, record count, head) of segments ``first`` to ``last``, by id."""
        ...

    def head(self, segment_id: int) -> bytes | None: ...

    def retention(self, segment_id: int) -> RetentionRows:
        """Retention's rows of one segment: what it sealed, and what was removed from it."""
        ...

    def covering_checkpoint(self, segment_id: int) -> CheckpointRow | None:
        """The first checkpoint signing ``segment_id`` or a later segment."""
        ...


def export_source(store: Any, db: Any) -> ExportSource:
    """The reader of the store's backend over a snapshot's connection (``store.read_snapshot``):
    ``vault export`` and the report's evidence manifest read the sealed records through it."""
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from kubesentinel.vault.sqlite_export import SQLiteExportSource

        return SQLiteExportSource(db)
    from kubesentinel.vault.postgres_export import PostgresExportSource

    return PostgresExportSource(db)


@dataclass(slots=True)
class Exported:
    """What an export wrote, or the problems that made the caller discard it."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))


@dataclass(slots=True)
class _Block:
    """The records one segment proves."""

    facets: list[Record] = field(default_factory=list)
    events: list[Record] = field(default_factory=list)
    incidents: list[Record] = field(default_factory=list)


def export(  # noqa: PLR0917 - the parts of one export
    source: ExportSource,
    selection: Selection,
    key: CheckpointKey,
    public_key_pem: str,
    writer: BundleWriter,
    created: str,
) -> Exported:
    """Write the bundle of ``selection`` through ``writer``; VaultError when there is nothing
    to export or a segment is not signed yet (the caller exits 2)."""
    result = Exported()
    meta = source.meta()
    events, incidents = _select(source, selection)
    facets = source.facets(sorted({_int(e[EV_FACET]) for e in events}))
    blocks: dict[int, _Block] = {}
    for kind, records, position in (
        ("facets", facets, FACET_SEGMENT),
        ("events", events, EV_SEGMENT),
        ("incidents", incidents, INCIDENT_SEGMENT),
    ):
        for record in records:
            segment_id = record[position]
            if type(segment_id) is not int:
                result.add(_where(kind, record), f"names segment {segment_id!r}: altered")
                continue
            getattr(blocks.setdefault(segment_id, _Block()), kind).append(record)
    writer.header(meta.origin, public_key_pem, selection, created)
    _write_chains(source, sorted(blocks), meta, key, writer, result)
    for segment_id in sorted(blocks):
        _write_block(source, segment_id, blocks[segment_id], writer, result)
    writer.end()
    result.counts = dict(writer.counts)
    return result


def _select(source: ExportSource, selection: Selection) -> tuple[list[Record], list[Record]]:
    """(events, incidents) the selection names; VaultError when there are none."""
    if selection.incident_id is not None:
        incident = source.incident(selection.incident_id)
        if incident is None:
            raise VaultError(
                f"no incident {selection.incident_id!r} in the store",
                hint="`kubesentinel incidents list` shows the stored incidents",
            )
        return source.events_of_incident(_int(incident[INCIDENT_SEQ])), [incident]
    assert selection.from_ns is not None  # a Selection has an incident or a range
    assert selection.to_ns is not None
    events = source.events_between(selection.from_ns, selection.to_ns, selection.namespace)
    if not events:
        raise VaultError(
            f"no events to export: none stored from {selection.from_ns} to {selection.to_ns} "
            "(ns since the epoch)"
            + (f" in namespace {selection.namespace!r}" if selection.namespace else ""),
            hint="widen --from/--to, or check --namespace and --store",
        )
    seqs = sorted({seq for e in events if type(seq := e[EV_INCIDENT]) is int})
    return events, source.incidents_by_seq(seqs)


def _write_chains(  # noqa: PLR0917 - one step of export
    source: ExportSource,
    segment_ids: list[int],
    meta: VaultMeta,
    key: CheckpointKey,
    writer: BundleWriter,
    result: Exported,
) -> None:
    """The checkpoints signing the segments, then each run of segments chained up to one."""
    runs: dict[int, tuple[CheckpointRow, int]] = {}  # checkpoint id -> (it, first segment)
    for segment_id in segment_ids:
        checkpoint = source.covering_checkpoint(segment_id)
        if checkpoint is None:
            raise VaultError(
                f"segment {segment_id} is not signed by a checkpoint yet: it cannot be proven",
                hint="the monitor signs a checkpoint every minute and when it stops; export "
                "again then",
            )
        runs.setdefault(checkpoint.id, (checkpoint, segment_id))
    chains = []
    for row, first in runs.values():
        where = f"checkpoint {row.id}"
        try:
            signed = key.check(row.note, meta.origin)
        except CheckpointError as exc:
            result.add(where, f"not valid: {exc.message}")
            continue
        writer.line("checkpoint", note=row.note)
        previous = GENESIS_HEAD if first == 1 else source.head(first - 1)
        if previous is None:
            result.add(f"segment {first - 1}", "missing: removed")
            continue
        links = source.links(first, signed.size)
        head = _chain(previous, links, first, result)
        if head is not None and head != signed.root_hash:
            result.add(where, f"does not match segment {signed.size}: the chain up to it "
                       "was changed")  # fmt: skip
        chains.append((signed.size, previous, links))
    for size, previous, links in chains:
        writer.line(
            "chain",
            checkpoint=size,
            previous_head=b64(previous),
            links=[[segment_id, b64(root), count] for segment_id, root, count, _ in links],
        )


def _chain(
    previous: bytes, links: list[tuple[int, bytes, int, bytes]], first: int, result: Exported
) -> bytes | None:
    """The head after the links, each checked against the head the store keeps."""
    head = previous
    for expected_id, (segment_id, root, count, stored_head) in enumerate(links, first):
        if segment_id != expected_id:
            result.add(f"segment {expected_id}", "missing: removed")
            return None
        try:
            head = chain_head(head, root, segment_id, count)
        except ValueError:
            head = b""
        if head != stored_head:
            result.add(f"segment {segment_id}", "breaks the hash chain: a segment was removed, "
                       "inserted or reordered, or its seal was changed")  # fmt: skip
            return None
    return head


def _write_block(
    source: ExportSource, segment_id: int, block: _Block, writer: BundleWriter, result: Exported
) -> None:
    """The segment line and the records it proves, once its root is rebuilt from its rows."""
    where = f"segment {segment_id}"
    segment = source.segment(segment_id)
    if segment is None:
        result.add(where, "missing: removed")
        return
    facets = source.segment_facets(segment_id)
    events = source.segment_events(segment_id)
    # As verify rebuilds it: records still there, with the leaves of those retention removed
    # put back in their places (tombstones), then what the segment sealed for retention.
    retention = RetentionCheck(source.retention(segment_id))
    removed = retention.removed(segment_id, result)
    try:
        parts: list[bytes | merkle.Gap] = [segment_leaf(segment.record), *map(facet_leaf, facets)]
        present: list[Entry | Run] = [
            Entry(_int(event[EV_OFFSET]), leaf)
            for event, leaf in zip(events, event_leaves(events), strict=True)
        ]
    except (TypeError, ValueError, VaultError) as exc:
        result.add(where, f"holds a value no writer stores ({exc}): altered")
        return
    parts.extend(merge_leaves(present, removed.events, result, where))
    incident_leaves = segment.incident_leaves
    parts.extend(incident_leaves[n : n + LEAF_BYTES]
                 for n in range(0, len(incident_leaves), LEAF_BYTES))  # fmt: skip
    parts.extend(retention.sealed_leaves(segment_id, removed, result))
    try:
        tree = merkle.Tree(parts)
    except ValueError as exc:  # a removed run whose hashes do not fit its place
        result.add(where, f"a tombstone of it is damaged ({exc}): altered")
        return
    if tree.size != segment.record_count or tree.root != segment.root:
        result.add(where, "its records do not match its Merkle root: a record of it was "
                   "changed, added or removed")  # fmt: skip
        return
    evidence = _evidence(segment, result) if block.events else None
    if block.events and evidence is None:
        return
    writer.line(
        "segment",
        record=list(segment.record),
        proof=_proof(tree, 0),
        data=b64(segment.data) if evidence is not None else None,
    )
    index = _Index(facets, events, removed.events, segment.incident_ids)
    for facet in block.facets:
        _write_record(writer, "facet", facet, index.of_facet(facet), tree, result)
    for event in block.events:
        assert evidence is not None  # checked above for blocks with events
        raw = evidence[event[EV_OFFSET] : event[EV_OFFSET] + event[EV_LENGTH]]
        _write_record(writer, "event", event, index.of_event(event), tree, result, raw=raw)
    for incident in block.incidents:
        at = index.of_incident(incident)
        if at is not None and incident_leaf(incident) != tree.leaf(at):
            result.add(_where("incidents", incident),
                       f"was changed after segment {segment_id} wrote it")  # fmt: skip
            continue
        _write_record(writer, "incident", incident, at, tree, result)


def _evidence(segment: SegmentRow, result: Exported) -> bytes | None:
    """The segment's alerts as received, once its bytes match the sha256 it was sealed with."""
    where = f"segment {segment.id}"
    try:
        blob = codec.decompress(
            segment.data, segment.codec, segment.raw_bytes + segment.sidecar_bytes
        )
    except codec.CodecError as exc:
        result.add(where, f"its evidence cannot be read: {exc}")
        return None
    if hashlib.sha256(blob).hexdigest() != segment.sha256:
        result.add(where, "its evidence does not match its sha256: altered or corrupt")
        return None
    return blob[: segment.raw_bytes]


class _Index:
    """Leaf positions in a segment's tree: its record, its facets, its events (removed ones
    keep their places, by evidence offset), its incidents, then retention's records."""

    def __init__(
        self,
        facets: list[Record],
        events: list[Record],
        removed: list[Entry | Run],
        ids: list[str],
    ) -> None:
        self._facets = {_key(r): n for n, r in enumerate(facets, 1)}
        # Event leaves in evidence order; a removed run of them takes its count of places.
        widths = sorted(
            [
                *((e[EV_OFFSET], 1) for e in events),
                *((r.position, r.count if isinstance(r, Run) else 1) for r in removed),
            ]
        )
        at: dict[int, int] = {}
        leaf = 1 + len(facets)
        for offset, width in widths:
            at.setdefault(offset, leaf)
            leaf += width
        self._events = {_key(r): at[r[EV_OFFSET]] for r in events}
        self._incidents = {incident_id: n for n, incident_id in enumerate(ids, leaf)}

    def of_facet(self, record: Record) -> int | None:
        return self._facets.get(_key(record))

    def of_event(self, record: Record) -> int | None:
        return self._events.get(_key(record))

    def of_incident(self, record: Record) -> int | None:
        return self._incidents.get(str(record[INCIDENT_ID]))


def _write_record(  # noqa: PLR0917 - one line of the bundle
    writer: BundleWriter,
    kind: str,
    record: Record,
    index: int | None,
    tree: merkle.Tree,
    result: Exported,
    raw: bytes | None = None,
) -> None:
    if index is None:  # selected from the store, yet not among the rows its segment seals
        result.add(_where(f"{kind}s", record), "is not among the records its segment seals")
        return
    fields: dict[str, Any] = {"record": list(record), "index": index,
                              "proof": _proof(tree, index)}  # fmt: skip
    if raw is not None:
        try:
            fields["raw"] = raw.decode()  # Falco JSON: readable in the bundle, exact either way
        except UnicodeDecodeError:
            fields["raw_base64"] = b64(raw)
    writer.line(kind, **fields)


def _proof(tree: merkle.Tree, index: int) -> list[str]:
    return [b64(node) for node in tree.inclusion_proof(index)]


def _key(record: Record) -> tuple[Any, ...]:
    return tuple(record)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise VaultError(f"the store holds {value!r} where a number belongs: altered", hint=_HINT)
    return value


def _where(kind: str, record: Record) -> str:
    if kind == "events":
        return f"event {record[EV_ID]} (segment {record[EV_SEGMENT]})"
    if kind == "facets":
        return f"facet {record[FACET_ID]}"
    return f"incident {record[INCIDENT_ID]}"
