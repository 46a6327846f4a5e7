"""An alert enriched with its Kubernetes context: the unit the correlator and store see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesentinel.models.falco_alert import Priority


@dataclass(frozen=True, slots=True)
class Workload:
    """The controller that owns a pod (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod),
    or the host itself (kind "Host", name = hostname) for alerts outside any pod."""

    cluster: str
    namespace: str
    kind: str
    name: str
    # Stable text key: cluster/namespace/Kind/name. Computed once: the correlator and the
    # store read it for every event, and workloads are shared between a workload's events.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"
        object.__setattr__(self, "key", key)


# Not frozen, like FalcoAlert: built once per alert on the hot path, where a frozen __init__
# pays object.__setattr__ per field. Treat it as immutable.
@dataclass(slots=True)
class Event:
    id: str  # falcosidekick uuid, else a stable hash of the alert's content
    time_ns: int
    received_ns: int  # when KubeSentinel accepted it (end-to-end latency starts here)
    rule: str
    priority: Priority
    source: str
    hostname: str
    workload: Workload
    pod: str | None
    container_id: str | None
    container_image: str | None
    tactics: tuple[str, ...]  # MITRE ATT&CK tactics from tags: "execution", "credential_access"
    techniques: tuple[str, ...]  # "T1059", "T1552.001"
    tags: tuple[str, ...]
    output: str
    fields: Mapping[str, Any]
    origin: str
    raw: bytes = field(default=b"", compare=False, repr=False)  # the alert as received
