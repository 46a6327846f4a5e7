"""Events -> incidents: bounded episodes per workload, context counted apart, risk scored.

An incident is one workload's episode of **signals**: qualifying Falco alerts. It opens with a
signal, takes every later signal of the workload within ``gap_s`` (``runtime.incident_gap``,
5 min) of its last one, and closes after ``gap_s`` without a new signal. It never spans more
than ``max_duration_s`` (``runtime.incident_max_duration``, 1 h) from its first signal to its
last: a signal that would stretch it further closes it and opens a new incident whose
``previous_id`` links back to it, so a long episode is a chain of linked incidents.

An event is **context**, never a signal, when ``context_reason`` (the one place that decides
what qualifies) says so:

- ``telemetry``: its rule is tagged ``telemetry``, unless the analyzer found it anomalous;
- ``low_priority``: Informational or Debug, unless the analyzer found it anomalous;
- ``repeat``: the same rule, process and command line (``proc.name``, ``proc.cmdline``; for an
  alert with neither, its output fields other than ``evt.*``) as an alert already in the
  incident.

Context events are counted per reason on the incident whose span (first signal - gap to last
signal + gap) holds them, with a sample of their ids (the first ``CONTEXT_SAMPLE``), but they
neither open an incident nor extend one; a workload with no open incident at their time keeps
them in the store under no incident. An incident lists every signal's id, without cap (the ids
are shared between its successive states: a new state costs the new ids, not all of them). An
event id seen again in the incident holding its time (a redelivery) is ignored: each open
incident keeps the ids of its events, which the max duration bounds.

A late signal joins the incident whose span holds it (moving its first time back, within the
max duration); one earlier than that (a replay of older captures) gets an incident of its own,
kept open beside the current one until it, too, sees a gap.

Risk score (0..100, sum of the parts below, clamped; each part is one ``RiskReason``), from the
incident's signals; only repeats among its context events add points:

=====================  ============================================================  =========
part                   points                                                        cap
=====================  ============================================================  =========
highest priority       Emergency 60, Alert 55, Critical 50, Error 40, Warning 28,    60
                       Notice 15 (of its signals)
distinct rules         +4 per rule beyond the first                                  12
MITRE tactics          +6 per tactic beyond the first                                18
kill-chain order       +8 per step of the longest run of tactics, each first seen    24
                       later than the one before, that follows ATT&CK order
static posture         per runtime-relevant failing rule: critical 12, high 7,       25
                       medium 3, low 1 (privileged, host namespaces, hostPath and
                       runtime socket, capabilities, root, privilege escalation)
repeats                3 * log10(1 + signals and repeats beyond one per rule)        8
anomaly                the highest anomaly score of its events * 40                  40
further anomalies      +4 per other anomaly reason, each named (at most 3)           12
=====================  ============================================================  =========

Anomalies. ``add`` takes the batch's anomalies (event id -> ``Scored``, the events the
behavioural analyzer scored at or above ``ai.threshold``). An anomalous telemetry or
low-priority event qualifies: it opens or extends an incident like any signal. Every anomalous
event of an incident, signal or context, is kept with its score and the analyzer's top reason
(the first ``ANOMALY_SAMPLE``, and a count), and the incident's reasons name the anomalies
("anomaly 0.93: process xmrig never seen in ..."). The weight: one anomaly at 0.9 is worth a
Critical alert's 36 points of 50, so a telemetry anomaly alone (Informational, 8) makes a
medium incident and two distinct ones (new process, new external peer) a high one.

Severity from the score: critical >= 80, high >= 50, medium >= 25, low below. One Warning alert
is medium, one Critical alert high, Notice alone low; a Warning walking execution -> credential
access -> exfiltration is high, and critical on a privileged pod with a hostPath.

Time comes only from the events and the caller's ``now_ns`` (no wall clock), and every loop
runs in input order, so the same input gives the same incidents, ids and scores.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from kubesentinel.bridge import posture_score
from kubesentinel.models import Event, Incident, Priority, RiskReason, RuleCount, Severity
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Workload
from kubesentinel.models.incident import (
    CONTEXT_REASONS,
    LOW_PRIORITY,
    REPEAT,
    TELEMETRY,
    Anomaly,
    ContextCounts,
    EventIds,
)
from kubesentinel.models.posture import Posture
from kubesentinel.runtime.mitre import TACTIC_RANK

DEFAULT_GAP_S = 300.0
DEFAULT_MAX_DURATION_S = 3600.0
CONTEXT_SAMPLE = 20  # context event ids kept per incident
# Signal ids are kept in blocks of this many, shared by an incident's successive states.
ID_BLOCK = 256

PRIORITY_POINTS: dict[Priority, float] = {
    Priority.DEBUG: 3.0,
    Priority.INFORMATIONAL: 8.0,
    Priority.NOTICE: 15.0,
    Priority.WARNING: 28.0,
    Priority.ERROR: 40.0,
    Priority.CRITICAL: 50.0,
    Priority.ALERT: 55.0,
    Priority.EMERGENCY: 60.0,
}
RULE_POINTS, RULE_CAP = 4.0, 12.0
TACTIC_POINTS, TACTIC_CAP = 6.0, 18.0
CHAIN_POINTS, CHAIN_CAP = 8.0, 24.0
REPEAT_FACTOR, REPEAT_CAP = 3.0, 8.0
ANOMALY_POINTS = 40.0  # times the highest anomaly score
MORE_ANOMALY_POINTS, MORE_ANOMALY_CAP = 4.0, 12.0
ANOMALY_SAMPLE = 100  # anomalous events kept with their score and reason per incident
ANOMALY_REASON_CHARS = 200

# Lowest score of each severity, highest first.
SEVERITY_THRESHOLDS: tuple[tuple[float, Severity], ...] = (
    (80.0, Severity.CRITICAL),
    (50.0, Severity.HIGH),
    (25.0, Severity.MEDIUM),
)


def context_reason(event: Event) -> str | None:
    """Why ``event`` alone is context (``TELEMETRY``, ``LOW_PRIORITY``), or None: it qualifies.

    The one place that decides which alerts may open or extend an incident (repeats aside,
    which depend on the incident); an anomaly makes a telemetry or low-priority event qualify
    (``Correlator.add``). ``Correlator(context_reason=...)`` takes a replacement, which must
    answer one of those two reasons or None.
    """
    if "telemetry" in event.tags:
        return TELEMETRY
    if event.priority <= Priority.INFORMATIONAL:
        return LOW_PRIORITY
    return None


def repeat_key(event: Event) -> Hashable:
    """What makes two alerts identical: rule, process name and command line; for an alert with
    neither (k8s_audit), its output fields other than the per-event ``evt.*`` ones."""
    fields = event.fields
    name = fields.get("proc.name")
    cmdline = fields.get("proc.cmdline")
    if name is None and cmdline is None:
        return (event.rule, _fields_text(fields))
    if type(name) is not str and name is not None:
        name = repr(name)  # JSON from the alert: a list or object is not hashable
    if type(cmdline) is not str and cmdline is not None:
        cmdline = repr(cmdline)
    return (event.rule, name, cmdline)


def _fields_text(fields: Mapping[str, Any]) -> str:
    kept = sorted((k, v) for k, v in fields.items() if not k.startswith("evt."))
    return repr(kept)


class _Open:
    """Mutable state of one open incident (the frozen Incident is built from it on demand)."""

    __slots__ = (
        "added_context",
        "added_ids",
        "anomalies",
        "anomaly_count",
        "blocks",
        "context",
        "context_ids",
        "event_count",
        "first_ns",
        "id",
        "ids",
        "keys",
        "last_ns",
        "posture",
        "posture_reason",
        "previous_id",
        "priority",
        "rule_priority",
        "rules",
        "seen",
        "tactics",
        "tail",
        "techniques",
        "workload",
    )

    def __init__(self, event: Event, posture: _PostureScore, previous_id: str | None) -> None:
        self.id = incident_id(event.workload, event.id)
        self.workload = event.workload
        self.previous_id = previous_id
        self.first_ns = event.time_ns
        self.last_ns = event.time_ns
        self.priority = event.priority
        self.rules: dict[str, int] = {}
        self.rule_priority: dict[str, Priority] = {}
        self.tactics: dict[str, int] = {}  # tactic -> earliest event time
        self.techniques: dict[str, None] = {}
        self.seen: set[str] = set()  # every event id taken: signals and context
        self.keys: set[Hashable] = set()  # repeat_key of each signal
        self.blocks: list[tuple[str, ...]] = []  # signal ids, ID_BLOCK a block...
        self.tail: list[str] = []  # ...and the ones after the last full block
        self.ids: EventIds | None = None  # the last snapshot's, while no id was added
        self.event_count = 0
        self.context = dict.fromkeys(CONTEXT_REASONS, 0)  # reason -> count
        self.context_ids: list[str] = []
        self.added_ids: list[str] = []
        self.added_context: list[tuple[str, str]] = []
        self.posture = posture[0]
        self.posture_reason = posture[1]
        self.anomalies: list[Anomaly] = []
        self.anomaly_count = 0

    def add_anomaly(self, event_id: str, scored: Scored) -> None:
        self.anomaly_count += 1
        if len(self.anomalies) < ANOMALY_SAMPLE:
            reason = scored.reasons[0] if scored.reasons else "no single feature stands out"
            self.anomalies.append(
                Anomaly(event_id, round(scored.score, 4), reason[:ANOMALY_REASON_CHARS])
            )

    def add_signal(self, event: Event, key: Hashable) -> None:
        event_id = event.id
        self.seen.add(event_id)
        self.keys.add(key)
        self.tail.append(event_id)
        self.added_ids.append(event_id)
        self.ids = None
        self.event_count += 1
        time_ns = event.time_ns
        if time_ns > self.last_ns:
            self.last_ns = time_ns
        elif time_ns < self.first_ns:
            self.first_ns = time_ns
        priority = event.priority
        if priority > self.priority:  # noqa: PLR1730 (max() is a slower call)
            self.priority = priority
        rule = event.rule
        self.rules[rule] = self.rules.get(rule, 0) + 1
        seen = self.rule_priority.get(rule)
        if seen is None or priority > seen:
            self.rule_priority[rule] = priority
        if event.tactics:
            self.add_tactics(event.tactics, time_ns)
        for technique in event.techniques:
            self.techniques[technique] = None

    def add_context(self, event: Event, reason: str) -> None:
        event_id = event.id
        self.seen.add(event_id)
        self.context[reason] += 1
        if reason == REPEAT:
            self.rules[event.rule] += 1  # a repeat is of a signal already in: its rule is in
        if len(self.context_ids) < CONTEXT_SAMPLE:
            self.context_ids.append(event_id)
        self.added_context.append((event_id, reason))

    def add_tactics(self, tactics: tuple[str, ...], time_ns: int) -> None:
        first_seen = self.tactics
        for tactic in tactics:
            seen = first_seen.get(tactic)
            if seen is None or time_ns < seen:
                first_seen[tactic] = time_ns

    def take(self, status: str = "open") -> Incident:
        """The incident's state now, with what was added since the last one taken."""
        # Stable sort: tactics first seen at the same time keep their arrival order.
        first_seen = sorted(self.tactics.items(), key=lambda item: item[1])
        tactics = tuple(tactic for tactic, _ in first_seen)
        reasons = self._reasons(tactics, kill_chain(first_seen))
        score = round(min(100.0, sum(r.points for r in reasons)), 1)
        priorities = self.rule_priority
        incident = Incident(
            id=self.id,
            workload=self.workload,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            severity=severity_of(score),
            risk_score=score,
            reasons=reasons,
            rules=tuple(RuleCount(r, n, priorities[r]) for r, n in self.rules.items()),
            tactics=tactics,
            techniques=tuple(self.techniques),
            event_count=self.event_count,
            event_ids=self.event_ids(),
            posture=self.posture,
            status=status,
            previous_id=self.previous_id,
            context=ContextCounts(**self.context),
            context_ids=tuple(self.context_ids),
            added_ids=tuple(self.added_ids),
            added_context=tuple(self.added_context),
            anomalies=tuple(self.anomalies),
            anomaly_count=self.anomaly_count,
        )
        self.added_ids.clear()
        self.added_context.clear()
        return incident

    def event_ids(self) -> EventIds:
        """Every signal id; full blocks are shared with earlier states, not copied again."""
        if self.ids is None:
            tail = self.tail
            if len(tail) >= ID_BLOCK:
                self.blocks.append(tuple(tail))
                tail.clear()
            blocks = (*self.blocks, tuple(tail)) if tail else tuple(self.blocks)
            self.ids = EventIds.of_blocks(blocks, self.event_count)
        return self.ids

    def _reasons(self, tactics: tuple[str, ...], chain: tuple[str, ...]) -> tuple[RiskReason, ...]:
        reasons = [
            RiskReason(
                PRIORITY_POINTS[self.priority], f"highest Falco priority {self.priority.label}"
            )
        ]
        rules = len(self.rules)
        if rules > 1:
            points = min(RULE_CAP, RULE_POINTS * (rules - 1))
            reasons.append(RiskReason(points, f"{rules} distinct Falco rules"))
        if len(tactics) > 1:
            points = min(TACTIC_CAP, TACTIC_POINTS * (len(tactics) - 1))
            reasons.append(
                RiskReason(points, f"{len(tactics)} MITRE tactics: {', '.join(tactics)}")
            )
        if len(chain) > 1:
            points = min(CHAIN_CAP, CHAIN_POINTS * (len(chain) - 1))
            text = f"{len(chain)} MITRE tactics in kill-chain order: {' -> '.join(chain)}"
            reasons.append(RiskReason(points, text))
        if self.posture_reason is not None:
            reasons.append(self.posture_reason)
        repeats = self.event_count + self.context[REPEAT] - rules
        if repeats > 0:
            points = round(min(REPEAT_CAP, REPEAT_FACTOR * math.log10(1 + repeats)), 1)
            reasons.append(RiskReason(points, f"{repeats} repeated alerts"))
        if self.anomalies:
            reasons.extend(_anomaly_reasons(self.anomalies))
        return tuple(reasons)


def _anomaly_reasons(anomalies: Sequence[Anomaly]) -> list[RiskReason]:
    """The highest-scoring anomaly, weighted by its score; then up to three more with other
    reasons (the same new process seen ten times is one piece of evidence, not ten)."""
    ranked = sorted(anomalies, key=lambda a: -a.score)  # stable: the earliest among equals
    top = ranked[0]
    out = [
        RiskReason(round(ANOMALY_POINTS * top.score, 1), f"anomaly {top.score:.2f}: {top.reason}")
    ]
    named = {top.reason}
    for anomaly in ranked[1:]:
        if len(out) > MORE_ANOMALY_CAP / MORE_ANOMALY_POINTS or anomaly.reason in named:
            continue
        named.add(anomaly.reason)
        out.append(
            RiskReason(MORE_ANOMALY_POINTS, f"anomaly {anomaly.score:.2f}: {anomaly.reason}")
        )
    return out


_PostureScore = tuple[tuple[str, ...], RiskReason | None]


class Correlator:
    """Open incidents per workload; ``add`` and ``expire`` return their new states.

    A workload has one open incident, plus one per older period when stragglers arrive (a
    signal before the open incident's span, as when two captures are replayed one after the
    other): they are kept apart instead of stretching the incident.

    ``window_s`` is the deprecated name of ``gap_s``. ``context_reason`` is the qualification
    hook (see the function of that name).
    """

    def __init__(
        self,
        gap_s: float | None = None,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        *,
        posture: Posture | None = None,
        window_s: float | None = None,
        context_reason: Callable[[Event], str | None] = context_reason,
    ) -> None:
        # window_s stays accepted silently: a warning would fail callers that run with
        # warnings as errors, and it means exactly what gap_s means.
        gap = gap_s if gap_s is not None else window_s if window_s is not None else DEFAULT_GAP_S
        if not (gap > 0 and math.isfinite(gap)):
            raise ValueError(f"gap_s must be positive and finite, got {gap}")
        if not (max_duration_s > 0 and math.isfinite(max_duration_s)):
            raise ValueError(f"max_duration_s must be positive and finite, got {max_duration_s}")
        self.gap_ns = int(gap * 1_000_000_000)
        self.max_duration_ns = int(max_duration_s * 1_000_000_000)
        self.posture = posture or Posture()
        self._context_reason = context_reason
        # workload key -> its open incidents, the newest last (stragglers' ones before it)
        self._open: dict[str, list[_Open]] = {}
        self._count = 0
        self.opened_total = 0  # incidents ever opened, for the run summary and metrics

    @property
    def open_count(self) -> int:
        return self._count

    def add(  # noqa: PLR0912 - the hot path is one loop: a helper would cost a call per event
        self,
        events: Sequence[Event],
        now_ns: int,
        anomalies: Mapping[str, Scored] | None = None,
    ) -> list[Incident]:
        """Fold a batch in; return every touched incident once, in order of first touch.

        ``anomalies``: event id -> its score, for the batch's events the analyzer scored at or
        above ``ai.threshold`` (see the module docstring).

        A signal more than the gap after a workload's newest incident closes that workload's
        incidents (returned with status "closed", memory freed) and opens a new one; one that
        would stretch it beyond the max duration does the same, linking the new one back.
        ``now_ns`` is not needed to group; it is accepted so all stages share the pipeline clock.
        """
        del now_ns
        touched: dict[str, _Open] = {}  # incident id -> state, in order of first touch
        closed: set[str] = set()
        open_incidents = self._open
        gap = self.gap_ns
        max_ns = self.max_duration_ns
        reason_of = self._context_reason
        # The correlator's hot path: one pass, in input order, no call it can do without.
        for event in events:
            time_ns = event.time_ns
            group = open_incidents.get(event.workload.key)
            current = None
            if group is not None:
                current = group[-1]
                if not (current.first_ns - gap <= time_ns <= current.last_ns + gap):
                    current = _holding(group, time_ns, gap)
                if current is not None and event.id in current.seen:
                    continue  # redelivered
            reason = reason_of(event)
            anomaly = anomalies.get(event.id) if anomalies else None
            if anomaly is not None and reason is not None:
                reason = None  # telemetry or low priority, but anomalous: it qualifies
            key = None
            if reason is None:
                fields = event.fields
                name, cmdline = fields.get("proc.name"), fields.get("proc.cmdline")
                # repeat_key, inline for the usual alert that has both as text
                key = (
                    (event.rule, name, cmdline)
                    if type(cmdline) is str and type(name) is str
                    else repeat_key(event)
                )
                if current is not None and key in current.keys:
                    reason = REPEAT
            if reason is not None:
                if current is not None:
                    current.add_context(event, reason)
                    if anomaly is not None:
                        current.add_anomaly(event.id, anomaly)
                    if current.id not in touched:
                        touched[current.id] = current
                continue
            if current is None or (
                max(current.last_ns, time_ns) - min(current.first_ns, time_ns) > max_ns
            ):
                current = self._route(event, group, current, touched, closed)
            current.add_signal(event, key)
            if anomaly is not None:
                current.add_anomaly(event.id, anomaly)
            if current.id not in touched:
                touched[current.id] = current
        return [
            state.take("closed" if incident in closed else "open")
            for incident, state in touched.items()
        ]

    def expire(self, now_ns: int) -> list[Incident]:
        """Close and forget the incidents whose last signal is more than the gap before now."""
        gap = self.gap_ns
        closed: list[Incident] = []
        for key, group in list(self._open.items()):
            if all(now_ns - state.last_ns <= gap for state in group):
                continue
            kept = [state for state in group if now_ns - state.last_ns <= gap]
            closed.extend(s.take("closed") for s in group if now_ns - s.last_ns > gap)
            self._count -= len(group) - len(kept)
            if kept:
                self._open[key] = kept
            else:
                del self._open[key]
        return closed

    def adopt(self, incident: Incident, events: Sequence[tuple[Event, str | None]]) -> None:
        """Continue an open incident another monitor stored (a partition moved here).

        ``events``: the incident's stored events in store order, each with its context reason
        (None: a signal). Its ids are remembered, so a redelivered event is ignored; its signals'
        repeat keys and tactic times are rebuilt from them. Stragglers' incidents of the same
        workload are kept ordered by first signal, the newest last.
        """
        state = _Open.__new__(_Open)
        signals = [event for event, reason in events if reason is None]
        state.id, state.workload = incident.id, incident.workload
        state.previous_id = incident.previous_id
        state.first_ns, state.last_ns = incident.first_ns, incident.last_ns
        state.priority = max((e.priority for e in signals), default=Priority.DEBUG)
        state.rules = {r.rule: r.count for r in incident.rules}
        state.rule_priority = {r.rule: r.priority for r in incident.rules}
        state.tactics = {}
        for event in signals:
            if event.tactics:
                state.add_tactics(event.tactics, event.time_ns)
        state.techniques = dict.fromkeys(incident.techniques)
        state.seen = {event.id for event, _ in events}
        state.keys = {repeat_key(event) for event in signals}
        ids = list(incident.event_ids)
        cut = len(ids) - len(ids) % ID_BLOCK
        state.blocks = [tuple(ids[i : i + ID_BLOCK]) for i in range(0, cut, ID_BLOCK)]
        state.tail = ids[cut:]
        state.ids = None
        state.event_count = incident.event_count
        state.context = dict.fromkeys(CONTEXT_REASONS, 0)
        for reason in CONTEXT_REASONS:
            state.context[reason] = getattr(incident.context, reason)
        state.context_ids = list(incident.context_ids)
        state.added_ids, state.added_context = [], []
        state.posture, state.posture_reason = incident.posture, self._posture_of(state.workload)[1]
        state.anomalies = list(incident.anomalies)
        state.anomaly_count = incident.anomaly_count
        group = self._open.setdefault(state.workload.key, [])
        if any(other.id == state.id for other in group):
            return
        group.append(state)
        group.sort(key=lambda s: s.first_ns)
        self._count += 1

    def release(self, keep: Callable[[str], bool]) -> int:
        """Forget the open incidents of every workload whose key ``keep`` refuses, without
        closing them (they stay open in the store for the monitor that takes them over);
        returns how many were forgotten."""
        dropped = 0
        for key in [key for key in self._open if not keep(key)]:
            dropped += len(self._open.pop(key))
        self._count -= dropped
        return dropped

    def open_workloads(self) -> list[str]:
        """Keys of the workloads with an open incident."""
        return list(self._open)

    def _route(
        self,
        event: Event,
        group: list[_Open] | None,
        holding: _Open | None,
        touched: dict[str, _Open],
        closed: set[str],
    ) -> _Open:
        """The incident of a signal that the incident holding its time cannot take: none holds
        it, or taking it would stretch that incident beyond the max duration."""
        if group is None:
            state = self._start(event)
            self._open[event.workload.key] = [state]
            return state
        newest = group[-1]
        time_ns = event.time_ns
        later = time_ns > newest.last_ns
        if later and (holding is None or holding is newest):
            # Quiet for longer than the gap, or the newest hit the max duration: the workload's
            # incidents are over; a continuation links back to the one it continues.
            for state in group:
                closed.add(state.id)
                if state.id not in touched:
                    touched[state.id] = state
            self._count -= len(group)
            state = self._start(event, newest.id if holding is newest else None)
            self._open[event.workload.key] = [state]
            return state
        # A straggler from before the open incidents (or one too far from them): its own.
        state = self._start(event)
        group.insert(len(group) - 1, state)
        return state

    def _start(self, event: Event, previous_id: str | None = None) -> _Open:
        self._count += 1
        self.opened_total += 1
        return _Open(event, self._posture_of(event.workload), previous_id)

    def _posture_of(self, workload: Workload) -> _PostureScore:
        return posture_score(self.posture.of(workload))


def _holding(group: list[_Open], time_ns: int, gap: int) -> _Open | None:
    """The workload's open incident whose span (less and plus the gap) holds ``time_ns``,
    newest first; None when none does."""
    for state in reversed(group):
        if state.first_ns - gap <= time_ns <= state.last_ns + gap:
            return state
    return None


def incident_id(workload: Workload, first_event_id: str) -> str:
    """16 hex characters of sha256(workload key, newline, id of the event that opened it)."""
    digest = hashlib.sha256(f"{workload.key}\n{first_event_id}".encode())
    return digest.hexdigest()[:16]


def severity_of(score: float) -> Severity:
    for threshold, severity in SEVERITY_THRESHOLDS:
        if score >= threshold:
            return severity
    return Severity.LOW


def kill_chain(first_seen: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """The longest run of tactics, each first seen strictly later, that follows ATT&CK order.

    ``first_seen`` is (tactic, time it was first seen) in that time order. Tactics of one event
    share a time, so one rule tagged with two tactics is no progression. Tactics outside the
    kill chain are skipped; the earliest longest run wins, so the answer is stable. At most 14
    tactics, so the quadratic longest-increasing-subsequence is fine.
    """
    ranked = [(t, TACTIC_RANK[t], ns) for t, ns in first_seen if t in TACTIC_RANK]
    best: list[tuple[str, ...]] = []
    for i, (tactic, rank, time_ns) in enumerate(ranked):
        longest: tuple[str, ...] = ()
        for j in range(i):
            _, earlier_rank, earlier_ns = ranked[j]
            if earlier_rank < rank and earlier_ns < time_ns and len(best[j]) > len(longest):
                longest = best[j]
        best.append((*longest, tactic))
    return max(best, key=len, default=())
