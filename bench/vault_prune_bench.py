"""Retention benchmark: events per second ``vault prune`` classifies and removes.

Writes a store of N events (a mix of priorities, rules, workloads and incidents, as
``runtime_bench`` does not need: this one only measures retention), then prunes it as if
100 days had passed: every event is classified, noise and notices go (expired, each with its
tombstone leaf), and the rest stay. Then ``vault verify`` checks the result. Prints one line
per phase; measure once, on a quiet machine.

Run: python bench/vault_prune_bench.py [--events N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from kubesentinel.models import Event, Priority
from kubesentinel.models.event import Workload
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.policy import load_policy
from kubesentinel.vault.prune import PruneOptions, prune
from kubesentinel.vault.retention import DAY_NS

T0 = 1_739_178_941 * 1_000_000_000
PRIORITIES = (
    [Priority.INFORMATIONAL] * 5 + [Priority.NOTICE] * 3 + [Priority.WARNING, Priority.CRITICAL]
)


def _events(count: int, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)  # noqa: S311 - a repeatable stream, not a secret
    workloads = [Workload("c", f"team-{n % 12}", "Deployment", f"app-{n}") for n in range(60)]
    events = []
    for n in range(count):
        workload = rng.choice(workloads)
        time_ns = T0 + n * 20_000_000  # 50 alerts a second
        raw = (
            f'{{"rule":"Rule {n % 40}","priority":"Notice","output":"proc {n} in '
            f'{workload.name}","tags":["container","T1059"],"time":"{time_ns}"}}'
        ).encode()
        events.append(Event(
            id=f"{n:032x}", time_ns=time_ns, received_ns=time_ns, rule=f"Rule {n % 40}",
            priority=rng.choice(PRIORITIES), source="syscall", hostname="node-1",
            workload=workload, pod=f"{workload.name}-0", container_id="3ad7b26ded6d",
            container_image="nginx:1.27", tactics=("execution",), techniques=("T1059",),
            tags=("container", "T1059"), output="", fields={}, origin="bench", raw=raw,
        ))  # fmt: skip
    return events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    events = _events(args.events)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "kubesentinel.db"
        with SQLiteStore(path) as store:
            for start in range(0, len(events), 2048):
                store.write(events[start : start + 2048], [])
        with SQLiteStore(path) as store:
            started = time.perf_counter()
            report = prune(store, PruneOptions(load_policy([]), T0 + 100 * DAY_NS))
            seconds = time.perf_counter() - started
        print(
            f"prune: {report.scanned:,} events classified, {report.events_removed:,} removed "
            f"({report.tombstones:,} tombstones, {len(report.retention_segments)} retention "
            f"segments) in {seconds:.2f} s: {report.scanned / seconds:,.0f} events/s "
            f"classified, {report.events_removed / seconds:,.0f} events/s removed"
        )
        with SQLiteStore(path, read_only=True) as store:
            started = time.perf_counter()
            verified = store.verify()
            seconds = time.perf_counter() - started
        print(
            f"verify after prune: ok={verified.ok}, {verified.records:,} records "
            f"({verified.removed_records:,} tombstoned) in {seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
