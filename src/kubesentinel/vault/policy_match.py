"""Match rules of a retention policy, and the compiled matcher ``classify`` calls per event.

A rule's conditions are data; each becomes one precompiled test (a frozenset or one regex),
and the matcher caches its answer per distinct input, as the monitor sees the same few
(rule, workload) pairs over and over.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from kubesentinel.models.falco_alert import Priority

IncidentLink = Literal["signal", "context"] | None
INCIDENT_LINKS = ("signal", "context", "none")  # how a rule names them; "none" is None
CACHE_SIZE = 1 << 16  # distinct (priority, rule, tags, source, namespace, workload, link)


@dataclass(frozen=True, slots=True)
class MatchRule:
    """An explicit rule: events meeting every given condition get ``class_name``.

    Each condition is any-of; an empty tuple (or None) means "not a condition". Globs are
    fnmatch patterns, case-sensitive; workloads are matched as "Kind/name".
    """

    name: str
    class_name: str
    priorities: frozenset[Priority] = frozenset()
    min_priority: Priority | None = None
    rules: tuple[str, ...] = ()  # Falco rule names or globs
    tags: tuple[str, ...] = ()  # globs; any event tag may match
    sources: frozenset[str] = frozenset()
    namespaces: tuple[str, ...] = ()  # globs
    workloads: tuple[str, ...] = ()  # "Kind/name" globs
    incident: frozenset[str] = frozenset()  # "signal", "context", "none"
    description: str = ""


def compile_globs(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a list of fnmatch globs (raises re.error for a malformed one)."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the conditions look at, built once per cache miss."""

    priority: Priority
    rule: str
    tags: tuple[str, ...]
    source: str
    namespace: str
    workload: str  # "Kind/name"
    incident: str  # "signal", "context" or "none"


_Test = Callable[[_Facts], bool]


def _tests(rule: MatchRule) -> tuple[_Test, ...]:
    """The rule's conditions as small closures; only the conditions it gives."""
    tests: list[_Test] = []
    if rule.priorities:
        wanted = rule.priorities
        tests.append(lambda e: e.priority in wanted)
    if rule.min_priority is not None:
        floor = rule.min_priority
        tests.append(lambda e: e.priority >= floor)
    if rule.rules:
        rule_match = compile_globs(rule.rules).match
        tests.append(lambda e: rule_match(e.rule) is not None)
    if rule.tags:
        tag_match = compile_globs(rule.tags).match
        tests.append(lambda e: any(tag_match(tag) for tag in e.tags))
    if rule.sources:
        sources = rule.sources
        tests.append(lambda e: e.source in sources)
    if rule.namespaces:
        namespace_match = compile_globs(rule.namespaces).match
        tests.append(lambda e: namespace_match(e.namespace) is not None)
    if rule.workloads:
        workload_match = compile_globs(rule.workloads).match
        tests.append(lambda e: workload_match(e.workload) is not None)
    if rule.incident:
        links = rule.incident
        tests.append(lambda e: e.incident in links)
    return tuple(tests)


class Matcher:
    """Rules in order, then the severity tier, then the default class; answers cached."""

    def __init__(
        self,
        rules: tuple[MatchRule, ...],
        tiers: Mapping[Priority, str],
        default_class: str,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._compiled = tuple((rule.class_name, _tests(rule)) for rule in rules)
        self._names = tuple(rule.name for rule in rules)
        self._tiers = dict(tiers)
        self._default = default_class
        # Per matcher, so two policies never share answers; bounded, as workload names churn.
        self.explain = lru_cache(maxsize=cache_size)(self._explain)

    def lookup(  # noqa: PLR0917 - the same key as explain
        self,
        priority: Priority,
        rule: str,
        tags: tuple[str, ...],
        source: str,
        namespace: str,
        kind: str,
        name: str,
        incident: IncidentLink,
    ) -> str:
        """The class alone: ``explain``'s answer (cached there) without the why."""
        return self.explain(priority, rule, tags, source, namespace, kind, name, incident)[0]

    def _explain(  # noqa: PLR0917 - the same key as lookup
        self,
        priority: Priority,
        rule: str,
        tags: tuple[str, ...],
        source: str,
        namespace: str,
        kind: str,
        name: str,
        incident: IncidentLink,
    ) -> tuple[str, str]:
        """(class, why): why is ``rule NAME``, ``tier PRIORITY`` or ``default``, for reports
        saying why retention removed an event."""
        facts = _Facts(
            priority, rule, tags, source, namespace, f"{kind}/{name}", incident or "none"
        )
        for (class_name, tests), rule_name in zip(self._compiled, self._names, strict=True):
            if all(test(facts) for test in tests):
                return class_name, f"rule {rule_name}"
        tier = self._tiers.get(priority)
        if tier is not None:
            return tier, f"tier {priority.name.lower()}"
        return self._default, "default"
