"""deploy/falco/kubesentinel-telemetry.yaml: Falco rule syntax, references that resolve against
Falco's shipped rules, known output fields, what the analyzer needs, and how the monitor files
the alerts these rules emit (stored and scored as telemetry, never an incident on their own)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
import yaml

from kubesentinel.models import Priority
from kubesentinel.models.incident import TELEMETRY
from kubesentinel.runtime.correlate import context_reason
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_alert
from tests.conftest import ROOT, shared_path

RULES_FILE = ROOT / "deploy" / "falco" / "kubesentinel-telemetry.yaml"
FALCO_FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")
# What the analyzer's features read (issue 12): identity, process chain, file, peer, user.
FEATURE_FIELDS = {
    "evt.type", "user.name", "proc.name", "proc.pname", "proc.exepath", "proc.aname[2]",
    "container.id", "k8s.ns.name", "k8s.pod.name",
}  # fmt: skip
NETWORK_FIELDS = {"fd.name", "fd.sip", "fd.rip", "fd.sport", "fd.rport", "fd.l4proto"}
# Fields in Falco's field reference (https://falco.org/docs/reference/rules/supported-fields/)
# that no shipped rule happens to print, so the shipped rules cannot vouch for them.
DOCUMENTED_FIELDS = {"proc.pid", "container.image.tag"}

FIELD = re.compile(r"[a-z0-9_]+\.[a-z0-9_.]+(?:\[[^\]\s]+\])?")
OUTPUT_FIELD = re.compile(r"%(" + FIELD.pattern + ")")
TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|[(),]|!=|<=|>=|=|<|>|[^\s(),=<>!]+")
LOGIC = {"and", "or", "not", "exists"}
COMPARE = {"=", "!=", "<", "<=", ">", ">=", "startswith", "endswith", "contains", "icontains",
           "bcontains", "bstartswith", "glob", "iglob", "regex"}  # fmt: skip
SET_OPS = {"in", "pmatch", "intersects"}


def references(condition: str) -> tuple[set[str], set[str], set[str]]:
    """(macro names, set items, fields) a Falco condition uses. Set items are list names or
    literal values, which a condition cannot tell apart; bare words elsewhere are macros."""
    tokens = TOKEN.findall(condition)
    macros: set[str] = set()
    items: set[str] = set()
    fields: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in SET_OPS:
            assert tokens[i + 1] == "(", f"{token} must be followed by a list in {condition!r}"
            i += 2
            while tokens[i] != ")":
                if tokens[i] != ",":
                    items.add(tokens[i])
                i += 1
        elif token in COMPARE:
            i += 1  # the value compared with
        elif FIELD.fullmatch(token):
            fields.add(token)
        elif token not in LOGIC and token not in {"(", ")"}:
            macros.add(token)
        i += 1
    return macros, items, fields


def load(path: Any) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as stream:
        doc = yaml.safe_load(stream)
    assert isinstance(doc, list)
    return doc


def ours() -> list[dict[str, Any]]:
    return load(RULES_FILE)


def rules() -> list[dict[str, Any]]:
    return [item for item in ours() if "rule" in item]


@cache
def falco() -> tuple[set[str], set[str], set[str]]:
    """Macro names, list names and every field Falco's shipped rule files use."""
    macros: set[str] = set()
    lists: set[str] = set()
    fields: set[str] = set()
    for name in FALCO_FILES:
        for item in load(shared_path("falco", "rules", name)):
            if "macro" in item:
                macros.add(item["macro"])
            if "list" in item:
                lists.add(item["list"])
            if "condition" in item:
                fields |= references(item["condition"])[2]
            fields |= set(OUTPUT_FIELD.findall(item.get("output") or ""))
    return macros, lists, fields


def stable_macros() -> set[str]:
    """Macros of falco_rules.yaml, the file every Falco install loads."""
    return {
        i["macro"] for i in load(shared_path("falco", "rules", "falco_rules.yaml")) if "macro" in i
    }


def test_every_item_is_a_falco_rule_macro_or_list() -> None:
    for item in ours():
        kinds = {"rule", "macro", "list"} & set(item)
        assert len(kinds) == 1, item
        if "macro" in item:
            assert set(item) == {"macro", "condition"}
        if "list" in item:
            assert set(item) == {"list", "items"}
            assert isinstance(item["items"], list)
            assert item["items"]


def test_rules_have_falco_keys_and_the_telemetry_tag() -> None:
    names = [rule["rule"] for rule in rules()]
    assert len(names) == len(set(names)) == 6
    for rule in rules():
        assert {"rule", "desc", "condition", "output", "priority", "tags"} <= set(rule), rule
        assert set(rule) <= {"rule", "desc", "condition", "output", "priority", "tags",
                             "exceptions"}  # fmt: skip
        assert rule["priority"] in ("INFO", "DEBUG")
        assert "telemetry" in rule["tags"]
        assert all(
            isinstance(text, str) and text.strip() for text in (rule["desc"], rule["output"])
        )
        for exception in rule.get("exceptions", []):
            assert set(exception) <= {"name", "fields", "comps", "values"}
            assert all(FIELD.fullmatch(f) for f in exception["fields"])


def test_own_macros_and_lists_never_replace_falcos() -> None:
    """A macro of the same name would silently change Falco's own rules."""
    own = [item.get("macro") or item.get("list") for item in ours() if "rule" not in item]
    assert own
    assert all(name.startswith("ks_") for name in own)
    shipped_macros, shipped_lists, _ = falco()
    assert not set(own) & (shipped_macros | shipped_lists)


def test_references_resolve() -> None:
    """Each macro a condition names is defined here or in falco_rules.yaml (loaded first);
    each `ks_` list named in a set is defined here."""
    own_macros = {i["macro"] for i in ours() if "macro" in i}
    own_lists = {i["list"] for i in ours() if "list" in i}
    stable = stable_macros()
    used_lists: set[str] = set()
    for item in ours():
        if "condition" not in item:
            continue
        macros, items, _ = references(item["condition"])
        missing = macros - own_macros - stable
        assert not missing, f"{item.get('rule') or item.get('macro')}: undefined {missing}"
        used_lists |= {name for name in items if name.startswith("ks_")}
    assert used_lists <= own_lists
    assert own_lists <= used_lists  # no list left unused


def test_reference_checker_agrees_with_falcos_own_file() -> None:
    """The checker reads real Falco syntax: in falco_rules.yaml every macro it finds is
    defined there, and it does find the ones we know."""
    stable = stable_macros()
    found: set[str] = set()
    for item in load(shared_path("falco", "rules", "falco_rules.yaml")):
        if "condition" in item:
            found |= references(item["condition"])[0]
    assert found <= stable
    assert {"spawned_process", "container", "open_read", "never_true"} <= found
    # and it does flag what is not defined
    assert references("spawned_process and not ks_typo_macro")[0] - stable == {"ks_typo_macro"}


def test_fields_are_known_to_falco() -> None:
    _, _, known = falco()
    known |= DOCUMENTED_FIELDS
    for rule in rules():
        used = set(OUTPUT_FIELD.findall(rule["output"])) | references(rule["condition"])[2]
        for exception in rule.get("exceptions", []):
            used |= set(exception["fields"])
        assert used <= known, f"{rule['rule']}: unknown {used - known}"
    for item in ours():
        if "macro" in item:
            assert references(item["condition"])[2] <= known


def test_outputs_carry_what_the_analyzer_reads() -> None:
    printed: set[str] = set()
    for rule in rules():
        fields = set(OUTPUT_FIELD.findall(rule["output"]))
        printed |= fields
        assert FEATURE_FIELDS - {"proc.pname", "proc.aname[2]"} <= fields, rule["rule"]
        assert "proc.pname" in fields
        tags = set(rule["tags"])
        if "network" in tags:
            assert fields >= NETWORK_FIELDS, rule["rule"]
        if "filesystem" in tags:
            assert "fd.name" in fields, rule["rule"]
    assert printed >= FEATURE_FIELDS | NETWORK_FIELDS
    assert {"process", "network", "filesystem"} <= {t for r in rules() for t in r["tags"]}


def alert_of(rule: dict[str, Any]) -> bytes:
    """The JSON alert Falco (json_output: true) would write for ``rule``."""
    fields: dict[str, Any] = {}
    for name in OUTPUT_FIELD.findall(rule["output"]):
        fields[name] = 443 if name.endswith(("port", ".pid", ".uid")) else f"v-{name}"
    fields.update({"k8s.ns.name": "shop", "k8s.pod.name": "api-5d8f7c9b6-x2x4q",
                   "container.id": "3ad7b26ded6d", "proc.aname[2]": None})  # fmt: skip
    priority = {"INFO": "Informational", "DEBUG": "Debug"}[rule["priority"]]
    return json.dumps({
        "hostname": "node-1", "output": "12:00:00.000000000: " + rule["output"],
        "output_fields": fields, "priority": priority, "rule": rule["rule"],
        "source": "syscall", "tags": rule["tags"], "time": "2026-05-01T12:00:00.123456789Z",
    }).encode()  # fmt: skip


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["rule"])
def test_monitor_files_the_alert_as_telemetry(rule: dict[str, Any]) -> None:
    alert = parse_alert(alert_of(rule), "falco.jsonl:1")
    assert alert.rule == rule["rule"]
    assert alert.priority <= Priority.INFORMATIONAL
    assert "proc.aname[2]" in alert.output_fields  # bracketed names kept as Falco writes them
    (event,) = Enricher(cluster="prod").enrich([(alert, 0)])
    assert event.workload.namespace == "shop"
    assert context_reason(event) == TELEMETRY


def test_telemetry_stays_context_even_at_a_higher_priority() -> None:
    """The tag, not the priority, makes these context: a user raising a rule's priority to
    see it in Falco's own outputs does not turn telemetry into incidents."""
    rule = {**rules()[0], "priority": "INFO"}
    raised = json.loads(alert_of(rule))
    raised["priority"] = "Warning"
    alert = parse_alert(json.dumps(raised).encode(), "falco.jsonl:1")
    (event,) = Enricher().enrich([(alert, 0)])
    assert context_reason(event) == TELEMETRY
    raised["tags"] = ["container"]
    (plain,) = Enricher().enrich([(parse_alert(json.dumps(raised).encode(), "x"), 0)])
    assert context_reason(plain) is None
