"""Weak signals combined: several mildly rare events from one workload raise each other's score.

Per workload, the last ``KEEP`` unusual events (own evidence at least ``FLOOR_BITS``) are kept
with their bits and what made them unusual (their most telling item). A new event adds, for
every *other* such behaviour (its latest event only), its bits decayed on two time scales:

    SHARE * 0.5 ** (age / HALF_LIFE_NS)  +  SLOW_SHARE * 0.5 ** (age / SLOW_HALF_LIFE_NS)

forgotten after ``HORIZON_NS``. The fast part is a burst (a shell, then its commands, within
seconds); the slow part is a campaign spread over an hour, one mild step every few minutes.
Only distinct behaviours count: the same new behaviour repeating (a new peer called every
second) is one signal, not evidence piling up on itself. Only earlier events count (a stream
cannot wait).
"""

from __future__ import annotations

from typing import Any, Final

from kubesentinel.ai.explain import duration

__all__ = ["WeakSignals"]

FLOOR_BITS: Final = 2.0
SHARE: Final = 0.5
HALF_LIFE_NS: Final = 60_000_000_000
SLOW_SHARE: Final = 0.25
SLOW_HALF_LIFE_NS: Final = 1_800_000_000_000  # 30 min
HORIZON_NS: Final = 5_400_000_000_000  # 90 min
KEEP: Final = 16
MAX_WORKLOADS: Final = 50_000


class WeakSignals:
    def __init__(self) -> None:
        # workload -> [(time_ns, bits, behaviour)], oldest first, one per behaviour
        self.recent: dict[str, list[tuple[int, float, str]]] = {}

    def prior(self, workload: str, time_ns: int, behaviour: str = "") -> tuple[float, str]:
        """(bits added to an event at ``time_ns`` showing ``behaviour``, reason or "")."""
        recent = self.recent.get(workload)
        if not recent:
            return 0.0, ""
        total, count, oldest = 0.0, 0, time_ns
        for at, bits, seen in recent:
            age = time_ns - at
            if seen != behaviour and 0 <= age <= HORIZON_NS:
                total += bits * (
                    SHARE * 0.5 ** (age / HALF_LIFE_NS)
                    + SLOW_SHARE * 0.5 ** (age / SLOW_HALF_LIFE_NS)
                )
                count += 1
                oldest = min(oldest, at)
        if total < 1.0:
            return total, ""
        return total, (
            f"{count} other unusual behaviour{'s' if count > 1 else ''} from this workload "
            f"in the last {duration(time_ns - oldest)}"
        )

    def add(self, workload: str, time_ns: int, bits: float, behaviour: str = "") -> None:
        if bits < FLOOR_BITS:
            return
        recent = self.recent.get(workload)
        if recent is None:
            if len(self.recent) >= MAX_WORKLOADS:
                self.recent.clear()
            recent = self.recent[workload] = []
        for i, (_, _, seen) in enumerate(recent):
            if seen == behaviour:
                del recent[i]  # one entry per behaviour: its latest
                break
        recent.append((time_ns, bits, behaviour))
        if len(recent) > KEEP:
            del recent[0]

    def to_state(self) -> dict[str, Any]:
        return {"recent": {w: [[t, b, s] for t, b, s in r] for w, r in self.recent.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WeakSignals:
        signals = cls()
        signals.recent = {
            str(w): [(int(x[0]), float(x[1]), str(x[2]) if len(x) > 2 else "") for x in r]
            for w, r in state["recent"].items()
        }
        return signals
