"""``vault verify --bundle``: check an export bundle offline, without the store.

The bundle is untrusted input. It is read line by line with a bound on each line and on each
segment's evidence, parsed as JSON only (never unpickled or run), and every field is checked
for its type before use. A file that cannot be checked at all (not a bundle, another version,
truncated, malformed) raises ``BundleError`` (exit 2); anything a well-formed bundle gets
wrong is a ``Problem`` in the report (exit 1), the first naming the first bad item.

What is checked, in the order the bundle is laid out (``bundle``): each checkpoint's
signature (the pinned key, or else the bundle's own), each chain's heads up to its signed
checkpoint (which makes the segments' roots and record counts trusted), each segment record's
and each facet, event and incident record's inclusion proof into its segment's root, each
segment's evidence against the sha256 in its record, each event's bytes against the
evidence at its place, and that every facet and incident an event names is proven too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeGuard

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kubesentinel.errors import BundleError, CheckpointError
from kubesentinel.runtime.store import codec
from kubesentinel.vault import merkle
from kubesentinel.vault.bundle import (
    FORMAT,
    LINE_TYPES,
    MAX_LINE_BYTES,
    MAX_SEGMENT_BYTES,
    RECORD_TYPES,
    VERSION,
    b64decode,
)
from kubesentinel.vault.checkpoint import Checkpoint, parse_and_verify
from kubesentinel.vault.keys import VerifyKey
from kubesentinel.vault.ledger import event_leaf, facet_leaf, incident_leaf, segment_leaf
from kubesentinel.vault.record import chain_head
from kubesentinel.vault.verify import MAX_LISTED, Problem

__all__ = ["BundleReport", "verify_bundle"]

# Fields of each record, as the vault seals them (ledger): how long it is.
_RECORD_LENGTH: Final = {"segment": 7, "facet": 14, "event": 8, "incident": 22}
_LEAF_OF: Final[dict[str, Callable[[Sequence[Any]], bytes]]] = {
    "facet": facet_leaf, "event": event_leaf, "incident": incident_leaf,
}  # fmt: skip
# The order of a bundle's sections; record lines share the segment blocks' rank.
_RANK: Final = {"checkpoint": 0, "chain": 1, "segment": 2, **dict.fromkeys(RECORD_TYPES, 2),
                "end": 3}  # fmt: skip
_MAX_PROOF: Final = 64  # hashes in a proof: a tree of 2**64 leaves needs no more
_MAX_U64: Final = 2**64 - 1
_MAX_SHOWN: Final = 120  # characters of an untrusted string quoted in a message
# Sealed positions: event (time, id, incident seq, role, facet, segment, offset, length),
# facet (id, segment, rule, priority, source, cluster, namespace, ...), incident (id, ...
# event_count at 14, ..., segment, seq).
_EV_TIME, _EV_ID, _EV_INCIDENT, _EV_ROLE, _EV_FACET, _EV_OFFSET, _EV_LENGTH = 0, 1, 2, 3, 4, 6, 7
_FACET_NAMESPACE: Final = 6
_INCIDENT_SIGNALS, _INCIDENT_SEQ = 14, 21


@dataclass(slots=True)
class BundleReport:
    origin: str = ""
    selection: dict[str, Any] = field(default_factory=dict)
    key_pinned: bool = False
    checkpoints: int = 0
    segments: int = 0
    facets: int = 0
    events: int = 0
    incidents: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)
    proven_sha256: str = ""  # of what is proven (leaves, events' bytes), in any line order

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(where, what))


def verify_bundle(path: Path, pinned: VerifyKey | None = None) -> BundleReport:
    """Check the bundle at ``path``; BundleError when it cannot be checked at all."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise BundleError(
            f"cannot read the bundle: {exc.strerror or exc}", file=str(path)
        ) from None
    with file:
        try:
            return _Checker(_Lines(file, str(path)), pinned).run()
        except OSError as exc:
            raise BundleError(
                f"cannot read the bundle: {exc.strerror or exc}", file=str(path)
            ) from None


class _Lines:
    """The bundle's lines as JSON objects, each at most MAX_LINE_BYTES."""

    def __init__(self, file: IO[bytes], name: str) -> None:
        self._file = file
        self.name = name
        self.number = 0

    def next(self) -> dict[str, Any] | None:
        line = self._file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        self.number += 1
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE_BYTES:
                raise self.error(f"longer than {MAX_LINE_BYTES} bytes")
            raise self.error("cut short (no newline at its end): the bundle is truncated")
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise self.error(f"not JSON ({_shown(str(exc))})") from None
        if type(document) is not dict:
            raise self.error("not a JSON object")
        return document

    def error(self, what: str) -> BundleError:
        return BundleError(
            f"not a valid bundle: line {self.number}: {what}",
            file=self.name,
            hint="a bundle is the file `kubesentinel vault export` wrote, complete and unedited",
        )


@dataclass(slots=True)
class _Block:
    """The segment whose records the lines that follow prove."""

    id: int
    root: bytes
    size: int
    trusted: bool  # its record is proven: the records in it can be
    evidence: bytes | None
    seen: set[int] = field(default_factory=set)  # leaf indexes proven already


@dataclass(frozen=True, slots=True)
class _EventRef:
    where: str
    time_ns: Any
    facet: Any
    incident: Any
    signal: bool


class _Checker:
    def __init__(self, lines: _Lines, pinned: VerifyKey | None) -> None:
        self.lines = lines
        self.pinned = pinned
        self.report = BundleReport(key_pinned=pinned is not None)
        self.keys: list[VerifyKey] = []
        self.signed: dict[int, Checkpoint] = {}  # segment id -> a valid checkpoint signing it
        self.roots: dict[int, tuple[bytes, int]] = {}  # segment id -> (root, records), trusted
        self.blocks_seen: set[int] = set()
        self.block: _Block | None = None
        self.counts: dict[str, int] = dict.fromkeys(LINE_TYPES[:-1], 0)
        self.facets: dict[Any, Any] = {}  # proven facet id -> namespace
        self.incidents: dict[Any, Any] = {}  # proven incident seq -> record
        self.events: list[_EventRef] = []
        self.proven: list[bytes] = []  # a hash per leaf proven and per event's bytes

    def run(self) -> BundleReport:
        self._header(self.lines.next())
        rank = 0
        while (document := self.lines.next()) is not None:
            kind = document.get("type")
            if type(kind) is not str or kind not in _RANK:
                raise self.lines.error(f"unknown line type {_shown(kind)}")
            if _RANK[kind] < rank:
                raise self.lines.error(f"a {kind} line out of place (see docs/vault-export.md)")
            rank = _RANK[kind]
            if kind == "end":
                self._end(document)
                if self.lines.next() is not None:
                    raise self.lines.error("data after the end line")
                self._references()
                self.report.proven_sha256 = hashlib.sha256(
                    b"".join(sorted(self.proven))
                ).hexdigest()
                return self.report
            self.counts[kind] += 1
            getattr(self, f"_{kind}")(document)
        raise self.lines.error("no end line: the bundle is truncated")

    # -- sections ------------------------------------------------------------------------

    def _header(self, document: dict[str, Any] | None) -> None:
        if document is None:
            raise self.lines.error("empty file: not a bundle")
        if document.get("format") != FORMAT:
            raise self.lines.error(f"not a {FORMAT} (its first line names no such format)")
        version = document.get("version")
        if version != VERSION or type(version) is not int:
            raise self.lines.error(
                f"bundle version {_shown(version)}; this KubeSentinel reads version {VERSION}"
            )
        self.report.origin = self._text(document, "origin")
        self.report.selection = self._selection(document.get("selection"))
        pem = self._text(document, "public_key").encode()
        try:
            public = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise self.lines.error("its public_key is not a PEM public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise self.lines.error("its public_key is not an Ed25519 key")
        own = VerifyKey(public)
        if self.pinned is not None and own != self.pinned:
            self.report.add("bundle", "names another public key than the pinned one: its "
                            "checkpoints are checked with the pinned key")  # fmt: skip
        self.keys = [self.pinned or own]

    def _selection(self, value: Any) -> dict[str, Any]:
        if type(value) is dict and type(value.get("incident_id")) is str and len(value) == 1:
            return value
        if (
            type(value) is dict
            and set(value) == {"from_ns", "to_ns", "namespace"}
            and type(value["from_ns"]) is int
            and type(value["to_ns"]) is int
            and (value["namespace"] is None or type(value["namespace"]) is str)
        ):
            return value
        raise self.lines.error("its selection is neither an incident id nor a time range")

    def _checkpoint(self, document: dict[str, Any]) -> None:
        note = self._text(document, "note")
        where = f"checkpoint on line {self.lines.number}"
        try:
            checkpoint = parse_and_verify(note, self.keys, expected_origin=self.report.origin)
        except CheckpointError as exc:
            self.report.add(where, f"not valid: {_shown(exc.message, 300)}")
            return
        self.report.checkpoints += 1
        earlier = self.signed.setdefault(checkpoint.size, checkpoint)
        if earlier.root_hash != checkpoint.root_hash:
            self.report.add(where, f"signs segment {checkpoint.size} with another head than an "
                            "earlier checkpoint: the vault's history was rewritten")  # fmt: skip

    def _chain(self, document: dict[str, Any]) -> None:
        size = self._u64(document, "checkpoint")
        head = self._hash(document.get("previous_head"), "previous_head")
        links = document.get("links")
        if type(links) is not list or not links:
            raise self.lines.error("its links are not a list of segments")
        parsed = [self._link(link) for link in links]
        where = f"chain to segment {size}"
        checkpoint = self.signed.get(size)
        if checkpoint is None:
            self.report.add(where, "ends at no valid checkpoint in the bundle")
            return
        expected = range(parsed[0][0], parsed[0][0] + len(parsed))
        if [segment_id for segment_id, _, _ in parsed] != list(expected) or expected[-1] != size:
            self.report.add(where, "skips or reorders segments: a segment was removed")
            return
        for segment_id, root, count in parsed:
            head = chain_head(head, root, segment_id, count)
        if head != checkpoint.root_hash:
            self.report.add(where, "does not lead to the head its checkpoint signs: a segment's "
                            "root or record count was changed")  # fmt: skip
            return
        for segment_id, root, count in parsed:
            if self.roots.setdefault(segment_id, (root, count)) != (root, count):
                self.report.add(f"segment {segment_id}", "has two different roots in the "
                                "bundle's chains")  # fmt: skip

    def _link(self, link: Any) -> tuple[int, bytes, int]:
        if type(link) is not list or len(link) != 3:
            raise self.lines.error("a link is not [segment id, root, record count]")
        segment_id, root, count = link
        if not (_is_u64(segment_id) and _is_u64(count)):
            raise self.lines.error("a link's segment id or record count is not a number")
        return segment_id, self._hash(root, "a link's root"), count

    def _segment(self, document: dict[str, Any]) -> None:
        record = self._record(document, "segment")
        proof = self._proof(document)
        segment_id = record[0]
        if not _is_u64(segment_id):
            raise self.lines.error("the segment record's id is not a number")
        where = f"segment {segment_id}"
        if segment_id in self.blocks_seen:
            self.report.add(where, "appears twice")
        self.blocks_seen.add(segment_id)
        trusted = self.roots.get(segment_id)
        self.block = _Block(segment_id, b"", 0, trusted=False, evidence=None)
        if trusted is None:
            self.report.add(where, "is on no chain to a valid checkpoint: it cannot be proven")
            return
        root, size = trusted
        self.block = _Block(segment_id, root, size, trusted=False, evidence=None)
        leaf = self._leaf(segment_leaf, record, where)
        if leaf is None or not merkle.verify_inclusion(leaf, 0, size, proof, root):
            self.report.add(where, "its record does not match its Merkle root: altered")
            return
        self.block.trusted = True
        self.block.seen.add(0)
        self.report.segments += 1
        self.proven.append(leaf)
        data = document.get("data")
        if data is not None:
            self.block.evidence = self._evidence(record, self._bytes(data, "data"), where)

    def _evidence(self, record: list[Any], data: bytes, where: str) -> bytes | None:
        """The segment's alerts, once its stored bytes match the sha256 its record seals."""
        _, _, _, raw_bytes, sidecar_bytes, name, sha256 = record
        if not (_is_u64(raw_bytes) and _is_u64(sidecar_bytes) and type(name) is str):
            self.report.add(where, "its record's sizes or codec are not what a writer stores")
            return None
        if raw_bytes + sidecar_bytes > MAX_SEGMENT_BYTES:
            raise self.lines.error(f"segment evidence over {MAX_SEGMENT_BYTES} bytes")
        try:
            blob = codec.decompress(data, name, raw_bytes + sidecar_bytes)
        except codec.CodecError as exc:
            self.report.add(where, f"its evidence cannot be read: {_shown(str(exc))}")
            return None
        if len(blob) != raw_bytes + sidecar_bytes or hashlib.sha256(blob).hexdigest() != sha256:
            self.report.add(where, "its evidence does not match the sha256 of its record: "
                            "altered")  # fmt: skip
            return None
        return blob[:raw_bytes]

    def _facet(self, document: dict[str, Any]) -> None:
        record = self._proven(document, "facet", f"facet {_shown(self._peek(document, 0))}")
        if record is not None:
            self.report.facets += 1
            self.facets[_hashable(record[0])] = record[_FACET_NAMESPACE]

    def _incident(self, document: dict[str, Any]) -> None:
        record = self._proven(document, "incident", f"incident {_shown(self._peek(document, 0))}")
        if record is not None:
            self.report.incidents += 1
            self.incidents[_hashable(record[_INCIDENT_SEQ])] = record

    def _event(self, document: dict[str, Any]) -> None:
        raw = self._raw(document)
        block = self._current()
        where = f"event {_shown(self._peek(document, _EV_ID))} (segment {block.id})"
        record = self._proven(document, "event", where)
        if record is None:
            return
        offset, length = record[_EV_OFFSET], record[_EV_LENGTH]
        if block.evidence is None:
            self.report.add(where, "its segment's evidence is not in the bundle (or is bad)")
            return
        if not (_is_u64(offset) and _is_u64(length)):
            self.report.add(where, "its place in the evidence is not a number")
            return
        if block.evidence[offset : offset + length] != raw or offset + length > len(block.evidence):
            self.report.add(where, "its bytes are not the evidence sealed with it: altered")
            return
        self.proven.append(hashlib.sha256(raw).digest())
        self.report.events += 1
        self.events.append(
            _EventRef(where, record[_EV_TIME], record[_EV_FACET], record[_EV_INCIDENT],
                      record[_EV_ROLE] is None)
        )  # fmt: skip

    def _end(self, document: dict[str, Any]) -> None:
        counts = document.get("counts")
        if type(counts) is not dict or set(counts) != set(self.counts):
            raise self.lines.error("the end line does not count each type of line")
        for kind, held in self.counts.items():
            said = counts[kind]
            if said != held or type(said) is not int:
                self.report.add("bundle", f"its end line counts {_shown(said)} {kind} line(s), "
                                f"it holds {held}: lines were removed or added")  # fmt: skip

    def _references(self) -> None:
        """Every event's facet and incident are proven and each event is within what the
        bundle says it selected; an exported incident's sealed signal count is compared."""
        selection = self.report.selection
        signals: dict[Any, int] = {}
        for event in self.events:
            if _hashable(event.facet) not in self.facets:
                self.report.add(event.where, f"its facet {_shown(event.facet)} (rule, workload) "
                                "is not proven in the bundle")  # fmt: skip
            if event.incident is not None:
                if _hashable(event.incident) not in self.incidents:
                    self.report.add(event.where, "its incident is not proven in the bundle")
                elif event.signal:
                    key = _hashable(event.incident)
                    signals[key] = signals.get(key, 0) + 1
            self._within(event, selection)
        incident_id = selection.get("incident_id")
        if incident_id is None:
            return
        wanted = [r for r in self.incidents.values() if r[0] == incident_id]
        if not wanted:
            self.report.add(f"incident {_shown(incident_id)}", "was exported, but is not "
                            "proven in the bundle")  # fmt: skip
            return
        held = signals.get(_hashable(wanted[0][_INCIDENT_SEQ]), 0)
        sealed = wanted[0][_INCIDENT_SIGNALS]
        if held != sealed:
            # Not proof of tampering: an alert replayed after its first incident closed is
            # counted by the new incident but stored once, under the first.
            self.report.notes.append(
                f"incident {_shown(incident_id)} was sealed with {_shown(sealed)} signals; the "
                f"bundle holds {held} of them (left out, or replayed alerts stored earlier)"
            )

    def _within(self, event: _EventRef, selection: dict[str, Any]) -> None:
        if "from_ns" not in selection:
            return
        in_time = type(event.time_ns) is int and (
            selection["from_ns"] <= event.time_ns <= selection["to_ns"]
        )
        namespace = selection["namespace"]
        facet_namespace = self.facets.get(_hashable(event.facet), namespace)
        if not in_time or (namespace is not None and facet_namespace != namespace):
            self.report.add(event.where, "is outside the time range or namespace the bundle "
                            "says it holds")  # fmt: skip

    # -- one record line -----------------------------------------------------------------

    def _proven(self, document: dict[str, Any], kind: str, where: str) -> list[Any] | None:
        """The record once its proof into the current segment's root holds; None (reported)
        otherwise."""
        record = self._record(document, kind)
        index = document.get("index")
        if not _is_u64(index):
            raise self.lines.error("its index is not a leaf number")
        proof = self._proof(document)
        block = self._current()
        if not block.trusted:
            return None  # the segment is reported already
        sealed_in = record[RECORD_TYPES[kind]]
        if sealed_in != block.id:
            self.report.add(where, f"names segment {_shown(sealed_in)}, but is filed under "
                            f"segment {block.id}")  # fmt: skip
            return None
        if index in block.seen:
            self.report.add(where, f"leaf {index} of segment {block.id} appears twice")
            return None
        leaf = self._leaf(_LEAF_OF[kind], record, where)
        if leaf is None:
            return None
        if not merkle.verify_inclusion(leaf, index, block.size, proof, block.root):
            self.report.add(where, f"does not match segment {block.id}'s Merkle root: altered")
            return None
        block.seen.add(index)
        self.proven.append(leaf)
        return record

    def _leaf(
        self, leaf_of: Callable[[Sequence[Any]], bytes], record: list[Any], where: str
    ) -> bytes | None:
        try:
            return leaf_of(record)
        except (TypeError, ValueError) as exc:
            self.report.add(where, f"holds a value no writer stores ({_shown(str(exc))})")
            return None

    def _current(self) -> _Block:
        if self.block is None:
            raise self.lines.error("a record line before any segment line")
        return self.block

    # -- typed fields --------------------------------------------------------------------

    def _record(self, document: dict[str, Any], kind: str) -> list[Any]:
        record = document.get("record")
        if type(record) is not list or len(record) != _RECORD_LENGTH[kind]:
            raise self.lines.error(f"its record is not a {kind} record")
        return record

    @staticmethod
    def _peek(document: dict[str, Any], position: int) -> Any:
        record = document.get("record")
        return record[position] if type(record) is list and len(record) > position else None

    def _proof(self, document: dict[str, Any]) -> list[bytes]:
        proof = document.get("proof")
        if type(proof) is not list or len(proof) > _MAX_PROOF:
            raise self.lines.error("its proof is not a list of hashes")
        return [self._hash(node, "a proof hash") for node in proof]

    def _raw(self, document: dict[str, Any]) -> bytes:
        text, encoded = document.get("raw"), document.get("raw_base64")
        if type(text) is str and encoded is None:
            try:
                return text.encode()
            except UnicodeEncodeError:  # a lone surrogate: not bytes a writer wrote
                raise self.lines.error("its raw text is not UTF-8") from None
        if text is None and encoded is not None:
            return self._bytes(encoded, "raw_base64")
        raise self.lines.error("an event line holds its bytes in raw or raw_base64")

    def _text(self, document: dict[str, Any], name: str) -> str:
        value = document.get(name)
        if type(value) is not str:
            raise self.lines.error(f"its {name} is not text")
        return value

    def _u64(self, document: dict[str, Any], name: str) -> int:
        value = document.get(name)
        if not _is_u64(value):
            raise self.lines.error(f"its {name} is not a number")
        return int(value)

    def _bytes(self, value: Any, what: str) -> bytes:
        data = b64decode(value)
        if data is None:
            raise self.lines.error(f"its {what} is not base64")
        return data

    def _hash(self, value: Any, what: str) -> bytes:
        data = self._bytes(value, what)
        if len(data) != merkle.HASH_SIZE:
            raise self.lines.error(f"{what} is not {merkle.HASH_SIZE} bytes")
        return data


def _is_u64(value: Any) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= _MAX_U64


def _hashable(value: Any) -> Any:
    """A JSON value usable as a key (a list or object from a hostile bundle is not)."""
    return value if isinstance(value, str | int | float | None) else repr(value)


def _shown(value: Any, limit: int = _MAX_SHOWN) -> str:
    """An untrusted value as printable text: control and non-ASCII characters escaped, cut."""
    text = value if type(value) is str else repr(value)
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return escaped if len(escaped) <= limit else f"{escaped[:limit]}..."
