"""Legal holds: ``vault hold`` and ``vault release``.

A hold is a sealed ``hold`` record (in a retention segment of its own, signed by the next
checkpoint), never a flag that could be flipped unnoticed. An incident's holds are read in
order and the last one decides. While an incident is held, its events and every event of its
workload in its context window are in class ``hold``: never expired, rolled up or evicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kubesentinel.errors import UsageError
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.vault.retention_backend import queries_for

__all__ = ["HoldResult", "place_hold", "release_hold"]

HOLD: Final = "hold"
RELEASE: Final = "release"
MAX_REASON: Final = 1024


@dataclass(frozen=True, slots=True)
class HoldResult:
    incident_id: str
    changed: bool  # False: it already was in that state; nothing was written
    segment: int | None  # the retention segment sealing the record


def place_hold(store: VaultStore, incident_id: str, reason: str, now_ns: int) -> HoldResult:
    return _record(store, incident_id, HOLD, reason, now_ns)


def release_hold(store: VaultStore, incident_id: str, now_ns: int) -> HoldResult:
    return _record(store, incident_id, RELEASE, "", now_ns)


def _record(
    store: VaultStore, incident_id: str, action: str, reason: str, now_ns: int
) -> HoldResult:
    if len(reason) > MAX_REASON:
        raise UsageError(f"--reason is longer than {MAX_REASON} characters")
    sql = queries_for(store)
    with store.write_transaction(f"{action} an incident") as db:
        sql.ensure_schema(db)
        if not sql.has_incident(db, incident_id):
            raise UsageError(
                f"no incident {incident_id!r} in {store.name}",
                hint="`kubesentinel incidents list` shows the ids",
            )
        held = incident_id in sql.held_incidents(db)
        if held == (action == HOLD):
            return HoldResult(incident_id, changed=False, segment=None)
        segment = sql.append_retention_segment(
            db, [], [], [(incident_id, action, reason, now_ns)], now_ns
        )
    store.seal_tail()  # a checkpoint signs it now
    return HoldResult(incident_id, changed=True, segment=segment)
