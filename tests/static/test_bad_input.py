"""Every kind of bad input: a clear message with file and line, exit 2, no traceback, no hang.

The other inputs of the same run are still scanned and reported.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.cli import main

Run = tuple[int, dict[str, Any], str]
PRIVILEGED_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: x}\nspec:\n"
    "  containers:\n  - name: c\n    image: nginx:1.25\n    securityContext: {privileged: true}\n"
)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(["scan", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out), err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(PRIVILEGED_POD)
    return path


def _assert_reported(run: Run, file: Path, line: int, code_id: str) -> None:
    code, report, err = run
    assert code == 2
    assert f"{file}:{line}" in err
    assert code_id in err
    assert any(e["file"] == str(file) and e["line"] == line for e in report["errors"])
    # The good file next to it was still scanned.
    assert any(f["rule_id"] == "KS-0001" for f in report["findings"])


def test_malformed_yaml(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n")
    run = _run(capsys, "--path", str(bad), "--path", str(good))
    _assert_reported(run, bad, 5, "KS-E013")


def test_invalid_utf8(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  city: M\xfcnchen\n")
    run = _run(capsys, "--path", str(bad), "--path", str(good))
    _assert_reported(run, bad, 4, "KS-E012")


def test_binary_file(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "image.yaml"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    run = _run(capsys, "--path", str(bad), "--path", str(good))
    _assert_reported(run, bad, 3, "KS-E011")


def test_empty_file_is_a_notice_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, report, err = _run(capsys, "--path", str(empty))
    assert code == 0
    assert report["errors"] == []
    assert f"{empty}:1: no YAML documents" in err


def test_alias_bomb_is_refused_quickly(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol}",
        "data:",
        '  a: &a ["lol"]',
    ]
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        lines.append(f"  {level}: &{level} [{', '.join(['*' + previous] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    code, report, err = _run(capsys, "--path", str(bomb), "--path", str(good))
    assert time.monotonic() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert code == 2
    assert "alias bomb" in err
    assert f"{bomb}:" in err
    assert any(f["rule_id"] == "KS-0001" for f in report["findings"])


def test_recursive_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "loop.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nspec: &s\n  again: *s\n")
    code, _, err = _run(capsys, "--path", str(bad))
    assert code == 2
    assert "KS-E015" in err


def test_deep_nesting_does_not_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "deep.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nspec: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = _run(capsys, "--path", str(bad))
    assert code == 2
    assert "KS-E014" in err


def test_huge_document_is_refused_without_reading_it_whole(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("w") as out:
        out.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n")
        chunk = "".join(f"  k{i}: {'x' * 90}\n" for i in range(1000))
        while out.tell() < 50 * 1024 * 1024:
            out.write(chunk.replace("  k", f"  k{out.tell()}_"))
    code, report, err = _run(capsys, "--path", str(huge), "--path", str(good))
    assert code == 2
    assert f"{huge}: larger than the 32 MB limit" in err
    assert "KS-E018" in err
    assert any(f["rule_id"] == "KS-0001" for f in report["findings"])


def test_duplicate_keys_warn_and_the_last_value_is_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text(
        PRIVILEGED_POD.replace("{privileged: true}", "{privileged: false, privileged: true}")
    )
    code, report, err = _run(capsys, "--path", str(dup))
    assert code == 1
    assert f"{dup}:8: duplicate key 'privileged'" in err
    assert [f["rule_id"] for f in report["findings"]].count("KS-0001") == 1


def test_unknown_kind_and_missing_kind_are_notices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: x}\n"
        "---\nfoo: bar\n---\n- just\n- a list\n"
    )
    code, report, err = _run(capsys, "--path", str(odd))
    assert code == 0
    assert report["errors"] == []
    assert f"{odd}:1: kind Widget (example.com/v1) is not a built-in Kubernetes kind" in err
    assert f"{odd}:5: document 1 has no apiVersion and kind" in err
    assert f"{odd}:7: document 2 is a list, not an object" in err


def test_missing_path(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    code, report, err = _run(capsys, "--path", str(missing), "--path", str(good))
    assert code == 2
    assert f"{missing}: no such file or directory" in err
    assert any(f["rule_id"] == "KS-0001" for f in report["findings"])


def test_misspelt_security_field_is_a_warning_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        PRIVILEGED_POD.replace("{privileged: true}", "{privilegd: true, runAsNonroot: true}")
    )
    code, report, err = _run(capsys, "--path", str(typo))
    assert code in (0, 1)
    assert f"{typo}:8: unknown field 'privilegd' in securityContext of container \"c\"" in err
    assert "did you mean 'privileged'?" in err
    assert "did you mean 'runAsNonRoot'?" in err
    assert {w["code"] for w in report["warnings"]} == {"KS-W002"}


def test_special_files_in_a_directory_are_errors_not_hangs(
    tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    code, report, err = _run(capsys, "--path", str(tmp_path))
    assert code == 2
    assert f"{tmp_path / 'pipe.yaml'}: not a regular file" in err
    assert f"{tmp_path / 'dangling.yaml'}: not a regular file" in err
    assert any(f["rule_id"] == "KS-0001" for f in report["findings"])  # good.yaml still scanned
