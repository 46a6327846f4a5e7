"""How an event is laid out in the store, and the half of a write that runs in the monitor.

An event costs little on disk because what many events share is kept once:

- ``facets``: rule, priority, source, workload, pod, container, image and MITRE mapping, one
  row per distinct combination (the alerts of one container and rule share it);
- ``events``: time, id (16 bytes for the hex and UUID ids Falco and the monitor make), its
  incident (a small number), its role there, its facet, and where its bytes are;
- the segment: the alerts' bytes as received, then a *sidecar* of what differs for every
  alert and is only read with its bytes (origin, time received), compressed together.

``encode_write`` turns events and incident states into ``EncodedWrite`` bytes (JSON arrays,
no pickles) that cross to the writer process; ``SQLiteStore.apply`` files them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from kubesentinel.models import Event, FalcoAlert, Incident
from kubesentinel.models.incident import CONTEXT_REASONS
from kubesentinel.runtime.evidence import falco_document

__all__ = [
    "ROLE_CODES",
    "EncodedWrite",
    "encode_write",
    "id_key",
    "id_text",
    "read_sidecar",
    "role_name",
]

# Positions in an encoded event row (the writer's input); FACET indexes the write's facets.
TIME, ID, INCIDENT, ROLE, FACET, OFFSET, LENGTH = range(7)

# An event's role in its incident: NULL for a signal, else why it is context of it.
ROLE_CODES: Final = {reason: code for code, reason in enumerate(CONTEXT_REASONS, 1)}
_ROLE_NAMES: Final = {code: reason for reason, code in ROLE_CODES.items()}

_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_TAG: Final = b"u"


def id_key(event_id: str) -> bytes | str:
    """The stored form of an id: 16 bytes for a content id (32 lowercase hex), a tag and 16
    bytes for a lowercase UUID (falcosidekick's), the text itself for anything else."""
    size = len(event_id)
    if size == 32:
        try:
            key = bytes.fromhex(event_id)
        except ValueError:  # not hex
            return event_id
        # fromhex also reads upper case and skips spaces: only what hex() gives back
        return key if key.hex() == event_id else event_id
    if size == 36 and _UUID.fullmatch(event_id):
        return _UUID_TAG + bytes.fromhex(event_id.replace("-", ""))
    return event_id


def id_text(key: bytes | str) -> str:
    """The id ``id_key`` stored, exactly as it was."""
    if isinstance(key, str):
        return key
    if len(key) == 16:
        return key.hex()
    if len(key) == 17 and key[:1] == _UUID_TAG:
        h = key[1:].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    raise ValueError(f"not a stored event id: {len(key)} bytes")


def role_name(code: int | None) -> str | None:
    """The context reason of a stored role code (None: a signal)."""
    if code is None:
        return None
    return _ROLE_NAMES[code]


def read_sidecar(data: bytes) -> dict[int, tuple[str, int]]:
    """offset -> (origin, received_ns); ValueError for a damaged sidecar."""
    try:
        entries = orjson.loads(data) if data else []
        return {int(offset): (str(origin), int(received)) for offset, origin, received in entries}
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"the segment's sidecar is damaged ({exc})") from None


@dataclass(frozen=True, slots=True)
class EncodedWrite:
    """One write as bytes, ready to cross to a writer process: JSON arrays of event rows,
    of the distinct facets they index and of incident rows; the events' bytes as received,
    concatenated (rows point into them); and their sidecar, ``[[offset, origin, received_ns]]``.
    Everything per event that needs no store lookup is done here, in the monitor's workers,
    so that the single writer does as little as possible."""

    events: bytes
    facets: bytes
    evidence: bytes
    sidecar: bytes
    incidents: bytes


def encode_write(events: Sequence[Event], incidents: Sequence[Incident]) -> EncodedWrite | None:
    """The rows of a write, or None when there is nothing to write.

    Each event is filed under the incident whose state in the same call added it (as a signal,
    or as context with its reason); an event no state added (context of a workload with no
    open incident, a redelivery) belongs to no incident. The last state of an incident wins.
    """
    if not events and not incidents:
        return None
    latest: dict[str, Incident] = {}
    owners: dict[str, tuple[str, int | None]] = {}
    for incident in incidents:
        latest[incident.id] = incident
        if incident.added_ids:
            owners.update(dict.fromkeys(incident.added_ids, (incident.id, None)))
        if incident.added_context:
            marks = {reason: (incident.id, code) for reason, code in ROLE_CODES.items()}
            owners.update({event_id: marks[why] for event_id, why in incident.added_context})
    event_rows, facets, evidence, sidecar = _event_rows(events, owners)
    incident_rows = json_array([incident_row(incident) for incident in latest.values()])
    return EncodedWrite(event_rows, facets, evidence, sidecar, incident_rows)


_NO_OWNER: Final[tuple[None, None]] = (None, None)


def _event_rows(
    events: Sequence[Event], owners: dict[str, tuple[str, int | None]]
) -> tuple[bytes, bytes, bytes, bytes]:
    owner_of = owners.get
    as_json = _tuple_json
    facet_index: dict[tuple[Any, ...], int] = {}
    rows = []
    sidecar = []
    chunks = []
    offset = 0
    for e in events:
        w = e.workload
        facet = (
            e.rule, e.priority, e.source, w.cluster, w.namespace, w.kind, w.name, e.pod,
            e.container_id, e.container_image, as_json(e.tactics), as_json(e.techniques),
        )  # fmt: skip
        index = facet_index.setdefault(facet, len(facet_index))
        owner, role = owner_of(e.id, _NO_OWNER)
        raw = e.raw or _document(e)
        size = len(raw)
        chunks.append(raw)
        rows.append((e.time_ns, e.id, owner, role, index, offset, size))
        sidecar.append((offset, e.origin, e.received_ns))
        offset += size
    return (json_array(rows), json_array(list(facet_index)), b"".join(chunks), json_array(sidecar))


@functools.lru_cache(maxsize=4096)
def _tuple_json(values: tuple[str, ...]) -> str:
    """MITRE tuples repeat with their rule: encode each distinct one once."""
    return json.dumps(values)


def _document(event: Event) -> bytes:
    """Evidence for an event built in code (no bytes as received): its Falco JSON."""
    alert = FalcoAlert(
        event.time_ns, event.rule, event.priority, event.source, event.output, event.hostname,
        event.tags, event.fields, None, event.origin,
    )  # fmt: skip
    return falco_document(alert)


def json_array(rows: list[tuple[Any, ...]]) -> bytes:
    try:
        return orjson.dumps(rows)
    except TypeError:  # a lone surrogate (a \ud800 escape in an alert) or a huge integer
        return orjson.dumps([_utf8_safe(row) for row in rows], default=str)


def _utf8_safe(value: Any) -> Any:
    """Text SQLite can store: lone surrogates become backslash escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, tuple):
        return [_utf8_safe(item) for item in value]
    return value


def incident_row(incident: Incident) -> tuple[Any, ...]:
    w = incident.workload
    c = incident.context
    rules = [
        {"rule": r.rule, "count": r.count, "priority": r.priority.label} for r in incident.rules
    ]
    context: dict[str, Any] = {
        "telemetry": c.telemetry, "low_priority": c.low_priority, "repeat": c.repeat,
        "sample_ids": list(incident.context_ids),
    }  # fmt: skip
    if incident.anomaly_count:
        # In the sealed context column, so the events table (and every leaf) keeps its shape;
        # absent without anomalies, so such rows are byte for byte what they were before.
        context["anomalies"] = [[a.event_id, a.score, a.reason] for a in incident.anomalies]
        context["anomaly_count"] = incident.anomaly_count
    return (
        incident.id, w.key, w.cluster, w.namespace, w.kind, w.name, incident.first_ns,
        incident.last_ns, incident.severity.label, float(incident.risk_score),
        json.dumps([{"points": r.points, "reason": r.reason} for r in incident.reasons]),
        json.dumps(rules), json.dumps(incident.tactics), json.dumps(incident.techniques),
        incident.event_count, incident.event_count, json.dumps(incident.posture),
        incident.status, incident.previous_id, json.dumps(context),
    )  # fmt: skip
