"""The plan: fixed events, noise profiles, and the lazy merge that renders them in time order."""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

from kubesentinel.runtime.simulate.constants import NS
from kubesentinel.runtime.simulate.render import Templates, utc_date


@dataclass(slots=True)
class Target:
    """Where a noise profile fires: per slot (replica, node, ordinal) the start offsets of its
    successive pods and each pod's variants (template indices fired together); for a CronJob,
    one slot holding its runs, with their end offsets."""

    starts: list[list[int]]
    variants: list[list[list[tuple[int, ...]]]]
    ends: list[list[int]] | None = None


@dataclass(slots=True)
class Plan:
    span_ns: int
    events_per_s: float
    templates: Templates
    fixed: list[tuple[int, int]]  # (offset ns, template index), sorted
    profiles: list[tuple[float, Target]]  # (weight, where)

    def render(self, seed: int, start_ns: int) -> Iterator[list[str]]:
        """The alert lines in time order, a batch at a time."""
        parts = self.templates.parts
        last_sec = -1
        hms = rfc = ""
        for batch in self._events(seed):
            out: list[str] = []
            append = out.append
            for offset, index in batch:
                head, middle, tail, end = parts[index]
                if middle is None:
                    append(head)
                    continue
                t = start_ns + offset
                sec, frac_ns = divmod(t, NS)
                if sec != last_sec:
                    last_sec = sec
                    day, sod = divmod(sec, 86400)
                    hms = f"{sod // 3600:02d}:{sod % 3600 // 60:02d}:{sod % 60:02d}."
                    rfc = f"{utc_date(day)}T{hms}"
                frac = f"{frac_ns:09d}"
                append(f"{head}{hms}{frac}{middle}{t}{tail}{rfc}{frac}{end}")
            yield out

    def _events(self, seed: int, size: int = 4096) -> Iterator[list[tuple[int, int]]]:
        """(offset, template) in time order: the background batch by batch, each merged with
        the fixed events that fall in it."""
        fixed, taken = self.fixed, 0
        for batch in self._background(seed, size):
            until = bisect_right(fixed, (batch[-1][0], 1 << 62), taken)
            if until > taken:
                batch.extend(fixed[taken:until])
                batch.sort()  # two sorted runs: one merge pass
                taken = until
            yield batch
        if taken < len(fixed):
            yield fixed[taken:]

    def _background(self, seed: int, size: int) -> Iterator[list[tuple[int, int]]]:
        """A Poisson process of noise events in time order, from its own seeded generator."""
        if not self.profiles or self.events_per_s <= 0:
            return
        rng = random.Random(seed * 7919 + 17)  # noqa: S311  a simulation, not cryptography
        rand, log = rng.random, math.log
        weights = [w for w, _ in self.profiles]
        per_event = sum(w * len(t.variants[0][0][0]) for w, t in self.profiles) / sum(weights)
        rate_per_ns = self.events_per_s / per_event / NS
        # Flat tuples: this loop runs once per background event.
        targets = [(t.starts, t.variants, t.ends, len(t.starts)) for _, t in self.profiles]
        cumulative = list(accumulate(weights))
        total = cumulative[-1]
        steady = [target for target in targets if target[2] is None]
        steady_cumulative = list(accumulate(w for w, t in self.profiles if t.ends is None))
        steady_total = steady_cumulative[-1]
        span = self.span_ns
        t = 0.0
        batch: list[tuple[int, int]] = []
        append = batch.append
        while True:
            t += -log(1.0 - rand()) / rate_per_ns  # exponential gaps: a Poisson process
            offset = int(t)
            if offset >= span:
                break
            starts, variants, ends, slots = targets[bisect_right(cumulative, rand() * total)]
            slot = int(rand() * slots)
            i = bisect_right(starts[slot], offset) - 1
            if ends is not None and (i < 0 or offset >= ends[slot][i]):
                # No job is running now: the alert comes from an always-on workload instead.
                pick = bisect_right(steady_cumulative, rand() * steady_total)
                starts, variants, ends, slots = steady[pick]
                slot = int(rand() * slots)
                i = bisect_right(starts[slot], offset) - 1
            choices = variants[slot][i]
            for index in choices[int(rand() * len(choices))]:
                append((offset, index))
            if len(batch) >= size:
                yield batch
                batch = []
                append = batch.append
        if batch:
            yield batch
