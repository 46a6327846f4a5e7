"""Writing a rendered report: one file, or a directory of one file per format.

Report files are created 0600 (directories 0700): they hold evidence, command lines and pod
names. ``kubesentinel report`` and the monitor's ``reporting.on_incident`` write through here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kubesentinel.errors import ReportError
from kubesentinel.models.report import IncidentReport, PeriodReport
from kubesentinel.reporting.formats import EXTENSIONS, render
from kubesentinel.runtime.incident_view import iso_time

__all__ = ["write_report"]


def write_report(
    report: IncidentReport | PeriodReport, formats: Sequence[str], destination: str
) -> list[Path]:
    """Render each format to ``destination``: the file given (one format, a name with an
    extension that is not a directory), else a directory (created 0700) of
    ``incident-ID.EXT`` / ``period-FROM-TO.EXT``. Files are created 0600: they hold evidence
    (command lines, pod names). Returns the files written."""
    target = Path(destination)
    if len(formats) == 1 and not target.is_dir() and target.suffix:
        paths = {formats[0]: target}
    else:
        stem = _stem(report)
        paths = {fmt: target / f"{stem}.{EXTENSIONS[fmt]}" for fmt in formats}
        try:
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(
                f"cannot create the report directory: {exc.strerror or exc}", file=str(target)
            ) from None
    for fmt, path in paths.items():
        _write_private(path, render(report, fmt))
    return list(paths.values())


def _stem(report: IncidentReport | PeriodReport) -> str:
    if isinstance(report, IncidentReport):
        return f"incident-{report.incident_id}"
    start = iso_time(report.from_ns, precise=False).replace(":", "")
    end = iso_time(report.to_ns, precise=False).replace(":", "")
    return f"period-{start}-{end}"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (an existing file is truncated and its mode
    tightened), through a descriptor opened with that mode: never readable by others."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o600)
            stream.write(text)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report: {exc.strerror or exc}", file=str(path)
        ) from None
