"""A finding that was not reported because a suppression matched it, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kubesentinel.models.finding import Finding

# annotation: kubesentinel.io/skip on the object; config: static.skip; baseline: --baseline.
SuppressionKind = Literal["annotation", "config", "baseline"]


@dataclass(frozen=True, slots=True)
class Suppression:
    kind: SuppressionKind
    reason: str | None  # as the user wrote it; None when no reason was given
    file: str | None  # where the suppression is declared: manifest, config or baseline file
    line: int | None


@dataclass(frozen=True, slots=True)
class Suppressed:
    finding: Finding
    suppression: Suppression
