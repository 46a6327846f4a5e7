"""The HTTP receiver's security options, and the policy that builds them from the command line.

Authentication fails closed:

- ``--token-env VAR`` given explicitly must name a set, non-empty variable; the default
  variable (``KUBESENTINEL_HTTP_TOKEN``) may be unset, which means no token;
- a receiver on an address other than loopback (127.0.0.0/8, ::1, localhost) needs a token
  or mutual TLS, unless ``--allow-unauthenticated`` says otherwise (then a warning is logged);
- ``https://`` needs ``--tls-cert`` and ``--tls-key``; ``--tls-client-ca`` requires a client
  certificate signed by that CA (Falco ``http_output.mtls``); the TLS options are refused on
  any other source.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from kubesentinel.errors import UsageError

DEFAULT_TOKEN_ENV: Final = "KUBESENTINEL_HTTP_TOKEN"  # noqa: S105 (a variable name)

log = logging.getLogger("kubesentinel.http")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    token: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = field(default=None, compare=False)
    mutual_tls: bool = False


def options_from_args(
    args: argparse.Namespace, uri: str, environ: Mapping[str, str]
) -> HttpOptions:
    """The receiver's options for ``uri``; UsageError when the command line is unsafe or wrong.

    Reads ``args.token_env`` (None: the default variable), ``args.tls_cert``, ``args.tls_key``,
    ``args.tls_client_ca`` and ``args.allow_unauthenticated``.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    token = _token(args.token_env, environ)
    files = {"--tls-cert": args.tls_cert, "--tls-key": args.tls_key,
             "--tls-client-ca": args.tls_client_ca}  # fmt: skip
    given = [option for option, value in files.items() if value]
    if scheme != "https":
        if given:
            raise UsageError(
                f"{', '.join(given)} apply to https:// sources only, not {uri!r}",
                hint="use --source https://HOST:PORT, or drop the TLS options",
            )
        if scheme != "http":
            return HttpOptions(token=token)
    elif not (args.tls_cert and args.tls_key):
        raise UsageError(
            f"{uri}: https needs a certificate and its key",
            hint="pass --tls-cert FILE and --tls-key FILE (PEM)",
        )
    tls = None
    if scheme == "https":
        tls = server_context(args.tls_cert, args.tls_key, args.tls_client_ca)
    mutual = bool(args.tls_client_ca)
    host = parts.hostname or ""
    if not (token or mutual or _loopback(host)):
        if not args.allow_unauthenticated:
            raise UsageError(
                f"refusing to receive alerts on {host} without authentication: anyone who "
                "reaches that address could inject or flood alerts",
                hint=f"export {DEFAULT_TOKEN_ENV} (a bearer token), use mutual TLS "
                "(--tls-client-ca), listen on 127.0.0.1, or pass --allow-unauthenticated",
            )
        log.warning("receiving alerts on %s without authentication (--allow-unauthenticated)", host)
    return HttpOptions(token=token, tls=tls, mutual_tls=mutual)


def server_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca`` a client certificate is required."""
    cert_pem = _read("--tls-cert", cert)
    key_pem = _read("--tls-key", key)
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise UsageError(f"--tls-cert {cert}: not a PEM certificate")
    if b"PRIVATE KEY-----" not in key_pem:
        raise UsageError(f"--tls-key {key}: not a PEM private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise UsageError(
            f"--tls-key {key}: cannot be used with --tls-cert {cert} ({exc.reason or exc})",
            hint="give the certificate and the private key it was issued for, both PEM",
        ) from None
    if client_ca:
        if b"-----BEGIN CERTIFICATE-----" not in _read("--tls-client-ca", client_ca):
            raise UsageError(f"--tls-client-ca {client_ca}: not a PEM CA certificate")
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise UsageError(
                f"--tls-client-ca {client_ca}: not a usable CA ({exc.reason or exc})"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _token(variable: str | None, environ: Mapping[str, str]) -> str | None:
    if variable is None:
        return environ.get(DEFAULT_TOKEN_ENV) or None
    value = environ.get(variable)
    if value is None or not value.strip():
        state = "not set" if value is None else "empty"
        raise UsageError(
            f"--token-env {variable}: the variable is {state}; export it or drop --token-env"
        )
    return value.strip()


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def _read(option: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
