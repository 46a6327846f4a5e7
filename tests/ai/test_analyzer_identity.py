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
    "fitted": "cb03463211074b749e4966eecb5b091569872781b3b2b7626bf6a3846673fec7",
    "monitor": "761f7173830d273d7bfddd4e66cd99c0d3eaf9410ca5f13d3f39235b3a2d3b5f",
    "learned": "1d79b10507be211e722948db7c1c257db0ea3fa4893a89d259413b2c90bab81d",
    "frozen": "514f1c35e3d3f4a2609455d9527d47866da09ede502ce5de6b48e3cdf856ab2d",
    "guarded": "e0a4507635145a9299d720e05872af325a4bd1a2cc82ee01287f2a03bbeaf57e",
    "final": "d80f30c935a812f7d1dee4bd81a4ebe80ff81efa51045b48ade3a052ccc43b7c",
}
