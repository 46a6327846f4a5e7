"""The monitor's reports on incidents that open or escalate (``reporting.on_incident``).

Off the ingest path: the pipeline hands over the ids of a committed batch's new or escalated
incidents (``notify``, which only queues them), and one thread renders their reports from the
store opened read-only, as ``kubesentinel report`` would. An incident named again while it
waits is reported once, in its latest state. ``close`` renders what is still queued before
the monitor exits. A failed report is logged and skipped: it never stops the monitor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from kubesentinel.errors import KubeSentinelError

__all__ = ["IncidentReporter"]

log = logging.getLogger("kubesentinel.monitor")


class IncidentReporter:
    def __init__(
        self,
        location: str,
        formats: Sequence[str],
        output_path: str | Path,
        *,
        rules_path: str | None = None,
    ) -> None:
        self._location = location
        self._formats = tuple(formats)
        self._output = str(output_path)
        self._rules_path = rules_path
        self._pending: dict[str, None] = {}  # ids in arrival order, each once
        self._wake = threading.Condition()
        self._closing = False
        self.written = 0  # reports written (one per incident and occasion, all formats)
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="incident-reports", daemon=True)
        self._thread.start()

    def notify(self, incident_ids: Sequence[str]) -> None:
        with self._wake:
            for incident_id in incident_ids:
                self._pending.pop(incident_id, None)
                self._pending[incident_id] = None
            self._wake.notify()

    def close(self) -> None:
        """Render what is queued, then stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = list(self._pending)
                self._pending.clear()
            self._render(batch)

    def _render(self, incident_ids: list[str]) -> None:
        from kubesentinel.reporting.build import build_incident_report
        from kubesentinel.reporting.output import write_report
        from kubesentinel.runtime.store.open import open_store

        try:
            store = open_store(self._location, read_only=True)
        except KubeSentinelError as exc:
            self.failed += len(incident_ids)
            log.error("cannot open the store to write incident reports: %s", exc)
            return
        try:
            for incident_id in incident_ids:
                try:
                    report = build_incident_report(store, incident_id, rules_path=self._rules_path)
                    paths = write_report(report, self._formats, self._output)
                except Exception as exc:  # a report must never stop the monitor
                    self.failed += 1
                    log.error("report on incident %s failed: %s", incident_id, exc)
                    continue
                self.written += 1
                log.info("report on incident %s: %s", incident_id, ", ".join(map(str, paths)))
        finally:
            store.close()
