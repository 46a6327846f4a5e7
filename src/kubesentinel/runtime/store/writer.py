"""Commit the monitor's writes from a process of its own, so they use the second core.

Parsing and correlating hold the GIL; SQLite releases it only around each statement, so a
writer *thread* would wait for the GIL at every row (executemany binds each row with it).
In a process of its own, a write of 2,048 events is a few milliseconds of SQLite, Zstandard
and hashing that never wait for the parser. What crosses the pipe is already bytes
(``EncodedWrite``: JSON rows and the evidence), so nothing is pickled.

The writer is ``python -m kubesentinel.runtime.store.writer``, started with ``subprocess``
(fork and exec at once: safe while the monitor runs threads) on one end of a socket pair,
with no ``multiprocessing`` process: its start-up (re-importing the monitor's main module,
a resource tracker process) cost the idle monitor about 10 MB.

Protocol, over the socket pair in ``multiprocessing.connection`` frames: the monitor first
sends where the store is and its key (JSON; never on the command line, where other users could
read a password), then the five parts of each write; the writer answers each write, in order,
with an empty message once committed, or with a JSON error (message, file, hint). An empty
first part ends the writer. The writer ignores SIGINT and SIGTERM: the monitor decides when it
stops and waits for it to commit what it was sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from kubesentinel.errors import StoreError
from kubesentinel.runtime.gc_tuning import tune_for_throughput
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.runtime.store.rows import EncodedWrite
from kubesentinel.runtime.store.urls import redact

__all__ = ["StoreProcess"]

log = logging.getLogger("kubesentinel.monitor")

# Writes sent and not yet committed: bounds memory, and holds back a source faster than the store.
IN_FLIGHT: Final = 2
SEND_BUFFER_BYTES: Final = 4 * 1024 * 1024
_END: Final = b""


class StoreProcess:
    """A writer process for the store at ``location``: a SQLite file or a PostgreSQL URL.

    ``submit`` sends a write and returns; ``done`` runs (in this process, on a thread of its
    own) once the write is settled: with None once committed (the place to acknowledge what it
    held), or with the StoreError when it was not (the write failed, or an earlier one did and
    the writer stopped). ``submit`` waits while ``IN_FLIGHT`` writes are pending. A failure is
    also raised by the next ``submit`` or by ``close``; nothing after it is committed.
    """

    def __init__(self, location: str | Path, signing_key: Path | None = None) -> None:
        self.location = str(location)
        self.name = redact(self.location)  # what messages show: never a password
        self.signing_key = signing_key
        ours, theirs = socket.socketpair()
        # Room for a whole write (a few MB of evidence) in the kernel, so that sending it does
        # not hold the monitor until the writer has read it (the system may cap it lower).
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._conn = Connection(ours.detach())
        try:
            self._process = subprocess.Popen(
                # -P: the working directory is not put on sys.path (a kubesentinel/ there
                # must not be what the writer imports).
                [sys.executable, "-P", "-m", __name__, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        key = "" if signing_key is None else str(signing_key)
        self._conn.send_bytes(json.dumps({"location": self.location, "key": key}).encode())
        self._pending: deque[Callable[[StoreError | None], None]] = deque()
        self._changed = threading.Condition()
        self._error: StoreError | None = None
        self._receiver = threading.Thread(
            target=self._receive, name="kubesentinel-store-acks", daemon=True
        )
        self._receiver.start()

    def submit(self, encoded: EncodedWrite, done: Callable[[StoreError | None], None]) -> None:
        with self._changed:
            while len(self._pending) >= IN_FLIGHT and self._error is None:
                self._changed.wait()
            error = self._error
            if error is None:
                self._pending.append(done)
        if error is not None:
            _settle(done, error)
            raise error
        try:
            # The frames of one write, in EncodedWrite's field order.
            for frame in (encoded.events or b"[]", encoded.facets, encoded.evidence,
                          encoded.sidecar, encoded.incidents):  # fmt: skip
                self._conn.send_bytes(frame)
        except OSError as exc:
            self._fail(f"the store writer process is gone ({exc})")
            self._raise_error()

    def close(self) -> None:
        """Wait for every write sent, stop the writer; raise the first failure, if any."""
        with self._changed:
            while self._pending and self._error is None:
                self._changed.wait()
        with contextlib.suppress(OSError):  # already gone: the receiver has recorded why
            self._conn.send_bytes(_END)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._receiver.join(timeout=5)
        self._conn.close()
        with self._changed:
            self._raise_error()

    def _receive(self) -> None:
        while True:
            try:
                answer = self._conn.recv_bytes()
            except (EOFError, OSError):
                with self._changed:
                    if self._pending:
                        self._fail("the store writer process ended before committing")
                    self._changed.notify_all()
                # Its end of the pipe is closed: it has ended, or is ending. Reap it, so
                # that no zombie is left when the monitor stops without close().
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=30)
                return
            if answer:
                detail = json.loads(answer)
                self._fail(detail["message"], detail.get("file"), detail.get("hint"))
                continue
            with self._changed:
                if not self._pending:
                    continue
                done = self._pending.popleft()
            _settle(done, None)  # acknowledgements and metrics, outside the lock
            with self._changed:
                self._changed.notify_all()

    def _fail(self, message: str, file: str | None = None, hint: str | None = None) -> None:
        """Record the first failure; every write still pending is settled with it."""
        with self._changed:
            if self._error is None:
                self._error = StoreError(message, file=file or self.name, hint=hint)
            error = self._error
            pending = list(self._pending)
            self._pending.clear()
            self._changed.notify_all()
        for done in pending:
            _settle(done, error)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _settle(done: Callable[[StoreError | None], None], error: StoreError | None) -> None:
    """Run a settlement; a failing callback is logged, never allowed to stop the receiver
    (every later write would wait for it forever)."""
    try:
        done(error)
    except Exception:
        log.exception("settling a store write failed")


def _serve(location: str, signing_key: str, conn: Connection) -> None:
    """The writer process: commit each write received, answer, until told to end; closing
    the store signs a checkpoint over what it wrote."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from kubesentinel.runtime.store.open import open_store

    store: VaultStore | None = None
    try:
        store = open_store(location, signing_key=signing_key or None)
        tune_for_throughput()
        while True:
            events = conn.recv_bytes()
            if events == _END:
                return
            facets, evidence, sidecar, incidents = (conn.recv_bytes() for _ in range(4))
            encoded = EncodedWrite(events, facets, evidence, sidecar, incidents)
            store.apply(encoded)
            conn.send_bytes(b"")
    except StoreError as exc:
        _send_error(conn, {"message": exc.message, "file": exc.file, "hint": exc.hint})
    except (EOFError, OSError):
        return  # the monitor is gone: nothing left to answer
    except Exception as exc:
        _send_error(conn, {"message": f"the store writer failed: {exc!r}"})
    finally:
        if store is not None:
            with contextlib.suppress(StoreError):  # the monitor already knows the store failed
                store.close()


def _send_error(conn: Connection, detail: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.send_bytes(json.dumps(detail).encode())


def main(argv: list[str]) -> int:
    """The writer process: ``python -m kubesentinel.runtime.store.writer FD``."""
    conn = Connection(int(argv[0]))
    try:
        start = json.loads(conn.recv_bytes())
    except (EOFError, OSError, ValueError):
        return 2  # the monitor went away before saying which store
    _serve(str(start["location"]), str(start["key"]), conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
