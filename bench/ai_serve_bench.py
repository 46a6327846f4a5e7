"""`kubesentinel ai serve`: memory of the serving process, Score throughput and latency (not a
test; one run prints the figures).

Trains a model on the normal period of a `simulate` stream, starts `ai serve` on 127.0.0.1 as
its own process (plaintext, learning on), and sends the whole stream through Score in batches
from this process, one call at a time. Prints:

- serve.idle_pss_mb: PSS (/proc/PID/smaps_rollup) of the serving process once it answers
  health checks; target <= 50;
- serve.load_pss_mb: the largest PSS seen while scoring, and after;
- serve.events_per_s: events through Score per second of wall time (the client's encoding of
  requests is done beforehand and not counted; its decoding of responses is);
- serve.batch_p50_ms / p99_ms: latency of one Score call of --batch events.

    .venv/bin/python bench/ai_serve_bench.py [--hours 24] [--batch 512] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.modelfile import save_analyzer
from kubesentinel.ai.proto import SERVICE, messages
from kubesentinel.models.event import Event
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_batch
from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.sources.interface import RawAlert


def _pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _requests(events: list[Event], batch: int) -> list[Any]:
    """ScoreRequests of ``batch`` events each, as RemoteScorer builds them."""
    pb = messages()
    requests = []
    for start in range(0, len(events), batch):
        wire = []
        for e in events[start : start + batch]:
            w = e.workload
            wire.append(
                pb.Event(
                    falco_json=e.raw,
                    workload=pb.Workload(
                        cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name
                    ),
                    origin=e.origin,
                )
            )
        requests.append(pb.ScoreRequest(events=wire))
    return requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--batch", type=int, default=512)  # RemoteScorer's calls
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sim = simulate(seed=args.seed, hours=args.hours)
    lines = [line.encode() for line in sim.lines()]
    parsed, rejected = parse_batch([RawAlert(x, f"sim:{i}", 0) for i, x in enumerate(lines)])
    assert not rejected
    events = Enricher(sim.cluster).enrich(parsed)
    first_attack = min(label.start_ns for label in sim.labels)
    analyzer, report = Analyzer.fit([e for e in events if e.time_ns < first_attack])
    requests = _requests(events, args.batch)

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.json.zst"
        save_analyzer(analyzer, model)
        print(f"serve.model: {report.events} events learned, {model.stat().st_size} bytes")
        process = subprocess.Popen(
            [sys.executable, "-m", "kubesentinel", "ai", "serve", "--listen", "127.0.0.1:0",
             "--model", str(model), "--cluster", sim.cluster],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            port = int(line.split(" on 127.0.0.1:")[1].split()[0])
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                time.sleep(1.0)
                idle = _pss_mb(process.pid)
                print(f"serve.idle_pss_mb: {idle:.1f}  # target <= 50")
                peak, latencies, anomalies, elapsed = _load(channel, process.pid, requests)
                peak = max(peak, idle)
                after = _pss_mb(process.pid)
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(f"serve.load_pss_mb: {peak:.1f} peak, {after:.1f} after  # target <= 50")
            print(
                f"serve.events_per_s: {len(events) / elapsed:,.0f}  # {len(events)} events in "
                f"{len(requests)} Score calls of {args.batch}, {anomalies} anomalous"
            )
            print(
                f"serve.batch_p50_ms: {statistics.median(latencies) * 1000:.1f}  "
                f"serve.batch_p99_ms: {p99 * 1000:.1f}"
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stderr is not None:
                process.stderr.close()


def _load(
    channel: grpc.Channel, pid: int, requests: list[Any]
) -> tuple[float, list[float], int, float]:
    """(peak PSS MB, latency per call, anomalies, seconds) of sending every request."""
    pb = messages()
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _pss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    call = channel.unary_unary(
        f"/{SERVICE}/Score",
        request_serializer=pb.ScoreRequest.SerializeToString,
        response_deserializer=pb.ScoreResponse.FromString,
    )
    latencies = []
    anomalies = 0
    began = time.perf_counter()
    for request in requests:
        t = time.perf_counter()
        response = call(request, timeout=60)
        latencies.append(time.perf_counter() - t)
        anomalies += sum(s.anomalous for s in response.scores)
    elapsed = time.perf_counter() - began
    done.set()
    sampler.join()
    return peak[0], latencies, anomalies, elapsed


if __name__ == "__main__":
    main()
