"""Share a list of tasks with forked helper processes, taken from both ends of the list.

Helpers take tasks from the front and this process takes them from the back until the two
meet, so a caller that sorts its tasks can choose which kind stays here (the scan keeps the
small workload files, whose results cost more to send than to compute). The claims are two
counters in one shared page, changed under a POSIX record lock, which the kernel drops if a
helper dies. Each helper sends all its results once, pickled, through its own pipe when the
tasks run out: our own child over our own pipe, so nothing untrusted is unpickled.

Plain fork, pipes and a lock, where concurrent.futures' process pool cost a scan 15 ms in
imports and start-up; a helper's failure is raised here, and nothing is left running.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import pickle
import signal
import struct
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import NoReturn, TypeVar

T = TypeVar("T")

_COUNTERS = struct.Struct("qq")  # next position from the front, one past the next from the back


class HelperFailed(RuntimeError):
    """A helper process raised, or ended without sending its results."""


def two_ended(count: int, helpers: int, run: Callable[[int], T]) -> list[T]:
    """``[run(0), ..., run(count - 1)]``; ``helpers`` forked processes share the work."""
    claims = _Claims(count)
    children: list[tuple[int, int]] = []  # pid, read end of its pipe
    results: dict[int, T] = {}
    try:
        for _ in range(helpers):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the helper: never returns into the caller's frames
                _helper(claims, run, write_end, [read_end, *(fd for _, fd in children)])
            os.close(write_end)
            children.append((pid, read_end))
        while (position := claims.take_back()) is not None:
            results[position] = run(position)
        while children:
            pid, read_end = children[0]
            with open(read_end, "rb", closefd=False) as stream:
                data = stream.read()  # to the end: the helper has written all and exits
            _, status = os.waitpid(pid, 0)
            os.close(read_end)
            children.pop(0)
            results.update(_unpack(pid, data, status))
    except BaseException:
        claims.stop()
        _stop(children)
        raise
    finally:
        claims.close()
    missing = [position for position in range(count) if position not in results]
    if missing:  # every helper reported success: a bug, never a silent loss
        raise HelperFailed(f"tasks {missing[:5]} were claimed but no result came back")
    return [results[position] for position in range(count)]


class _Claims:
    """Positions handed out from both ends of ``range(count)``, each exactly once."""

    def __init__(self, count: int) -> None:
        self._fd = _shared_file()
        os.ftruncate(self._fd, _COUNTERS.size)
        self._memory = mmap.mmap(self._fd, _COUNTERS.size)
        _COUNTERS.pack_into(self._memory, 0, 0, count)

    def take_front(self) -> int | None:
        with self._locked():
            front, back = _COUNTERS.unpack_from(self._memory)
            if front >= back:
                return None
            _COUNTERS.pack_into(self._memory, 0, front + 1, back)
            return int(front)

    def take_back(self) -> int | None:
        with self._locked():
            front, back = _COUNTERS.unpack_from(self._memory)
            if front >= back:
                return None
            _COUNTERS.pack_into(self._memory, 0, front, back - 1)
            return int(back - 1)

    def stop(self) -> None:
        """No more claims from either end (helpers finish the task they hold)."""
        with self._locked():
            front, _ = _COUNTERS.unpack_from(self._memory)
            _COUNTERS.pack_into(self._memory, 0, front, front)

    def close(self) -> None:
        self._memory.close()
        os.close(self._fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)


def _shared_file() -> int:
    """A file for the counters and their lock: in memory where Linux allows."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("kubesentinel-claims", os.MFD_CLOEXEC)
    import tempfile

    with tempfile.TemporaryFile() as handle:
        return os.dup(handle.fileno())  # outlives the file object (already unlinked); see close


def _helper(
    claims: _Claims, run: Callable[[int], T], write_end: int, inherited: Sequence[int]
) -> NoReturn:
    """Run claims from the front, send ``(True, [(position, result), ...])`` or ``(False,
    traceback text)``, and exit without unwinding into the caller's frames."""
    status = 0
    try:
        for fd in inherited:  # the parent's ends of the pipes: not ours to hold open
            os.close(fd)
        done: list[tuple[int, T]] = []
        while (position := claims.take_front()) is not None:
            done.append((position, run(position)))
        payload = pickle.dumps((True, done), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # every failure goes back to the parent, as text
        status = 1
        payload = pickle.dumps((False, traceback.format_exc()))
    try:
        with open(write_end, "wb") as out:
            out.write(payload)
    except BaseException:  # the parent is gone or stopped reading
        status = 1
    os._exit(status)


def _unpack(pid: int, data: bytes, status: int) -> list[tuple[int, T]]:
    if not data:
        raise HelperFailed(f"scan helper process {pid} ended without results ({_ended(status)})")
    ok, body = pickle.loads(data)  # noqa: S301 - our own child, over our own pipe
    if not ok:
        raise HelperFailed(f"scan helper process {pid} failed:\n{body}")
    done: list[tuple[int, T]] = body
    return done


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _stop(children: Sequence[tuple[int, int]]) -> None:
    """Kill and reap helpers still running: an interrupted or failed scan leaves none behind."""
    for pid, read_end in children:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with suppress(OSError):
            os.close(read_end)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)
