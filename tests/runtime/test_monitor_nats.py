"""`kubesentinel monitor` end to end through the real NATS JetStream server: every stored alert
is acknowledged, malformed ones are dead-lettered (and acknowledged: they are kept there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.cli import main
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
    (bad,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert bad["origin"].startswith("nats:falco.notice.garbage")
