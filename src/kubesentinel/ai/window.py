"""Weak signals combined: several mildly rare events from one workload within a short window
raise each other's score.

Per workload, the last ``KEEP`` events whose own evidence reached ``FLOOR_BITS`` are kept with
their bits. A new event adds ``SHARE`` of their bits, each halved every ``HALF_LIFE_NS`` of
age and forgotten after ``HORIZON_NS``. Only earlier events count (a stream cannot wait).
"""

from __future__ import annotations

from typing import Any, Final

from kubesentinel.ai.explain import duration

__all__ = ["WeakSignals"]

FLOOR_BITS: Final = 2.0
SHARE: Final = 0.5
HALF_LIFE_NS: Final = 60_000_000_000
HORIZON_NS: Final = 300_000_000_000
KEEP: Final = 8
MAX_WORKLOADS: Final = 50_000


class WeakSignals:
    def __init__(self) -> None:
        self.recent: dict[str, list[tuple[int, float]]] = {}  # workload -> [(time_ns, bits)]

    def prior(self, workload: str, time_ns: int) -> tuple[float, str]:
        """(bits added to an event at ``time_ns``, reason or "")."""
        recent = self.recent.get(workload)
        if not recent:
            return 0.0, ""
        total, count, oldest = 0.0, 0, time_ns
        for at, bits in recent:
            age = time_ns - at
            if 0 <= age <= HORIZON_NS:
                total += bits * 0.5 ** (age / HALF_LIFE_NS)
                count += 1
                oldest = min(oldest, at)
        total *= SHARE
        if total < 1.0:
            return total, ""
        return total, (
            f"{count} other unusual event{'s' if count > 1 else ''} from this workload "
            f"in the last {duration(time_ns - oldest)}"
        )

    def add(self, workload: str, time_ns: int, bits: float) -> None:
        if bits < FLOOR_BITS:
            return
        recent = self.recent.get(workload)
        if recent is None:
            if len(self.recent) >= MAX_WORKLOADS:
                self.recent.clear()
            recent = self.recent[workload] = []
        recent.append((time_ns, bits))
        if len(recent) > KEEP:
            del recent[0]

    def to_state(self) -> dict[str, Any]:
        return {"recent": {w: [[t, b] for t, b in r] for w, r in self.recent.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WeakSignals:
        signals = cls()
        signals.recent = {
            str(w): [(int(t), float(b)) for t, b in r] for w, r in state["recent"].items()
        }
        return signals
