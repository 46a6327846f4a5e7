"""The dead-letter file: every alert the monitor refused, byte for byte, with where from and why.

Format: records one after another, each a header line and the bytes as received::

    {"dead_letter":1,"time":"2026-12-03T19:43:38.123456Z","origin":"alerts.jsonl:12",
     "reason":"not JSON: expecting value at char 0","bytes":11}        <- one line, ASCII JSON
    hello world                                                        <- exactly 11 bytes
                                                                       <- then one "\\n"

The header is one line of ASCII-only JSON (``origin`` and ``reason`` are cut to 1,024
characters); ``bytes`` is the length of the data that follows it, kept exactly as received (not
re-encoded: invalid UTF-8, NUL bytes and newlines stay what they were), then a newline. A record
whose data alone would not fit in one file keeps its first bytes and says ``"size"``, the length
received. ``less``, ``grep`` and ``head`` read the file as it is; ``read_dead_letter(path)``
gives the records back with their exact bytes, and also reads files of the older format (one
JSON object per line, the data as text in ``"data"``).

Bounded: before a record would make the file larger than ``max_bytes`` (default 64 MiB) the
file is rotated, ``dead-letter.jsonl`` -> ``.1`` -> ``.2`` ..., and only ``max_files`` files are
kept (default 4: at most 256 MiB in all). Files are created with mode 0600 (an older file is
tightened to it when opened) and directories this module creates with 0700: the data is
untrusted and may hold secrets from command lines.

Durable: ``write`` returns only once the batch's records are written and fsync'd, so an alert
the sender was told was refused (HTTP 400, NATS ``term``) is on disk. A failure (disk full, no
permission) raises ``DeadLetterError``.

``counts`` gives how many records each reason category got, where the category is the reason
without its variable parts (numbers, quoted values, details in parentheses, an internal error's
message): ``"not JSON: expecting value at char N"``, ``"unknown priority '…'"``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from kubesentinel.errors import DeadLetterError
from kubesentinel.runtime.parse import Rejected

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "DeadLetter",
    "DeadLetterRecord",
    "read_dead_letter",
    "reason_category",
]

DEFAULT_MAX_BYTES: Final = 64 << 20
DEFAULT_MAX_FILES: Final = 4
MIN_MAX_BYTES: Final = 4096
FORMAT_VERSION: Final = 1
_MAX_TEXT: Final = 1024  # origin and reason in a header: a header always fits in MIN_MAX_BYTES
_MAX_HEADER: Final = 64 << 10  # what the reader accepts as one header line
_MAX_CATEGORIES: Final = 256  # past this, reasons count as "other": bounded memory
_OTHER: Final = "other"
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700

_QUOTED: Final = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
_PARENS: Final = re.compile(r"\s*\([^()]*\)")
_NUMBER: Final = re.compile(r"(?<!RFC )(?<!\d)\d+")


def reason_category(reason: str) -> str:
    """The reason without its variable parts, for counting (see the module docstring)."""
    if reason.startswith("internal error while "):
        stage, _, rest = reason.partition(": ")
        return f"{stage}: {rest.partition(':')[0]}" if rest else stage
    text = _PARENS.sub("", reason)
    text = _QUOTED.sub(_quoted_category, text)
    text = _NUMBER.sub("N", text)
    return " ".join(text.split())[:120]


def _quoted_category(match: re.Match[str]) -> str:
    quoted = match.group(0)
    # A JSON delimiter the decoder expected (',' ':') is part of the category; values are not.
    if len(quoted) == 3 and not quoted[1].isalnum():
        return quoted
    return "'…'"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One refused alert as the dead-letter file holds it."""

    origin: str
    reason: str
    time: str  # RFC 3339, UTC, when it was written
    data: bytes  # exactly as received (its first bytes when truncated)
    size: int  # length as received

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size


class DeadLetter:
    """Writes refused alerts to ``path`` (nothing is written when it is None; counts still
    are), rotating at ``max_bytes`` and keeping ``max_files`` files."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        wall: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
        if max_files < 1:
            raise ValueError(f"max_files must be at least 1, got {max_files}")
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._wall = wall
        self._fd: int | None = None
        self._size = 0
        self._counts: dict[str, int] = {}

    @property
    def counts(self) -> dict[str, int]:
        """Records written per reason category, in order of first occurrence (a copy)."""
        return dict(self._counts)

    @property
    def files(self) -> list[Path]:
        """The dead-letter files that exist, newest (``path``) first."""
        return [p for p in self._names() if p.exists()]

    def write(self, rejected: Sequence[Rejected]) -> None:
        """Append the records; returns once they are on disk. Raises DeadLetterError."""
        if not rejected:
            return
        if self.path is not None:
            try:
                self._write(rejected)
            except OSError as exc:
                self._close_quietly()
                raise DeadLetterError(
                    f"cannot write the dead-letter file {self.path}: {exc.strerror or exc}",
                    file=str(self.path),
                    hint="free disk space, or point --dead-letter at a writable place",
                ) from exc
        counts = self._counts
        for item in rejected:
            category = reason_category(item.reason)
            if category not in counts and len(counts) >= _MAX_CATEGORIES:
                category = _OTHER
            counts[category] = counts.get(category, 0) + 1

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    # -- writing ------------------------------------------------------------------------------

    def _write(self, rejected: Sequence[Rejected]) -> None:
        stamp = _rfc3339(self._wall())
        fd = self._open()
        chunks: list[bytes] = []
        pending = 0
        for item in rejected:
            record = self._record(item, stamp)
            if self._size + pending + len(record) > self.max_bytes and self._size + pending:
                _write_all(fd, b"".join(chunks))
                os.fsync(fd)
                chunks, pending = [], 0
                fd = self._rotate()
            chunks.append(record)
            pending += len(record)
        _write_all(fd, b"".join(chunks))
        self._size += pending
        os.fsync(fd)

    def _record(self, item: Rejected, stamp: str) -> bytes:
        data = item.data
        header = _header(stamp, item, len(data), None)
        if len(header) + len(data) + 1 > self.max_bytes:
            room = self.max_bytes - len(_header(stamp, item, len(data), len(data))) - 1
            data = data[: max(0, room)]
            header = _header(stamp, item, len(data), len(item.data))
        return b"".join((header, data, b"\n"))

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            _make_dirs(self.path.parent)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path, flags, _FILE_MODE)
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != _FILE_MODE:
                    os.fchmod(fd, _FILE_MODE)  # a file of an older version was world-readable
                self._size = info.st_size
            except OSError:
                os.close(fd)
                raise
            _fsync_dir(self.path.parent)  # the new name itself must survive a crash
            self._fd = fd
        return self._fd

    def _rotate(self) -> int:
        self.close()
        names = self._names()
        if names[-1].exists():
            os.unlink(names[-1])
        for newer, older in zip(names[-2::-1], names[:0:-1], strict=True):
            if newer.exists():
                os.replace(newer, older)
        self._size = 0
        return self._open()

    def _names(self) -> list[Path]:
        if self.path is None:
            return []
        name = self.path.name
        return [self.path] + [self.path.with_name(f"{name}.{n}") for n in range(1, self.max_files)]

    def _close_quietly(self) -> None:
        try:
            self.close()
        except OSError:
            self._fd = None


def _header(stamp: str, item: Rejected, length: int, size: int | None) -> bytes:
    header: dict[str, Any] = {
        "dead_letter": FORMAT_VERSION,
        "time": stamp,
        "origin": item.origin[:_MAX_TEXT],
        "reason": item.reason[:_MAX_TEXT],
        "bytes": length,
    }
    if size is not None:
        header["size"] = size
    return json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _rfc3339(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents with mode 0700; existing ones are left as
    they are (the operator's choice)."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(path, _DIR_MODE)  # mkdir's mode is narrowed by the umask only: be exact


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories; the data itself is fsync'd
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading ----------------------------------------------------------------------------------


def read_dead_letter(path: Path | str) -> Iterator[DeadLetterRecord]:
    """The records of one dead-letter file, oldest first, with their bytes exactly as received.

    Raises DeadLetterError at the first record that is not in the format (a file cut short by
    a crash ends with one), after yielding every record before it.
    """
    path = Path(path)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise DeadLetterError(
            f"cannot read the dead-letter file {path}: {exc.strerror or exc}", file=str(path)
        ) from None
    with stream:
        offset = 0
        while True:
            line = stream.readline(_MAX_HEADER)
            if not line:
                return
            if not line.endswith(b"\n"):
                raise _bad(path, offset, "header line cut short or too long")
            try:
                header = json.loads(line)
            except ValueError:
                raise _bad(path, offset, "header is not JSON") from None
            if type(header) is not dict:
                raise _bad(path, offset, "header is not a JSON object")
            record, used = _record_of(header, stream, path, offset)
            offset += len(line) + used
            yield record


def _record_of(
    header: dict[str, Any], stream: Any, path: Path, offset: int
) -> tuple[DeadLetterRecord, int]:
    origin, reason, stamp = header.get("origin"), header.get("reason"), header.get("time", "")
    if type(origin) is not str or type(reason) is not str or type(stamp) is not str:
        raise _bad(path, offset, "header lacks origin or reason")
    if "bytes" not in header and type(header.get("data")) is str:  # the format before this one
        data = header["data"].encode("utf-8", "surrogatepass")
        return DeadLetterRecord(origin, reason, stamp, data, len(data)), 0
    length = header.get("bytes")
    if type(length) is not int or length < 0:
        raise _bad(path, offset, "header has no valid byte length")
    size = header.get("size", length)
    if type(size) is not int or size < length:
        raise _bad(path, offset, "header has an invalid size")
    data = stream.read(length)
    if len(data) != length or stream.read(1) != b"\n":
        raise _bad(path, offset, "data cut short")
    return DeadLetterRecord(origin, reason, stamp, data, size), length + 1


def _bad(path: Path, offset: int, what: str) -> DeadLetterError:
    return DeadLetterError(
        f"the dead-letter file {path} is damaged at byte {offset}: {what}",
        file=str(path),
        hint="the records before it were read; a crash while writing leaves a cut last record",
    )
