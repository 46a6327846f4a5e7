"""The bytes kept as evidence of an alert: as received, or a Falco JSON document for an alert
that was built in code (tests, the simulator's own objects) and so has no bytes of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from kubesentinel.models.falco_alert import FalcoAlert

__all__ = ["falco_document", "rfc3339"]

# For what orjson refuses: integers beyond 64 bits, lone surrogates (kept as \ud800 escapes,
# so the document is valid UTF-8 and reads back exactly). default=str keeps a stray non-JSON
# value (bytes from a plugin) from failing the alert.
_STDLIB: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True, default=str
)


def falco_document(alert: FalcoAlert) -> bytes:
    """The alert as Falco's json_output writes it (keys sorted, no spaces; uuid when set)."""
    document: dict[str, Any] = {
        "hostname": alert.hostname,
        "output": alert.output,
        "output_fields": dict(alert.output_fields),
        "priority": alert.priority.label,
        "rule": alert.rule,
        "source": alert.source,
        "tags": list(alert.tags),
        "time": rfc3339(alert.time_ns),
    }
    if alert.uuid:
        document["uuid"] = alert.uuid
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        return _STDLIB.encode(document).encode("ascii")


def rfc3339(time_ns: int) -> str:
    """Nanoseconds since the epoch as Falco prints "time": 2026-01-01T00:00:00.013324350Z."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"
