"""`kubesentinel fix`: a unified diff (or in-place edits) for what has a mechanical fix.

Exit codes as scan's, for the manifests as the fix leaves them (docs/fix.md): 0 nothing at or
above the threshold remains, 1 findings remain for a person, 2 an input or usage error (the
other files are still fixed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.errors import UsageError
from kubesentinel.models import Severity

if TYPE_CHECKING:
    from kubesentinel.config import Config
    from kubesentinel.static.fix.run import FileFix, FixResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def add_commands(commands: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    fix = commands.add_parser(
        "fix",
        help="fix what can be fixed mechanically (securityContext, capabilities, resources...)",
        description="Print a unified diff fixing the findings that have a mechanical fix, "
        "keeping comments, key order and layout; list what is left for a person.",
        parents=list(common),
    )
    fix.add_argument("--path", "-p", action="append", default=[], metavar="PATH",
                     help="file or directory (recursive: .yaml, .yml, .json); repeatable; "
                     "Helm charts and Kustomize directories are left as they are")  # fmt: skip
    fix.add_argument("--write", "-w", action="store_true",
                     help="edit the files in place (atomically, keeping each file's mode) "
                     "instead of printing the diff")  # fmt: skip
    fix.add_argument("--rule", action="append", default=[], metavar="RULE_ID",
                     help="fix only this rule's findings; repeatable (default: every rule "
                     "with a fix)")  # fmt: skip
    fix.add_argument("--severity-threshold", metavar="LEVEL", type=_severity,
                     help="lowest severity listed as left and failing the run: low, medium, "
                     "high, critical (default: static.severity_threshold); every fixable "
                     "finding is fixed whatever its severity")  # fmt: skip
    fix.add_argument("--rules", action="append", default=[], metavar="PATH",
                     help="extra rule file or directory, as for scan")  # fmt: skip
    fix.add_argument("--quiet", "-q", action="store_true",
                     help="do not list the findings left for a person")  # fmt: skip
    fix.set_defaults(handler=_fix)


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fix(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.cli import _catalogue, _print_error
    from kubesentinel.static.engine import ScanOptions
    from kubesentinel.static.fix.run import fix_paths
    from kubesentinel.static.fix.specs import FIXES
    from kubesentinel.static.suppress import build as build_suppressor

    if not args.path:
        raise UsageError("nothing to fix", hint="give --path PATH (repeatable)")
    if "-" in args.path:
        raise UsageError("fix edits files: it does not read stdin", hint="give --path FILE")
    unknown = [rule for rule in args.rule if rule not in FIXES]
    if unknown:
        raise UsageError(f"no fix for {', '.join(unknown)}",
                         hint=f"rules with a fix: {', '.join(sorted(FIXES))}")  # fmt: skip
    threshold = args.severity_threshold or Severity.parse(config.static.severity_threshold)
    catalogue = _catalogue(config, args.rules)
    options = ScanOptions(
        max_file_bytes=config.static.max_file_size_mb * 1024 * 1024,
        allowed_registries=config.static.allowed_registries,
        suppressor=build_suppressor(catalogue.rules, config.static.skip, None),
    )
    result = fix_paths(
        args.path, catalogue, options, config.static.fix_defaults, frozenset(args.rule)
    )
    for fix in result.changed:
        if args.write:
            _write_atomic(fix)
        else:
            sys.stdout.write(unified_diff(fix))
    sys.stdout.flush()
    for error in result.errors:
        _print_error(error)
    _report(result, threshold, written=args.write, quiet=args.quiet)
    if result.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.left_at_or_above(threshold) else EXIT_CLEAN


def unified_diff(fix: FileFix) -> str:
    import difflib

    old, new = fix.original.splitlines(keepends=True), fix.fixed.splitlines(keepends=True)
    name = fix.name.lstrip("/")
    lines = difflib.unified_diff(old, new, f"a/{name}", f"b/{name}")
    # As diff(1) and git write it, so that patch(1) applies it.
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _write_atomic(fix: FileFix) -> None:
    """A temporary file beside the real one (a symlink's target), renamed over it."""
    import tempfile

    target = Path(os.path.realpath(fix.path))
    try:
        mode = target.stat().st_mode & 0o7777
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(fix.fixed.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write the fixed file: {exc.strerror or exc}",
                         file=fix.name) from None  # fmt: skip


def _report(result: FixResult, threshold: Severity, *, written: bool, quiet: bool) -> None:
    err = sys.stderr
    for file, message in result.messages:
        print(f"kubesentinel: notice: {file}: {message}", file=err)
    left = result.left_at_or_above(threshold)
    if not quiet:
        for item in left:
            finding = item.after if written else item.before
            also = f" (also {', '.join(item.also)})" if item.also else ""
            print(f"kubesentinel: left: {finding.file}:{finding.line}: {finding.rule_id}{also} "
                  f"[{finding.severity.label}] {finding.obj.kind}/{finding.obj.name} "
                  f"{finding.field_path}: {item.reason}", file=err)  # fmt: skip
    fixed = sum(f.fixed_count for f in result.files)
    files = len(result.changed)
    verb = "fixed" if written else "the diff fixes"
    print(f"kubesentinel: {verb} {fixed} findings in {files} files; {len(left)} left for a "
          f"person at or above {threshold.label}", file=err)  # fmt: skip
