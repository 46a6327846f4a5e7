"""prepare() and the Preparer: per-item isolation of failures, and worker processes that are
spawned (never forked once threads run) and give what the inline path gives."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from kubesentinel.models import Event, Incident
from kubesentinel.runtime import workers
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.identity import CachedOwnerLookup
from kubesentinel.runtime.rejects import add_each, reject_events
from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.workers import Preparer, prepare


def _alert(pod: str, n: int = 0) -> bytes:
    return json.dumps(
        {
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "time": f"2026-01-01T00:00:{n % 60:02d}.000000000Z",
            "output": "shell",
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": pod},
            "tags": ["mitre_execution"],
        }
    ).encode()


class FailingLookup:
    """An owner lookup with a bug: it raises for one pod (the contract says it never does)."""

    def owner_of(self, namespace: str, pod: str) -> tuple[str, str] | None:
        if pod == "boom":
            raise RuntimeError("lookup exploded\non two lines")
        return ("Deployment", pod.rsplit("-", 1)[0])


def test_an_item_whose_enrichment_raises_is_rejected_alone() -> None:
    pods = ["web-1", "web-2", "boom", "web-3"]
    batch = [RawAlert(_alert(pod, n), f"f:{n}", n) for n, pod in enumerate(pods)]
    batch.insert(1, RawAlert(b"{broken", "f:bad", 9))
    prepared = prepare(batch, Enricher(lookup=FailingLookup()))
    assert [e.pod for e in prepared.events] == ["web-1", "web-2", "web-3"]
    assert [(r.origin, r.index, r.data) for r in prepared.rejected] == [
        ("f:bad", 1, b"{broken"),
        ("f:2", 3, batch[3].data),
    ]
    assert prepared.rejected[1].reason == (
        "internal error while enriching: RuntimeError: lookup exploded on two lines"
    )


def test_an_item_that_trips_the_parser_is_rejected_alone() -> None:
    batch = [
        RawAlert(_alert("web-1"), "f:1", 1),
        RawAlert(object(), "f:2", 2),  # type: ignore[arg-type] - a source with a bug
        RawAlert(_alert("web-2"), "f:3", 3),
    ]
    prepared = prepare(batch, Enricher())
    assert [e.origin for e in prepared.events] == ["f:1", "f:3"]
    (rejected,) = prepared.rejected
    assert rejected.reason.startswith("internal error while parsing: TypeError: ")
    assert (rejected.index, rejected.data) == (1, b"")


def test_the_enricher_pickles_with_its_owner_lookup() -> None:
    enricher = Enricher(cluster="c1", lookup=CachedOwnerLookup(_owner_by_name, ttl_s=60))
    batch = [RawAlert(_alert(f"api-{n}"), f"f:{n}", n) for n in range(3)]
    copy = pickle.loads(pickle.dumps(enricher))  # noqa: S301 - our own object, as Pool sends it
    assert prepare(batch, copy) == prepare(batch, enricher)


def _owner_by_name(namespace: str, pod: str) -> tuple[str, str] | None:
    return ("StatefulSet", pod.rsplit("-", 1)[0])


def test_worker_processes_are_spawned_and_agree_with_the_inline_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "PARALLEL_MIN_CORES", 1)  # workers even on a 2-core machine
    lines = [line.encode() for line in simulate(seed=3, hours=0.25, events_per_s=1.0).lines()]
    lines[5:5] = [b"{broken", b'{"rule": "x", "priority": "Warning", "a": ' + b"9" * 5000 + b"}"]
    batches = [
        [RawAlert(line, f"s:{start + n}", start + n) for n, line in enumerate(lines[start:][:50])]
        for start in range(0, len(lines), 50)
    ]
    enricher = Enricher(cluster="c1")
    inline = [prepare(batch, enricher) for batch in batches]

    # A thread is running, as in the monitor: forking now could deadlock the child.
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Preparer(Enricher(cluster="c1"), workers=2) as preparer:
                results = list(preparer.prepare(iter(batches)))
                children = [_command_line(c.pid) for c in multiprocessing.active_children()]
    finally:
        stop.set()
        busy.join()
    assert [w for w in caught if "fork" in str(w.message)] == []
    assert children, "the Preparer started no worker process"
    # A forked child runs the parent's command line; a spawned one an interpreter of its own.
    own = _command_line(None)
    assert own is None or all(child != own for child in children)
    assert [batch for batch, _ in results] == batches
    assert [prepared for _, prepared in results] == inline
    assert sum(len(p.rejected) for p in inline) == 2


def _command_line(pid: int | None) -> bytes | None:
    path = Path(f"/proc/{pid or 'self'}/cmdline")
    return path.read_bytes() if path.exists() else None


class _BrokenCorrelator(Correlator):
    """The real correlator with a bug for one rule (none is known: the fuzz test looks)."""

    def add(self, events: Sequence[Event], now_ns: int) -> list[Incident]:
        if any(event.rule == "boom" for event in events):
            raise ValueError("correlator bug")
        return super().add(events, now_ns)


def test_a_correlation_failure_rejects_only_the_event_at_fault() -> None:
    rules = ["Terminal shell in container", "boom", "Read sensitive file untrusted"]
    batch = [
        RawAlert(b"  " + _alert("web-1", n).replace(b"Terminal shell in container", rule.encode()),
                 "http:127.0.0.1", n)
        for n, rule in enumerate(rules)
    ]  # fmt: skip
    prepared = prepare(batch, Enricher())
    correlator = _BrokenCorrelator(window_s=60)
    with pytest.raises(ValueError, match="correlator bug"):
        correlator.add(prepared.events, 0)
    incidents, failed = add_each(correlator, prepared.events, 0)
    (incident,) = incidents
    assert incident.event_count == 2
    (rejected,) = reject_events(failed, batch, "correlating")
    assert (rejected.index, rejected.data) == (1, batch[1].data)  # the bytes as received
    assert rejected.reason == "internal error while correlating: ValueError: correlator bug"


def test_an_owner_lookup_on_a_given_api_client_says_why_it_cannot_go_to_a_worker() -> None:
    from kubernetes import client

    from kubesentinel.runtime.k8s_owners import KubernetesOwnerLookup

    lookup = KubernetesOwnerLookup(
        client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    )
    with pytest.raises(TypeError, match="from_kubeconfig"):
        pickle.dumps(Enricher(lookup=CachedOwnerLookup(lookup.owner_of)))
