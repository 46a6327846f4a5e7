"""JSON lines over a unix socket: Falco's ``program_output`` through socat.

Falco configuration (``json_output: true``)::

    program_output:
      enabled: true
      keep_alive: true
      program: "socat - UNIX-CONNECT:/var/run/falco/falco.sock"

The monitor listens on the socket (``--source unix:///var/run/falco/falco.sock``) and accepts
several clients at once (several Falco processes, or a restart overlapping the old one). Each
line is one alert, with origin ``unix:<path>#<client>:<line>``.

Back-pressure, never a drop: the queue between the socket and the pipeline is bounded; when it
is full the client's reading thread blocks, stops reading, the socket buffer fills and the
writer (socat, then Falco) waits.

Why not Falco's gRPC output: it was deprecated in Falco 0.43.0 (falcosecurity/falco #3763) and
removed, with the embedded gRPC server, in Falco 0.44.0 (#3798). The design's config key
``runtime.falco_socket: unix:///var/run/falco/falco.sock`` therefore now names this JSON-lines
socket rather than Falco's old gRPC socket.

A stale socket file left by a crash is replaced; a live one (another monitor listening) or a
path that is not a socket is an error. The socket is created with mode 0660 and removed on
``close()``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from typing import Final

from kubesentinel.errors import SourceError
from kubesentinel.runtime.sources.file import MAX_LINE_BYTES, TRUNCATED, LineSplitter
from kubesentinel.runtime.sources.interface import RawAlert
from kubesentinel.runtime.sources.queueing import DEFAULT_BUFFER_BYTES, AlertQueue, live_batches

RECV_BYTES: Final = 256 * 1024
SOCKET_MODE: Final = 0o660
TICK_S: Final = 0.2  # how often blocked threads look at the closing flag


class UnixSource:
    """Listen on a unix stream socket at ``path``; one reading thread per client."""

    live = True  # waits for alerts until closed

    def __init__(
        self,
        path: str,
        queue_size: int,
        *,
        queue_bytes: int = DEFAULT_BUFFER_BYTES,
        max_line: int = MAX_LINE_BYTES,
        idle_s: float = 0.2,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be positive")
        self.path = path
        self.name = f"unix://{path}"
        self.queue = AlertQueue(queue_size, queue_bytes)
        self.idle_s = idle_s
        self._max_line = max_line
        self._closing = threading.Event()
        self._clients: list[threading.Thread] = []
        self._server = _listen(path)
        self._ident = _identity(path)
        self._accepter = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self._accepter.start()

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        return live_batches(
            self.queue, max_batch, idle_s=self.idle_s, ended=self._ended, draining=self._draining
        )

    def _ended(self) -> bool:
        """Closed, and every reader has queued its last line."""
        return self._closing.is_set() and not self._draining()

    def _draining(self) -> bool:
        return self._closing.is_set() and any(t.is_alive() for t in self._clients)

    def close(self) -> None:
        """Stop accepting and reading; ``batches()`` hands out what was read, then ends."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._accepter.join(timeout=2)
        with contextlib.suppress(OSError):
            if _identity(self.path) == self._ident:  # never remove another listener's socket
                os.unlink(self.path)

    def _accept(self) -> None:
        client = 0
        try:
            while not self._closing.is_set():
                try:
                    conn, _ = self._server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._closing.is_set():
                        return
                    time.sleep(TICK_S)  # e.g. out of descriptors: try again shortly
                    continue
                client += 1
                thread = threading.Thread(
                    target=self._read, args=(conn, client), name=f"{self.name}#{client}"
                )
                thread.daemon = True
                self._clients = [t for t in self._clients if t.is_alive()]
                self._clients.append(thread)
                thread.start()
        finally:
            self._server.close()

    def _read(self, conn: socket.socket, client: int) -> None:
        splitter = LineSplitter(self._max_line)
        prefix = f"unix:{self.path}#{client}:"
        conn.settimeout(TICK_S)
        try:
            while not self._closing.is_set():
                try:
                    chunk = conn.recv(RECV_BYTES)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                if not self._put(splitter.feed(chunk), prefix):
                    return
            self._put(splitter.flush(), prefix)
        finally:
            conn.close()

    def _put(self, lines: list[tuple[int, bytes, bool]], prefix: str) -> bool:
        """Queue the lines, blocking while the queue is full; False once closing."""
        if not lines:
            return True
        now = time.time_ns()
        q = self.queue
        for n, data, cut in lines:
            alert = RawAlert(data, f"{prefix}{n}{TRUNCATED}" if cut else f"{prefix}{n}", now)
            while not q.put(alert, timeout=TICK_S):
                if self._closing.is_set():
                    return False
        return True


def _listen(path: str) -> socket.socket:
    hint = "give a path in an existing, writable directory, e.g. unix:///run/kubesentinel.sock"
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, SOCKET_MODE)
        sock.listen(64)
        sock.settimeout(TICK_S)
    except OSError as exc:
        sock.close()
        raise SourceError(
            f"cannot listen on unix socket {path}: {exc.strerror or exc}", file=path, hint=hint
        ) from None
    return sock


def _clear_stale(path: str) -> None:
    """Remove a socket file nobody listens on; refuse to touch anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SourceError(f"cannot use {path}: {exc.strerror}", file=path) from None
    if not stat.S_ISSOCK(mode):
        raise SourceError(
            f"{path} exists and is not a socket",
            file=path,
            hint="remove it or choose another path for unix:///PATH",
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listening: left over by a crash
        return
    finally:
        probe.close()
    raise SourceError(
        f"another process is already listening on {path}",
        file=path,
        hint="stop the other monitor or choose another path for unix:///PATH",
    )


def _identity(path: str) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino
