"""The ``kubesentinel vault`` commands: verify the store's seals (or a bundle's), export
evidence with its proofs, show its figures, export its public key, apply the retention
policy (prune) and place or release legal holds. Kept apart from cli.py like
cli_runtime.py; only these modules print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.cli_export import add_export_command, verify_bundle_command
from kubesentinel.cli_runtime import EXIT_CLEAN, STORE_HELP
from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.runtime.store.interface import VaultStore
    from kubesentinel.vault.verify import VerifyReport

EXIT_TAMPERED = 1  # verify found a record, segment or checkpoint that is not as sealed
EXIT_OVER_CAP = 1  # prune could not bring the vault under forensics.max_size_mb
MB = 1024 * 1024
_FORMAT_HELP = "output format (default: text)"


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    vault = commands.add_parser(
        "vault", help="the forensic vault: verify, export, stats, prune, hold, release, keys"
    )
    sub = vault.add_subparsers(dest="vault_command", required=True, metavar="COMMAND")

    verify = sub.add_parser(
        "verify", parents=parents,
        help="check every record, segment and checkpoint of the store (exit 1: tampering)",
    )  # fmt: skip
    verify.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    verify.add_argument(
        "--public-key",
        metavar="PATH",
        help="the pinned public key (from `vault key export`); without it the "
        "key the store names is used, which an attacker could have replaced",
    )
    verify.add_argument(
        "--bundle", metavar="PATH",
        help="check a `vault export` bundle instead of a store, offline (with --public-key, "
        "against the pinned key; else the bundle's own)",
    )  # fmt: skip
    verify.add_argument("--format", choices=("text", "json"), default="text", help=_FORMAT_HELP)
    verify.set_defaults(handler=_verify)  # fmt: skip
    add_export_command(sub, parents)

    stats = sub.add_parser(
        "stats", parents=parents, help="size, records per class, rollups, tombstones, holds"
    )
    stats.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    stats.add_argument("--format", choices=("text", "json"), default="text", help=_FORMAT_HELP)
    stats.set_defaults(handler=_stats)

    prune = sub.add_parser(
        "prune", parents=parents,
        help="apply the retention policy now: expire, roll up, evict to the size cap "
        "(exit 1: still over the cap)",
    )  # fmt: skip
    prune.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    prune.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    prune.add_argument(
        "--dead-letter", metavar="PATH",
        help="dead-letter file counted against the cap (default: the SQLite store's "
        "directory; for a PostgreSQL store, forensics.storage_path)",
    )  # fmt: skip
    prune.add_argument("--format", choices=("text", "json"), default="text", help=_FORMAT_HELP)
    prune.set_defaults(handler=_prune)

    hold = sub.add_parser(
        "hold", parents=parents, help="place a legal hold: the incident's evidence is kept"
    )
    hold.add_argument("--incident-id", required=True, metavar="ID",
                      help="the incident whose evidence is kept (`incidents list` shows "
                      "ids)")  # fmt: skip
    hold.add_argument("--reason", default="", metavar="TEXT", help="recorded with the hold")
    hold.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    hold.set_defaults(handler=_hold)

    release = sub.add_parser("release", parents=parents, help="release a legal hold")
    release.add_argument("--incident-id", required=True, metavar="ID",
                         help="the incident whose hold is released")  # fmt: skip
    release.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    release.set_defaults(handler=_release)

    key = sub.add_parser("key", help="the store's signing key")
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    export = key_sub.add_parser(
        "export", parents=parents, help="print the public key checkpoints verify with (PEM)"
    )
    export.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    export.set_defaults(handler=_key_export)


def _verify(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.vault.signer import NoteKey

    if args.bundle:
        if args.store:
            raise UsageError("--bundle checks a bundle without the store: leave out --store")
        return verify_bundle_command(args)
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
        "tombstones": report.tombstones,
        "removed_records": report.removed_records,
        "removed_incidents": report.removed_incidents,
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
    if report.tombstones:
        lines.append(
            f"retention: {report.removed_records} event records and "
            f"{report.removed_incidents} incidents removed lawfully, each accounted for by one "
            f"of {report.tombstones} signed tombstones"
        )
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
    from kubesentinel.vault.retention import policy_from_config
    from kubesentinel.vault.retention_stats import retention_stats

    policy = policy_from_config(config.forensics)
    store = _open(config, args.store)
    try:
        stats = store.vault_stats()
        stats.update(retention_stats(store, policy))
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    else:
        width = max(map(len, stats))
        for name, value in stats.items():
            sys.stdout.write(f"{name:<{width}}  {_plain(value)}\n")
    return EXIT_CLEAN


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(_plain(item) for item in value) or "none"
    return str(value)


def _prune(args: argparse.Namespace, config: Config) -> int:
    import time

    from kubesentinel.cli_runtime import DEAD_LETTER_NAME
    from kubesentinel.vault.prune import PruneOptions, dead_letter_files, prune
    from kubesentinel.vault.retention import policy_from_config

    policy = policy_from_config(config.forensics)  # a bad policy file stops here, exit 2
    from kubesentinel.runtime.store.urls import is_url

    store = _open(config, args.store) if args.dry_run else _open_writable(config, args.store)
    if args.dead_letter:
        dead_letter = Path(args.dead_letter)
    elif is_url(store.location):  # the monitor's own directory: the database is shared
        dead_letter = Path(config.forensics.storage_path) / DEAD_LETTER_NAME
    else:
        dead_letter = Path(store.location).parent / DEAD_LETTER_NAME
    options = PruneOptions(
        policy,
        time.time_ns(),
        max_bytes=config.forensics.max_size_mb * MB,
        dead_letter=dead_letter_files(dead_letter),
        dry_run=args.dry_run,
    )
    try:
        report = prune(store, options)
    finally:
        store.close()
    figures = report.as_dict()
    if args.format == "json":
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    else:
        sys.stdout.write(_prune_text(figures, store.name))
    if report.over_cap:
        print(
            f"kubesentinel: warning: {store.name} is over forensics.max_size_mb "
            f"({config.forensics.max_size_mb} MB) and nothing evictable is left (held and "
            "incident evidence, facets and tombstones stay)",
            file=sys.stderr,
        )
        return EXIT_OVER_CAP
    return EXIT_CLEAN


def _prune_text(figures: dict[str, Any], path: str) -> str:
    verb = "would remove" if figures["dry_run"] else "removed"
    lines = [f"{path}: {figures['events_classified']} events classified; {verb} "
             f"{figures['events_removed']} events, {figures['rollup_rows_removed']} rollup "
             f"rows and {figures['incidents_removed']} incidents"]  # fmt: skip
    if figures["removed"]:
        rows = [("class", "action", "why", "count")] + [
            (r["class"], r["action"], r["why"], str(r["count"])) for r in figures["removed"]
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines.extend(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )
    lines.append(
        f"segments touched {figures['segments_touched']}, evidence removed from "
        f"{figures['segments_evidence_removed']}; rollup rows written "
        f"{figures['rollup_rows_written']} ({figures['rolled_up_events']} events); tombstones "
        f"{figures['tombstones']}"
    )
    after = "about " if figures["dry_run"] else ""
    cap = figures["cap_bytes"]
    lines.append(
        f"size {_mb(figures['size_before_bytes'])} -> {after}{_mb(figures['size_after_bytes'])}"
        + (f" (cap {_mb(cap)})" if cap is not None else "")
    )
    return "\n".join(lines) + "\n"


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _hold(args: argparse.Namespace, config: Config) -> int:
    import time

    from kubesentinel.vault.hold import place_hold

    store = _open_writable(config, args.store)
    try:
        result = place_hold(store, args.incident_id, args.reason, time.time_ns())
    finally:
        store.close()
    state = "held" if result.changed else "already held; nothing changed"
    sys.stdout.write(f"incident {result.incident_id}: {state}\n")
    return EXIT_CLEAN


def _release(args: argparse.Namespace, config: Config) -> int:
    import time

    from kubesentinel.vault.hold import release_hold

    store = _open_writable(config, args.store)
    try:
        result = release_hold(store, args.incident_id, time.time_ns())
    finally:
        store.close()
    if not result.changed:
        raise UsageError(
            f"incident {result.incident_id} is not held",
            hint="`kubesentinel vault stats` lists holds",
        )
    sys.stdout.write(f"incident {result.incident_id}: released\n")
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


def _open_writable(config: Config, given: str | None) -> VaultStore:
    """An existing store of either backend, for writing (prune, hold, release): never creates
    one (opened read-only first, which refuses a missing file or an empty schema)."""
    from kubesentinel.runtime.store.open import open_store, signing_key_for, store_location

    location = store_location(config, given)
    _open(config, given).close()
    return open_store(location, signing_key=signing_key_for(config, location))
