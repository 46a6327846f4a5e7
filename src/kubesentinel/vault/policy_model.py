"""A retention policy as data: classes, explicit rules, severity tiers and the context window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy_match import Matcher, MatchRule

HOLD = "hold"  # legal hold: an operator froze these events
INCIDENT = "incident"  # evidence of an incident: its signals and its context window
DEFAULT = "default"  # what no rule or tier claims; keep_days = forensics.retention_days
PROTECTED_CLASSES = (HOLD, INCIDENT)
PROTECTED_RANK = 1000  # above every rank a file may give (0..999): never evicted anyway
DEFAULT_RANK = 20


@dataclass(frozen=True, slots=True)
class RetentionClass:
    name: str
    keep_days: int | None  # None: forever (hold: until released)
    rollup_after_days: int | None  # noise: older events become hourly counts; None: never
    evict_rank: int  # under the size cap, lower ranks are evicted first
    # never evicted nor aged out one by one (hold, incident); incident evidence goes when its
    # incident expires (keep_days after its last signal: ``incident_expiry``)
    protected: bool = False
    description: str = ""


BUILTIN_PROTECTED = (
    RetentionClass(
        HOLD,
        None,
        None,
        PROTECTED_RANK,
        protected=True,
        description="Legal hold: kept, whole, until the hold is released.",
    ),
    RetentionClass(
        INCIDENT,
        None,
        None,
        PROTECTED_RANK,
        protected=True,
        description="Incident evidence: its signals and context-window events.",
    ),
)


@dataclass(frozen=True, slots=True)
class Policy:
    classes: Mapping[str, RetentionClass]  # every class, built-ins included
    rules: tuple[MatchRule, ...]  # first match wins, in file order
    tiers: Mapping[Priority, str]  # Falco priority -> class name
    default_class: str
    context_before_s: int
    context_after_s: int
    sources: tuple[str, ...]  # the files it came from, in order
    matcher: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        matcher = Matcher(self.rules, self.tiers, self.default_class)
        object.__setattr__(self, "matcher", matcher)


def eviction_order(policy: Policy) -> tuple[str, ...]:
    """Class names the size cap may evict, lowest rank first (name breaks ties, for a stable
    order); protected classes are never listed."""
    evictable = [c for c in policy.classes.values() if not c.protected]
    return tuple(c.name for c in sorted(evictable, key=lambda c: (c.evict_rank, c.name)))


def effective_class(static_class: str, *, held: bool, incident_evidence: bool) -> str:
    """Precedence above the static class: a legal hold, then incident evidence."""
    if held:
        return HOLD
    if incident_evidence:
        return INCIDENT
    return static_class


def in_context_window(
    policy: Policy, event_time_ns: int, incident_first_ns: int, incident_last_ns: int
) -> bool:
    """Whether an event of the incident's workload falls in its context window (bounds
    included): kept at full fidelity with the incident, even if it was noise on its own."""
    start = incident_first_ns - policy.context_before_s * 1_000_000_000
    end = incident_last_ns + policy.context_after_s * 1_000_000_000
    return start <= event_time_ns <= end
