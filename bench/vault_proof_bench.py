"""The vault's proof primitives: what sealing and checking a segment costs.

(a) The RFC 6962 root of 2,048 leaf hashes (a segment's records), in milliseconds.
(b) One record hash (canonical JSON of a 21-column event row, then the leaf hash), in
microseconds.
(c) Signing one checkpoint and (d) parsing and verifying it, in milliseconds.

Each figure is the best of --repeat rounds (the least disturbed by other processes on the
machine), each round timing enough calls to last a few milliseconds.

Output: one ``name: number`` per line.
Usage: python bench/vault_proof_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubesentinel.vault import merkle
from kubesentinel.vault.checkpoint import (
    Checkpoint,
    checkpoint_hash,
    parse_and_verify,
    sign_checkpoint,
)
from kubesentinel.vault.keys import SigningKey
from kubesentinel.vault.record import record_hash

ORIGIN = "kubesentinel.example/vault/4f1c2a9e"
# An events row as the store keeps it: ids, times, rule, priority, Kubernetes context, output,
# score, offsets into the evidence, and the segment id last.
EVENT_ROW: list[Any] = [
    "0f3a9c2e5b7d4e1f8a6c0b2d4e6f8a0c", 1_764_822_000_123_456_789, "Terminal shell in container",
    "Warning", "node-1", "shop", "web-7f9c6d5b8-x2x9q", "nginx", "Deployment/web", "syscall",
    "A shell was spawned in a container with an attached terminal (user=root shell=bash "
    "parent=runc cmdline=bash terminal=34816 container_id=3f1c2a9e4b5d)",
    "proc.name=bash", None, 0.93, 3, "inc-7f3a9c2e", "falco", 123_456, 678, "zstd", 42,
]  # fmt: skip


def best_per_call(function: Callable[[], object], calls: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` rounds of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    repeat = parser.parse_args().repeat

    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(2048)]
    root_seconds = best_per_call(lambda: merkle.root(leaves), 5, repeat)
    hash_seconds = best_per_call(lambda: record_hash("event", EVENT_ROW), 2000, repeat)

    key = SigningKey(Ed25519PrivateKey.generate())
    first = sign_checkpoint(key, Checkpoint(ORIGIN, 1, leaves[0], 2048, None, 1_764_822_000))
    checkpoint = Checkpoint(
        ORIGIN, 2, merkle.root(leaves), 4096, checkpoint_hash(first), 1_764_822_060
    )
    text = sign_checkpoint(key, checkpoint)
    sign_seconds = best_per_call(lambda: sign_checkpoint(key, checkpoint), 100, repeat)
    verify_seconds = best_per_call(
        lambda: parse_and_verify(text, key.verify_key, expected_origin=ORIGIN), 100, repeat
    )

    print(f"vault.merkle.root_2048_leaves_ms: {root_seconds * 1e3:.3f}")
    print(f"vault.record.hash_us: {hash_seconds * 1e6:.2f}")
    print(f"vault.checkpoint.sign_ms: {sign_seconds * 1e3:.3f}")
    print(f"vault.checkpoint.verify_ms: {verify_seconds * 1e3:.3f}")


if __name__ == "__main__":
    main()
