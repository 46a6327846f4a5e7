"""The storage contract of the monitor (the forensic vault will extend it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubesentinel.models import Event, Incident, Severity
from kubesentinel.models.posture import Posture


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store holds it: its incident, its role there, where its bytes are."""

    event: Event
    incident_id: str | None
    context: str | None  # why it is context of its incident ("repeat"...); None: a signal
    segment: int
    offset: int
    length: int

    @property
    def evidence(self) -> str:
        """``segment 12 @ 3456+789``: the evidence segment, offset and length of its bytes."""
        return f"segment {self.segment} @ {self.offset}+{self.length}"


class IncidentStore(Protocol):
    def write(self, events: Sequence[Event], incidents: Sequence[Incident]) -> None:
        """Store events and the new state of the incidents they touched, in one transaction."""
        ...

    def list_incidents(
        self,
        *,
        limit: int | None = None,
        namespace: str | None = None,
        since_ns: int | None = None,
        min_severity: Severity | None = None,
        status: str | None = None,
    ) -> list[Incident]:
        """Newest first (by last signal time)."""
        ...

    def count_incidents(
        self,
        *,
        namespace: str | None = None,
        since_ns: int | None = None,
        min_severity: Severity | None = None,
        status: str | None = None,
    ) -> int: ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def events_of(self, incident_id: str) -> list[Event]: ...

    def stored_events_of(
        self, incident_id: str, *, context_limit: int | None = None
    ) -> list[StoredEvent]: ...

    def save_posture(self, posture: Posture) -> None: ...

    def load_posture(self) -> Posture | None: ...

    def close(self) -> None: ...
