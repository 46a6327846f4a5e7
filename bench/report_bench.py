"""How long `kubesentinel report` takes: one incident of 10,000 events, and a period of 1,000
incidents, on stores written by the real correlator and SQLite store (vault sealing included).

Prints, per report and format, the time to build the report from the store (verification,
events, evidence manifest, related incidents) and to render it, and the output's size.
Targets (docs/reports.md): under 1 s for the incident, under 5 s for the period.

Usage: python bench/report_bench.py [--events 10000] [--incidents 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson

from kubesentinel.models import Event, Priority, Workload
from kubesentinel.reporting.build import build_incident_report
from kubesentinel.reporting.formats import FORMATS, render
from kubesentinel.reporting.period import build_period_report
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import SQLiteStore

S = 1_000_000_000
START = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
RULES = (
    ("Terminal shell in container", Priority.NOTICE, ("mitre_execution", "T1059")),
    ("Read sensitive file untrusted", Priority.WARNING, ("mitre_credential_access", "T1555")),
    ("Outbound Connection to C2 Servers", Priority.CRITICAL, ("mitre_command_and_control",)),
    ("Drop and execute new binary in container", Priority.CRITICAL, ("mitre_persistence",)),
)


def event(n: int, time_ns: int, workload: Workload, variety: int) -> Event:
    rule, priority, tags = RULES[n % len(RULES)]
    fields = {
        "proc.name": f"proc{n % variety}",
        "proc.pid": 1000 + n % variety,
        "proc.ppid": 999,
        "proc.pname": "bash",
        "proc.cmdline": f"proc{n % variety} --arg {n % (variety * 3)}",
        "proc.aname[2]": "containerd-shim",
        "fd.name": f"10.0.0.{n % 250}:4{n % 1000}->203.0.113.{n % 7}:443",
        "fd.type": "ipv4",
    }
    return Event(
        id=f"{workload.name}-{n:08d}", time_ns=time_ns, received_ns=time_ns, rule=rule,
        priority=priority, source="syscall", hostname=f"node-{n % 3}", workload=workload,
        pod=f"{workload.name}-pod-{n % 4}", container_id="3ad7b26ded6d",
        container_image="registry.example.com/shop/api:1.2.3",
        tactics=tuple(t.removeprefix("mitre_") for t in tags if t.startswith("mitre_")),
        techniques=tuple(t for t in tags if t.startswith("T")), tags=tags,
        output=f"alert {n}", fields=fields, origin=f"bench:{n}",
        # The store keeps these bytes as the evidence, and reads the fields back from them.
        raw=orjson.dumps({"rule": rule, "priority": priority.label, "output": f"alert {n}",
                          "time_ns": time_ns, "tags": tags, "output_fields": fields}),
    )  # fmt: skip


def write_store(path: Path, groups: list[list[Event]]) -> None:
    correlator = Correlator(gap_s=600, max_duration_s=86_400)
    with SQLiteStore(path) as store:
        for events in groups:
            for start in range(0, len(events), 2048):
                batch = events[start : start + 2048]
                incidents = correlator.add(batch, batch[-1].time_ns)
                store.write(batch, incidents)
        store.write([], correlator.expire(2**62))


def big_incident(path: Path, count: int) -> str:
    web = Workload("default", "shop", "Deployment", "api")
    # 10 ms apart: one episode (repeats do not extend an incident, signals do).
    write_store(path, [[event(n, START + n * S // 100, web, variety=200) for n in range(count)]])
    with SQLiteStore(path, read_only=True) as store:
        [incident] = store.list_incidents()
        return incident.id


def many_incidents(path: Path, count: int) -> None:
    events = []
    for n in range(count):
        workload = Workload("default", f"ns{n % 10}", "Deployment", f"app{n}")
        base = START + n * 10 * S
        events.extend(event(k, base + k * S, workload, variety=3) for k in range(5))
    write_store(path, [events])


def timed(repeat: int, action: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one.db", Path(tmp) / "many.db"
        started = time.perf_counter()
        incident_id = big_incident(one, args.events)
        many_incidents(many, args.incidents)
        print(f"stores written in {time.perf_counter() - started:.1f} s")

        with SQLiteStore(one, read_only=True) as store:
            build_s, report = timed(args.repeat, lambda: build_incident_report(store, incident_id))
        print(f"incident of {args.events} events: build {build_s * 1000:.0f} ms "
              f"({len(report.timeline.rows)} timeline rows, "  # type: ignore[attr-defined]
              f"{report.process_tree.nodes} processes)")  # type: ignore[attr-defined]  # fmt: skip
        for fmt in FORMATS:
            render_s, text = timed(args.repeat, lambda fmt=fmt: render(report, fmt))
            total = build_s + render_s
            print(f"  {fmt:8} render {render_s * 1000:5.0f} ms, build+render {total * 1000:5.0f} "
                  f"ms, {len(text) / 1024:6.0f} KiB")  # type: ignore[arg-type]  # fmt: skip

        with SQLiteStore(many, read_only=True) as store:
            build_s, period = timed(
                args.repeat, lambda: build_period_report(store, START, START + 86_400 * S)
            )
        print(f"period of {period.incidents} incidents: build {build_s * 1000:.0f} ms")  # type: ignore[attr-defined]
        for fmt in FORMATS:
            render_s, text = timed(args.repeat, lambda fmt=fmt: render(period, fmt))
            total = build_s + render_s
            print(f"  {fmt:8} render {render_s * 1000:5.0f} ms, build+render {total * 1000:5.0f} "
                  f"ms, {len(text) / 1024:6.0f} KiB")  # type: ignore[arg-type]  # fmt: skip


if __name__ == "__main__":
    main()
