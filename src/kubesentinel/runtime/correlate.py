"""Events -> incidents: group alerts per workload and time window, count repeats, score risk.

An incident is one workload's alerts with no gap longer than the window between them. An event
more than ``window_s`` after the open incident's last event closes that incident and opens a
new one; a late event joins the incident it is within the window of, and one late by more than
that (a replay of older captures) gets an incident of its own. Repeats
of a rule are counted, never stored twice, and an event id seen again (a redelivery) is ignored
(checked against the ids the incident keeps: the first ``MAX_EVENT_IDS``).

Risk score (0..100, sum of the parts below, clamped; each part is one ``RiskReason``):

=====================  ============================================================  =========
part                   points                                                        cap
=====================  ============================================================  =========
highest priority       Emergency 60, Alert 55, Critical 50, Error 40, Warning 28,    60
                       Notice 15, Informational 8, Debug 3
distinct rules         +4 per rule beyond the first                                  12
MITRE tactics          +6 per tactic beyond the first                                18
kill-chain order       +8 per step of the longest run of tactics, each first seen    24
                       later than the one before, that follows ATT&CK order
static posture         per runtime-relevant failing rule: critical 12, high 7,       25
                       medium 3, low 1 (privileged, host namespaces, hostPath and
                       runtime socket, capabilities, root, privilege escalation)
repeats                3 * log10(1 + events beyond one per rule)                      8
=====================  ============================================================  =========

Severity from the score: critical >= 80, high >= 50, medium >= 25, low below. One Warning alert
is medium, one Critical alert high; a Warning walking execution -> credential access ->
exfiltration is high, and critical on a privileged pod with a hostPath.

Time comes only from the events and the caller's ``now_ns`` (no wall clock), and every loop
runs in input order, so the same input gives the same incidents, ids and scores.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from kubesentinel.bridge import posture_score
from kubesentinel.models import Event, Incident, Priority, RiskReason, RuleCount, Severity
from kubesentinel.models.event import Workload
from kubesentinel.models.posture import Posture
from kubesentinel.runtime.mitre import TACTIC_RANK

# Ids kept per incident (~110 bytes each while it is open); later events are still counted
# (event_count) and stored, and the store maps them to their incident by workload. Every add()
# returns a fresh tuple of the ids (frozen model), so an incident costs O(ids) per batch until
# it reaches the cap: on the 2-core target machine a 10,000 cap held the correlator to ~65,000
# events/s (60 busy workloads, batches of 2,048), 1,000 to ~250,000.
MAX_EVENT_IDS = 1_000

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

# Lowest score of each severity, highest first.
SEVERITY_THRESHOLDS: tuple[tuple[float, Severity], ...] = (
    (80.0, Severity.CRITICAL),
    (50.0, Severity.HIGH),
    (25.0, Severity.MEDIUM),
)


class _Open:
    """Mutable state of one open incident (the frozen Incident is built from it on demand)."""

    __slots__ = (
        "event_count",
        "event_ids",
        "first_ns",
        "id",
        "ids",
        "ids_changed",
        "last_ns",
        "posture",
        "posture_reason",
        "priority",
        "rules",
        "tactics",
        "techniques",
        "workload",
    )

    def __init__(self, event: Event, posture: _PostureScore) -> None:
        self.id = incident_id(event.workload, event.id)
        self.workload = event.workload
        self.first_ns = event.time_ns
        self.last_ns = event.time_ns
        self.priority = event.priority
        self.rules: dict[str, int] = {}
        self.tactics: dict[str, int] = {}  # tactic -> earliest event time
        self.techniques: dict[str, None] = {}
        self.event_ids: dict[str, None] = {}  # ordered set, first MAX_EVENT_IDS ids
        self.ids: tuple[str, ...] = ()
        self.ids_changed = False
        self.event_count = 0
        self.posture = posture[0]
        self.posture_reason = posture[1]

    def add_tactics(self, tactics: tuple[str, ...], time_ns: int) -> None:
        first_seen = self.tactics
        for tactic in tactics:
            seen = first_seen.get(tactic)
            if seen is None or time_ns < seen:
                first_seen[tactic] = time_ns

    def snapshot(self, status: str = "open") -> Incident:
        # Stable sort: tactics first seen at the same time keep their arrival order.
        first_seen = sorted(self.tactics.items(), key=lambda item: item[1])
        tactics = tuple(tactic for tactic, _ in first_seen)
        reasons = self._reasons(tactics, kill_chain(first_seen))
        score = round(min(100.0, sum(r.points for r in reasons)), 1)
        return Incident(
            id=self.id,
            workload=self.workload,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            severity=severity_of(score),
            risk_score=score,
            reasons=reasons,
            rules=tuple(RuleCount(rule, count) for rule, count in self.rules.items()),
            tactics=tactics,
            techniques=tuple(self.techniques),
            event_count=self.event_count,
            event_ids=self.ids_snapshot(),
            posture=self.posture,
            status=status,
        )

    def ids_snapshot(self) -> tuple[str, ...]:
        """The ids as a tuple, rebuilt only when ids were added: once an incident reaches the
        cap, later snapshots reuse it instead of copying every id again."""
        if self.ids_changed:
            self.ids = tuple(self.event_ids)
            self.ids_changed = False
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
        repeats = self.event_count - rules
        if repeats > 0:
            points = round(min(REPEAT_CAP, REPEAT_FACTOR * math.log10(1 + repeats)), 1)
            reasons.append(RiskReason(points, f"{repeats} repeated alerts"))
        return tuple(reasons)


_PostureScore = tuple[tuple[str, ...], RiskReason | None]


class Correlator:
    """Open incidents per workload; ``add`` and ``expire`` return their new state.

    A workload has one open incident, plus one per older period when stragglers arrive (an
    event more than the window before the open incident's first event, as when two captures
    are replayed one after the other): they are kept apart instead of stretching the incident.
    """

    def __init__(self, window_s: float = 300.0, posture: Posture | None = None) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.window_ns = int(window_s * 1_000_000_000)
        self.posture = posture or Posture()
        # workload key -> its open incidents, the newest last (stragglers' ones before it)
        self._open: dict[str, list[_Open]] = {}
        self._count = 0
        self.opened_total = 0  # incidents ever opened, for the run summary and metrics

    @property
    def open_count(self) -> int:
        return self._count

    def add(self, events: Sequence[Event], now_ns: int) -> list[Incident]:
        """Fold a batch in; return every touched incident once, in order of first touch.

        An event more than the window after a workload's newest incident closes that
        workload's incidents (returned with status "closed", memory freed) and opens a new one.
        ``now_ns`` is not needed to group; it is accepted so all stages share the pipeline clock.
        """
        del now_ns
        touched: dict[str, _Open] = {}  # incident id -> state, in order of first touch
        closed: set[str] = set()
        open_incidents = self._open
        window = self.window_ns
        max_ids = MAX_EVENT_IDS
        for event in events:
            key = event.workload.key
            time_ns = event.time_ns
            group = open_incidents.get(key)
            current = group[-1] if group is not None else None
            if current is None or not (
                current.first_ns - window <= time_ns <= current.last_ns + window
            ):
                current = self._route(event, key, touched, closed)
            # One event into its incident, inline: this loop is the correlator's hot path.
            ids = current.event_ids
            event_id = event.id
            if event_id in ids:
                continue  # redelivered
            if len(ids) < max_ids:
                ids[event_id] = None
                current.ids_changed = True
            current.event_count += 1
            if time_ns > current.last_ns:
                current.last_ns = time_ns
            elif time_ns < current.first_ns:
                current.first_ns = time_ns
            if event.priority > current.priority:  # noqa: PLR1730 (max() is a slower call)
                current.priority = event.priority
            rules = current.rules
            rules[event.rule] = rules.get(event.rule, 0) + 1
            if event.tactics:
                current.add_tactics(event.tactics, time_ns)
            for technique in event.techniques:
                current.techniques[technique] = None
            if current.id not in touched:
                touched[current.id] = current
        return [
            state.snapshot("closed" if incident in closed else "open")
            for incident, state in touched.items()
        ]

    def expire(self, now_ns: int) -> list[Incident]:
        """Close and forget the incidents whose last event is more than the window before now."""
        window = self.window_ns
        closed: list[Incident] = []
        for key, group in list(self._open.items()):
            if all(now_ns - state.last_ns <= window for state in group):
                continue
            kept = [state for state in group if now_ns - state.last_ns <= window]
            closed.extend(s.snapshot("closed") for s in group if now_ns - s.last_ns > window)
            self._count -= len(group) - len(kept)
            if kept:
                self._open[key] = kept
            else:
                del self._open[key]
        return closed

    def _route(self, event: Event, key: str, touched: dict[str, _Open], closed: set[str]) -> _Open:
        """The incident of an event outside the window of its workload's newest incident."""
        group = self._open.get(key)
        if group is not None and event.time_ns < group[-1].first_ns - self.window_ns:
            return self._straggler(group, event)
        if group is not None:  # quiet for longer than the window: those incidents are over
            for state in group:
                closed.add(state.id)
                touched.setdefault(state.id, state)
            self._count -= len(group)
        current = self._start(event)
        self._open[key] = [current]
        return current

    def _start(self, event: Event) -> _Open:
        self._count += 1
        self.opened_total += 1
        return _Open(event, self._posture_of(event.workload))

    def _straggler(self, group: list[_Open], event: Event) -> _Open:
        """The older incident within the window of this late event, else a new one for it."""
        window = self.window_ns
        for state in group[:-1]:
            if state.first_ns - window <= event.time_ns <= state.last_ns + window:
                return state
        state = self._start(event)
        group.insert(0, state)
        return state

    def _posture_of(self, workload: Workload) -> _PostureScore:
        return posture_score(self.posture.of(workload))


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
