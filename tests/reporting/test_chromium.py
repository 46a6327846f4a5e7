"""The HTML reports in a real browser: headless Chromium (Debian's ``chromium``).

Each page is loaded from a file with its console logged to stderr: the sections and the SVG
must be in the rendered DOM, nothing an alert carries may become an element, and the console
must stay silent (a CSP violation or a script error is logged there as ``CONSOLE``; a control
page with a blocked script and image checks that it is). Skipped only where Chromium is
absent, and failed then when KUBESENTINEL_REQUIRE_SERVICES=1 (CI installs it: .ci/run).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kubesentinel.models.report import IncidentReport, PeriodReport
from kubesentinel.reporting.formats import render
from tests.reporting.conftest import SECTIONS, Store, incident_of, incident_report, period_report
from tests.runtime.services import REQUIRE_ENV

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent (apt-get install chromium)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to make this a failure")
    return CHROMIUM


def load(chromium: Path, page: Path, tmp_path: Path, *action: str) -> tuple[str, list[str]]:
    """(stdout, the console's lines) of Chromium on ``page``."""
    profile = tmp_path / f"profile-{page.stem}-{len(action)}"
    done = subprocess.run(
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def page(report: IncidentReport | PeriodReport, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(render(report, "html"))
    return path


def test_the_console_check_catches_a_violation(chromium: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body><script>1</script>"
        '<img src="https://example.invalid/x.png"></body></html>'
    )
    _, console = load(chromium, bad, tmp_path, "--dump-dom")
    assert len(console) == 2
    assert all("Content Security Policy" in line for line in console)


def test_an_incident_report_renders_with_no_console_message(
    chromium: Path, sim: Store, tmp_path: Path
) -> None:
    report = incident_report(sim, incident_of(sim.path, "node-agent", "critical"))
    html = page(report, tmp_path, "incident")
    dom, console = load(chromium, html, tmp_path, "--dump-dom")
    assert console == []
    for section in SECTIONS:
        assert f'<section id="{section}"' in dom
    assert dom.count("<svg") == 1
    assert dom.count("<circle") == len(report.timeline.rows)
    assert "<script" not in dom
    shot = tmp_path / "incident.png"
    _, console = load(chromium, html, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert console == []
    assert shot.read_bytes().startswith(PNG)
    assert shot.stat().st_size > 50_000  # a page, not a blank


def test_hostile_text_never_becomes_an_element(
    chromium: Path, hostile: Store, tmp_path: Path
) -> None:
    report = incident_report(hostile, incident_of(hostile.path, "web"))
    dom, console = load(chromium, page(report, tmp_path, "hostile"), tmp_path, "--dump-dom")
    assert console == []
    assert "<script" not in dom
    assert "<img" not in dom
    assert dom.count("<svg") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    assert re.search(r"<a [^>]*href=\"(?!https://attack\.mitre\.org/)", dom) is None


def test_a_period_report_renders_with_no_console_message(
    chromium: Path, sim: Store, tmp_path: Path
) -> None:
    report = period_report(sim)
    dom, console = load(chromium, page(report, tmp_path, "period"), tmp_path, "--dump-dom")
    assert console == []
    assert dom.count("<rect") == len(report.rows)
    for section in ("summary", "top", "timeline"):
        assert f'<section id="{section}"' in dom
