"""Test helpers for the HTTP receiver: a raw keep-alive client and a stand-in pipeline."""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from kubesentinel.runtime.sources.http import HttpSource
from kubesentinel.runtime.sources.interface import Outcome, RawAlert

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def post_bytes(body: bytes, path: str = "/", headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


class Client:
    """One connection; reads whole responses (head and Content-Length body)."""

    def __init__(
        self, address: tuple[str, int], *, tls: ssl.SSLContext | None = None, timeout: float = 5
    ) -> None:
        self.buf = b""
        sock = socket.create_connection(address, timeout=timeout)
        try:
            self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        except OSError:
            sock.close()
            raise

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self) -> bytes:
        """The next whole response; b"" if the server closed first."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if not self._more():
                return b""
        length = _LENGTH.search(self.buf[:end])
        size = end + 4 + (int(length.group(1)) if length else 0)
        while len(self.buf) < size:
            if not self._more():
                return b""
        out, self.buf = self.buf[:size], self.buf[size:]
        return out

    def quiet_for(self, seconds: float) -> bool:
        """True if nothing arrives within ``seconds`` (an answer that must still be held)."""
        if self.buf:
            return False
        ready, _, _ = select.select([self.sock], [], [], seconds)
        return not ready

    def closed_by_server(self, seconds: float = 5) -> bool:
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()

    def __del__(self) -> None:  # tests leave many clients to the garbage collector
        if hasattr(self, "sock"):
            self.sock.close()


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response else 0


def wait_until(condition: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Pipeline:
    """Stands in for the monitor's pipeline: takes batches and settles every item, on a
    thread of its own as the store's acknowledgement thread does."""

    def __init__(
        self, source: HttpSource, outcome: Outcome = Outcome.STORED, reason: str = ""
    ) -> None:
        self.source = source
        self.outcome = outcome
        self.reason = reason
        self.items: list[RawAlert] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.source.batches(64):
            for item in batch:
                self.items.append(item)
                assert item.ack is not None
                item.ack(self.outcome, self.reason)

    def stop(self) -> None:
        self.source.close()
        self.thread.join(timeout=5)
