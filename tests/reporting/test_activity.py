"""Timeline, process tree, network peers and files from events' fields: caps and odd data."""

from __future__ import annotations

from typing import Any

from kubesentinel.models import Event, Priority, Workload
from kubesentinel.reporting.activity import (
    files_touched,
    network_peers,
    process_tree,
    timeline,
)
from kubesentinel.runtime.store.interface import StoredEvent

WEB = Workload("default", "prod", "Deployment", "web")


def stored(n: int, rule: str = "R", context: str | None = None, **fields: Any) -> StoredEvent:
    event = Event(
        id=f"e{n}", time_ns=1_000 + n, received_ns=1_000 + n, rule=rule,
        priority=Priority.WARNING, source="syscall", hostname="node-1", workload=WEB,
        pod="web-0", container_id="c1", container_image="nginx:1", tactics=(), techniques=(),
        tags=(), output="", fields=fields, origin=f"test:{n}",
    )  # fmt: skip
    return StoredEvent(event, "incident", context, 1, n, 1)


def test_timeline_collapses_neighbours_and_keeps_signals_when_cut() -> None:
    events = [stored(0, "A", None, **{"proc.name": "sh", "proc.cmdline": "sh -c x"})]
    events += [stored(n, "A", "repeat", **{"proc.name": "sh", "proc.cmdline": "sh -c x"})
               for n in range(1, 5)]  # fmt: skip
    events += [stored(5, "B", "low_priority", **{"proc.name": "ls"})]
    events += [stored(6, "A", "repeat", **{"proc.name": "sh", "proc.cmdline": "sh -c x"})]
    events += [stored(7, "C", None, **{"proc.name": "nc"})]
    whole = timeline(list(reversed(events)), {"e7": 0.9})
    assert [(r.rule, r.role, r.count) for r in whole.rows] == [
        ("A", "signal", 5), ("B", "low_priority", 1), ("A", "repeat", 1), ("C", "signal", 1)
    ]  # fmt: skip
    assert (whole.rows[0].first_ns, whole.rows[0].last_ns) == (1_000, 1_004)
    assert (whole.rows[0].pod, whole.rows[0].pods) == ("web-0", 1)
    assert whole.rows[-1].anomaly == 0.9
    assert (whole.events, whole.collapsed_rows) == (8, 4)
    cut = timeline(events, {}, cap=2)
    assert [(r.rule, r.role) for r in cut.rows] == [("A", "signal"), ("C", "signal")]
    assert (cut.collapsed_rows, cut.cap) == (4, 2)


def test_process_tree_merges_lineages_and_is_capped() -> None:
    events = [
        stored(0, **{"proc.name": "sh", "proc.pid": 12, "proc.cmdline": "sh -c id",
                     "proc.pname": "bash", "proc.ppid": 11, "proc.pcmdline": "bash -i",
                     "proc.aname[2]": "runc", "proc.aname[3]": None}),
        stored(1, **{"proc.name": "id", "proc.pid": "13", "proc.pname": "bash", "proc.ppid": 11,
                     "proc.aname[2]": "runc"}),
        stored(2, **{"proc.name": "<NA>"}),  # no process: not in the tree
        stored(3, **{"proc.name": "cat", "proc.pid": True, "proc.pname": ["x"]}),  # odd types
    ]  # fmt: skip
    tree = process_tree(events)
    [runc, cat] = tree.roots
    assert (runc.name, runc.pid, runc.events) == ("runc", None, 0)
    [bash] = runc.children
    assert (bash.name, bash.pid, bash.cmdlines) == ("bash", 11, ("bash -i",))
    assert [(c.name, c.pid, c.events) for c in bash.children] == [("sh", 12, 1), ("id", 13, 1)]
    assert (cat.name, cat.pid, cat.children) == ("cat", None, ())
    assert (tree.nodes, tree.left_out) == (5, 0)
    capped = process_tree(events, cap=3)
    assert (capped.nodes, capped.left_out) == (3, 2)


def test_network_peers_and_files_come_from_fd_fields() -> None:
    events = [
        stored(0, "Net", **{"fd.name": "10.0.0.1:5->6.6.6.6:4444", "fd.type": "ipv4",
                            "proc.name": "nc"}),
        stored(1, "Net", **{"fd.name": "10.0.0.1:5->6.6.6.6:4444", "fd.type": "ipv4",
                            "proc.name": "nc"}),
        stored(2, "Meta", **{"fd.rip": "fd00::1", "fd.rport": 80, "fd.lip": "10.0.0.1",
                             "fd.lport": 3333, "proc.name": "curl"}),
        stored(3, "Read", **{"fd.name": "/etc/shadow", "fd.type": "file", "proc.name": "cat"}),
        stored(4, "Pipe", **{"fd.name": "pipe:[123]", "fd.type": "pipe"}),
        stored(5, "Write", **{"fs.path.name": "/tmp/x", "proc.name": "sh"}),
    ]  # fmt: skip
    peers, left_out = network_peers(events)
    assert left_out == 0
    assert [(p.remote, p.local, p.process, p.count) for p in peers] == [
        ("10.0.0.1:5->6.6.6.6:4444", None, "nc", 2),
        ("[fd00::1]:80", "10.0.0.1:3333", "curl", 1),
    ]
    files, left_out = files_touched(events)
    assert [(f.path, f.process, f.rules) for f in files] == [
        ("/etc/shadow", "cat", ("Read",)), ("/tmp/x", "sh", ("Write",))
    ]  # fmt: skip
    assert left_out == 0
    capped, left_out = network_peers(events, cap=1)
    assert (len(capped), capped[0].count, left_out) == (1, 2, 1)  # the cut peer is counted
    assert files_touched(events, cap=1)[1] == 1
