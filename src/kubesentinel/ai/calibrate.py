"""Raw evidence (bits) to a score in [0, 1] whose threshold means a stated false-alarm rate.

Training scores its own events prequentially (each scored by the model before it learns it,
after a warm-up; see ``Analyzer.fit``), and the share q(s) of those training scores at or
above a raw value s is kept. The score is

    score(s) = min(1, log10(1 / q(s)) / DECADES)        DECADES = 16/3

so a threshold t flags the share ``stated_rate(t) = 10 ** (-t * DECADES)`` of training events:
0.5 -> 2.2 in 1,000; 0.75 (the default ai.threshold) -> 1 in 10,000; 0.9 -> 1.6 in 100,000.
Between kept points q is interpolated in log space; above the largest training score it falls
off exponentially with the mean excess of the top 1% (at least 10) of training scores over
their smallest (a peaks-over-threshold fit, at least 1 bit per e-fold). With fewer than
``MIN_SAMPLES`` training scores q(s) = 2 ** -s, the raw bits read as a probability.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DECADES", "Calibration", "stated_rate"]

DECADES: Final = 16 / 3
MIN_SAMPLES: Final = 200
MAX_POINTS: Final = 256
_LOG10_2: Final = math.log10(2)
_LOG10_E: Final = math.log10(math.e)


def stated_rate(threshold: float) -> float:
    """The share of training events scored at or above ``threshold``, by construction."""
    return float(10 ** (-threshold * DECADES))


@dataclass(frozen=True, slots=True)
class Calibration:
    raws: tuple[float, ...]  # increasing raw values...
    log_q: tuple[float, ...]  # ...and log10 of the share of training scores at or above each
    tail_bits: float  # bits per e-fold of q above the last point
    samples: int

    @classmethod
    def fit(cls, scores: Sequence[float]) -> Calibration:
        n = len(scores)
        if n < MIN_SAMPLES:
            return cls((0.0,), (0.0,), 1 / math.log(2), n)
        ordered = sorted(scores)
        raws: list[float] = []
        log_q: list[float] = []
        i = 0
        while i < n:  # distinct values with the share at or above each
            value = ordered[i]
            raws.append(value)
            log_q.append(math.log10((n - i) / n))
            i = bisect_right(ordered, value, i)
        raws, log_q = _thin(raws, log_q)
        top = ordered[-max(10, n // 100) :]
        excess = sum(x - top[0] for x in top) / len(top)
        return cls(tuple(raws), tuple(log_q), max(excess, 1.0), n)

    def score(self, raw: float) -> float:
        return min(1.0, max(0.0, -self.log10_share(raw) / DECADES))

    def log10_share(self, raw: float) -> float:
        """log10 q(raw): the share of training scores at or above ``raw``."""
        raws = self.raws
        if raw <= raws[0]:
            return self.log_q[0] if raw == raws[0] else 0.0
        if raw >= raws[-1]:
            return self.log_q[-1] - (raw - raws[-1]) / self.tail_bits * _LOG10_E
        i = bisect_right(raws, raw)
        x0, x1 = raws[i - 1], raws[i]
        y0, y1 = self.log_q[i - 1], self.log_q[i]
        # Between two kept points the true share is the upper point's; interpolating in log
        # space keeps the score continuous and errs low (fewer alarms), never high.
        return y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def to_state(self) -> dict[str, Any]:
        return {
            "raws": list(self.raws),
            "log_q": list(self.log_q),
            "tail_bits": self.tail_bits,
            "samples": self.samples,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Calibration:
        raws = tuple(float(x) for x in state["raws"])
        log_q = tuple(float(x) for x in state["log_q"])
        if not raws or len(raws) != len(log_q) or list(raws) != sorted(raws):
            raise ValueError("calibration points are empty, unequal or out of order")
        return cls(raws, log_q, float(state["tail_bits"]), int(state["samples"]))


def _thin(raws: list[float], log_q: list[float]) -> tuple[list[float], list[float]]:
    """At most MAX_POINTS points, evenly spaced in log q, always keeping the first and last."""
    if len(raws) <= MAX_POINTS:
        return raws, log_q
    lowest = log_q[-1]
    keep: list[int] = [0]
    for j in range(1, MAX_POINTS - 1):
        target = lowest * j / (MAX_POINTS - 1)
        # the first point at or below the target share
        i = next((k for k in range(keep[-1] + 1, len(raws)) if log_q[k] <= target), None)
        if i is None:
            break
        if i != keep[-1]:
            keep.append(i)
    if keep[-1] != len(raws) - 1:
        keep.append(len(raws) - 1)
    return [raws[i] for i in keep], [log_q[i] for i in keep]
