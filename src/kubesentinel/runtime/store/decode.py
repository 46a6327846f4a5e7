"""Rows of the store's read queries back into models, the same for every backend (SQLite,
PostgreSQL): an incident row with its event ids, an event row with its bytes as received."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kubesentinel.errors import EventError
from kubesentinel.models import Event, Incident, Priority, RiskReason, RuleCount, Severity
from kubesentinel.models.event import Workload
from kubesentinel.models.incident import Anomaly, ContextCounts, EventIds
from kubesentinel.runtime.parse import decode_json
from kubesentinel.runtime.store.rows import id_text

__all__ = ["event_from", "incident_from"]


def incident_from(row: Sequence[Any], event_ids: EventIds) -> Incident:
    context = json.loads(row[19])
    return Incident(
        id=row[0],
        workload=Workload(cluster=row[2], namespace=row[3], kind=row[4], name=row[5]),
        first_ns=row[6],
        last_ns=row[7],
        severity=Severity.parse(row[8]),
        risk_score=row[9],
        reasons=tuple(RiskReason(r["points"], r["reason"]) for r in json.loads(row[10])),
        rules=tuple(
            RuleCount(r["rule"], r["count"], Priority.parse(r.get("priority", "debug")))
            for r in json.loads(row[11])
        ),
        tactics=tuple(json.loads(row[12])),
        techniques=tuple(json.loads(row[13])),
        event_count=row[14],
        event_ids=event_ids,
        posture=tuple(json.loads(row[16])),
        status=row[17],
        previous_id=row[18],
        context=ContextCounts(
            context.get("telemetry", 0), context.get("low_priority", 0), context.get("repeat", 0)
        ),
        context_ids=tuple(context.get("sample_ids", ())),
        anomalies=tuple(
            Anomaly(str(event_id), float(score), str(reason))
            for event_id, score, reason in context.get("anomalies", ())
        ),
        anomaly_count=int(context.get("anomaly_count", 0)),
    )


def event_from(row: Sequence[Any], raw: bytes, origin: str, received_ns: int) -> Event:
    """An event from its row (``_SELECT_EVENTS``), its bytes as received (output, hostname,
    tags and fields) and its sidecar entry."""
    try:
        alert = decode_json(raw)
    except EventError:
        alert = None
    if type(alert) is not dict:
        alert = {}
    fields = alert.get("output_fields")
    if type(fields) is not dict:
        fields = {}
    hostname = alert.get("hostname")
    if type(hostname) is not str:
        hostname = fields.get("evt.hostname")
    tags = alert.get("tags")
    output = alert.get("output")
    return Event(
        id=id_text(row[1]),
        time_ns=row[0],
        received_ns=received_ns,
        rule=row[4],
        priority=Priority(row[5]),
        source=row[6],
        hostname=hostname if type(hostname) is str else "",
        workload=Workload(cluster=row[7], namespace=row[8], kind=row[9], name=row[10]),
        pod=row[11],
        container_id=row[12],
        container_image=row[13],
        tactics=tuple(json.loads(row[14])),
        techniques=tuple(json.loads(row[15])),
        tags=tuple(tag for tag in tags if type(tag) is str) if type(tags) is list else (),
        output=output if type(output) is str else "",
        fields=fields,
        origin=origin,
        raw=raw,
    )
