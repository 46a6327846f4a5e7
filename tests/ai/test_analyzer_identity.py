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
    "fitted": "e7e6821347deaa86167d7f21fb0c2a4a512f0358e4bf72e6dafbeeb411032926",
    "monitor": "24103244b881a2fff2a25e8dbce7a1bb060688b919700b227a9ea89bf93f9a14",
    "learned": "ebc50071f630f36c8c68973588fb1c7e078d0fac23af3b0d03105806cab36986",
    "frozen": "cb28cea7bbe5edd445849b032ffbdeb238ac8507e55fc05afabb6e3489e06314",
    "guarded": "b70543c33e44b4178052f3412ccad27c57ec95950785946e34b91f8bb9f7fc08",
    "final": "42fcdbf4f61f3e37aab36343a77e41a690cf738ea5abc2c4b51740f1fafd1490",
}
