"""The one contract every detector keeps (after online-ml/river's ``AnomalyDetector``): learn
from events, score one, score a batch, and save its state as plain JSON data (never pickle).

A detector's ``score`` may advance its view of the stream (the rate detector counts the
event in its current minute) but never learns from it: only ``learn`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event

__all__ = ["Detector", "Scored"]


@runtime_checkable
class Detector(Protocol):
    name: str

    def learn(self, events: Sequence[Event]) -> None: ...

    def score(self, event: Event) -> Scored: ...

    def score_batch(self, events: Sequence[Event]) -> list[Scored]: ...

    def to_state(self) -> dict[str, Any]: ...
