"""Incident -> IncidentReport: every section gathered from the store, nothing invented.

The store is read as ``incidents show`` reads it: the incident, its integrity against the
vault's seals (``verify_incident``), its events with the context the vault kept, then the
sealed records for the evidence manifest, the saved posture and incidents related to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Final

from kubesentinel.errors import ReportError
from kubesentinel.models import Incident, Severity
from kubesentinel.models.falco_alert import Priority
from kubesentinel.models.report import (
    REPORT_VERSION,
    AnomalyItem,
    ContainmentItem,
    IncidentReport,
    Reason,
    RelatedIncident,
    Summary,
)
from kubesentinel.reporting import activity, attack
from kubesentinel.reporting.containment import containment_plan
from kubesentinel.reporting.evidence import evidence_manifest
from kubesentinel.reporting.posture import posture_section, rule_texts
from kubesentinel.runtime.incident_view import ranked_rules, workload_label
from kubesentinel.runtime.store.interface import StoredEvent, VaultStore

__all__ = ["RELATED_CAP", "build_incident_report", "integrity_message"]

RELATED_CAP: Final = 10  # related incidents listed
RELATED_SCAN: Final = 500  # incidents of the namespace looked at for the same workload
NEARBY_SCAN: Final = 20  # other incidents nearest in time checked for the same image or node
NEARBY_WINDOW_NS: Final = 3600 * 1_000_000_000
PLACES_CAP: Final = 20  # pods, nodes, images named in the summary
_S: Final = 1_000_000_000


def build_incident_report(
    store: VaultStore,
    incident_id: str,
    *,
    rules_path: str | None = None,
    now_ns: int | None = None,
) -> IncidentReport:
    """The report of one incident; ReportError when the store has no such incident."""
    incident = store.get_incident(incident_id)
    if incident is None:
        raise ReportError(
            f"no incident {incident_id!r} in {store.name}",
            hint="`kubesentinel incidents list` shows the incidents and their ids",
        )
    integrity = store.verify_incident(incident.id)  # before reading what it vouches for
    events = store.stored_events_of(incident.id)
    next_id = store.next_of(incident.id)
    problems = tuple(str(p) for p in integrity.problems)
    banner = integrity_message(integrity.problem_count, problems)
    roles = {s.event.id: activity.role_of(s) for s in events}
    evidence = evidence_manifest(
        store, incident.id, roles, verified=integrity.ok, problems=problems
    )
    posture = store.load_posture()
    findings = posture.of(incident.workload) if posture is not None else ()
    texts = rule_texts(rules_path)
    pods = _distinct(s.event.pod for s in events)
    nodes = _distinct(s.event.hostname for s in events)
    images = _distinct(s.event.container_image for s in events)
    # Names, as a pod spec (and so a securityContext patch) names its containers.
    containers = _distinct(activity.text_field(s.event.fields, "container.name") for s in events)
    by_id = {s.event.id: s.event for s in events}
    scores = {a.event_id: a.score for a in incident.anomalies}
    peers, peers_left_out = activity.network_peers(events)
    files, files_left_out = activity.files_touched(events)
    plan = containment_plan(
        incident.workload,
        findings,
        pods=pods,
        containers=containers,
        nodes=nodes,
        service_account=_service_account(events, incident.workload.namespace),
        remediations={rule_id: text[1] for rule_id, text in texts.items()},
    )
    return IncidentReport(
        version=REPORT_VERSION,
        generated_ns=time.time_ns() if now_ns is None else now_ns,
        incident_id=incident.id,
        store=store.name,
        integrity_problem=banner,
        summary=_summary(
            incident, next_id, pods=pods, nodes=nodes, images=images, containers=containers
        ),
        timeline=activity.timeline(events, scores),
        process_tree=activity.process_tree(events),
        network=tuple(peers),
        network_left_out=peers_left_out,
        files=tuple(files),
        files_left_out=files_left_out,
        tactics=attack.tactics(incident.tactics),
        techniques=attack.techniques(incident.techniques),
        posture=posture_section(posture, findings, incident.posture, incident.tactics, texts),
        anomalies=tuple(
            AnomalyItem(
                a.event_id,
                a.score,
                a.reason,
                by_id[a.event_id].time_ns if a.event_id in by_id else None,
                by_id[a.event_id].rule if a.event_id in by_id else None,
            )
            for a in incident.anomalies
        ),
        anomaly_count=incident.anomaly_count,
        evidence=evidence,
        containment=tuple(
            ContainmentItem(s.title, s.why, s.commands, s.manifest, s.manifest_name) for s in plan
        ),
        related=_related(store, incident, images, nodes),
    )


def integrity_message(count: int, problems: Sequence[str]) -> str | None:
    """The banner's text when a verification found problems; None when it found none."""
    if count == 0:
        return None
    first = problems[0] if problems else "see `kubesentinel vault verify`"
    return (
        f"The evidence behind this report FAILS verification ({count} problem(s); first: "
        f"{first}). Do not rely on it until `kubesentinel vault verify` explains why."
    )


def _distinct(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
            if len(seen) >= PLACES_CAP:
                break
    return tuple(seen)


def _service_account(events: Sequence[StoredEvent], namespace: str) -> str | None:
    """The workload's service account when an audit event names it as its user
    (``ka.user.name`` = ``system:serviceaccount:NAMESPACE:NAME``)."""
    prefix = f"system:serviceaccount:{namespace}:"
    for stored in events:
        user = activity.text_field(stored.event.fields, "ka.user.name")
        if user is not None and user.startswith(prefix) and len(user) > len(prefix):
            return user[len(prefix) :]
    return None


# -- summary -------------------------------------------------------------------------------


def _summary(
    incident: Incident,
    next_id: str | None,
    *,
    pods: tuple[str, ...],
    nodes: tuple[str, ...],
    images: tuple[str, ...],
    containers: tuple[str, ...],
) -> Summary:
    w = incident.workload
    ranked = ranked_rules(incident)
    top = ranked[0].rule if ranked else "an unnamed rule"
    others = len(ranked) - 1
    if others > 0:  # the count is of all the rules' alerts: name the most serious rule apart
        rules = f"{len(ranked)} rules, the most serious {top!r} ({ranked[0].priority.label})"
    else:
        rules = f"{top!r}"
    where = f"{w.kind} {w.namespace}/{w.name}" if w.namespace else f"{w.kind} {w.name}"
    pod_text = f" in pod {pods[0]}" if len(pods) == 1 else f" in {len(pods)} pods" if pods else ""
    node_text = f" on node {nodes[0]}" if len(nodes) == 1 else f" on {len(nodes)} nodes"
    node_text = node_text if nodes else ""
    minutes = (incident.last_ns - incident.first_ns) / (60 * _S)
    span = f"over {minutes:.0f} min" if minutes >= 1 else "within a minute"
    if others > 0 and (pod_text or node_text):
        rules += ","
    headline = (
        f"{incident.severity.label.capitalize()} incident on {where} (cluster {w.cluster}): "
        f"{incident.event_count} alert(s) of {rules}{pod_text}{node_text}, {span}."
    )
    if incident.tactics:
        headline += f" ATT&CK tactics seen: {', '.join(incident.tactics)}."
    confidence, why = _confidence(incident, ranked[0].priority if ranked else Priority.DEBUG)
    return Summary(
        headline=headline,
        status=incident.status,
        severity=incident.severity.label,
        risk_score=incident.risk_score,
        reasons=tuple(Reason(r.points, r.reason) for r in incident.reasons),
        confidence=confidence,
        confidence_why=why,
        first_step=_first_step(incident, pods, nodes),
        first_ns=incident.first_ns,
        last_ns=incident.last_ns,
        signals=incident.event_count,
        context_events=incident.context.total,
        cluster=w.cluster,
        namespace=w.namespace,
        kind=w.kind,
        name=w.name,
        pods=pods,
        nodes=nodes,
        images=images,
        containers=containers,
        previous_id=incident.previous_id,
        next_id=next_id,
    )


def _confidence(incident: Incident, highest: Priority) -> tuple[str, str]:
    """How sure the evidence makes us that this is an attack, and the facts that say so."""
    facts = [
        f"{len(incident.rules)} distinct rule(s)",
        f"{len(incident.tactics)} ATT&CK tactic(s)",
        f"highest Falco priority {highest.label}",
        f"{incident.anomaly_count} anomalous event(s) by the behavioural analyzer",
    ]
    strong = highest >= Priority.ERROR or incident.anomaly_count > 0
    if len(incident.tactics) >= 2 and strong:
        level = "high"
    elif len(incident.rules) >= 2 or strong or len(incident.tactics) >= 2:
        level = "medium"
    else:
        level = "low"
    return level, "; ".join(facts)


def _first_step(incident: Incident, pods: tuple[str, ...], nodes: tuple[str, ...]) -> str:
    """The one action the incident's own evidence points to first."""
    reached = set(incident.tactics)
    pod_names = ", ".join(pods[:3]) or "the workload's pods"
    node_names = ", ".join(nodes[:3]) or "its node"
    if reached & {"privilege_escalation", "lateral_movement"} or incident.workload.kind == "Host":
        return (
            f"Cordon {node_names} and isolate {pod_names}: the activity reached for the host "
            "or other workloads, so treat the node as suspect too."
        )
    if reached & {"exfiltration", "command_and_control"}:
        return (
            f"Cut the network of {pod_names} (the isolation step below): the activity reached "
            "command and control or exfiltration."
        )
    if "credential_access" in reached:
        return (
            f"Rotate the credentials {pod_names} can read (service account token, mounted "
            "secrets): the activity went for credentials."
        )
    if incident.severity >= Severity.HIGH:
        return f"Isolate {pod_names} with the step below, then read the timeline."
    return (
        f"Check with the workload's owners whether {ranked_rules(incident)[0].rule!r} is "
        "expected there; if not, isolate its pods."
        if incident.rules
        else "Read the timeline and check with the workload's owners."
    )


# -- related incidents ---------------------------------------------------------------------


def _related(
    store: VaultStore, incident: Incident, images: tuple[str, ...], nodes: tuple[str, ...]
) -> tuple[RelatedIncident, ...]:
    """Incidents on the same workload (the namespace's newest ``RELATED_SCAN``), then those
    of the ``NEARBY_SCAN`` nearest in time (within an hour) sharing an image or a node."""
    found: list[RelatedIncident] = []
    seen = {incident.id}
    for other in store.list_incidents(namespace=incident.workload.namespace, limit=RELATED_SCAN):
        if other.id not in seen and other.workload.key == incident.workload.key:
            seen.add(other.id)
            found.append(_related_row(other, "same workload"))
    nearby = [
        other
        for other in store.list_incidents(
            since_ns=incident.first_ns - NEARBY_WINDOW_NS, limit=RELATED_SCAN
        )
        if other.id not in seen and other.first_ns <= incident.last_ns + NEARBY_WINDOW_NS
    ]
    nearby.sort(key=lambda other: abs(other.first_ns - incident.first_ns))
    for other in nearby[:NEARBY_SCAN]:
        relation = _shared(store.stored_events_of(other.id, context_limit=0), images, nodes)
        if relation is not None:
            found.append(_related_row(other, relation))
    found.sort(key=lambda r: (r.relation != "same workload", -r.first_ns))
    return tuple(found[:RELATED_CAP])


def _shared(
    events: Sequence[StoredEvent], images: tuple[str, ...], nodes: tuple[str, ...]
) -> str | None:
    if any(s.event.container_image in images for s in events if s.event.container_image):
        return "same image"
    if any(s.event.hostname in nodes for s in events if s.event.hostname):
        return "same node"
    return None


def _related_row(other: Incident, relation: str) -> RelatedIncident:
    return RelatedIncident(
        other.id,
        relation,
        other.severity.label,
        other.risk_score,
        workload_label(other.workload),
        other.first_ns,
        other.last_ns,
    )
