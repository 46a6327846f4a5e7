"""A partition's incidents handed from one correlator to another through a store continue as
if one correlator had seen the whole stream; partitions are stable; redeliveries the store
holds are skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubesentinel.models import Event, Incident, Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.scale.handover import HandoverCorrelator, StoreHandover
from kubesentinel.runtime.scale.partition import (
    partition_of,
    workload_from_header,
    workload_header,
)
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.store.open import open_store
from kubesentinel.runtime.workers import prepare
from tests.runtime.scale.harness import KUBESENTINEL

END = 2**63 - 1


def test_partition_is_stable_and_spread() -> None:
    # sha256("default/shop/Deployment/cart")[:8] big-endian, mod 8: the same on every host.
    assert partition_of("default/shop/Deployment/cart", 8) == partition_of(
        "default/shop/Deployment/cart", 8
    )
    assert partition_of("x", 1) == 0
    counts = [0] * 8
    for n in range(8000):
        counts[partition_of(f"default/ns/Deployment/app-{n}", 8)] += 1
    assert min(counts) > 800  # about 1000 each
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("x", 0)


def test_workload_header_round_trips_and_rejects_junk() -> None:
    workload = Workload("prod", "shop", "Deployment", "cart\u00e9")
    assert workload_from_header(workload_header(workload)) == workload
    for junk in ("", "{", "[1,2,3,4]", '["a","b","c"]', "null"):
        assert workload_from_header(junk) is None


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    out = tmp_path_factory.mktemp("sim")
    subprocess.run([*KUBESENTINEL, "simulate", "--out", str(out), "--hours", "1"], check=True,
                   capture_output=True)  # fmt: skip
    lines = (out / "falco.jsonl").read_bytes().splitlines()
    batch = [RawAlert(line, f"sim:{n}", 0) for n, line in enumerate(lines)]
    return prepare(batch, Enricher()).events


def _shape(incidents: list[Incident]) -> dict[str, tuple[Any, ...]]:
    last = {i.id: i for i in incidents}  # each incident's final state
    return {
        i.id: (i.workload.key, tuple((r.rule, r.count) for r in i.rules), tuple(i.event_ids),
               i.context, i.risk_score, i.tactics)
        for i in last.values()
    }  # fmt: skip


def test_incidents_handed_over_through_the_store_continue_unchanged(
    stream: list[Event], tmp_path: Path
) -> None:
    whole = Correlator()
    reference = whole.add(stream, 0) + whole.expire(END)

    half = len(stream) // 2
    first = Correlator()
    store = open_store(str(tmp_path / "vault.db"))
    try:
        for start in range(0, half, 256):
            events = stream[start : min(start + 256, half)]
            store.write(events, first.add(events, 0))
        assert first.open_count > 0, "nothing to hand over: pick another cut"
        second = Correlator()
        handover = StoreHandover(store, second, partitions=1)
        handover.claim(0)  # every open incident of partition 0 (all of them)
        assert second.open_count == first.open_count
        after = second.add(stream[half:], 0) + second.expire(END)
    finally:
        store.close()
    expected = _shape(reference)
    assert _shape([*_written(tmp_path), *after]) == expected
    assert len(expected) > 10


def _written(tmp_path: Path) -> list[Incident]:
    store = open_store(str(tmp_path / "vault.db"))
    try:
        return sorted(store.list_incidents(), key=lambda i: i.last_ns)
    finally:
        store.close()


def test_release_forgets_only_the_partitions_given_up(stream: list[Event]) -> None:
    correlator = Correlator()
    correlator.add(stream, 0)
    keys = correlator.open_workloads()
    assert len({partition_of(k, 4) for k in keys}) > 1
    handover = StoreHandover(store=SimpleNamespace(), correlator=correlator, partitions=4)  # type: ignore[arg-type]
    handover.owned = {0, 1, 2, 3}
    handover.release(3)
    assert all(partition_of(k, 4) != 3 for k in correlator.open_workloads())
    assert {k for k in keys if partition_of(k, 4) != 3} == set(correlator.open_workloads())


def test_redelivered_events_the_store_holds_are_not_correlated_again(
    stream: list[Event], postgres_url: str, tmp_path: Path
) -> None:
    store = open_store(postgres_url, signing_key=tmp_path / "key.pem")
    try:
        source = SimpleNamespace(redelivered=set(), partitions=1)
        correlator = HandoverCorrelator(store=store, source=source)
        done = stream[:500]
        store.write(done, correlator.add(done, 0))
        # A new owner gets the last 100 of them again (not acknowledged), then new ones.
        fresh = HandoverCorrelator(store=store, source=source)
        again = stream[400:600]
        source.redelivered.update(e.origin for e in stream[400:500])
        incidents = fresh.add(again, 0)
        assert fresh.redelivered_skipped == 100
        ids = {i for incident in incidents for i in incident.event_ids}
        assert not ids & {e.id for e in stream[400:500]}
        assert not source.redelivered  # checked once
    finally:
        store.close()


def test_analyzer_state_moves_with_the_partition_through_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    from kubesentinel.ai.analyzer import Analyzer
    from kubesentinel.ai.workload_state import export_workload, known_workloads
    from kubesentinel.runtime.scale.workload_states import WorkloadStates
    from tests.ai.helpers import normal_period

    events = normal_period(hours=3.0)
    cut = len(events) * 2 // 3
    base = Analyzer.fit(events[:cut])[0].to_state()
    store = open_store(postgres_url, signing_key=tmp_path / "key.pem")
    states = WorkloadStates(postgres_url)
    try:
        first = Analyzer.from_state(base)
        first.score_batch(events[cut:])
        learned = {k: export_workload(first, k) for k in known_workloads(first)}
        giver = StoreHandover(store, Correlator(), 1, analyzer=first, states=states)
        giver.claim(0)
        giver.release(0)  # saves every workload of partition 0, then forgets them here
        assert not known_workloads(first)

        second = Analyzer.from_state(base)
        taker = StoreHandover(store, Correlator(), 1, analyzer=second, states=states)
        taker.claim(0)
        assert {k: export_workload(second, k) for k in known_workloads(second)} == learned
    finally:
        states.close()
        store.close()
