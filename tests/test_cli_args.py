"""Every option has help; a bad value of any command is a message and exit 2, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubesentinel.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "k8s-manifests"
_SECTION = re.compile(r"^\S.*:$")  # "options:", "positional arguments:", a group's title
_ENTRY = re.compile(r"^  (\S.*?)(?: {2,}(\S.*))?$")  # an option or positional, maybe its help
_CHILD = re.compile(r"^ {4}(\w[\w-]*)(?: {2,}|$)")  # a subcommand under COMMAND


def _help(capsys: pytest.CaptureFixture[str], command: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> tuple[list[tuple[str, bool]], list[str]]:
    """(invocation, has help) of each listed argument, and the subcommands listed."""
    lines = text.splitlines()
    entries: list[tuple[str, bool]] = []
    children: list[str] = []
    in_section = False
    for index, line in enumerate(lines):
        if _SECTION.match(line) and not line.startswith("usage:"):
            in_section = True
            continue
        child = _CHILD.match(line)
        if in_section and child and entries and entries[-1][0].endswith("COMMAND"):
            children.append(child.group(1))
            continue
        entry = _ENTRY.match(line)
        if not in_section or entry is None:
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        has_help = bool(entry.group(2)) or bool(re.match(r"^ {3,}\S", following))
        entries.append((entry.group(1), has_help))
    return entries, children


def test_every_option_of_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    pending: list[list[str]] = [[]]
    seen: list[str] = []
    missing: list[str] = []
    while pending:
        command = pending.pop()
        entries, children = _entries(_help(capsys, command))
        seen.append(" ".join(command))
        missing += [f"{' '.join(command)} {name}" for name, has in entries if not has]
        pending += [[*command, child] for child in children]
    # the walk reached the nested commands too (rules explain, vault key export, ai train)
    assert {"scan", "simulate", "rules explain", "vault key export", "ai train"} <= set(seen)
    assert len(seen) > 25
    assert not missing, f"options without help text: {missing}"


def test_the_help_check_sees_an_option_without_help() -> None:
    text = (
        "usage: x\n\noptions:\n  -h, --help  show this help\n  --bare\n"
        "  --long-one {a,b}, -l {a,b}\n                        its help\n"
    )
    assert _entries(text)[0] == [("-h, --help", True), ("--bare", False),
                                 ("--long-one {a,b}, -l {a,b}", True)]  # fmt: skip


def test_scan_output_file_still_prints_the_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.sarif"
    args = ["scan", "--path", str(EXAMPLES / "bad"), "-f", "sarif", "-o", str(report)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert re.fullmatch(
        rf"kubesentinel: \d+ files, \d+ objects: \d+ findings? at or above medium \(.*\)\..* "
        rf"Report: {re.escape(str(report))}",
        line,
    ), line
    assert report.read_text().startswith("{")
    assert main(["scan", "--path", str(EXAMPLES / "good"), "-o", str(tmp_path / "t.txt")]) == 0
    assert "no findings at or above medium" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["v9.99", "2.0", "v1.38", "v0.5", "1.x", "newest"])
def test_unknown_pss_versions_are_refused(version: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["scan", "--path", str(EXAMPLES / "good"), "--pss-version", version])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --pss-version: PSS version {version!r}" in err
    assert "latest" in err


@pytest.mark.parametrize("version", ["latest", "v1.37", "1.30", "v1.0"])
def test_known_pss_versions_are_taken(version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--path", str(EXAMPLES / "good"), "--pss-version", version]) == 0
    capsys.readouterr()


def _bad_invocations(tmp: Path) -> list[list[str]]:
    """At least one bad value for every command, and the ones issue 15 names."""
    a_file, store = str(tmp / "a-file"), str(tmp / "s.db")
    under_file = str(tmp / "a-file" / "sub")
    alerts = str(tmp / "alerts.jsonl")
    fast = ["--source", alerts, "--until-eof", "--no-k8s-lookup", "--store", store]
    return [
        ["scan", "--path", str(tmp / "absent.yaml")],
        ["scan", "--path", a_file, "--pss-version", "v9.99"],
        ["scan", "--path", a_file, "--severity-threshold", "severe"],
        ["scan", "--path", a_file, "--format", "pdf"],
        ["scan", "--path", a_file, "--output", under_file],
        ["scan", "--path", a_file, "--store", under_file + "/x.db"],
        ["scan", "--path", a_file, "--baseline", str(tmp / "absent.json")],
        ["scan", "--path", a_file, "--rules", str(tmp / "absent-rules")],
        ["scan", "--path", a_file, "--helm-set", "no-equals-sign"],
        ["fix", "--path", str(tmp / "absent.yaml")],
        ["fix", "--path", a_file, "--rule", "KS-9999"],
        ["fix", "--path", a_file, "--severity-threshold", "severe"],
        ["fix", "--path", a_file, "--rules", str(tmp / "absent-rules")],
        ["rules", "list", "--format", "xml"],
        ["rules", "explain", "KS-9999"],
        ["monitor", "--workers", "none"],
        ["monitor", "--incident-gap", "-1", *fast],
        ["monitor", "--min-priority", "loud", *fast],
        ["monitor", "--source", str(tmp / "absent.jsonl"), "--until-eof", "--store", store],
        ["monitor", "--posture", str(tmp / "absent.json"), *fast],
        ["monitor", "--lease-ttl", "nan", *fast],
        ["monitor", "--save-model", str(tmp / "model.pkl"), *fast],
        ["incidents", "list", "--limit", "-1"],
        ["incidents", "list", "--since", "yesterday"],
        ["incidents", "list", "--store", str(tmp / "absent.db")],
        ["incidents", "show", "nope", "--store", str(tmp / "absent.db")],
        ["simulate", "--out", str(tmp / "sim"), "--hours", "0.1"],
        ["simulate", "--out", str(tmp / "sim"), "--hours", "inf"],
        ["simulate", "--out", str(tmp / "sim"), "--seed", "x"],
        ["simulate", "--out", a_file],
        ["simulate", "--out", under_file],
        ["vault", "verify", "--store", str(tmp / "absent.db")],
        ["vault", "verify", "--bundle", a_file],
        ["vault", "export", "--output", str(tmp / "b"), "--from", "someday"],
        ["vault", "stats", "--store", str(tmp / "absent.db")],
        ["vault", "prune", "--store", str(tmp / "absent.db")],
        ["vault", "hold", "--incident-id", "nope", "--store", store],
        ["vault", "release", "--incident-id", "nope", "--store", store],
        ["vault", "key", "export", "--store", str(tmp / "absent.db")],
        ["ingress", "--source", "nats://127.0.0.1:1/x", "--partitions", "0"],
        ["ingress", "--source", "kafka://x", "--partitions", "2"],
        ["status", "--nats", "nats://127.0.0.1:1"],
        ["ai", "train", "--events", str(tmp / "absent.jsonl")],
        ["ai", "train", "--events", alerts, "--warmup", "2"],
        ["ai", "score", "--events", alerts, "--threshold", "nan"],
        ["ai", "score", "--events", alerts, "--model", str(tmp / "absent.json")],
        ["ai", "serve", "--listen", "nowhere"],
        ["ai", "serve", "--listen", "127.0.0.1:0", "--max-events", "-1"],
        ["report"],
        ["report", "--incident-id", "nope", "--store", str(tmp / "absent.db")],
        ["--config", str(tmp / "absent.yaml"), "scan", "--path", a_file],
    ]


def test_bad_values_of_every_command_exit_2_with_a_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "alerts.jsonl").write_text("")
    invocations = _bad_invocations(tmp_path)
    _, commands = _entries(_help(capsys, []))
    assert set(commands) <= {argv[0] for argv in invocations}, "a command is not tried"

    def run(argv: list[str]) -> tuple[list[str], int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "kubesentinel", *argv],
            check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "KUBECONFIG": str(tmp_path / "absent-kubeconfig")},
        )  # fmt: skip
        return argv, done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, invocations))
    wrong = [
        (" ".join(argv), code, err.strip().splitlines()[-1:] if err.strip() else "(no stderr)")
        for argv, code, err in results
        if code != 2 or "Traceback" in err or "kubesentinel" not in err
    ]
    assert not wrong, wrong
