"""Vault benchmark: sustained write throughput into SQLite with sealing (record hashes, Merkle
roots, the chain, checkpoints), evidence compression and the store's indexes; bytes on disk per
event against the raw Falco JSON; and ``vault verify`` speed.

The writes are the monitor's own: a simulated stream parsed, enriched, correlated and encoded
(``encode_write``) beforehand, then applied one batch at a time, as the writer process does.

Run: python bench/vault_bench.py [--events N] [--batch N] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.store.sqlite import EncodedWrite, SQLiteStore, encode_write
from kubesentinel.runtime.workers import prepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2048, help="events per write")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is printed")
    args = parser.parse_args()
    writes, events, raw_bytes = _writes(args.events, args.batch)
    print(f"vault.events: {events}  # {raw_bytes / events:.0f} bytes of Falco JSON each")
    best_write = best_verify = float("inf")
    size = records = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="ks-vault-bench-") as tmp:
            path = Path(tmp) / "kubesentinel.db"
            write_s = _apply_all(path, writes)
            size = path.stat().st_size
            gc.collect()
            with SQLiteStore(path, read_only=True) as store:
                started = time.perf_counter()
                report = store.verify()
                verify_s = time.perf_counter() - started
            if not report.ok:
                print(f"vault.error: verify failed: {report.problems[:3]}")
                return 1
            records = report.records
            best_write, best_verify = min(best_write, write_s), min(best_verify, verify_s)
    print(f"vault.write_events_per_s: {events / best_write:.0f}  # target >= 100000")
    print(f"vault.bytes_per_event: {size / events:.1f}  # on disk, indexes included")
    print(f"vault.size_vs_raw_json: {raw_bytes / size:.1f}x smaller  # target >= 10x")
    print(f"vault.verify_records_per_s: {records / best_verify:.0f}  # target >= 200000")
    print(f"vault.records: {records}")
    return 0


def _writes(count: int, batch: int) -> tuple[list[EncodedWrite], int, int]:
    sim = simulate(seed=11, hours=1.0, events_per_s=max(1.0, count / 3600))
    lines = [line.encode() for line in sim.lines()]
    raw = [RawAlert(line, f"bench:{n}", 0) for n, line in enumerate(lines)]
    enricher = Enricher(cluster="bench")
    correlator = Correlator()
    writes = []
    events = 0
    for start in range(0, len(raw), batch):
        prepared = prepare(raw[start : start + batch], enricher).events
        incidents = correlator.add(prepared, prepared[-1].time_ns)
        encoded = encode_write(prepared, incidents)
        if encoded is not None:
            writes.append(encoded)
            events += len(prepared)
    return writes, events, sum(map(len, lines))


def _apply_all(path: Path, writes: list[EncodedWrite]) -> float:
    gc.collect()
    with SQLiteStore(path) as store:
        started = time.perf_counter()
        for encoded in writes:
            store.apply(encoded)
        elapsed = time.perf_counter() - started
    return elapsed


if __name__ == "__main__":
    raise SystemExit(main())
