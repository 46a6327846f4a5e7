"""Retention benchmark: events per second ``vault prune`` classifies and removes.

Writes a store of N events (a mix of priorities, rules, workloads and incidents, as
``runtime_bench`` does not need: this one only measures retention), then prunes it as if
100 days had passed: every event is classified, noise and notices go (expired, each with its
tombstone leaf), and the rest stay. Then ``vault verify`` checks the result. Prints one line
per phase, and the bytes of the store a removed event frees (pages in use before and after,
per event removed) with the bytes its tombstone keeps; measure once, on a quiet machine.

``--simulated`` takes the events from ``runtime.simulate`` instead (a realistic mix of
rules, workloads and attacks, correlated into incidents as the monitor does) and prunes twice:
at 100 days, then at 400, when the incidents too have expired.

Run: python bench/vault_prune_bench.py [--events N] [--simulated]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from kubesentinel.models import Event, Incident, Priority
from kubesentinel.models.event import Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.simulate import DEFAULT_START_NS, simulate
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.runtime.workers import prepare
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


def _simulated(count: int) -> list[tuple[list[Event], list[Incident]]]:
    """Writes as the monitor makes them: 2,048 alerts and the incident states they touched."""
    hours = 2.0
    sim = simulate(seed=7, hours=hours, events_per_s=max(1.0, count / (hours * 3600)))
    raw = [RawAlert(line.encode(), f"bench:{n}", 0) for n, line in enumerate(sim.lines())]
    enricher = Enricher(cluster="bench")
    correlator = Correlator()
    writes = []
    for start in range(0, len(raw), 2048):
        batch = prepare(raw[start : start + 2048], enricher).events
        now = batch[-1].time_ns
        writes.append((batch, [*correlator.add(batch, now), *correlator.expire(now)]))
    writes.append(([], correlator.expire(1 << 62)))  # the monitor closes them when it stops
    return writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--simulated", action="store_true")
    args = parser.parse_args()
    if args.simulated:
        writes = _simulated(args.events)
        start_ns, ages = DEFAULT_START_NS, (100, 400)
    else:
        events = _events(args.events)
        writes = [(events[at : at + 2048], []) for at in range(0, len(events), 2048)]
        start_ns, ages = T0, (100,)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "kubesentinel.db"
        with SQLiteStore(path) as store:
            for batch, incidents in writes:
                store.write(batch, incidents)
        print(f"store: {sum(len(b) for b, _ in writes):,} events, "
              f"{_count(path, 'incidents'):,} incidents")  # fmt: skip
        for days in ages:
            _prune(path, start_ns + days * DAY_NS, days)
        with SQLiteStore(path, read_only=True) as store:
            started = time.perf_counter()
            verified = store.verify()
            seconds = time.perf_counter() - started
        print(
            f"verify after prune: ok={verified.ok}, {verified.records:,} records "
            f"({verified.removed_records:,} tombstoned) in {seconds:.2f} s"
        )


def _prune(path: Path, now_ns: int, days: int) -> None:
    entries_before = _tombstone_bytes(path)
    with SQLiteStore(path) as store:
        started = time.perf_counter()
        report = prune(store, PruneOptions(load_policy([]), now_ns))
        seconds = time.perf_counter() - started
    removed = max(report.events_removed, 1)
    print(
        f"prune at {days} days: {report.scanned:,} events classified, "
        f"{report.events_removed:,} removed, {report.incidents_removed:,} incidents expired "
        f"({report.tombstones:,} tombstones, "
        f"{len(report.retention_segments)} retention segments) in {seconds:.2f} s: "
        f"{report.scanned / seconds:,.0f} events/s classified, "
        f"{report.events_removed / seconds:,.0f} events/s removed"
    )
    print(
        f"  bytes freed per removed event: "
        f"{(report.size_before - report.size_after) / removed:.1f} "
        f"(pages in use {report.size_before:,} -> {report.size_after:,}); tombstone entries "
        f"keep {(_tombstone_bytes(path) - entries_before) / removed:.2f} bytes per removed event"
    )


def _tombstone_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'tombstones'").fetchone():
            return 0
        return int(db.execute("SELECT coalesce(sum(length(entries)), 0) FROM tombstones")
                   .fetchone()[0])  # fmt: skip
    finally:
        db.close()


def _count(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        db.close()


if __name__ == "__main__":
    main()
