"""Spread file parsing over the machine's cores when a scan is big enough to pay for it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

from kubesentinel.static.inputs import InputFile
from kubesentinel.static.reader import ReadBatch, read_batch

# Below this much input, forking workers costs more than it saves.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
BATCH_BYTES = 512 * 1024
MAX_WORKERS = 8


def read_all(
    sources: Sequence[InputFile], targets: frozenset[str], max_file_bytes: int, workers: int = 0
) -> Iterator[ReadBatch]:
    """Batches in input order; in worker processes when the input is large and cores allow."""
    sizes = [_size(s) for s in sources]
    workers = workers or min(os.cpu_count() or 1, MAX_WORKERS)
    if workers < 2 or sum(sizes) < PARALLEL_MIN_BYTES or any(s.path is None for s in sources):
        yield read_batch(sources, targets, max_file_bytes)
        return
    batches = _batches(sources, sizes)
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(read_batch, batch, targets, max_file_bytes) for batch in batches]
        for future in futures:
            yield future.result()


def _size(source: InputFile) -> int:
    try:
        return source.path.stat().st_size if source.path is not None else 0
    except OSError:
        return 0  # the reader reports the error with the file name


def _batches(sources: Sequence[InputFile], sizes: Sequence[int]) -> list[list[InputFile]]:
    batches: list[list[InputFile]] = [[]]
    filled = 0
    for source, size in zip(sources, sizes, strict=True):
        if filled >= BATCH_BYTES:
            batches.append([])
            filled = 0
        batches[-1].append(source)
        filled += size
    return batches
