"""The analyzer at a real cluster's size: model file, memory, and the monitor with it.

The simulated cluster has 12 workloads and a 4-8 KB model. A production cluster has hundreds
of workloads, each with its own processes, parents, peers and files. This bench builds a
telemetry stream (the shape deploy/falco/kubesentinel-telemetry.yaml emits) for ``--workloads``
workloads in ``--namespaces`` namespaces, each with its own processes, executables, in-cluster
and external peers and files, trains a model on it with the real analyzer, and prints:

- the model file's size (zstd JSON) and the analyzer's resident size after loading it;
- batch scoring speed on a fresh hour of the same cluster;
- the idle PSS of a whole `kubesentinel monitor` tree with that model loaded
  (bench/monitor_memory_bench.py's measure; target <= 50 MB).

Run: python bench/ai_model_size_bench.py [--workloads 500] [--namespaces 40] [--hours 2]
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from datetime import UTC, datetime
from pathlib import Path

import orjson

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("nginx", "python", "openjdk", "node", "golang", "postgres", "redis", "envoy")
PROGRAMS = {
    "nginx": [("nginx", "/usr/sbin/nginx"), ("sh", "/bin/sh")],
    "python": [("python3", "/usr/bin/python3"), ("gunicorn", "/usr/local/bin/gunicorn")],
    "openjdk": [("java", "/opt/java/openjdk/bin/java")],
    "node": [("node", "/usr/local/bin/node"), ("npm", "/usr/local/bin/npm")],
    "golang": [("server", "/app/server")],
    "postgres": [("postgres", "/usr/lib/postgresql/16/bin/postgres"), ("psql", "/usr/bin/psql")],
    "redis": [("redis-server", "/usr/local/bin/redis-server")],
    "envoy": [("envoy", "/usr/local/bin/envoy"), ("pilot-agent", "/usr/local/bin/pilot-agent")],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--namespaces", type=int, default=40)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--per-minute", type=int, default=6, help="events per workload-minute")
    args = parser.parse_args()
    from kubesentinel.ai.analyzer import Analyzer
    from kubesentinel.ai.modelfile import load_analyzer, save_analyzer

    cluster = _cluster(args.workloads, args.namespaces, _rng(5))
    train_lines = list(_stream(cluster, args.hours, args.per_minute, _rng(6), T0))
    test_start = T0 + int(args.hours * 3600 * NS)
    test_lines = list(_stream(cluster, 1.0, args.per_minute, _rng(7), test_start))
    print(f"ai.size.workloads: {args.workloads}  # in {args.namespaces} namespaces")
    print(f"ai.size.training_events: {len(train_lines)}  # {args.hours:g} h")
    train = _events(train_lines)
    started = time.perf_counter()
    analyzer, _ = Analyzer.fit(train)
    print(f"ai.size.train_s: {time.perf_counter() - started:.1f}")
    del train
    with tempfile.TemporaryDirectory(prefix="ks-aisize-") as tmp:
        model = Path(tmp) / "model.json.zst"
        save_analyzer(analyzer, model)
        del analyzer
        gc.collect()
        print(f"ai.size.model_kb: {model.stat().st_size / 1024:.0f}  # zstd JSON on disk")
        tracemalloc.start()
        loaded = load_analyzer(model)
        resident, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"ai.size.loaded_mb: {resident / 1e6:.1f}  # Python heap of the loaded analyzer")
        test = _events(test_lines)
        started = time.perf_counter()
        scores = loaded.score_batch(test)
        seconds = time.perf_counter() - started
        alarms = sum(s.score >= loaded.threshold for s in scores)
        print(f"ai.size.score_events_per_s: {len(test) / seconds:.0f}  # batch, learning on")
        print(f"ai.size.alarms_per_10k: {alarms / len(test) * 10_000:.1f}  # a normal hour")
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "monitor_memory_bench.py"),
             "--model", str(model), "--idle-only"],
            capture_output=True, text=True, check=False, cwd=ROOT / "bench",
        )  # fmt: skip
        idle = [line for line in out.stdout.splitlines() if line.startswith("monitor.idle")]
        print(*(idle or [f"ai.size.monitor_error: {out.stderr[-300:]}"]), sep="\n")
    return 0


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a repeatable stream, not a secret


Workload = tuple[str, str, str, list[tuple[str, str]], list[tuple[str, int]], list[str]]


def _cluster(count: int, namespaces: int, rng: random.Random) -> list[Workload]:
    """(namespace, name, image, programs, peers, files) for each workload."""
    out = []
    for n in range(count):
        image = rng.choice(IMAGES)
        programs = list(PROGRAMS[image])
        programs += [(f"helper{k}", f"/usr/local/bin/helper{k}") for k in range(rng.randint(0, 4))]
        peers = [(f"10.96.{rng.randint(0, 255)}.{rng.randint(1, 254)}", rng.choice((80, 443,
                  5432, 6379, 8080, 9090))) for _ in range(rng.randint(2, 12))]  # fmt: skip
        if rng.random() < 0.3:
            peers.append((f"52.{rng.randint(0, 255)}.{rng.randint(0, 255)}.10", 443))
        files = [f"/etc/app{n}/conf{k}.yaml" for k in range(rng.randint(1, 5))]
        out.append((f"ns{n % namespaces}", f"{image}-app{n}", image, programs, peers, files))
    return out


def _stream(
    cluster: list[Workload], hours: float, per_minute: int, rng: random.Random, start_ns: int
):  # type: ignore[no-untyped-def]
    minutes = int(hours * 60)
    for minute in range(minutes):
        batch = []
        for ns, name, image, programs, peers, files in cluster:
            pod = f"{name}-{zlib.crc32(name.encode()) % 100000:05d}-x{minute // 90}"
            for _ in range(per_minute):
                t = start_ns + minute * 60 * NS + rng.randrange(60 * NS)
                proc, exe = rng.choice(programs)
                kind = rng.random()
                fields = {
                    "container.id": f"{zlib.crc32(pod.encode()):012x}",
                    "container.image.repository": f"registry.example.com/{image}",
                    "container.image.tag": "1.0",
                    "k8s.ns.name": ns,
                    "k8s.pod.name": pod,
                    "proc.name": proc,
                    "proc.exepath": exe,
                    "proc.pname": programs[0][0],
                    "user.name": "app",
                }
                if kind < 0.5:
                    ip, port = rng.choice(peers)
                    rule, what = "KubeSentinel Outbound Connection", "outbound connection"
                    fields |= {"evt.type": "connect", "fd.sip": ip, "fd.sport": port,
                               "fd.name": f"10.244.1.{rng.randint(2, 250)}:"
                               f"{rng.randint(32768, 60999)}->{ip}:{port}"}  # fmt: skip
                elif kind < 0.8:
                    rule, what = "KubeSentinel Sensitive File Opened", "sensitive file opened"
                    fields |= {"evt.type": "openat", "fd.name": rng.choice(files)}
                else:
                    rule, what = "KubeSentinel Process Spawned", "process spawned"
                    fields |= {"evt.type": "execve", "proc.cmdline": f"{proc} --serve"}
                batch.append((t, rule, what, fields))
        batch.sort(key=lambda item: item[0])
        for t, rule, what, fields in batch:
            yield _alert(t, rule, what, fields)


def _alert(t: int, rule: str, what: str, fields: dict[str, object]) -> bytes:
    seconds, nanos = divmod(t, NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return orjson.dumps(
        {
            "time": f"{stamp}.{nanos:09d}Z",
            "rule": rule,
            "priority": "Informational",
            "source": "syscall",
            "output": f"KubeSentinel telemetry: {what}",
            "hostname": "node-1",
            "tags": ["telemetry", "kubesentinel", "container"],
            "output_fields": fields,
        }
    )


def _events(lines: list[bytes]):  # type: ignore[no-untyped-def]
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.parse import parse_batch
    from kubesentinel.runtime.sources.interface import RawAlert

    parsed, rejected = parse_batch([RawAlert(line, f"bench:{i}", 0) for i, line in
                                    enumerate(lines, 1)])  # fmt: skip
    assert not rejected, rejected[:2]
    return Enricher("bench").enrich(parsed)


if __name__ == "__main__":
    sys.exit(main())
