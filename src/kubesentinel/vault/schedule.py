"""The monitor's scheduled retention: ``prune`` every ``forensics.prune_interval_s``.

A thread of the monitor with its own connection to the store, SQLite or PostgreSQL. Each
prune transaction holds the write lock (SQLite's; on PostgreSQL the chain lock every writer
of the vault takes) for at most ``prune.BATCH`` records (about a tenth of a second), and the
monitor's writer waits for the lock (SQLite's busy timeout, PostgreSQL's lock_timeout) rather
than failing, so writes are delayed briefly, never lost; nothing is acknowledged before it is
committed, as always. Several monitors of one PostgreSQL vault each prune on their schedule:
the chain lock runs their transactions one after another, and each reads what the one before
left, so a record is never tombstoned twice.
A failed run is logged and tried again at the next interval. The first run comes shortly
after start, so a monitor restarted often still prunes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from kubesentinel.errors import KubeSentinelError
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.policy import Policy
from kubesentinel.vault.prune import PruneOptions, PruneReport, dead_letter_files, prune

__all__ = ["PruneSchedule"]

log = logging.getLogger("kubesentinel.monitor")
FIRST_RUN_S: Final = 10.0


class PruneSchedule:
    def __init__(  # noqa: PLR0917 - what one retention run needs
        self,
        location: str | Path,
        signing_key: Path | None,
        policy: Policy,
        interval_s: float,
        max_bytes: int | None,
        dead_letter: Path | None,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = time.time_ns,
        first_run_s: float = FIRST_RUN_S,
    ) -> None:
        self._location = str(location)  # a SQLite path or a PostgreSQL URL
        self._key = signing_key
        self._policy = policy
        self._interval = interval_s
        self._max_bytes = max_bytes
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._clock = clock
        self._first = min(first_run_s, interval_s)
        self._stop = threading.Event()
        self.runs = 0
        self.last: PruneReport | None = None
        # Opened on the first run and kept: closing truncates SQLite's WAL, which would wait
        # for the monitor's writer and readers.
        self._store: VaultStore | None = None
        self._thread = threading.Thread(target=self._loop, name="vault-prune", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the transaction in progress (each is short)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except KubeSentinelError as exc:
                log.error("closing the vault retention's connection: %s", exc)

    def _loop(self) -> None:
        wait = self._first
        while not self._stop.wait(wait):
            wait = self._interval
            try:
                self.run_once()
            except KubeSentinelError as exc:
                log.error("vault retention failed, tried again in %g s: %s", self._interval, exc)

    def run_once(self) -> PruneReport:
        files: Sequence[Path] = dead_letter_files(self._dead_letter) if self._dead_letter else ()
        options = PruneOptions(self._policy, self._clock(), self._max_bytes, files)
        if self._store is None:
            from kubesentinel.runtime.store.open import open_store

            self._store = open_store(self._location, signing_key=self._key)
        report = prune(self._store, options)
        self.runs += 1
        self.last = report
        if self._metrics is not None:
            self._metrics.record_prune(
                removed=report.events_removed,
                over_cap=report.over_cap,
                used_bytes=report.size_after,
            )
        if report.events_removed or report.rollups_removed:
            log.info(
                "vault retention removed %d events and %d rollup rows (%d tombstones)",
                report.events_removed,
                report.rollups_removed,
                report.tombstones,
            )
        return report
