"""The monitor's health figures: counters, gauges and one latency histogram.

Thread-safe (one lock) and cheap: the pipeline updates them once per batch, never per event,
and a batch's latencies are bucketed here in one tight loop (bisect over the bounds). The
exposition for ``GET /metrics`` is prometheus_client's: ``render_prometheus()`` collects these
figures into its metric families on a private ``CollectorRegistry`` (never the process-wide
default one) and writes them with its text format 0.0.4 writer. prometheus_client's own
``Histogram.observe`` per latency costs several times this batch loop, so the library renders
and this module counts (figures in docs/performance.md). The library is imported on the first
scrape: its import is slow, and neither ``kubesentinel scan`` nor the monitor's start-up should
pay it. ``snapshot()`` gives the same figures as a plain dict for
the ``--until-eof`` summary and ``/healthz``.

Who counts what: sources count ``refused`` (an HTTP 429 never reaches the pipeline); the
pipeline counts everything else (``received`` = raw items pulled from the source).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

PREFIX: Final = "kubesentinel_"
# What render_prometheus writes (prometheus_client's CONTENT_TYPE_PLAIN_0_0_4, spelt out here so
# that the HTTP source can name it without importing the library).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Upper bounds (seconds) of the ingest -> stored latency buckets; +Inf is implicit.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

# name -> help text; exposed as kubesentinel_<name>_total.
COUNTERS: Final = {
    "received": "Raw alerts read from the source.",
    "processed": "Alerts parsed and enriched into events.",
    "stored": "Events committed to the incident store.",
    "malformed": "Raw alerts rejected by the parser (written to the dead-letter file).",
    "refused": "Alerts refused because the queue was full (HTTP 429).",
    "internal": "Falco internal events (drops, metrics snapshots) routed to health metrics.",
    "incidents_opened": "Incidents opened.",
    "vault_removed": "Stored events the vault's retention removed (expired, rolled up, evicted).",
}
GAUGES: Final = {
    "queue_depth": "Alerts waiting in the source queue.",
    "open_incidents": "Incidents currently open in the correlator.",
    # The health alert of the size cap: 1 while what is left is held or incident evidence.
    "vault_over_cap": "1 when the vault cannot be pruned under forensics.max_size_mb, else 0.",
    "vault_used_bytes": "Bytes the vault's store and dead-letter files used after the last prune.",
}
# Key figures of Falco's "metrics snapshot" internal events, kept per host.
FALCO_FIGURES: Final = (
    "falco.evts_rate_sec",
    "falco.num_evts",
    "falco.outputs_queue_num_drops",
    "scap.n_drops",
    "scap.n_drops_perc",
    "scap.n_evts",
)
MAX_LABEL_VALUES: Final = 1000  # bounds label cardinality (rule names, hosts)
LATENCY_NAME: Final = "ingest_to_stored_seconds"
LATENCY_HELP: Final = "Time from receiving an alert to committing its event to the store."
INTERNAL_HELP: Final = "Falco internal events by rule (drops, metrics snapshots)."
FALCO_HELP: Final = "Latest key figures of each host's Falco metrics snapshot."


class Metrics:
    """Counters, gauges and the latency histogram of one monitor run."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("histogram buckets must be distinct and ascending")
        self._lock = threading.Lock()
        self._bounds = tuple(float(b) for b in buckets)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._gauges = dict.fromkeys(GAUGES, 0)
        self._bounds_ns = tuple(round(b * 1e9) for b in self._bounds)
        self._bucket_counts = [0] * (len(self._bounds) + 1)  # last one is +Inf
        self._internal: dict[str, int] = {}  # Falco internal events by rule
        self._falco: dict[tuple[str, str], float] = {}  # (host, figure) -> latest value
        self._latency_sum = 0.0
        self._started = time.monotonic()
        self._registry: CollectorRegistry | None = None  # made on the first scrape
        self._registry_lock = threading.Lock()

    def add(
        self,
        *,
        received: int = 0,
        processed: int = 0,
        stored: int = 0,
        malformed: int = 0,
        refused: int = 0,
        internal: int = 0,
        incidents_opened: int = 0,
    ) -> None:
        """Add one batch's counts (one lock acquisition for all of them)."""
        with self._lock:
            c = self._counters
            c["received"] += received
            c["processed"] += processed
            c["stored"] += stored
            c["malformed"] += malformed
            c["refused"] += refused
            c["internal"] += internal
            c["incidents_opened"] += incidents_opened

    def set_gauges(
        self, *, queue_depth: int | None = None, open_incidents: int | None = None
    ) -> None:
        with self._lock:
            if queue_depth is not None:
                self._gauges["queue_depth"] = queue_depth
            if open_incidents is not None:
                self._gauges["open_incidents"] = open_incidents

    def record_prune(self, *, removed: int, over_cap: bool, used_bytes: int) -> None:
        """One retention run of the vault (vault/schedule.py)."""
        with self._lock:
            self._counters["vault_removed"] += removed
            self._gauges["vault_over_cap"] = int(over_cap)
            self._gauges["vault_used_bytes"] = used_bytes

    def observe_batch(
        self,
        *,
        received: int = 0,
        processed: int | None = None,
        stored: int = 0,
        malformed: int = 0,
        internal: int = 0,
        incidents_opened: int = 0,
        open_incidents: int | None = None,
        queue_depth: int | None = None,
        latencies_ns: Sequence[int] = (),
    ) -> None:
        """Everything one pipeline batch changes, under one lock acquisition.

        ``processed`` defaults to ``received - malformed``; ``latencies_ns`` are the
        ingest -> stored times of the batch's items.
        """
        counts, total_ns = self._bucket(latencies_ns)
        with self._lock:
            c = self._counters
            c["received"] += received
            c["processed"] += received - malformed if processed is None else processed
            c["stored"] += stored
            c["malformed"] += malformed
            c["internal"] += internal
            c["incidents_opened"] += incidents_opened
            if open_incidents is not None:
                self._gauges["open_incidents"] = open_incidents
            if queue_depth is not None:
                self._gauges["queue_depth"] = queue_depth
            self._add_latencies(counts, total_ns / 1e9)

    def observe(self, seconds: Iterable[float]) -> None:
        """Record a batch of latencies, in seconds."""
        bounds = self._bounds
        counts = [0] * (len(bounds) + 1)
        total = 0.0
        for value in seconds:
            counts[bisect_left(bounds, value)] += 1  # le: a value equal to a bound is in it
            total += value
        with self._lock:
            self._add_latencies(counts, total)

    def observe_since(self, received_ns: Iterable[int], now_ns: int) -> None:
        """Record the latency of each item received at ``received_ns`` and stored at ``now_ns``."""
        self.observe([(now_ns - r) / 1e9 for r in received_ns])

    def record_internal(self, rule: str, output_fields: Mapping[str, Any]) -> None:
        """A Falco ``internal`` event: counted by rule; a metrics snapshot's key figures kept.

        Counts it in ``internal`` as well, so the pipeline need not pass ``internal=`` too.
        """
        host = str(output_fields.get("evt.hostname") or "")
        with self._lock:
            self._counters["internal"] += 1
            if rule in self._internal or len(self._internal) < MAX_LABEL_VALUES:
                self._internal[rule] = self._internal.get(rule, 0) + 1
            for name in FALCO_FIGURES:
                value = output_fields.get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    key = (host, name)
                    if key in self._falco or len(self._falco) < MAX_LABEL_VALUES:
                        self._falco[key] = value

    def _bucket(self, latencies_ns: Sequence[int]) -> tuple[list[int], int]:
        bounds = self._bounds_ns
        counts = [0] * (len(bounds) + 1)
        for value in latencies_ns:
            counts[bisect_left(bounds, value)] += 1
        return counts, sum(latencies_ns)

    def _add_latencies(self, counts: Sequence[int], total_s: float) -> None:
        mine = self._bucket_counts
        for i, n in enumerate(counts):
            mine[i] += n
        self._latency_sum += total_s

    def snapshot(self) -> dict[str, Any]:
        """Every figure as plain JSON-ready values, read under the lock at one instant."""
        with self._lock:
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            counts = list(self._bucket_counts)
            total = self._latency_sum
            internal = dict(self._internal)
        n = sum(counts)
        return {
            **counters,
            **gauges,
            "falco_internal": internal,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "latency": {
                "count": n,
                "sum_s": total,
                "mean_s": total / n if n else None,
                "p50_s": self._quantile(counts, 0.50),
                "p99_s": self._quantile(counts, 0.99),
            },
        }

    def render_prometheus(self) -> str:
        """The Prometheus text exposition format 0.0.4, written by prometheus_client."""
        from prometheus_client.exposition import generate_latest

        return generate_latest(self._exposition()).decode()

    def _exposition(self) -> CollectorRegistry:
        """A private registry holding one collector: these figures."""
        with self._registry_lock:
            if self._registry is None:
                from prometheus_client.registry import CollectorRegistry

                registry = CollectorRegistry(auto_describe=False)
                registry.register(_Collector(self))
                self._registry = registry
            return self._registry

    def _families(self) -> Iterator[Metric]:
        """Every figure as prometheus_client metric families, read under the lock at once."""
        from prometheus_client.metrics_core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._lock:
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            counts = list(self._bucket_counts)
            total = self._latency_sum
            internal = sorted(self._internal.items())
            falco = sorted(self._falco.items())
        for name, help_text in COUNTERS.items():
            yield CounterMetricFamily(f"{PREFIX}{name}", help_text, value=counters[name])
        for name, help_text in GAUGES.items():
            yield GaugeMetricFamily(f"{PREFIX}{name}", help_text, value=gauges[name])
        rules = CounterMetricFamily(
            f"{PREFIX}falco_internal_events", INTERNAL_HELP, labels=["rule"]
        )
        for rule, n in internal:
            rules.add_metric([rule], n)
        yield rules
        figures = GaugeMetricFamily(f"{PREFIX}falco_metric", FALCO_HELP, labels=["host", "name"])
        for (host, name), value in falco:
            figures.add_metric([host, name], value)
        yield figures
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*self._bounds, None), counts, strict=True):
            running += n
            buckets.append(("+Inf" if bound is None else repr(bound), running))
        yield HistogramMetricFamily(
            f"{PREFIX}{LATENCY_NAME}", LATENCY_HELP, buckets=buckets, sum_value=total
        )

    def _quantile(self, counts: Sequence[int], q: float) -> float | None:
        """Estimate from the buckets, interpolating linearly inside one (as PromQL does)."""
        n = sum(counts)
        if not n:
            return None
        rank = q * n
        running = 0
        lower = 0.0
        for i, count in enumerate(counts):
            if count and running + count >= rank:
                if i == len(self._bounds):  # +Inf bucket: the highest finite bound is all we know
                    return self._bounds[-1]
                upper = self._bounds[i]
                return lower + (upper - lower) * (rank - running) / count
            running += count
            lower = self._bounds[i] if i < len(self._bounds) else lower
        return self._bounds[-1]


class _Collector:
    """prometheus_client's collector protocol over one Metrics (kept off Metrics' public API)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families()
