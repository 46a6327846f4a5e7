"""The static posture of workloads: what `kubesentinel scan` found on each, for the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubesentinel.models.severity import Severity


@dataclass(frozen=True, slots=True)
class PostureFinding:
    rule_id: str
    severity: Severity
    title: str


@dataclass(frozen=True, slots=True)
class Posture:
    # "namespace/Kind/name" (namespace "default" when unset) -> that workload's findings.
    workloads: Mapping[str, tuple[PostureFinding, ...]] = field(default_factory=dict)
    source: str = ""  # the scan file it came from, or "store"

    def of(self, namespace: str, kind: str, name: str) -> tuple[PostureFinding, ...]:
        return self.workloads.get(f"{namespace}/{kind}/{name}", ())
