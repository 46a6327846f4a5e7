"""A workload's own analyzer state moves to another analyzer (scale-out hand-over): what one
analyzer learned about a workload, another continues from."""

from __future__ import annotations

import orjson

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.workload_state import (
    export_workload,
    forget_workload,
    import_workload,
    known_workloads,
)
from tests.ai.helpers import normal_period


def test_a_workload_learned_by_one_analyzer_continues_in_another() -> None:
    events = normal_period(hours=3.0)
    cut = len(events) * 2 // 3
    base = Analyzer.fit(events[:cut])[0].to_state()
    later = events[cut:]
    workload = max({e.workload.key for e in later}, key=[e.workload.key for e in later].count)
    own = [e for e in later if e.workload.key == workload]
    assert len(own) > 50

    first = Analyzer.from_state(base)
    before = export_workload(first, workload)
    first.score_batch(own)  # scored, and learned where below the threshold
    exported = orjson.loads(orjson.dumps(export_workload(first, workload)))  # as stored
    assert exported != before  # it learned: counts, its open minute, weak signals
    assert exported["rarity"]["events"] > before["rarity"]["events"]

    second = Analyzer.from_state(base)
    import_workload(second, workload, exported)
    assert export_workload(second, workload) == exported
    # The same next events score the same in both, as far as the workload's own level
    # decides: the shared levels (namespace, cluster) differ by what the first learned.
    probe = own[-20:]
    ours = [s.score for s in second.score_batch(probe)]
    theirs = [s.score for s in first.score_batch(probe)]
    assert sum(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 0.05 * len(probe)

    forget_workload(second, [workload])
    assert workload not in known_workloads(second)
    empty = export_workload(second, workload)
    assert set(empty) == {"rarity", "rate_stats", "rate_live", "recent", "versions", "pods"}
    assert all(value is None for value in empty.values())
