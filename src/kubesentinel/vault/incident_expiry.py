"""Which incidents have expired: the ``incident`` class's ``keep_days`` after their last signal.

An incident that hit the correlator's max duration is continued by a new incident whose
``previous_id`` names it; such a **chain** is one episode, so it is kept and expired as one:
it expires once every member can, that is when its newest member's last signal is older than
``keep_days``, none of its members is held, and each is closed (or was last written more than
``keep_days`` ago: left open by a monitor that was killed, and touched by none since). A hold
on any member keeps the whole chain; after the release it expires as any other. So a
continuation never outlives its predecessor and never loses it while it is kept itself.

Pure: the rows come from the store's retention queries, ``incident_ages`` of ``retention_sql``
or ``retention_pg`` (``retention_backend.RetentionQueries``), which prune injects.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["IncidentAge", "expired_chains"]

CLOSED: Final = "closed"


@dataclass(frozen=True, slots=True)
class IncidentAge:
    id: str
    previous_id: str | None
    last_ns: int  # its last signal
    closed: bool
    written_ns: int  # when the segment that last wrote it was written


def expired_chains(
    incidents: Iterable[IncidentAge], held: Collection[str], before_ns: int
) -> list[list[str]]:
    """The chains (ids, oldest first) whose every member expired before ``before_ns``
    (now minus keep_days), none held. Chains in order of their newest last signal."""
    by_id = {incident.id: incident for incident in incidents}
    root: dict[str, str] = {}

    def find(incident_id: str) -> str:
        path = []
        while (parent := root.get(incident_id, incident_id)) != incident_id:
            path.append(incident_id)
            incident_id = parent
        for member in path:  # path compression: chains are long only in theory
            root[member] = incident_id
        return incident_id

    for incident in by_id.values():
        previous = incident.previous_id
        if previous is not None and previous in by_id:  # a predecessor gone earlier: no link
            a, b = find(incident.id), find(previous)
            if a != b:
                root[a] = b
    chains: dict[str, list[IncidentAge]] = {}
    for incident in by_id.values():
        chains.setdefault(find(incident.id), []).append(incident)
    expired = [
        sorted(members, key=lambda m: (m.last_ns, m.id))
        for members in chains.values()
        if all(_expired(m, held, before_ns) for m in members)
    ]
    expired.sort(key=lambda members: (members[-1].last_ns, members[-1].id))
    return [[m.id for m in members] for members in expired]


def _expired(incident: IncidentAge, held: Collection[str], before_ns: int) -> bool:
    if incident.id in held or incident.last_ns >= before_ns:
        return False
    return incident.closed or incident.written_ns < before_ns
