"""Retention policy benchmark: microseconds per ``classify`` call on the monitor's hot path.

The stream repeats a few hundred distinct (rule, workload) inputs, as a cluster's alerts do,
so nearly every call is a cache hit; the cache-miss cost is printed beside it.

Run: python bench/vault_policy_bench.py [--events N] [--distinct N] [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import time

from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault.policy import IncidentLink, Policy, classify, load_policy

Inputs = tuple[Priority, str, tuple[str, ...], str, str, str, str, IncidentLink]


_LINKS: list[IncidentLink] = [None, None, None, "signal", "context"]


def _inputs(count: int, seed: int = 7) -> list[Inputs]:
    rng = random.Random(seed)  # noqa: S311 - a repeatable stream, not a secret
    tags = [(), ("telemetry",), ("mitre_execution", "T1059"), ("container", "mitre_discovery")]
    kinds = ["Deployment", "DaemonSet", "StatefulSet", "Job", "Pod"]
    return [
        (
            rng.choice(list(Priority)),
            f"Rule number {rng.randrange(40)}",
            rng.choice(tags),
            rng.choice(["syscall", "k8s_audit"]),
            f"team-{rng.randrange(12)}",
            rng.choice(kinds),
            f"workload-{rng.randrange(30)}",
            rng.choice(_LINKS),
        )
        for _ in range(count)
    ]


def _run(policy: Policy, stream: list[Inputs]) -> float:
    start = time.perf_counter()
    for priority, rule, tags, source, namespace, kind, name, incident in stream:
        classify(
            policy,
            priority=priority,
            rule=rule,
            tags=tags,
            source=source,
            namespace=namespace,
            kind=kind,
            name=name,
            incident=incident,
        )
    return (time.perf_counter() - start) / len(stream) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--distinct", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best is printed")
    args = parser.parse_args()
    distinct = _inputs(args.distinct)
    stream = [distinct[i % len(distinct)] for i in range(args.events)]
    hits = []
    for _ in range(args.repeat):
        policy = load_policy([])
        _run(policy, distinct)  # warm the cache: every later call is a hit
        hits.append(_run(policy, stream))
    misses = [_run(load_policy([]), distinct) for _ in range(args.repeat)]
    print(f"vault.policy.classify_us_per_event: {min(hits):.3f}  # cache hits")
    print(f"vault.policy.classify_miss_us_per_event: {min(misses):.3f}  # first sight of an input")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
