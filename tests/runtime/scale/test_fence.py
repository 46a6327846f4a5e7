"""Fencing on the real PostgreSQL: a worker whose partition was claimed by a newer owner cannot
commit that partition's events or incidents; the rest of its write commits; a claim waits for
a write in flight and then sees what it wrote."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from kubesentinel.models import Event
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.scale.fence import PartitionFence, Token
from kubesentinel.runtime.scale.partition import partition_of
from kubesentinel.runtime.store.open import open_store
from kubesentinel.runtime.store.postgres import PostgresStore
from kubesentinel.runtime.store.urls import parse_postgres_url
from tests.ai.helpers import NS, alert, events_of

T0 = 1_767_225_600 * NS
SHELL = {"proc.name": "bash", "proc.pname": "nginx", "proc.exepath": "/bin/bash"}


def _pods_in_partitions() -> tuple[str, str]:
    """Two pod names whose Deployments fall in partitions 0 and 1 of 2."""
    found: dict[int, str] = {}
    for n in range(100):
        pod = f"app{n}-7d9f8b6c5d-x2x4z"
        found.setdefault(partition_of(f"default/shop/Deployment/app{n}", 2), pod)
        if len(found) == 2:
            return found[0], found[1]
    raise AssertionError("no two partitions found")


def _events(pods: tuple[str, ...], start_s: int, count: int) -> list[Event]:
    lines = [
        alert(T0 + (start_s + i) * NS, pod, SHELL, rule="Terminal shell in container",
              uuid=f"{pod}-{start_s + i}")
        for i in range(count)
        for pod in pods
    ]  # fmt: skip
    return events_of(lines, "default")


def _stored(store: PostgresStore) -> dict[int, int]:
    counts: dict[int, int] = {0: 0, 1: 0}
    for incident in store.list_incidents():
        part = partition_of(incident.workload.key, 2)
        counts[part] += len(store.stored_events_of(incident.id))
    return counts


def test_a_write_after_a_newer_claim_leaves_that_partition_to_the_new_owner(
    postgres_url: str, tmp_path: Path
) -> None:
    pods = _pods_in_partitions()
    lost: list[dict[int, int | None]] = []
    store = open_store(postgres_url, signing_key=tmp_path / "key.pem")
    assert isinstance(store, PostgresStore)
    old = PartitionFence(postgres_url, 2, "w1", lost.append)
    new = PartitionFence(postgres_url, 2, "w2", lambda parts: None)
    try:
        store.fence = old
        assert old.claim(0, Token(1, 10), 0)
        assert old.claim(1, Token(1, 11), 0)
        correlator = Correlator()
        first = _events(pods, 0, 3)
        store.write(first, correlator.add(first, 0))
        assert _stored(store) == {0: 3, 1: 3}

        assert new.claim(0, Token(1, 20), 0)  # w1 paused past its TTL; w2 took partition 0
        second = _events(pods, 3, 2)
        store.write(second, correlator.add(second, 0))
        assert lost == [{0: 10}]  # the revision it held: that lease is given up
        assert 0 not in old.tokens
        assert _stored(store) == {0: 3, 1: 5}  # partition 1 committed; 0 left to w2
        assert not old.claim(0, Token(1, 10), 0)  # a stale claim never lowers the token

        # A bucket created again (a later epoch) outranks every revision of the old one.
        assert old.claim(0, Token(2, 1), 0)
        assert not new.claim(0, Token(1, 20), 0)
        assert store.verify().ok
    finally:
        old.close()
        new.close()
        store.close()


def test_a_claim_waits_for_a_write_in_flight(postgres_url: str, tmp_path: Path) -> None:
    open_store(postgres_url, signing_key=tmp_path / "key.pem").close()  # the vault's schema
    old = PartitionFence(postgres_url, 2, "w1", lambda parts: None)
    new = PartitionFence(postgres_url, 2, "w2", lambda parts: None)
    target = parse_postgres_url(postgres_url)
    claimed = threading.Event()
    try:
        assert old.claim(0, Token(1, 10), 0)
        with psycopg.connect(target.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
            with conn.transaction():
                old.check(conn, [0])  # the write's check holds partition 0's row FOR SHARE

                def claim() -> None:
                    new.claim(0, Token(1, 20), 0)
                    claimed.set()

                thread = threading.Thread(target=claim)
                thread.start()
                assert not claimed.wait(0.5)  # the claim waits for the write to commit
            thread.join(10)
            assert claimed.is_set()
            with pytest.raises(Exception, match=r"claimed by w2"):
                old.check(conn, [0])
    finally:
        old.close()
        new.close()
