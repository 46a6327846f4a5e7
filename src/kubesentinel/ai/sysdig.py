"""``sysdig -j`` JSON lines to ``SyscallEvent``: tolerant of layouts, strict about each field.

Accepted, as Debian's sysdig 0.29 prints them (``sysdig -r FILE.scap -j``):

- the default layout (``evt.cpu``, ``evt.dir``, ``evt.info``, ``evt.num``, ``evt.outputtime``,
  ``evt.type``, ``proc.name``, ``thread.tid``), the ``-pc``/``-pk`` layouts (``container.id``,
  ``container.name``, ``k8s.pod.name``, ``thread.vtid`` added) and any ``-p "%field ..."``
  selection, keys in any order, unknown keys ignored;
- time from ``evt.rawtime``, ``evt.outputtime``, ``evt.time``, ``evt.datetime`` or
  ``evt.time.iso8601`` (the first present): integer nanoseconds, a digit string, or a date-time
  string (taken as UTC without an offset); a time of day alone (the text default of
  ``evt.time``) carries no date and leaves ``time_ns`` None;
- ``null``, ``""`` and sysdig's ``<NA>`` / ``N/A`` for unknown values; a negative thread or
  process id (sysdig prints -1 for "none") as None;
- ``fd.name`` absent (the default layout): taken, best effort, from ``evt.info``/``evt.args``
  (``fd=3(<f>/etc/ld.so.cache)``, else ``name=...``, else ``tuple=...``);
- blank lines, and the ``[`` / ``]`` lines and trailing commas of old sysdig's array output.

Rejected, each line with a reason and its ``file:line``, and reading goes on: over
``MAX_LINE_BYTES`` (the rest of the line is skipped without being held in memory), binary data,
not JSON, not an object, no ``evt.type``, an ``evt.dir`` other than ``>``/``<``, a known field
of the wrong type (``thread.tid: "abc"``, a float time that cannot be exact nanoseconds).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Final

import orjson

from kubesentinel.models.syscall_event import ENTER, EXIT, SyscallEvent

__all__ = [
    "MAX_LINE_BYTES",
    "Malformed",
    "SysdigLineError",
    "parse_line",
    "read_events",
    "read_path",
]

# An execve exit with a long environment is a few KiB; a MiB is garbage or an attack on memory.
MAX_LINE_BYTES: Final = 1 << 20
_SKIP_CHUNK: Final = 1 << 16
_REASON_CHARS: Final = 160
_TIME_KEYS: Final = (
    "evt.rawtime", "evt.outputtime", "evt.time", "evt.datetime", "evt.time.iso8601",
)  # fmt: skip
_UNKNOWN: Final = frozenset(("", "<NA>", "N/A"))
_MAX_NS: Final = 2**63 - 1
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d\d:?\d\d)?",
    re.ASCII,
)
_TIME_OF_DAY: Final = re.compile(r"\d\d:\d\d:\d\d(?:\.\d{1,9})?", re.ASCII)
# Argument texts as sysdig renders them: "fd=3(<f>/etc/passwd)", "name=/etc/x", "tuple=a:1->b:2".
_FD_ARG: Final = re.compile(r"(?:^| )fd=-?\d+\(<[^>]{1,2}>([^)]+)\)")
_NAME_ARG: Final = re.compile(r"(?:^| )(?:name|tuple)=(\S+)")
_JSON_KINDS: Final = {list: "an array", str: "a string", int: "a number", float: "a number",
                      bool: "a boolean", type(None): "null"}  # fmt: skip

_log = logging.getLogger(__name__)


class SysdigLineError(ValueError):
    """One line is not a sysdig event; the message says why, in a few words."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that was skipped: where it is and why."""

    origin: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}:{self.line}: {self.reason}"


def _log_malformed(bad: Malformed) -> None:
    _log.warning("skipped %s", bad)


def read_path(
    path: str | Path, on_malformed: Callable[[Malformed], None] = _log_malformed
) -> Iterator[SyscallEvent]:
    """The events of a file of ``sysdig -j`` lines, in file order. ``OSError`` if unreadable."""
    with open(path, "rb") as stream:
        yield from read_events(stream, str(path), on_malformed)


def read_events(
    stream: IO[bytes], origin: str, on_malformed: Callable[[Malformed], None] = _log_malformed
) -> Iterator[SyscallEvent]:
    """The events of a stream of ``sysdig -j`` lines; each bad line goes to ``on_malformed``.

    Never raises for a line's content (only the stream's own ``OSError``), so one corrupt line
    in a long capture costs that line only.
    """
    for number, line in _lines(stream):
        if line is None:
            reason = f"line longer than {MAX_LINE_BYTES} bytes"
        else:
            try:
                event = parse_line(line)
            except SysdigLineError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug must cost one line, not the whole trace
                reason = f"internal error while parsing: {type(exc).__name__}: {exc}"
            else:
                if event is not None:
                    yield event
                continue
        on_malformed(Malformed(origin, number, reason[:_REASON_CHARS]))


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines; None for a line over the limit, whose rest is read and dropped."""
    number = 0
    while line := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(_SKIP_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, line


def parse_line(data: bytes | str) -> SyscallEvent | None:
    """One ``sysdig -j`` line as an event; None for a line that holds none (blank, ``[``, ``]``).

    Raises ``SysdigLineError`` saying why the line is not an event.
    """
    text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    text = text.strip()
    if text.endswith(b","):  # old sysdig printed one JSON array, an object per line
        text = text[:-1].rstrip()
    if text in (b"", b"[", b"]"):
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SysdigLineError(_json_reason(text, exc)) from None
    if not isinstance(obj, dict):
        raise SysdigLineError(f"not a JSON object but {_JSON_KINDS.get(type(obj), 'a value')}")
    return _event(obj)


def _json_reason(text: bytes, exc: orjson.JSONDecodeError) -> str:
    if b"\x00" in text:
        return "binary data, not a JSON line"
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data (not UTF-8), not a JSON line"
    return f"not JSON: {exc}"


def _event(obj: dict[str, Any]) -> SyscallEvent:
    evt_type = obj.get("evt.type")
    if type(evt_type) is not str or not evt_type:
        raise SysdigLineError(
            "no evt.type (sysdig -j always prints it; add %evt.type to a -p selection)"
            if evt_type is None
            else f"evt.type must be a non-empty string, not {_kind(evt_type)}"
        )
    direction = obj.get("evt.dir")
    if direction is not None and direction not in (ENTER, EXIT):
        raise SysdigLineError(f"evt.dir must be '>' or '<', not {_show(direction)}")
    fd_name = _text(obj, "fd.name") if "fd.name" in obj else _fd_from_args(obj)
    return SyscallEvent(
        evt_type=evt_type,
        direction=direction,
        time_ns=_time_ns(obj),
        proc_name=_text(obj, "proc.name"),
        tid=_ident(obj, "thread.tid"),
        pid=_ident(obj, "proc.pid"),
        container_id=_text(obj, "container.id"),
        fd_name=fd_name,
        num=_ident(obj, "evt.num"),
    )


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise SysdigLineError(f"{key} must be a string, not {_kind(value)}")
    return None if value in _UNKNOWN else value


def _ident(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is str and value.isascii() and value.lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int:
        raise SysdigLineError(f"{key} must be an integer, not {_kind(value)}")
    return value if value >= 0 else None  # sysdig prints -1 for "no thread"


def _time_ns(obj: dict[str, Any]) -> int | None:
    for key in _TIME_KEYS:
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is str and value.isascii() and value.isdigit():
            value = int(value)
        if type(value) is int:
            if 0 <= value <= _MAX_NS:
                return value
            raise SysdigLineError(f"{key} {value} is outside int64 nanoseconds since 1970")
        if type(value) is str:
            if _TIME_OF_DAY.fullmatch(value):
                continue  # a time of day has no date: ordering only, not an instant
            stamp = _datetime_ns(value)
            if stamp is not None:
                return stamp
        raise SysdigLineError(
            f"{key} must be integer nanoseconds or a date-time, not {_show(value)}"
        )
    return None


def _datetime_ns(text: str) -> int | None:
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz = UTC
    if offset is not None and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=tz)  # fmt: skip
    except ValueError:
        return None
    seconds = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    stamp = seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))
    return stamp if 0 <= stamp <= _MAX_NS else None


def _fd_from_args(obj: dict[str, Any]) -> str | None:
    args = obj.get("evt.info", obj.get("evt.args"))
    if type(args) is not str:
        return None
    match = _FD_ARG.search(args) or _NAME_ARG.search(args)
    return match.group(1) if match else None


def _kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
