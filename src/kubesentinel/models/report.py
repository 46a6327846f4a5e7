"""An incident report and a period report: what `kubesentinel report` renders. Data only.

Every value comes from the store (the incident, its events, the vault's records, the saved
posture) or from KubeSentinel's own tables (rule remediations, MITRE names); strings that came
from alerts are kept as they were and escaped by each format when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

REPORT_VERSION: Final = "1.0"  # docs/report-schema.json; a new major breaks readers


@dataclass(frozen=True, slots=True)
class Reason:
    points: float
    reason: str


@dataclass(frozen=True, slots=True)
class Summary:
    """The plain-English top of the report."""

    headline: str  # "A critical incident on monitoring/DaemonSet/node-agent: ..."
    status: str  # open | closed
    severity: str  # low | medium | high | critical
    risk_score: float
    reasons: tuple[Reason, ...]
    confidence: str  # low | medium | high
    confidence_why: str
    first_step: str  # the one thing to do first
    first_ns: int
    last_ns: int
    signals: int
    context_events: int
    cluster: str
    namespace: str
    kind: str
    name: str
    pods: tuple[str, ...]
    nodes: tuple[str, ...]
    images: tuple[str, ...]
    containers: tuple[str, ...]  # container names (container.name)
    previous_id: str | None
    next_id: str | None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    first_ns: int
    last_ns: int
    role: str  # "signal", or why it is context: telemetry | low_priority | repeat
    rule: str
    priority: str  # Falco's label
    process: str | None
    cmdline: str | None
    pod: str | None  # the first event's
    pods: int  # distinct pods among the row's events
    count: int  # consecutive events of one (rule, process, command line) collapsed
    anomaly: float | None  # the analyzer's score when one of its events was anomalous


@dataclass(frozen=True, slots=True)
class Timeline:
    rows: tuple[TimelineRow, ...]
    events: int  # events read for it (signals and the context the vault kept)
    collapsed_rows: int  # rows after collapsing repeats, before the cap
    cap: int


@dataclass(frozen=True, slots=True)
class ProcessNode:
    name: str
    pid: int | None
    cmdlines: tuple[str, ...]  # distinct, the first few
    events: int  # events naming this process itself
    rules: tuple[str, ...]
    children: tuple[ProcessNode, ...]


@dataclass(frozen=True, slots=True)
class ProcessTree:
    roots: tuple[ProcessNode, ...]
    nodes: int  # nodes shown
    left_out: int  # nodes not shown (the cap)
    cap: int


@dataclass(frozen=True, slots=True)
class NetworkPeer:
    remote: str  # "203.0.113.7:4444", or the connection's fd.name
    local: str | None
    process: str | None
    rules: tuple[str, ...]
    count: int


@dataclass(frozen=True, slots=True)
class FileTouched:
    path: str
    process: str | None
    rules: tuple[str, ...]
    count: int


@dataclass(frozen=True, slots=True)
class Attack:
    """A MITRE ATT&CK tactic or technique, with its page."""

    id: str  # "TA0002", "T1059.004"
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class PostureItem:
    rule_id: str
    severity: str
    title: str
    impact: str | None  # the rule's runtime impact, when it has one
    why: str  # why it mattered for this incident
    remediation: str | None  # from the rule catalogue; None for a rule it does not hold


@dataclass(frozen=True, slots=True)
class PostureSection:
    source: str | None  # the scan file, or "scan"; None: no posture stored
    saved_ns: int | None  # when it was stored; None for a posture saved before this was kept
    items: tuple[PostureItem, ...]


@dataclass(frozen=True, slots=True)
class AnomalyItem:
    event_id: str
    score: float
    reason: str
    time_ns: int | None  # None when the event is not among those read
    rule: str | None


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    event_id: str
    role: str
    time_ns: int
    segment: int
    record_hash: str  # hex of the record's RFC 6962 leaf hash


@dataclass(frozen=True, slots=True)
class EvidenceSegment:
    id: int
    sha256: str  # of its evidence bytes
    checkpoint: int | None  # the id of the checkpoint that covers it; None: not yet signed
    checkpoint_size: int | None  # the last segment that checkpoint signs


@dataclass(frozen=True, slots=True)
class Evidence:
    verified: bool
    problems: tuple[str, ...]  # what verification found wrong (the first few)
    incident_record_hash: str | None
    records: tuple[EvidenceRecord, ...]  # the first ``cap``
    record_count: int
    cap: int
    segments: tuple[EvidenceSegment, ...]
    checkpoint_note: str | None  # the text of the newest checkpoint covering them
    verify_command: str
    export_command: str


@dataclass(frozen=True, slots=True)
class ContainmentItem:
    title: str
    why: str
    commands: tuple[str, ...]
    manifest: str | None
    manifest_name: str | None


@dataclass(frozen=True, slots=True)
class RelatedIncident:
    id: str
    relation: str  # "same workload", "same image", "same node"
    severity: str
    risk_score: float
    workload: str
    first_ns: int
    last_ns: int


@dataclass(frozen=True, slots=True)
class IncidentReport:
    version: str
    generated_ns: int
    incident_id: str
    store: str
    integrity_problem: str | None  # set: the banner every format shows at the top
    summary: Summary
    timeline: Timeline
    process_tree: ProcessTree
    network: tuple[NetworkPeer, ...]  # at most ``activity.NETWORK_CAP``
    network_left_out: int  # distinct peers past the cap
    files: tuple[FileTouched, ...]
    files_left_out: int
    tactics: tuple[Attack, ...]
    techniques: tuple[Attack, ...]
    posture: PostureSection
    anomalies: tuple[AnomalyItem, ...]
    anomaly_count: int
    evidence: Evidence
    containment: tuple[ContainmentItem, ...]
    related: tuple[RelatedIncident, ...]


@dataclass(frozen=True, slots=True)
class Count:
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class PeriodRow:
    id: str
    severity: str
    risk_score: float
    status: str
    workload: str
    first_ns: int
    last_ns: int
    signals: int
    rules: str  # the top rules with their counts
    tactics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PeriodReport:
    version: str
    generated_ns: int
    store: str
    from_ns: int
    to_ns: int
    namespace: str | None
    integrity_problem: str | None
    incidents: int
    by_severity: tuple[Count, ...]
    by_namespace: tuple[Count, ...]
    by_workload: tuple[Count, ...]
    by_rule: tuple[Count, ...]  # alerts per rule (signals and repeats)
    by_tactic: tuple[Count, ...]
    top: tuple[PeriodRow, ...]  # highest risk first
    rows: tuple[PeriodRow, ...]  # oldest first, at most ``cap``
    cap: int
