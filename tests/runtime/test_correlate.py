"""Correlator: grouping per workload and window, counting, risk score, expiry, determinism."""

from __future__ import annotations

import hashlib

import pytest

from kubesentinel.bridge import POSTURE_CAP, posture_key, runtime_impacts
from kubesentinel.models import Event, Incident, Priority, Severity, Workload
from kubesentinel.models.posture import Posture, PostureFinding
from kubesentinel.runtime import correlate
from kubesentinel.runtime.correlate import Correlator, kill_chain, severity_of

S = 1_000_000_000
T0 = 1_739_178_940 * S
WEB = Workload("default", "prod", "Deployment", "web")
DB = Workload("default", "prod", "StatefulSet", "db")
SHELL = "Terminal shell in container"


def event(
    event_id: str,
    at_s: float,
    *,
    rule: str = SHELL,
    priority: Priority = Priority.WARNING,
    workload: Workload = WEB,
    tactics: tuple[str, ...] = (),
    techniques: tuple[str, ...] = (),
) -> Event:
    time_ns = T0 + int(at_s * S)
    return Event(
        id=event_id,
        time_ns=time_ns,
        received_ns=time_ns + 1000,
        rule=rule,
        priority=priority,
        source="syscall",
        hostname="node-1",
        workload=workload,
        pod=f"{workload.name}-7d4b9c8f5d-x2x4q",
        container_id="3ad7b26ded6d",
        container_image="nginx:1.27",
        tactics=tactics,
        techniques=techniques,
        tags=("container", "shell", *(f"mitre_{t}" for t in tactics), *techniques),
        output=f"{rule} (user=root)",
        fields={"proc.name": "bash", "proc.aname[2]": None},
        origin=f"alerts.jsonl:{event_id}",
    )


def attack(order: tuple[str, ...], workload: Workload = WEB) -> list[Event]:
    """One Warning alert per tactic, ten seconds apart, in the given order."""
    rules = {
        "execution": ("Terminal shell in container", "T1059"),
        "credential_access": ("Read sensitive file untrusted", "T1555"),
        "exfiltration": ("Unexpected outbound connection destination", "T1041"),
    }
    return [
        event(f"{workload.name}-{n}", n * 10, rule=rules[t][0], workload=workload,
              tactics=(t,), techniques=(rules[t][1],))
        for n, t in enumerate(order)
    ]  # fmt: skip


def only(incidents: list[Incident]) -> Incident:
    assert len(incidents) == 1, incidents
    return incidents[0]


def test_groups_per_workload() -> None:
    correlator = Correlator()
    events = [event("a", 0), event("b", 1, workload=DB), event("c", 2), event("d", 3, workload=DB)]
    incidents = correlator.add(events, T0 + 3 * S)
    assert [i.workload for i in incidents] == [WEB, DB]
    assert [i.event_ids for i in incidents] == [("a", "c"), ("b", "d")]
    assert [i.status for i in incidents] == ["open", "open"]
    assert correlator.open_count == 2


def test_gap_longer_than_window_starts_a_new_incident() -> None:
    correlator = Correlator(window_s=300)
    first = only(correlator.add([event("a", 0), event("b", 299)], T0))
    # Gaps under the window chain on: the incident is longer than the window itself.
    assert only(correlator.add([event("c", 598)], T0)).id == first.id
    closed, opened = correlator.add([event("d", 899)], T0)
    assert (closed.id, closed.status, closed.event_ids) == (first.id, "closed", ("a", "b", "c"))
    assert closed.last_ns == T0 + 598 * S
    assert (opened.status, opened.event_ids, opened.first_ns) == ("open", ("d",), T0 + 899 * S)
    assert opened.id != first.id
    assert correlator.open_count == 1


def test_each_incident_returned_once_per_call() -> None:
    correlator = Correlator()
    incidents = correlator.add([event(str(n), n) for n in range(20)], T0)
    assert only(incidents).event_count == 20


def test_repeats_are_counted_not_duplicated() -> None:
    correlator = Correlator()
    events = [event(f"e{n}", n) for n in range(50)]
    events += [event("r1", 51, rule="Read sensitive file untrusted")]
    incident = only(correlator.add(events, T0))
    assert [(r.rule, r.count) for r in incident.rules] == [
        (SHELL, 50),
        ("Read sensitive file untrusted", 1),
    ]
    assert incident.event_count == 51
    assert len(set(incident.event_ids)) == 51
    # A redelivered event (same id) changes nothing, so nothing is returned for it.
    assert correlator.add([event("e3", 3), event("r1", 51)], T0) == []
    again = only(correlator.add([event("r2", 52, rule="Read sensitive file untrusted")], T0))
    assert again.event_count == 52
    assert again.rules[1].count == 2


def test_event_ids_are_capped_and_the_rest_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(correlate, "MAX_EVENT_IDS", 5)
    incident = only(Correlator().add([event(f"e{n}", n) for n in range(12)], T0))
    assert incident.event_ids == ("e0", "e1", "e2", "e3", "e4")
    assert incident.event_count == 12


def test_late_event_joins_and_moves_first_time_back() -> None:
    correlator = Correlator()
    correlator.add([event("a", 100)], T0)
    incident = only(correlator.add([event("late", 40)], T0))
    assert (incident.first_ns, incident.last_ns) == (T0 + 40 * S, T0 + 100 * S)
    assert incident.event_ids == ("a", "late")


def test_stragglers_from_an_older_period_get_their_own_incident() -> None:
    correlator = Correlator(window_s=60)
    current = only(correlator.add([event("now", 10_000)], T0))
    old = only(correlator.add([event("old1", 100)], T0))  # far older than the window
    assert old.id != current.id
    assert only(correlator.add([event("old2", 130)], T0)).id == old.id
    assert only(correlator.add([event("now2", 10_030)], T0)).event_ids == ("now", "now2")
    assert correlator.open_count == 2
    # The older period expires first; the current incident stays open.
    assert [(i.id, i.event_ids) for i in correlator.expire(T0 + 10_000 * S)] == [
        (old.id, ("old1", "old2"))
    ]
    assert correlator.open_count == 1
    # A quiet gap closes what is left of the workload, stragglers included.
    correlator.add([event("old3", 500)], T0)
    closed = correlator.add([event("next", 20_000)], T0)
    assert [(i.event_ids, i.status) for i in closed] == [
        (("old3",), "closed"),
        (("now", "now2"), "closed"),
        (("next",), "open"),
    ]
    assert correlator.open_count == 1


def test_one_warning_is_medium_and_repeats_never_dominate() -> None:
    one = only(Correlator().add([event("a", 0)], T0))
    assert (one.risk_score, one.severity) == (28.0, Severity.MEDIUM)
    assert [(r.points, r.reason) for r in one.reasons] == [(28.0, "highest Falco priority Warning")]
    noise = only(Correlator().add([event(f"n{n}", n / 1000) for n in range(100_000)], T0))
    assert noise.severity == Severity.MEDIUM
    assert noise.reasons[-1].reason == "99999 repeated alerts"
    assert noise.reasons[-1].points == correlate.REPEAT_CAP
    notice = [event(f"n{n}", n, priority=Priority.NOTICE) for n in range(1000)]
    assert only(Correlator().add(notice, T0)).severity == Severity.LOW


def test_priority_sets_the_base() -> None:
    critical = only(Correlator().add([event("a", 0, priority=Priority.CRITICAL)], T0))
    assert (critical.risk_score, critical.severity) == (50.0, Severity.HIGH)
    mixed = [event("a", 0, priority=Priority.NOTICE), event("b", 1, priority=Priority.ERROR)]
    assert only(Correlator().add(mixed, T0)).reasons[0].reason == "highest Falco priority Error"


def test_kill_chain_order_raises_severity() -> None:
    in_order = only(
        Correlator().add(attack(("execution", "credential_access", "exfiltration")), T0)
    )
    reversed_ = only(
        Correlator().add(attack(("exfiltration", "credential_access", "execution")), T0)
    )
    assert in_order.tactics == ("execution", "credential_access", "exfiltration")
    assert reversed_.tactics == ("exfiltration", "credential_access", "execution")
    assert in_order.techniques == ("T1059", "T1555", "T1041")
    # Warning 28 + 3 rules 8 + 3 tactics 12 (+ 3 tactics in order 16).
    assert (reversed_.risk_score, reversed_.severity) == (48.0, Severity.MEDIUM)
    assert (in_order.risk_score, in_order.severity) == (64.0, Severity.HIGH)
    chain = [r for r in in_order.reasons if "kill-chain" in r.reason]
    assert [(r.points, r.reason) for r in chain] == [
        (
            16.0,
            "3 MITRE tactics in kill-chain order: execution -> credential_access -> exfiltration",
        )
    ]


def test_tactics_of_one_event_are_no_progression() -> None:
    both = event("a", 0, rule="Schedule Cron Jobs", tactics=("execution", "persistence"))
    incident = only(Correlator().add([both], T0))
    assert incident.tactics == ("execution", "persistence")
    assert not any("kill-chain" in r.reason for r in incident.reasons)


def test_kill_chain_is_the_longest_ordered_run() -> None:
    seen = [("discovery", 1), ("execution", 2), ("persistence", 3), ("not_a_tactic", 4),
            ("credential_access", 5), ("initial_access", 6), ("exfiltration", 7)]  # fmt: skip
    assert kill_chain(seen) == ("execution", "persistence", "credential_access", "exfiltration")
    assert kill_chain([("execution", 1), ("persistence", 1)]) == ("execution",)
    assert kill_chain([]) == ()


def finding(rule_id: str, severity: Severity, title: str) -> PostureFinding:
    """A posture finding with its rule's runtime impact, as the bridge's loaders give it."""
    return PostureFinding(rule_id, severity, title, runtime_impacts().get(rule_id))


def test_posture_raises_score_and_is_listed() -> None:
    posture = Posture(
        workloads={
            WEB.key: (
                finding("KS-0042", Severity.MEDIUM, "Memory request missing"),
                finding("KS-0005", Severity.HIGH, "HostPath volume"),
                finding("KS-0001", Severity.CRITICAL, "Privileged container"),
                finding("KS-0001", Severity.CRITICAL, "Privileged container"),
            )
        },
        source="scan.json",
    )
    events = attack(("execution", "credential_access", "exfiltration"))
    plain = only(Correlator().add(events, T0))
    exposed = only(Correlator(posture=posture).add(events, T0))
    assert plain.posture == ()
    assert exposed.posture == ("KS-0001", "KS-0005", "KS-0042")
    assert exposed.risk_score == plain.risk_score + 19  # critical 12 + high 7; KS-0042 is no risk
    assert (plain.severity, exposed.severity) == (Severity.HIGH, Severity.CRITICAL)
    assert exposed.reasons[-1].reason == (
        "workload posture: KS-0001 privileged (critical), KS-0005 hostPath (high)"
    )
    other = only(Correlator(posture=posture).add([event("x", 0, workload=DB)], T0))
    assert other.posture == ()


def test_posture_is_capped_and_score_clamped() -> None:
    findings = tuple(
        finding(rule_id, Severity.CRITICAL, "bad")
        for rule_id in ("KS-0001", "KS-0013", "KS-0031", "KS-0035", "KS-0036")
    )
    posture = Posture(workloads={WEB.key: findings})
    tactics = ("execution", "persistence", "privilege_escalation", "credential_access",
               "discovery", "exfiltration")  # fmt: skip
    events = [
        event(f"e{n}", n, rule=f"rule {n}", priority=Priority.EMERGENCY, tactics=(t,))
        for n, t in enumerate(tactics)
    ]
    incident = only(Correlator(posture=posture).add(events, T0))
    posture_reason = next(r for r in incident.reasons if r.reason.startswith("workload posture"))
    assert posture_reason.points == POSTURE_CAP
    assert (incident.risk_score, incident.severity) == (100.0, Severity.CRITICAL)


def test_host_workload_without_namespace_reads_default_posture() -> None:
    host = Workload("default", "", "Pod", "debug")
    posture = Posture(
        workloads={
            posture_key("default", "default", "Pod", "debug"): (
                finding("KS-0001", Severity.CRITICAL, "p"),
            )
        }
    )
    assert only(Correlator(posture=posture).add([event("a", 0, workload=host)], T0)).posture == (
        "KS-0001",
    )


def test_posture_of_one_cluster_leaves_the_same_names_in_another_alone() -> None:
    web_staging = Workload("staging", WEB.namespace, WEB.kind, WEB.name)
    posture = Posture(
        workloads={
            posture_key("prod", "prod", "Deployment", "web"): (
                finding("KS-0001", Severity.CRITICAL, "Privileged container"),
            )
        },
        cluster="prod",
    )
    web_prod = Workload("prod", WEB.namespace, WEB.kind, WEB.name)
    prod = only(Correlator(posture=posture).add([event("a", 0, workload=web_prod)], T0))
    staging = only(Correlator(posture=posture).add([event("a", 0, workload=web_staging)], T0))
    assert (prod.posture, staging.posture) == (("KS-0001",), ())
    assert prod.risk_score == staging.risk_score + 12


def test_expire_closes_once_and_frees_memory() -> None:
    correlator = Correlator(window_s=60)
    opened = only(correlator.add([event("a", 0), event("b", 30)], T0 + 30 * S))
    assert correlator.expire(T0 + 90 * S) == []  # exactly the window: still open
    closed = only(correlator.expire(T0 + 91 * S))
    assert (closed.id, closed.status, closed.event_count) == (opened.id, "closed", 2)
    assert correlator.open_count == 0
    assert correlator.expire(T0 + 500 * S) == []
    later = only(correlator.add([event("c", 100)], T0 + 100 * S))
    assert later.id != opened.id
    assert later.event_ids == ("c",)


def test_incident_id_is_stable() -> None:
    incident = only(Correlator().add([event("first", 0), event("second", 1)], T0))
    expected = hashlib.sha256(f"{WEB.key}\nfirst".encode()).hexdigest()[:16]
    assert incident.id == expected


def test_same_input_same_incidents_whatever_the_batching() -> None:
    events = [
        *attack(("execution", "credential_access", "exfiltration")),
        *attack(("exfiltration", "execution"), workload=DB),
        *(event(f"n{n}", 40 + n * 100) for n in range(12)),
    ]
    events.sort(key=lambda e: e.time_ns)

    def run(batch: int) -> list[Incident]:
        correlator = Correlator(window_s=120)
        final: dict[str, Incident] = {}
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            for incident in correlator.add(chunk, chunk[-1].time_ns):
                final[incident.id] = incident
        for incident in correlator.expire(T0 + 10**6 * S):
            final[incident.id] = incident
        return sorted(final.values(), key=lambda i: i.id)

    whole = run(len(events))
    assert whole == run(len(events))
    assert whole == run(1)
    assert whole == run(4)
    assert all(i.status == "closed" for i in whole)


def test_thresholds() -> None:
    assert [severity_of(s) for s in (0, 24.9, 25, 49.9, 50, 79.9, 80, 100)] == [
        Severity.LOW, Severity.LOW, Severity.MEDIUM, Severity.MEDIUM,
        Severity.HIGH, Severity.HIGH, Severity.CRITICAL, Severity.CRITICAL,
    ]  # fmt: skip


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s must be positive"):
        Correlator(window_s=0)
