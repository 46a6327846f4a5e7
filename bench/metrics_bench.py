"""Cost of the monitor's metrics: one pipeline batch recorded, and one /metrics scrape rendered.

The pipeline calls ``Metrics.observe_batch`` once per batch of up to 2,048 alerts with the
batch's ingest -> stored latencies; a scraper calls ``render_prometheus`` every few seconds.
Prints the median of several rounds, in microseconds.

Run: python bench/metrics_bench.py [--batch N] [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from kubesentinel.runtime.metrics import Metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=500, help="batches per round")
    args = parser.parse_args()
    rng = random.Random(1)  # noqa: S311  benchmark data, not cryptography
    # Latencies spread over the buckets: 0.1 ms to 20 ms, log-uniform.
    latencies = [int(10 ** rng.uniform(5, 7.3)) for _ in range(args.batch)]
    internal = {"evt.hostname": "node-1", "scap.n_drops": 3, "falco.evts_rate_sec": 1846.4}

    def per_batch() -> float:
        metrics = Metrics()
        started = time.perf_counter()
        for _ in range(args.batches):
            metrics.observe_batch(
                received=args.batch,
                stored=args.batch,
                open_incidents=40,
                queue_depth=10,
                latencies_ns=latencies,
            )
        return (time.perf_counter() - started) / args.batches * 1e6

    def per_render() -> float:
        metrics = Metrics()
        metrics.observe_batch(received=1, latencies_ns=latencies)
        for host in range(50):
            metrics.record_internal("Falco internal: metrics snapshot",
                                    {**internal, "evt.hostname": f"node-{host}"})  # fmt: skip
        metrics.render_prometheus()  # the first scrape may import the exposition library
        started = time.perf_counter()
        for _ in range(100):
            metrics.render_prometheus()
        return (time.perf_counter() - started) / 100 * 1e6

    batch = statistics.median(per_batch() for _ in range(args.rounds))
    render = statistics.median(per_render() for _ in range(args.rounds))
    print(f"observe_batch ({args.batch} latencies): {batch:.0f} us per batch, "
          f"{batch / args.batch * 1000:.0f} ns per latency")  # fmt: skip
    print(f"render_prometheus (50 hosts): {render:.0f} us per scrape")


if __name__ == "__main__":
    main()
