"""Events for the analyzer's tests: the simulator's streams and hand-made alerts, parsed and
enriched by the monitor's own stages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from kubesentinel.models.event import Event
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_batch
from kubesentinel.runtime.simulate import Simulation, simulate
from kubesentinel.runtime.sources.interface import RawAlert

NS = 1_000_000_000


def events_of(lines: Sequence[str | bytes], cluster: str = "sim") -> list[Event]:
    raws = [
        RawAlert(line.encode() if isinstance(line, str) else line, f"test:{i}", 0)
        for i, line in enumerate(lines, 1)
    ]
    parsed, rejected = parse_batch(raws)
    assert not rejected, rejected[:2]
    return Enricher(cluster).enrich(parsed)


@cache
def sim(seed: int = 1, hours: float = 3.0) -> tuple[Simulation, tuple[Event, ...]]:
    s = simulate(seed=seed, hours=hours)
    return s, tuple(events_of(list(s.lines()), s.cluster))


def normal_period(seed: int = 1, hours: float = 3.0) -> list[Event]:
    """The simulated stream before its first attack."""
    s, events = sim(seed, hours)
    first = min(label.start_ns for label in s.labels)
    return [e for e in events if e.time_ns < first]


def alert(
    time_ns: int,
    pod: str,
    fields: dict[str, Any],
    *,
    namespace: str = "shop",
    image: str = "registry.example.com/shop/api",
    rule: str = "Test rule",
    uuid: str | None = None,
) -> str:
    """A syscall alert from a pod, in Falco's layout, with ``fields`` over a few defaults."""
    output_fields: dict[str, Any] = {
        "container.id": "0123456789ab",
        "container.image.repository": image,
        "container.image.tag": "1.0",
        "k8s.ns.name": namespace,
        "k8s.pod.name": pod,
        "evt.type": "execve",
        "user.name": "root",
    }
    output_fields.update(fields)
    doc: dict[str, Any] = {
        "hostname": "node-1",
        "output": "test alert",
        "output_fields": output_fields,
        "priority": "Notice",
        "rule": rule,
        "source": "syscall",
        "tags": ["test"],
        "time": _rfc3339(time_ns),
    }
    if uuid is not None:
        doc["uuid"] = uuid
    return json.dumps(doc)


def _rfc3339(time_ns: int) -> str:
    from datetime import UTC, datetime

    seconds, nanos = divmod(time_ns, NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"
