"""A small, regular cluster for the detector tests: two workloads in one namespace, an hour of
steady behaviour, and the events the tests play against it."""

from __future__ import annotations

from kubesentinel.models.event import Event
from tests.ai.helpers import NS, alert, events_of

T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
API = "api-7d9f8b6c5d-x2x4z"
CART = "cart-6b8d9c7f45-p2q4r"
NGINX = {"proc.name": "nginx", "proc.pname": "containerd-shim", "proc.exepath": "/usr/sbin/nginx"}
PYTHON = {
    "proc.name": "python",
    "proc.pname": "containerd-shim",
    "proc.exepath": "/usr/bin/python3",
    "user.name": "app",
}


def training() -> list[Event]:
    """An hour: api's nginx and cart's python every 2 s, each talking to a service."""
    lines = []
    for i in range(1800):
        t = T0 + i * 2 * NS
        lines.append(alert(t, API, NGINX | {"evt.type": "connect",
                     "fd.name": f"10.244.1.7:{30000 + i}->10.96.0.10:53"}))  # fmt: skip
        lines.append(alert(t + NS, CART, PYTHON | {"evt.type": "connect",
                     "fd.name": f"10.244.2.8:{30000 + i}->10.96.4.4:5432"},
                     image="registry.example.com/shop/cart"))  # fmt: skip
    return events_of(lines)


def later(seconds: float, pod: str, fields: dict[str, object], **kw: str) -> Event:
    """One event ``seconds`` after the training hour."""
    t = T0 + 3600 * NS + int(seconds * NS)
    return events_of([alert(t, pod, dict(fields), **kw)])[0]


def miner(seconds: float) -> Event:
    return later(seconds, API, {"proc.name": "xmrig", "proc.pname": "sh",
                                "proc.exepath": "/tmp/xmrig", "evt.type": "connect",
                                "fd.name": "10.244.1.7:41000->45.9.20.1:3333"})  # fmt: skip


def neighbour_habit(seconds: float) -> Event:
    """api runs what cart runs, as cart does: mildly unusual, not an attack."""
    return later(seconds, API, PYTHON)
