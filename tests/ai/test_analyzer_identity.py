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
    "fitted": "84a26b5d9afa931c498021ac6bff72ba2e96b077230a34915186d325c56be4da",
    "monitor": "9cd5788ba0e5fe353a2b777a336a5a16a1d968e30c8cba95ff1aaaf32f9c423f",
    "learned": "bdafa3d542b3b4ab8a395b55dc814d12bd94d2e70725e7daaa7993f4983b20a0",
    "frozen": "d2970712f88f48f1c57e9a30cc0b67f186fc8c7863927f1c440217e2f3e11ee5",
    "guarded": "2548f4c933db23441ea4da4debdc3e7782dcad2a4a67364fdd59b9d842ce260c",
    "final": "89fed37849c95edb3ae877ef960499ca20a89f11d4fe318a7717bc3bbe5dbc70",
}
