"""Finding inputs (order, names, what is skipped) and reading them: whole files up to the size
limit, however their size changed since stat."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.errors import InputError
from kubesentinel.static.inputs import InputFile, _read_stream, discover, read_limited


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


def _sorted_walk(root: Path) -> list[str]:
    """The order discovery promises, from os.walk: sorted, files before subdirectories."""
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        here = Path(directory)
        found += [
            str(here / f) for f in sorted(files) if f.endswith(".yaml") and not f.startswith(".")
        ]
    return found


def test_discovery_walks_in_name_order_files_first_and_skips_dot_entries(tmp_path: Path) -> None:
    for relative in ("b.yaml", "a.yaml", "z/c.yaml", "m/d.yaml", "m/n/e.yaml", "m/a.yaml",
                     ".hidden/f.yaml", "m/.g.yaml", "notes.txt", "Z/h.yaml"):  # fmt: skip
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("kind: ConfigMap\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "o.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "linked-dir").symlink_to(outside)  # like os.walk: not followed
    (tmp_path / "linked.yaml").symlink_to(tmp_path / "a.yaml")  # a link to a file is read
    found = list(discover([str(tmp_path)]))
    assert all(isinstance(f, InputFile) for f in found)
    names = [f.name for f in found if isinstance(f, InputFile)]
    assert names == _sorted_walk(tmp_path)
    assert names[:3] == [str(tmp_path / n) for n in ("a.yaml", "b.yaml", "linked.yaml")]
    assert next(f.size for f in found if isinstance(f, InputFile)) == len("kind: ConfigMap\n")


def test_discovery_from_the_current_directory_names_files_as_pathlib_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "y.yaml").write_text("kind: ConfigMap\n")
    monkeypatch.chdir(tmp_path)
    for root in (".", "./", "sub/", "./sub"):
        expected = [str(Path(root) / "y.yaml")] if root in (".", "./") else []
        expected.append(str(Path(root) / "x.yaml") if "sub" in root else str(Path("sub/x.yaml")))
        assert [f.name for f in discover([root]) if isinstance(f, InputFile)] == expected


def test_an_unreadable_directory_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "open.yaml").write_text("kind: ConfigMap\n")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:  # root can read any directory: deny one the OS way
        if path.endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = list(discover([str(tmp_path)]))
    assert [f.name for f in found if isinstance(f, InputFile)] == [str(tmp_path / "open.yaml")]
    errors = [f for f in found if isinstance(f, InputError)]
    assert [(e.file, e.code) for e in errors] == [(str(tmp_path / "locked"), "KS-E016")]
    assert "Permission denied" in errors[0].message
