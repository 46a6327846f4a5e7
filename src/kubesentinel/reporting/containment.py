"""Containment and remediation for one workload: the steps of a report's section 8.

In the order an on-call engineer acts: isolate the pods (quarantine label and a deny-all
NetworkPolicy), stop the workload from making more (scale down, suspend, cordon), rotate the
service account's credentials, then harden the workload (a securityContext patch built from the
posture findings, and pointers to the fixes a patch cannot make). Every name that comes from
the cluster or an alert is quoted with ``shlex``, so each stays one shell word.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import yaml

from kubesentinel.models.event import Workload
from kubesentinel.models.posture import PostureFinding
from kubesentinel.reporting.patches import FIXES, builtin_remediations, patch_for

__all__ = [
    "POLICY_NAME",
    "QUARANTINE_LABEL",
    "ContainmentStep",
    "containment_plan",
    "quarantine_policy",
]

QUARANTINE_LABEL: Final = "kubesentinel.io/quarantine"
POLICY_NAME: Final = "kubesentinel-quarantine"  # one per namespace, shared by its quarantined pods
_STOPPED_LABEL: Final = "kubesentinel.io/stopped"  # a node label no node carries

_API_VERSIONS: Final[Mapping[str, str]] = {
    "Pod": "v1",
    "ReplicationController": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "DeploymentConfig": "apps.openshift.io/v1",  # OpenShift
}
_SCALABLE: Final = frozenset(
    {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "DeploymentConfig"}
)
# Kinds whose pod template cannot change in place: patch their source manifest instead.
_IMMUTABLE_TEMPLATE: Final = frozenset({"Pod", "Job"})
_SERVICE_ACCOUNT_PATHS: Final[Mapping[str, str]] = {
    "Pod": "{.spec.serviceAccountName}",
    "CronJob": "{.spec.jobTemplate.spec.template.spec.serviceAccountName}",
}
_LEGACY_TOKEN: Final = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type
# RFC 1123 subdomain, the form of every ServiceAccount name the API server accepts.
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_LIST_PODS: Final = (
    "custom-columns=POD:.metadata.name,OWNER:.metadata.ownerReferences[0].name,NODE:.spec.nodeName"
)


@dataclass(frozen=True, slots=True)
class ContainmentStep:
    title: str  # "Isolate the workload's pods"
    why: str  # one sentence
    commands: tuple[str, ...]  # shell commands, every untrusted part shlex-quoted
    manifest: str | None = None  # YAML text when the step applies a manifest
    manifest_name: str | None = None  # suggested file name, e.g. "isolate-api.yaml"


def containment_plan(
    workload: Workload,
    findings: Sequence[PostureFinding],
    *,
    pods: Sequence[str] = (),
    containers: Sequence[str] = (),
    nodes: Sequence[str] = (),
    service_account: str | None = None,
    init_containers: Sequence[str] = (),
    remediations: Mapping[str, str] | None = None,
) -> tuple[ContainmentStep, ...]:
    """The containment steps for ``workload``, in the order to take them.

    ``pods``, ``containers`` (and ``init_containers``) and ``nodes`` are the names the incident
    knows; ``remediations`` maps rule ids to their remediation text (the built-in rules' when
    None), for the findings a securityContext patch cannot fix.
    """
    if workload.kind == "Host":
        return (_host_step(workload.name),)
    if workload.kind == "Pod" and not pods:
        pods = (workload.name,)
    rule_ids = tuple(dict.fromkeys(f.rule_id for f in findings))
    steps = [_isolate(workload, pods, rule_ids), _stop(workload, pods)]
    if nodes:
        steps.append(_cordon(nodes))
    steps.append(_credentials(workload, service_account))
    table = builtin_remediations() if remediations is None else remediations
    steps.extend(_harden(workload, findings, containers, init_containers, table))
    return tuple(steps)


# -- commands -----------------------------------------------------------------------------------


def _sh(*words: str) -> str:
    return shlex.join(words)


def _kubectl(namespace: str, *words: str) -> str:
    return _sh("kubectl", "-n", namespace, *words)


def _positional(name: str) -> tuple[str, ...]:
    """A name as kubectl's positional argument: after "--" when it could pass for a flag."""
    return ("--", name) if name.startswith("-") else (name,)


def _resource(kind: str) -> str:
    """kubectl's name for a kind: its lowercase singular (deployment, cronjob, ...)."""
    return kind.lower()


def _file_part(name: str) -> str:
    """A name made safe for a file name: lowercase letters, digits, dots and dashes."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip(".-")[:63]
    return cleaned or "workload"


# -- 1. isolate ---------------------------------------------------------------------------------


def quarantine_policy(namespace: str) -> str:
    """A NetworkPolicy denying all traffic to and from the quarantined pods of ``namespace``."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
            # Both types and no rules: nothing in, nothing out.
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    return yaml.safe_dump(policy, sort_keys=False)


def _isolate(workload: Workload, pods: Sequence[str], rule_ids: Sequence[str]) -> ContainmentStep:
    ns = workload.namespace
    label = f"{QUARANTINE_LABEL}=true"
    if pods:
        commands = [_kubectl(ns, "label", f"pod/{pod}", label, "--overwrite") for pod in pods]
        finding = "T"
    else:
        commands = [
            _kubectl(ns, "get", "pods", "-o", _LIST_PODS),
            _kubectl(ns, "label")
            + ' "pod/${POD:?set POD to one of its pods listed above}" '
            + _sh(label, "--overwrite"),
        ]
        finding = (
            f"Its pods are those whose OWNER is {workload.name} (a Deployment's are owned by its "
            f"ReplicaSet {workload.name}-HASH, a CronJob's by its Jobs {workload.name}-NUMBER); t"
        )
    file = f"isolate-{_file_part(workload.name)}.yaml"
    commands.append(_sh("kubectl", "apply", "-f", file))
    why = (
        f"{finding}he NetworkPolicy denies all ingress and egress of every pod labelled "
        f"{label} in namespace {ns} wherever the network plugin enforces NetworkPolicy "
        "(connections already open may survive on some plugins, and traffic from the pod's own "
        "node, such as kubelet probes, is always allowed); the pods keep running for forensics"
        + (
            "."
            if workload.kind == "Pod"
            else ", and adding a label does not detach a pod from its controller, which still "
            "counts it and deletes it on a scale-down (the next step says how to keep it)."
        )
    )
    if "KS-0004" in rule_ids:
        why += (
            " This workload uses the host's network, which NetworkPolicy does not govern: "
            "isolate its node with the infrastructure's firewall instead."
        )
    return ContainmentStep(
        "Isolate the workload's pods", why, tuple(commands), quarantine_policy(ns), file
    )


# -- 2. stop the spread -------------------------------------------------------------------------


def _release_hint(workload: Workload) -> str:
    return (
        f"to keep a quarantined pod running after that, first remove from it one label of the "
        f"selector the first command prints ({_kubectl(workload.namespace, 'label')} "
        f"pod/POD KEY-), so the {workload.kind} releases it"
    )


def _stop(workload: Workload, pods: Sequence[str]) -> ContainmentStep:
    ns, kind, name = workload.namespace, workload.kind, workload.name
    target = f"{_resource(kind)}/{name}"
    selector = _kubectl(ns, "get", target, "-o", "jsonpath={.spec.selector}")
    title = f"Stop the {kind} from running more pods"
    if kind == "Deployment":
        release = [_kubectl(ns, "label", f"pod/{pod}", "pod-template-hash-") for pod in pods]
        why = (
            "Scaling to zero deletes every pod of the Deployment's ReplicaSets, quarantined ones "
            "included"
            + (
                "; removing pod-template-hash first takes the named pods out of their "
                "ReplicaSet's selector, so it releases them (they keep running, cut off, for "
                "forensics) and starts replacements that the scale-down removes"
                if pods
                else ", so capture evidence first"
            )
            + "; a HorizontalPodAutoscaler leaves a target at zero replicas alone, but a GitOps "
            "controller may restore the count."
        )
        return ContainmentStep(
            title, why, (*release, _kubectl(ns, "scale", target, "--replicas=0"))
        )
    if kind in _SCALABLE:
        why = f"Scaling to zero deletes the {kind}'s pods, quarantined ones included; " + (
            _release_hint(workload) + "." if pods else "capture evidence first."
        )
        commands = (*([selector] if pods else []), _kubectl(ns, "scale", target, "--replicas=0"))
        return ContainmentStep(title, why, commands)
    if kind == "DaemonSet":
        node_selector = {"nodeSelector": {_STOPPED_LABEL: "true"}}
        never = json.dumps({"spec": {"template": {"spec": node_selector}}}, separators=(",", ":"))
        why = (
            "A DaemonSet cannot be scaled: a nodeSelector that no node matches makes it delete "
            "its pods from every node, quarantined ones included"
            + ("; " + _release_hint(workload) if pods else ", so capture evidence first")
            + f" (to restore it, patch {_STOPPED_LABEL} to null)."
        )
        patch = _kubectl(ns, "patch", target, "--type", "strategic", "-p", never)
        return ContainmentStep(title, why, (*([selector] if pods else []), patch))
    suspend = '{"spec":{"suspend":true}}'
    if kind == "Job":
        why = (
            "Suspending a Job terminates its running pods (quarantined ones too) and starts no "
            "new ones until it is resumed, so capture evidence first."
        )
        return ContainmentStep(
            title, why, (_kubectl(ns, "patch", target, "--type", "merge", "-p", suspend),)
        )
    if kind == "CronJob":
        jobs = "custom-columns=JOB:.metadata.name,OWNER:.metadata.ownerReferences[0].name"
        why = (
            "Suspending a CronJob only stops it from starting Jobs; the Jobs it already started "
            "(OWNER column) keep running until each is suspended with "
            f"{_kubectl(ns, 'patch')} job/JOB --type merge -p {shlex.quote(suspend)}, which "
            "terminates their pods, so capture evidence first."
        )
        commands = (
            _kubectl(ns, "patch", target, "--type", "merge", "-p", suspend),
            _kubectl(ns, "get", "jobs", "-o", jobs),
        )
        return ContainmentStep(title, why, commands)
    if kind == "Pod":
        why = (
            "A bare pod has no controller to scale and nothing recreates it; it is already cut "
            "off, so delete it only once evidence is captured (deleting it also invalidates its "
            "bound service-account token)."
        )
        return ContainmentStep(
            "Remove the pod once evidence is captured",
            why,
            tuple(_kubectl(ns, "delete", f"pod/{pod}") for pod in pods),
        )
    why = f"KubeSentinel knows no way to stop a {kind}; stop its controller by its own means."
    return ContainmentStep(title, why, ())


def _cordon(nodes: Sequence[str]) -> ContainmentStep:
    why = (
        "Cordoning marks a node unschedulable so no new pod lands there, while the pods on it, "
        "the quarantined ones included, keep running (do not drain it before evidence is "
        "captured: draining evicts them); DaemonSet pods are still placed on a cordoned node."
    )
    return ContainmentStep(
        "Keep new pods off the node",
        why,
        tuple(_sh("kubectl", "cordon", *_positional(n)) for n in nodes),
    )


def _host_step(host: str) -> ContainmentStep:
    why = (
        "The alert came from the host itself, outside any pod, where NetworkPolicy does not "
        "apply: cordoning stops new pods landing there (running pods stay); isolate the host "
        "with the infrastructure's firewall."
    )
    return ContainmentStep(
        "Keep new pods off the host", why, (_sh("kubectl", "cordon", *_positional(host)),)
    )


# -- 3. credentials -----------------------------------------------------------------------------


def _credentials(workload: Workload, service_account: str | None) -> ContainmentStep:
    ns, kind = workload.namespace, workload.kind
    title = "Rotate the service account's credentials"
    if service_account is None or not _DNS_SUBDOMAIN.fullmatch(service_account):
        path = _SERVICE_ACCOUNT_PATHS.get(kind, "{.spec.template.spec.serviceAccountName}")
        find = _kubectl(ns, "get", f"{_resource(kind)}/{workload.name}", "-o", f"jsonpath={path}")
        named = "does not name" if service_account is None else "names no valid"
        why = (
            f"The incident {named} service account for the workload: this prints it (empty "
            "output means the namespace's default one); then delete its legacy token Secrets and "
            "recreate it as this step describes once it is known."
        )
        return ContainmentStep(title, why, (find,))
    sa = service_account
    user = f"system:serviceaccount:{ns}:{sa}"
    commands = [_sh("kubectl", "auth", "can-i", "--list", f"--as={user}", "-n", ns)]
    backup = f"serviceaccount-{_file_part(sa)}.yaml"
    saving = _kubectl(ns, "get", f"serviceaccount/{sa}", "-o", "yaml")
    commands.append(f"{saving} > {shlex.quote(backup)}")
    # The name is valid (checked above), so it holds no quote and can sit inside the template.
    annotation = '(index .metadata.annotations "kubernetes.io/service-account.name")'
    template = (
        f'{{{{range .items}}}}{{{{if eq {annotation} "{sa}"}}}}'
        '{{.metadata.name}}{{"\\n"}}{{end}}{{end}}'
    )
    tokens = _kubectl(
        ns, "get", "secrets", f"--field-selector=type={_LEGACY_TOKEN}", "-o",
        f"go-template={template}",
    )  # fmt: skip
    deleting = _sh("xargs", "-r", "kubectl", "-n", ns, "delete", "secret")
    commands.append(f"{tokens} | {deleting}")
    commands.append(_kubectl(ns, "delete", f"serviceaccount/{sa}"))
    if sa != "default":
        commands.append(_kubectl(ns, "create", "serviceaccount", sa))
    recreated = (
        "the controller recreates the default account by itself"
        if sa == "default"
        else "the recreated account gets a new UID"
    )
    why = (
        "The first command shows what the account may do and the second keeps a copy of it; "
        f"deleting its Secrets of type {_LEGACY_TOKEN} revokes its long-lived legacy tokens, "
        "and deleting the ServiceAccount invalidates, within about a minute, every bound token "
        "issued for it (the pods' projected tokens and those of kubectl create token, which the "
        "API server checks against its UID), the quarantined pod's included without deleting "
        f"that pod; {recreated} and keeps its RoleBindings, which refer to it by name, and the "
        f"copy {backup} holds the annotations (cloud IAM roles), imagePullSecrets and "
        "automountServiceAccountToken to set on it again."
    )
    return ContainmentStep(title, why, tuple(commands))


# -- 4. harden ----------------------------------------------------------------------------------


def _harden(
    workload: Workload,
    findings: Iterable[PostureFinding],
    containers: Sequence[str],
    init_containers: Sequence[str],
    remediations: Mapping[str, str],
) -> list[ContainmentStep]:
    ns, kind, name = workload.namespace, workload.kind, workload.name
    worst: dict[str, PostureFinding] = {}
    for finding in findings:
        worst.setdefault(finding.rule_id, finding)
    patch = patch_for(
        worst,
        api_version=_API_VERSIONS.get(kind, "v1"),
        kind=kind,
        name=name,
        namespace=ns,
        containers=containers,
        init_containers=init_containers,
    )
    steps: list[ContainmentStep] = []
    covered: set[str] = set()
    if patch is not None:
        covered = set(patch.fixed) | set(patch.needs_containers)
        steps.append(_patch_step(workload, patch.document, patch.fixed, patch.needs_containers))
    for rule_id, finding in worst.items():
        if rule_id in covered:
            continue
        fix = remediations.get(rule_id, "see the rule's remediation in docs/rules.md.")
        why = f"{rule_id} ({finding.title}) is not fixed by a securityContext patch: {fix}"
        steps.append(ContainmentStep(f"Fix {rule_id}: {finding.title}", why, ()))
    return steps


def _patch_step(
    workload: Workload,
    document: Mapping[str, object],
    fixed: Sequence[str],
    needs_containers: Sequence[str],
) -> ContainmentStep:
    ns, kind, name = workload.namespace, workload.kind, workload.name
    file = f"harden-{_file_part(name)}.yaml"
    manifest = yaml.safe_dump(dict(document), sort_keys=False)
    fixes = f"it fixes {', '.join(fixed)}" if fixed else "it fixes no finding in full yet"
    if kind in _IMMUTABLE_TEMPLATE:
        hardened = f"{_file_part(name)}-hardened.yaml"
        commands: list[str] = [
            _sh("kubectl", "patch", "--local", "-f", "SOURCE.yaml", "--type", "strategic",
                "--patch-file", file, "-o", "yaml")
            + f" > {shlex.quote(hardened)}"
        ]  # fmt: skip
        what = "A running Pod's spec" if kind == "Pod" else "A Job's pod template"
        how = (
            f"{what} cannot change in place: apply the patch to the manifest it is deployed "
            f"from (SOURCE.yaml) and deploy {hardened} in its place"
        )
    else:
        target = f"{_resource(kind)}/{name}"
        commands = [_kubectl(ns, "patch", target, "--type", "strategic", "--patch-file", file)]
        how = (
            "The strategic-merge patch changes the pod template, so pods created from now on run "
            "hardened (commit the same change to the source manifests, or a GitOps controller "
            "will revert it)"
        )
    notes = dict.fromkeys(FIXES[r].note for r in (*fixed, *needs_containers) if FIXES[r].note)
    why = f"{how}; {fixes}" + "".join(f"; {note}" for note in notes) + "."
    if needs_containers:
        path = _SERVICE_ACCOUNT_PATHS.get(kind, "{.spec.template.spec.serviceAccountName}")
        names = path.replace("serviceAccountName", "containers[*].name")
        commands.insert(
            0, _kubectl(ns, "get", f"{_resource(kind)}/{name}", "-o", f"jsonpath={names}")
        )
        why += (
            f" No container was named, so the container-level fields for "
            f"{', '.join(needs_containers)} are missing: the first command lists the containers; "
            "add an entry with their name and those fields under containers."
        )
    return ContainmentStep(
        "Harden the workload's securityContext", why, tuple(commands), manifest, file
    )
