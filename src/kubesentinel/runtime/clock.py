"""The monitor's notion of now: event time for replays, wall time when a stream goes quiet."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from kubesentinel.models import Event


class StreamClock:
    """Event time for replays, wall time when a live stream goes quiet.

    Incidents close when no event arrived for the window. A replayed file must be judged by
    the events' own timestamps, not by how fast it is read; an idle live source must still see
    time pass, so the clock advances with the wall clock since the newest event.
    """

    def __init__(self, wall: Callable[[], int] = time.time_ns) -> None:
        self._wall = wall
        self._event_ns = 0
        self._wall_at_event = wall()

    def observe(self, events: Sequence[Event]) -> None:
        newest = max((e.time_ns for e in events), default=0)
        if newest > self._event_ns:
            self._event_ns = newest
            self._wall_at_event = self._wall()

    def now(self) -> int:
        return self._event_ns + (self._wall() - self._wall_at_event)
