"""Containment plans: valid manifests that our scanner passes, patches that really fix the
findings they claim, commands where every name stays one shell word, and the right stop step
for each workload kind. The scanner is the real one, run on files."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesentinel.models import Finding, Severity
from kubesentinel.models.event import Workload
from kubesentinel.models.posture import PostureFinding
from kubesentinel.reporting import containment, patches
from kubesentinel.reporting.containment import (
    POLICY_NAME,
    QUARANTINE_LABEL,
    ContainmentStep,
    containment_plan,
)
from kubesentinel.reporting.patches import FIXES, builtin_remediations
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.podspec import POD_TEMPLATE_PATHS

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "examples" / "k8s-manifests" / "bad"
KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "DaemonSet",
         "Job", "CronJob", "Pod", "DeploymentConfig")  # fmt: skip
HOSTILE = ("x; rm -rf /", "$(id)", "`id`", "a\nb", 'it\'s "quoted"', "-n", "*", "a b|c>d")


# -- helpers ------------------------------------------------------------------------------------


def scan(tmp_path: Path, objects: Sequence[Mapping[str, Any]], name: str) -> list[Finding]:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    result = scan_paths([str(path)], builtin_catalogue(), ScanOptions())
    assert result.errors == []
    return result.findings


def posture(findings: Sequence[Finding]) -> list[PostureFinding]:
    return [PostureFinding(f.rule_id, f.severity, f.title) for f in findings]


def strategic_merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Kubernetes' strategic merge for the fields a hardening patch uses: maps merge, null
    deletes, containers and initContainers merge by name, other lists replace."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif key in ("containers", "initContainers"):
            existing = target.setdefault(key, [])
            for item in value:
                same = [c for c in existing if c.get("name") == item["name"]]
                if same:
                    strategic_merge(same[0], item)
                else:
                    existing.append(_fresh(item))
        elif isinstance(value, Mapping):
            node = target.get(key)
            if not isinstance(node, dict):
                node = target[key] = {}
            strategic_merge(node, value)
        else:
            target[key] = copy.deepcopy(value)


def _fresh(item: Mapping[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = {}
    strategic_merge(made, item)  # nulls in a new map are dropped, as the API server does
    return made


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = obj
    for step in POD_TEMPLATE_PATHS[obj["kind"]]:
        node = node[step]
    return node["spec"]  # type: ignore[no-any-return]


def names(obj: Mapping[str, Any], key: str) -> list[str]:
    return [c["name"] for c in pod_spec(obj).get(key, [])]


def api_problems(obj: Mapping[str, Any]) -> list[str]:
    """The API server's rules a careless patch could break: a profile's localhostProfile only
    beside type Localhost, and no container without an image (a patch naming a container the
    pod lacks adds one)."""
    problems = []
    spec = pod_spec(obj)
    contexts = [("pod", spec.get("securityContext", {}))]
    for key in ("containers", "initContainers"):
        for container in spec.get(key, []):
            contexts.append((container.get("name", "?"), container.get("securityContext", {})))
            if not container.get("image"):
                problems.append(f"{key} {container.get('name')} has no image")
    for where, context in contexts:
        for profile in ("seccompProfile", "appArmorProfile"):
            value = context.get(profile, {})
            if "localhostProfile" in value and value.get("type") != "Localhost":
                problems.append(f"{where} {profile} {value}")
    return problems


def harden_step(plan: Sequence[ContainmentStep]) -> ContainmentStep:
    [step] = [s for s in plan if s.manifest_name and s.manifest_name.startswith("harden-")]
    return step


def all_plans() -> list[tuple[str, tuple[ContainmentStep, ...]]]:
    """Plans for every kind, with and without names, over every rule of the table and more."""
    findings = [PostureFinding(r, Severity.HIGH, r) for r in (*FIXES, "KS-0005", "KS-0046")]
    plans = []
    for kind in KINDS:
        workload = Workload("prod", "payments", kind, "api")
        plans.append((f"{kind}-bare", containment_plan(workload, findings)))
        full = containment_plan(
            workload, findings, pods=["api-1"], containers=["app", "side"],
            init_containers=["init"], nodes=["node-1"], service_account="api",
        )  # fmt: skip
        plans.append((f"{kind}-named", full))
    return plans


# -- the table ----------------------------------------------------------------------------------


def test_exports() -> None:
    assert sorted(containment.__all__) == [
        "ContainmentStep", "POLICY_NAME", "QUARANTINE_LABEL", "containment_plan",
        "quarantine_policy",
    ]  # fmt: skip
    assert sorted(patches.__all__) == [
        "FIXES", "Fix", "HardeningPatch", "NON_ROOT_ID", "builtin_remediations", "patch_for",
    ]  # fmt: skip


def test_every_rule_of_the_table_is_in_the_catalogue() -> None:
    catalogue = {rule.id for rule in builtin_catalogue().rules}
    assert set(FIXES) - catalogue == set()


def test_runtime_rules_not_in_the_table_are_the_volume_rules() -> None:
    # The runtime-weighted rules left to a pointer are those whose fix is a volume, not a
    # securityContext field: if a new runtime rule appears, decide which it is.
    runtime = {r.id for r in builtin_catalogue().rules if r.runtime_impact is not None}
    assert runtime - set(FIXES) == {"KS-0005", "KS-0034", "KS-0035", "KS-0036"}


def test_findings_outside_the_table_point_to_their_remediation() -> None:
    findings = [PostureFinding("KS-0035", Severity.CRITICAL, "Sensitive host path mounted")]
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), findings)
    [pointer] = [s for s in plan if "KS-0035" in s.title]
    assert builtin_remediations()["KS-0035"] in pointer.why
    assert pointer.manifest is None
    assert all(s.manifest_name is None or not s.manifest_name.startswith("harden-") for s in plan)


# -- manifests: valid, and clean for our scanner -------------------------------------------------


@pytest.mark.parametrize(
    ("label", "plan"), all_plans(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_manifest_is_a_valid_object(label: str, plan: tuple[ContainmentStep, ...]) -> None:
    manifests = [s for s in plan if s.manifest is not None]
    assert manifests, label
    for step in manifests:
        assert (step.manifest_name or "").endswith(".yaml")
        assert any(step.manifest_name in shlex.split(c) for c in step.commands)
        obj = yaml.safe_load(step.manifest or "")
        assert obj["apiVersion"] in {"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1",
                                     "apps.openshift.io/v1"}  # fmt: skip
        assert obj["metadata"]["namespace"] == "payments"
        assert obj["metadata"]["name"]
        if obj["kind"] == "NetworkPolicy":
            assert obj["apiVersion"] == "networking.k8s.io/v1"
            assert obj["spec"] == {
                "podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
                "policyTypes": ["Ingress", "Egress"],
            }
        else:  # the hardening patch names the workload it patches
            assert (obj["kind"], obj["metadata"]["name"]) == (
                label.split("-", maxsplit=1)[0],
                "api",
            )


@pytest.mark.parametrize("namespace", ["payments", "default", 'it\'s "x"'])
def test_the_isolation_policy_scans_clean(tmp_path: Path, namespace: str) -> None:
    plan = containment_plan(Workload("c", namespace, "Deployment", "api"), [], pods=["p"])
    [step] = [s for s in plan if s.manifest is not None]
    policy = yaml.safe_load(step.manifest or "")
    assert policy["metadata"] == {"name": POLICY_NAME, "namespace": namespace}
    findings = scan(tmp_path, [policy], "policy.yaml")
    assert [f for f in findings if f.severity >= Severity.MEDIUM] == []


def test_the_isolation_policy_passes_the_scan_command(tmp_path: Path) -> None:
    plan = containment_plan(Workload("c", "payments", "Pod", "api"), [])
    [step] = [s for s in plan if s.manifest is not None]
    path = tmp_path / (step.manifest_name or "")
    path.write_text(step.manifest or "")
    done = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "scan", "--path", str(path), "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["findings"] == []


# -- the hardening patch really fixes ------------------------------------------------------------

WRITTEN: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "debug",
            "namespace": "tools",
            "annotations": {"container.apparmor.security.beta.kubernetes.io/shell": "unconfined"},
        },
        "spec": {
            "hostIPC": True,
            "automountServiceAccountToken": True,
            "securityContext": {
                "runAsUser": 0,
                "runAsGroup": 0,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                "seLinuxOptions": {"user": "system_u", "role": "sysadm_r", "type": "spc_t"},
            },
            "initContainers": [
                {"name": "setup", "image": "busybox:1.36",
                 "securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}},
            ],
            "containers": [
                {"name": "shell", "image": "busybox:1.36",
                 "securityContext": {"procMount": "Unmasked", "allowPrivilegeEscalation": True,
                                     "seccompProfile": {"type": "Unconfined"},
                                     "capabilities": {"add": ["NET_RAW", "SYS_ADMIN"]}}},
            ],
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "data"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "hostPID": True,
                    "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
                    "containers": [
                        {"name": "db", "image": "postgres:16",
                         "securityContext": {"runAsUser": 0, "runAsNonRoot": False,
                                             "windowsOptions": {"hostProcess": True},
                                             "capabilities": {"add": ["ALL"]}}},
                        {"name": "metrics", "image": "exporter:1.0"},
                    ],
                },
            },
        },
    },
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "ops"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"seccompProfile": {"type": "Unconfined"}},
                    "containers": [
                        {"name": "migrate", "image": "tool:2",
                         "securityContext": {"runAsGroup": 0, "readOnlyRootFilesystem": False}},
                    ],
                },
            },
        },
    },
]  # fmt: skip


def offending() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(BAD.iterdir()):
        text = path.read_text()
        docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
        found.extend(d for d in docs if d and d.get("kind") in POD_TEMPLATE_PATHS)
    return found + copy.deepcopy(WRITTEN)


def _id(obj: Any) -> str:
    return f"{obj['kind']}-{obj['metadata']['name']}" if isinstance(obj, dict) else ""


def _rules(findings: Sequence[Finding]) -> set[str]:
    return {f.rule_id for f in findings}


@pytest.mark.parametrize("obj", offending(), ids=_id)
def test_the_patch_fixes_every_finding_the_table_covers(
    tmp_path: Path, obj: dict[str, Any]
) -> None:
    before = scan(tmp_path, [obj], "before.yaml")
    covered = _rules(before) & set(FIXES)
    assert covered, "the workload should fail rules the table covers"
    meta = obj["metadata"]
    workload = Workload("c", meta.get("namespace", "default"), obj["kind"], meta["name"])
    plan = containment_plan(
        workload, posture(before),
        containers=names(obj, "containers"), init_containers=names(obj, "initContainers"),
    )  # fmt: skip
    step = harden_step(plan)
    patch = yaml.safe_load(step.manifest or "")
    assert (patch["kind"], patch["metadata"]["name"]) == (obj["kind"], meta["name"])
    patched = copy.deepcopy(obj)
    strategic_merge(patched, patch)
    assert api_problems(patched) == []
    after = scan(tmp_path, [patched], "after.yaml")
    assert _rules(after) & covered == set(), step.manifest
    assert _rules(after) <= _rules(before)  # nothing new appeared
    assert all(c in step.why for c in sorted(covered))


@pytest.mark.parametrize("obj", offending(), ids=_id)
def test_without_container_names_the_pod_level_part_still_fixes(
    tmp_path: Path, obj: dict[str, Any]
) -> None:
    before = scan(tmp_path, [obj], "before.yaml")
    meta = obj["metadata"]
    workload = Workload("c", meta.get("namespace", "default"), obj["kind"], meta["name"])
    step = harden_step(containment_plan(workload, posture(before)))
    patch = yaml.safe_load(step.manifest or "")
    assert "containers" not in json.dumps(patch)
    patched = copy.deepcopy(obj)
    strategic_merge(patched, patch)
    assert api_problems(patched) == []
    after = scan(tmp_path, [patched], "after.yaml")
    pod_only = {r for r in _rules(before) & set(FIXES) if not FIXES[r].container}
    assert _rules(after) & pod_only == set()
    assert _rules(after) <= _rules(before)
    needs = sorted(r for r in _rules(before) & set(FIXES) if FIXES[r].container)
    if needs:  # the step says what is missing and lists the containers
        assert "containers[*].name" in step.commands[0]
        assert all(r in step.why for r in needs)


def test_each_fix_alone_clears_its_rule_on_some_workload(tmp_path: Path) -> None:
    # Findings come in groups (runAsUser 0 fails KS-0018 and KS-0023), so the combined patch
    # is the test above; here each entry of the table must clear its own rule by itself on at
    # least one real offender, which catches an entry that fixes nothing.
    cleared: set[str] = set()
    for number, obj in enumerate(offending()):
        before = _rules(scan(tmp_path, [obj], f"{number}.yaml"))
        meta = obj["metadata"]
        workload = Workload("c", meta.get("namespace", "default"), obj["kind"], meta["name"])
        for rule_id in sorted(before & set(FIXES) - cleared):
            plan = containment_plan(
                workload, [PostureFinding(rule_id, Severity.HIGH, rule_id)],
                containers=names(obj, "containers"), init_containers=names(obj, "initContainers"),
            )  # fmt: skip
            patched = copy.deepcopy(obj)
            strategic_merge(patched, yaml.safe_load(harden_step(plan).manifest or ""))
            after = _rules(scan(tmp_path, [patched], f"{number}-{rule_id}.yaml"))
            if rule_id not in after and after <= before:
                cleared.add(rule_id)
    assert set(FIXES) - cleared == set()


# -- hostile names ------------------------------------------------------------------------------


SAFE = "SAFE_NAME"  # invalid as a Kubernetes name, like every hostile one: the same branches


def plans_named(name: str, kind: str) -> list[tuple[ContainmentStep, ...]]:
    findings = [PostureFinding(r, Severity.HIGH, r) for r in ("KS-0001", "KS-0002", "KS-0046")]
    return [
        containment_plan(
            Workload("c", name, kind, name), findings, pods=[name], containers=[name],
            nodes=[name], service_account=name,
        ),
        containment_plan(Workload("c", name, kind, name), findings),
    ]  # fmt: skip


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_names_stay_one_shell_word(hostile: str, kind: str) -> None:
    # Word for word, a hostile plan is the safe plan with the name swapped inside single words:
    # a name that broke out (a second word, a ';', a substitution) would change the words.
    for hostile_plan, safe_plan in zip(
        plans_named(hostile, kind), plans_named(SAFE, kind), strict=True
    ):
        hostile_commands = [c for step in hostile_plan for c in step.commands]
        safe_commands = [c for step in safe_plan for c in step.commands]
        assert len(hostile_commands) == len(safe_commands) > 0
        for got, safe in zip(hostile_commands, safe_commands, strict=True):
            words, expected = shlex.split(got), shlex.split(safe)
            # kubectl cannot read a name as a flag: it is the value of -n or follows "--".
            for at, word in enumerate(words):
                if word == hostile and hostile.startswith("-") and at > 1:
                    assert words[at - 1] in {"-n", "--"}, got
            words = [w for at, w in enumerate(words) if w != "--" or words[at + 1] != hostile]
            assert len(words) == len(expected), got
            for word, model in zip(words, expected, strict=True):
                if model.endswith(".yaml") and model != word:  # file names are cleaned
                    assert re.fullmatch(r"[a-z0-9.-]+\.yaml", word), got
                else:
                    assert word == model.replace(SAFE, hostile), got
        for step in hostile_plan:
            if step.manifest is not None:
                assert yaml.safe_load(step.manifest)["metadata"]["namespace"] == hostile


def test_a_pod_name_is_one_argument_of_label() -> None:
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), [], pods=["x; rm -rf /"])
    assert shlex.split(plan[0].commands[0]) == [
        "kubectl", "-n", "ns", "label", "pod/x; rm -rf /", f"{QUARANTINE_LABEL}=true",
        "--overwrite",
    ]  # fmt: skip


def test_a_node_named_like_a_flag_is_not_read_as_one() -> None:
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), [], nodes=["--all"])
    [step] = [s for s in plan if s.title.startswith("Keep new pods off")]
    assert shlex.split(step.commands[0]) == ["kubectl", "cordon", "--", "--all"]


def test_an_invalid_service_account_name_is_looked_up_not_used() -> None:
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), [], service_account='a"}}')
    [step] = [s for s in plan if s.title.startswith("Rotate")]
    assert [shlex.split(c) for c in step.commands] == [[
        "kubectl", "-n", "ns", "get", "deployment/api", "-o",
        "jsonpath={.spec.template.spec.serviceAccountName}",
    ]]  # fmt: skip
    assert "no valid" in step.why


# -- each kind's stop step -------------------------------------------------------------------------


def stop_commands(kind: str, pods: Sequence[str] = ()) -> list[list[str]]:
    plan = containment_plan(Workload("c", "ns", kind, "api"), [], pods=pods)
    return [shlex.split(c) for c in plan[1].commands]


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "DeploymentConfig"]
)
def test_scalable_kinds_scale_to_zero(kind: str) -> None:
    last = stop_commands(kind)[-1]
    assert last == ["kubectl", "-n", "ns", "scale", f"{kind.lower()}/api", "--replicas=0"]


def test_a_deployment_releases_the_named_pods_before_scaling() -> None:
    commands = stop_commands("Deployment", ["api-1", "api-2"])
    assert commands[:2] == [
        ["kubectl", "-n", "ns", "label", "pod/api-1", "pod-template-hash-"],
        ["kubectl", "-n", "ns", "label", "pod/api-2", "pod-template-hash-"],
    ]
    assert commands[2][3] == "scale"


def test_a_daemonset_gets_a_node_selector_no_node_matches() -> None:
    [command] = stop_commands("DaemonSet")
    assert command[:6] == ["kubectl", "-n", "ns", "patch", "daemonset/api", "--type"]
    patch = json.loads(command[-1])
    assert patch == {
        "spec": {"template": {"spec": {"nodeSelector": {"kubesentinel.io/stopped": "true"}}}}
    }


@pytest.mark.parametrize("kind", ["Job", "CronJob"])
def test_jobs_and_cronjobs_are_suspended(kind: str) -> None:
    first = stop_commands(kind)[0]
    assert first[:5] == ["kubectl", "-n", "ns", "patch", f"{kind.lower()}/api"]
    assert json.loads(first[-1]) == {"spec": {"suspend": True}}


def test_a_bare_pod_is_deleted_only_after_evidence() -> None:
    plan = containment_plan(Workload("c", "ns", "Pod", "api"), [])
    assert [shlex.split(c) for c in plan[1].commands] == [
        ["kubectl", "-n", "ns", "delete", "pod/api"]
    ]
    assert "evidence" in plan[1].why
    assert shlex.split(plan[0].commands[0])[4] == "pod/api"  # the pod itself is quarantined


def test_nodes_are_cordoned_not_drained() -> None:
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), [], nodes=["n1", "n2"])
    [step] = [s for s in plan if s.title.startswith("Keep new pods off")]
    assert [shlex.split(c) for c in step.commands] == [
        ["kubectl", "cordon", "n1"],
        ["kubectl", "cordon", "n2"],
    ]


def test_a_host_gets_a_cordon_and_no_pod_steps() -> None:
    [step] = containment_plan(Workload("c", "", "Host", "node-7"), [])
    assert [shlex.split(c) for c in step.commands] == [["kubectl", "cordon", "node-7"]]


def test_an_unknown_service_account_is_looked_up() -> None:
    plan = containment_plan(Workload("c", "ns", "CronJob", "api"), [])
    [step] = [s for s in plan if s.title.startswith("Rotate")]
    assert shlex.split(step.commands[0])[-1] == (
        "jsonpath={.spec.jobTemplate.spec.template.spec.serviceAccountName}"
    )


def test_a_known_service_account_is_recreated_after_its_legacy_tokens_go() -> None:
    plan = containment_plan(Workload("c", "ns", "Deployment", "api"), [], service_account="api")
    [step] = [s for s in plan if s.title.startswith("Rotate")]
    words = [shlex.split(c) for c in step.commands]
    assert words[1][-2:] == [">", "serviceaccount-api.yaml"]
    assert "--field-selector=type=kubernetes.io/service-account-token" in words[2]
    assert words[2][-8:] == ["|", "xargs", "-r", "kubectl", "-n", "ns", "delete", "secret"]
    assert words[-2:] == [
        ["kubectl", "-n", "ns", "delete", "serviceaccount/api"],
        ["kubectl", "-n", "ns", "create", "serviceaccount", "api"],
    ]
    default = containment_plan(Workload("c", "ns", "Pod", "p"), [], service_account="default")
    [rotate] = [s for s in default if s.title.startswith("Rotate")]
    assert shlex.split(rotate.commands[-1]) == [
        "kubectl",
        "-n",
        "ns",
        "delete",
        "serviceaccount/default",
    ]
