"""The storage contract of the monitor (the forensic vault will extend it)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Incident, Severity
from kubesentinel.models.posture import Posture

if TYPE_CHECKING:
    from kubesentinel.runtime.store.rows import EncodedWrite
    from kubesentinel.vault.verify import CheckpointKey, VerifyReport


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


class Fenced(StoreError):
    """A write touched partitions that a newer scale-out worker has claimed."""

    def __init__(self, partitions: Collection[int], owners: Collection[str]) -> None:
        names = ", ".join(sorted(set(owners))) or "another worker"
        super().__init__(
            f"partitions {sorted(partitions)} were claimed by {names} after this worker's "
            "lease: their alerts are left to the new owner"
        )
        self.partitions = frozenset(partitions)


class WriteFence(Protocol):
    """Checks a write against newer owners of its partitions (``runtime.scale.fence``)."""

    def scope(self, events: Sequence[Event], incidents: Sequence[Incident]) -> list[int]: ...

    def check(self, conn: Any, scope: Sequence[int]) -> None:
        """Inside the write's transaction: raise ``Fenced`` for partitions claimed since."""
        ...

    def without(
        self, exc: Fenced, events: Sequence[Event], incidents: Sequence[Incident]
    ) -> tuple[list[Event], list[Incident]]:
        """The write less the fenced partitions, which this worker gives up."""
        ...


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


@runtime_checkable
class VaultStore(IncidentStore, Protocol):
    """A sealed store of either backend (``store.open`` opens one): what the monitor's writer,
    ``incidents`` and ``vault`` commands use beyond ``IncidentStore``."""

    @property
    def name(self) -> str:
        """How messages name the store: its path, or its URL without the password."""
        ...

    @property
    def location(self) -> str:
        """What ``store.open.open_store`` takes to open it again (a writer process does)."""
        ...

    @property
    def signing_key(self) -> Path | None: ...

    def apply(self, encoded: EncodedWrite) -> None:
        """Commit a write ``rows.encode_write`` prepared; returns once committed."""
        ...

    def next_of(self, incident_id: str) -> str | None: ...

    def write_transaction(self, action: str) -> AbstractContextManager[Any]:
        """The backend's connection inside one write transaction that holds the chain lock
        (committed on leaving, rolled back on an error): for retention's own statements
        (``vault/retention_backend``). Errors become a StoreError saying ``cannot {action}``."""
        ...

    def read_snapshot(self, action: str) -> AbstractContextManager[Any]:
        """The backend's connection inside one read transaction: one committed state."""
        ...

    def seal_tail(self) -> None: ...

    def verify(self, key: CheckpointKey | None = None) -> VerifyReport: ...

    def verify_incident(
        self, incident_id: str, key: CheckpointKey | None = None
    ) -> VerifyReport: ...

    def verify_incident_states(
        self, incident_ids: Collection[str], key: CheckpointKey | None = None
    ) -> VerifyReport: ...

    def public_key(self) -> bytes | None: ...

    def vault_stats(self) -> dict[str, Any]: ...
