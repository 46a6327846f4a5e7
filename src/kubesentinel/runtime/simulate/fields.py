"""Field helpers: the Falco output fields of a process, a connection, an exec audit event."""

from __future__ import annotations

import random
from typing import Any


def proc(
    name: str,
    exepath: str,
    cmdline: str,
    parent: str | None,
    *ancestors: str,  # from the grandparent up: proc.aname[2], [3], ...
    user: tuple[str, int] = ("root", 0),
    tty: int = 0,
    flags: str = "EXE_LOWER_LAYER",
    evt_type: str = "execve",
    pexe: str | None = None,
    pcmdline: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "evt.type": evt_type,
        "evt.arg.flags": flags,
        "user.name": user[0],
        "user.uid": user[1],
        "user.loginuid": -1,
        "proc.name": name,
        "proc.exepath": exepath,
        "proc.cmdline": cmdline,
        "proc.pname": parent,
        "proc.tty": tty,
        "proc.pexe": pexe,
        "proc.pexepath": pexe,
        "proc.pcmdline": pcmdline,
    }
    for depth in range(2, 8):
        fields[f"proc.aname[{depth}]"] = (
            ancestors[depth - 2] if depth - 2 < len(ancestors) else None
        )
    return fields


def connect(
    local_ip: str, local_port: int, remote_ip: str, remote_port: int, evt_type: str = "connect"
) -> dict[str, Any]:
    # Falco reports the server's port as fd.lport and the client's as fd.rport.
    return {
        "evt.type": evt_type,
        "fd.name": f"{local_ip}:{local_port}->{remote_ip}:{remote_port}",
        "fd.lport": remote_port,
        "fd.rport": local_port,
        "fd.sip": remote_ip,
        "fd.type": "ipv4",
        "fd.l4proto": "tcp",
    }


def ephemeral_port(rng: random.Random) -> int:
    return rng.randrange(32768, 61000)  # Linux's ephemeral port range


def exec_audit(user: str, pod: str, namespace: str, command: str) -> dict[str, Any]:
    return {
        "ka.user.name": user,
        "ka.target.name": pod,
        "ka.target.namespace": namespace,
        "ka.target.resource": "pods",
        "ka.target.subresource": "exec",
        "ka.uri.param[command]": command,
    }
