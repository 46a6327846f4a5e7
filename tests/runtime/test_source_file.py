"""StreamSource: batches, origins with line numbers, follow with rotation, bounded lines."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources.file import LineSplitter, StreamSource
from kubesentinel.runtime.sources.interface import RawAlert
from tests.conftest import shared_path

POLL = 0.02


def _all(source: StreamSource, max_batch: int = 1000) -> list[RawAlert]:
    return [item for batch in source.batches(max_batch) for item in batch]


def test_replays_every_real_alert_with_its_line_number() -> None:
    path = shared_path("falco", "samples", "alerts.jsonl")
    lines = path.read_bytes().splitlines()
    items = _all(StreamSource(str(path)))
    assert [item.data for item in items] == lines
    assert [item.origin for item in items] == [f"{path}:{n}" for n in range(1, len(lines) + 1)]
    assert all(item.ack is None and item.received_ns > 0 for item in items)


def test_batches_respect_max_batch_and_end_at_eof(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(25)))
    sizes = [len(batch) for batch in StreamSource(str(path)).batches(10)]
    assert sizes == [10, 10, 5]


def test_blank_lines_crlf_and_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n   \n{"b": 2}\n{"c": 3}')
    items = _all(StreamSource(str(path)))
    assert [(item.origin.rsplit(":", 1)[1], item.data) for item in items] == [
        ("1", b'{"a": 1}'),
        ("4", b'{"b": 2}'),
        ("5", b'{"c": 3}'),
    ]


def test_long_lines_are_yielded_whole_up_to_the_cap_then_cut_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    fits = b'{"x": "' + b"a" * 80 + b'"}'  # 90 bytes, under the 100-byte cap
    huge = b'{"x": "' + b"b" * 10_000 + b'"}'
    path.write_bytes(fits + b"\n" + huge + b"\n" + b'{"after": 1}\n' + huge)
    items = _all(StreamSource(str(path), max_line=100))
    assert [item.origin for item in items] == [
        f"{path}:1",
        f"{path}:2 (truncated)",
        f"{path}:3",
        f"{path}:4 (truncated)",
    ]
    assert items[0].data == fits
    assert items[1].data == huge[:100]
    assert items[2].data == b'{"after": 1}'


def test_line_splitter_bounds_memory_across_chunks() -> None:
    splitter = LineSplitter(max_line=8)
    out = splitter.feed(b"abc")
    out += splitter.feed(b"defghijk")  # 11 bytes without a newline: cut now, rest dropped
    out += splitter.feed(b"lmnop" * 1000)
    out += splitter.feed(b"q\nshort\n")
    out += splitter.flush()
    assert out == [(1, b"abcdefgh", True), (2, b"short", False)]
    assert splitter.line == 2


def test_stdin_pipe_ends_at_eof(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b'{"a": 1}\n{"b": 2}\n')
    os.close(write_fd)
    with open(read_fd, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        source = StreamSource("-")
        assert source.name == "stdin"
        items = _all(source)
    assert [(item.origin, item.data) for item in items] == [
        ("stdin:1", b'{"a": 1}'),
        ("stdin:2", b'{"b": 2}'),
    ]


def test_a_live_pipe_yields_empty_batches_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        source = StreamSource("-", poll_s=POLL)
        batches = source.batches(100)
        assert next(batches) == []  # nothing yet: idle, not blocked
        os.write(write_fd, b'{"a": 1}\n{"b"')
        got = next(batches)
        while not got:
            got = next(batches)
        assert [item.data for item in got] == [b'{"a": 1}']  # the half line waits
        os.write(write_fd, b": 2}\n")
        os.close(write_fd)
        rest = [item for batch in batches for item in batch]
    assert [(item.origin, item.data) for item in rest] == [("stdin:2", b'{"b": 2}')]


def test_follow_tails_growth_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "falco.jsonl"
    path.write_bytes(b'{"n": 1}\n')
    source = StreamSource(str(path), follow=True, poll_s=POLL)
    seen: list[RawAlert] = []
    progress = threading.Condition()

    def wait_for(count: int) -> None:
        with progress:
            assert progress.wait_for(lambda: len(seen) >= count, timeout=2), seen

    def writer() -> None:
        wait_for(1)
        with path.open("ab") as f:  # growth, with a line written in two parts
            f.write(b'{"n": 2}\n{"n"')
            f.flush()
            time.sleep(3 * POLL)
            f.write(b": 3}\n")
        wait_for(3)
        with path.open("ab") as f:  # written to the old file just before the rename: kept
            f.write(b'{"n": 4}\n')
        path.rename(tmp_path / "falco.jsonl.1")  # logrotate's create mode
        path.write_bytes(b'{"n": 5}\n{"n": 6}\n')
        wait_for(6)
        with path.open("r+b") as f:  # copytruncate
            f.truncate(0)
        time.sleep(3 * POLL)
        path.write_bytes(b'{"n": 7}\n')
        wait_for(7)
        source.close()

    thread = threading.Thread(target=writer)
    thread.start()
    empty = 0
    for batch in source.batches(100):
        empty += not batch
        with progress:
            seen.extend(batch)
            progress.notify_all()
    thread.join(timeout=2)
    assert [item.data for item in seen] == [b'{"n": %d}' % n for n in range(1, 8)]
    assert [item.origin.rsplit(":", 1)[1] for item in seen] == ["1", "2", "3", "4", "1", "2", "1"]
    assert empty > 0  # idle polls were handed to the pipeline


def test_follow_stops_soon_after_close(tmp_path: Path) -> None:
    path = tmp_path / "falco.jsonl"
    path.write_bytes(b"")
    source = StreamSource(str(path), follow=True, poll_s=POLL)
    threading.Timer(0.1, source.close).start()
    started = time.monotonic()
    assert all(batch == [] for batch in source.batches(10))
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("name", "message", "hint"),
    [("missing.jsonl", "not found", "existing JSON-lines file"), (".", "directory", "one")],
)
def test_unreadable_paths_raise_source_errors(
    tmp_path: Path, name: str, message: str, hint: str
) -> None:
    with pytest.raises(SourceError, match=message) as info:
        StreamSource(str(tmp_path / name))
    assert info.value.code == "KS-E032"
    assert hint in (info.value.hint or "")


def test_stdin_that_is_no_byte_stream_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"a": 1}\n'))
    with pytest.raises(SourceError, match="stdin"):
        next(StreamSource("-").batches(10))


def test_batches_of_large_alerts_are_cut_by_bytes(tmp_path: Path) -> None:
    from kubesentinel.runtime.sources.queueing import BATCH_BYTES

    line = b'{"pad": "' + b"x" * 900_000 + b'"}'
    path = tmp_path / "big.jsonl"
    path.write_bytes((line + b"\n") * 25)
    source = StreamSource(str(path))
    batches = [batch for batch in source.batches(2048) if batch]
    assert sum(len(batch) for batch in batches) == 25
    assert len(batches) >= 3  # 22 MB of alerts: never one batch
    for batch in batches:
        assert sum(len(item.data) for item in batch) < BATCH_BYTES + len(line)
