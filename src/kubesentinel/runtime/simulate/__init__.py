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
Falco's default ``append_output`` (0.41+) adds to syscall alerts. Only those facts are kept, in
``rules.py``; nothing is read at run time.

Speed: each (rule, pod, command) alert is rendered to JSON once and split around its three time
slots (output prefix, ``evt.time``, ``time``); an alert in the stream is then one string join.
Background times come from a seeded Poisson process, already in order, merged with the sorted
fixed events, so a stream of any length is produced lazily in constant memory.
"""

from kubesentinel.runtime.simulate.constants import DEFAULT_START_NS, SCENARIOS
from kubesentinel.runtime.simulate.generate import simulate
from kubesentinel.runtime.simulate.records import (
    ScenarioLabel,
    ScenarioStep,
    Simulation,
    SimWorkload,
)
from kubesentinel.runtime.simulate.workloads import WORKLOADS
from kubesentinel.runtime.simulate.write import write_simulation

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
