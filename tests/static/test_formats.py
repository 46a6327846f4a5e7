"""The five scan report formats, rendered from a real scan of tests/static/data/formats/.

The scan runs from tests/static/data so file names are relative (``formats/web.yaml``), as in
CI. Counts are checked against a catalogue of KS-0001 (privileged, critical) and KS-0002 (hostPID,
high) only, since other rules are added over time; schema checks also run the full catalogue.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from kubesentinel.errors import InputError
from kubesentinel.models import Severity
from kubesentinel.static.catalogue import Catalogue, builtin_catalogue
from kubesentinel.static.engine import ScanOptions, ScanResult, scan_paths
from kubesentinel.static.formats import (
    FORMAT_NAMES,
    JSON_SCHEMA_VERSION,
    ScanReport,
    markdown_format,
    renderer,
)
from kubesentinel.static.formats.common import artifact_uri
from kubesentinel.static.formats.json_format import document as json_document
from kubesentinel.static.formats.markdown_format import code, escape
from tests.conftest import ROOT, shared_path

DATA = Path(__file__).parent / "data"
CORE = Catalogue(tuple(r for r in builtin_catalogue().rules if r.id in ("KS-0001", "KS-0002")))
COUNTED = (("failures", "failure"), ("errors", "error"), ("skipped", "skipped"))


def _scan(catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, *paths: str) -> ScanResult:
    monkeypatch.chdir(DATA)
    return scan_paths(list(paths or ["formats"]), catalogue, ScanOptions())


def _report(
    result: ScanResult,
    threshold: Severity = Severity.CRITICAL,
    catalogue: Catalogue = CORE,
    color: bool = False,
) -> ScanReport:
    return ScanReport(result, catalogue, threshold, "0.1.0", color=color, duration_s=0.25)


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> ScanResult:
    """KS-0001 and KS-0002 over the format manifests: 6 critical, 1 high, 1 error, 1 warning."""
    return _scan(CORE, monkeypatch)


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch) -> ScanResult:
    return _scan(builtin_catalogue(), monkeypatch)


def test_the_fixture_scan_has_findings_errors_warnings_and_notices(core: ScanResult) -> None:
    assert Counter(f.rule_id for f in core.findings) == {"KS-0001": 5, "KS-0002": 1}
    assert [(e.file, e.code) for e in core.errors] == [("formats/broken.yaml", "KS-E013")]
    assert [(w.file, w.code) for w in core.warnings] == [("formats/clean.yaml", "KS-W001")]
    assert {n.file for n in core.notices} == {"formats/empty.yaml", "formats/list.yaml"}


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_format_renders_text_ending_in_a_newline(name: str, full: ScanResult) -> None:
    for threshold in Severity:
        text = renderer(name)(_report(full, threshold, builtin_catalogue()))
        assert text.endswith("\n")
        assert text == renderer(name)(_report(full, threshold, builtin_catalogue()))


def test_inputs_without_a_file_or_line_render_in_every_format(
    core: ScanResult, tmp_path: Path
) -> None:
    gone = tmp_path / "gone.yaml"
    result = ScanResult(
        findings=core.findings,
        errors=[
            InputError("no such file or directory", file=str(gone), code="KS-E016"),
            InputError(
                "Helm chart: templates must be rendered before scanning",
                file="charts/web",
                hint="run: helm template charts/web | kubesentinel scan --path -",
                code="KS-E017",
            ),
            InputError("stdin closed", code="KS-E016"),
        ],
        files=list(core.files),
        objects=core.objects,
    )
    report = _report(result, Severity.LOW)
    notifications = _sarif(report)["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    artifacts = [
        [loc["physicalLocation"]["artifactLocation"] for loc in n["locations"]]
        for n in notifications
        if "locations" in n
    ]
    assert artifacts == [
        [{"uri": gone.as_uri()}],
        [{"uri": "charts/web", "uriBaseId": "%SRCROOT%"}],
    ]
    assert "locations" not in notifications[2]
    assert "(hint: run: helm template" in notifications[1]["message"]["text"]
    document = json.loads(renderer("json")(report))
    jsonschema.Draft202012Validator(_json_schema()).validate(document)
    assert document["errors"][2] == {
        "code": "KS-E016",
        "file": None,
        "line": None,
        "message": "stdin closed",
        "hint": None,
    }
    root = _xml(renderer("junit")(report))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["(no file)"].get("errors") == "1"
    assert suites["charts/web"].find("testcase/error") is not None
    assert root.get("errors") == "3"
    table = renderer("table")(report)
    assert "  (no file)  KS-E016  stdin closed" in table
    assert "    hint: run: helm template charts/web | kubesentinel scan --path -" in table
    markdown = renderer("markdown")(report)
    assert "| `charts/web` |  | KS-E017 |" in markdown
    assert "helm template charts/web \\| kubesentinel" in markdown


# --- SARIF ---------------------------------------------------------------------------------


def _sarif(report: ScanReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(renderer("sarif")(report))
    return data


@pytest.mark.parametrize("threshold", list(Severity))
def test_sarif_validates_against_the_official_schema(threshold: Severity, full: ScanResult) -> None:
    schema = json.loads(shared_path("schemas", "sarif-schema-2.1.0.json").read_text())
    log = _sarif(_report(full, threshold, builtin_catalogue()))
    jsonschema.Draft4Validator(schema).validate(log)


def test_sarif_results_carry_what_github_code_scanning_needs(core: ScanResult) -> None:
    report = _report(core, Severity.HIGH)
    run = _sarif(report)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(report.findings) == 6
    for result, finding in zip(run["results"], report.findings, strict=True):
        assert result["ruleId"] == finding.rule_id == rules[result["ruleIndex"]]["id"]
        assert result["level"] == {"critical": "error", "high": "error"}[finding.severity.label]
        assert finding.message in result["message"]["text"].replace("{{", "{").replace("}}", "}")
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": finding.file, "uriBaseId": "%SRCROOT%"}
        assert physical["region"]["startLine"] == finding.line
        fingerprint = result["partialFingerprints"]["primaryLocationLineHash"]
        assert re.fullmatch(r"[0-9a-f]{32}:[0-9]+", fingerprint)
        logical = result["locations"][0]["logicalLocations"][0]
        objects = ("Deployment/prod/web", "Pod/debug", "Pod/batch/listed")
        assert logical["fullyQualifiedName"] in objects
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]]
    assert len(set(hashes)) == len(hashes)


def test_sarif_doubles_braces_in_messages(core: ScanResult) -> None:
    texts = [r["message"]["text"] for r in _sarif(_report(core))["runs"][0]["results"]]
    assert any('"log{{0}}`tick`"' in text for text in texts)


def test_sarif_lists_every_catalogue_rule_with_github_metadata(full: ScanResult) -> None:
    catalogue = builtin_catalogue()
    rules = _sarif(_report(full, catalogue=catalogue))["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in catalogue.rules]
    for descriptor, rule in zip(rules, catalogue.rules, strict=True):
        assert descriptor["shortDescription"]["text"] == rule.title
        assert descriptor["fullDescription"]["text"] == rule.description
        assert rule.remediation in descriptor["help"]["text"]
        assert rule.remediation in descriptor["help"]["markdown"]
        score = descriptor["properties"]["security-severity"]
        assert score == rule.severity.security_score
        assert 0.1 <= float(score) <= 10.0
        tags = descriptor["properties"]["tags"]
        assert tags[0] == "security"
        assert set(rule.references.pss) <= set(tags)
        assert len(tags) == len(set(tags))
        if rule.references.urls:
            assert descriptor["helpUri"] == rule.references.urls[0]


def test_sarif_reports_input_errors_as_failed_execution(core: ScanResult) -> None:
    invocation = _sarif(_report(core))["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    errors = [n for n in invocation["toolExecutionNotifications"] if n["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["descriptor"]["id"] == "KS-E013"
    physical = errors[0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "formats/broken.yaml"
    assert physical["region"]["startLine"] == core.errors[0].line
    levels = Counter(n["level"] for n in invocation["toolExecutionNotifications"])
    assert levels == {"error": 1, "warning": 1, "note": 2}


def test_sarif_execution_succeeds_without_input_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _scan(CORE, monkeypatch, "formats/web.yaml")
    invocation = _sarif(_report(result))["runs"][0]["invocations"][0]
    assert invocation == {"executionSuccessful": True}


def test_sarif_fingerprints_survive_lines_moving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = (DATA / "formats" / "web.yaml").read_text()
    monkeypatch.chdir(tmp_path)

    def fingerprints() -> list[tuple[str, int]]:
        result = scan_paths(["web.yaml"], CORE, ScanOptions())
        return [
            (
                r["partialFingerprints"]["primaryLocationLineHash"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
            )
            for r in _sarif(_report(result, Severity.LOW))["runs"][0]["results"]
        ]

    Path("web.yaml").write_text(original)
    before = fingerprints()
    Path("web.yaml").write_text("# a comment\n# and another\n" + original)
    after = fingerprints()
    assert [h for h, _ in before] == [h for h, _ in after]
    assert [line + 2 for _, line in before] == [line for _, line in after]


@pytest.mark.parametrize(
    ("path", "uri", "relative"),
    [
        ("formats/web.yaml", "formats/web.yaml", True),
        ("./formats/web.yaml", "formats/web.yaml", True),
        ("formats\\web.yaml", "formats/web.yaml", True),
        ("my dir/a:b.yaml", "my%20dir/a%3Ab.yaml", True),
        ("<stdin>", "%3Cstdin%3E", True),
        ("/srv/k8s/web.yaml", "file:///srv/k8s/web.yaml", False),
        ("C:\\k8s\\web.yaml", "file:///C:/k8s/web.yaml", False),
    ],
)
def test_artifact_uris_are_forward_slash_uri_references(
    path: str, uri: str, relative: bool
) -> None:
    assert artifact_uri(path) == (uri, relative)


# --- JSON ----------------------------------------------------------------------------------


def _json_schema() -> dict[str, Any]:
    text = files("kubesentinel.static.formats").joinpath("scan-result.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.mark.parametrize("threshold", list(Severity))
def test_json_validates_against_its_schema(threshold: Severity, full: ScanResult) -> None:
    schema = _json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(renderer("json")(_report(full, threshold, builtin_catalogue())))
    jsonschema.Draft202012Validator(schema).validate(document)


def _json_with_message_suffix(core: ScanResult, suffix: str) -> tuple[str, str]:
    """The JSON report with ``suffix`` added to the first finding's message, and that message."""
    first = core.findings[0]
    odd = first._replace(message=first.message + suffix)
    report = _report(replace(core, findings=[odd, *core.findings[1:]]), Severity.LOW)
    return renderer("json")(report), odd.message


def test_json_item_with_a_lone_surrogate_is_escaped_not_dropped(core: ScanResult) -> None:
    # A JSON manifest may hold "\\ud800"; orjson refuses it, the stdlib writes it escaped.
    text, message = _json_with_message_suffix(core, "\ud800")
    text.encode("utf-8")  # writable as UTF-8
    assert json.loads(text)["findings"][0]["message"] == message


def test_json_writes_non_ascii_as_escapes_as_documented(core: ScanResult) -> None:
    text, message = _json_with_message_suffix(core, " caf\u00e9 \u4e2d \U0001f512")
    assert text.isascii()
    assert json.dumps(message)[1:-1] in text
    assert json.loads(text)["findings"][0]["message"] == message


def test_json_lines_cut_from_one_encoding_equal_items_encoded_one_by_one(
    core: ScanResult,
) -> None:
    text, message = _json_with_message_suffix(core, ' "},{"rule_id": "KS-9999"} ')
    document = json.loads(text)
    assert document["findings"][0]["message"] == message  # the look-alike stayed in its string
    lines = text.splitlines()
    start = lines.index('  "findings": [') + 1
    items = [line.rstrip(",") for line in lines[start : start + len(document["findings"])]]
    assert items == [f"    {orjson.dumps(f).decode()}" for f in document["findings"]]


def test_json_finding_lines_equal_the_stdlib_encoding_of_each_finding(core: ScanResult) -> None:
    """Finding lines are assembled from parts encoded once per rule, object and file: each
    must equal the standard library's compact encoding of that finding's document item (but
    DEL, which orjson leaves as is), for odd values too (escapes, null namespace, List items,
    a rule not in the catalogue, a title that differs between findings of one rule, a lone
    surrogate)."""
    first, second = core.findings[0], core.findings[1]
    odd = [
        first._replace(message='quote " backslash \\ tab \t caf\u00e9 \U0001f512 \x1b'),
        first._replace(obj=first.obj.__class__("Pod", None, "p\u00e9", "v1"), item_index=3),
        first._replace(
            rule_id="ACME-0001", title="Not in the catalogue", file="d\u00e9j\u00e0.yaml"
        ),
        first._replace(title="Another title for the same rule", field_path=""),
        second._replace(message="lone \ud800 surrogate"),
        second,
    ]
    report = _report(replace(core, findings=odd), Severity.LOW)
    text = renderer("json")(report)
    lines = text.splitlines()
    start = lines.index('  "findings": [') + 1
    written = [line.strip().rstrip(",") for line in lines[start : start + len(odd)]]
    expected = [
        json.dumps(item, separators=(",", ":")) for item in json_document(report)["findings"]
    ]
    assert written == expected
    assert json.loads(text)["findings"] == json_document(report)["findings"]


def test_json_carries_the_scan_and_round_trips(core: ScanResult) -> None:
    report = _report(core, Severity.CRITICAL)
    text = renderer("json")(report)
    document = json.loads(text)
    assert text.startswith('{\n  "schema_version": "1.2",\n')
    lines = text.splitlines()
    start = lines.index('  "findings": [') + 1
    items = lines[start : start + len(document["findings"])]
    # one finding per line: greppable, diff-friendly
    assert [json.loads(line.rstrip(",")) for line in items] == document["findings"]
    assert all(line.startswith("    {") for line in items)
    assert document["schema_version"] == JSON_SCHEMA_VERSION
    assert document["tool"] == {"name": "kubesentinel", "version": "0.1.0"}
    assert document["threshold"] == "critical"
    assert document["summary"] == {
        "files": 5,
        "objects": 6,
        "findings": 5,
        "by_severity": {"critical": 5, "high": 0, "medium": 0, "low": 0},
        "below_threshold": 1,
        "suppressed": 0,
        "errors": 1,
        "warnings": 1,
        "notices": 2,
    }
    listed = next(f for f in document["findings"] if f["object"]["name"] == "listed")
    assert listed == {
        "rule_id": "KS-0001",
        "severity": "critical",
        "title": "Privileged container",
        "message": 'container "worker" sets securityContext.privileged: true',
        "remediation": "Remove securityContext.privileged or set it to false.",
        "category": "privilege",
        "object": {"api_version": "v1", "kind": "Pod", "namespace": "batch", "name": "listed"},
        "file": "formats/list.yaml",
        "line": 15,
        "doc_index": 0,
        "item_index": 0,
        "field_path": "spec.containers[0].securityContext.privileged",
        "references": listed["references"],
        "folded": [],
    }
    assert "CKV_K8S_16" in listed["references"]["peers"]
    assert listed["references"]["pss"] == ["baseline:privileged-containers"]
    error = document["errors"][0]
    assert error == {
        "code": "KS-E013",
        "file": "formats/broken.yaml",
        "line": core.errors[0].line,
        "message": core.errors[0].message,
        "hint": None,
    }
    assert [f["line"] for f in document["findings"]] == [f.line for f in report.findings]


def test_json_docs_describe_every_schema_field() -> None:
    doc = (ROOT / "docs" / "json-output.md").read_text()
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_json_schema())
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"docs/json-output.md does not describe {missing}"


# --- JUnit ---------------------------------------------------------------------------------


def _xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - our own output, not untrusted XML


def test_junit_parses_and_counts_add_up(core: ScanResult) -> None:
    root = _xml(renderer("junit")(_report(core, Severity.CRITICAL)))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == set(core.files)
    for element in (root, *suites.values()):
        cases = list(element.iter("testcase"))
        assert element.get("tests") == str(len(cases))
        for attribute, tag in COUNTED:
            assert element.get(attribute) == str(sum(1 for c in cases if c.find(tag) is not None))
    # One case per (object, rule): web.yaml has Deployment/KS-0001 (3 findings),
    # Deployment/KS-0002 (high: below the critical threshold, so skipped) and Pod/KS-0001.
    web = suites["formats/web.yaml"]
    names = {c.get("name"): c for c in web.iter("testcase")}
    assert set(names) == {
        "KS-0001 Deployment/prod/web",
        "KS-0002 Deployment/prod/web",
        "KS-0001 Pod/debug",
    }
    assert names["KS-0002 Deployment/prod/web"].find("skipped") is not None
    failure = names["KS-0001 Deployment/prod/web"].find("failure")
    assert failure is not None
    assert failure.get("type") == "KS-0001"
    assert failure.get("message") == (
        'container "app|sidecar" sets securityContext.privileged: true (and 2 more)'
    )
    assert "\nline 21: " in (failure.text or "")
    assert "\nRemediation: " in (failure.text or "")
    counts = {key: root.get(key) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "7", "failures": "3", "errors": "1", "skipped": "1"}


def test_junit_input_errors_are_error_cases(core: ScanResult) -> None:
    root = _xml(renderer("junit")(_report(core)))
    broken = next(s for s in root.iter("testsuite") if s.get("name") == "formats/broken.yaml")
    error = broken.find("testcase/error")
    assert error is not None
    assert error.get("type") == "KS-E013"
    assert broken.get("errors") == "1"


def test_junit_files_without_findings_get_a_passing_case(core: ScanResult) -> None:
    root = _xml(renderer("junit")(_report(core)))
    empty = next(s for s in root.iter("testsuite") if s.get("name") == "formats/empty.yaml")
    cases = list(empty.iter("testcase"))
    assert len(cases) == 1
    assert len(cases[0]) == 0  # no failure, error or skipped child: a pass


def test_junit_escapes_control_characters_from_manifests(core: ScanResult) -> None:
    text = renderer("junit")(_report(core))
    assert "\x1b" not in text
    assert "esc\\x1b[2Jape" in text
    _xml(text)


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_escapes_a_pipe_from_a_manifest_value(core: ScanResult) -> None:
    text = renderer("markdown")(_report(core, Severity.HIGH))
    assert 'container "app\\|sidecar" sets' in text
    assert "app|sidecar" not in text
    assert "log{0}\\`tick\\`" in text
    rows = [line for line in text.splitlines() if line.startswith(("| critical", "| high"))]
    assert len(rows) == 6
    for row in rows:  # five cells: no pipe from a manifest value splits one
        assert len(re.findall(r"(?<!\\)\|", row)) == 6, row


def test_markdown_has_a_summary_files_and_remediation(core: ScanResult) -> None:
    text = renderer("markdown")(_report(core, Severity.CRITICAL))
    assert "| Critical | 5 |\n| High | 0 |" in text
    assert "### `formats/web.yaml`" in text
    assert "### `formats/list.yaml`" in text
    assert "| critical | KS-0001 | `Pod batch/listed` | 15 |" in text
    assert "Remove securityContext.privileged or set it to false." in text
    assert "KS-0002" not in text.split("### How to fix")[1].split("###")[0]
    assert "1 finding below the threshold hidden" in text
    assert "### Input errors" in text
    assert "| `formats/broken.yaml` |" in text


def test_markdown_caps_the_rows_for_pr_comments(
    core: ScanResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(markdown_format, "MAX_ROWS", 2)
    text = renderer("markdown")(_report(core, Severity.HIGH))
    rows = [line for line in text.splitlines() if line.startswith(("| critical", "| high"))]
    assert len(rows) == 2
    assert "_4 more findings not shown: the JSON and SARIF formats list every finding._" in text


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("*x* _y_ `z`", "\\*x\\* \\_y\\_ \\`z\\`"),
        ("[l](u) <b> ~s~", "\\[l\\](u) \\<b\\> \\~s\\~"),
        ("&amp; #1 $m$ \\", "\\&amp; \\#1 \\$m\\$ \\\\"),
        ("two\nlines", "two lines"),
    ],
)
def test_markdown_escape(value: str, escaped: str) -> None:
    assert escape(value) == escaped


def test_markdown_code_spans_keep_backticks_and_pipes() -> None:
    assert code("a|b") == "`a\\|b`"
    assert code("a`b") == "``a`b``"
    assert code("`x") == "`` `x ``"


# --- Table ---------------------------------------------------------------------------------


def test_table_is_plain_text_without_colour(core: ScanResult) -> None:
    text = renderer("table")(_report(core, Severity.CRITICAL))
    assert "\x1b" not in text  # neither colour codes nor the escape from a manifest
    assert "esc\\x1b[2Jape" in text
    lines = text.splitlines()
    assert "formats/web.yaml" in lines
    assert "  Deployment prod/web (line 2)" in lines
    assert "  Pod batch/listed (line 5) (List item 0)" in lines
    row = next(line for line in lines if "line 15" in line)
    assert re.fullmatch(r"    CRITICAL  KS-0001  line 15  container \"worker\" sets .*", row)
    fix = lines[lines.index(row) + 1].strip()
    assert fix == "fix: Remove securityContext.privileged or set it to false."
    # The fix is shown once per object and rule: three objects have privileged containers.
    assert sum(1 for line in lines if line.strip() == fix) == 3
    assert lines[-1] == (
        "5 files, 6 objects: 5 findings at or above critical (5 critical, 0 high, 0 medium, 0 low)."
        " 1 below threshold hidden: use --severity-threshold low. 1 input error. 1 warning."
    )
    assert "Input errors (1)\n  formats/broken.yaml:" in text


def test_table_colours_severities_when_asked(core: ScanResult) -> None:
    text = renderer("table")(_report(core, Severity.HIGH, color=True))
    assert "\x1b[1;31mCRITICAL\x1b[0m" in text
    assert "\x1b[31mHIGH    \x1b[0m" in text
    assert "\x1b[2J" not in text  # the escape in a container name is shown, not sent


def test_table_without_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _scan(CORE, monkeypatch, "formats/clean.yaml")
    text = renderer("table")(_report(result, Severity.MEDIUM))
    assert text.splitlines()[-1] == "1 file, 2 objects: no findings at or above medium. 1 warning."


@pytest.mark.parametrize("name", ["json", "sarif", "junit", "markdown", "table"])
def test_a_lone_surrogate_from_a_json_manifest_still_renders(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON allows "\\ud800" escapes that are not valid UTF-8 text: every format must cope."""
    manifest = tmp_path / "pod.json"
    manifest.write_text(
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers":'
        ' [{"name": "a\\ud800b", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}}'
    )
    result = scan_paths([str(manifest)], CORE, ScanOptions())
    assert result.findings
    text = renderer(name)(_report(result))
    if name in ("json", "sarif"):
        text.encode("utf-8")  # escaped: valid UTF-8 for any consumer
    if name == "sarif":
        messages = [r["message"]["text"] for r in json.loads(text)["runs"][0]["results"]]
        assert any("a\ud800b" in m for m in messages)  # escaped, then read back exactly
