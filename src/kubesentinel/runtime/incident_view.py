"""``kubesentinel incidents list``: incidents as a terminal table or as JSON.

JSON output is a list (newest first, as given) of one object per incident, one per line::

    {
      "id": "3f2a9c0d1e4b5a67",          16 hex: sha256(workload key, first event id)
      "status": "open" | "closed",
      "severity": "low" | "medium" | "high" | "critical",
      "risk_score": 64.0,                0..100
      "workload": {"key": "default/prod/Deployment/web", "cluster": "default",
                   "namespace": "prod", "kind": "Deployment", "name": "web"},
      "first_time": "2025-02-10T09:15:40.698757000Z",   ISO 8601 UTC, nanoseconds
      "first_ns": 1739178940698757000,                  the same instant, ns since the epoch
      "last_time": "...", "last_ns": ...,
      "event_count": 12,                 every event, repeats included
      "rules": [{"rule": "Terminal shell in container", "count": 10}, ...],  first seen first
      "tactics": ["execution", "credential_access"],   MITRE ATT&CK, in the order first seen
      "techniques": ["T1059", "T1552"],
      "reasons": [{"points": 28.0, "reason": "highest Falco priority Warning"}, ...],
      "posture": ["KS-0001", "KS-0005"],  static rule ids failing on the workload
      "event_ids": ["...", ...]          the first 1,000 (the correlator's cap); event_count
                                         has the total and the store keeps every event
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from kubesentinel.models import Incident, Severity
from kubesentinel.models.event import Workload

TOP_RULES = 3
TOP_RULES_WIDTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADERS = ("ID", "WORKLOAD", "SEVERITY", "SCORE", "EVENTS", "FIRST", "LAST", "TOP RULES",
            "TACTICS")  # fmt: skip
_RIGHT_ALIGNED = {"SCORE", "EVENTS"}
# Widest cell per column; longer text ends in "..." (the JSON output has it all).
_MAX_WIDTH = {"WORKLOAD": 60, "TOP RULES": TOP_RULES_WIDTH, "TACTICS": 80}


def render_incidents(incidents: Sequence[Incident], fmt: Literal["table", "json"]) -> str:
    if fmt == "json":
        # One compact object per line: json.dumps(indent=...) drops to the pure-Python encoder,
        # slow on thousands of incidents with thousands of event ids each.
        if not incidents:
            return "[]\n"
        body = ",\n".join(f"  {json.dumps(incident_document(i))}" for i in incidents)
        return f"[\n{body}\n]\n"
    if fmt == "table":
        return _table(incidents)
    raise ValueError(f"unknown format {fmt!r} (expected table or json)")


def incident_document(incident: Incident) -> dict[str, Any]:
    """One incident as plain JSON data, keys in the documented order."""
    w = incident.workload
    return {
        "id": incident.id,
        "status": incident.status,
        "severity": incident.severity.label,
        "risk_score": incident.risk_score,
        "workload": {
            "key": w.key,
            "cluster": w.cluster,
            "namespace": w.namespace,
            "kind": w.kind,
            "name": w.name,
        },
        "first_time": iso_time(incident.first_ns),
        "first_ns": incident.first_ns,
        "last_time": iso_time(incident.last_ns),
        "last_ns": incident.last_ns,
        "event_count": incident.event_count,
        "rules": [{"rule": r.rule, "count": r.count} for r in incident.rules],
        "tactics": list(incident.tactics),
        "techniques": list(incident.techniques),
        "reasons": [{"points": r.points, "reason": r.reason} for r in incident.reasons],
        "posture": list(incident.posture),
        "event_ids": list(incident.event_ids),
    }


def iso_time(time_ns: int, *, precise: bool = True) -> str:
    """``2025-02-10T09:15:40.698757000Z`` (UTC), or to the second when not ``precise``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z" if precise else f"{text}Z"


def workload_label(workload: Workload) -> str:
    """``prod/Deployment/web``; ``Host/node-1`` without a namespace; ``cluster:`` when named."""
    label = f"{workload.kind}/{workload.name}"
    if workload.namespace:
        label = f"{workload.namespace}/{label}"
    return label if workload.cluster in ("", "default") else f"{workload.cluster}:{label}"


def top_rules(incident: Incident, limit: int = TOP_RULES, width: int = TOP_RULES_WIDTH) -> str:
    """Most frequent rules first (ties: first seen first) with their counts, as many as fit."""
    ranked = sorted(incident.rules, key=lambda r: -r.count)
    parts: list[str] = []
    for rule in ranked[:limit]:
        part = f"{rule.rule} ({rule.count})"
        # Keep room for ", +N more"; the first rule always shows (clipped if need be).
        if parts and len(", ".join([*parts, part])) > width - 10:
            break
        parts.append(part)
    hidden = len(ranked) - len(parts)
    text = ", ".join(parts)
    return f"{text}, +{hidden} more" if hidden > 0 else text


def _table(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "No incidents.\n"
    rows: list[tuple[str, ...]] = [
        (
            i.id,
            workload_label(i.workload),
            i.severity.label,
            f"{i.risk_score:.1f}",
            str(i.event_count),
            iso_time(i.first_ns, precise=False),
            iso_time(i.last_ns, precise=False),
            top_rules(i),
            ", ".join(i.tactics) or "-",
        )
        for i in incidents
    ]
    limits = [_MAX_WIDTH.get(header) for header in _HEADERS]
    rows = [
        tuple(_clip(_printable(c), n) for c, n in zip(row, limits, strict=True)) for row in rows
    ]
    widths = [max(len(h), *(len(r[n]) for r in rows)) for n, h in enumerate(_HEADERS)]
    lines = [_line(_HEADERS, widths)]
    lines.extend(_line(row, widths) for row in rows)
    lines.append("")
    lines.append(_summary(incidents))
    return "\n".join(lines) + "\n"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = [
        cell.rjust(width) if header in _RIGHT_ALIGNED else cell.ljust(width)
        for cell, width, header in zip(cells, widths, _HEADERS, strict=True)
    ]
    return "  ".join(parts).rstrip()


def _summary(incidents: Sequence[Incident]) -> str:
    counts = {s: 0 for s in sorted(Severity, reverse=True)}
    for incident in incidents:
        counts[incident.severity] += 1
    by_severity = ", ".join(f"{n} {s.label}" for s, n in counts.items() if n)
    noun = "incident" if len(incidents) == 1 else "incidents"
    open_count = sum(1 for i in incidents if i.status == "open")
    return f"{len(incidents)} {noun} ({by_severity}); {open_count} open"


def _clip(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


def _printable(text: str) -> str:
    """Names come from alerts: show control characters as escapes, never send them raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
