"""Share a list of tasks with forked helper processes, taken from both ends of the list.

Helpers take tasks from the front and this process takes them from the back until the two
meet, so a caller that sorts its tasks can choose which kind stays here (the scan keeps the
small workload files, whose results cost more to send than to compute). The claims are two
counters in one shared page, changed under a POSIX record lock, which the kernel drops if a
helper dies. A helper sends each result as soon as it has it, pickled, through its own pipe;
this process unpickles what has arrived between its own tasks, so that neither waits on the
other at the end. Our own child over our own pipe: nothing untrusted is unpickled.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn, TypeVar

T = TypeVar("T")

_COUNTERS = struct.Struct("qq")  # next position from the front, one past the next from the back
_FRAME = struct.Struct("q")  # length of the pickle that follows
_RESULT, _FAILURE = 0, 1
# A bigger pipe lets a helper run on while this process is busy with a task of its own (Linux;
# the default of 64 KiB elsewhere, or where the system's limit is lower).
_PIPE_BYTES = 1024 * 1024


class HelperFailed(RuntimeError):
    """A helper process raised, or ended without sending its results."""


@dataclass(slots=True)
class _Helper:
    pid: int
    pipe: int  # read end
    pending: bytearray = field(default_factory=bytearray)  # bytes of frames not yet complete
    finished: bool = False


def two_ended(
    count: int,
    helpers: int,
    run: Callable[[int], T],
    lost: Callable[[int, str], T] | None = None,
) -> list[T]:
    """``[run(0), ..., run(count - 1)]``; ``helpers`` forked processes share the work.

    A helper that raises makes HelperFailed here, with its traceback. A helper that dies
    (a signal, a crash in C code) loses the task it held: ``lost(position, why)`` stands in
    for that result, and without ``lost`` HelperFailed is raised. Other tasks go on.
    """
    claims = _Claims(count)
    children: list[_Helper] = []
    results: dict[int, T] = {}
    ended: list[str] = []  # why helpers ended early
    try:
        for _ in range(min(helpers, count - 1)):  # this process takes one task at least
            child = _fork_helper(claims, run, [c.pipe for c in children])
            if child is None:
                break  # no more processes to be had: fewer helpers, or none, do the work
            children.append(child)
        while (position := claims.take_back()) is not None:
            results[position] = run(position)
            for child in children:
                _receive(child, results, wait=False)
        for child in children:
            why = _receive(child, results, wait=True)
            if why is not None:
                ended.append(why)
    except BaseException:
        claims.stop()
        _stop(children)
        raise
    finally:
        claims.close()
    missing = [position for position in range(count) if position not in results]
    if missing:
        why = "; ".join(ended) or "no result came back from a helper that ended normally"
        if lost is None or not ended:  # the second: a bug, never a silent loss
            raise HelperFailed(f"{why} (tasks {missing[:5]} have no result)")
        for position in missing:
            results[position] = lost(position, why)
    return [results[position] for position in range(count)]


def _fork_helper(claims: _Claims, run: Callable[[int], T], others: Sequence[int]) -> _Helper | None:
    """A forked helper taking claims from the front; None when the system refuses a process
    (a process limit, or no memory for one)."""
    read_end, write_end = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the helper: never returns into the caller's frames
        _helper(claims, run, write_end, [read_end, *others])
    os.close(write_end)
    os.set_blocking(read_end, False)
    return _Helper(pid, read_end)


def _receive(child: _Helper, results: dict[int, Any], *, wait: bool) -> str | None:
    """Unpickle the results that have arrived from ``child``; with ``wait``, all of them, up
    to the end of its pipe, and reap it: then why it ended early, if it did."""
    if child.finished:
        return None
    if wait:
        os.set_blocking(child.pipe, True)
    while True:
        try:
            data = os.read(child.pipe, _PIPE_BYTES)
        except BlockingIOError:
            break  # nothing more for now
        if not data:
            break
        child.pending += data
        _take_frames(child, results)
    if not wait:
        return None
    _, status = os.waitpid(child.pid, 0)
    os.close(child.pipe)
    child.finished = True
    if child.pending or status != 0:
        return f"the scan helper process {child.pid} ended early ({_ended(status)})"
    return None


def _take_frames(child: _Helper, results: dict[int, Any]) -> None:
    pending = child.pending
    at = 0
    with memoryview(pending) as view:
        while len(view) - at >= _FRAME.size:
            (length,) = _FRAME.unpack_from(view, at)
            start = at + _FRAME.size
            if len(view) - start < length:
                break
            # Our own child, over our own pipe: not untrusted data.
            kind, position, value = pickle.loads(view[start : start + length])  # noqa: S301
            if kind == _FAILURE:
                raise HelperFailed(f"scan helper process {child.pid} failed:\n{value}")
            results[position] = value
            at = start + length
    del pending[:at]


class _Claims:
    """Positions handed out from both ends of ``range(count)``, each exactly once."""

    def __init__(self, count: int) -> None:
        self._fd = _shared_file()
        os.ftruncate(self._fd, _COUNTERS.size)
        self._memory = mmap.mmap(self._fd, _COUNTERS.size)
        _COUNTERS.pack_into(self._memory, 0, 0, count)

    def take_front(self) -> int | None:
        return self._take(from_back=False)

    def take_back(self) -> int | None:
        return self._take(from_back=True)

    def _take(self, *, from_back: bool) -> int | None:
        with self._locked():
            front, back = _COUNTERS.unpack_from(self._memory)
            if front >= back:
                return None
            if from_back:
                position = back = back - 1
            else:
                position, front = front, front + 1
            _COUNTERS.pack_into(self._memory, 0, front, back)
            return int(position)

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
    """Run claims from the front, sending each result as it comes (or the traceback of a
    failure), and exit without unwinding into the caller's frames."""
    status = 0
    try:
        with open(write_end, "wb") as out:  # buffered: it writes on after a short write
            try:
                for fd in inherited:  # the parent's ends of the pipes: not ours to hold open
                    os.close(fd)
                while (position := claims.take_front()) is not None:
                    _send(out, (_RESULT, position, run(position)))
            except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent
                status = 130  # has its own and stops the scan; nothing to report from here
            except BaseException:  # every failure goes back to the parent, as text
                import traceback

                status = 1
                _send(out, (_FAILURE, -1, traceback.format_exc()))
    except BaseException:  # the parent is gone or stopped reading
        status = 1
    os._exit(status)


def _send(out: BinaryIO, message: tuple[int, int, Any]) -> None:
    """One frame, flushed at once: the parent takes results as they come."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(payload)))
    out.write(payload)
    out.flush()


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _stop(children: Sequence[_Helper]) -> None:
    """Kill and reap helpers still running: an interrupted or failed scan leaves none behind."""
    for child in children:
        if child.finished:
            continue
        with suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        with suppress(OSError):
            os.close(child.pipe)
        with suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
        child.finished = True
