"""Memory of a whole `kubesentinel monitor` process tree (the monitor and its store writer).

- idle: proportional set size (PSS, /proc/PID/smaps_rollup) summed over the tree once the HTTP
  receiver listens and nothing arrives; target <= 50 MB;
- flood: peak RSS (VmHWM, summed over the tree) while clients POST 900 KB alerts as fast as
  the monitor takes them, HTTP 429/503 answers retried; target <= 512 MB.

With ``--model PATH`` the monitor loads that model and scores every alert (the idle figure
then includes the analyzer's state).

Run: python bench/monitor_memory_bench.py [--flood-seconds S] [--clients N] [--workers N]
     [--model PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from runtime_bench import _free_port, _HighWater, _status_mb

MONITOR = [sys.executable, "-m", "kubesentinel", "monitor"]
ALERT_BYTES = 900 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood-seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", help="score with this model (default: no scoring)")
    parser.add_argument("--idle-only", action="store_true", help="measure idle memory only")
    args = parser.parse_args()
    scoring = ["--model", str(Path(args.model).resolve())] if args.model else ["--no-ai"]
    with tempfile.TemporaryDirectory(prefix="ks-mem-") as tmp:
        work = Path(tmp)
        port = _free_port()
        proc = subprocess.Popen(
            [*MONITOR, "--source", f"http://127.0.0.1:{port}", "--format", "json",
             "--store", str(work / "ks.db"), "--dead-letter", str(work / "dl.jsonl"),
             "--workers", str(args.workers), "--no-k8s-lookup", *scoring],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=work,
        )  # fmt: skip
        try:
            if not _wait_healthy(port):
                print("monitor.memory.error: the monitor did not start listening")
                return 1
            _wait_settled(proc.pid)
            tree = _tree(proc.pid)
            pss = sum(_smaps_mb(pid, "Pss:") for pid in tree)
            print(f"monitor.idle_pss_mb: {pss:.1f}  # {len(tree)} processes; target <= 50")
            # Storing the first batch signs a checkpoint: the writer loads the crypto library.
            _post_small(port, 50)
            _wait_settled(proc.pid)
            pss = sum(_smaps_mb(pid, "Pss:") for pid in _tree(proc.pid))
            print(f"monitor.idle_after_traffic_pss_mb: {pss:.1f}  # once 50 alerts are stored")
            if args.idle_only:
                return 0
            peak = _HighWater(proc.pid, _tree_hwm_mb)
            sent, refused, seconds = _flood(port, args.clients, args.flood_seconds)
            peak_mb = peak.stop()
            print(f"monitor.flood.alerts_stored_per_s: {sent / seconds:.1f}  # 900 KB each")
            print(f"monitor.flood.refused: {refused}  # 429/503 answers, retried")
            print(f"monitor.flood.peak_rss_mb: {peak_mb:.1f}  # summed VmHWM; target <= 512")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=120)
                stored = json.loads(out or b"{}").get("events_stored")
                if not args.idle_only:
                    print(f"monitor.flood.events_stored: {stored}")
            except (subprocess.TimeoutExpired, json.JSONDecodeError):
                proc.kill()
    return 0


def _flood(port: int, clients: int, seconds: float) -> tuple[int, int, float]:
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.starmap(_post_large, [(port, seconds, n) for n in range(clients)])
    return sum(r[0] for r in results), sum(r[1] for r in results), time.perf_counter() - started


def _post_small(port: int, count: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in range(count):
        body = json.dumps(
            {
                "uuid": str(uuid.uuid4()),
                "rule": "Terminal shell in container",
                "priority": "Warning",
                "time": "2026-01-01T00:00:00.000000000Z",
                "output": "A shell was spawned",
                "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": f"web-{n % 5}"},
            }
        ).encode()
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        conn.getresponse().read()
    conn.close()


def _post_large(port: int, seconds: float, client: int) -> tuple[int, int]:
    """POST distinct 900 KB alerts until ``seconds`` pass; (accepted, refused)."""
    filler = os.urandom(ALERT_BYTES // 2).hex()[: ALERT_BYTES - 600]
    deadline = time.monotonic() + seconds
    accepted = refused = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < deadline:
        body = json.dumps(
            {
                "uuid": str(uuid.uuid4()),
                "rule": "Terminal shell in container",
                "priority": "Warning",
                "time": "2026-01-01T00:00:00.000000000Z",
                "source": "syscall",
                "output": "A shell was spawned",
                "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": f"web-{client}",
                                  "proc.cmdline": filler},
            }
        ).encode()  # fmt: skip
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        if response.status == 200:
            accepted += 1
        else:
            refused += 1
            time.sleep(0.01)  # Retry-After, shortened: keep the pressure on
    conn.close()
    return accepted, refused


def _tree_hwm_mb(pid: int) -> float:
    """Summed VmHWM of ``pid`` and its descendants."""
    return sum(_status_mb(p, "VmHWM:") for p in _tree(pid))


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
        except OSError:
            continue
    return found


def _smaps_mb(pid: int, field: str) -> float:
    """A field of /proc/PID/smaps_rollup in MB (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_settled(pid: int) -> None:
    """Until the tree's PSS stops changing (start-up imports done), at most 10 s."""
    last = -1.0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(_smaps_mb(p, "Pss:") for p in _tree(pid))
        if abs(now - last) < 0.1:
            return
        last = now


def _wait_healthy(port: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.1)
    return False


if __name__ == "__main__":
    sys.exit(main())
