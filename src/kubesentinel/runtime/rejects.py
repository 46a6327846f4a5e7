"""When a stage after ``prepare`` fails on a batch: find the item at fault, reject only it.

``prepare`` (``runtime.workers``) already isolates parsing and enrichment failures. These
helpers are for the pipeline's later stages, the correlator above all:

- ``add_each`` runs ``Correlator.add`` one event at a time, the fallback once ``add`` raised on
  a whole batch; it returns the incidents and the events that raised on their own.
- ``reject_events`` turns those events back into ``Rejected`` items with the bytes and batch
  position of their source item, so the dead-letter file keeps them exactly and the source
  settles them as rejected; the reason comes from ``parse.internal_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubesentinel.models import Event, Incident
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.parse import Rejected, internal_error
from kubesentinel.runtime.sources.interface import RawAlert

__all__ = ["add_each", "reject_events"]


def add_each(
    correlator: Correlator,
    events: Sequence[Event],
    now_ns: int,
    anomalies: Mapping[str, Scored] | None = None,
) -> tuple[list[Incident], list[tuple[Event, Exception]]]:
    """``correlator.add`` one event at a time: (incidents touched, last state of each, in
    order of first touch; the events that raised, with their exception).

    Events that a failed batch ``add`` had already folded in come back as redeliveries and are
    not counted twice (within the correlator's per-incident id cap).
    """
    touched: dict[str, Incident] = {}
    failed: list[tuple[Event, Exception]] = []
    for event in events:
        try:
            # Without anomalies, the two-argument call every Correlator subclass takes.
            incidents = (
                correlator.add([event], now_ns)
                if anomalies is None
                else correlator.add([event], now_ns, anomalies)
            )
        except Exception as exc:
            failed.append((event, exc))
            continue
        for incident in incidents:
            touched[incident.id] = incident  # an existing key keeps its place: first touch
    return list(touched.values()), failed


def reject_events(
    failed: Sequence[tuple[Event, Exception]], batch: Sequence[RawAlert], stage: str
) -> list[Rejected]:
    """A Rejected per failed event, with the bytes and index of its item in ``batch`` (found by
    origin and bytes; the event's own bytes and index -1 when not found)."""
    positions: dict[tuple[str, bytes], list[int]] = {}
    for n, item in enumerate(batch):
        positions.setdefault((item.origin, bytes(item.data).strip()), []).append(n)
    rejected = []
    for event, exc in failed:
        found = positions.get((event.origin, event.raw))
        n = found.pop(0) if found else -1
        data = bytes(batch[n].data) if n >= 0 else event.raw
        rejected.append(Rejected(event.origin, internal_error(stage, exc), data, n))
    return rejected
