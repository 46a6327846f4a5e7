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

Per workload. One cluster-wide q would let the noisiest workloads set everyone's bar: a CI
runner that execs a new program every few minutes fills the top of the training scores, and a
database that has never done anything new would need as much evidence as a CI job to alarm. So
q is estimated per workload, shrunk towards its namespace's and the cluster's:

    q_w(s) = (c_w(s) + W * q(s)) / (n_w + W)        W = max(PRIOR_EVENTS, PRIOR_SHARE * n_w)

with n the level's training scores and c(s) how many of them were at or above s (the largest
``TOP_K`` of each level are kept: above the threshold only a few ever are). A workload without
training scores uses its namespace's instead, a namespace without any the cluster's. And
q_w(s) is never below min(q(s), 2 ** -s), the raw bits read as a probability: a quiet workload
gains sensitivity for strong evidence, never for a bit or two (a busy minute). The cluster
keeps a fiftieth of the weight, so a workload that never did anything unusual in training is
at most 51 times (about 0.32 of a score) more sensitive than the cluster, never infinitely. A
threshold still flags about the stated share of each workload's training events (at most
``stated_rate(t) * (n_w + W_w)`` of them), so of the training data as a whole.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["DECADES", "Calibration", "stated_rate"]

DECADES: Final = 16 / 3
MIN_SAMPLES: Final = 200
MAX_POINTS: Final = 256
TOP_K: Final = 64  # training scores kept per workload and namespace, the largest
PRIOR_EVENTS: Final = 200  # least weight of the level above in a level's share (in events)
PRIOR_SHARE: Final = 0.02  # ... and its weight relative to the level's own training scores
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
    # workload key (and namespace "cluster/namespace") -> (training scores, their largest
    # TOP_K above 0, in decreasing order)
    workloads: Mapping[str, tuple[int, tuple[float, ...]]] = field(default_factory=dict)
    namespaces: Mapping[str, tuple[int, tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def fit(cls, scores: Sequence[float], workloads: Sequence[str] = ()) -> Calibration:
        """Fit on training scores; ``workloads`` (parallel to ``scores``, optional) names the
        workload of each, for the per-workload shares."""
        n = len(scores)
        tails = _tails(scores, workloads)
        if n < MIN_SAMPLES:
            return cls((0.0,), (0.0,), 1 / math.log(2), n, *tails)
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
        return cls(tuple(raws), tuple(log_q), max(excess, 1.0), n, *tails)

    def score(self, raw: float, workload: str = "") -> float:
        """The score of ``raw`` evidence, judged against ``workload``'s own training scores
        (shrunk towards its namespace's and the cluster's) when it had any."""
        if raw <= 0.0:
            return 0.0
        log_q = self.log10_share(raw)
        # A workload is never judged more surprised than its evidence says (raw bits read as a
        # probability): a quiet workload gains sensitivity for strong evidence, not for a bit.
        floor = min(log_q, -raw * _LOG10_2)
        if workload and self.namespaces:
            level = self.workloads.get(workload) or self.namespaces.get(workload.rsplit("/", 2)[0])
            if level is not None:
                q = _shrunk(level, raw, 10.0**log_q)
                log_q = max(math.log10(q) if q > 0.0 else floor, floor)
        return min(1.0, max(0.0, -log_q / DECADES))

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
            "workloads": {k: [n, list(top)] for k, (n, top) in self.workloads.items()},
            "namespaces": {k: [n, list(top)] for k, (n, top) in self.namespaces.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Calibration:
        raws = tuple(float(x) for x in state["raws"])
        log_q = tuple(float(x) for x in state["log_q"])
        if not raws or len(raws) != len(log_q) or list(raws) != sorted(raws):
            raise ValueError("calibration points are empty, unequal or out of order")
        levels = [
            {str(k): (int(v[0]), tuple(float(x) for x in v[1])) for k, v in state[name].items()}
            for name in ("workloads", "namespaces")
        ]
        for level in levels:
            for n, top in level.values():
                if n < len(top) or list(top) != sorted(top, reverse=True):
                    raise ValueError("a workload's calibration scores are out of order")
        return cls(
            raws, log_q, float(state["tail_bits"]), int(state["samples"]), levels[0], levels[1]
        )


def _tails(
    scores: Sequence[float], workloads: Sequence[str]
) -> tuple[dict[str, tuple[int, tuple[float, ...]]], dict[str, tuple[int, tuple[float, ...]]]]:
    """Per workload and per namespace: (training scores, their largest TOP_K above 0)."""
    if not workloads:
        return {}, {}
    by_workload: dict[str, list[float]] = {}
    by_namespace: dict[str, list[float]] = {}
    for workload, raw in zip(workloads, scores, strict=True):
        by_workload.setdefault(workload, []).append(raw)
        by_namespace.setdefault(workload.rsplit("/", 2)[0], []).append(raw)
    return _top(by_workload), _top(by_namespace)


def _top(by: dict[str, list[float]]) -> dict[str, tuple[int, tuple[float, ...]]]:
    return {
        key: (len(values), tuple(sorted((v for v in values if v > 0.0), reverse=True)[:TOP_K]))
        for key, values in by.items()
    }


def _shrunk(level: tuple[int, tuple[float, ...]], raw: float, q_above: float) -> float:
    """A level's share of training scores at or above ``raw``, shrunk towards ``q_above``."""
    n, top = level
    c = 0
    for x in top:  # decreasing: count those at or above raw
        if x < raw:
            break
        c += 1
    prior = max(PRIOR_EVENTS, PRIOR_SHARE * n)
    return (c + prior * q_above) / (n + prior)


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
