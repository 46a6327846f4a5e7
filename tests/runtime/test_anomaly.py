"""Anomalies in correlation (runtime/correlate.py) and the pipeline's scoring stage
(runtime/anomaly.py): what qualifies, what an incident keeps and how it weighs it, and a
scorer that fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from kubesentinel.models import Event, Priority
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.incident import Anomaly
from kubesentinel.runtime.anomaly import AnomalyStage
from kubesentinel.runtime.correlate import ANOMALY_SAMPLE, Correlator
from kubesentinel.runtime.store.decode import incident_from
from kubesentinel.runtime.store.rows import incident_row
from tests.runtime.test_correlate import T0, event

S = 1_000_000_000
SPAWN = "KubeSentinel Process Spawned"


def telemetry(event_id: str, at_s: float, cmdline: str | None = None) -> Event:
    return event(event_id, at_s, rule=SPAWN, priority=Priority.INFORMATIONAL,
                 tags=("telemetry",), cmdline=cmdline)  # fmt: skip


def scored(score: float, reason: str = "process xmrig never seen in prod/Deployment/web") -> Scored:
    return Scored(score, (reason, "a second reason"), 20.0)


def test_normal_telemetry_stays_context_and_opens_nothing() -> None:
    correlator = Correlator()
    assert correlator.add([telemetry(f"t{n}", n) for n in range(50)], T0) == []


def test_an_anomalous_telemetry_event_alone_opens_an_incident_naming_it() -> None:
    correlator = Correlator()
    (incident,) = correlator.add(
        [telemetry("t1", 0), telemetry("t2", 1), telemetry("t3", 2)], T0, {"t2": scored(0.93)}
    )
    assert list(incident.event_ids) == ["t2"]
    assert incident.first_ns == T0 + S
    assert incident.context.telemetry == 1  # t3, after it opened; t1 came before
    assert incident.anomalies == (
        Anomaly("t2", 0.93, "process xmrig never seen in prod/Deployment/web"),
    )
    reasons = {r.reason: r.points for r in incident.reasons}
    assert reasons == {
        "highest Falco priority Informational": 8.0,
        "anomaly 0.93: process xmrig never seen in prod/Deployment/web": 37.2,
    }
    assert incident.risk_score == 45.2
    assert incident.severity.label == "medium"


def test_an_anomaly_extends_an_incident_and_more_reasons_add_up_to_a_cap() -> None:
    correlator = Correlator()
    anomalies = {f"a{n}": scored(0.8 + n / 100, f"reason {n % 5}") for n in range(12)}
    signals = [event("s1", 0)]
    later = [telemetry(f"a{n}", 100 + n * 200, cmdline=f"x{n}") for n in range(12)]
    incident = correlator.add([*signals, *later], T0, anomalies)[-1]
    assert incident.last_ns == T0 + (100 + 11 * 200) * S  # each within the gap of the last
    assert incident.anomaly_count == 12
    anomaly_reasons = [r for r in incident.reasons if r.reason.startswith("anomaly ")]
    # the highest (a11, reason 1) weighted by its score, then three other reasons at +4
    assert [(r.points, r.reason) for r in anomaly_reasons] == [
        (36.4, "anomaly 0.91: reason 1"),
        (4.0, "anomaly 0.90: reason 0"),
        (4.0, "anomaly 0.89: reason 4"),
        (4.0, "anomaly 0.88: reason 3"),
    ]


def test_an_anomalous_falco_signal_is_kept_with_its_score() -> None:
    correlator = Correlator()
    (incident,) = correlator.add([event("s1", 0)], T0, {"s1": scored(1.0)})
    assert incident.anomalies[0].event_id == "s1"
    assert incident.reasons[-1].points == 40.0


def test_anomalous_repeats_are_counted_but_the_sample_is_bounded() -> None:
    correlator = Correlator()
    events = [telemetry(f"r{n}", n * 0.01, cmdline="same") for n in range(ANOMALY_SAMPLE + 50)]
    incident = correlator.add(events, T0, {e.id: scored(0.9) for e in events})[-1]
    assert incident.event_count == 1
    assert incident.context.repeat == ANOMALY_SAMPLE + 49
    assert incident.anomaly_count == ANOMALY_SAMPLE + 50
    assert len(incident.anomalies) == ANOMALY_SAMPLE


def test_anomalies_survive_the_store_row_and_rows_without_them_are_unchanged() -> None:
    correlator = Correlator()
    (incident,) = correlator.add([telemetry("t1", 0)], T0, {"t1": scored(0.875)})
    row = incident_row(incident)
    back = incident_from(row, incident.event_ids)  # type: ignore[arg-type]
    assert (back.anomalies, back.anomaly_count) == (incident.anomalies, 1)
    (plain,) = Correlator().add([event("s1", 0)], T0)
    assert "anomal" not in incident_row(plain)[19]


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        self.calls += 1
        raise ConnectionError("analyzer service unreachable")

    def close(self) -> None:
        pass


def test_a_failing_scorer_leaves_batches_unscored_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scorer = _Failing()
    stage = AnomalyStage(scorer, 0.75, 300 * S)
    with caplog.at_level(logging.ERROR, logger="kubesentinel.monitor"):
        for n in range(3):
            assert stage.score([telemetry(f"t{n}", n)]) == {}
    assert scorer.calls == 3
    assert (stage.scored, stage.failed) == (0, 3)
    assert [r.getMessage() for r in caplog.records] == [
        "anomaly scoring failed, events go unscored: analyzer service unreachable"
    ]


class _Fixed:
    """Scores by event id; no learning, so no holds."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        return [Scored(self.scores.get(e.id, 0.1)) for e in events]

    def close(self) -> None:
        pass


def test_the_stage_passes_on_only_what_reaches_the_threshold() -> None:
    stage = AnomalyStage(_Fixed({"a": 0.75, "b": 0.7499}), 0.75, 300 * S)
    found = stage.score([telemetry("a", 0), telemetry("b", 1), telemetry("c", 2)])
    assert list(found) == ["a"]
    assert (stage.scored, stage.anomalies) == (3, 1)
    stage.settle([])  # a scorer without holds: nothing to do, no error
