"""The entry point that builds a simulation: the cluster, its fixed events, attacks and noise."""

from __future__ import annotations

import random

from kubesentinel.runtime.simulate.cluster import NODES, build_cluster
from kubesentinel.runtime.simulate.constants import CLUSTER, DEFAULT_START_NS, MIN_HOURS, NS
from kubesentinel.runtime.simulate.fixed import (
    Fixed,
    dev_sessions,
    metrics_snapshots,
    rollout_audits,
)
from kubesentinel.runtime.simulate.manifests import cluster_manifests
from kubesentinel.runtime.simulate.noise import noise_profiles
from kubesentinel.runtime.simulate.plan import Plan
from kubesentinel.runtime.simulate.records import Simulation
from kubesentinel.runtime.simulate.render import Templates
from kubesentinel.runtime.simulate.scenarios import ATTACKS, play
from kubesentinel.runtime.simulate.workloads import WORKLOADS


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
    cluster = build_cluster(rng, start_ns, span)
    templates = Templates()
    audit_host = f"falco-k8saudit-{cluster.template_hash()}-{cluster.rand_str(5)}"
    fixed = Fixed(cluster, templates, audit_host)
    labels = tuple(play(fixed, scenario) for scenario in ATTACKS)
    rollout_audits(fixed)
    dev_sessions(fixed)
    metrics_snapshots(fixed)
    profiles = noise_profiles(cluster, templates)
    fixed.events.sort()
    return Simulation(
        seed=seed,
        start_ns=start_ns,
        end_ns=start_ns + span,
        events_per_s=events_per_s,
        cluster=CLUSTER,
        nodes=tuple(name for name, _, _ in NODES),
        workloads=WORKLOADS,
        labels=labels,
        manifests=cluster_manifests(),
        _plan=Plan(span, events_per_s, templates, fixed.events, profiles),
    )
