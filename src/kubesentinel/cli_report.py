"""``kubesentinel report``: an incident's report, or a period's, as Markdown, HTML or JSON.

Kept apart from cli.py so each stays short; like cli.py, only this module prints. Exit codes:
0 written; 1 written, but the evidence behind it fails verification (the report says so at
the top, and stderr names the problem); 2 nothing written (unknown incident, empty period,
unreadable store or evidence, bad options, output not writable).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.cli_runtime import _since_arg
from kubesentinel.config import Config
from kubesentinel.errors import ReportError, UsageError

if TYPE_CHECKING:
    from kubesentinel.models.report import IncidentReport, PeriodReport

__all__ = ["add_commands", "write_report"]

EXIT_CLEAN: Final = 0
EXIT_TAMPERED: Final = 1  # written, with the banner: its evidence fails verification


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report", parents=parents,
        help="write an incident's report, or a period's, as Markdown, HTML or JSON",
    )  # fmt: skip
    which = report.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident-id", metavar="ID", help="the incident to report on")
    which.add_argument("--from", dest="from_ns", type=_since_arg, metavar="WHEN",
                       help="a period's report, from WHEN: an RFC 3339 time "
                       "(2026-01-01T09:00:00Z) or a duration before now (90s, 2h, 7d)")  # fmt: skip
    report.add_argument("--to", dest="to_ns", type=_since_arg, metavar="WHEN",
                        help="with --from: the period's end (default: now)")  # fmt: skip
    report.add_argument("--namespace", metavar="NS", help="with --from: only this namespace")
    report.add_argument("--format", "-f", choices=("markdown", "html", "json"),
                        help="one format (default: reporting.formats, each to a file)")  # fmt: skip
    report.add_argument("--output", "-o", metavar="PATH",
                        help="the file to write, '-' for stdout; with several formats a "
                        "directory (default: reporting.output_path; stdout when --format "
                        "is given)")  # fmt: skip
    report.add_argument("--store", metavar="PATH|URL")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.cli_runtime import open_existing_store

    formats = _formats(args, config)
    store = open_existing_store(config, args.store)
    try:
        report = _build(args, config, store)
    finally:
        store.close()
    written = write_report(report, formats, _destination(args, config, formats))
    for path in written:
        print(path)
    if report.integrity_problem is not None:
        print(f"kubesentinel: TAMPERING: {_one_line(report.integrity_problem)}", file=sys.stderr)
        return EXIT_TAMPERED
    return EXIT_CLEAN


def _formats(args: argparse.Namespace, config: Config) -> tuple[str, ...]:
    if args.incident_id is not None and (args.to_ns is not None or args.namespace is not None):
        raise UsageError("--to and --namespace go with --from, not --incident-id")
    if args.format is not None:
        return (args.format,)
    chosen = tuple(dict.fromkeys(config.reporting.formats))
    if not chosen:
        raise UsageError("reporting.formats is empty: pass --format")
    return chosen


def _build(args: argparse.Namespace, config: Config, store: Any) -> IncidentReport | PeriodReport:
    """The report; a store that cannot be read (damaged evidence) is a ReportError."""
    import time

    from kubesentinel.errors import StoreError, VaultError

    try:
        if args.incident_id is not None:
            from kubesentinel.reporting.build import build_incident_report

            return build_incident_report(
                store, args.incident_id, rules_path=config.static.rules_path
            )
        from kubesentinel.reporting.period import build_period_report

        to_ns = time.time_ns() if args.to_ns is None else args.to_ns
        if args.from_ns > to_ns:
            raise UsageError("--from is later than --to")
        return build_period_report(store, args.from_ns, to_ns, namespace=args.namespace)
    except (StoreError, VaultError) as exc:
        raise ReportError(
            f"cannot read the evidence for the report: {exc.message}",
            file=exc.file,
            hint="`kubesentinel vault verify` checks the whole store",
        ) from None


def _destination(args: argparse.Namespace, config: Config, formats: tuple[str, ...]) -> str:
    """'-' for stdout, a file (one format), or a directory (one file per format)."""
    if args.output is not None:
        if args.output == "-" and len(formats) > 1:
            raise UsageError("--output - writes one format: pass --format")
        return str(args.output)
    if args.format is not None:
        return "-"
    return config.reporting.output_path


def write_report(
    report: IncidentReport | PeriodReport, formats: Sequence[str], destination: str
) -> list[Path]:
    """Render each format to ``destination``: stdout ('-'), the file given (one format), or a
    directory (created 0700), as ``incident-ID.EXT`` / ``period-FROM-TO.EXT``. Files are
    created 0600: they hold evidence (command lines, pod names). Returns the files written."""
    from kubesentinel.reporting.formats import EXTENSIONS, render

    if destination == "-":
        sys.stdout.write(render(report, formats[0]))
        return []
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
    from kubesentinel.models.report import IncidentReport
    from kubesentinel.runtime.incident_view import iso_time

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


def _one_line(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\n", " ")

