"""The HTTP receiver's bytes on the wire: answers, the smuggling check h11 leaves to us, the
listening socket. h11 parses every request; the answers are prebuilt bytes (see http.py)."""

from __future__ import annotations

import errno
import re
import socket
from typing import Final

from kubesentinel.errors import SourceError

RETRY_AFTER_S: Final = 1
TEXT: Final = "text/plain; charset=utf-8"
REASON_CHARS: Final = 300  # a dead-letter reason is a line, not a document

_PHRASES: Final = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    501: "Not Implemented", 503: "Service Unavailable",
}  # fmt: skip
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")  # where h11 ends a head


def response(code: int, body: bytes = b"", *, ctype: str = TEXT, close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {code} {_PHRASES.get(code, 'Error')}", f"Content-Length: {len(body)}"]
    if body:
        head.append(f"Content-Type: {ctype}")
    if code in (429, 503):
        head.append(f"Retry-After: {RETRY_AFTER_S}")
    if code == 401:
        head.append('WWW-Authenticate: Bearer realm="kubesentinel"')
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


OK: Final = response(200)
OK_CLOSE: Final = response(200, close=True)
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def text(reason: str) -> bytes:
    """An untrusted reason as one printable line: control characters become '?'."""
    return (_CONTROL.sub("?", reason[:REASON_CHARS]) + "\n").encode()


def smuggled(head: bytes, chunked: bool) -> bool:
    """Content-Length twice (h11 merges equal copies) or beside Transfer-Encoding (h11 lets
    the chunked framing win): a proxy in front may frame the request otherwise, so refuse it."""
    # ``head`` may run on into the body; h11 also ends a head at a bare "\n\n".
    end = head.find(b"\r\n\r\n")
    if end < 0:
        blank = _BLANK_LINE.search(head)
        end = blank.start() if blank else len(head)
    low = head[:end].lower()
    count = low.count(b"\ncontent-length:")
    if count == 0:
        return False
    if count > 1 or chunked:
        return True
    start = low.find(b"\ncontent-length:")
    end = low.find(b"\n", start + 1)
    return b"," in low[start : end if end > 0 else len(low)]


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            hint = f"port {port} is in use: stop the other listener or pick another port"
        elif exc.errno == errno.EACCES:
            hint = "ports below 1024 need privileges: pick a port above 1023"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = f"{host} is not an address of this machine: use 0.0.0.0 or 127.0.0.1"
        else:
            hint = "check the host and port of --source http://HOST:PORT"
        raise SourceError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint
        ) from None
    return sock
