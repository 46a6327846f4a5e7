"""`kubesentinel monitor` end to end through the real NATS JetStream server: every stored alert
is acknowledged, malformed ones are dead-lettered (and acknowledged: they are kept there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.cli import main
from kubesentinel.runtime.deadletter import read_dead_letter
from kubesentinel.runtime.sources.nats import subject_of
from tests.runtime.test_source_nats import URL, _run, sidekick, stream  # noqa: F401

pytestmark = pytest.mark.integration


async def _publish_raw(items: list[tuple[str, bytes]]) -> None:
    import nats

    nc = await nats.connect(URL)
    try:
        js = nc.jetstream()
        for subject, data in items:
            await js.publish(subject, data)
    finally:
        await nc.close()


async def _pending(stream_name: str, durable: str) -> tuple[int, int]:
    import nats

    nc = await nats.connect(URL)
    try:
        info: Any = await nc.jetstream().consumer_info(stream_name, durable)
        return int(info.num_pending), int(info.num_ack_pending)
    finally:
        await nc.close()


def test_monitor_consumes_acks_and_dead_letters(
    stream: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = f"{URL}/falco.>?stream={stream}&durable=e2e"
    store, dead = tmp_path / "ks.db", tmp_path / "dl.jsonl"
    # The first run creates the stream and the durable consumer; nothing is waiting yet.
    assert main(["monitor", "--source", uri, "--until-eof", "--store", str(store),
                 "--dead-letter", str(dead), "--no-k8s-lookup"]) == 0  # fmt: skip
    capsys.readouterr()
    alerts = [sidekick(n) for n in range(20)]
    items = [(subject_of(a["priority"], a["rule"]), json.dumps(a).encode()) for a in alerts]
    items.append(("falco.notice.garbage", b"\x00not json"))
    _run(_publish_raw(items))
    code = main(["monitor", "--source", uri, "--until-eof", "--format", "json",
                 "--store", str(store), "--dead-letter", str(dead), "--no-k8s-lookup"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["events_read"], summary["events_stored"], summary["malformed"]) == (21, 20, 1)
    assert _run(_pending(stream, "e2e")) == (0, 0)  # everything acknowledged after storing
    (bad,) = read_dead_letter(dead)
    assert bad.origin.startswith("nats:falco.notice.garbage")
    assert bad.data == b"\x00not json"


def _poison(n: int) -> bytes:
    """A falcosidekick payload whose output field holds a 5,000-digit integer: more than
    Python converts, so the stdlib decoder raises ValueError (not JSONDecodeError)."""
    text = json.dumps({**sidekick(n), "output_fields": {"k8s.pod.name": "web-1", "evil": 0}})
    return text.replace('"evil": 0', '"evil": ' + "9" * 5000).encode()


async def _publish_and_watch_terms(
    stream_name: str, durable: str, items: list[tuple[str, bytes]], command: list[str]
) -> tuple[bytes, list[int], tuple[int, int]]:
    """Publish ``items``, run the monitor ``command`` while listening to the server's
    advisories of terminated messages; (the monitor's stdout, terminated stream sequences,
    (num_pending, num_ack_pending) of the consumer afterwards)."""
    import asyncio
    import sys
    import time

    import nats

    nc = await nats.connect(URL)
    terminated: list[int] = []

    async def on_term(msg: Any) -> None:
        terminated.append(int(json.loads(msg.data)["stream_seq"]))

    try:
        js = nc.jetstream()
        await js.add_stream(name=stream_name, subjects=["falco.>"])
        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{stream_name}.{durable}"
        await nc.subscribe(advisory, cb=on_term)
        await nc.flush()
        for subject, data in items:
            await js.publish(subject, data)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubesentinel", *command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
        deadline = time.monotonic() + 5
        while not terminated and time.monotonic() < deadline:  # the advisory is asynchronous
            await asyncio.sleep(0.02)
        info: Any = await js.consumer_info(stream_name, durable)
        return out, terminated, (int(info.num_pending), int(info.num_ack_pending))
    finally:
        await nc.close()


def test_a_poison_message_is_dead_lettered_and_terminated_never_redelivered(
    stream: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    durable = "poison"
    uri = f"{URL}/falco.>?stream={stream}&durable={durable}"
    store, dead = tmp_path / "ks.db", tmp_path / "dl.jsonl"
    command = ["monitor", "--source", uri, "--until-eof", "--format", "json", "--store",
               str(store), "--dead-letter", str(dead), "--no-k8s-lookup"]  # fmt: skip
    subject = subject_of("Notice", "Terminal shell in container")
    poison = _poison(1)
    good = [json.dumps(sidekick(n)).encode() for n in (0, 2)]
    items = [(subject, good[0]), (subject, poison), (subject, good[1])]

    out, terminated, pending = _run(_publish_and_watch_terms(stream, durable, items, command))

    summary = json.loads(out)
    assert (summary["events_read"], summary["events_stored"], summary["malformed"]) == (3, 2, 1)
    opened = SQLiteStore(store)
    try:
        assert sum(i.event_count for i in opened.list_incidents()) == 2
    finally:
        opened.close()
    (record,) = read_dead_letter(dead)
    assert record.data == poison  # byte for byte
    assert record.origin == f"nats:{subject}#2"
    assert record.reason == "not JSON: an integer of more than 4300 digits"
    assert terminated == [2]  # the poison message was terminated, the good ones acknowledged
    assert pending == (0, 0)

    again, terminated, pending = _run(_watch_second_run(stream, durable, command))
    assert json.loads(again)["events_read"] == 0  # nothing is redelivered
    assert (terminated, pending) == ([], (0, 0))


async def _watch_second_run(
    stream_name: str, durable: str, command: list[str]
) -> tuple[bytes, list[int], tuple[int, int]]:
    import asyncio
    import sys

    import nats

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubesentinel", *command,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    nc = await nats.connect(URL)
    try:
        info: Any = await nc.jetstream().consumer_info(stream_name, durable)
        return out, [], (int(info.num_pending), int(info.num_ack_pending))
    finally:
        await nc.close()
