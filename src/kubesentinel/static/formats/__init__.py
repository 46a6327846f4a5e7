"""Renderers of a scan report. Each module exposes ``render(report) -> str``, and may expose
``encode(report) -> list[Chunk]``: the same text as UTF-8 chunks, for writing big reports
without joining them into one string first."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from kubesentinel.models import Finding, Severity, Suppressed
from kubesentinel.static.catalogue import Catalogue
from kubesentinel.static.engine import ScanResult

JSON_SCHEMA_VERSION = "1.2"


@dataclass(frozen=True, slots=True)
class ScanReport:
    result: ScanResult
    catalogue: Catalogue  # the rules that ran (SARIF lists them)
    threshold: Severity
    tool_version: str
    color: bool = False  # ANSI colours: only when writing to a terminal
    duration_s: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        """Findings at or above the threshold: what the report shows and the exit code counts."""
        return self.result.at_or_above(self.threshold)

    @property
    def suppressed(self) -> list[Suppressed]:
        """Suppressed findings at or above the threshold: listed with their reason, never failing.

        The threshold applies first, so each finding is in exactly one of ``findings``,
        ``suppressed`` and ``below_threshold``.
        """
        return [s for s in self.result.suppressed if s.finding.severity >= self.threshold]

    @property
    def below_threshold(self) -> int:
        """Findings below the threshold, suppressed or not."""
        total = len(self.result.findings) + len(self.result.suppressed)
        return total - len(self.findings) - len(self.suppressed)


Renderer = Callable[[ScanReport], str]
Chunk = bytes | memoryview
Encoder = Callable[[ScanReport], list[Chunk]]
FORMAT_NAMES = ("table", "json", "sarif", "junit", "markdown")


def renderer(name: str) -> Renderer:
    """The render function of a format, imported only when asked for (keeps start-up fast)."""
    if name not in FORMAT_NAMES:
        raise ValueError(f"unknown format {name!r}")
    module = __import__(f"kubesentinel.static.formats.{name}_format", fromlist=["render"])
    render: Renderer = module.render
    return render


def encoder(name: str) -> Encoder:
    """The format's ``encode`` function, or its ``render`` output encoded as UTF-8."""
    render = renderer(name)
    module = sys.modules[render.__module__]
    encode: Encoder | None = getattr(module, "encode", None)
    if encode is not None:
        return encode
    return lambda report: [render(report).encode()]
