"""A scale-out deployment on this machine's NATS and PostgreSQL, for the integration test and
bench/scale_bench.py: its own streams (``KSSCALE_<hex>_IN`` on ``t<hex>.falco.>``, and
``KSSCALE_<hex>_PART`` on ``t<hex>.kubesentinel.part.>``), lease bucket and PostgreSQL schema,
all removed by ``cleanup``. Other tests' fixtures delete ``KSTEST_*`` streams on ``falco.>``:
nothing here is named or subscribed so."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

NATS_URL = os.environ.get("KUBESENTINEL_TEST_NATS_URL", "nats://127.0.0.1:4222")
POSTGRES_URL = os.environ.get(
    "KUBESENTINEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
KUBESENTINEL = [sys.executable, "-m", "kubesentinel"]


@dataclass
class Deployment:
    """Names and processes of one scale-out deployment under ``workdir``."""

    workdir: Path
    partitions: int = 8
    lease_ttl_s: float = 3.0
    ack_wait_s: float = 2.0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"t{self.tag}"

    @property
    def in_stream(self) -> str:
        return f"KSSCALE_{self.tag}_IN"

    @property
    def part_stream(self) -> str:
        return f"KSSCALE_{self.tag}_PART"

    @property
    def out_subject(self) -> str:
        return f"{self.prefix}.kubesentinel.part"

    @property
    def schema(self) -> str:
        return f"ks_scale_{self.tag}"

    @property
    def store_url(self) -> str:
        return f"{POSTGRES_URL}?schema={self.schema}"

    @property
    def config(self) -> Path:
        path = self.workdir / "config.yaml"
        if not path.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "forensics:\n"
                f"  storage_path: {self.workdir / 'forensics'}\n"
                f"  signing_key: {self.workdir / 'keys' / 'signing-key.pem'}\n"
                "  prune_interval_s: 0\n"
            )
        return path

    # -- input -------------------------------------------------------------------------------

    def publish(self, lines: Sequence[bytes]) -> int:
        """Falco JSON alerts on ``<prefix>.falco.<priority>.<rule>``, in order, as falcosidekick
        publishes them."""
        return asyncio.run(_publish(lines, self.prefix, self.in_stream))

    # -- processes ---------------------------------------------------------------------------

    def ingress_command(self, *more: str) -> list[str]:
        return [
            *KUBESENTINEL, "--config", str(self.config), "ingress",
            "--source", f"{NATS_URL}/{self.prefix}.falco.>?stream={self.in_stream}&ack_wait=3",
            "--partitions", str(self.partitions), "--out-subject", self.out_subject,
            "--out-stream", self.part_stream, "--no-k8s-lookup",
            "--dead-letter", str(self.workdir / "ingress-dead-letter.jsonl"), *more,
        ]  # fmt: skip

    def start_ingress(self, name: str = "ingress", *more: str) -> subprocess.Popen[bytes]:
        return self._start(name, self.ingress_command(*more))

    def start_worker(self, worker_id: str) -> subprocess.Popen[bytes]:
        return self._start(
            worker_id,
            [
                *KUBESENTINEL, "--config", str(self.config), "monitor",
                "--source", f"{NATS_URL}/{self.out_subject}", "--partitions",
                str(self.partitions), "--worker-id", worker_id, "--part-stream",
                self.part_stream, "--store", self.store_url, "--no-k8s-lookup", "--no-ai",
                "--lease-ttl", str(self.lease_ttl_s), "--part-ack-wait", str(self.ack_wait_s),
                "--dead-letter", str(self.workdir / f"{worker_id}-dead-letter.jsonl"),
                "--format", "json",
            ],
        )  # fmt: skip

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (
            (self.workdir / f"{name}.log").open("wb") as log,
            (self.workdir / f"{name}.out").open("wb") as out,
        ):  # the child has its own descriptors
            process = subprocess.Popen(command, stdout=out, stderr=log)
        self.processes[name] = process
        return process

    def log_of(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, timeout: float = 30.0) -> int:
        process = self.processes[name]
        if process.poll() is None:
            process.terminate()
        return process.wait(timeout)

    # -- observation -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        from kubesentinel.runtime.scale.status import collect

        return asyncio.run(
            collect(NATS_URL, out_stream=self.part_stream, ingress_stream=self.in_stream)
        )

    def partition_messages(self) -> int:
        """Messages in the partition stream."""
        return int(asyncio.run(_messages(self.part_stream)))

    def stored(self) -> tuple[int, int]:
        """(events in the vault, distinct event ids among them)."""
        rows = self.query("SELECT count(*), count(DISTINCT id) FROM events")
        return int(rows[0][0]), int(rows[0][1])

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = 'events'",
                (self.schema,),
            ).fetchone():
                return [(0, 0)]
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            return conn.execute(statement.encode()).fetchall()

    def cleanup(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        asyncio.run(_delete(self.in_stream, self.part_stream, f"{self.part_stream}_LEASES"))
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


def wait_for(
    condition: Callable[[], Any], deadline_s: float, what: str, every_s: float = 0.2
) -> Any:
    """``condition()``'s first true value; AssertionError naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(every_s)


def incidents_of(store_location: str, signing_key: Path | None = None) -> set[tuple[Any, ...]]:
    """Every incident of a store as (workload key, its rules, its signal ids in order)."""
    from kubesentinel.runtime.store.open import open_store

    store = open_store(store_location, signing_key=signing_key)
    try:
        return {
            (i.workload.key, tuple(sorted(r.rule for r in i.rules)), tuple(i.event_ids))
            for i in store.list_incidents()
        }
    finally:
        store.close()


def run_single(alerts_file: Path, workdir: Path, config: Path) -> tuple[Path, dict[str, Any]]:
    """The reference: one `monitor --source FILE` process into a SQLite vault; (the vault,
    its summary)."""
    db = workdir / "single.db"
    done = subprocess.run(
        [*KUBESENTINEL, "--config", str(config), "monitor", "--source", str(alerts_file),
         "--until-eof", "--store",
         str(db), "--no-k8s-lookup", "--no-ai", "--dead-letter", str(workdir / "single-dl.jsonl"),
         "--format", "json"],
        check=True, capture_output=True,
    )  # fmt: skip
    return db, json.loads(done.stdout)


def simulate(workdir: Path, hours: float, seed: int = 1) -> Path:
    out = workdir / "sim"
    subprocess.run(
        [*KUBESENTINEL, "simulate", "--out", str(out), "--hours", str(hours), "--seed", str(seed)],
        check=True,
        capture_output=True,
    )
    return out / "falco.jsonl"


async def _publish(lines: Sequence[bytes], prefix: str, stream: str, chunk: int = 500) -> int:
    import nats

    from kubesentinel.runtime.sources.nats import subject_of

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{prefix}.falco.>"])
        for start in range(0, len(lines), chunk):
            publications = []
            for line in lines[start : start + chunk]:
                alert = json.loads(line)
                subject = subject_of(alert.get("priority", "notice"), alert.get("rule", "none"))
                publications.append(js.publish(f"{prefix}.{subject}", line, stream=stream))
            await asyncio.gather(*publications)  # in order: one connection
        return len(lines)
    finally:
        await nc.close()


async def _messages(stream: str) -> int:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        try:
            info = await nc.jetstream().stream_info(stream)
        except NotFoundError:
            return 0
        return int(info.state.messages)
    finally:
        await nc.close()


async def _delete(*streams: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        for name in streams:
            try:
                if name.endswith("_LEASES"):
                    await js.delete_key_value(name)
                else:
                    await js.delete_stream(name)
            except Exception:  # noqa: S112 - already gone
                continue
    finally:
        await nc.close()


def owners(status: dict[str, Any]) -> Sequence[str | None]:
    return [part["owner"] for part in status["partitions"]]
