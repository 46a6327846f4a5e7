"""StoreProcess: writes committed by a real child process, in order, acknowledged after commit."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from kubesentinel.errors import StoreError
from kubesentinel.models import Event, Priority, Workload
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.sqlite import EncodedWrite, SQLiteStore, encode_write
from kubesentinel.runtime.store.writer import StoreProcess

S = 1_000_000_000
T0 = 1_767_225_600 * S
WEB = Workload("default", "prod", "Deployment", "web")


def event(event_id: str, at_s: float) -> Event:
    time_ns = T0 + int(at_s * S)
    return Event(
        event_id, time_ns, time_ns, "Terminal shell in container", Priority.WARNING, "syscall",
        "node-1", WEB, "web-0", None, None, ("execution",), ("T1059",), (), "a shell",
        {"proc.name": "bash", "proc.cmdline": f"bash -c {event_id}"}, f"test:{event_id}",
    )  # fmt: skip


def _count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        db.close()


def _submit_then_close(
    writer: StoreProcess,
    encoded: EncodedWrite,
    times: int,
    done: Callable[[StoreError | None], None] = lambda error: None,
) -> None:
    """A failure is raised by a later submit, or at the latest by close."""
    for _ in range(times):
        writer.submit(encoded, done)
    writer.close()


def test_writes_are_committed_in_order_before_their_acknowledgement(tmp_path: Path) -> None:
    path = tmp_path / "ks.db"
    SQLiteStore(path).close()  # created here, written by the child
    correlator = Correlator()
    seen_at_ack: list[int] = []
    writer = StoreProcess(path)
    for batch in range(5):
        events = [event(f"{batch}-{n}", batch * 10 + n) for n in range(100)]
        encoded = encode_write(events, correlator.add(events, events[-1].time_ns))
        assert encoded is not None
        writer.submit(encoded, lambda error: seen_at_ack.append(_count(path)))
    writer.close()
    # Each batch is stored when it is acknowledged (later ones may be already, too).
    assert len(seen_at_ack) == 5
    assert all(seen >= 100 * (n + 1) for n, seen in enumerate(seen_at_ack))
    assert seen_at_ack == sorted(seen_at_ack)
    with SQLiteStore(path) as store:
        (incident,) = store.list_incidents()
        assert incident.event_count == 500
        assert [e.id for e in store.events_of(incident.id)][:2] == ["0-0", "0-1"]


def test_a_failed_write_is_raised_and_nothing_after_it_is_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "ks.db"
    SQLiteStore(path).close()
    good = encode_write([event("a", 0)], [])
    assert good is not None
    bad = encode_write([event("b", 1)], [])
    assert bad is not None
    facets = orjson.loads(bad.facets)
    facets[0][0] = None  # rule NULL: the NOT NULL constraint refuses it
    bad = dataclasses.replace(bad, facets=orjson.dumps(facets))
    acked: list[str] = []
    failed: list[str] = []

    def settle(name: str) -> Callable[[StoreError | None], None]:
        return lambda error: (acked if error is None else failed).append(name)

    writer = StoreProcess(path)
    writer.submit(good, settle("good"))
    writer.submit(bad, settle("bad"))
    with pytest.raises(StoreError, match="NOT NULL") as caught:
        _submit_then_close(writer, good, 3, settle("after"))
    assert caught.value.file == str(path)
    assert acked == ["good"]
    assert failed[0] == "bad"  # every write not committed is settled as failed
    assert set(failed) == {"bad", "after"}
    assert _count(path) == 1


def test_a_writer_that_dies_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "ks.db"
    SQLiteStore(path).close()
    writer = StoreProcess(path)
    writer._process.kill()
    writer._process.wait()
    encoded = encode_write([event("a", 0)], [])
    assert encoded is not None
    with pytest.raises(StoreError, match="writer process"):
        _submit_then_close(writer, encoded, 1)


def test_a_store_the_writer_cannot_open_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "ks.db"
    path.write_bytes(b"not a database at all\n" * 100)
    writer = StoreProcess(path)
    with pytest.raises(StoreError, match="corrupt"):
        _submit_then_close(writer, EncodedWrite(b"[]", b"[]", b"", b"[]", b"[]"), 1)
