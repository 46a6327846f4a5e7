"""The analyzer's scores and learned state are pinned on a simulated stream: a change meant to
make scoring cheaper must leave every score, reason and bit, and the learned model, as they were.

The stream is replayed the monitor's way (2,048-event batches scored with learning deferred,
holds placed, then ``learn_deferred``), and also scored without learning and learned guarded
without deferral, so that every mode of ``Analyzer._run`` is covered. The digests were taken
before the analyzer's hot path was reworked for speed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event
from kubesentinel.runtime.simulate import simulate
from tests.ai.helpers import events_of

BATCH = 2048
GAP_NS = 300_000_000_000  # runtime.incident_gap
HOLD_AT = 0.5  # events this unusual are held like an incident's, to mix held and learned


def _fold(digest: hashlib._Hash, scores: Sequence[Scored]) -> None:
    for s in scores:
        digest.update(f"{s.score.hex()} {s.bits.hex()} {s.reasons!r}\n".encode())


def _state(analyzer: Analyzer) -> str:
    text = json.dumps(analyzer.to_state(), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def stream(seed: int, events_per_s: float = 20.0) -> list[Event]:
    s = simulate(seed=seed, hours=1.0, events_per_s=events_per_s)
    return events_of(list(s.lines()), s.cluster)


def _replay(training: Sequence[Event], events: Sequence[Event]) -> dict[str, str]:
    analyzer, _ = Analyzer.fit(training)
    fitted = _state(analyzer)
    monitor = hashlib.sha256()
    for i in range(0, len(events), BATCH):
        batch = events[i : i + BATCH]
        scores = analyzer.score_batch(batch, defer=True)
        _fold(monitor, scores)
        for event, s in zip(batch, scores, strict=True):
            if s.score >= HOLD_AT:
                analyzer.hold(event.workload.key, event.time_ns - GAP_NS, event.time_ns + GAP_NS)
        analyzer.learn_deferred()
    learned = _state(analyzer)
    analyzer.learning = False
    frozen = hashlib.sha256()
    _fold(frozen, analyzer.score_batch(events[:20_000]))
    analyzer.learning = True
    guarded = hashlib.sha256()
    _fold(guarded, analyzer.score_batch(events[-20_000:]))
    return {
        "fitted": fitted,
        "monitor": monitor.hexdigest(),
        "learned": learned,
        "frozen": frozen.hexdigest(),
        "guarded": guarded.hexdigest(),
        "final": _state(analyzer),
    }


def test_scores_and_learned_state_are_unchanged() -> None:
    assert _replay(stream(2), stream(1)) == GOLDEN


GOLDEN: dict[str, str] = {
    "fitted": "08982badf02afff247eaffed232525bcf5cdded6e2d58ade15cc58a84345295d",
    "monitor": "97053ceda35738aff2acc020c252db223063cd63d1f9971942af52c564a6e74b",
    "learned": "8e483b6e45dfd3c08f6f3fe2a5747af5ab2181ba38b52b50f9fdc01ae1873106",
    "frozen": "d248f673cfb4e2652fa860b463a50e0ad9ea6f9d0b44b12fbb80af1bbf6d7f34",
    "guarded": "b70543c33e44b4178052f3412ccad27c57ec95950785946e34b91f8bb9f7fc08",
    "final": "54c72bcebb0d79872dd85d48ab23361f605afbbdc8df56f81bacca9f26249e73",
}
