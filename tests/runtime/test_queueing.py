"""AlertQueue: bounded in alerts and in bytes; batches cut by count and bytes; one loop."""

from __future__ import annotations

import threading

import pytest

from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.queueing import AlertQueue, live_batches


def item(size: int, n: int = 0) -> RawAlert:
    return RawAlert(b"x" * size, f"test:{n}", 0)


def test_full_by_count_or_by_bytes_refuses_without_waiting() -> None:
    by_count = AlertQueue(max_items=2, max_bytes=1000)
    assert [by_count.offer(item(1, n)) for n in range(3)] == [True, True, False]
    by_bytes = AlertQueue(max_items=100, max_bytes=1000)
    assert [by_bytes.offer(item(400, n)) for n in range(3)] == [True, True, False]
    assert by_bytes.bytes == 800
    assert by_bytes.offer(item(200))  # still room for a small one


def test_one_alert_larger_than_the_budget_passes_an_empty_queue() -> None:
    q = AlertQueue(max_items=10, max_bytes=100)
    assert q.offer(item(500))
    assert not q.offer(item(1))


def test_take_cuts_a_batch_by_bytes_and_frees_the_room() -> None:
    q = AlertQueue(max_items=100, max_bytes=10_000)
    assert q.offer_many([item(1000, n) for n in range(8)]) == 8
    batch = q.take(max_batch=100, timeout=0, max_bytes=2500)
    assert [i.origin for i in batch] == ["test:0", "test:1", "test:2"]  # 3,000 >= 2,500: cut
    assert (len(q), q.bytes) == (5, 5000)
    assert len(q.take(max_batch=2, timeout=0)) == 2


def test_put_waits_for_room_and_gives_up_after_its_timeout() -> None:
    q = AlertQueue(max_items=1)
    assert q.put(item(1, 0), timeout=0)
    assert not q.put(item(1, 1), timeout=0.01)
    taker = threading.Timer(0.05, lambda: q.take(1, 0))
    taker.start()
    assert q.put(item(1, 2), timeout=10)  # woken when the taker made room
    taker.join()
    assert [i.origin for i in q.take_all()] == ["test:2"]


def test_live_batches_idle_then_end_when_told() -> None:
    q = AlertQueue(max_items=10)
    ended = threading.Event()
    batches = live_batches(q, 5, idle_s=0.01, ended=ended.is_set)
    assert next(batches) == []  # idle: the pipeline may expire incidents
    q.offer_many([item(1, n) for n in range(7)])
    assert len(next(batches)) == 5
    ended.set()
    assert [len(b) for b in batches] == [2]  # what was queued is still handed out


def test_a_zero_sized_queue_is_refused() -> None:
    with pytest.raises(ValueError, match="room"):
        AlertQueue(max_items=0)
