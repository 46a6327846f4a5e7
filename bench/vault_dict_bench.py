"""A Zstandard dictionary trained on Falco JSON against the store's codec (zstd level 3, no
dictionary), on evidence segments as the monitor writes them.

A segment is a batch of alerts as received, concatenated, then its sidecar (JSON of offset,
origin and time received per alert), compressed as one frame: the monitor writes batches of
up to 2,048 alerts, and small ones (16, 64) when the stream is slow. The dictionary is trained
on one simulated stream (``runtime/simulate``, seed 1) and evaluated on alerts it never saw: a
stream of another seed, and the real Falco and falcosidekick alerts of
``../shared/falco/samples`` (read in place; absent, that row is skipped).

Figures per segment size and codec: bytes of compressed evidence per event, and compression
and decompression time per event (best of --repeat rounds, the least disturbed by other
processes). Output: one line per row, ``name: number`` figures.
Usage: python bench/vault_dict_bench.py [--repeat N] [--hours H]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.store import codec

SAMPLES = Path(os.environ.get("KUBESENTINEL_SHARED", Path(__file__).parents[1].parent / "shared"))
REAL_ALERTS = SAMPLES / "falco" / "samples" / "alerts.jsonl"
SEGMENT_SIZES = (16, 64, 256, 2048)
DICT_SIZES = (16 << 10, 64 << 10, 112 << 10)  # 112 KiB: the zstd CLI's default
TRAIN_SEED, EVAL_SEED = 1, 7


def alerts(seed: int, hours: float) -> list[bytes]:
    return [line.encode() for line in simulate(seed=seed, hours=hours).lines()]


def segments(lines: list[bytes], size: int) -> Iterator[tuple[bytes, int]]:
    """(segment blob, alerts in it): the alerts then their sidecar, as the store writes."""
    for start in range(0, len(lines) - size + 1, size):
        batch = lines[start : start + size]
        offsets, offset = [], 0
        for number, raw in enumerate(batch, start + 1):
            offsets.append((offset, f"falco.jsonl:{number}", 1_767_225_600_000_000_000 + number))
            offset += len(raw)
        yield b"".join(batch) + orjson.dumps(offsets), size


def best(function: Callable[[], Any], repeat: int) -> float:
    fastest = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def measure(
    name: str,
    blobs: list[tuple[bytes, int]],
    dictionary: Any | None,
    repeat: int,
    *,
    reuse: bool = True,
) -> None:
    """One row. ``reuse``: one compressor for every segment, as a writer would keep one with
    its dictionary loaded; without it, ``zstd.compress`` per segment, as the store does now."""
    zstd = codec._zstd()  # the store's codec module: stdlib on 3.14, its backport before
    events = sum(count for _, count in blobs)
    raw = sum(len(blob) for blob, _ in blobs)
    options = {} if dictionary is None else {"zstd_dict": dictionary}
    compressor = zstd.ZstdCompressor(level=codec.LEVEL, **options)
    flush = zstd.ZstdCompressor.FLUSH_FRAME
    if reuse:

        def compress() -> list[bytes]:
            return [compressor.compress(blob, flush) for blob, _ in blobs]
    else:

        def compress() -> list[bytes]:
            return [zstd.compress(blob, level=codec.LEVEL) for blob, _ in blobs]

    frames = compress()
    stored = sum(map(len, frames))
    compress_s = best(compress, repeat)
    decompress_s = best(lambda: [zstd.decompress(frame, **options) for frame in frames], repeat)
    print(
        f"{name}: events {events}, raw_bytes_per_event {raw / events:.0f}, "
        f"bytes_per_event {stored / events:.1f}, ratio {raw / stored:.1f}, "
        f"compress_us_per_event {compress_s / events * 1e6:.2f}, "
        f"compress_mb_s {raw / compress_s / 1e6:.0f}, "
        f"decompress_us_per_event {decompress_s / events * 1e6:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hours", type=float, default=2.0, help="of each simulated stream")
    args = parser.parse_args()
    zstd = codec._zstd()
    train = alerts(TRAIN_SEED, args.hours)
    held_out = {"simulated": alerts(EVAL_SEED, args.hours)}
    if REAL_ALERTS.is_file():
        held_out["real"] = [line.strip() for line in REAL_ALERTS.read_bytes().splitlines()
                            if line.strip()]  # fmt: skip
    print(f"training: {len(train)} simulated alerts (seed {TRAIN_SEED}); evaluation: "
          + ", ".join(f"{name} {len(lines)}" for name, lines in held_out.items()))  # fmt: skip
    dictionaries = {}
    for size in DICT_SIZES:
        start = time.perf_counter()
        dictionaries[size] = zstd.train_dict(train, size)
        print(f"dict {size >> 10} KiB: trained_s {time.perf_counter() - start:.2f}, "
              f"bytes {len(dictionaries[size].dict_content)}")  # fmt: skip
    for stream, lines in held_out.items():
        for segment_size in SEGMENT_SIZES:
            if segment_size > len(lines):  # repeating alerts to fill it would flatter zstd
                print(f"{stream} segment {segment_size}: skipped, {len(lines)} alerts only")
                continue
            blobs = list(segments(lines, segment_size))
            name = f"{stream} segment {segment_size} zstd-{codec.LEVEL}"
            measure(f"{name} (store now)", blobs, None, args.repeat, reuse=False)
            measure(name, blobs, None, args.repeat)
            for size, dictionary in dictionaries.items():
                measure(f"{name}+dict{size >> 10}k", blobs, dictionary, args.repeat)


if __name__ == "__main__":
    main()
