"""A rate/burst model per workload: events per minute against the workload's learned rate.

For each workload it learns, over the minutes in which it raised events (quiet minutes are not
counted), the mean count per minute and the largest count seen. A minute's k-th event carries
``chernoff(k) - chernoff(max seen)`` bits when k is above the largest count, where
``chernoff(k) = (k ln(k/m) - k + m) / ln 2`` bounds ``-log2 P(X >= k)`` for a Poisson count of
mean m. A workload with no learned minutes borrows the cluster's (mean of the workloads'
means, largest of their maxima). Evidence is scaled by min(1, learned minutes / 10) so a
barely known workload cannot alarm on rate alone.

A minute is learned when it closes (the workload's next event falls in a later minute) and
only if every event in it was learnable (see the analyzer's poisoning guard).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event

__all__ = ["RateDetector", "chernoff_bits"]

MINUTE_NS: Final = 60_000_000_000
MIN_MEAN: Final = 0.5
CONFIDENT_MINUTES: Final = 10
MAX_WORKLOADS: Final = 50_000
_LN2: Final = math.log(2)


def chernoff_bits(k: float, mean: float) -> float:
    """-log2 of the Chernoff bound on P(X >= k) for X ~ Poisson(mean); 0 when k <= mean."""
    if k <= mean:
        return 0.0
    return (k * math.log(k / mean) - k + mean) / _LN2


class RateDetector:
    name = "rate"

    def __init__(self) -> None:
        # workload -> [minutes, sum of counts, largest count]
        self.stats: dict[str, list[int]] = {}
        # workload -> [minute index, count so far, every event learnable]
        self.live: dict[str, list[int]] = {}
        self._prior: tuple[float, float] | None = None  # cluster (mean, max), recomputed lazily

    # -- the contract -------------------------------------------------------------------
    def learn(self, events: Sequence[Event]) -> None:
        for event in events:
            self.observe(event.workload.key, event.time_ns)

    def score(self, event: Event) -> Scored:
        bits, reason = self.observe(event.workload.key, event.time_ns)
        return Scored(1.0 - 2.0 ** (-bits / 4), (reason,) if reason else (), bits)

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        return [self.score(event) for event in events]

    # -- the hot path -------------------------------------------------------------------
    def observe(self, workload: str, time_ns: int) -> tuple[float, str]:
        """Count one event in its workload's current minute: (bits, reason or "")."""
        minute = time_ns // MINUTE_NS
        live = self.live.get(workload)
        if live is None or minute != live[0]:
            # A later minute closes the current one; an earlier one (events out of order, a
            # replay) only starts over, learning nothing.
            if live is not None and live[2] and minute > live[0]:
                self._fold(workload, live[1])
            elif live is None and len(self.live) >= MAX_WORKLOADS:
                self.live.clear()  # a flood of workloads: start the minutes over
            live = self.live[workload] = [minute, 0, 1]
        live[1] += 1
        k = live[1]
        stats = self.stats.get(workload)
        if stats is not None and k <= stats[2]:
            return 0.0, ""
        if stats is None:
            mean, largest = self.prior()
            confidence = 1.0 if self.stats else 0.0
        else:
            mean, largest = stats[1] / stats[0], float(stats[2])
            confidence = min(1.0, stats[0] / CONFIDENT_MINUTES)
        mean = max(mean, MIN_MEAN)
        bits = (chernoff_bits(k, mean) - chernoff_bits(largest, mean)) * confidence
        if bits < 1.0:
            return max(bits, 0.0), ""
        return bits, (
            f"{k} events in one minute; learned {mean:.1f} a minute, at most {largest:.0f}"
        )

    def taint(self, workload: str) -> None:
        """The workload's current minute holds an event that must not be learned."""
        live = self.live.get(workload)
        if live is not None:
            live[2] = 0

    def prior(self) -> tuple[float, float]:
        if self._prior is None:
            if not self.stats:
                self._prior = (MIN_MEAN, 0.0)
            else:
                means = [s[1] / s[0] for s in self.stats.values()]
                self._prior = (
                    sum(means) / len(means),
                    float(max(s[2] for s in self.stats.values())),
                )
        return self._prior

    def _fold(self, workload: str, count: int) -> None:
        stats = self.stats.get(workload)
        if stats is None:
            if len(self.stats) >= MAX_WORKLOADS:
                return
            stats = self.stats[workload] = [0, 0, 0]
        stats[0] += 1
        stats[1] += count
        stats[2] = max(stats[2], count)
        self._prior = None

    def flush(self) -> None:
        """Learn every clean open minute now (the end of a training window)."""
        for workload, live in self.live.items():
            if live[2]:
                self._fold(workload, live[1])
        self.live.clear()

    # -- state --------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"stats": self.stats, "live": self.live}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RateDetector:
        detector = cls()
        detector.stats = {str(k): [int(x) for x in v] for k, v in state["stats"].items()}
        detector.live = {str(k): [int(x) for x in v] for k, v in state["live"].items()}
        return detector
