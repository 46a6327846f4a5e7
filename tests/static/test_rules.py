"""One parametrized test per rule over its fixture folder: which objects fail, and why.

Layout: tests/static/rules/<RULE_ID>/pass/*.yaml must raise nothing for the rule;
tests/static/rules/<RULE_ID>/fail/*.yaml must raise exactly the findings listed in
tests/static/rules/<RULE_ID>/expected.yaml:

    findings:
      - file: privileged.yaml      # under fail/
        object: Deployment/web     # kind/name (kind/namespace/name when namespaced)
        line: 14                   # line of the offending field, or of the deepest part
                                   # of its path that exists
        message: 'container "app" sets securityContext.privileged: true'
    options:                       # optional: scan options the rule needs
      allowed_registries: [registry.example.com]
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubesentinel.models import Severity
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths

FIXTURES = Path(__file__).parent / "rules"
RULE_IDS = [rule.id for rule in builtin_catalogue().rules]


def _options(rule_id: str) -> ScanOptions:
    """Scan options a rule's fixtures need (expected.yaml "options", e.g. allowed_registries)."""
    expected = yaml.safe_load((FIXTURES / rule_id / "expected.yaml").read_text())
    options = expected.get("options") or {}
    return ScanOptions(allowed_registries=tuple(options.get("allowed_registries", ())))


def _scan(directory: Path, rule_id: str) -> set[tuple[str, str, int, str]]:
    result = scan_paths([str(directory)], builtin_catalogue(), _options(rule_id))
    assert not result.errors, [str(e) for e in result.errors]
    return {
        (
            Path(f.file).name,
            "/".join(p for p in (f.obj.kind, f.obj.namespace, f.obj.name) if p),
            f.line,
            f.message,
        )
        for f in result.findings
        if f.rule_id == rule_id and f.severity >= Severity.LOW
    }


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_fail_fixtures_raise_exactly_the_expected_findings(rule_id: str) -> None:
    expected_file = FIXTURES / rule_id / "expected.yaml"
    expected = yaml.safe_load(expected_file.read_text())["findings"]
    want = {(e["file"], e["object"], e["line"], e["message"]) for e in expected}
    assert want, f"{expected_file} lists no finding"
    assert _scan(FIXTURES / rule_id / "fail", rule_id) == want


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_pass_fixtures_raise_nothing(rule_id: str) -> None:
    directory = FIXTURES / rule_id / "pass"
    assert any(directory.iterdir()), f"{directory} is empty"
    assert _scan(directory, rule_id) == set()
