"""Correlator benchmark: events/s through ``Correlator.add`` + ``expire`` (and ``encode_write``,
the half of a store write that runs in the monitor's own process), on a simulated stream
already parsed and enriched, in the monitor's batches.

Run: python bench/correlate_bench.py [--events N] [--batch N] [--hours H] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import time

from kubesentinel.models import Event
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.store.sqlite import encode_write
from kubesentinel.runtime.workers import prepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--hours", type=float, default=1.0, help="simulated time they span")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is printed")
    args = parser.parse_args()
    events = _events(args.events, args.hours)
    print(f"correlate.events: {len(events)}  # over {args.hours} simulated hours")
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    best_add = best_all = float("inf")
    incidents = 0
    for _ in range(args.repeat):
        gc.collect()
        add_s, all_s, incidents = _run(batches)
        best_add, best_all = min(best_add, add_s), min(best_all, all_s)
    print(f"correlate.add_events_per_s: {len(events) / best_add:.0f}  # add + expire")
    print(f"correlate.with_encode_events_per_s: {len(events) / best_all:.0f}  # + encode_write")
    print(f"correlate.incidents_opened: {incidents}")
    return 0


def _events(count: int, hours: float) -> list[Event]:
    sim = simulate(seed=7, hours=hours, events_per_s=max(1.0, count / (hours * 3600)))
    raw = [RawAlert(line.encode(), f"bench:{n}", 0) for n, line in enumerate(sim.lines())]
    enricher = Enricher(cluster="bench")
    events: list[Event] = []
    for start in range(0, len(raw), 2048):
        events += prepare(raw[start : start + 2048], enricher).events
    return events


def _run(batches: list[list[Event]]) -> tuple[float, float, int]:
    correlator = Correlator(window_s=300)
    add_s = encode_s = 0.0
    for batch in batches:
        now = batch[-1].time_ns
        started = time.perf_counter()
        incidents = correlator.add(batch, now)
        closed = correlator.expire(now)
        added = time.perf_counter()
        encode_write(batch, [*incidents, *closed])
        encode_s += time.perf_counter() - added
        add_s += added - started
    return add_s, add_s + encode_s, correlator.opened_total


if __name__ == "__main__":
    raise SystemExit(main())
