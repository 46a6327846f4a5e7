"""The ``kubesentinel vault`` commands: verify the store's seals, show its figures, export
its public key. Kept apart from cli.py like cli_runtime.py; only these modules print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.cli_runtime import EXIT_CLEAN
from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.runtime.store.interface import VaultStore
    from kubesentinel.vault.verify import VerifyReport

EXIT_TAMPERED = 1  # verify found a record, segment or checkpoint that is not as sealed


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    vault = commands.add_parser("vault", help="the forensic vault: verify, stats, keys")
    sub = vault.add_subparsers(dest="vault_command", required=True, metavar="COMMAND")

    verify = sub.add_parser(
        "verify", parents=parents,
        help="check every record, segment and checkpoint of the store (exit 1: tampering)",
    )  # fmt: skip
    verify.add_argument(
        "--store",
        metavar="PATH|URL",
        help="SQLite file or postgresql:// URL (default: forensics.storage_url, else "
        "forensics.storage_path/kubesentinel.db)",
    )
    verify.add_argument(
        "--public-key",
        metavar="PATH",
        help="the pinned public key (from `vault key export`); without it the "
        "key the store names is used, which an attacker could have replaced",
    )
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.set_defaults(handler=_verify)  # fmt: skip

    stats = sub.add_parser("stats", parents=parents, help="size, records, checkpoints")
    stats.add_argument("--store", metavar="PATH|URL")
    stats.add_argument("--format", choices=("text", "json"), default="text")
    stats.set_defaults(handler=_stats)

    key = sub.add_parser("key", help="the store's signing key")
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    export = key_sub.add_parser(
        "export", parents=parents, help="print the public key checkpoints verify with (PEM)"
    )
    export.add_argument("--store", metavar="PATH|URL")
    export.set_defaults(handler=_key_export)


def _verify(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.vault.signer import NoteKey

    key = NoteKey.from_pem_file(Path(args.public_key)) if args.public_key else None
    store = _open(config, args.store)
    try:
        report = store.verify(key)
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(_report_json(report, pinned=key is not None), indent=2) + "\n")
    else:
        sys.stdout.write(_report_text(report, store.name, pinned=key is not None))
    return EXIT_CLEAN if report.ok else EXIT_TAMPERED


def _report_json(report: VerifyReport, *, pinned: bool) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "segments": report.segments,
        "records": report.records,
        "events": report.events,
        "incidents": report.incidents,
        "checkpoints": report.checkpoints,
        "last_segment": report.last_segment,
        "last_checkpoint_segment": report.last_checkpoint_segment,
        "unsigned_segments": report.unsigned_segments,
        "key_pinned": pinned,
        "problem_count": report.problem_count,
        "problems": [{"where": p.where, "what": p.what} for p in report.problems],
        "notes": report.notes,
    }


def _report_text(report: VerifyReport, path: str, *, pinned: bool) -> str:
    lines = [
        f"{path}: {report.records} records in {report.segments} segments "
        f"({report.events} events, {report.incidents} incidents), "
        f"{report.checkpoints} checkpoints",
    ]
    if report.ok:
        lines.append("OK: every record matches its segment, the chain is whole and every "
                     "checkpoint is signed")  # fmt: skip
    else:
        lines.append(f"TAMPERING: {report.problem_count} problem(s); first: {report.problems[0]}")
        lines.extend(f"  {problem}" for problem in report.problems[1:])
        if report.problem_count > len(report.problems):
            lines.append(f"  ... and {report.problem_count - len(report.problems)} more")
    if report.unsigned_segments:
        lines.append(
            f"note: the last {report.unsigned_segments} segment(s) are chained but not yet "
            "signed (the monitor signs a checkpoint every minute and when it stops)"
        )
    if not pinned:
        lines.append("note: checked with the key the store names; pass --public-key with a key "
                     "exported earlier to detect a swapped key")  # fmt: skip
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def _stats(args: argparse.Namespace, config: Config) -> int:
    store = _open(config, args.store)
    try:
        stats = store.vault_stats()
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    else:
        width = max(map(len, stats))
        for name, value in stats.items():
            sys.stdout.write(f"{name:<{width}}  {value}\n")
    return EXIT_CLEAN


def _key_export(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.vault.signer import public_pem

    store = _open(config, args.store)
    try:
        public_key = store.public_key()
    finally:
        store.close()
    if public_key is None:
        raise UsageError(
            f"{store.name} has no signed checkpoint yet, so no key",
            hint="the monitor signs its first checkpoint with its first write",
        )
    sys.stdout.write(public_pem(public_key))
    return EXIT_CLEAN


def _open(config: Config, given: str | None) -> VaultStore:
    from kubesentinel.cli_runtime import open_existing_store

    return open_existing_store(config, given)
