"""MITRE ATT&CK tactics and techniques from Falco tags."""

from __future__ import annotations

import pytest
import yaml

import kubesentinel.runtime.mitre as mitre_module
from kubesentinel.runtime.mitre import KILL_CHAIN_ORDER, TACTIC_IDS, TACTIC_RANK, mitre_of
from tests.conftest import shared_path


def test_public_names() -> None:
    assert sorted(mitre_module.__all__) == [
        "KILL_CHAIN_ORDER",
        "TACTIC_IDS",
        "TACTIC_RANK",
        "mitre_of",
    ]


def test_kill_chain_is_the_14_enterprise_tactics_in_matrix_order() -> None:
    assert KILL_CHAIN_ORDER == (
        "reconnaissance",
        "resource_development",
        "initial_access",
        "execution",
        "persistence",
        "privilege_escalation",
        "defense_evasion",
        "credential_access",
        "discovery",
        "lateral_movement",
        "collection",
        "command_and_control",
        "exfiltration",
        "impact",
    )
    assert sorted(TACTIC_IDS.values()) == sorted(KILL_CHAIN_ORDER)
    assert [TACTIC_RANK[name] for name in KILL_CHAIN_ORDER] == list(range(14))


@pytest.mark.parametrize(
    ("tactic_id", "name"),
    [
        ("TA0043", "reconnaissance"),
        ("TA0042", "resource_development"),
        ("TA0001", "initial_access"),
        ("TA0002", "execution"),
        ("TA0003", "persistence"),
        ("TA0004", "privilege_escalation"),
        ("TA0005", "defense_evasion"),
        ("TA0006", "credential_access"),
        ("TA0007", "discovery"),
        ("TA0008", "lateral_movement"),
        ("TA0009", "collection"),
        ("TA0011", "command_and_control"),
        ("TA0010", "exfiltration"),
        ("TA0040", "impact"),
    ],
)
def test_tactic_ids(tactic_id: str, name: str) -> None:
    assert mitre_of([tactic_id]) == ((name,), ())


def test_real_tag_sets() -> None:
    # Tags exactly as Falco prints them (sorted), from the shared samples.
    assert mitre_of(("container", "mitre_execution", "shell")) == (("execution",), ())
    assert mitre_of(
        (
            "T1552.001",
            "container",
            "filesystem",
            "host",
            "maturity_stable",
            "mitre_credential_access",
        )
    ) == (("credential_access",), ("T1552.001",))
    assert mitre_of(
        ("PCI_DSS_11.5.1", "TA0003", "container", "maturity_stable", "mitre_persistence")
    ) == (("persistence",), ())
    assert mitre_of(("NIST_800-53_AU-10", "T1070", "mitre_defense_evasion")) == (
        ("defense_evasion",),
        ("T1070",),
    )
    assert mitre_of(("k8s",)) == ((), ())
    assert mitre_of(()) == ((), ())


def test_tactics_in_kill_chain_order_techniques_sorted_and_unique() -> None:
    tags = ["mitre_exfiltration", "T1059.004", "mitre_execution", "T1020", "TA0002", "T1059.004"]
    assert mitre_of(tags) == (("execution", "exfiltration"), ("T1020", "T1059.004"))


def test_unknown_and_lookalike_tags_are_ignored() -> None:
    tags = ["mitre_remote_service", "mitre_", "T123", "T12345", "TA9999", "T1059.1", "mitre"]
    assert mitre_of(tags) == ((), ())


def test_case_is_forgiven() -> None:
    assert mitre_of(["MITRE_Execution", "t1059", "ta0003"]) == (
        ("execution", "persistence"),
        ("T1059",),
    )


def test_every_mitre_tag_in_falcos_rules_maps() -> None:
    tactic_tags: set[str] = set()
    for name in ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"):
        documents = yaml.safe_load(shared_path("falco", "rules", name).read_text())
        for item in documents:
            if isinstance(item, dict) and "rule" in item:
                tags = item.get("tags") or []
                tactic_tags.update(t for t in tags if t.startswith(("mitre_", "TA")))
                tactics, _ = mitre_of(tags)
                if any(t.startswith("mitre_") for t in tags):
                    assert tactics, (item["rule"], tags)
    assert {"mitre_execution", "mitre_persistence", "TA0003"} <= tactic_tags
