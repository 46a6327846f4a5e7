"""``kubesentinel report``: an incident's report, or a period's, as Markdown, HTML or JSON.

Kept apart from cli.py so each stays short; like cli.py, only this module prints. Exit codes:
0 written; 1 written, but the evidence behind it fails verification (the report says so at
the top, and stderr names the problem); 2 nothing written (unknown incident, empty period,
unreadable store or evidence, bad options, output not writable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.cli_runtime import STORE_HELP, _since_arg
from kubesentinel.config import Config
from kubesentinel.errors import ReportError, UsageError

if TYPE_CHECKING:
    from kubesentinel.models.report import IncidentReport, PeriodReport

__all__ = ["add_commands"]

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
    report.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.cli_runtime import open_existing_store

    formats = _formats(args, config)
    store = open_existing_store(config, args.store)
    try:
        report = _build(args, config, store)
    finally:
        store.close()
    from kubesentinel.reporting.formats import render
    from kubesentinel.reporting.output import write_report

    destination = _destination(args, config, formats)
    if destination == "-":
        sys.stdout.write(render(report, formats[0]))
        written = []
    else:
        written = write_report(report, formats, destination)
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


def _one_line(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\n", " ")
