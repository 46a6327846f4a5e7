"""The storage contract of the monitor (the forensic vault will extend it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kubesentinel.models import Event, Incident
from kubesentinel.models.posture import Posture


class IncidentStore(Protocol):
    def write(self, events: Sequence[Event], incidents: Sequence[Incident]) -> None:
        """Store events and the new state of the incidents they touched, in one transaction."""
        ...

    def list_incidents(
        self, *, limit: int | None = None, namespace: str | None = None
    ) -> list[Incident]:
        """Newest first (by last event time)."""
        ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def events_of(self, incident_id: str) -> list[Event]: ...

    def save_posture(self, posture: Posture) -> None: ...

    def load_posture(self) -> Posture | None: ...

    def close(self) -> None: ...
