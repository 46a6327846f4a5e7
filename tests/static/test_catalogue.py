"""The catalogue itself: ids, severities, remediation, references, fixtures, generated docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubesentinel.errors import RuleError
from kubesentinel.static import rulebundle
from kubesentinel.static.catalogue import (
    BUILTIN_DIR,
    builtin_catalogue,
    implied_closure,
    load_catalogue,
    load_rule_file,
)
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.folding import Where, meets, where_of
from kubesentinel.static.predicates import load_builtin_predicates
from kubesentinel.static.ruledocs import peer_severities, render
from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]
RULES = builtin_catalogue().rules


def test_ids_are_unique_and_well_formed() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"KS-\d{4}", i) for i in ids)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_metadata_is_complete(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule.title
    assert rule.description
    assert rule.category
    assert rule.remediation.endswith(".")
    assert rule.kinds
    assert Path(rule.source_file).name == f"{rule.id}.yaml"  # built-ins: one rule per file
    assert (
        rule.references.concepts
        or rule.references.peers
        or rule.references.pss
        or rule.id in {"KS-0057", "KS-0059"}  # no peer has a matching check
    )
    fixtures = ROOT / "tests" / "static" / "rules" / rule.id
    assert (fixtures / "expected.yaml").is_file(), f"no fixtures for {rule.id}"
    assert any((fixtures / "pass").glob("*.y*ml")), f"no pass fixture for {rule.id}"


def test_every_registered_predicate_is_used_by_a_rule() -> None:
    used = {r.predicate for r in RULES}
    assert set(load_builtin_predicates()) - used == set()


def test_rule_docs_are_up_to_date() -> None:
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert docs.strip() == render(builtin_catalogue()).strip(), (
        "run `make docs` and commit docs/rules.md"
    )


def test_rule_bundle_holds_exactly_the_rule_files() -> None:
    """Scans load the built-in rules from the bundle: it must equal the YAML files, field for
    field, and builtin_catalogue must come from it."""
    from_yaml = load_catalogue([BUILTIN_DIR])
    assert rulebundle.BUNDLE.read_text(encoding="utf-8") == rulebundle.dump(from_yaml.rules), (
        "run `make docs` and commit src/kubesentinel/static/rules.bundle.json"
    )
    bundled = rulebundle.load(rulebundle.BUNDLE.read_bytes(), BUILTIN_DIR)
    assert bundled == from_yaml.rules
    assert builtin_catalogue().rules == from_yaml.rules
    assert [Path(r.source_file) for r in bundled] == [Path(r.source_file) for r in from_yaml.rules]


def test_a_bundle_of_another_layout_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rulebundle.load(b'{"format": 999, "rules": []}', BUILTIN_DIR) is None
    stale = tmp_path / "rules.bundle.json"
    stale.write_text('{"format": 999, "rules": []}')
    monkeypatch.setattr(rulebundle, "BUNDLE", stale)
    builtin_catalogue.cache_clear()
    try:
        assert builtin_catalogue().rules == load_catalogue([BUILTIN_DIR]).rules
        stale.unlink()  # no bundle at all (a checkout before `make docs`): the YAML files
        builtin_catalogue.cache_clear()
        assert builtin_catalogue().rules == load_catalogue([BUILTIN_DIR]).rules
    finally:
        builtin_catalogue.cache_clear()


def test_broken_rule_file_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    rule = tmp_path / "KS-9999.yaml"
    rule.write_text(
        "id: KS-9999\ntitle: t\nseverity: urgent\ncategory: c\ndescription: d\n"
        "remediation: Fix it.\nkinds: [Pod]\npredicate: pod_flag_true\n"
    )
    with pytest.raises(RuleError) as info:
        load_rule_file(rule)
    assert (info.value.file, info.value.line) == (str(rule), 3)
    assert "urgent" in info.value.message


def test_unknown_key_and_unknown_predicate_are_errors(tmp_path: Path) -> None:
    rule = tmp_path / "r.yaml"
    base = (
        "id: X-1\ntitle: t\nseverity: low\ncategory: c\ndescription: d\n"
        "remediation: Fix.\nkinds: [Pod]\n"
    )
    rule.write_text(base + "predicate: pod_flag_true\nseverty: low\n")
    with pytest.raises(RuleError, match="unknown key 'severty'"):
        load_rule_file(rule)
    rule.write_text(base + "predicate: os.system\n")
    with pytest.raises(RuleError, match="unknown predicate"):
        load_rule_file(rule)


@pytest.mark.parametrize(
    ("runtime", "line", "message"),
    [
        ("runtime: privileged\n", 9, "runtime must be a mapping"),
        ("runtime: {impact: privileged, points: 3}\n", 9, "unknown key 'points'"),
        ("runtime: {}\n", 9, "missing key 'impact'"),
        ("runtime:\n  impact: ''\n", 10, "impact must be a non-empty string"),
        ("runtime:\n  impact: [a]\n", 10, "impact must be a non-empty string"),
        (f"runtime: {{impact: {'x' * 41}}}\n", 9, "at most 40 characters"),
    ],
)
def test_the_runtime_field_is_checked(
    tmp_path: Path, runtime: str, line: int, message: str
) -> None:
    rule = tmp_path / "r.yaml"
    rule.write_text(
        "id: X-1\ntitle: t\nseverity: low\ncategory: c\ndescription: d\n"
        "remediation: Fix.\nkinds: [Pod]\npredicate: pod_flag_true\n" + runtime
    )
    with pytest.raises(RuleError, match=message) as info:
        load_rule_file(rule)
    assert (info.value.file, info.value.line) == (str(rule), line)


def test_the_runtime_impact_is_read_bundled_and_documented(tmp_path: Path) -> None:
    rule = tmp_path / "r.yaml"
    rule.write_text(
        "id: X-1\ntitle: t\nseverity: low\ncategory: c\ndescription: d\n"
        "remediation: Fix.\nkinds: [Pod]\npredicate: pod_flag_true\n"
        "runtime:\n  impact: '  host   IPC '\n"
    )
    (loaded,) = load_rule_file(rule)
    assert loaded.runtime_impact == "host IPC"
    assert rulebundle.load(rulebundle.dump([loaded]).encode(), tmp_path) == (loaded,)
    privileged = builtin_catalogue().get("KS-0001")
    assert privileged is not None
    assert privileged.runtime_impact == "privileged"
    assert "- Runtime impact: privileged\n" in render(builtin_catalogue())


def test_user_rule_reuses_a_builtin_predicate(tmp_path: Path) -> None:
    (tmp_path / "ACME-1.yaml").write_text(
        "id: ACME-1\ntitle: No host IPC\nseverity: high\ncategory: host\n"
        "description: Our policy.\nremediation: Remove hostIPC.\nkinds: [workloads]\n"
        "predicate: pod_flag_true\nparams: {field: hostIPC}\n"
    )
    catalogue = load_catalogue([tmp_path], RULES)
    assert catalogue.get("acme-1") is not None
    assert len(catalogue.rules) == len(RULES) + 1


def test_pss_references_name_controls_whose_violation_the_rule_implies() -> None:
    # Rules stricter than the control (adding NET_BIND_SERVICE, a Localhost seccomp profile)
    # must not cite it: a pod that satisfies the control would be flagged under its name.
    by_id = {r.id: r for r in RULES}
    assert by_id["KS-0027"].references.pss == ()
    assert by_id["KS-0033"].references.pss == ()
    cited = {pss for r in RULES for pss in r.references.pss}
    assert {"baseline:capabilities", "restricted:capabilities", "restricted:seccomp"} <= cited


def test_a_user_rules_file_may_hold_several_rules(tmp_path: Path) -> None:
    rules = tmp_path / "custom-rules.yaml"
    one = (
        "id: ACME-{n}\ntitle: t\nseverity: low\ncategory: c\ndescription: d\n"
        "remediation: Fix.\nkinds: [Pod]\npredicate: pod_flag_true\nparams: {{field: hostIPC}}\n"
    )
    rules.write_text(one.format(n=1) + "---\n" + one.format(n=2))
    assert [r.id for r in load_rule_file(rules)] == ["ACME-1", "ACME-2"]
    rules.write_text(one.format(n=1) + "---\n" + one.format(n=1))
    with pytest.raises(RuleError, match="duplicate rule id ACME-1"):
        load_catalogue([rules])


def test_frameworks_select_rules_by_their_references() -> None:
    catalogue = builtin_catalogue()
    baseline = {r.id for r in catalogue.select("pss-baseline").rules}
    restricted = {r.id for r in catalogue.select("pss-restricted").rules}
    assert {"KS-0001", "KS-0007", "KS-0012"} <= baseline
    assert "KS-0016" not in baseline  # Restricted: Privilege Escalation
    assert baseline < restricted  # the Restricted profile includes the Baseline controls
    assert "KS-0016" in restricted
    assert all(r.references.cis for r in catalogue.select("cis").rules)
    assert all(r.references.nsa for r in catalogue.select("nsa").rules)
    assert catalogue.select("all") == catalogue


def _user_rule(rule_id: str, severity: str, implies: str = "") -> str:
    return (
        f"id: {rule_id}\ntitle: t\nseverity: {severity}\ncategory: c\ndescription: d\n"
        f"remediation: Fix.\nkinds: [Pod]\npredicate: pod_flag_true\n"
        f"params: {{field: hostIPC}}\n{implies}"
    )


def test_implies_is_read_bundled_and_closed_over_chains(tmp_path: Path) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(
        _user_rule("ACME-1", "high", "implies: [ACME-2]\n")
        + "---\n"
        + _user_rule("ACME-2", "medium", "implies: [KS-0053]\n")
    )
    catalogue = load_catalogue([rules], RULES)
    first = catalogue.get("ACME-1")
    assert first is not None
    assert first.implies == ("ACME-2",)
    assert rulebundle.load(rulebundle.dump([first]).encode(), tmp_path) == (first,)
    closure = implied_closure(catalogue.rules)
    assert closure["ACME-1"] == {"ACME-2", "KS-0053"}
    assert closure["KS-0036"] >= {"KS-0035", "KS-0005", "KS-0015"}


@pytest.mark.parametrize(
    ("second", "implies", "message"),
    [
        ("ACME-2", "implies: [ACME-9]\n", "implies unknown rule 'ACME-9'"),
        ("ACME-2", "implies: [KS-0001]\n", r"ACME-1 \(high\) implies KS-0001 \(critical\)"),
        ("ACME-1", "implies: [ACME-1]\n", "ACME-1 implies itself"),
        ("ACME-2", "implies: [ACME-2, ACME-2]\n", "lists a rule twice"),
        ("ACME-2", "implies: [not a rule]\n", "is not a rule id"),
        ("ACME-2", "implies: ACME-2\n", "implies must be a list of strings"),
    ],
)
def test_bad_implies_is_an_error_naming_file_and_line(
    tmp_path: Path, second: str, implies: str, message: str
) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(_user_rule("ACME-1", "high", implies) + "---\n" + _user_rule(second, "low"))
    with pytest.raises(RuleError, match=message) as info:
        load_catalogue([rules], RULES)
    assert (info.value.file, info.value.line) == (str(rules), 10)


def test_a_cycle_of_implies_is_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(
        _user_rule("ACME-1", "high", "implies: [ACME-2]\n")
        + "---\n"
        + _user_rule("ACME-2", "high", "implies: [ACME-1]\n")
    )
    with pytest.raises(RuleError, match="cycle: ACME-1 -> ACME-2 -> ACME-1"):
        load_catalogue([rules], RULES)


def _implication_gaps(paths: list[Path], implies: dict[str, tuple[str, ...]]) -> list[str]:
    """Where a rule fails and a rule it implies does not, on the same container, volume or
    field of the same object (static/folding.py says what counts as the same spot)."""
    result = scan_paths([str(p) for p in paths], builtin_catalogue(), ScanOptions())
    bodies = {(o.source.file, o.source.doc_index, o.source.item_index): o.body
              for o in result.scanned}  # fmt: skip
    found: dict[tuple[str, int, int | None], list[tuple[str, Where]]] = {}
    for f in result.findings:
        key = (f.file, f.doc_index, f.item_index)
        found.setdefault(key, []).append((f.rule_id, where_of(bodies[key], f.field_path)))
    gaps = []
    for key, hits in found.items():
        for rule_id, where in hits:
            for implied in implies.get(rule_id, ()):
                if not any(other == implied and meets(where, at) for other, at in hits):
                    gaps.append(
                        f"{key[0]} document {key[1]}: {rule_id} at {where} without {implied}"
                    )
    return gaps


@pytest.mark.parametrize("source", ["fixtures", "corpus", "conformance"])
def test_an_implied_rule_fails_wherever_its_implier_fails(source: str) -> None:
    # Folding hides an implied rule's finding inside its implier's: that is only right if the
    # implied rule really fails on the same spot each time the implier does.
    if source == "fixtures":
        paths = [ROOT / "tests" / "static" / "rules", ROOT / "tests" / "static" / "data",
                 ROOT / "examples"]  # fmt: skip
    elif source == "corpus":
        paths = [shared_path("corpus", "real")]
    else:
        paths = [shared_path("conformance", "fixtures")]
    implies = {rule.id: rule.implies for rule in RULES if rule.implies}
    assert implies
    assert _implication_gaps(paths, implies) == []


def test_the_implication_check_finds_a_wrong_pair() -> None:
    # runAsUser: 1000 without runAsNonRoot fails KS-0017 but not KS-0023 (KS-0023's fixtures).
    fixtures = [ROOT / "tests" / "static" / "rules" / "KS-0023"]
    gaps = _implication_gaps(fixtures, {"KS-0017": ("KS-0023",)})
    assert gaps
    assert all("KS-0017 at" in gap and gap.endswith("without KS-0023") for gap in gaps)


def test_every_rule_is_calibrated_against_the_peers_it_cites() -> None:
    # docs/rules.md shows our severity beside the peers': a new rule must add its row, and a
    # row may only name checks the rule lists among its references.peers.
    table = peer_severities()
    assert sorted(table) == sorted(rule.id for rule in RULES)
    severities = {"low", "medium", "high", "critical", "not checked"}
    for rule in RULES:
        for peer, text in table[rule.id].items():
            if text == "—":
                continue
            for entry in text.split(", "):
                check, _, severity = entry.partition(" ")
                assert check in rule.references.peers, f"{rule.id} {peer}: {check}"
                assert severity in severities or peer == "kube-linter", f"{rule.id}: {entry}"
