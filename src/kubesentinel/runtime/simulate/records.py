"""Public records: the simulated workloads, the attacks' ground truth, the whole simulation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.simulate.constants import CLUSTER
from kubesentinel.runtime.simulate.plan import Plan
from kubesentinel.runtime.simulate.render import rfc3339


@dataclass(frozen=True, slots=True)
class SimWorkload:
    namespace: str
    kind: str
    name: str
    container: str
    image: str  # as the manifest writes it
    hardened: bool  # True: no scanner finding at medium or above; False: critical/high ones
    replicas: int = 1
    schedule: str = ""  # CronJobs only
    user: tuple[str, int] = ("root", 0)  # the user its processes run as (name, uid)

    @property
    def key(self) -> str:
        """namespace/Kind/name: a Workload key (and posture key) without its cluster."""
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def repository(self) -> str:
        return self._name_tag()[0]

    @property
    def tag(self) -> str:
        return self._name_tag()[1]

    def _name_tag(self) -> tuple[str, str]:
        name = self.image.partition("@")[0]
        if ":" not in name.rsplit("/", 1)[-1]:
            return name, ""
        repository, _, tag = name.rpartition(":")
        return repository, tag


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    time_ns: int
    rule: str
    priority: Priority
    source: str


@dataclass(frozen=True, slots=True)
class ScenarioLabel:
    """Ground truth for one attack: where, when, and which rules and tactics it raises."""

    id: str
    title: str
    summary: str
    workload: SimWorkload
    pod: str
    node: str
    start_ns: int
    end_ns: int
    rules: tuple[str, ...]  # in order of first appearance
    tactics: tuple[str, ...]  # in order of first appearance
    techniques: tuple[str, ...]
    steps: tuple[ScenarioStep, ...]

    def to_json(self) -> dict[str, Any]:
        w = self.workload
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "workload": {
                "cluster": CLUSTER,
                "namespace": w.namespace,
                "kind": w.kind,
                "name": w.name,
                "key": w.key,
            },
            "pod": self.pod,
            "node": self.node,
            "start": rfc3339(self.start_ns),
            "end": rfc3339(self.end_ns),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "rules": list(self.rules),
            "tactics": list(self.tactics),
            "techniques": list(self.techniques),
            "steps": [
                {
                    "time": rfc3339(s.time_ns),
                    "time_ns": s.time_ns,
                    "rule": s.rule,
                    "priority": s.priority.label,
                    "source": s.source,
                }
                for s in self.steps
            ],
        }


@dataclass(frozen=True, slots=True, eq=False)
class Simulation:
    seed: int
    start_ns: int
    end_ns: int
    events_per_s: float
    cluster: str
    nodes: tuple[str, ...]
    workloads: tuple[SimWorkload, ...]
    labels: tuple[ScenarioLabel, ...]
    manifests: Mapping[str, str]  # file name -> YAML text
    _plan: Plan = field(repr=False)

    @property
    def alerts(self) -> Iterator[dict[str, Any]]:
        """The alerts as dicts, in time order (a fresh iterator on each access)."""
        return (json.loads(line) for line in self.lines())

    def lines(self) -> Iterator[str]:
        """The alerts as compact JSON lines (without newline), in time order."""
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[str]]:
        """The same lines in lists of a few thousand, for fast writers."""
        return self._plan.render(self.seed, self.start_ns)

    def labels_json(self) -> dict[str, Any]:
        return {
            "generator": "kubesentinel simulate",
            "seed": self.seed,
            "cluster": self.cluster,
            "start": rfc3339(self.start_ns),
            "end": rfc3339(self.end_ns),
            "events_per_s": self.events_per_s,
            "nodes": list(self.nodes),
            "workloads": [
                {"key": w.key, "image": w.image, "hardened": w.hardened} for w in self.workloads
            ],
            "scenarios": [label.to_json() for label in self.labels],
        }
