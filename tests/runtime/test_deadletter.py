"""The dead-letter file on a real filesystem: exact bytes, bounded size, private, durable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kubesentinel.errors import DeadLetterError
from kubesentinel.runtime.deadletter import (
    DeadLetter,
    DeadLetterRecord,
    read_dead_letter,
    reason_category,
)
from kubesentinel.runtime.parse import Rejected, parse_batch
from kubesentinel.runtime.sources.interface import RawAlert

WALL_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z

AWKWARD = [
    b"",
    b"not json at all",
    b'{"rule": "x", "prio',
    b"\x00\xff\xfe binary\r\n with a newline\n and more\n",
    b"\n",
    b'{"dead_letter":1,"origin":"forged","reason":"x","bytes":0}\n',  # looks like a header
    bytes(range(256)),
]


def _letter(path: Path, **options: int) -> DeadLetter:
    return DeadLetter(path, wall=lambda: WALL_NS, **options)


def test_records_keep_the_exact_bytes_with_origin_reason_and_time(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    letter = _letter(path)
    items = [Rejected(f"f:{n}", f"reason {n}", data) for n, data in enumerate(AWKWARD)]
    letter.write(items[:3])
    letter.write(items[3:])
    letter.close()
    records = list(read_dead_letter(path))
    assert records == [
        DeadLetterRecord(f"f:{n}", f"reason {n}", "2026-01-01T00:00:00.123456Z", data, len(data))
        for n, data in enumerate(AWKWARD)
    ]
    # Readable by a simple tool: each record starts with a one-line JSON header.
    first = path.read_bytes().split(b"\n", 1)[0]
    assert json.loads(first)["origin"] == "f:0"


def test_size_is_the_bytes_plus_a_short_header_not_an_escaped_copy(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    garbage = bytes(range(256)) * 400  # 100 KiB that JSON would escape to about 6 times that
    letter = _letter(path)
    letter.write([Rejected("http:127.0.0.1", "binary data, not JSON", garbage)])
    letter.close()
    assert len(garbage) < path.stat().st_size < len(garbage) + 200


def test_rotation_bounds_each_file_and_the_number_of_files(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    letter = _letter(path, max_bytes=8192, max_files=3)
    written = [Rejected(f"f:{n}", "not JSON", bytes([n % 251]) * 700) for n in range(100)]
    for start in range(0, len(written), 7):
        letter.write(written[start : start + 7])
    letter.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["dl.jsonl", "dl.jsonl.1", "dl.jsonl.2"]
    assert letter.files == [path, tmp_path / "dl.jsonl.1", tmp_path / "dl.jsonl.2"]
    assert all(f.stat().st_size <= 8192 for f in files)
    # The newest records are kept, in order, oldest file first; none is split across files.
    kept = [r for name in ("dl.jsonl.2", "dl.jsonl.1", "dl.jsonl")
            for r in read_dead_letter(tmp_path / name)]  # fmt: skip
    assert [(r.origin, r.data) for r in kept] == [
        (w.origin, w.data) for w in written[len(written) - len(kept) :]
    ]
    assert len(kept) >= 2 * (8192 // 800)
    assert letter.counts == {"not JSON": 100}  # every record is counted, kept or rotated away


def test_one_file_only_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    letter = _letter(path, max_bytes=4096, max_files=1)
    for n in range(20):
        letter.write([Rejected(f"f:{n}", "x", b"y" * 1000)])
    letter.close()
    assert [p.name for p in tmp_path.iterdir()] == ["dl.jsonl"]
    assert path.stat().st_size <= 4096
    assert [r.origin for r in read_dead_letter(path)][-1] == "f:19"


def test_a_record_larger_than_a_file_keeps_its_first_bytes_and_its_size(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    letter = _letter(path, max_bytes=4096)
    big = b"z" * 10_000
    letter.write([Rejected("f:1", "alert is 10000 bytes", big)])
    letter.close()
    (record,) = read_dead_letter(path)
    assert record.truncated
    assert record.size == 10_000
    assert big.startswith(record.data)
    assert len(record.data) > 3000
    assert path.stat().st_size <= 4096


def test_files_are_private_and_created_directories_too(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "made" / "here" / "dl.jsonl"
        _letter(path).write([Rejected("f:1", "x", b"secret")])
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700


def test_an_older_world_readable_file_is_tightened_and_still_read(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    legacy = {"origin": "stdin:2", "reason": "not JSON", "data": "not json at all"}
    path.write_text(json.dumps(legacy) + "\n")
    path.chmod(0o644)
    letter = _letter(path)
    letter.write([Rejected("stdin:3", "empty input", b"")])
    letter.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [(r.origin, r.data) for r in read_dead_letter(path)] == [
        ("stdin:2", b"not json at all"),
        ("stdin:3", b""),
    ]


def test_a_cut_record_is_an_error_after_the_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    letter = _letter(path)
    letter.write([Rejected("f:1", "x", b"first"), Rejected("f:2", "x", b"second record")])
    letter.close()
    path.write_bytes(path.read_bytes()[:-5])  # a crash in the middle of the last write
    records = read_dead_letter(path)
    assert next(records).data == b"first"
    with pytest.raises(DeadLetterError, match="damaged at byte") as info:
        next(records)
    assert info.value.code == "KS-E034"


def test_a_write_failure_is_a_clear_error(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to fail a write with ENOSPC")
    letter = DeadLetter(Path("/dev/full"))
    with pytest.raises(DeadLetterError, match="No space left on device") as info:
        letter.write([Rejected("f:1", "x", b"data")])
    assert info.value.code == "KS-E034"
    assert info.value.hint is not None
    letter.close()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(DeadLetterError, match="cannot write the dead-letter file"):
        DeadLetter(blocked / "dl.jsonl").write([Rejected("f:1", "x", b"data")])


def test_counts_per_reason_category(tmp_path: Path) -> None:
    items = [
        RawAlert(b"hello", "f:1", 0),
        RawAlert(b"hello world again", "f:2", 0),
        RawAlert(b'{"rule": "Terminal sh', "f:3", 0),
        RawAlert(b'{"rule": "x", "priority": "Severe", "time": "2024-01-01T00:00:00Z"}', "f:4", 0),
        RawAlert(b'{"rule": "x", "priority": "Bad", "time": "2024-01-01T00:00:00Z"}', "f:5", 0),
        RawAlert(b'{"a": ' + b"9" * 5000 + b"}", "f:6", 0),
    ]
    letter = DeadLetter(None)  # no file: still counted
    letter.write(parse_batch(items)[1])
    assert letter.counts == {
        "not JSON: expecting value at char N": 2,
        "truncated JSON after N chars": 1,
        "unknown priority '…'": 2,
        "not JSON: an integer of more than N digits": 1,
    }


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("not JSON: expecting ',' delimiter at char 17",
         "not JSON: expecting ',' delimiter at char N"),
        ("alert is 2000000 bytes, over the 1048576 byte limit",
         "alert is N bytes, over the N byte limit"),
        ("time '2024-13-40T00:00:00Z' is not an RFC 3339 timestamp and no evt.time field",
         "time '…' is not an RFC 3339 timestamp and no evt.time field"),
        ("internal error while parsing: ValueError: Exceeds the limit (4300 digits)",
         "internal error while parsing: ValueError"),
        ("internal error while enriching: KeyError", "internal error while enriching: KeyError"),
    ],
)  # fmt: skip
def test_reason_categories_drop_variable_parts(reason: str, category: str) -> None:
    assert reason_category(reason) == category


def test_categories_are_bounded(tmp_path: Path) -> None:
    letter = DeadLetter(None)
    letter.write([Rejected("f", f"reason {chr(0x4E00 + n) * 2} kind", b"") for n in range(400)])
    counts = letter.counts
    assert len(counts) <= 257
    assert sum(counts.values()) == 400


def test_public_names() -> None:
    from kubesentinel.runtime import deadletter, rejects

    assert sorted(deadletter.__all__) == [
        "DEFAULT_MAX_BYTES", "DEFAULT_MAX_FILES", "DeadLetter", "DeadLetterRecord",
        "read_dead_letter", "reason_category",
    ]  # fmt: skip
    assert sorted(rejects.__all__) == ["add_each", "reject_events"]
