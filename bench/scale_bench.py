"""Scale-out throughput on this machine: ingress, then 1 and 2 monitor workers, on the real
NATS JetStream and PostgreSQL, with the CPU each process took per 1,000 events.

    .venv/bin/python bench/scale_bench.py [--events 100000] [--partitions 8]

Steps (each on its own streams and PostgreSQL schema, removed after):

1. ``kubesentinel simulate`` writes one hour of a cluster's Falco stream (3,819 alerts, 8
   workloads); copies of it with renamed namespaces (tenants) make ``--events`` alerts over
   many workloads, published to NATS as falcosidekick would.
2. ingress alone (``--until-eof``) moves them to the partitions: its rate and CPU.
3. 1 worker, then (on a fresh deployment) 2 workers, drain the partitions into PostgreSQL:
   wall time from start to the last event stored, each worker's CPU, and the CPU the
   PostgreSQL and NATS servers took meanwhile (all their processes, read from /proc: on a
   shared machine this includes other users' load, so it is an upper bound).
4. Takeover: with 2 idle workers, one is SIGKILLed; the time until the survivor holds every
   partition (lease TTL + up to a renewal round).

The deployment harness is the integration test's (tests/runtime/scale/harness.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime.scale.harness import Deployment, owners, simulate, wait_for

TICKS = os.sysconf("SC_CLK_TCK")


def tenants(lines: list[bytes], events: int) -> list[bytes]:
    """``events`` alerts: copies of the simulated hour, interleaved in time order, copy k's
    namespaces renamed ``<ns>-t<k>`` and uuids made unique, so the stream has 8 workloads per
    copy (the simulated cluster has 8) instead of 8 in all."""
    out: list[bytes] = []
    copies = math.ceil(events / len(lines))
    parsed = [json.loads(line) for line in lines]
    for alert in parsed:
        for k in range(copies):
            fields = dict(alert.get("output_fields") or {})
            for name in ("k8s.ns.name", "k8smeta.ns.name", "ka.target.namespace"):
                if isinstance(fields.get(name), str):
                    fields[name] = f"{fields[name]}-t{k}"
            copy = {**alert, "output_fields": fields}
            if "uuid" in alert:
                copy["uuid"] = f"{alert['uuid']}-t{k}"
            out.append(json.dumps(copy).encode())
    return out[:events]


def subject_split(lines: list[bytes], partitions: int) -> tuple[int, int, float]:
    """Partitioning by the subject falcosidekick publishes on (what JetStream's partition()
    mapping can hash): (workloads, of them split across partitions, share of events that
    belong to a split workload). sha256 stands in for the server's hash: any hash of the
    subject tokens splits a workload whose alerts have several rules."""
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.scale.partition import partition_of
    from kubesentinel.runtime.sources.interface import RawAlert
    from kubesentinel.runtime.sources.nats import subject_of
    from kubesentinel.runtime.workers import prepare as parse

    events = parse([RawAlert(line, f"b:{n}", 0) for n, line in enumerate(lines)], Enricher())
    spread: dict[str, set[int]] = {}
    sizes: dict[str, int] = {}
    for e in events.events:
        subject = subject_of(e.priority.label, e.rule)
        spread.setdefault(e.workload.key, set()).add(partition_of(subject, partitions))
        sizes[e.workload.key] = sizes.get(e.workload.key, 0) + 1
    split = [k for k, parts in spread.items() if len(parts) > 1]
    return len(spread), len(split), sum(sizes[k] for k in split) / max(1, len(events.events))


def distinct_events(lines: list[bytes]) -> int:
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.sources.interface import RawAlert
    from kubesentinel.runtime.workers import prepare as parse

    events = parse([RawAlert(line, f"b:{n}", 0) for n, line in enumerate(lines)], Enricher())
    return len({e.id for e in events.events})


def server_cpu_s(names: tuple[str, ...]) -> float:
    """CPU seconds used so far by every process whose command name is in ``names``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name in names:
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def reap(process: Any) -> float:
    """Wait for a child; its CPU seconds (user + system)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def prepare(workdir: Path, events: int, partitions: int, lines: list[bytes]) -> Deployment:
    dep = Deployment(workdir, partitions=partitions, lease_ttl_s=3.0, ack_wait_s=5.0)
    dep.publish(lines[:events])
    return dep


def run_ingress(dep: Deployment, events: int) -> dict[str, float]:
    started = time.perf_counter()
    process = dep.start_ingress("ingress", "--until-eof", "--format", "json")
    cpu = reap(process)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "cpu_s": cpu, "rate": events / wall}


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def balanced(dep: Deployment, names: list[str]) -> bool:
    held = owners(dep.status())
    counts = [held.count(name) for name in names]
    return None not in held and min(counts) >= 1 and max(counts) - min(counts) <= 1


def drain(
    dep: Deployment, workers: int, expected: int, *, with_ingress: bool = False
) -> dict[str, Any]:
    """Workers (and, with_ingress, a live ingress beside them) from balanced ownership to
    the last event stored: rate, and CPU per process over that span."""
    names = [f"w{n}" for n in range(1, workers + 1)]
    for name in names:
        dep.start_worker(name)
    wait_for(lambda: balanced(dep, names), 60, "balanced partitions", every_s=0.1)
    if with_ingress:
        names.append("ingress")
        dep.start_ingress("ingress")
    pids = [dep.processes[name].pid for name in names]
    stored0 = dep.stored()[0]
    cpu0 = [proc_cpu_s(pid) for pid in pids]
    pg0, nats0 = server_cpu_s(("postgres",)), server_cpu_s(("nats-server",))
    started = time.perf_counter()
    wait_for(lambda: dep.stored()[0] >= expected, 3600, "every event stored", every_s=0.1)
    wall = time.perf_counter() - started
    cpu = [proc_cpu_s(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    pg, nats = server_cpu_s(("postgres",)) - pg0, server_cpu_s(("nats-server",)) - nats0
    for name in names:
        dep.processes[name].send_signal(signal.SIGTERM)
        reap(dep.processes[name])
    return {
        "workers": workers,
        "ingress_live": with_ingress,
        "events": expected - stored0,
        "wall_s": wall,
        "rate": (expected - stored0) / wall,
        "cpu_s": dict(zip(names, cpu, strict=True)),
        "postgres_cpu_s": pg,
        "nats_cpu_s": nats,
        "stored": dep.stored(),
    }


def takeover(dep: Deployment) -> float:
    for name in ("t1", "t2"):
        dep.start_worker(name)
    wait_for(lambda: set(owners(dep.status())) == {"t1", "t2"}, 60, "two owners")
    dep.processes["t2"].kill()
    killed = time.perf_counter()
    wait_for(lambda: set(owners(dep.status())) == {"t1"}, 60, "the takeover", every_s=0.05)
    return time.perf_counter() - killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ks-scale-bench-") as tmp:
        root = Path(tmp)
        hour = simulate(root, 1).read_bytes().splitlines()
        lines = tenants(hour, args.events)
        workloads, split, share = subject_split(hour, args.partitions)
        distinct = distinct_events(lines)  # what the vault ends with: ids are unique there
        print(f"scale-out bench: {args.events} alerts ({math.ceil(args.events / len(hour))} "
              f"tenants of the simulated hour), {args.partitions} partitions, "
              f"{os.cpu_count()} cores (shared machine: other users' load counts)")  # fmt: skip
        print(f"partitioning by subject instead (falco.<priority>.<rule>, {args.partitions} "
              f"partitions): {split} of {workloads} workloads split across partitions, "
              f"{share:.0%} of events in a split workload")  # fmt: skip
        results = []
        ingress: dict[str, float] = {}
        for workers, live in ((1, False), (2, False), (2, True)):
            dep = prepare(root / f"w{workers}{live}", args.events, args.partitions, lines)
            try:
                if not live:
                    ingress = run_ingress(dep, args.events)
                results.append(drain(dep, workers, distinct, with_ingress=live))
            finally:
                dep.cleanup()
        dep = Deployment(root / "takeover", partitions=args.partitions, lease_ttl_s=3.0)
        try:
            took = takeover(dep)
        finally:
            dep.cleanup()
        report(results, ingress, args.events, took)
    return 0


def report(
    results: list[dict[str, Any]], ingress: dict[str, float], events: int, took: float
) -> None:
    cpu_us = ingress["cpu_s"] / events * 1e6
    print(f"ingress alone (1 process): {ingress['rate']:,.0f} alerts/s, "
          f"CPU {cpu_us:.0f} us per alert (start-up included)")  # fmt: skip
    for r in results:
        per = 1e6 / r["events"]
        cpu = ", ".join(f"{name} {c * per:.0f}" for name, c in r["cpu_s"].items())
        what = f"{r['workers']} worker(s)" + (" + live ingress" if r["ingress_live"] else "")
        print(
            f"{what}: {r['rate']:,.0f} events/s over {r['events']} events ({r['wall_s']:.1f} s); "
            f"CPU us per event: {cpu}, PostgreSQL {r['postgres_cpu_s'] * per:.0f}, "
            f"NATS {r['nats_cpu_s'] * per:.0f}; vault (events, distinct ids) = {r['stored']}"
        )
    one, two = results[0]["rate"], results[1]["rate"]
    print(f"2 workers / 1 worker (partitions filled beforehand): {two / one:.2f}x")
    print(
        f"takeover after SIGKILL (lease TTL 3 s): {took:.1f} s until the survivor holds "
        "every partition; its unacknowledged alerts come back within ack_wait after that"
    )


if __name__ == "__main__":
    raise SystemExit(main())
