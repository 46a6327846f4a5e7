"""Raw Falco JSON to ``FalcoAlert``: every real layout in, a clear reason for anything else.

Accepted, as Falco (``json_output: true`` on stdout, file, program or http output) and
falcosidekick (``uuid`` added) write them:

- keys in any order; unknown keys ignored (falcosidekick custom fields live in output_fields);
- ``source`` and ``tags`` absent (Falco < 0.30), null or, from falcosidekick, ``source: ""``:
  source defaults to ``"syscall"``;
- null ``output``, ``hostname``, ``output_fields``, ``uuid``; ``hostname`` falls back to
  ``output_fields["evt.hostname"]``;
- ``time`` in RFC 3339 with 0 to 9 fraction digits and ``Z`` or an offset; when it is absent or
  unusable, ``output_fields`` ``evt.time``, ``evt.time.iso8601`` or ``evt.rawtime`` (integer
  nanoseconds; a float or a digit string after a falcosidekick round trip);
- priorities in any case with Falco's aliases (``warn``, ``info``, ``crit``...);
- field names with brackets (``proc.aname[2]``) kept as they are;
- invalid UTF-8 inside an otherwise valid alert (a process argument) replaced with U+FFFD;
- ``internal`` alerts (metrics snapshots, syscall drops) parse like any other.

Rejected, each with a short reason: over ``MAX_ALERT_BYTES``, empty, binary data, not JSON,
truncated JSON, nested too deeply, an integer longer than Python converts (4,300 digits), not
an object, missing or empty rule, missing or unknown priority, no usable time (a time must fall
within the int64 nanoseconds Falco itself uses: 1970 to 2262), a known field of the wrong type.

``parse_batch`` never raises for one item: an unexpected exception while parsing an item
(a bug, or a library's error we did not foresee) rejects that item with the reason
``internal error while parsing: <type>: <message>`` (see ``internal_error``) and the rest of the
batch goes on.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Final

import orjson

from kubesentinel.errors import EventError
from kubesentinel.models.falco_alert import FalcoAlert, Priority
from kubesentinel.runtime.sources.interface import RawAlert

__all__ = [
    "MAX_ALERT_BYTES",
    "Rejected",
    "decode_json",
    "internal_error",
    "parse_alert",
    "parse_batch",
]

# One alert is a few KiB; anything past 1 MiB is garbage or an attack on memory.
MAX_ALERT_BYTES: Final = 1 << 20

_HINT: Final = (
    "each alert must be one JSON object as Falco writes it with json_output: true "
    "(or a falcosidekick payload)"
)
_TIME_FIELDS: Final = ("evt.time", "evt.time.iso8601", "evt.rawtime")
# ASCII digits only: str's \d and isdigit() also take other scripts' digits ("\u0663", "\u00b2").
_RFC3339: Final = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(?:[Zz]|([+-])(\d\d):?(\d\d))",
    re.ASCII,
)
# Times are int64 nanoseconds, as Falco's own evt.rawtime (and the store's INTEGER) are.
_MAX_NS: Final = 2**63 - 1
_MAX_NS_DIGITS: Final = len(str(_MAX_NS))
_INTERNAL_MESSAGE_CHARS: Final = 120
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_JSON_TYPES: Final = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that is not a Falco alert: where it came from, why, and its bytes as read.

    ``index`` is its position in the batch given to ``parse_batch`` or ``workers.prepare``
    (-1 when made elsewhere): the pipeline settles that batch item as rejected.
    """

    origin: str
    reason: str
    data: bytes
    index: int = field(default=-1, compare=False)


class _MalformedError(Exception):
    """Internal: carries the short reason; parse_alert turns it into an EventError."""


def parse_alert(data: bytes | str, origin: str) -> FalcoAlert:
    """One alert; raises EventError naming the origin and what is wrong."""
    try:
        return _parse(data, origin)
    except _MalformedError as exc:
        raise EventError(f"malformed Falco alert from {origin}: {exc}", hint=_HINT) from None


def decode_json(data: bytes | str) -> Any:
    """JSON read the way alerts are (size limit, invalid UTF-8 replaced); EventError if not."""
    try:
        return _decode(data)
    except _MalformedError as exc:
        raise EventError(f"not JSON: {exc}") from None


def parse_batch(
    items: Sequence[RawAlert], offset: int = 0
) -> tuple[list[tuple[FalcoAlert, int]], list[Rejected]]:
    """Parse a batch: (alert, received_ns) for the good items, Rejected for the rest.

    Never raises for one item (see the module docstring); ``offset`` is added to each
    Rejected's ``index`` (the batch is a slice of a larger one).
    """
    parsed: list[tuple[FalcoAlert, int]] = []
    rejected: list[Rejected] = []
    for n, item in enumerate(items, offset):
        try:
            parsed.append((_parse(item.data, item.origin), item.received_ns))
        except _MalformedError as exc:
            rejected.append(Rejected(item.origin, str(exc), _utf8(item.data), n))
        except Exception as exc:  # any input, even one that trips a bug, costs one item only
            reason = internal_error("parsing", exc)
            rejected.append(Rejected(item.origin, reason, _bytes_of(item.data), n))
    return parsed, rejected


def internal_error(stage: str, exc: BaseException) -> str:
    """The reason for an item an unexpected exception rejected: ``internal error while
    <stage>: <type>: <message>`` (message on one line, cut to 120 characters)."""
    try:
        message = " ".join(str(exc).split())
    except Exception:  # a str() that fails too
        message = ""
    if len(message) > _INTERNAL_MESSAGE_CHARS:
        message = message[: _INTERNAL_MESSAGE_CHARS - 3] + "..."
    head = f"internal error while {stage}: {type(exc).__name__}"
    return f"{head}: {message}" if message else head


def _bytes_of(data: bytes | str) -> bytes:
    """The item's bytes for the dead-letter file, whatever a source handed out."""
    try:
        return _utf8(data)
    except Exception:
        return b""


def _parse(data: bytes | str, origin: str) -> FalcoAlert:
    if type(data) is not bytes and not isinstance(data, str):
        data = bytes(data)  # a bytearray or memoryview a source handed out
    obj = _decode(data)
    if type(obj) is not dict:
        raise _MalformedError(f"not a JSON object but {_JSON_TYPES.get(type(obj), 'a value')}")

    rule = obj.get("rule")
    if type(rule) is not str:
        raise _MalformedError(_missing_or_bad("rule", rule, "a string"))
    if not rule or rule.isspace():
        raise _MalformedError("empty rule")

    value = obj.get("priority")
    priority = _priority_of(value) if type(value) is str else None
    if priority is None:
        raise _MalformedError(_priority_reason(value))

    fields = obj.get("output_fields")
    if fields is None:
        fields = {}
    elif type(fields) is not dict:
        raise _MalformedError(_missing_or_bad("output_fields", fields, "an object"))

    time_ns = _time_ns(obj.get("time"), fields)

    source, output, hostname, uuid = _texts(obj, fields)
    tags = obj.get("tags")
    tags = () if tags is None else _tags(tags)

    raw = data.strip() if type(data) is bytes else _utf8(data).strip()
    return FalcoAlert(
        time_ns, rule, priority, source, output, hostname, tags, fields, uuid, origin, raw
    )


def _texts(obj: dict[str, Any], fields: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(source, output, hostname, uuid); the common case (all present, right types) costs one
    get and one type check each."""
    source = obj.get("source")
    if type(source) is not str or not source:
        source = _text(obj, "source") or "syscall"  # absent before Falco 0.30, "" via sidekick
    elif not source.islower():
        source = source.lower()
    output = obj.get("output")
    if type(output) is not str:
        output = _text(obj, "output") or ""
    hostname = obj.get("hostname")
    if type(hostname) is not str:
        hostname = _text(obj, "hostname")
        if hostname is None:
            hostname = fields.get("evt.hostname")
            if type(hostname) is not str:
                hostname = ""
    uuid = obj.get("uuid")
    if type(uuid) is not str or not uuid:
        uuid = _text(obj, "uuid") or None
    return source, output, hostname, uuid


def _utf8(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return bytes(data)  # bytes, or a bytearray/memoryview a source handed out


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or type(value) is str:
        return value
    raise _MalformedError(_missing_or_bad(name, value, "a string"))


def _tags(value: object) -> tuple[str, ...]:
    if type(value) is not list:
        raise _MalformedError(_missing_or_bad("tags", value, "an array of strings"))
    for tag in value:
        if type(tag) is not str:
            raise _MalformedError(f"tags holds {_JSON_TYPES.get(type(tag))}, not a string")
    return tuple(value)


def _decode(data: bytes | str) -> Any:
    size = len(data)
    if isinstance(data, str) and size * 4 > MAX_ALERT_BYTES:  # long text: its UTF-8 size counts
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_ALERT_BYTES:
        raise _MalformedError(f"alert is {size} bytes, over the {MAX_ALERT_BYTES} byte limit")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass  # the stdlib decides: it also reads NaN, huge integers and names the fault
    try:
        obj = json.loads(data)
    except UnicodeDecodeError:
        return _decode_lossy(data)
    except json.JSONDecodeError as exc:
        raise _MalformedError(_json_reason(data, exc)) from None
    except RecursionError:
        raise _MalformedError("not JSON: nested too deeply") from None
    except ValueError:  # int() refuses the digits: the only other ValueError json.loads raises
        limit = sys.get_int_max_str_digits()
        raise _MalformedError(f"not JSON: an integer of more than {limit} digits") from None
    return obj


def _decode_lossy(data: bytes | str) -> Any:
    """Falco may pass a process's invalid UTF-8 through; keep the alert, replace the bytes."""
    raw = _utf8(data)
    try:
        return json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        raise _MalformedError("binary data, not JSON") from None


def _json_reason(data: bytes | str, exc: json.JSONDecodeError) -> str:
    text = exc.doc
    stripped = text.rstrip()
    if not stripped:
        return "empty input"
    if _looks_binary(data):
        return "binary data, not JSON"
    message = exc.msg.lower()
    where = (
        f"{message} char {exc.pos}" if message.endswith(" at") else f"{message} at char {exc.pos}"
    )
    if message.startswith("unterminated string") or exc.pos >= len(stripped):
        return f"truncated JSON after {len(stripped)} chars ({where})"
    return f"not JSON: {where}"


def _looks_binary(data: bytes | str) -> bool:
    raw = _utf8(data)
    return any(byte < 0x20 and byte not in b"\t\n\r" for byte in raw[:4096])


def _missing_or_bad(name: str, value: object, expected: str) -> str:
    if value is None:
        return f"missing {name}"
    return f"{name} is {_JSON_TYPES.get(type(value), 'a value')}, expected {expected}"


@lru_cache(maxsize=256)
def _priority_of(text: str) -> Priority | None:
    """Any case, Falco's aliases; None if unknown. Cached: alerts repeat a few spellings."""
    if len(text) > 32:  # "informational" is 13: no hostile megabyte key in the cache
        return None
    try:
        return Priority.parse(text)
    except ValueError:
        return None


def _priority_reason(value: object) -> str:
    if type(value) is not str:
        return _missing_or_bad("priority", value, "a string")
    return f"unknown priority {value[:40]!r}"


def _time_ns(value: object, fields: dict[str, Any]) -> int:
    """Nanoseconds since the epoch from "time", else from the evt.time fields."""
    if type(value) is str:
        time_ns = _rfc3339_ns(value)
        if time_ns is not None:
            return time_ns
    for name in _TIME_FIELDS:
        time_ns = _field_ns(fields.get(name))
        if time_ns is not None:
            return time_ns
    if value is None:
        raise _MalformedError("no time and no evt.time in output_fields")
    shown = repr(value[:40]) if type(value) is str else _JSON_TYPES.get(type(value), "a value")
    raise _MalformedError(f"time {shown} is not an RFC 3339 timestamp and no evt.time field")


def _rfc3339_ns(text: str) -> int | None:
    # Falco writes exactly 30 characters, 9 fraction digits and "Z"; alerts arrive in time
    # order, so the seconds part of nearly every alert is in the cache.
    if len(text) == 30 and text[29] == "Z" and text[19] == ".":
        fraction = text[20:29]
        if fraction.isdigit() and fraction.isascii():
            seconds = _seconds_of(text[:19])
            if seconds is not None:
                time_ns = seconds * 1_000_000_000 + int(fraction)
                return time_ns if 0 < time_ns <= _MAX_NS else None
    return _rfc3339_ns_slow(text)


@lru_cache(maxsize=4096)
def _seconds_of(stamp: str) -> int | None:
    """Epoch seconds of "YYYY-MM-DDTHH:MM:SS" (a UTC time's first 19 characters), else None."""
    match = _RFC3339.fullmatch(stamp + "Z")
    return None if match is None else _seconds(*match.groups()[:4])


def _seconds(day: str, hour: str, minute: str, second: str) -> int | None:
    h, m, s = int(hour), int(minute), int(second)
    if h > 23 or m > 59 or s > 60:  # 60: a leap second, as RFC 3339 allows
        return None
    try:
        days = date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    return days * 86_400 + h * 3600 + m * 60 + s


def _rfc3339_ns_slow(text: str) -> int | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    seconds = _seconds(day, hour, minute, second)
    if seconds is None:
        return None
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            return None
        offset = oh * 3600 + om * 60
        seconds += -offset if sign == "+" else offset
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    time_ns = seconds * 1_000_000_000 + nanos
    return time_ns if 0 < time_ns <= _MAX_NS else None  # Go's zero time means "not set"


def _field_ns(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= _MAX_NS else None
    if isinstance(value, float):
        # falcosidekick decodes numbers as float64: a quarter-microsecond precision survives.
        # (NaN fails the test; 2**63 itself is above every float below it.)
        return int(value) if 0 < value < _MAX_NS else None
    if isinstance(value, str):
        if value.isdigit() and value.isascii():
            if len(value) > _MAX_NS_DIGITS:
                return None
            time_ns = int(value)
            return time_ns if 0 < time_ns <= _MAX_NS else None
        return _rfc3339_ns(value)
    return None
