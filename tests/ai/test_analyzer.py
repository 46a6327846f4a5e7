"""The analyzer: calibration, continued learning, the poisoning guard, weak signals."""

from __future__ import annotations

import random

import pytest

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.calibrate import Calibration, stated_rate
from tests.ai.helpers import normal_period
from tests.ai.synthetic import API, later, miner, neighbour_habit, training


def _fit(threshold: float = 0.75) -> Analyzer:
    analyzer, _ = Analyzer.fit(training(), threshold=threshold)
    return analyzer


@pytest.mark.parametrize("threshold", [0.25, 0.4, 0.5, 0.6])
def test_calibration_threshold_means_the_stated_rate(threshold: float) -> None:
    rng = random.Random(3)  # noqa: S311  test data, not cryptography
    # training scores shaped like the analyzer's: mostly 0 bits, a long tail of rarities
    scores = [0.0 if rng.random() < 0.9 else rng.expovariate(0.15) for _ in range(200_000)]
    calibration = Calibration.fit(scores)
    flagged = sum(calibration.score(s) >= threshold for s in scores) / len(scores)
    assert flagged == pytest.approx(stated_rate(threshold), rel=0.3)


def test_calibration_is_monotone_and_bounded_beyond_the_training_scores() -> None:
    calibration = Calibration.fit([float(i % 50) for i in range(10_000)])
    grid = [x / 4 for x in range(0, 400)]
    scores = [calibration.score(x) for x in grid]
    assert scores == sorted(scores)
    assert scores[0] == 0.0
    assert scores[-1] == 1.0


def test_stated_rate_at_the_default_threshold() -> None:
    assert stated_rate(0.75) == pytest.approx(1e-4)


def test_fit_reports_the_training_window() -> None:
    events = training()
    _, report = Analyzer.fit(events, warmup=0.25)
    assert report.events == len(events) == 3600
    assert report.warmup_events + report.calibration_events == report.events
    assert 850 <= report.warmup_events <= 950
    assert report.workloads == 2


def test_held_out_normal_stream_stays_near_the_stated_rate() -> None:
    train, held_out = normal_period(seed=1), normal_period(seed=2)
    analyzer, _ = Analyzer.fit(train, threshold=0.5)
    flagged = sum(s.score >= 0.5 for s in analyzer.score_batch(held_out))
    # another seed: other pods, IPs, container ids and timings of the same cluster
    assert flagged / len(held_out) <= 3 * stated_rate(0.5)


def test_attack_is_anomalous_and_never_learned() -> None:
    analyzer = _fit()
    scores = [analyzer.score(miner(i)) for i in range(20)]
    assert all(s.score >= 0.75 for s in scores)
    assert scores[-1].reasons[0].startswith("process xmrig never seen in")


def test_benign_change_stops_looking_new() -> None:
    analyzer = _fit()
    first, second, third, fourth = (analyzer.score(neighbour_habit(i)) for i in range(4))
    assert 0.0 < first.score < 0.75  # new for api, but its namespace does it
    assert any("elsewhere in the cluster" in r for r in first.reasons)
    assert first.score > second.score > third.score
    assert fourth.score < 0.1  # ordinary: only its count (3) ranks it above older habits
    assert fourth.reasons == ()


def test_nothing_is_learned_while_the_workload_is_held() -> None:
    analyzer = _fit()
    start = later(0, API, {}).time_ns
    analyzer.hold("sim/shop/Deployment/api", start, start + 3000 * 10**9)
    # one behaviour repeated: weak signals count it once, so each is scored on its own
    held = [analyzer.score(neighbour_habit(400 * i)) for i in range(5)]
    assert held[-1].score == pytest.approx(held[0].score)
    assert held[0].score > 0
    after = [analyzer.score(neighbour_habit(3100 + 400 * i)) for i in range(4)]
    assert after[-1].score < 0.1  # learned once released: ordinary


def test_no_learning_when_turned_off() -> None:
    analyzer = _fit()
    analyzer.learning = False
    scores = [analyzer.score(neighbour_habit(400 * i)) for i in range(5)]
    assert scores[-1].score == pytest.approx(scores[0].score)
    assert scores[0].score > 0


def test_weak_signals_raise_each_other() -> None:
    alone, together = _fit(), _fit()
    mild_a = {"proc.name": "python", "proc.pname": "containerd-shim", "user.name": "app"}
    mild_b = {"proc.name": "python", "proc.exepath": "/usr/bin/python3", "user.name": "app",
              "proc.pname": "containerd-shim"}  # fmt: skip
    together.score(later(0, API, mild_a))
    raised = together.score(later(10, API, mild_b))
    plain = alone.score(later(10, API, mild_b))
    assert raised.score > plain.score
    assert raised.reasons[-1] == "1 other unusual behaviour from this workload in the last 10 s"


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Analyzer(threshold=1.5)


def test_deferred_learning_waits_for_holds_placed_after_scoring() -> None:
    analyzer = _fit()
    habit = neighbour_habit(0)
    first = analyzer.score_batch([habit], defer=True)[0]
    # Scored, not yet learned: the caller may still hold it (an incident it is part of).
    analyzer.hold("sim/shop/Deployment/api", habit.time_ns - 1, habit.time_ns + 1)
    analyzer.learn_deferred()
    again = analyzer.score_batch([neighbour_habit(400)], defer=True)[0]
    assert again.score == pytest.approx(first.score)
    analyzer.learn_deferred()  # not held: learned now
    assert analyzer.score(neighbour_habit(800)).score < again.score


def test_deferred_events_are_learned_by_the_next_batch_when_nobody_asks() -> None:
    analyzer = _fit()
    first = analyzer.score_batch([neighbour_habit(0)], defer=True)[0]
    second = analyzer.score_batch([neighbour_habit(400)])[0]
    assert second.score < first.score


def test_holds_of_one_incident_widen_one_span() -> None:
    analyzer = _fit()
    start = later(0, API, {}).time_ns
    for n in range(200):  # a growing incident, held again with every batch: up to 1990 s
        analyzer.hold("sim/shop/Deployment/api", start, start + n * 10 * 10**9)
    # one behaviour repeated: weak signals count it once, so each is scored on its own
    held = [analyzer.score(neighbour_habit(s)) for s in (0, 400, 800, 1600)]
    assert held[0].score > 0
    assert held[-1].score == pytest.approx(held[0].score)
    assert analyzer.score(neighbour_habit(2400)).score == pytest.approx(held[0].score)
    assert analyzer.score(neighbour_habit(2800)).score < held[0].score  # learned at 2400


def test_a_workload_keeps_its_newest_holds() -> None:
    analyzer = _fit()
    start = later(0, API, {}).time_ns
    step = 400 * 10**9  # beyond the weak-signal horizon: each event scored on its own
    for n in range(100):  # disjoint spans, oldest first: the oldest are dropped
        analyzer.hold("sim/shop/Deployment/api", start + n * step, start + n * step + 10**9)
    held = [analyzer.score(neighbour_habit(n * 400)) for n in (97, 98, 99)]
    assert held[0].score > 0
    assert held[-1].score == pytest.approx(held[0].score)


def test_a_hold_bridging_two_spans_holds_the_gap_between_them() -> None:
    analyzer = _fit()
    start = later(0, API, {}).time_ns
    key, s = "sim/shop/Deployment/api", 10**9
    analyzer.hold(key, start + 1000 * s, start + 1100 * s)
    analyzer.hold(key, start, start + 100 * s)
    analyzer.hold(key, start + 50 * s, start + 1050 * s)  # joins both
    held = [analyzer.score(neighbour_habit(t)) for t in (0, 500, 1000)]
    assert held[0].score > 0
    assert held[-1].score == pytest.approx(held[0].score)
