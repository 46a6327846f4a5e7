"""One system call event as sysdig records it: the unit of syscall-sequence models."""

from __future__ import annotations

from dataclasses import dataclass

ENTER = ">"
EXIT = "<"


@dataclass(frozen=True, slots=True)
class SyscallEvent:
    """A sysdig event, reduced to what behaviour models read.

    ``None`` means the field was absent from the selection sysdig printed, or sysdig itself
    did not know it (``<NA>``, a thread id of -1): the default ``sysdig -j`` layout carries
    no ``container.id`` or ``proc.pid``, for example.
    """

    evt_type: str  # "open", "execve", or a sysdig meta event such as "switch"
    direction: str | None  # ENTER ">" or EXIT "<"
    time_ns: int | None  # nanoseconds since the epoch
    proc_name: str | None
    tid: int | None
    pid: int | None
    container_id: str | None  # "host" for processes outside any container, as sysdig says
    fd_name: str | None  # a path, "ip:port->ip:port", a pipe or socket name
    num: int | None = None  # evt.num: the event's number in its capture
