"""The vault's retention policy: loading, validation errors, matching, precedence, caching."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import kubesentinel.vault.policy as policy_module
from kubesentinel.errors import PolicyError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault import policy_nodes, policy_schema
from kubesentinel.vault.policy import (
    DEFAULT_POLICY,
    IncidentLink,
    Policy,
    classify,
    effective_class,
    eviction_order,
    in_context_window,
    load_policy,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "vault-policies.md"

CLASSES = """
classes:
  keep:
    keep_days: 30
    evict_rank: 5
"""


def event(
    policy: Policy,
    *,
    priority: Priority = Priority.NOTICE,
    rule: str = "Some rule",
    tags: tuple[str, ...] = (),
    source: str = "syscall",
    namespace: str = "web",
    kind: str = "Deployment",
    name: str = "shop",
    incident: IncidentLink = None,
) -> str:
    """classify with plain defaults, so each test names only what it is about."""
    return classify(
        policy,
        priority=priority,
        rule=rule,
        tags=tags,
        source=source,
        namespace=namespace,
        kind=kind,
        name=name,
        incident=incident,
    )


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_rule(tmp_path: Path, match: str) -> Policy:
    """A policy whose only rule gives class "keep" when ``match`` (flow YAML) holds."""
    text = CLASSES + f"rules:\n  - name: r\n    class: keep\n    match: {match}\n"
    return load_policy([write(tmp_path, text)])


def docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


# --- the shipped default policy ------------------------------------------------------------


def test_default_policy_is_the_shipped_file_and_the_configs_link() -> None:
    policy = load_policy([])
    assert policy.sources == (str(DEFAULT_POLICY),)
    link = ROOT / "configs" / "policies" / "default.yaml"
    assert link.is_symlink()
    assert not Path(link.readlink()).is_absolute()
    assert link.read_bytes() == DEFAULT_POLICY.read_bytes()
    assert load_policy([link]).classes == policy.classes


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (Priority.EMERGENCY, "severe"),
        (Priority.ALERT, "severe"),
        (Priority.CRITICAL, "severe"),
        (Priority.ERROR, "elevated"),
        (Priority.WARNING, "elevated"),
        (Priority.NOTICE, "default"),
        (Priority.INFORMATIONAL, "noise"),
        (Priority.DEBUG, "noise"),
    ],
)
def test_default_policy_tiers(priority: Priority, expected: str) -> None:
    assert event(load_policy([]), priority=priority) == expected


def test_default_policy_classifies_real_falco_events_as_documented() -> None:
    policy = load_policy([])
    shell = event(
        policy,
        priority=Priority.NOTICE,
        rule="Terminal shell in container",
        tags=("T1059.004", "container", "host", "maturity_stable", "mitre_execution"),
    )
    assert shell == "default"
    secrets = event(
        policy,
        priority=Priority.WARNING,
        rule="Read sensitive file untrusted",
        tags=("T1555", "container", "filesystem", "mitre_credential_access"),
    )
    assert secrets == "elevated"
    telemetry = event(policy, priority=Priority.WARNING, tags=("telemetry", "process"))
    assert telemetry == "noise"  # the telemetry rule comes before the tiers


def test_default_policy_numbers() -> None:
    policy = load_policy([], retention_days=45)
    keep = {name: cls.keep_days for name, cls in policy.classes.items()}
    assert keep == {"hold": None, "incident": 365, "default": 45, "severe": 365,
                    "elevated": 180, "noise": 90}  # fmt: skip
    assert policy.classes["noise"].rollup_after_days == 7
    assert load_policy([]).classes["default"].keep_days == 90
    assert (policy.context_before_s, policy.context_after_s) == (900, 300)
    assert eviction_order(policy) == ("noise", "default", "elevated", "severe")
    assert policy.classes["hold"].protected
    assert policy.classes["incident"].protected
    assert not any(policy.classes[name].protected for name in eviction_order(policy))


def test_retention_days_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        load_policy([], retention_days=0)


# --- the docs ------------------------------------------------------------------------------


def test_docs_example_loads_and_classifies_as_the_docs_say(tmp_path: Path) -> None:
    policy = load_policy([write(tmp_path, docs_example())], retention_days=90)
    assert policy.classes["default"].keep_days == 60
    assert (policy.context_before_s, policy.context_after_s) == (600, 600)
    ci: dict[str, Any] = {"priority": Priority.WARNING, "kind": "Job", "name": "build-42"}
    assert event(policy, namespace="ci-main", **ci) == "noise"
    assert event(policy, namespace="web", **ci) == "default"
    assert event(policy, priority=Priority.CRITICAL) == "audit"
    assert event(policy, source="k8s_audit", rule="Create Secret") == "audit"


def test_docs_name_every_key_and_limit() -> None:
    text = DOCS.read_text(encoding="utf-8")
    keys = (
        policy_schema.ROOT_KEYS
        + policy_schema.CONTEXT_KEYS
        + policy_schema.CLASS_KEYS
        + policy_schema.RULE_KEYS
        + policy_schema.MATCH_KEYS
    )
    missing = [key for key in keys if f"`{key}`" not in text]
    assert missing == []
    for number in (
        f"{policy_nodes.MAX_NODES:,}",
        f"{policy_schema.MAX_FLOW_DEPTH}",
        f"{policy_schema.MAX_KEEP_DAYS}",
        f"{policy_schema.MAX_CONTEXT_SECONDS}",
        f"{policy_schema.MAX_RANK}",
        f"{policy_schema.DEFAULT_CONTEXT_BEFORE_S}",
        f"{policy_schema.DEFAULT_CONTEXT_AFTER_S}",
        f"{policy_schema.MAX_POLICY_BYTES >> 20} MiB",
        PolicyError.code,
    ):
        assert number in text


def test_public_api() -> None:
    assert sorted(policy_module.__all__) == [
        "DEFAULT", "DEFAULT_POLICY", "HOLD", "INCIDENT", "IncidentLink", "MatchRule", "Policy",
        "RetentionClass", "classify", "effective_class", "eviction_order", "in_context_window",
        "load_policy",
    ]  # fmt: skip


# --- conditions ----------------------------------------------------------------------------

CONDITIONS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (match, an event that matches, an event that does not)
    ("{priority: [warning, error]}", {"priority": Priority.ERROR}, {"priority": Priority.ALERT}),
    ("{priority: [WARN, info]}", {"priority": Priority.INFORMATIONAL}, {}),
    ("{min_priority: error}", {"priority": Priority.CRITICAL}, {"priority": Priority.WARNING}),
    ("{min_priority: error}", {"priority": Priority.ERROR}, {"priority": Priority.DEBUG}),
    ("{rules: [Terminal shell in container]}", {"rule": "Terminal shell in container"},
     {"rule": "Terminal shell in container 2"}),
    ("{rules: ['Read sensitive file*']}", {"rule": "Read sensitive file untrusted"},
     {"rule": "read sensitive file untrusted"}),
    ("{tags: [T1059]}", {"tags": ("container", "T1059")}, {"tags": ("T1059.004",)}),
    ("{tags: ['T1059*']}", {"tags": ("T1059.004", "host")}, {"tags": ("T1105",)}),
    ("{tags: [mitre_execution, mitre_persistence]}", {"tags": ("mitre_persistence",)},
     {"tags": ()}),
    ("{sources: [k8s_audit]}", {"source": "k8s_audit"}, {"source": "k8s_audit2"}),
    ("{namespaces: [kube-system]}", {"namespace": "kube-system"}, {"namespace": "kube-public"}),
    ("{namespaces: ['team-?', 'ci-*']}", {"namespace": "team-a"}, {"namespace": "team-ab"}),
    ("{namespaces: ['ci-[0-9]']}", {"namespace": "ci-7"}, {"namespace": "ci-x"}),
    ("{workloads: ['DaemonSet/node-agent*']}", {"kind": "DaemonSet", "name": "node-agent-x"},
     {"kind": "Deployment", "name": "node-agent-x"}),
    ("{workloads: ['*/web']}", {"kind": "StatefulSet", "name": "web"}, {"name": "web2"}),
    ("{incident: [signal]}", {"incident": "signal"}, {"incident": "context"}),
    ("{incident: [context, none]}", {"incident": None}, {"incident": "signal"}),
    ("{incident: [none]}", {}, {"incident": "context"}),
]  # fmt: skip


@pytest.mark.parametrize(("match", "hit", "miss"), CONDITIONS)
def test_each_condition(
    tmp_path: Path, match: str, hit: dict[str, Any], miss: dict[str, Any]
) -> None:
    policy = one_rule(tmp_path, match)
    assert event(policy, **hit) == "keep"
    assert event(policy, **miss) == "default"


def test_all_conditions_must_hold(tmp_path: Path) -> None:
    policy = one_rule(tmp_path, "{sources: [syscall], namespaces: [ci], min_priority: warning}")
    assert event(policy, namespace="ci", priority=Priority.ERROR) == "keep"
    assert event(policy, namespace="ci", priority=Priority.NOTICE) == "default"
    assert event(policy, namespace="web", priority=Priority.ERROR) == "default"
    assert event(policy, namespace="ci", priority=Priority.ERROR, source="k8s_audit") == "default"


def test_globs_match_the_whole_text_and_special_characters_literally(tmp_path: Path) -> None:
    policy = one_rule(tmp_path, "{rules: ['Launch (sensitive) mount*', 'a.b']}")
    assert event(policy, rule="Launch (sensitive) mount container") == "keep"
    assert event(policy, rule="a.b") == "keep"
    assert event(policy, rule="axb") == "default"
    assert event(policy, rule="x Launch (sensitive) mount") == "default"


# --- precedence and order ------------------------------------------------------------------


def test_first_rule_wins_then_tier_then_default(tmp_path: Path) -> None:
    text = """
classes:
  a: {keep_days: 10, evict_rank: 1}
  b: {keep_days: 20, evict_rank: 2}
  t: {keep_days: 30, evict_rank: 3}
tiers:
  warning: t
rules:
  - {name: first, class: a, match: {namespaces: [ci]}}
  - {name: second, class: b, match: {namespaces: ['c*']}}
"""
    policy = load_policy([write(tmp_path, text)])
    assert event(policy, namespace="ci", priority=Priority.WARNING) == "a"
    assert event(policy, namespace="cd", priority=Priority.WARNING) == "b"
    assert event(policy, namespace="web", priority=Priority.WARNING) == "t"
    assert event(policy, namespace="web", priority=Priority.ERROR) == "default"


def test_hold_then_incident_then_static_class() -> None:
    assert effective_class("noise", held=True, incident_evidence=True) == "hold"
    assert effective_class("noise", held=True, incident_evidence=False) == "hold"
    assert effective_class("noise", held=False, incident_evidence=True) == "incident"
    assert effective_class("noise", held=False, incident_evidence=False) == "noise"


def test_files_combine_in_order(tmp_path: Path) -> None:
    base = write(tmp_path, CLASSES + "tiers: {debug: keep}\n", "base.yaml")
    first = write(tmp_path, "rules: [{name: one, class: keep, match: {namespaces: [a]}}]\n",
                  "first.yaml")  # fmt: skip
    second = write(tmp_path, "rules: [{name: two, class: default, match: {namespaces: ['*']}}]\n",
                   "second.yaml")  # fmt: skip
    policy = load_policy([base, first, second])
    assert [rule.name for rule in policy.rules] == ["one", "two"]
    assert event(policy, namespace="a") == "keep"
    assert event(policy, namespace="b", priority=Priority.DEBUG) == "default"  # a rule first
    assert policy.sources == (str(base), str(first), str(second))
    assert load_policy([base, second, first]).rules[0].name == "two"
    with pytest.raises(PolicyError, match="unknown class 'keep'"):
        load_policy([first])


def test_duplicates_across_files_name_both_places(tmp_path: Path) -> None:
    one = write(tmp_path, CLASSES, "one.yaml")
    two = write(tmp_path, "\n" + CLASSES, "two.yaml")
    with pytest.raises(PolicyError) as caught:
        load_policy([one, two])
    assert str(caught.value).startswith(f"{two}:5:5: classes.keep: duplicate class")
    assert f"first at {one}:4:5" in str(caught.value)
    rules = write(tmp_path, "rules: [{name: r, class: default, match: {tags: [x]}}]\n", "r.yaml")
    with pytest.raises(PolicyError, match="duplicate rule name 'r'"):
        load_policy([rules, rules])
    context = write(tmp_path, "context: {before_seconds: 1}\n", "c.yaml")
    with pytest.raises(PolicyError, match="context: defined twice"):
        load_policy([context, context])
    tier = write(tmp_path, "tiers: {warning: default}\n", "t.yaml")
    with pytest.raises(PolicyError, match="tier defined twice"):
        load_policy([tier, tier])


def test_default_class_may_be_overridden_in_part(tmp_path: Path) -> None:
    policy = load_policy(
        [write(tmp_path, "classes: {default: {evict_rank: 7}}\n")], retention_days=3
    )
    assert policy.classes["default"].keep_days == 3
    assert policy.classes["default"].evict_rank == 7
    policy = load_policy([write(tmp_path, "classes: {default: {keep_days: null}}\n")])
    assert policy.classes["default"].keep_days is None


def test_context_window_bounds_are_inclusive(tmp_path: Path) -> None:
    policy = load_policy([write(tmp_path, "context: {before_seconds: 60, after_seconds: 0}\n")])
    second = 1_000_000_000
    first, last = 1000 * second, 2000 * second
    assert in_context_window(policy, first - 60 * second, first, last)
    assert not in_context_window(policy, first - 60 * second - 1, first, last)
    assert in_context_window(policy, 1500 * second, first, last)
    assert in_context_window(policy, last, first, last)
    assert not in_context_window(policy, last + 1, first, last)
    default = load_policy([write(tmp_path, "version: 1\n", "v.yaml")])
    assert (default.context_before_s, default.context_after_s) == (900, 300)


# --- caching -------------------------------------------------------------------------------


def test_cached_answers_are_per_input_and_per_policy(tmp_path: Path) -> None:
    policy = one_rule(tmp_path, "{tags: [x], namespaces: [ci]}")
    other = load_policy([])
    inputs: list[dict[str, Any]] = [
        {"tags": ("x",), "namespace": "ci"},
        {"tags": ("x",), "namespace": "cj"},
        {"tags": ("y",), "namespace": "ci"},
        {"tags": ("x",), "namespace": "ci", "priority": Priority.DEBUG},
        {"tags": ("x", "y"), "namespace": "ci", "incident": "signal"},
    ]
    expected = ["keep", "default", "default", "keep", "keep"]
    for _ in range(3):  # the later rounds are answered by the cache
        assert [event(policy, **given) for given in inputs] == expected
        assert [event(other, **given) for given in inputs] == [
            "default", "default", "default", "noise", "default",
        ]  # fmt: skip


def test_workload_kind_and_name_are_not_confused(tmp_path: Path) -> None:
    policy = one_rule(tmp_path, "{workloads: [Job/a]}")
    assert event(policy, kind="Job", name="a") == "keep"
    assert event(policy, kind="Job/a", name="") == "default"
    assert event(policy, kind="Jo", name="b/a") == "default"
