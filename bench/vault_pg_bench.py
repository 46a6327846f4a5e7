"""Vault benchmark on PostgreSQL: sustained write throughput with sealing (record hashes,
Merkle roots, the chain under its lock, checkpoints), evidence compression and the indexes;
bytes per event in the schema; and ``vault verify`` speed. The writes are the monitor's own,
prepared as in ``vault_bench.py`` (the SQLite figures), then applied one batch at a time,
each acknowledged after its COMMIT, as the writer process does.

Each run uses a schema of its own, dropped after. Run once; it is not a loop.

Run: python bench/vault_pg_bench.py [--url postgresql://postgres@127.0.0.1/test]
     [--events N] [--batch N] [--writers N]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from vault_bench import _writes

from kubesentinel.runtime.store.postgres import PostgresStore
from kubesentinel.runtime.store.rows import EncodedWrite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2048, help="events per write")
    parser.add_argument("--writers", type=int, default=1, help="stores writing at once")
    args = parser.parse_args()
    writes, events, raw_bytes = _writes(args.events, args.batch)
    print(f"vault_pg.events: {events}  # {raw_bytes / events:.0f} bytes of Falco JSON each")
    schema = f"ks_bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.url}{'&' if '?' in args.url else '?'}schema={schema}"
    try:
        with tempfile.TemporaryDirectory(prefix="ks-vault-pg-bench-") as tmp:
            key = Path(tmp) / "vault-signing-key.pem"
            PostgresStore(url, signing_key=key).close()  # the schema, outside the timing
            write_s = _apply_all(url, key, writes, args.writers)
        with PostgresStore(url, read_only=True) as store:
            size = store.vault_stats()["size_bytes"]
            started = time.perf_counter()
            report = store.verify()
            verify_s = time.perf_counter() - started
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
    if not report.ok:
        print(f"vault_pg.error: verify failed: {report.problems[:3]}")
        return 1
    print(f"vault_pg.write_events_per_s: {events / write_s:.0f}  # {args.writers} writer(s)")
    print(f"vault_pg.bytes_per_event: {size / events:.1f}  # tables, indexes and TOAST")
    print(f"vault_pg.size_vs_raw_json: {raw_bytes / size:.1f}x smaller")
    print(f"vault_pg.verify_records_per_s: {report.records / verify_s:.0f}")
    print(f"vault_pg.records: {report.records}  segments: {report.segments}")
    return 0


def _apply_all(url: str, key: Path, writes: list[EncodedWrite], writers: int) -> float:
    """Seconds to commit every write, split round-robin over ``writers`` stores at once."""
    gc.collect()
    stores = [PostgresStore(url, signing_key=key) for _ in range(writers)]
    shares = [writes[n::writers] for n in range(writers)]
    threads = [
        threading.Thread(target=lambda s=store, w=share: [s.apply(one) for one in w])
        for store, share in zip(stores, shares, strict=True)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()  # the last checkpoint is part of the cost
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
