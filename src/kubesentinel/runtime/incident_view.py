"""``kubesentinel incidents list`` and ``incidents show``: a terminal table or JSON.

``list --format json`` prints a list (newest first, as given) of one object per incident, one
per line::

    {
      "id": "3f2a9c0d1e4b5a67",          16 hex: sha256(workload key, first event id)
      "status": "open" | "closed",
      "severity": "low" | "medium" | "high" | "critical",
      "risk_score": 64.0,                0..100
      "workload": {"key": "default/prod/Deployment/web", "cluster": "default",
                   "namespace": "prod", "kind": "Deployment", "name": "web"},
      "first_time": "2025-02-10T09:15:40.698757000Z",   its first signal: ISO 8601 UTC, ns
      "first_ns": 1739178940698757000,                  the same instant, ns since the epoch
      "last_time": "...", "last_ns": ...,               its last signal
      "previous_id": null | "9c0d...",   the incident this one continues (max duration hit)
      "event_count": 12,                 its signals (qualifying alerts)
      "context": {"telemetry": 0, "low_priority": 3, "repeat": 5000,   context events, per
                  "sample_ids": ["...", ...]},                         reason; the first 20 ids
      "rules": [{"rule": "Terminal shell in container", "count": 10,   first seen first;
                 "priority": "Notice"}, ...],                          count: signals + repeats
      "tactics": ["execution", "credential_access"],   MITRE ATT&CK, in the order first seen
      "techniques": ["T1059", "T1552"],
      "reasons": [{"points": 28.0, "reason": "highest Falco priority Warning"}, ...],
      "posture": ["KS-0001", "KS-0005"],  static rule ids failing on the workload
      "event_ids": ["...", ...],         every signal's id, in arrival order
      "anomalies": [{"event_id": "...", "score": 0.93,    its events the analyzer scored at
                     "reason": "process xmrig never seen in ..."}, ...],   or above
      "anomaly_count": 1                 ai.threshold: the first 100, and how many in all
    }

``show --format json`` prints one object::

    {
      "incident": {...},                 the object above
      "next_id": null | "...",           the incident that continues this one
      "events": [                        its signals, oldest first, then its context events
        {"id": "...", "role": "signal" | "telemetry" | "low_priority" | "repeat",
         "time": "...", "time_ns": ..., "rule": "...", "priority": "Warning",
         "source": "syscall", "process": "bash" | null, "cmdline": "..." | null,
         "pod": ... , "container_id": ..., "container_image": ..., "hostname": "...",
         "origin": "falco.jsonl:12", "output": "...",
         "anomaly": null | {"score": 0.93, "reason": "..."},   when it is one of the anomalies
         "evidence": {"segment": 12, "offset": 3456, "length": 789,
                      "ref": "segment 12 @ 3456+789"}},   its bytes as received, verified
        ...
      ],
      "context_not_shown": 0             context events left out (show --all lists them)
    }

Every string from an alert is escaped: JSON by ``json.dumps``; the table shows control
characters as ``\\xNN`` escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from kubesentinel.models import Incident, RuleCount, Severity
from kubesentinel.models.event import Workload
from kubesentinel.models.incident import Anomaly
from kubesentinel.runtime.store.interface import StoredEvent

if TYPE_CHECKING:
    from kubesentinel.vault.verify import VerifyReport

TOP_RULES = 3
TOP_RULES_WIDTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADERS = ("ID", "WORKLOAD", "SEVERITY", "SCORE", "EVENTS", "CONTEXT", "FIRST", "LAST",
            "TOP RULES", "TACTICS")  # fmt: skip
_RIGHT_ALIGNED = {"SCORE", "EVENTS", "CONTEXT"}
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
        "previous_id": incident.previous_id,
        "event_count": incident.event_count,
        "context": {
            "telemetry": incident.context.telemetry,
            "low_priority": incident.context.low_priority,
            "repeat": incident.context.repeat,
            "sample_ids": list(incident.context_ids),
        },
        "rules": [
            {"rule": r.rule, "count": r.count, "priority": r.priority.label} for r in incident.rules
        ],
        "tactics": list(incident.tactics),
        "techniques": list(incident.techniques),
        "reasons": [{"points": r.points, "reason": r.reason} for r in incident.reasons],
        "posture": list(incident.posture),
        "event_ids": list(incident.event_ids),
        "anomalies": [
            {"event_id": a.event_id, "score": a.score, "reason": a.reason}
            for a in incident.anomalies
        ],
        "anomaly_count": incident.anomaly_count,
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


def ranked_rules(incident: Incident) -> list[RuleCount]:
    """Highest Falco priority first, then the most frequent, then the first seen."""
    return sorted(incident.rules, key=lambda r: (-r.priority, -r.count))


def top_rules(incident: Incident, limit: int = TOP_RULES, width: int = TOP_RULES_WIDTH) -> str:
    """``ranked_rules`` with their counts, as many as fit."""
    ranked = ranked_rules(incident)
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
            str(i.context.total),
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


# -- incidents show ----------------------------------------------------------------------------

_EVENT_HEADERS = ("TIME", "ROLE", "RULE", "PRIORITY", "PROCESS", "COMMAND LINE", "CONTAINER",
                  "EVIDENCE", "ANOMALY")  # fmt: skip
_EVENT_MAX_WIDTH = {"RULE": 60, "PROCESS": 24, "COMMAND LINE": 80, "CONTAINER": 48,
                    "ANOMALY": 100}  # fmt: skip
_ROLE_LABELS = {None: "signal", "telemetry": "telemetry", "low_priority": "low prio",
                "repeat": "repeat"}  # fmt: skip


def render_incident(
    incident: Incident,
    events: Sequence[StoredEvent],
    fmt: Literal["table", "json"],
    *,
    next_id: str | None = None,
    integrity: VerifyReport | None = None,
) -> str:
    """One incident with its events (signals first, then the context events given), and
    what checking them against the vault's seals found."""
    shown_context = sum(1 for e in events if e.context is not None)
    not_shown = max(incident.context.total - shown_context, 0)
    anomalies = {a.event_id: a for a in incident.anomalies}
    if fmt == "json":
        document = {
            "incident": incident_document(incident),
            "next_id": next_id,
            "events": [event_document(e, anomalies.get(e.event.id)) for e in events],
            "context_not_shown": not_shown,
        }
        if integrity is not None:
            document["integrity"] = integrity_document(integrity)
        return json.dumps(document, indent=2) + "\n"
    if fmt == "table":
        text = _incident_text(incident, next_id) + _events_table(events, not_shown, anomalies)
        return text + ("" if integrity is None else integrity_text(integrity))
    raise ValueError(f"unknown format {fmt!r} (expected table or json)")


def integrity_document(report: VerifyReport) -> dict[str, Any]:
    """What ``incidents show`` checked: the records of the segments it read, re-hashed
    against their sealed roots; the chain and checkpoints of the whole store."""
    return {
        "ok": report.ok,
        "records_checked": report.records,
        "segments_checked": report.checked_segments,
        "last_checkpoint_segment": report.last_checkpoint_segment,
        "unsigned_segments": report.unsigned_segments,
        "key_pinned": False,
        "problem_count": report.problem_count,
        "problems": [{"where": p.where, "what": p.what} for p in report.problems],
    }


def tampering_lines(report: VerifyReport, lead: str = "kubesentinel: ") -> str:
    """What a check found wrong, one line each (the first named first), for a reader."""
    lines = [f"{lead}TAMPERING found ({report.problem_count} problem(s)); first: "
             f"{_printable(str(report.problems[0]))}"]  # fmt: skip
    lines.extend(f"  {_printable(str(problem))}" for problem in report.problems[1:])
    lines.append("  `kubesentinel vault verify` checks the whole store")
    return "\n".join(lines) + "\n"


def integrity_text(report: VerifyReport) -> str:
    if not report.ok:
        return "\n" + tampering_lines(report, "Integrity: ")
    signed = (
        f"chained to the checkpoint of segment {report.last_checkpoint_segment}"
        if report.last_checkpoint_segment
        else "chained, no checkpoint signed yet"
    )
    unsigned = (
        f" ({report.unsigned_segments} newer segment(s) not yet signed)"
        if report.unsigned_segments and report.last_checkpoint_segment
        else ""
    )
    return (
        f"\nIntegrity: verified: {report.records:,} records in {report.checked_segments} "
        f"segment(s) match their sealed roots, {signed}{unsigned}; checked with the key the "
        "store names (`kubesentinel vault verify --public-key` pins one)\n"
    )


def event_document(stored: StoredEvent, anomaly: Anomaly | None = None) -> dict[str, Any]:
    e = stored.event
    return {
        "id": e.id,
        "role": stored.context or "signal",
        "time": iso_time(e.time_ns),
        "time_ns": e.time_ns,
        "rule": e.rule,
        "priority": e.priority.label,
        "source": e.source,
        "process": _field_text(e.fields.get("proc.name")),
        "cmdline": _field_text(e.fields.get("proc.cmdline")),
        "pod": e.pod,
        "container_id": e.container_id,
        "container_image": e.container_image,
        "hostname": e.hostname,
        "origin": e.origin,
        "output": e.output,
        "evidence": {
            "segment": stored.segment,
            "offset": stored.offset,
            "length": stored.length,
            "ref": stored.evidence,
        },
        "anomaly": None if anomaly is None else {"score": anomaly.score, "reason": anomaly.reason},
    }


def _field_text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    return json.dumps(value)  # a number or JSON structure where text was expected


def _incident_text(incident: Incident, next_id: str | None) -> str:
    c = incident.context
    seconds = (incident.last_ns - incident.first_ns) // 1_000_000_000
    rules = "; ".join(f"{r.rule} ({r.priority.label}, {r.count})" for r in ranked_rules(incident))
    fields: list[tuple[str, str | None]] = [
        ("workload", f"{workload_label(incident.workload)}  [{incident.workload.key}]"),
        ("severity", f"{incident.severity.label} (risk score {incident.risk_score:.1f})"),
        ("signals", f"{iso_time(incident.first_ns, precise=False)} -> "
                    f"{iso_time(incident.last_ns, precise=False)} ({_duration(seconds)})"),
        ("continues", incident.previous_id),
        ("continued by", next_id),
        ("events", f"{incident.event_count} signals; {c.total} context "
                   f"(telemetry {c.telemetry}, low priority {c.low_priority}, "
                   f"repeat {c.repeat})"),
        ("rules", rules or "-"),
        ("tactics", ", ".join(incident.tactics) or "-"),
        ("techniques", ", ".join(incident.techniques) or "-"),
        ("posture", ", ".join(incident.posture) or "-"),
        ("anomalies", f"{incident.anomaly_count} events scored at or above ai.threshold"
                      if incident.anomaly_count else None),
    ]  # fmt: skip
    out = [f"Incident {_printable(incident.id)} ({_printable(incident.status)})"]
    out.extend(f"  {name + ':':<14}{_printable(text)}" for name, text in fields if text is not None)
    out.append("  reasons:")
    out.extend(f"    {r.points:+6.1f}  {_printable(r.reason)}" for r in incident.reasons)
    return "\n".join(out) + "\n\n"


def _events_table(
    events: Sequence[StoredEvent], not_shown: int, anomalies: dict[str, Anomaly]
) -> str:
    if not events:
        return "No stored events.\n"
    rows: list[tuple[str, ...]] = [
        (
            iso_time(s.event.time_ns),
            _ROLE_LABELS.get(s.context, s.context or "signal"),
            s.event.rule,
            s.event.priority.label,
            _field_text(s.event.fields.get("proc.name")) or "-",
            _field_text(s.event.fields.get("proc.cmdline")) or "-",
            _container(s),
            s.evidence,
            _anomaly_cell(anomalies.get(s.event.id)),
        )
        for s in events
    ]
    headers: tuple[str, ...] = _EVENT_HEADERS
    if not anomalies:  # no ANOMALY column for an incident of Falco rules alone
        headers = headers[:-1]
        rows = [row[:-1] for row in rows]
    limits = [_EVENT_MAX_WIDTH.get(header) for header in headers]
    rows = [
        tuple(_clip(_printable(c), n) for c, n in zip(row, limits, strict=True)) for row in rows
    ]
    widths = [max(len(h), *(len(r[n]) for r in rows)) for n, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
    signals = sum(1 for s in events if s.context is None)
    lines.append("")
    summary = f"{signals} signals, {len(events) - signals} context events"
    if not_shown:
        summary += f" ({not_shown} more context events not shown: --all lists them)"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _event_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _anomaly_cell(anomaly: Anomaly | None) -> str:
    return "-" if anomaly is None else f"{anomaly.score:.2f} {anomaly.reason}"


def _container(stored: StoredEvent) -> str:
    e = stored.event
    if e.container_id is None:
        return "-" if e.pod is None else e.pod
    return f"{e.container_id} ({e.container_image})" if e.container_image else e.container_id


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
