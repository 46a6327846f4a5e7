"""The pipeline's scoring stage: a batch's events through the scorer, after enrichment and
before correlation; what scores at or above ``ai.threshold`` goes to the correlator.

    anomalies = stage.score(events)          event id -> Scored, the anomalous ones only
    incidents = correlator.add(events, now, anomalies)
    stage.hold(incidents)                    the scorer learns nothing inside them

Holding is the monitor's half of the poisoning guard: an incident's span, widened by the gap on
both sides (its context window), is held for its workload, so the scorer (when it learns)
learns no event of it that arrives from the next batch on. Events of the batch that opened the
incident were scored before it existed: of those, the anomalous ones are never learned (the
analyzer's own guard), the ordinary ones are.

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

    def hold(self, incidents: Sequence[Incident]) -> None:
        if self._holds is None:
            return
        gap = self.gap_ns
        for incident in incidents:
            self._holds.hold(incident.workload.key, incident.first_ns - gap, incident.last_ns + gap)

    def close(self) -> None:
        self.scorer.close()
