"""What an incident's events did: the timeline, the process tree, network peers, files.

Everything is read from the events' own fields (Falco's ``output_fields``); nothing is guessed.
Fields are untrusted: a value of an unexpected type is skipped or shown as text, never trusted
as a number. Each result is bounded (a cap), and says how much it left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from kubesentinel.models.report import (
    FileTouched,
    NetworkPeer,
    ProcessNode,
    ProcessTree,
    Timeline,
    TimelineRow,
)
from kubesentinel.runtime.store.interface import StoredEvent

__all__ = [
    "NETWORK_CAP",
    "TIMELINE_CAP",
    "TREE_CAP",
    "files_touched",
    "network_peers",
    "process_tree",
    "timeline",
]

TIMELINE_CAP: Final = 200  # rows, after collapsing repeats
TREE_CAP: Final = 150  # process nodes
NETWORK_CAP: Final = 50  # peers, and files touched
CMDLINES_KEPT: Final = 3  # distinct command lines shown per process
_ANCESTORS: Final = range(2, 8)  # proc.aname[2] (grandparent) .. aname[7], as Falco names them
_MISSING: Final = frozenset({"", "<NA>", "N/A"})
_NETWORK_TYPES: Final = frozenset({"ipv4", "ipv6"})


def role_of(stored: StoredEvent) -> str:
    return stored.context or "signal"


def text_field(fields: Mapping[str, Any], name: str) -> str | None:
    """A field as text; None when absent, null or Falco's ``<NA>``."""
    value = fields.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return None if text in _MISSING else text


def _int_field(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


# -- timeline ------------------------------------------------------------------------------


def timeline(
    events: Sequence[StoredEvent], anomalies: Mapping[str, float], cap: int = TIMELINE_CAP
) -> Timeline:
    """Events oldest first; consecutive events of the same (rule, process, command line) are
    one row with a count. Over ``cap`` rows, those holding a signal are kept first."""
    ordered = sorted(events, key=lambda s: (s.event.time_ns, s.event.id))
    rows: list[TimelineRow] = []
    has_signal: list[bool] = []
    pods: list[set[str | None]] = []
    for stored in ordered:
        event = stored.event
        process = text_field(event.fields, "proc.name")
        cmdline = text_field(event.fields, "proc.cmdline")
        score = anomalies.get(event.id)
        signal = stored.context is None
        last = rows[-1] if rows else None
        if last is not None and (last.rule, last.process, last.cmdline) == (
            event.rule,
            process,
            cmdline,
        ):
            pods[-1].add(event.pod)
            rows[-1] = TimelineRow(
                last.first_ns,
                event.time_ns,
                last.role,
                last.rule,
                last.priority,
                last.process,
                last.cmdline,
                last.pod,
                len(pods[-1] - {None}),
                last.count + 1,
                _max(last.anomaly, score),
            )
            has_signal[-1] = has_signal[-1] or signal
            continue
        rows.append(
            TimelineRow(
                event.time_ns,
                event.time_ns,
                role_of(stored),
                event.rule,
                event.priority.label,
                process,
                cmdline,
                event.pod,
                0 if event.pod is None else 1,
                1,
                score,
            )
        )
        has_signal.append(signal)
        pods.append({event.pod})
    collapsed = len(rows)
    if collapsed > cap:
        # Signals first, then context, each oldest first; shown again in time order.
        chosen = sorted(range(collapsed), key=lambda n: (not has_signal[n], n))[:cap]
        rows = [rows[n] for n in sorted(chosen)]
    return Timeline(tuple(rows), len(events), collapsed, cap)


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


# -- process tree --------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    name: str
    pid: int | None
    cmdlines: list[str] = field(default_factory=list)
    events: int = 0
    rules: list[str] = field(default_factory=list)
    children: dict[tuple[str, int | None], _Node] = field(default_factory=dict)


def _lineage(fields: Mapping[str, Any]) -> list[tuple[str, int | None, str | None]]:
    """(name, pid, command line) from the oldest known ancestor down to the process."""
    name = text_field(fields, "proc.name")
    if name is None:
        return []
    chain = [(name, _int_field(fields, "proc.pid"), text_field(fields, "proc.cmdline"))]
    parent = text_field(fields, "proc.pname")
    if parent is not None:
        pcmd = text_field(fields, "proc.pcmdline")
        chain.append((parent, _int_field(fields, "proc.ppid"), pcmd))
        for n in _ANCESTORS:
            ancestor = text_field(fields, f"proc.aname[{n}]")
            if ancestor is None:
                break
            chain.append((ancestor, _int_field(fields, f"proc.apid[{n}]"), None))
    chain.reverse()
    return chain


def process_tree(events: Iterable[StoredEvent], cap: int = TREE_CAP) -> ProcessTree:
    """The processes of the events under their parents and ancestors (proc.pname,
    proc.aname[N]), merged by name and pid; nodes past ``cap`` are counted, not kept."""
    roots: dict[tuple[str, int | None], _Node] = {}
    count = left_out = 0
    for stored in events:
        level = roots
        node: _Node | None = None
        lineage = _lineage(stored.event.fields)
        for name, pid, cmdline in lineage:
            found = level.get((name, pid))
            if found is None:
                if count >= cap:
                    left_out += 1
                    node = None
                    break
                found = level[(name, pid)] = _Node(name, pid)
                count += 1
            kept = found.cmdlines
            if cmdline is not None and len(kept) < CMDLINES_KEPT and cmdline not in kept:
                kept.append(cmdline)
            node, level = found, found.children
        if node is not None:
            node.events += 1
            if stored.event.rule not in node.rules and len(node.rules) < CMDLINES_KEPT:
                node.rules.append(stored.event.rule)
    return ProcessTree(tuple(_frozen(n) for n in roots.values()), count, left_out, cap)


def _frozen(node: _Node) -> ProcessNode:
    return ProcessNode(
        node.name,
        node.pid,
        tuple(node.cmdlines),
        node.events,
        tuple(node.rules),
        tuple(_frozen(child) for child in node.children.values()),
    )


# -- network and files ---------------------------------------------------------------------


def _endpoint(ip: str | None, port: str | None) -> str | None:
    if ip is None:
        return None
    return f"[{ip}]:{port}" if ":" in ip and port else f"{ip}:{port}" if port else ip


def network_peers(
    events: Iterable[StoredEvent], cap: int = NETWORK_CAP
) -> tuple[list[NetworkPeer], int]:
    """Connections named by fd.name (``client->server``) or fd.rip/fd.sip and their ports; and
    how many more distinct ones there were past ``cap``."""
    found: dict[tuple[str, str | None, str | None], tuple[list[str], int]] = {}
    dropped: set[Any] = set()
    for stored in events:
        fields = stored.event.fields
        name = text_field(fields, "fd.name")
        kind = text_field(fields, "fd.type")
        remote = _endpoint(text_field(fields, "fd.rip"), text_field(fields, "fd.rport"))
        remote = remote or _endpoint(text_field(fields, "fd.sip"), text_field(fields, "fd.sport"))
        if name is not None and (kind in _NETWORK_TYPES or "->" in name):
            remote = name
        if remote is None:
            continue
        local = _endpoint(text_field(fields, "fd.lip"), text_field(fields, "fd.lport"))
        key = (remote, None if remote == name else local, text_field(fields, "proc.name"))
        _count(found, dropped, key, stored.event.rule, cap)
    peers = [NetworkPeer(r, loc, p, tuple(rules), n) for (r, loc, p), (rules, n) in found.items()]
    return peers, len(dropped)


def files_touched(
    events: Iterable[StoredEvent], cap: int = NETWORK_CAP
) -> tuple[list[FileTouched], int]:
    """Files named by fd.name (file descriptors of type file, or absolute paths); and how many
    more distinct ones there were past ``cap``."""
    found: dict[tuple[str, str | None], tuple[list[str], int]] = {}
    dropped: set[Any] = set()
    for stored in events:
        fields = stored.event.fields
        name = text_field(fields, "fd.name") or text_field(fields, "fs.path.name")
        kind = text_field(fields, "fd.type")
        if name is None or kind in _NETWORK_TYPES or "->" in name:
            continue
        if kind not in ("file", "directory", None) or not (kind or name.startswith("/")):
            continue
        key = (name, text_field(fields, "proc.name"))
        _count(found, dropped, key, stored.event.rule, cap)
    files = [FileTouched(path, p, tuple(rules), n) for (path, p), (rules, n) in found.items()]
    return files, len(dropped)


def _count(
    found: dict[Any, tuple[list[str], int]], dropped: set[Any], key: Any, rule: str, cap: int
) -> None:
    seen = found.get(key)
    if seen is None:
        if len(found) >= cap:
            dropped.add(key)
            return
        found[key] = ([rule], 1)
        return
    rules, n = seen
    if rule not in rules and len(rules) < CMDLINES_KEPT:
        rules.append(rule)
    found[key] = (rules, n + 1)
