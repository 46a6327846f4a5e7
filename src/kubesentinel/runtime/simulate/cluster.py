"""The cluster: nodes, and the pods each workload runs over the window (rollouts, cron runs)."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from kubesentinel.runtime.simulate.constants import NS
from kubesentinel.runtime.simulate.records import SimWorkload
from kubesentinel.runtime.simulate.workloads import WORKLOADS

NODES: Final = (  # (name, node IP, pod CIDR prefix)
    ("ip-10-0-1-21", "10.0.1.21", "10.244.1"),
    ("ip-10-0-2-37", "10.0.2.37", "10.244.2"),
    ("ip-10-0-3-54", "10.0.3.54", "10.244.3"),
)
API_SERVER: Final = "10.96.0.1"
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' random-name alphabet
_BEFORE: Final = -(1 << 62)  # offset of pods that were running before the window opened


@dataclass(slots=True)
class Pod:
    workload: SimWorkload
    name: str
    node: int
    ip: str
    container_id: str
    created_ns: int  # absolute
    start: int  # offset from which this pod serves its slot
    end: int = 1 << 62  # CronJob pods finish

    @property
    def host(self) -> str:
        return NODES[self.node][0]

    def fields(self) -> dict[str, Any]:
        w = self.workload
        return {
            "container.id": self.container_id,
            "container.name": w.container,
            "container.image.repository": w.repository,
            "container.image.tag": w.tag,
            "container.start_ts": self.created_ns,
            "k8s.pod.name": self.name,
            "k8s.ns.name": w.namespace,
        }


@dataclass(slots=True)
class Cluster:
    rng: random.Random
    start_ns: int
    span_ns: int
    slots: dict[str, list[list[Pod]]] = field(default_factory=dict)
    rollouts: list[tuple[int, SimWorkload]] = field(default_factory=list)
    ips: Counter[int] = field(default_factory=Counter)

    def rand_str(self, n: int) -> str:
        return "".join(self.rng.choice(_ALPHABET) for _ in range(n))

    def template_hash(self) -> str:
        # The ReplicaSet controller's SafeEncodeString of a decimal uint32: only 4-9 b c d f.
        return "".join(_ALPHABET[ord(c) % 27] for c in str(self.rng.getrandbits(32)))

    def long_ago(self) -> int:
        return self.start_ns - self.rng.randrange(2 * 3600, 9 * 86400) * NS - self.rng.randrange(NS)

    def pod(self, w: SimWorkload, name: str, node: int, start: int, created_ns: int) -> Pod:
        self.ips[node] += 1
        host_network = w.name == "node-agent"
        # Pod IPs come from the node's /24, reused as pods come and go.
        ip = NODES[node][1] if host_network else f"{NODES[node][2]}.{10 + self.ips[node] % 240}"
        return Pod(w, name, node, ip, f"{self.rng.getrandbits(48):012x}", created_ns, start)

    def pod_at(self, name: str, offset: int, slot: int = 0) -> Pod:
        pods = self.slots[name][slot]
        return pods[bisect_right([p.start for p in pods], offset) - 1]


def build_cluster(rng: random.Random, start_ns: int, span_ns: int) -> Cluster:
    c = Cluster(rng, start_ns, span_ns)
    for w in WORKLOADS:
        if w.kind == "Deployment":
            c.slots[w.name] = _deployment(c, w)
        elif w.kind == "StatefulSet":
            c.slots[w.name] = [
                [c.pod(w, f"{w.name}-{i}", i % 3, _BEFORE, c.long_ago())] for i in range(w.replicas)
            ]
        elif w.kind == "DaemonSet":
            c.slots[w.name] = [
                [c.pod(w, f"{w.name}-{c.rand_str(5)}", node, _BEFORE, c.long_ago())]
                for node in range(len(NODES))
            ]
        else:
            c.slots[w.name] = [_cron_runs(c, w)]
    return c


def _deployment(c: Cluster, w: SimWorkload) -> list[list[Pod]]:
    first = c.template_hash()
    slots = [
        [c.pod(w, f"{w.name}-{first}-{c.rand_str(5)}", c.rng.randrange(3), _BEFORE, c.long_ago())]
        for _ in range(w.replicas)
    ]
    # Busy teams ship often: the cart and the preview roll out every two hours, others rarely.
    busy = w.name in ("cart", "web-preview")
    count = max(round(c.span_ns / (7200 * NS)), 1) if busy else round(c.span_ns / (21600 * NS))
    for at in sorted(int(c.rng.uniform(0.05, 0.9) * c.span_ns) for _ in range(count)):
        new = c.template_hash()
        c.rollouts.append((at, w))
        for i, pods in enumerate(slots):  # maxSurge 1: one replica after the other
            ready = at + (i + 1) * c.rng.randrange(8, 20) * NS + c.rng.randrange(NS)
            created = c.start_ns + ready - c.rng.randrange(5, 9) * NS
            name = f"{w.name}-{new}-{c.rand_str(5)}"
            pods.append(c.pod(w, name, c.rng.randrange(3), ready, created))
    return slots


def _cron_runs(c: Cluster, w: SimWorkload) -> list[Pod]:
    every = int(w.schedule.split()[0].removeprefix("*/")) * 60 * NS
    runs: list[Pod] = []
    node = c.rng.randrange(3)
    for scheduled in range(-(c.start_ns % every), c.span_ns, every):
        minutes = (c.start_ns + scheduled) // (60 * NS)  # the Job is <cronjob>-<unix minutes>
        begin = scheduled + c.rng.randrange(1, 3) * NS + c.rng.randrange(NS)
        seconds = (
            c.rng.randrange(150, 240) if w.name == "dependency-audit" else c.rng.randrange(45, 90)
        )
        pod = c.pod(w, f"{w.name}-{minutes}-{c.rand_str(5)}", node, begin, c.start_ns + begin)
        pod.end = min(begin + seconds * NS, c.span_ns)
        node = (node + 1 + c.rng.randrange(2)) % 3
        runs.append(pod)
    return runs
