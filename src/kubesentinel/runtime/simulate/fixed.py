"""Fixed events: GitOps rollouts, developers' exec sessions, Falco metrics snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubesentinel.models.falco_alert import Priority
from kubesentinel.runtime.simulate.cluster import NODES, Cluster
from kubesentinel.runtime.simulate.constants import NS
from kubesentinel.runtime.simulate.fields import exec_audit, proc
from kubesentinel.runtime.simulate.render import Templates, dumps, rfc3339
from kubesentinel.runtime.simulate.workloads import BY_NAME, digest


@dataclass(slots=True)
class Fixed:
    c: Cluster
    templates: Templates
    audit_host: str  # the Falco pod running the k8saudit plugin
    events: list[tuple[int, int]] = field(default_factory=list)

    def add(self, offset: int, host: str, rule: str, fields: Mapping[str, Any]) -> int:
        index = self.templates.add(host, rule, fields)
        self.events.append((offset, index))
        return index


def rollout_audits(f: Fixed) -> None:
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


def dev_sessions(f: Fixed) -> None:
    """Developers exec into the staging preview: an audit alert, then the terminal shell."""
    c = f.c
    w = BY_NAME["web-preview"]
    for _ in range(max(1, round(3 * c.span_ns / (3600 * NS)))):
        at = int(c.rng.uniform(0.02, 0.97) * c.span_ns)
        pod = c.pod_at(w.name, at)
        user = c.rng.choice(("alice@example.com", "bob@example.com"))
        f.add(at, f.audit_host, "Attach/Exec Pod", exec_audit(user, pod.name, w.namespace, "sh"))
        shell = proc("sh", "/usr/bin/dash", "sh", "runc", user=w.user, tty=34816)
        later = at + c.rng.randrange(200_000_000, 600_000_000)
        f.add(later, pod.host, "Terminal shell in container", pod.fields() | shell)


def metrics_snapshots(f: Fixed) -> None:
    """Each node's Falco writes a metrics snapshot every 15 minutes (metrics.interval 15m)."""
    c = f.c
    interval = 15 * 60 * NS
    for name, ip, _ in NODES:
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
                "falco.sha256_config_file.falco_yaml": digest("falco.yaml")[7:],
                "falco.sha256_rules_file.falco_rules_yaml": digest("falco_rules.yaml")[7:],
                "falco.start_ts": started,
                "falco.version": "0.41.3",
                "scap.engine_name": "modern_bpf",
                "scap.n_drops_perc": 0.0,
            }
            # Falco writes internal alerts without tags.
            line = dumps({
                "hostname": name,
                "output": "Falco metrics snapshot",
                "output_fields": dict(sorted(fields.items())),
                "priority": Priority.INFORMATIONAL.label,
                "rule": "Falco internal: metrics snapshot",
                "source": "internal",
                "time": rfc3339(at),
            })  # fmt: skip
            f.events.append((at - c.start_ns, f.templates.add_line(line)))
            at += interval
