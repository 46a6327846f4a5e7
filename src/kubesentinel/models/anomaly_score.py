"""A detector's verdict on one event: a score in [0, 1] and the evidence, for analysts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scored:
    """``score`` is in [0, 1]. The analyzer's is calibrated (see docs/ai.md): a threshold t
    marks the stated share of training events as anomalous. A single detector's is not.

    ``reasons`` name the evidence, most telling first; untrusted text in them (process names,
    paths, users) is escaped. ``bits`` is the raw evidence (surprise, in bits) behind the score.
    """

    score: float
    reasons: tuple[str, ...] = ()
    bits: float = 0.0
