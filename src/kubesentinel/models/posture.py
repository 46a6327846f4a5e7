"""The static posture of workloads: what `kubesentinel scan` found on each, for the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from kubesentinel.models.severity import Severity

if TYPE_CHECKING:
    from kubesentinel.models.event import Workload

DEFAULT_CLUSTER: Final = "default"  # the monitor's --cluster when none is given


def posture_key(cluster: str, namespace: str | None, kind: str, name: str) -> str:
    """ "cluster/namespace/Kind/name", as ``Workload.key``; an unset namespace is "default", as
    the API server reads it."""
    return f"{cluster}/{namespace or 'default'}/{kind}/{name}"


@dataclass(frozen=True, slots=True)
class PostureFinding:
    rule_id: str
    severity: Severity
    title: str
    # The rule's runtime impact from the catalogue ("privileged", "host PID"); None when a
    # failure of the rule does not make a runtime incident riskier.
    impact: str | None = None


@dataclass(frozen=True, slots=True)
class Posture:
    # posture_key(cluster, namespace, kind, name) -> that workload's findings.
    workloads: Mapping[str, tuple[PostureFinding, ...]] = field(default_factory=dict)
    source: str = ""  # the scan file it came from, or "scan" (``scan --store``)
    cluster: str = DEFAULT_CLUSTER  # the cluster the scan describes: its keys start with it
    # When the store saved it (ns since the epoch): the posture's age in a report. None for a
    # posture not yet saved, or saved before stores kept the time.
    saved_ns: int | None = field(default=None, compare=False)

    def of(self, workload: Workload) -> tuple[PostureFinding, ...]:
        """The findings of a workload; none for a workload of another cluster."""
        key = posture_key(workload.cluster, workload.namespace, workload.kind, workload.name)
        return self.workloads.get(key, ())
