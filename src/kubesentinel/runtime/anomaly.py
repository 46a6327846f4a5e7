"""The pipeline's scoring stage: a batch's events through the scorer, after enrichment and
before correlation; what scores at or above ``ai.threshold`` goes to the correlator.

    anomalies = stage.score(events)          event id -> Scored, the anomalous ones only
    incidents = correlator.add(events, now, anomalies)
    stage.settle(incidents)                  hold them, then learn the rest of the batch

Holding is the monitor's half of the poisoning guard: an incident's span, widened by the gap on
both sides (its context window), is held for its workload, and a scorer that learns
(``ai.scorer.Holds``) learns a batch only after its incidents are held. So no event inside an
incident is learned, those of the batch that opened it included; an ordinary event learned in
an earlier batch, before anything anomalous happened, stays learned (nothing could tell then).
The anomalous events themselves are never learned (the analyzer's own guard).

A scorer that fails (the service down) does not stop the monitor: that batch goes unscored,
one log line says so, and the next batch tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from kubesentinel.models import Event, Incident
from kubesentinel.models.anomaly_score import Scored

if TYPE_CHECKING:
    from kubesentinel.ai.scorer import Scorer

__all__ = ["AnomalyStage"]

log = logging.getLogger("kubesentinel.monitor")
FAILURE_LOG_S: Final = 60.0  # at most one line per minute about a failing scorer


class AnomalyStage:
    def __init__(self, scorer: Scorer, threshold: float, gap_ns: int) -> None:
        from kubesentinel.ai.scorer import Holds

        self.scorer = scorer
        self.threshold = threshold
        self.gap_ns = gap_ns
        self._holds = scorer if isinstance(scorer, Holds) else None
        self._logged_at = -FAILURE_LOG_S
        self.scored = 0
        self.anomalies = 0
        self.failed = 0  # events left unscored because the scorer failed

    def score(self, events: Sequence[Event]) -> dict[str, Scored]:
        if not events:
            return {}
        try:
            scores = self.scorer.score_batch(events)
            if len(scores) != len(events):
                raise ValueError(f"{len(scores)} scores for {len(events)} events")
        except Exception as exc:  # a scorer's failure must not stop the monitor
            self.failed += len(events)
            now = time.monotonic()
            if now - self._logged_at >= FAILURE_LOG_S:
                self._logged_at = now
                log.error("anomaly scoring failed, events go unscored: %s", exc)
            return {}
        self.scored += len(events)
        threshold = self.threshold
        found = {
            event.id: scored
            for event, scored in zip(events, scores, strict=True)
            if scored.score >= threshold
        }
        self.anomalies += len(found)
        return found

    def settle(self, incidents: Sequence[Incident]) -> None:
        """After correlation: hold the incidents the batch touched, then let the scorer learn
        the batch's events that are outside every hold."""
        holds = self._holds
        if holds is None:
            return
        gap = self.gap_ns
        for incident in incidents:
            holds.hold(incident.workload.key, incident.first_ns - gap, incident.last_ns + gap)
        holds.settle()

    @property
    def learned(self) -> int:
        """Events the scorer learned (0 for one that does not learn)."""
        return self._holds.learned_events if self._holds is not None else 0

    @property
    def held(self) -> int:
        """Events an incident's hold kept from being learned."""
        return self._holds.held_events if self._holds is not None else 0

    def close(self) -> None:
        self.scorer.close()
