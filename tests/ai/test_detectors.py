"""One conformance suite over every detector, then each detector's own behaviour."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.contract import Detector
from kubesentinel.ai.features import Featurizer
from kubesentinel.ai.rarity import RarityDetector
from kubesentinel.ai.rate import RateDetector, chernoff_bits
from kubesentinel.models.event import Event
from tests.ai.helpers import NS, alert, events_of
from tests.ai.synthetic import API, NGINX, T0, later, miner, neighbour_habit, training

Factory = Callable[[], Any]
Restore = Callable[[dict[str, Any]], Any]

DETECTORS: dict[str, tuple[Factory, Restore]] = {
    "rarity": (RarityDetector, lambda s: RarityDetector.from_state(s, Featurizer())),
    "rate": (RateDetector, RateDetector.from_state),
    "analyzer": (Analyzer, Analyzer.from_state),
}


def _probe() -> list[Event]:
    odd = events_of([alert(T0 + 3700 * NS, "lonely", {})])  # a bare Pod, hardly any fields
    return [miner(1), neighbour_habit(2), *odd, later(3, API, NGINX), miner(4)]


@pytest.mark.parametrize("name", DETECTORS)
def test_contract(name: str) -> None:
    factory, _ = DETECTORS[name]
    detector = factory()
    assert isinstance(detector, Detector)


@pytest.mark.parametrize("name", DETECTORS)
def test_same_input_same_scores_single_or_batch(name: str) -> None:
    factory, _ = DETECTORS[name]
    train = training()
    one, two = factory(), factory()
    one.learn(train)
    two.learn(train)
    probe = _probe()
    batch = one.score_batch(probe)
    single = [two.score(e) for e in probe]
    # Known behaviour is counted a batch at a time, so a reason may quote a workload's event
    # count one lower in a batch; the scores agree.
    assert [s.score for s in batch] == pytest.approx([s.score for s in single])
    assert [len(s.reasons) for s in batch] == [len(s.reasons) for s in single]
    assert all(0.0 <= s.score <= 1.0 for s in batch)


@pytest.mark.parametrize("name", DETECTORS)
def test_state_round_trips_through_json(name: str) -> None:
    factory, restore = DETECTORS[name]
    detector = factory()
    detector.learn(training())
    state = json.loads(json.dumps(detector.to_state()))
    copy = restore(state)
    probe = _probe()
    assert copy.score_batch(probe) == detector.score_batch(probe)


@pytest.mark.parametrize("name", DETECTORS)
def test_untrained_detector_scores_anything(name: str) -> None:
    factory, _ = DETECTORS[name]
    scores = factory().score_batch(_probe())
    assert all(0.0 <= s.score <= 1.0 for s in scores)


def test_rarity_new_process_is_rare_and_explained() -> None:
    detector = RarityDetector()
    detector.learn(training())
    known = detector.score(later(1, API, NGINX | {"evt.type": "connect",
                           "fd.name": "10.244.1.7:1->10.96.0.10:53"}))  # fmt: skip
    new = detector.score(miner(2))
    assert known.bits < 0.1  # known: only its frequency ranks it among the ordinary
    assert known.reasons == ()
    assert new.bits > 20
    assert any(r.startswith("process xmrig never seen in 1800 events of shop/Deployment/api")
               and r.endswith("nor anywhere in the cluster") for r in new.reasons)  # fmt: skip
    assert any(r.startswith("executable /tmp/xmrig of xmrig never seen") for r in new.reasons)
    assert len(new.reasons) == 3  # the three most telling items


def test_rarity_backs_off_to_the_namespace_for_a_new_workload() -> None:
    detector = RarityDetector()
    detector.learn(training())
    newcomer = "cart-v2-5c6d7f8b9d-k4k4k"  # a new Deployment running cart's image
    same = detector.score(
        later(1, newcomer, {**training_fields()}, image="registry.example.com/shop/cart")
    )
    odd = detector.score(later(1, newcomer, {"proc.name": "xmrig", "proc.pname": "sh"},
                               image="registry.example.com/shop/cart"))  # fmt: skip
    assert same.bits < 0.5  # the image's habits are the new workload's
    assert same.reasons == ()
    assert odd.bits > 10
    assert any("a workload never seen before" in r for r in odd.reasons)


def training_fields() -> dict[str, object]:
    return {"proc.name": "python", "proc.pname": "containerd-shim",
            "proc.exepath": "/usr/bin/python3", "user.name": "app"}  # fmt: skip


def test_rarity_escapes_untrusted_names_in_reasons() -> None:
    detector = RarityDetector()
    detector.learn(training())
    scored = detector.score(later(1, API, {"proc.name": "x\x1b[2Jy\nz"}))
    assert scored.reasons
    assert all("\x1b" not in r and "\n" not in r for r in scored.reasons)
    assert any("x\\x1b[2Jy\\x0az" in r for r in scored.reasons)


def test_rate_burst_scores_and_steady_rate_does_not() -> None:
    detector = RateDetector()
    steady = [alert(T0 + m * 60 * NS + k * NS, API, NGINX) for m in range(30) for k in range(5)]
    detector.learn(events_of(steady))
    calm = [detector.score(e) for e in events_of(
        [alert(T0 + 40 * 60 * NS + k * NS, API, NGINX) for k in range(5)])]  # fmt: skip
    burst = [detector.score(e) for e in events_of(
        [alert(T0 + 50 * 60 * NS + k * NS // 2, API, NGINX) for k in range(60)])]  # fmt: skip
    assert all(s.bits == 0.0 for s in calm)
    assert burst[-1].bits > 50
    assert burst[-1].reasons == ("60 events in one minute; learned 5.0 a minute, at most 5",)
    assert [s.bits for s in burst] == sorted(s.bits for s in burst)


def test_chernoff_bound() -> None:
    assert chernoff_bits(3, 5) == 0.0
    assert chernoff_bits(20, 5) > chernoff_bits(10, 5) > 0
