"""NatsSource against the real NATS JetStream server on 127.0.0.1:4222.

Messages are published the way falcosidekick's NATS output does (its JSON payload with
``uuid`` on ``falco.<priority>.<rule slug>``). Each test works on a stream of its own and
deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources import open_source
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.nats import NatsSource, subject_of
from tests.runtime.services import require_service

HOST, PORT = "127.0.0.1", 4222
URL = f"nats://{HOST}:{PORT}"

pytestmark = pytest.mark.integration


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _streams_on(subject: str) -> list[str]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(URL)
    try:
        try:
            return [await nc.jetstream().find_stream_name_by_subject(subject)]
        except NotFoundError:
            return []
    finally:
        await nc.close()


async def _delete_stream(name: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(URL)
    try:
        await nc.jetstream().delete_stream(name)
    except NotFoundError:
        pass
    finally:
        await nc.close()


async def _publish(alerts: list[dict[str, Any]]) -> None:
    import nats

    nc = await nats.connect(URL)
    try:
        js = nc.jetstream()
        for alert in alerts:
            await js.publish(
                subject_of(alert["priority"], alert["rule"]), json.dumps(alert).encode()
            )
    finally:
        await nc.close()


def sidekick(
    n: int, rule: str = "Terminal shell in container", priority: str = "Notice"
) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "output": f"Notice A shell was spawned in a container (n={n})",
        "priority": priority,
        "rule": rule,
        "time": "2024-05-06T16:31:56.746609046Z",
        "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": f"web-{n}"},
        "source": "syscall",
        "tags": ["container", "mitre_execution", "T1059"],
        "hostname": "node-1",
    }


@pytest.fixture
def stream() -> Iterator[str]:
    """A fresh stream name; any stream the test created under it is deleted afterwards."""
    require_service(HOST, PORT, "NATS")
    for name in _run(_streams_on("falco.>")):
        if name.startswith("KSTEST_"):
            _run(_delete_stream(name))  # left over by an interrupted run
        else:
            pytest.skip(f"stream {name!r} on this server already covers falco.>; tests would mix")
    name = f"KSTEST_{uuid.uuid4().hex[:12]}"
    yield name
    _run(_delete_stream(name))


def collect(src: NatsSource, count: int, timeout: float = 15.0) -> list[RawAlert]:
    got: list[RawAlert] = []
    deadline = time.monotonic() + timeout
    for batch in src.batches(100):
        got += batch
        if len(got) >= count or time.monotonic() > deadline:
            break
    return got


def uuids(items: list[RawAlert]) -> set[str]:
    return {json.loads(item.data)["uuid"] for item in items}


def test_subjects_follow_falcosidekick() -> None:
    assert subject_of("Notice", "Terminal shell in container") == (
        "falco.notice.terminal_shell_in_container"
    )
    assert subject_of("Informational", "Attach/Exec Pod") == "falco.informational.attach_exec_pod"
    assert subject_of("Warning", "Contact K8S API Server From Container") == (
        "falco.warning.contact_k8s_api_server_from_container"
    )
    assert subject_of("Critical", "  (Sandbox) Drop & execute!  ") == (
        "falco.critical.sandbox_drop_execute"
    )


def test_consumes_creates_the_stream_and_acks_after_processing(stream: str) -> None:
    src = NatsSource(URL, durable="ks-test", stream=stream, queue_size=16)
    try:
        alerts = [sidekick(n) for n in range(3)] + [
            sidekick(9, "Read sensitive file untrusted", "Warning")
        ]
        _run(_publish(alerts))
        got = collect(src, 4)
        assert [json.loads(item.data) for item in got] == alerts
        assert got[0].origin == "nats:falco.notice.terminal_shell_in_container#1"
        assert got[3].origin == "nats:falco.warning.read_sensitive_file_untrusted#4"
        assert all(item.ack is not None for item in got)
        for item in got:
            assert item.ack is not None
            item.ack()
    finally:
        src.close()
    again = NatsSource(URL, durable="ks-test", stream=stream, ack_wait_s=0.2)
    try:
        assert collect(again, 1, timeout=0.6) == []  # all acknowledged: nothing comes back
    finally:
        again.close()


def test_unacked_messages_are_redelivered_after_a_reopen(stream: str) -> None:
    src = NatsSource(URL, durable="ks-crash", stream=stream, ack_wait_s=0.3)
    try:
        alerts = [sidekick(n) for n in range(5)]
        _run(_publish(alerts))
        got = collect(src, 5)
        assert len(got) == 5
        acked, lost = got[:3], got[3:]
        for item in acked:
            assert item.ack is not None
            item.ack()  # stored; the other two were in a batch that never got committed
    finally:
        src.close()  # as good as a crash for the two unacknowledged ones
    reopened = NatsSource(URL, durable="ks-crash", stream=stream, ack_wait_s=0.3)
    try:
        again = collect(reopened, 2)
        assert uuids(again) == uuids(lost)
        for item in again:
            assert item.ack is not None
            item.ack()
        assert collect(reopened, 1, timeout=0.5) == []  # acknowledged now: no more redelivery
    finally:
        reopened.close()


def test_messages_never_handed_out_are_given_back_at_close(stream: str) -> None:
    src = NatsSource(URL, durable="ks-nak", stream=stream, ack_wait_s=30)
    try:
        alerts = [sidekick(n) for n in range(3)]
        _run(_publish(alerts))
        deadline = time.monotonic() + 15
        while len(src.queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(src.queue) == 3
    finally:
        src.close()  # nak: redelivered in a second, not after the 30 s ack_wait
    reopened = NatsSource(URL, durable="ks-nak", stream=stream, ack_wait_s=30)
    try:
        assert uuids(collect(reopened, 3)) == {a["uuid"] for a in alerts}
    finally:
        reopened.close()


def test_a_close_during_iteration_lets_the_batch_in_hand_be_acknowledged(stream: str) -> None:
    src = NatsSource(URL, durable="ks-signal", stream=stream, ack_wait_s=0.3)
    _run(_publish([sidekick(n) for n in range(3)]))
    batches = src.batches(100)
    got: list[RawAlert] = []
    while len(got) < 3:
        got += next(batches)
    src.close()  # what the monitor's SIGTERM handler does while the pipeline holds a batch
    for item in got:  # ... and the pipeline still commits and acknowledges it
        assert item.ack is not None
        item.ack()
    assert list(batches) in ([], [[]])  # the generator ends and finishes the shutdown
    reopened = NatsSource(URL, durable="ks-signal", stream=stream, ack_wait_s=0.3)
    try:
        assert collect(reopened, 1, timeout=0.6) == []  # the acks reached the server
    finally:
        reopened.close()


def test_open_source_reads_the_subject_and_query_from_the_uri(stream: str) -> None:
    src = open_source(f"{URL}/falco.warning.>?durable=ks-uri&stream={stream}", queue_size=8)
    try:
        assert isinstance(src, NatsSource)
        assert (src.subject, src.durable, src.stream) == ("falco.warning.>", "ks-uri", stream)
        _run(_publish([sidekick(1), sidekick(2, "Read sensitive file untrusted", "Warning")]))
        got = collect(src, 1)
        assert [json.loads(item.data)["rule"] for item in got] == ["Read sensitive file untrusted"]
    finally:
        src.close()


def test_a_durable_bound_to_another_subject_is_refused(stream: str) -> None:
    NatsSource(URL, "falco.notice.>", durable="ks-bound", stream=stream).close()
    with pytest.raises(SourceError, match=r"reads 'falco\.notice\.>'") as info:
        NatsSource(URL, "falco.warning.>", durable="ks-bound", stream=stream)
    assert "durable" in (info.value.hint or "")


def test_an_unreachable_server_is_a_source_error_with_a_hint() -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot connect to NATS") as info:
        NatsSource("nats://127.0.0.1:1", connect_timeout_s=0.5)
    assert "nats-server" in (info.value.hint or "")
    assert time.monotonic() - started < 2
