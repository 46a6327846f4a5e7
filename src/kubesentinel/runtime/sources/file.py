"""JSON lines from stdin or a file, as Falco writes them with ``json_output: true``.

``StreamSource("-")`` reads stdin; ``StreamSource(path)`` a file. Each non-blank line becomes one
``RawAlert`` with origin ``"<path>:<line>"`` (``"stdin:<line>"``). The file is read in large
chunks and split in C, so a replay costs little more than the disk read; the pipeline pulls,
so a slow pipeline simply slows the reading (back-pressure without a queue).

A replay ends at end of file. With ``follow=True`` the source tails the file like ``tail -F``:
it waits for new lines, yields an empty batch every ``poll_s`` while idle (so the pipeline can
close expired incidents), and follows rotation: a new inode at the path (logrotate's rename) is
opened from its start after the old file is drained, and a file shrinking below the read
position (copytruncate) is read again from its start. A truncation that is followed by more
writes than were read before it, within one poll, cannot be told from growth (as with tail -F).
A live stdin (a pipe) also yields empty batches while idle and ends when the writer closes it.

Line length is bounded: lines over the parser's limit are yielded whole up to ``max_line``
bytes, so the parser rejects them and the dead-letter file shows them; beyond ``max_line`` the
rest of the line is skipped unread into memory, the item holds the first ``max_line`` bytes and
its origin ends in ``" (truncated)"``. Memory is bounded by one chunk plus one line.
"""

from __future__ import annotations

import os
import select
import sys
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from operator import itemgetter
from typing import BinaryIO, Final

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.queueing import BATCH_BYTES

CHUNK_BYTES: Final = 256 * 1024
# Twice the parser's 1 MiB line limit: a line between the two reaches the dead-letter file
# whole; a longer one is cut here.
MAX_LINE_BYTES: Final = 2 * 1024 * 1024
TRUNCATED: Final = " (truncated)"
_DATA: Final = itemgetter(1)  # the bytes of a (line number, bytes, cut) tuple


class LineSplitter:
    """Cut a byte stream into numbered lines, bounding each line at ``max_line`` bytes.

    ``feed`` returns the lines completed by a chunk as ``(line number, data, truncated)``;
    blank lines are counted but not returned, and a trailing ``\\r`` is dropped. A line that
    grows past ``max_line`` is returned at once, cut, and the rest of it is discarded as it
    arrives.
    """

    __slots__ = ("_discarding", "_line", "_max", "_partial")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self._max = max_line
        self._line = 0
        self._partial = b""
        self._discarding = False

    @property
    def line(self) -> int:
        """Number of the last completed line."""
        return self._line

    def reset(self) -> None:
        """Start over at line 1 (a rotated or truncated file)."""
        self._line = 0
        self._partial = b""
        self._discarding = False

    def feed(self, chunk: bytes) -> list[tuple[int, bytes, bool]]:
        parts = chunk.split(b"\n")
        tail = parts.pop()  # after the last newline: the start of an unfinished line
        out: list[tuple[int, bytes, bool]] = []
        if parts:
            if self._discarding:  # parts[0] ends a line already returned cut
                self._discarding = False
                self._line += 1
                del parts[0]
            elif self._partial:
                parts[0] = self._partial + parts[0]
            self._partial = b""
            line = self._line
            limit = self._max
            for data in parts:
                line += 1
                if data.endswith(b"\r"):
                    data = data[:-1]  # noqa: PLW2901  # CRLF files
                if not data or data.isspace():
                    continue
                if len(data) > limit:
                    out.append((line, data[:limit], True))
                else:
                    out.append((line, data, False))
            self._line = line
        if tail and not self._discarding:
            partial = self._partial + tail if self._partial else tail
            if len(partial) > self._max:
                out.append((self._line + 1, partial[: self._max], True))
                self._partial = b""
                self._discarding = True
            else:
                self._partial = partial
        return out

    def flush(self) -> list[tuple[int, bytes, bool]]:
        """The last line when the stream ends without a newline."""
        if self._discarding:
            self._discarding = False
            self._line += 1
            return []
        data, self._partial = self._partial, b""
        if not data:
            return []
        self._line += 1
        if data.endswith(b"\r"):
            data = data[:-1]
        if not data or data.isspace():
            return []
        return [(self._line, data, False)]


class StreamSource:
    """Stdin (``"-"``) or a file path, replayed to the end or followed (``follow=True``)."""

    live = False  # ends at EOF; --until-eof must not stop it at a slow pipe's first pause

    def __init__(
        self,
        path: str,
        *,
        follow: bool = False,
        max_line: int = MAX_LINE_BYTES,
        poll_s: float = 0.2,
    ) -> None:
        self.name = "stdin" if path == "-" else path
        self._path = path
        self._follow = follow and path != "-"
        self._poll_s = poll_s
        self._splitter = LineSplitter(max_line)
        self._closed = False
        self._started = False
        self._pos = 0
        self._file: BinaryIO | None = None  # stdin is looked up when reading starts
        self._fd = -1
        self._ident = (0, 0)
        self._pipe = True
        if path != "-":
            self._file = _open(path)
            self._fd = self._file.fileno()
            self._ident = _identity(self._fd)
            self._pipe = not os.path.isfile(path)  # a FIFO: wait for data like stdin

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        self._started = True
        if self._fd < 0:
            self._fd = _stdin_fd()
        pending: list[tuple[int, bytes, bool]] = []
        try:
            while not self._closed:
                if len(pending) < max_batch and _size(pending) < BATCH_BYTES:
                    got, ended = self._read_some(max_batch - len(pending))
                    pending += got
                    if ended:
                        pending += self._splitter.flush()
                        while pending:
                            n = _batch_size(pending, max_batch)
                            yield self._batch(pending[:n])
                            del pending[:n]
                        return
                    if not got and not pending:
                        yield []  # idle: let the pipeline expire incidents
                        continue
                n = _batch_size(pending, max_batch)
                yield self._batch(pending[:n])
                del pending[:n]
        finally:
            self._release()

    def close(self) -> None:
        """Stop after the current batch; a follow or a live stdin ends within ``poll_s``."""
        self._closed = True
        if not self._started:
            self._release()

    def _batch(self, lines: list[tuple[int, bytes, bool]]) -> list[RawAlert]:
        now = time.time_ns()
        name = self.name
        return [
            RawAlert(data, f"{name}:{n}{TRUNCATED}" if cut else f"{name}:{n}", now)
            for n, data, cut in lines
        ]

    def _read_some(self, wanted: int) -> tuple[list[tuple[int, bytes, bool]], bool]:
        """Lines read until ``wanted`` or until no data is ready; True when the input ended."""
        out: list[tuple[int, bytes, bool]] = []
        waited = False
        read = 0  # bytes of this call: a file of huge lines is read a batch at a time
        while len(out) < wanted and read < BATCH_BYTES and not self._closed:
            if self._pipe and not self._ready(0.0 if out or waited else self._poll_s):
                return out, False
            chunk = os.read(self._fd, CHUNK_BYTES)
            if chunk:
                self._pos += len(chunk)
                read += len(chunk)
                out += self._splitter.feed(chunk)
                continue
            if not self._follow:
                return out, True
            if out or waited:
                return out, False
            rotated = self._rotate()
            if rotated is not None:
                out += rotated
                continue
            time.sleep(self._poll_s)
            waited = True
        return out, False

    def _ready(self, timeout: float) -> bool:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        return bool(readable)

    def _rotate(self) -> list[tuple[int, bytes, bool]] | None:
        """At end of file while following: reopen a rotated file, rewind a truncated one.

        Returns None when the file is unchanged, else the last lines of the old file.
        """
        try:
            st = os.stat(self._path)
        except OSError:
            return None  # renamed away and not yet recreated: keep the old one open
        if (st.st_dev, st.st_ino) != self._ident:
            try:
                new = _open(self._path)
            except SourceError:
                return None
            # Lines written to the old file between our last read and the rename are kept.
            tail: list[tuple[int, bytes, bool]] = []
            while chunk := os.read(self._fd, CHUNK_BYTES):
                tail += self._splitter.feed(chunk)
            tail += self._splitter.flush()
            if self._file is not None:
                self._file.close()
            self._file, self._fd, self._pos = new, new.fileno(), 0
            self._ident = _identity(self._fd)
            self._splitter.reset()
            return tail
        if st.st_size < self._pos:
            os.lseek(self._fd, 0, os.SEEK_SET)
            self._pos = 0
            self._splitter.reset()
            return []
        return None

    def _release(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()  # stdin is left open: it is not ours


def _size(lines: list[tuple[int, bytes, bool]]) -> int:
    return sum(map(len, map(_DATA, lines)))


def _batch_size(lines: list[tuple[int, bytes, bool]], max_batch: int) -> int:
    """How many of ``lines`` make the next batch: at most ``max_batch`` and about
    ``BATCH_BYTES`` of data (at least one line), so a file of huge alerts is not read whole."""
    ends = list(accumulate(map(len, map(_DATA, lines[:max_batch]))))
    if not ends or ends[-1] < BATCH_BYTES:
        return len(ends)
    return bisect_left(ends, BATCH_BYTES) + 1


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # closed by the source's close()
    except FileNotFoundError:
        raise SourceError(
            f"alert file not found: {path}",
            file=path,
            hint="give an existing JSON-lines file, or '-' for stdin",
        ) from None
    except IsADirectoryError:
        raise SourceError(
            f"alert source is a directory: {path}",
            file=path,
            hint="give one JSON-lines file (Falco's file_output), or '-' for stdin",
        ) from None
    except OSError as exc:
        raise SourceError(
            f"cannot open alert file {path}: {exc.strerror}", file=path, hint=None
        ) from None


def _stdin_fd() -> int:
    try:
        return sys.stdin.buffer.fileno()
    except (AttributeError, OSError, ValueError):
        raise SourceError(
            "stdin cannot be read as a stream of bytes",
            hint="pipe Falco's JSON output into the monitor, or give a file path",
        ) from None


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino
