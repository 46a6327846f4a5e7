"""Which events the monitor keeps: --namespace, --deployment, --min-priority."""

from __future__ import annotations

from dataclasses import dataclass

from kubesentinel.models import Event, Priority


@dataclass(frozen=True, slots=True)
class EventFilter:
    """--namespace, --deployment and --min-priority; empty sets accept everything."""

    namespaces: frozenset[str] = frozenset()
    deployments: frozenset[str] = frozenset()
    min_priority: Priority = Priority.DEBUG

    @property
    def accepts_all(self) -> bool:
        return not self.namespaces and not self.deployments and self.min_priority == Priority.DEBUG

    def accept(self, event: Event) -> bool:
        if event.priority < self.min_priority:
            return False
        if self.namespaces and event.workload.namespace not in self.namespaces:
            return False
        return not self.deployments or (
            event.workload.kind == "Deployment" and event.workload.name in self.deployments
        )


ACCEPT_ALL = EventFilter()
