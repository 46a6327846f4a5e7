"""Where alerts come from: ``open_source(uri)`` picks the source for a ``--source`` URI.

=====================================  ==================================================
URI                                    source
=====================================  ==================================================
``-``                                  stdin, JSON lines (``falco ... | kubesentinel``)
``PATH`` or ``file:///PATH``           a JSON-lines file; ``follow=True`` tails it
``http://HOST:PORT``                   receiver for Falco ``http_output`` / falcosidekick
``https://HOST:PORT``                   the same over TLS (give ``tls``: a server context)
``unix:///PATH``                       JSON lines over a unix socket (program_output+socat)
``nats://HOST[:PORT][/SUBJECT]``       JetStream durable consumer (falcosidekick NATS);
                                       PORT defaults to 4222, SUBJECT to ``falco.>``;
                                       query parameters ``durable=``, ``stream=`` and
                                       ``ack_wait=`` (seconds before an unsettled message
                                       is redelivered, default 30)
=====================================  ==================================================

Sources are imported on demand, so a replay never loads the NATS client.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from kubesentinel.errors import SourceError
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources.interface import RawAlert, Source
from kubesentinel.runtime.sources.queueing import DEFAULT_BUFFER_BYTES

__all__ = ["RawAlert", "Source", "open_source"]

_FORMS: Final = (
    "'-' (stdin), a file path, file:///PATH, http://HOST:PORT, https://HOST:PORT, "
    "unix:///PATH "
    "or nats://HOST:PORT/SUBJECT"
)
_SCHEMES: Final = frozenset({"file", "http", "https", "unix", "nats", "grpc", "grpcs"})
_GRPC_HINT: Final = (
    "Falco's gRPC output was deprecated in 0.43 and removed in 0.44: use http_output "
    "(--source http://HOST:PORT) or program_output through socat (--source unix:///PATH)"
)


def open_source(
    uri: str,
    *,
    queue_size: int,
    queue_bytes: int = DEFAULT_BUFFER_BYTES,
    metrics: Metrics | None = None,
    follow: bool = False,
    token: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Source:
    """Open the source named by ``uri``; SourceError (KS-E032) with a hint when it cannot be."""
    if uri == "-":
        from kubesentinel.runtime.sources.file import StreamSource

        return StreamSource("-", follow=follow)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or (scheme not in _SCHEMES and Path(uri).exists()):  # "a:b.jsonl" is a file
        from kubesentinel.runtime.sources.file import StreamSource

        return StreamSource(uri, follow=follow)
    if scheme == "file":
        from kubesentinel.runtime.sources.file import StreamSource

        if parts.netloc not in ("", "localhost"):
            raise _bad(uri, "a file:// URI names a local file: file:///PATH")
        return StreamSource(unquote(parts.path), follow=follow)
    if scheme in ("http", "https"):
        from kubesentinel.runtime.sources.http import HttpSource

        if (scheme == "https") != (tls is not None):
            why = "https needs a certificate" if tls is None else "TLS options need https://"
            raise _bad(uri, f"{why}: https://HOST:PORT with --tls-cert and --tls-key")
        host, port = _host_port(uri, parts)
        return HttpSource(
            host,
            port,
            queue_size,
            metrics=metrics,
            token=token,
            tls=tls,
            queue_bytes=queue_bytes,
        )
    if scheme == "unix":
        from kubesentinel.runtime.sources.unix import UnixSource

        path = unquote(parts.netloc + parts.path)
        if not path:
            raise _bad(uri, "give the socket path: unix:///var/run/falco/falco.sock")
        return UnixSource(path, queue_size, queue_bytes=queue_bytes)
    if scheme == "nats":
        from kubesentinel.runtime.sources.nats import DEFAULT_DURABLE, DEFAULT_SUBJECT, NatsSource

        host, port = _host_port(uri, parts, default_port=4222)
        subject = unquote(parts.path.lstrip("/")) or DEFAULT_SUBJECT
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"durable", "stream", "ack_wait"})
        if unknown:
            raise _bad(
                uri,
                f"unknown query parameter(s) {', '.join(unknown)}: durable=, stream=, ack_wait=",
            )
        ack_wait = _seconds(uri, query.get("ack_wait", "30"))
        userinfo = parts.netloc.rpartition("@")[0]  # nats://user:password@host:port
        return NatsSource(
            f"nats://{userinfo + '@' if userinfo else ''}{_join(host, port)}",
            subject,
            durable=query.get("durable", DEFAULT_DURABLE),
            stream=query.get("stream"),
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            ack_wait_s=ack_wait,
        )
    if scheme in ("grpc", "grpcs"):
        raise SourceError(f"unsupported alert source {uri!r}", hint=_GRPC_HINT)
    raise _bad(uri, f"unknown scheme {scheme!r}")


def _seconds(uri: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise _bad(uri, f"ack_wait={text!r} must be a number of seconds from 0 to 3600")
    return value


def _host_port(uri: str, parts: SplitResult, default_port: int | None = None) -> tuple[str, int]:
    try:
        port = parts.port
    except ValueError:
        raise _bad(uri, "the port must be a number from 0 to 65535") from None
    port = default_port if port is None else port
    if not parts.hostname or port is None:
        raise _bad(uri, "give both host and port, e.g. http://0.0.0.0:2801")
    return parts.hostname, port


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bad(uri: str, why: str) -> SourceError:
    return SourceError(f"unsupported alert source {uri!r}: {why}", hint=f"use {_FORMS}")
