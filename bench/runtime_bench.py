"""Runtime monitor benchmark: whole processes, figures printed as numbers.

- file source: events/s end to end (parse, enrich, correlate, store) for a simulated stream;
- HTTP source: alerts/s accepted and stored, and ingest-to-stored latency p50/p99 at a fixed
  offered rate (from the monitor's own /metrics histogram);
- RSS of the monitor idle and under load.

With ``--ai`` the monitor scores every event with a model trained (``ai train``) on the first
hour of another simulated stream of the same cluster and rate (seed 8; the replay is seed 7),
so the replay's behaviour is mostly known, as on a monitored cluster, but its pods, ids and
times are new.

Run: python bench/runtime_bench.py [--events N] [--http-alerts N (0: file source only)] [--rate R]
     [--ai]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-m", "kubesentinel", "monitor"]
# Each connection has one alert in flight (its answer waits for the store's commit), so the
# load needs many: 32 is what a few falcosidekick replicas and Falco daemons hold open.
FLAT_OUT_CONNECTIONS = 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--http-alerts", type=int, default=60_000)
    parser.add_argument("--rate", type=int, default=10_000, help="offered HTTP rate for latency")
    parser.add_argument("--only", choices=("file", "http"), help="run one part")
    parser.add_argument("--ai", action="store_true", help="score events with a trained model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ks-bench-") as tmp:
        work = Path(tmp)
        stream = _stream(work, args.events)
        extra = ["--model", str(_model(work, args.events))] if args.ai else ["--no-ai"]
        if args.only != "http":
            _file_source(work, stream, extra)
        if args.only != "file" and args.http_alerts > 0:  # --http-alerts 0: no HTTP part
            _http_source(work, stream, args.http_alerts, args.rate, extra)
    return 0


def _model(work: Path, count: int) -> Path:
    """A model trained on the first hour of another stream of the same cluster and rate."""
    from kubesentinel.runtime.simulate import simulate

    sim = simulate(seed=8, hours=1.0, events_per_s=max(1.0, count / 3600))
    training = work / "training.jsonl"
    training.write_text("".join(line + "\n" for line in sim.lines()))
    model = work / "model.json.zst"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kubesentinel", "ai", "train", "--events", str(training),
         "--model", str(model), "--window", "1h"],
        check=True, cwd=work, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"runtime.ai.model_kb: {model.stat().st_size / 1024:.0f}  # zstd; trained in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return model


def _stream(work: Path, count: int) -> list[bytes]:
    """A realistic simulated stream of about ``count`` distinct alerts (one simulated hour)."""
    from kubesentinel.runtime.simulate import simulate

    sim = simulate(seed=7, hours=1.0, events_per_s=max(1.0, count / 3600))
    lines = [line.encode() for line in sim.lines()]
    (work / "stream.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    size = sum(map(len, lines)) / len(lines)
    print(f"runtime.stream_lines: {len(lines)}  # distinct simulated alerts, {size:.0f} bytes each")
    return lines


def _file_source(work: Path, lines: list[bytes], extra: list[str]) -> None:
    store = work / "file.db"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*MONITOR, "--source", str(work / "stream.jsonl"), "--until-eof", "--format", "json",
         "--store", str(store), "--dead-letter", str(work / "dl.jsonl"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work,
    )  # fmt: skip
    peak = _HighWater(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    rss = peak.stop()
    if proc.returncode != 0:
        print(f"runtime.file.error: exit {proc.returncode}: {err.decode()[-500:]}")
        return
    summary = json.loads(out)
    events = summary["events_read"]
    print(f"runtime.file.events: {events}")
    print(f"runtime.file.events_per_s: {events / wall:.0f}  # whole process; target >= 50000")
    pipeline_s = summary["duration_s"]
    print(f"runtime.file.pipeline_events_per_s: {events / pipeline_s:.0f}  # without start-up")
    print(f"runtime.file.events_scored: {summary['events_scored']}  "
          f"# anomalies: {summary['anomalies']}")  # fmt: skip
    if rss:
        print(f"runtime.file.peak_rss_mb: {rss:.1f}")


class _HighWater:
    """Poll the child's VmHWM (peak RSS since exec), or ``measure(pid)`` when given, every
    50 ms. RUSAGE_CHILDREN would also count the pages the child shared with this process
    between fork and exec."""

    def __init__(self, pid: int, measure: Callable[[int], float] | None = None) -> None:
        self.pid = pid
        self.peak = 0.0
        self._measure = measure or (lambda p: _status_mb(p, "VmHWM:"))
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, self._measure(self.pid))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_mb(pid: int, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0  # already exited
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of ``pid`` and of its child processes."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    task = Path(f"/proc/{pid}/task")
    for tid in sorted(p.name for p in task.iterdir()):
        fields = (task / tid / "stat").read_text().rsplit(")", 1)[1].split()
        role = "main" if tid == str(pid) else "thread"
        out[f"{pid}:{role}:{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    for child in (task / str(pid) / "children").read_text().split():
        out.update(_cpu_seconds(int(child)))
    return out


def _print_cpu_split(pid: int, before: dict[str, float], stored: float) -> None:
    """CPU µs per stored alert: the monitor's threads, its store process, in all."""
    after = _cpu_seconds(pid)
    spent = {key: after[key] - before.get(key, 0.0) for key in after}
    per_process: dict[str, float] = {}
    for key, seconds in spent.items():
        name = "monitor" if key.startswith(f"{pid}:") else "store_process"
        per_process[name] = per_process.get(name, 0.0) + seconds
    threads = sorted((s for k, s in spent.items() if k.startswith(f"{pid}:")), reverse=True)
    shown = ", ".join(f"{s / stored * 1e6:.0f}" for s in threads if s / stored * 1e6 >= 1)
    print(f"runtime.http.cpu_us_per_alert.monitor: {per_process['monitor'] / stored * 1e6:.0f}"
          f"  # threads, busiest first: {shown} (receiver, pipeline, acks)")  # fmt: skip
    store = per_process.get("store_process", 0.0)
    print(f"runtime.http.cpu_us_per_alert.store_process: {store / stored * 1e6:.0f}")


def _rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


def _http_source(work: Path, lines: list[bytes], total: int, rate: int, extra: list[str]) -> None:
    port = _free_port()
    # The monitor logs a line per incident: a pipe nobody reads until the end would fill up
    # and block it mid-run, so its log goes to a file.
    log = (work / "monitor-http.log").open("wb")
    proc = subprocess.Popen(
        [*MONITOR, "--source", f"http://127.0.0.1:{port}", "--format", "json",
         "--store", str(work / "http.db"), "--dead-letter", str(work / "dl-http.jsonl"),
         *extra],
        stdout=subprocess.PIPE, stderr=log, cwd=work,
    )  # fmt: skip
    try:
        if not _wait_http(port):
            print("runtime.http.error: the monitor did not start listening")
            return
        time.sleep(1.0)
        print(f"runtime.idle_rss_mb: {_rss_mb(proc.pid):.1f}  # target <= 50")
        if shutil.which("wrk"):
            stored = "kubesentinel_stored_total"
            cpu_before, stored_at = _cpu_seconds(proc.pid), _counter(port, stored)
            accepted = _wrk_flat_out(port, lines, work, seconds=10)
            _print_cpu_split(proc.pid, cpu_before, _counter(port, stored) - stored_at)
            print(f"runtime.http.alerts_per_s: {accepted:.0f}  # wrk, {FLAT_OUT_CONNECTIONS} "
                  "keep-alive connections, distinct alerts, answered after the store committed "
                  "them; target >= 10000")  # fmt: skip
        else:
            print("runtime.http.note: wrk is missing (apt-get install wrk): Python clients")
            sent, seconds = _post_all(port, lines, total, rate=None)
            print(f"runtime.http.alerts_per_s: {sent / seconds:.0f}  # Python clients (install "
                  "wrk for a lighter load generator); target >= 10000")  # fmt: skip
        print(f"runtime.http.load_rss_mb: {_rss_mb(proc.pid):.1f}")
        time.sleep(1.0)  # the flat-out phase above queued deeply: let it drain, leave it out
        before = _buckets(port)
        stored_before = _counter(port, "kubesentinel_stored_total")
        started = time.perf_counter()
        if shutil.which("wrk"):
            connections = _paced_connections(port, work, rate)
            before = _buckets(port)
            stored_before = _counter(port, "kubesentinel_stored_total")
            started = time.perf_counter()
            _wrk_paced(port, work, connections, seconds=10)
        else:
            _post_all(port, lines, min(total, rate * 5), rate=rate)
        achieved = (_counter(port, "kubesentinel_stored_total") - stored_before) / (
            time.perf_counter() - started
        )
        time.sleep(1.0)
        p50, p99 = _latency_quantiles(port, before)
        print(f"runtime.http.paced_alerts_per_s: {achieved:.0f}  # paced wrk load, aim {rate}/s")
        print(f"runtime.http.latency_p50_ms: {p50 * 1000:.2f}  # bucket upper bound")
        print(f"runtime.http.latency_p99_ms: {p99 * 1000:.2f}  # bucket upper bound; target < 10")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
            summary = json.loads(out or b"{}")
            print(f"runtime.http.events_stored: {summary.get('events_stored')}")
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            proc.kill()
        log.close()


def _wait_http(port: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies, n, i = {}, 0, 0
for line in io.lines("BODIES") do n = n + 1; bodies[n] = line end
request = function()
  i = i % n + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _wrk_flat_out(port: int, lines: list[bytes], work: Path, seconds: int) -> float:
    """Alerts/s the monitor accepted and stored under wrk (a C load generator, so the client
    takes little of the 2 cores), from the monitor's own counters."""
    bodies = work / "bodies.jsonl"
    bodies.write_bytes(b"\n".join(lines[:50_000]) + b"\n")
    script = work / "post.lua"
    script.write_text(_WRK_SCRIPT.replace("BODIES", str(bodies)))
    before = _counter(port, "kubesentinel_stored_total")
    started = time.perf_counter()
    subprocess.run(
        ["wrk", "-t1", f"-c{FLAT_OUT_CONNECTIONS}", f"-d{seconds}s", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, check=False, timeout=seconds + 30,
    )  # fmt: skip
    time.sleep(1.0)  # let the pipeline store what was queued
    return (_counter(port, "kubesentinel_stored_total") - before) / (time.perf_counter() - started)


# The same bodies, each connection pausing 1 ms (wrk's delay hook) after each answer.
_WRK_PACED = _WRK_SCRIPT + "delay = function() return 1 end\n"


def _paced_connections(port: int, work: Path, rate: int) -> int:
    """How many paced connections offer ``rate`` alerts/s: each waits 1 ms after each answer,
    and answers slow down as the load grows, so measure and adjust a few times."""
    connections = max(1, rate // 1000)
    for _ in range(4):
        before = _counter(port, "kubesentinel_stored_total")
        started = time.perf_counter()
        _wrk_paced(port, work, connections, seconds=3)
        achieved = (_counter(port, "kubesentinel_stored_total") - before) / (
            time.perf_counter() - started
        )
        time.sleep(0.5)
        if achieved >= rate:
            break
        connections = math.ceil(connections * rate / max(achieved, 1.0) * 1.03)
    return connections


def _wrk_paced(port: int, work: Path, connections: int, seconds: int) -> None:
    """Paced load: each connection waits 1 ms (wrk's delay hook) after each answer."""
    script = work / "paced.lua"
    script.write_text(_WRK_PACED.replace("BODIES", str(work / "bodies.jsonl")))
    subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, check=False, timeout=seconds + 30,
    )  # fmt: skip


def _counter(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _post_all(port: int, lines: list[bytes], total: int, rate: int | None) -> tuple[int, float]:
    """POST ``total`` alerts from 4 client processes (threads would be held back by the GIL),
    each on one keep-alive connection; ``rate`` paces them (None: flat out)."""
    clients, per_client = 4, total // 4
    jobs = [(port, lines[i::clients][:per_client], rate / clients if rate else 0.0)
            for i in range(clients)]  # fmt: skip
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        accepted = pool.starmap(_post_from_one_client, jobs)
    return sum(accepted), time.perf_counter() - started


def _post_from_one_client(port: int, bodies: list[bytes], rate: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = 1.0 / rate if rate else 0.0
    next_at = time.perf_counter()
    accepted = 0
    for body in bodies:
        while True:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 429:
                break
            time.sleep(0.001)  # back-pressure: retry, as falcosidekick does
        accepted += response.status == 200
        if interval:
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    conn.close()
    return accepted


def _buckets(port: int) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the ingest-to-stored histogram."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("kubesentinel_ingest_to_stored_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    return buckets


def _latency_quantiles(port: int, before: list[tuple[float, float]]) -> tuple[float, float]:
    """p50 and p99 (bucket upper bounds) of what was stored since ``before``."""
    earlier = dict(before)
    buckets = [(bound, count - earlier.get(bound, 0.0)) for bound, count in _buckets(port)]
    total = buckets[-1][1] if buckets else 0.0

    def quantile(q: float) -> float:
        for bound, count in buckets:
            if total and count >= q * total:
                return bound
        return float("nan")

    return quantile(0.5), quantile(0.99)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
