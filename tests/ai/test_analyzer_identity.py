"""The analyzer's scores and learned state are pinned on a simulated stream: a change meant to
make scoring cheaper must leave every score, reason and bit, and the learned model, as they were.

The stream is replayed the monitor's way (2,048-event batches scored with learning deferred,
holds placed, then ``learn_deferred``), and also scored without learning and learned guarded
without deferral, so that every mode of ``Analyzer._run`` is covered. The digests were taken
before the analyzer's hot path was reworked for speed, and retaken when novelty of the cloud
metadata peer was made to weigh double (a scoring change, not a speed change).
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
    "fitted": "c62f1bf7a213e440caf4cea2a9b40971eb4a7f1afc404d44a310eab067b8258f",
    "monitor": "a3be41e940ad316e094201c7b6a1b3aa28c3b407f4a495cd2cd7caa00ff00add",
    "learned": "c08863a5a73001ae91f13353d789c366d11301abd03bc076b249e67ae0176acd",
    "frozen": "88500e65419681d91be15f555d641fe2a8ef570a85bc069111ab30f4490d45ff",
    "guarded": "42b7bbb520918c570b40e95951609c748c5c078c47e23235d827d93c00bf2aef",
    "final": "9f68184f6d7334a5b61e2c6014030faa0e792d020a5f8948f4a6daddbdc34ff4",
}
