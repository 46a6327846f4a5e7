"""Reading inputs: whole files up to the size limit, however their size changed since stat."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kubesentinel.errors import InputError
from kubesentinel.static.inputs import InputFile, _read_stream, read_limited


class Trickle(io.RawIOBase):
    """A raw stream that returns at most 3 bytes a call, as unbuffered reads may."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(3, len(buffer), len(self.data))
        buffer[:count], self.data = self.data[:count], self.data[count:]
        return count


def test_a_file_is_read_whole_up_to_the_limit_and_refused_beyond(tmp_path: Path) -> None:
    exact, over = tmp_path / "exact.yaml", tmp_path / "over.yaml"
    exact.write_bytes(b"a" * 100)
    over.write_bytes(b"a" * 101)
    assert read_limited(InputFile(str(exact), exact), 100) == b"a" * 100
    with pytest.raises(InputError, match="larger than"):
        read_limited(InputFile(str(over), over), 100)


@pytest.mark.parametrize("stale_size", [0, 5, 20, 99, 1000])
def test_a_size_that_changed_since_stat_still_reads_everything(stale_size: int) -> None:
    data = b"kind: ConfigMap\n" * 5  # 80 bytes
    assert _read_stream(Trickle(data), "f", 1000, stale_size) == data  # type: ignore[arg-type]


def test_a_file_that_grew_past_the_limit_since_stat_is_refused() -> None:
    with pytest.raises(InputError, match="larger than"):
        _read_stream(Trickle(b"a" * 50), "f", 40, 10)  # type: ignore[arg-type]


def test_a_file_over_the_limit_by_its_size_is_refused_unread() -> None:
    stream = Trickle(b"a" * 50)
    with pytest.raises(InputError, match="larger than"):
        _read_stream(stream, "f", 40, 50)  # type: ignore[arg-type]
    assert len(stream.data) == 50
