"""Identity of documents no rule reads: validated by a fast parser, parsed once per content.

Only apiVersion, kind and metadata are kept (the reader keeps no more of such objects). The
same CRD is often vendored many times (a fifth of the CRD bytes of the shared corpus are
copies), so large documents are remembered by a SHA-256 of their bytes: hashing them costs
0.02 s of CPU where parsing costs 0.28 s. Hits get their own deep copy: origins.py edits
metadata.

rapidyaml (``ryml``) was measured and rejected. It parses the corpus's 27 MB of such documents
in 0.13 s of CPU against yaml_rs's 0.28 s, but takes duplicate keys (we warn about them:
KS-W001) and undefined aliases, and prints its errors to stderr. Finding duplicates through its
node API costs 0.3-0.6 s (a call per node, about 0.4 us each); emitting JSON to check them
costs 0.1 s before any parsing. yaml_rs refuses duplicate keys and undefined aliases itself.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any


@functools.cache
def fast_parser() -> Any:
    """yaml_rs, an optional accelerator (without it every document takes the line-aware
    parser), imported on first use: it costs 6 MB of memory that the monitor, which reads
    YAML only for its config and policies, need not carry. A scan imports it before it forks."""
    try:
        import yaml_rs

        return yaml_rs
    except ImportError:  # pragma: no cover - exercised only where the wheel is missing
        return None


IDENTITY_KEYS = ("apiVersion", "kind", "metadata")
CACHE_MIN_BYTES = 16 * 1024  # smaller documents parse faster than a hit is copied
CACHE_MAX_ENTRIES = 1024  # identities are small; the bound is for long-lived processes

_ANCHOR = re.compile(rb"&([0-9A-Za-z_-]+)")
_BEFORE_ANCHOR = frozenset(b" \t\r\n[{,")

_seen: dict[bytes, dict[str, Any]] = {}


def identity(chunk: bytes) -> dict[str, Any] | None:
    """apiVersion, kind and metadata of a valid one-document chunk; None means "parse fully".

    None when the fast parser is missing or refuses the chunk (malformed YAML, duplicate keys,
    undefined aliases: the full parser then reports them with their line), or when the chunk
    is not one mapping with a string ``kind``.
    """
    parser = fast_parser()
    if parser is None or b"\t" in chunk:
        # yaml_rs takes a tab in indentation that libyaml refuses (a mutation fuzz found it);
        # tabs are rare in manifests, so those documents all go to the full parser.
        return None
    key = None
    if len(chunk) >= CACHE_MIN_BYTES:
        import hashlib  # here: OpenSSL takes 3 ms to load, too much for a one-file scan

        key = hashlib.sha256(chunk).digest()
    if key is not None and key in _seen:
        return copy.deepcopy(_seen[key])
    try:
        value = parser.loads(chunk.decode("utf-8-sig"), parse_datetime=False)
    except (KeyboardInterrupt, SystemExit):
        raise  # Ctrl-C during a parse stops the scan, as anywhere else
    except BaseException:  # the Rust parser may raise anything, even PanicException
        return None
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        return None
    slim = {name: value[name] for name in IDENTITY_KEYS if name in value}
    if not (all(type(k) is str for k in value) and _string_keys(slim.get("metadata"))):
        # A null key (a line starting ": ") yaml_rs takes and libyaml refuses, or a key that
        # YAML 1.1 reads apart (yes, 1): the full parser decides, as for the rest of the scan.
        return None
    if key is not None:
        if len(_seen) >= CACHE_MAX_ENTRIES:
            _seen.clear()
        _seen[key] = copy.deepcopy(slim)
    return slim


def _string_keys(value: Any) -> bool:
    """Every mapping key in ``value`` is a string (identities are small: a full walk)."""
    if isinstance(value, dict):
        return all(type(k) is str and _string_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_string_keys(item) for item in value)
    return True


def repeats_anchor(chunk: bytes) -> bool:
    """Whether an anchor name may occur twice: yaml_rs takes that (YAML 1.2 does), libyaml not.

    Text such as ``a &x b`` inside a string also counts; the caller then asks libyaml.
    """
    if b"&" not in chunk:  # the common case: one memchr over the chunk
        return False
    names = [
        match.group(1)
        for match in _ANCHOR.finditer(chunk)
        if not match.start() or chunk[match.start() - 1] in _BEFORE_ANCHOR
    ]
    return len(names) != len(set(names))
