"""Garbage collector settings for the monitor's processes (the monitor and its store writer).

Every alert makes a few dicts and objects that live for one batch; with CPython's default
thresholds (a young collection every 700 allocations) they are scanned several times and
promoted before they die, and the full collections that follow walk every long-lived object.
A young collection every 10,000 allocations, with the objects of start-up (modules, rules,
caches) frozen out of the collector's view, makes the monitor measurably faster
(docs/performance.md). Reference counting still frees nearly everything at once; only
cycles wait for the collector, which still runs.
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (10_000, 50, 100)


def tune_for_throughput() -> None:
    """Call once a process has loaded what it needs."""
    gc.collect()  # start-up's garbage (a model file's parsed JSON) is freed, not frozen
    _return_free_heap()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def _return_free_heap() -> None:
    """glibc keeps the heap that start-up freed for reuse; hand it back to the system, which
    the idle figure counts (docs/performance.md)."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc's; musl and macOS have none
    except (OSError, AttributeError):
        return
    trim(0)
