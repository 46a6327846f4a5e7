"""Which retention class a stored event is in now, and what retention does with it.

Precedence, highest first: legal hold, incident evidence (an event of an incident, or an
event of its workload inside its context window), an explicit policy rule, the severity tier,
the default class. The static part (rule, tier, default) depends only on an event's facet
(rule, priority, source, workload: shared by many events) and its link to an incident when it
was written, so it is computed once per (facet, link) and cached. Falco tags are a property of
a Falco rule, so a policy that matches tags reads them once per rule, from the evidence bytes
of the first event of that rule it meets.

Pure: no SQL here (``retention_sql`` reads and writes the tables).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Final

from kubesentinel.config import ForensicsConfig
from kubesentinel.errors import ConfigError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy import HOLD, INCIDENT, Policy, load_policy
from kubesentinel.vault.policy_match import IncidentLink

__all__ = [
    "DAY_NS",
    "Action",
    "Classifier",
    "FacetInfo",
    "Verdict",
    "Window",
    "decide",
    "policy_files",
    "policy_from_config",
]

DAY_NS: Final = 86_400 * 1_000_000_000
HOUR_NS: Final = 3_600 * 1_000_000_000
POLICY_SUFFIXES: Final = (".yaml", ".yml")


class Action(Enum):
    KEEP = "kept"
    EXPIRE = "expired"  # older than its class's keep_days: deleted
    ROLLUP = "rolled_up"  # noise older than rollup_after_days: counted per hour, then deleted
    EVICT = "evicted"  # removed to bring the store under forensics.max_size_mb


@dataclass(frozen=True, slots=True)
class FacetInfo:
    """What the policy reads from a facet row."""

    rule: str
    priority: Priority
    source: str
    cluster: str
    namespace: str
    kind: str
    name: str

    @property
    def workload(self) -> tuple[str, str, str, str]:
        return (self.cluster, self.namespace, self.kind, self.name)


@dataclass(frozen=True, slots=True)
class Verdict:
    class_name: str
    why: str  # "hold INCIDENT", "incident", "rule NAME", "tier PRIORITY", "default"
    protected: bool


@dataclass(frozen=True, slots=True)
class Window:
    """An incident's evidence window on its workload: [first - before, last + after]."""

    workload: tuple[str, str, str, str]
    start_ns: int
    end_ns: int
    held: bool


def policy_files(paths: Iterable[str]) -> list[Path]:
    """The files ``forensics.policies`` names, a directory giving its ``*.yaml``/``*.yml``
    files in name order; a missing path is a ConfigError naming it."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES)
            if not found:
                raise ConfigError(
                    "forensics.policies: the directory holds no .yaml policy file",
                    file=text,
                    hint="add a policy file, or remove the directory from forensics.policies",
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(
                "forensics.policies: no such policy file or directory",
                file=text,
                hint="fix the path (in config.yaml, relative paths are read from its directory)",
            )
    return files


def policy_from_config(forensics: ForensicsConfig) -> Policy:
    """The policy the config names (PolicyError for a bad file), with the config's overrides:
    ``context_window_s`` for both sides of the window, ``rollup_after_days`` for every class
    that rolls up."""
    policy = load_policy(policy_files(forensics.policies), retention_days=forensics.retention_days)
    window = forensics.context_window_s
    if window is not None:
        policy = replace(policy, context_before_s=window, context_after_s=window)
    rollup = forensics.rollup_after_days
    if rollup is not None:
        classes = dict(policy.classes)
        for name, cls in policy.classes.items():
            if cls.rollup_after_days is None:
                continue
            if cls.keep_days is not None and rollup >= cls.keep_days:
                raise ConfigError(
                    f"forensics.rollup_after_days ({rollup}) must be less than class "
                    f"{name!r}'s keep_days ({cls.keep_days})",
                    file=policy.sources[0] if policy.sources else None,
                    hint="lower forensics.rollup_after_days or raise the class's keep_days",
                )
            classes[name] = replace(cls, rollup_after_days=rollup)
        policy = replace(policy, classes=classes)
    return policy


TagsOf = Callable[[str], tuple[str, ...]]  # Falco rule -> its tags
_LINKS: Final[dict[tuple[bool, bool], IncidentLink]] = {
    (True, False): "signal",
    (True, True): "context",
    (False, False): None,
    (False, True): None,
}


class Classifier:
    """The class of each stored event under ``policy``, given the store's incidents.

    ``windows`` are every incident's evidence windows; ``held`` the seqs of incidents under a
    legal hold; ``tags_of`` reads a rule's Falco tags (only called when the policy matches
    tags); ``live`` the seqs of the incidents stored (None: every seq an event names): a
    signal of an incident that expired is classified as if it had none, by its rule, tier
    or default, with its link (``signal``) for rules that match on it.
    """

    def __init__(
        self,
        policy: Policy,
        facets: Mapping[int, FacetInfo],
        windows: Sequence[Window],
        held: frozenset[int],
        tags_of: TagsOf,
        *,
        live: frozenset[int] | None = None,
    ) -> None:
        self.policy = policy
        self._facets = facets
        self._held = held
        self._live = live
        self._tags_of = tags_of
        self._needs_tags = any(rule.tags for rule in policy.rules)
        self._static: dict[tuple[int, IncidentLink], Verdict] = {}
        self._windows = _merged(windows, held=False)
        self._held_windows = _merged([w for w in windows if w.held], held=True)

    def verdict(self, time_ns: int, incident: int | None, role: int | None, facet: int) -> Verdict:
        """The event's effective class (its row: time, incident seq, role code, facet id)."""
        if incident is not None and (self._live is None or incident in self._live):
            if incident in self._held:
                return _HELD
            return _INCIDENT
        info = self._facets.get(facet)
        if info is not None:
            workload = info.workload
            if _inside(self._held_windows.get(workload), time_ns):
                return _HELD
            if _inside(self._windows.get(workload), time_ns):
                return _INCIDENT
        return self.static(facet, _LINKS[incident is not None, role is not None])

    def static(self, facet: int, link: IncidentLink) -> Verdict:
        """Rule, tier or default: cached per (facet, link)."""
        key = (facet, link)
        known = self._static.get(key)
        if known is not None:
            return known
        info = self._facets.get(facet)
        if info is None:  # a facet row that is gone: only the default class can be said
            name, why = self.policy.default_class, "default"
        else:
            tags = self._tags_of(info.rule) if self._needs_tags else ()
            name, why = self.policy.matcher.explain(
                info.priority, info.rule, tags, info.source, info.namespace, info.kind,
                info.name, link,
            )  # fmt: skip
        verdict = Verdict(name, why, self.policy.classes[name].protected)
        self._static[key] = verdict
        return verdict


_HELD: Final = Verdict(HOLD, "hold", protected=True)
_INCIDENT: Final = Verdict(INCIDENT, "incident", protected=True)

# Per workload: sorted, disjoint [start, end] intervals, as (starts, ends).
_Intervals = tuple[list[int], list[int]]


def _merged(
    windows: Iterable[Window], *, held: bool
) -> dict[tuple[str, str, str, str], _Intervals]:
    by_workload: dict[tuple[str, str, str, str], list[tuple[int, int]]] = {}
    for window in windows:
        if held and not window.held:
            continue
        by_workload.setdefault(window.workload, []).append((window.start_ns, window.end_ns))
    merged: dict[tuple[str, str, str, str], _Intervals] = {}
    for workload, spans in by_workload.items():
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(spans):
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        merged[workload] = (starts, ends)
    return merged


def _inside(intervals: _Intervals | None, time_ns: int) -> bool:
    """Bounds included, as ``policy.in_context_window``."""
    if intervals is None:
        return False
    starts, ends = intervals
    at = bisect.bisect_right(starts, time_ns) - 1
    return at >= 0 and time_ns <= ends[at]


def decide(policy: Policy, verdict: Verdict, time_ns: int, now_ns: int) -> Action:
    """What the policy does with an event of this class and time now."""
    if verdict.protected:
        return Action.KEEP
    cls = policy.classes[verdict.class_name]
    age = now_ns - time_ns
    if cls.keep_days is not None and age >= cls.keep_days * DAY_NS:
        return Action.EXPIRE
    if cls.rollup_after_days is not None and age >= cls.rollup_after_days * DAY_NS:
        return Action.ROLLUP
    return Action.KEEP


def horizon_ns(policy: Policy, now_ns: int) -> int:
    """Events at or after this time are kept whatever their class: younger than every
    class's keep_days and rollup_after_days."""
    ages = [
        days
        for cls in policy.classes.values()
        if not cls.protected
        for days in (cls.keep_days, cls.rollup_after_days)
        if days is not None
    ]
    if not ages:
        return -(1 << 63)
    return now_ns - min(ages) * DAY_NS + 1


def hour_of(time_ns: int) -> int:
    return time_ns - time_ns % HOUR_NS
