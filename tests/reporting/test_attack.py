"""ATT&CK names and links: every technique Falco's own rules tag has a name in our table."""

from __future__ import annotations

import re

from kubesentinel.models.report import Attack
from kubesentinel.reporting.attack import TECHNIQUE_NAMES, tactics, techniques
from kubesentinel.runtime.mitre import KILL_CHAIN_ORDER
from tests.conftest import shared_path


def test_every_technique_of_falcos_rules_is_named() -> None:
    rules = shared_path("falco", "rules")
    tagged: set[str] = set()
    for path in rules.rglob("*.yaml"):
        tagged.update(re.findall(r"\bT\d{4}(?:\.\d{3})?\b", path.read_text()))
    assert tagged  # the rule files were read
    assert sorted(tagged - set(TECHNIQUE_NAMES)) == []


def test_links_follow_attack_urls() -> None:
    assert techniques(["T1059.004", "T9999"]) == (
        Attack("T1059.004", "Command and Scripting Interpreter: Unix Shell",
               "https://attack.mitre.org/techniques/T1059/004/"),
        Attack("T9999", "T9999", "https://attack.mitre.org/techniques/T9999/"),
    )  # fmt: skip
    named = tactics(KILL_CHAIN_ORDER)
    assert len(named) == 14
    assert named[3] == Attack("TA0002", "Execution", "https://attack.mitre.org/tactics/TA0002/")
    assert tactics(["not_a_tactic"]) == ()
