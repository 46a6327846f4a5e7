"""``kubesentinel vault export`` and ``vault verify --bundle``: evidence with the proofs to
check it elsewhere, and that check. Kept apart from cli_vault.py; like it, only prints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.cli_runtime import EXIT_CLEAN, STORE_HELP, _since_arg
from kubesentinel.config import Config
from kubesentinel.errors import UsageError, VaultError

if TYPE_CHECKING:
    from kubesentinel.vault.bundle import Selection
    from kubesentinel.vault.bundle_verify import BundleReport
    from kubesentinel.vault.verify import Problem

EXIT_TAMPERED = 1


def add_export_command(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export", parents=parents,
        help="write an incident's or a time range's evidence with the proofs to check it "
        "elsewhere (`vault verify --bundle`)",
    )  # fmt: skip
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--incident-id", metavar="ID", help="one incident and all its events")
    which.add_argument(
        "--from", dest="from_ns", type=_since_arg, metavar="WHEN",
        help="events from WHEN: an RFC 3339 time (2026-01-01T09:00:00Z) or a duration before "
        "now (90s, 30m, 2h, 7d)",
    )  # fmt: skip
    export.add_argument("--to", dest="to_ns", type=_since_arg, metavar="WHEN",
                        help="events up to WHEN (default: now)")  # fmt: skip
    export.add_argument("--namespace", metavar="NS", help="with --from: only this namespace")
    export.add_argument("--output", "-o", required=True, metavar="PATH",
                        help="the bundle to write (created 0600)")  # fmt: skip
    export.add_argument("--force", action="store_true", help="replace PATH if it exists")
    export.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    export.add_argument("--public-key", metavar="PATH",
                        help="check the store's checkpoints with this pinned key")  # fmt: skip
    export.set_defaults(handler=_export)


def _selection(args: argparse.Namespace) -> Selection:
    from kubesentinel.vault.bundle import Selection

    if args.incident_id is not None:
        if args.to_ns is not None or args.namespace is not None:
            raise UsageError("--to and --namespace go with --from, not --incident-id")
        return Selection(incident_id=args.incident_id)
    to_ns = time.time_ns() if args.to_ns is None else args.to_ns
    if args.from_ns > to_ns:
        raise UsageError("--from is later than --to")
    return Selection(from_ns=args.from_ns, to_ns=to_ns, namespace=args.namespace)


def _export(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.cli_runtime import open_existing_store
    from kubesentinel.runtime.incident_view import iso_time
    from kubesentinel.vault.bundle import BundleWriter, PrivateOutput
    from kubesentinel.vault.export import export, export_source
    from kubesentinel.vault.signer import NoteKey, public_pem

    selection = _selection(args)
    pinned = NoteKey.from_pem_file(Path(args.public_key)) if args.public_key else None
    output = Path(args.output)
    store = open_existing_store(config, args.store)
    try:
        out = PrivateOutput(output, force=args.force)
        try:
            with store.read_snapshot("export from the store") as db:
                source = export_source(store, db)
                raw_key = source.meta().public_key
                if not raw_key:
                    raise VaultError(
                        f"{store.name} has no signed checkpoint yet: nothing can be proven",
                        hint="the monitor signs its first checkpoint with its first write",
                    )
                key = pinned or NoteKey(raw_key)
                result = export(source, selection, key, public_pem(raw_key),
                                BundleWriter(out.file), iso_time(time.time_ns()))  # fmt: skip
            if not result.ok:
                out.discard()
                sys.stdout.write(_refused(store.name, result.problems))
                return EXIT_TAMPERED
            size = out.commit()
        except BaseException:
            out.discard()
            raise
    finally:
        store.close()
    counts = result.counts
    sys.stdout.write(
        f"{output}: {counts['event']} events, {counts['incident']} incidents, "
        f"{counts['facet']} facets from {counts['segment']} segments, "
        f"{counts['checkpoint']} checkpoints, {size} bytes\n"
        f"check it with: kubesentinel vault verify --bundle {output} --public-key KEY.pem\n"
    )
    return EXIT_CLEAN


def _refused(path: str, problems: list[Problem]) -> str:
    lines = [f"TAMPERING: {path}: what would be exported does not match its seals; nothing "
             f"was written. First: {problems[0]}"]  # fmt: skip
    lines.extend(f"  {problem}" for problem in problems[1:20])
    lines.append("run `kubesentinel vault verify` for the whole store; keep a copy of it")
    return "\n".join(lines) + "\n"


def verify_bundle_command(args: argparse.Namespace) -> int:
    from kubesentinel.vault.bundle_verify import verify_bundle
    from kubesentinel.vault.keys import load_pinned

    pinned = load_pinned(Path(args.public_key)) if args.public_key else None
    path = Path(args.bundle)
    report = verify_bundle(path, pinned)
    if args.format == "json":
        sys.stdout.write(json.dumps(_bundle_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(_bundle_text(report, path))
    return EXIT_CLEAN if report.ok else EXIT_TAMPERED


def _bundle_json(report: BundleReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "origin": report.origin,
        "selection": report.selection,
        "key_pinned": report.key_pinned,
        "checkpoints": report.checkpoints,
        "segments": report.segments,
        "facets": report.facets,
        "events": report.events,
        "incidents": report.incidents,
        "proven_sha256": report.proven_sha256,
        "problem_count": report.problem_count,
        "problems": [{"where": p.where, "what": p.what} for p in report.problems],
        "notes": report.notes,
    }


def _bundle_text(report: BundleReport, path: Path) -> str:
    lines = [
        f"{path}: {report.events} events, {report.incidents} incidents, {report.facets} "
        f"facets in {report.segments} segments, {report.checkpoints} checkpoints "
        f"(vault {_printable(report.origin)})",
    ]
    if report.ok:
        lines.append("OK: every event's bytes match its record, every record is in its "
                     "segment's Merkle root, the segments chain to signed checkpoints")  # fmt: skip
    else:
        lines.append(f"TAMPERING: {report.problem_count} problem(s); first: {report.problems[0]}")
        lines.extend(f"  {problem}" for problem in report.problems[1:])
        if report.problem_count > len(report.problems):
            lines.append(f"  ... and {report.problem_count - len(report.problems)} more")
    if not report.key_pinned:
        lines.append("note: checked with the public key the bundle carries, which whoever made "
                     "it chose; pass --public-key with the key the vault exported")  # fmt: skip
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")[:120]
