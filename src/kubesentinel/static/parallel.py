"""Spread a scan over the machine's cores when it is big enough to pay for the workers.

A scan fans out once: batches of files are shared with forked helper processes (forked.py),
and each batch's one-object rules run where it was read (read_all's ``after_read``), so only
objects and small hit tuples cross a process boundary. fork_map serves engine.evaluate, which
rates a list of objects already in memory: slices go to forked helpers that inherit them.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from kubesentinel.errors import InputError
from kubesentinel.static import fastdoc
from kubesentinel.static.inputs import InputFile
from kubesentinel.static.reader import ReadBatch, read_batch

T = TypeVar("T")

# Below this much input, forking workers costs more than it saves (measured: bench/).
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
BATCH_BYTES = 128 * 1024  # small, so that neither process waits long for the other at the end
MAX_WORKERS = 8
# Measured (bench/, 2 cores): forking for the rules pays from about 800 objects on.
PARALLEL_MIN_OBJECTS = 1000


def cpu_workers(requested: int = 0) -> int:
    """Workers to use: ``requested``, or one per core (at most MAX_WORKERS) when it is 0."""
    return requested or min(os.cpu_count() or 1, MAX_WORKERS)


def read_all(
    sources: Sequence[InputFile],
    targets: frozenset[str],
    max_file_bytes: int,
    workers: int = 0,
    after_read: Callable[[ReadBatch], None] | None = None,
) -> Iterator[ReadBatch]:
    """Batches in input order; in worker processes too when the input is large and cores allow.

    ``after_read`` runs on each batch in the process that read it (forked workers inherit it),
    so that work on a batch's objects overlaps the reading of other batches.

    Workers take the batches of big files first (CRD bundles: many bytes, small results once
    slimmed); this process takes the batches of small files from the other end (workload
    manifests, whose line-annotated trees cost more to pickle back than to parse here).
    """
    sizes = [_size(s) for s in sources]
    workers = cpu_workers(workers)
    if workers < 2 or sum(sizes) < PARALLEL_MIN_BYTES or any(s.path is None for s in sources):
        yield _read(sources, targets, max_file_bytes, after_read)
        return
    batches, mean_sizes = _batches(sources, sizes)
    order = sorted(range(len(batches)), key=lambda i: -mean_sizes[i])
    if hasattr(os, "fork"):
        from kubesentinel.static.forked import two_ended

        fastdoc.fast_parser()  # imported once here, not once per forked helper
        by_position = two_ended(
            len(order),
            workers - 1,
            lambda position: _read(batches[order[position]], targets, max_file_bytes, after_read),
            lost=lambda position, why: _lost(batches[order[position]], why),
        )
        by_index = dict(zip(order, by_position, strict=True))
        yield from (by_index[index] for index in range(len(batches)))
        return
    yield from _read_spawned(
        batches, order, targets, max_file_bytes, workers=workers, after_read=after_read
    )


def _read_spawned(
    batches: Sequence[Sequence[InputFile]],
    order: Sequence[int],
    targets: frozenset[str],
    max_file_bytes: int,
    *,
    workers: int,
    after_read: Callable[[ReadBatch], None] | None,
) -> list[ReadBatch]:
    """Without fork (Windows): a pool of spawned workers takes batches from the front and this
    process takes them from the back. Spawned workers cannot inherit ``after_read``: the scan
    runs the rules of their batches when it collects them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    done: dict[int, ReadBatch] = {}
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=context) as pool:
        futures = {i: pool.submit(_read, batches[i], targets, max_file_bytes, None) for i in order}
        for index in reversed(order):
            if not futures[index].cancel():
                break  # the workers have started this one: the rest is theirs
            done[index] = _read(batches[index], targets, max_file_bytes, after_read)
        return [
            done[index] if index in done else futures[index].result()
            for index in range(len(batches))
        ]


def _lost(sources: Sequence[InputFile], why: str) -> ReadBatch:
    """A batch whose helper died reading it (a crash in C code, a signal): each of its files
    is an error, and the rest of the scan is reported."""
    several = f" or another of the {len(sources)} files read with it" if len(sources) > 1 else ""
    problem = f"not scanned: {why} while reading this file{several}"
    hint = "scan the file on its own to see whether it causes this" if several else None
    return ReadBatch(
        files=[s.name for s in sources],
        errors=[InputError(problem, file=s.name, hint=hint, code="KS-E010") for s in sources],
        hits=[],
    )


def _read(
    sources: Sequence[InputFile],
    targets: frozenset[str],
    max_file_bytes: int,
    after_read: Callable[[ReadBatch], None] | None,
) -> ReadBatch:
    batch = read_batch(sources, targets, max_file_bytes)
    if after_read is not None:
        after_read(batch)
    return batch


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a scan allocates millions of acyclic objects (parsed
    YAML), and the collector's repeated passes over them cost ~10% of the scan for nothing.
    Forked workers inherit the paused state. Cycles made meanwhile are collected afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def fork_map(task: Callable[[int], T], count: int, workers: int) -> list[T]:
    """``[task(0), ..., task(count - 1)]``, shared with forked helpers (forked.two_ended).

    The helpers are forked with ``task`` in memory, so it may close over anything; only its
    results are pickled. Without fork (Windows) it runs serially.
    """
    if count < 2 or workers < 2 or not hasattr(os, "fork"):
        return [task(index) for index in range(count)]
    from kubesentinel.static.forked import two_ended

    return two_ended(count, workers - 1, task)


def stripes(count: int, workers: int) -> list[range]:
    """``range(count)`` dealt round-robin into one stripe per worker, so that costly runs of
    neighbouring items (one big file's objects) are shared out evenly."""
    parts = max(1, min(workers, count))
    return [range(part, count, parts) for part in range(parts)]


def _size(source: InputFile) -> int:
    if source.size is not None:
        return source.size
    try:
        return os.stat(source.path).st_size if source.path is not None else 0
    except OSError:
        return 0  # the reader reports the error with the file name


def _batches(
    sources: Sequence[InputFile], sizes: Sequence[int]
) -> tuple[list[list[InputFile]], list[float]]:
    """Runs of consecutive files of about BATCH_BYTES, and the mean file size of each run."""
    batches: list[list[InputFile]] = [[]]
    totals = [0]
    for source, size in zip(sources, sizes, strict=True):
        if totals[-1] >= BATCH_BYTES:
            batches.append([])
            totals.append(0)
        batches[-1].append(source)
        totals[-1] += size
    return batches, [total / len(batch) for total, batch in zip(totals, batches, strict=True)]
