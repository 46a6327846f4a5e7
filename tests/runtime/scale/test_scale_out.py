"""Scale-out end to end on the real NATS JetStream and PostgreSQL: ingress, two worker
processes, one SIGKILLed half-way; every event stored once, the same incidents as one
`monitor --source FILE` process, and a vault that verifies.

27 simulated hours: 103,220 alerts, as the issue asks (100,000); about 40 s here.
``KUBESENTINEL_SCALE_TEST_HOURS=3`` runs the same test on 11,526 alerts in about 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.scale.harness import (
    KUBESENTINEL,
    Deployment,
    incidents_of,
    owners,
    run_single,
    simulate,
    wait_for,
)
from tests.runtime.services import require_service

pytestmark = pytest.mark.integration

HOURS = float(os.environ.get("KUBESENTINEL_SCALE_TEST_HOURS", "27"))
INGRESS_HOURS = 3.0


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_service("127.0.0.1", 4222, "NATS")
    require_service("127.0.0.1", 5432, "PostgreSQL")
    dep = Deployment(tmp_path / "deployment", partitions=8, lease_ttl_s=3.0, ack_wait_s=2.0)
    try:
        yield dep
    finally:
        dep.cleanup()


def test_two_workers_one_killed_store_every_event_once_and_the_same_incidents(
    deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    alerts = simulate(tmp_path, HOURS)
    single_db, single = run_single(alerts, tmp_path, dep.config)
    expected = single["events_stored"]
    lines = alerts.read_bytes().splitlines()
    assert len(lines) == single["events_read"]
    first = len(lines) * 4 // 10

    dep.publish(lines[:first])
    dep.start_worker("w1")
    wait_for(lambda: owners(dep.status()).count("w1") == dep.partitions, 30, "w1 to own all")
    dep.start_ingress()
    wait_for(lambda: _drained(dep), 120, "w1 to store the first 40%")
    dep.start_worker("w2")  # joins: w1 releases half of the partitions to it
    wait_for(lambda: owners(dep.status()).count("w2") == dep.partitions // 2, 30, "rebalance")
    dep.publish(lines[first:])
    wait_for(lambda: dep.stored()[0] >= expected * 7 // 10, 120, "70% stored")
    dep.processes["w2"].kill()  # SIGKILL: no release, nothing acknowledged after this
    dep.processes["w2"].wait(10)
    assert dep.stored()[0] < expected, "the kill came too late to prove anything"

    # w2's leases expire, w1 takes its partitions and their unacknowledged alerts.
    wait_for(lambda: owners(dep.status()).count("w1") == dep.partitions, 60, "the takeover")
    wait_for(lambda: dep.stored()[0] >= expected, 180, "every event stored")
    wait_for(lambda: _drained(dep), 60, "every partition acknowledged")
    assert dep.stop("w1") == 0
    assert dep.stop("ingress") == 0
    w1 = json.loads((dep.workdir / "w1.out").read_text())
    assert w1["events_read"] < expected  # w2 stored and acknowledged some before it died

    assert dep.stored() == (expected, expected)  # every event once, none twice
    assert incidents_of(dep.store_url, dep.workdir / "keys" / "signing-key.pem") == (
        incidents_of(str(single_db))
    )
    assert "restored from the store" in dep.log_of("w1") + dep.log_of("w2")
    verify = subprocess.run(
        [*KUBESENTINEL, "--config", str(dep.config), "vault", "verify", "--store", dep.store_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_status_reports_workers_partitions_lag_and_vault(deployment: Deployment) -> None:
    dep = deployment
    dep.start_worker("solo")
    wait_for(lambda: owners(dep.status()).count("solo") == dep.partitions, 30, "solo to own all")
    out = subprocess.run(
        [*KUBESENTINEL, "--config", str(dep.config), "status", "--nats", "nats://127.0.0.1:4222",
         "--out-stream", dep.part_stream, "--ingress-stream", dep.in_stream,
         "--store", dep.store_url, "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert [w["id"] for w in report["workers"]] == ["solo"]
    assert report["workers"][0]["partitions"] == list(range(dep.partitions))
    assert [p["owner"] for p in report["partitions"]] == ["solo"] * dep.partitions
    assert all(p["lag"] == 0 for p in report["partitions"])
    assert report["vault"]["events"] == 0
    table = subprocess.run(
        [*KUBESENTINEL, "status", "--nats", "nats://127.0.0.1:4222", "--out-stream",
         dep.part_stream],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "workers (1 live)" in table
    assert "solo " in table
    assert "heartbeat" in table
    assert dep.stop("solo") == 0
    # A clean stop gives every lease back at once.
    assert owners(dep.status()) == [None] * dep.partitions


def _drained(dep: Deployment) -> bool:
    status = dep.status()
    ingress = status["ingress"]
    return (
        all(p["lag"] == 0 for p in status["partitions"])
        and ingress is not None
        and ingress["pending"] + ingress["ack_pending"] == 0
    )


def test_ingress_killed_and_restarted_publishes_each_event_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    alerts = simulate(tmp_path, INGRESS_HOURS)
    _, single = run_single(alerts, tmp_path, dep.config)
    dep.publish(alerts.read_bytes().splitlines())
    dep.start_ingress("ingress-1")
    wait_for(lambda: dep.partition_messages() >= single["events_stored"] // 3, 60, "a third")
    dep.processes["ingress-1"].kill()  # SIGKILL: its last publications are not acknowledged
    dep.processes["ingress-1"].wait(10)
    assert dep.partition_messages() < single["events_stored"]
    # The restarted ingress gets the unacknowledged input again (after the consumer's
    # ack_wait) and republishes it; the stream's duplicate window drops what it already has.
    dep.start_ingress("ingress-2")
    wait_for(lambda: _drained(dep), 120, "the input acknowledged")
    assert dep.stop("ingress-2") == 0
    assert dep.partition_messages() == single["events_stored"]


def test_redelivered_alerts_already_stored_are_not_correlated_twice(
    deployment: Deployment, tmp_path: Path
) -> None:
    """An ack_wait shorter than the time an alert waits in the worker's queue makes the server
    deliver it again while the first copy is still queued: the second copy arrives after the
    first was committed, and must change nothing."""
    dep = deployment
    dep.ack_wait_s = 0.05
    alerts = simulate(tmp_path, INGRESS_HOURS)
    single_db, single = run_single(alerts, tmp_path, dep.config)
    expected = single["events_stored"]
    dep.publish(alerts.read_bytes().splitlines())
    dep.start_ingress()
    wait_for(lambda: _drained_ingress(dep), 120, "the partitions filled")
    dep.start_worker("slow")
    wait_for(lambda: dep.stored()[0] >= expected, 180, "every event stored")
    wait_for(lambda: _drained(dep), 60, "every partition acknowledged")
    assert dep.stop("slow") == 0
    assert dep.stored() == (expected, expected)
    assert incidents_of(dep.store_url, dep.workdir / "keys" / "signing-key.pem") == (
        incidents_of(str(single_db))
    )
    assert "were correlated already" in dep.log_of("slow")


def _drained_ingress(dep: Deployment) -> bool:
    ingress = dep.status()["ingress"]
    return ingress is not None and ingress["pending"] + ingress["ack_pending"] == 0


def test_a_worker_paused_past_its_lease_commits_nothing_of_the_partitions_it_lost(
    deployment: Deployment, tmp_path: Path
) -> None:
    """SIGSTOP a worker in the middle of its backlog for longer than its lease TTL: another
    worker takes every partition. On SIGCONT the paused worker still holds batches of alerts
    for partitions it lost; its writes are fenced (a newer owner's token is in the store) and
    their alerts go back to the stream: every event is stored once and the vault verifies.
    Incidents are not compared with a single process here: alerts the paused worker held come
    back to the new owner after later ones (docs/scale-out.md, "Fencing")."""
    dep = deployment
    alerts = simulate(tmp_path, INGRESS_HOURS)
    _, single = run_single(alerts, tmp_path, dep.config)
    expected = single["events_stored"]
    dep.publish(alerts.read_bytes().splitlines())
    dep.start_ingress()
    wait_for(lambda: _drained_ingress(dep), 120, "the partitions filled")
    dep.start_worker("w1")
    wait_for(lambda: dep.stored()[0] > 0, 60, "w1's first commit", every_s=0.01)
    w1 = dep.processes["w1"]
    w1.send_signal(signal.SIGSTOP)
    try:
        paused_at = dep.stored()[0]
        assert paused_at < expected, "w1 finished before the pause: nothing to prove"
        dep.start_worker("w2")
        wait_for(lambda: owners(dep.status()).count("w2") == dep.partitions, 60, "w2 takes all")
        wait_for(lambda: dep.stored()[0] > paused_at, 60, "w2 to store")
    finally:
        w1.send_signal(signal.SIGCONT)
    wait_for(lambda: dep.stored()[0] >= expected, 180, "every event stored")
    wait_for(lambda: _drained(dep), 60, "every partition acknowledged")
    assert dep.stop("w1") == 0
    assert dep.stop("w2") == 0
    assert dep.stop("ingress") == 0
    assert dep.stored() == (expected, expected)
    assert "were claimed by w2" in dep.log_of("w1")  # its batches in hand were fenced
    verify = subprocess.run(
        [*KUBESENTINEL, "--config", str(dep.config), "vault", "verify", "--store", dep.store_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
