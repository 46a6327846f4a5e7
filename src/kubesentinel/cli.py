"""The `kubesentinel` command. The only module that prints or exits.

Exit codes: 0 clean, 1 findings at or above the threshold, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kubesentinel import __version__
from kubesentinel.cli_ai import add_commands as add_ai_commands
from kubesentinel.cli_fix import add_commands as add_fix_commands
from kubesentinel.cli_inputs import add_input_options, cluster_batches, render_options
from kubesentinel.cli_report import add_commands as add_report_commands
from kubesentinel.cli_runtime import add_commands as add_runtime_commands
from kubesentinel.cli_scale import add_commands as add_scale_commands
from kubesentinel.cli_scale import add_monitor_options
from kubesentinel.cli_vault import add_commands as add_vault_commands
from kubesentinel.config import Config, load_config, parse_pss_version
from kubesentinel.errors import KubeSentinelError, UsageError
from kubesentinel.models import Rule, Severity
from kubesentinel.static.context import LATEST_PSS

if TYPE_CHECKING:  # heavy modules load only for the command that needs them
    from kubesentinel.static.catalogue import Catalogue
    from kubesentinel.static.engine import ScanResult
    from kubesentinel.static.objects import Notice

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv)


def run() -> NoReturn:
    """The console script (and ``python -m kubesentinel``)."""
    sys.exit(_main(None, exit_when_done=True))


def _main(argv: Sequence[str] | None, *, exit_when_done: bool = False) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.exit_when_done = exit_when_done
    try:
        config = load_config(args.config or os.environ.get("KUBESENTINEL_CONFIG"))
        code: int = args.handler(args, config)
        return code
    except KubeSentinelError as exc:
        _print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kubesentinel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        return EXIT_CLEAN


def _done(args: argparse.Namespace, code: int) -> int:
    """A command's exit code; from the console script, the process ends here at once.

    Freeing the millions of objects a big scan parsed, one by one as the stack unwinds and
    at interpreter shutdown, costs a corpus scan time (docs/performance.md) for memory the OS
    takes back anyway. Output is flushed first; a command exits here only when all it opened
    is closed.
    """
    if not args.exit_when_done:
        return code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass  # output closed early (piped into `head`): nothing left to write
    os._exit(code)


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter with the terminal width looked up once per process: argparse
    makes one per argument, and each asked the terminal again (the first also importing shutil,
    with bz2 and lzma)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _help_width() if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


@functools.cache
def _help_width() -> int:
    """What argparse uses: shutil.get_terminal_size's columns (COLUMNS, else the terminal,
    else 80), less 2."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Parser(argparse.ArgumentParser):
    """Subcommand parsers are made with the parent's class: all of them get _Formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubesentinel",
        description="Kubernetes security: static manifest scanning bridged with runtime signals.",
    )
    parser.add_argument("--version", action="version", version=f"kubesentinel {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config.yaml (default: built-in defaults)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = config_parent()
    scan = commands.add_parser("scan", help="check manifests before deployment", parents=common)
    scan.add_argument(
        "--path",
        "-p",
        action="append",
        default=[],
        metavar="PATH",
        help="file or directory (recursive: .yaml, .yml, .json; Helm charts and Kustomize "
        "directories are rendered); '-' reads stdin; repeatable",
    )
    scan.add_argument("paths", nargs="*", metavar="FILE",
                      help="more files or directories, as --path (how pre-commit passes the "
                      "files it checks)")  # fmt: skip
    add_input_options(scan)
    scan.add_argument(
        "--format",
        "-f",
        default="table",
        choices=("table", "json", "sarif", "junit", "markdown"),
        help="report format (default: table); json is documented in docs/json-output.md, sarif "
        "is for code scanning, junit for CI test reports, markdown for pull request comments",
    )
    scan.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write the report here instead of stdout; the one-line summary still goes to stderr",
    )
    scan.add_argument(
        "--severity-threshold",
        metavar="LEVEL",
        type=_severity_arg,
        help="lowest severity reported and failing the run: low, medium, high, "
        "critical (default: static.severity_threshold, medium)",
    )
    scan.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="PATH",
        help="extra rule file or directory, same format as the built-in rules; conditions "
        "may be CEL validations (docs/custom-rules.md)",
    )
    scan.add_argument(
        "--framework",
        default="all",
        choices=("all", "pss-baseline", "pss-restricted", "nsa", "cis"),
        help="only the rules that reference this framework (default: all); "
        "pss-restricted includes the Baseline controls",
    )
    scan.add_argument(
        "--pss-version",
        metavar="VERSION",
        type=_pss_version_arg,
        help=f"Pod Security Standards version to apply: latest or v1.0 to v1.{LATEST_PSS[1]}, "
        "e.g. v1.30 (default: static.pss_version, latest)",
    )
    scan.add_argument(
        "--baseline",
        metavar="FILE",
        help="report only findings not in this baseline; the others are listed as suppressed",
    )
    scan.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="write the reported findings (all severities) to FILE as a baseline; exit 0",
    )
    scan.add_argument(
        "--all-findings",
        action="store_true",
        help="one finding per rule: do not fold findings of implied rules into the finding of "
        "the rule that implies them (as peer scanners count; docs/rules.md lists implies)",
    )
    scan.add_argument("--no-color", action="store_true", help="never colour the table output")
    scan.add_argument("--store", metavar="PATH|URL",
                      help="also save the workloads' findings (all severities) in this store "
                      "(SQLite file or postgresql:// URL), where `kubesentinel monitor` reads "
                      "its posture")  # fmt: skip
    scan.add_argument("--store-cluster", default="default", metavar="NAME",
                      help="with --store: the cluster the scan describes, as the monitor's "
                      "--cluster names it (default: default)")  # fmt: skip
    scan.add_argument(
        "--quiet", "-q", action="store_true", help="do not print notices and warnings"
    )
    scan.set_defaults(handler=_scan)

    rules = commands.add_parser("rules", help="list and explain the rules")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    listing = rule_commands.add_parser("list", help="list every rule", parents=common)
    listing.add_argument("--format", "-f", default="table", choices=("table", "json"),
                         help="output format (default: table)")  # fmt: skip
    listing.set_defaults(handler=_rules_list)
    explain = rule_commands.add_parser("explain", help="show one rule in full", parents=common)
    explain.add_argument("rule_id", metavar="RULE_ID", help="a rule id or alias, e.g. KS-0001")
    explain.set_defaults(handler=_rules_explain)
    for command in (listing, explain):  # user rules show beside the built-ins
        command.add_argument("--rules", action="append", default=[], metavar="PATH",
                             help="extra rule file or directory, as for scan")  # fmt: skip
    add_runtime_commands(commands, common)
    add_monitor_options(commands.choices["monitor"])
    add_vault_commands(commands, common)
    add_scale_commands(commands, common)
    add_ai_commands(commands, common)
    add_report_commands(commands, common)
    add_fix_commands(commands, common)
    return parser


def config_parent() -> list[_Parser]:
    """``--config`` after the command too (``kubesentinel monitor --config my.yaml``, as the
    design writes it); SUPPRESS keeps a value given before the command."""
    parent = _Parser(add_help=False)
    parent.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config.yaml (default: built-in defaults)")  # fmt: skip
    return [parent]


def _pss_version_arg(text: str) -> str:
    try:
        parse_pss_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _severity_arg(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _catalogue(config: Config, extra: Sequence[str]) -> Catalogue:
    from kubesentinel.static.catalogue import builtin_catalogue, load_catalogue

    paths = [Path(p) for p in extra]
    if config.static.rules_path:  # checked when the config loaded: it exists
        paths.insert(0, Path(config.static.rules_path))
    base = builtin_catalogue()
    return load_catalogue(paths, base.rules) if paths else base


def _scan(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.static.parallel import gc_paused

    args.path = [*args.path, *args.paths]
    # Paused from the catalogue to the report: turning the collector back on between the scan
    # and rendering made its next pass walk every object the scan parsed.
    with gc_paused():
        return _scan_paused(args, config)


def _scan_paused(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.static.engine import ScanOptions, scan_paths
    from kubesentinel.static.formats import ScanReport, encoder
    from kubesentinel.static.suppress import build as build_suppressor

    started = time.perf_counter()
    threshold = args.severity_threshold or Severity.parse(config.static.severity_threshold)
    pss_text = args.pss_version or config.static.pss_version
    try:
        pss = parse_pss_version(pss_text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    every_rule = _catalogue(config, args.rules)
    catalogue = every_rule.select(args.framework)
    suppressor = build_suppressor(every_rule.rules, config.static.skip, args.baseline)
    options = ScanOptions(
        max_file_bytes=config.static.max_file_size_mb * 1024 * 1024,
        allowed_registries=config.static.allowed_registries,
        suppressor=suppressor,
        render=render_options(args),
        fold=not args.all_findings,
    )
    if pss is not None:
        options = replace(options, pss_version=pss)
    result = scan_paths(args.path, catalogue, options, cluster_batches(args, catalogue))
    out_is_tty = args.output is None and sys.stdout.isatty()
    report = ScanReport(
        result=result,
        catalogue=catalogue,
        threshold=threshold,
        tool_version=__version__,
        color=out_is_tty and not args.no_color and "NO_COLOR" not in os.environ,
        duration_s=time.perf_counter() - started,
    )
    _write(encoder(args.format)(report), args.output)
    if args.output is not None:  # a CI log still shows the result
        from kubesentinel.static.formats.table_format import summary

        print(f"kubesentinel: {summary(report)} Report: {args.output}", file=sys.stderr)
    if args.store:
        _save_posture(result, args.store, every_rule, args.store_cluster)
    _print_diagnostics(result, quiet=args.quiet)
    if args.write_baseline:
        _write_baseline(result, args.write_baseline, quiet=args.quiet)
    if result.errors:
        return _done(args, EXIT_ERROR)
    if args.write_baseline:
        return _done(args, EXIT_CLEAN)  # the findings were just accepted
    return _done(args, EXIT_FINDINGS if report.findings else EXIT_CLEAN)


def _write_baseline(result: ScanResult, path: str, *, quiet: bool) -> None:
    """What the scan reports, plus findings an older baseline still matches (fixed ones drop
    out); annotation and config suppressions stay where they are declared."""
    from kubesentinel.static.baseline import write_baseline
    from kubesentinel.static.folding import unfold

    kept = [s.finding for s in result.suppressed if s.suppression.kind == "baseline"]
    # Every rule's finding, folded or not: the baseline then matches with --all-findings too.
    count = write_baseline(path, unfold([*result.findings, *kept]))
    if not quiet:
        print(f"kubesentinel: wrote baseline {path} ({count} findings)", file=sys.stderr)


def _save_posture(result: ScanResult, store_path: str, catalogue: Catalogue, cluster: str) -> None:
    from kubesentinel.bridge import impacts_of, posture_from_findings
    from kubesentinel.runtime.store.open import open_store
    from kubesentinel.runtime.store.urls import is_url

    if not is_url(store_path):
        try:
            Path(store_path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--store: cannot create its directory: {exc.strerror or exc}", file=store_path
            ) from None
    store = open_store(store_path)
    from kubesentinel.static.folding import unfold

    posture = posture_from_findings(
        unfold(result.findings), source="scan", cluster=cluster, impacts=impacts_of(catalogue.rules)
    )
    try:
        store.save_posture(posture)
    finally:
        store.close()


def _write(chunks: Sequence[bytes | memoryview], output: str | None) -> None:
    """The report's UTF-8 chunks, with a final newline, to stdout or the --output file."""
    ending = [] if chunks and bytes(chunks[-1][-1:]) == b"\n" else [b"\n"]
    if output is None:
        stdout = sys.stdout
        raw = getattr(stdout, "buffer", None)
        if raw is None or (stdout.encoding or "").replace("-", "").lower() != "utf8":
            stdout.write(b"".join([*chunks, *ending]).decode())  # a console in another encoding
        else:
            stdout.flush()
            raw.writelines([*chunks, *ending])
            raw.flush()
        stdout.flush()
        return
    try:
        with Path(output).open("wb") as stream:
            stream.writelines([*chunks, *ending])
    except OSError as exc:
        raise UsageError(f"cannot write report: {exc.strerror or exc}", file=output) from None


def _print_diagnostics(result: ScanResult, *, quiet: bool) -> None:
    for error in result.errors:
        _print_error(error)
    if quiet:
        return
    for warning in result.warnings:
        _print_error(warning, label="warning")
    grouped: dict[str, list[Notice]] = {}
    for notice in result.notices:
        grouped.setdefault(notice.message, []).append(notice)
    for message, notices in grouped.items():
        first = notices[0]
        more = f" ({len(notices)} objects)" if len(notices) > 1 else ""
        print(f"kubesentinel: notice: {first.file}:{first.line}: {message}{more}", file=sys.stderr)


def _print_error(exc: KubeSentinelError, label: str = "error") -> None:
    """One line: what, where (file:line), the stable code, and a hint when there is one."""
    hint = f" (hint: {exc.hint})" if exc.hint else ""
    print(f"kubesentinel: {label} {exc.code}: {exc}{hint}", file=sys.stderr)


def _rules_list(args: argparse.Namespace, config: Config) -> int:
    catalogue = _catalogue(config, args.rules)
    if args.format == "json":
        payload = [rule_as_dict(rule) for rule in catalogue.rules]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_CLEAN
    width = max(len(r.id) for r in catalogue.rules)
    for rule in catalogue.rules:
        pss = ", ".join(rule.references.pss) or "-"
        print(f"{rule.id:<{width}}  {rule.severity.label:<8}  {rule.title}  [{pss}]")
    return EXIT_CLEAN


def _rules_explain(args: argparse.Namespace, config: Config) -> int:
    catalogue = _catalogue(config, args.rules)
    rule = catalogue.get(args.rule_id)
    if rule is None:
        raise UsageError(
            f"no rule {args.rule_id!r}", hint="`kubesentinel rules list` shows every rule id"
        )
    refs = rule.references
    lines = [
        f"{rule.id}: {rule.title}",
        f"severity: {rule.severity.label}    category: {rule.category}",
        f"applies to: {', '.join(rule.kinds)}",
        "",
        rule.description,
        "",
        f"Remediation: {rule.remediation}",
        "",
        f"Pod Security Standards: {', '.join(refs.pss) or '-'}",
        f"CIS: {', '.join(refs.cis) or '-'}    NSA/CISA: {', '.join(refs.nsa) or '-'}",
        f"Equivalent peer checks: {', '.join(refs.peers) or '-'}",
        f"Runtime impact: {rule.runtime_impact or '-'}",
        f"Implies (folded into its findings): {', '.join(rule.implies) or '-'}",
    ]
    lines += [f"See: {url}" for url in refs.urls]
    lines += _cel_lines(rule)
    print("\n".join(lines))
    return EXIT_CLEAN


def _cel_of(rule: Rule) -> list[str] | None:
    """A CEL rule's expressions (static/cel_rules.py); None for a predicate rule."""
    from kubesentinel.static.catalogue import CEL_PREDICATE

    if rule.predicate != CEL_PREDICATE:
        return None
    lines: list[str] = rule.params["program"].describe()
    return lines


def _cel_lines(rule: Rule) -> list[str]:
    cel = _cel_of(rule)
    if cel is None:
        return []
    return ["", f"CEL rule from {rule.source_file}:", *(f"  {line}" for line in cel)]


def rule_as_dict(rule: Rule) -> dict[str, object]:
    refs = rule.references
    cel = _cel_of(rule)
    extra = {"source_file": rule.source_file, "cel": cel} if cel is not None else {}
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity.label,
        "category": rule.category,
        "description": rule.description,
        "remediation": rule.remediation,
        "kinds": list(rule.kinds),
        "aliases": list(rule.aliases),
        "references": {
            "pss": list(refs.pss),
            "cis": list(refs.cis),
            "nsa": list(refs.nsa),
            "peers": list(refs.peers),
            "concepts": list(refs.concepts),
            "urls": list(refs.urls),
        },
        "runtime_impact": rule.runtime_impact,
        "implies": list(rule.implies),
        **extra,
    }
