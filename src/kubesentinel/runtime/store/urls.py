"""Where a store lives: a SQLite file path, or a ``postgresql://`` URL (no driver needed here).

A URL may carry a password, so it is shown only through ``redact``: every message, log line
and report names the store by its redacted form. ``schema=NAME``, a query parameter libpq does
not know, picks the PostgreSQL schema that holds the vault's tables (default ``kubesentinel``);
it is taken out before the rest of the URL goes to libpq.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["DEFAULT_SCHEMA", "PostgresTarget", "is_url", "parse_postgres_url", "redact"]

DEFAULT_SCHEMA: Final = "kubesentinel"
_SCHEMES: Final = ("postgresql", "postgres")
_SCHEME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# PostgreSQL folds unquoted names to lower case; a schema name is kept to what needs no quoting
# in the docs' GRANT examples.
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# user:password@ in the authority of any URL (a password may hold '@' when percent-encoded).
_PASSWORD: Final = re.compile(r"(?P<head>^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#:@]*:)[^/?#@]*@")
# password=... as a query parameter (libpq takes it there too).
_PASSWORD_PARAM: Final = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a file path."""
    return bool(_SCHEME.match(location))


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``: what a message may show."""
    url = _PASSWORD.sub(r"\g<head>***@", url)
    return _PASSWORD_PARAM.sub(r"\g<head>***", url)


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    conninfo: str  # the URL for libpq, without our own parameters (may hold a password)
    schema: str
    name: str  # the URL as messages show it: redacted

    def __repr__(self) -> str:  # never the password, not even in a traceback's locals
        return f"PostgresTarget({self.name!r})"


def parse_postgres_url(url: str) -> PostgresTarget:
    """A ``postgresql://`` URL as libpq takes it, and the schema it names; ValueError saying
    what is wrong (the message shows the URL redacted)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"{redact(url)}: not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE); "
            "a SQLite store is a file path"
        )
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in params if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"{redact(url)}: schema={schema!r} is not a plain PostgreSQL name (lower-case "
            "letters, digits and '_', not starting with a digit, at most 63)"
        )
    rest = urlencode([(key, value) for key, value in params if key != "schema"])
    conninfo = urlunsplit(parts._replace(query=rest))
    return PostgresTarget(conninfo, schema, redact(url))
