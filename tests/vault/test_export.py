"""`vault export` and `vault verify --bundle` on real stores: a bundle of an incident or a time
range verifies offline; every edit of its evidence, records, proofs, chain, checkpoints or key
is found and named (exit 1); what is not a bundle is exit 2; tampered stores are not exported."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubesentinel.cli import main
from kubesentinel.errors import BundleError
from kubesentinel.models import Priority
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store import codec
from kubesentinel.runtime.store.sqlite import SQLiteStore
from kubesentinel.vault.bundle_verify import BundleReport, verify_bundle
from kubesentinel.vault.keys import SigningKey
from kubesentinel.vault.signer import Signer, public_pem
from tests.runtime.test_sqlite_store import event
from tests.vault.test_store_seals import build

Lines = list[dict[str, Any]]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the real monitor wrote from a simulated hour of Falco alerts."""
    out = tmp_path_factory.mktemp("replay")
    assert main(["simulate", "--out", str(out), "--seed", "3", "--hours", "1"]) == 0
    store = out / "ks.db"
    assert main(["monitor", "--source", str(out / "falco.jsonl"), "--until-eof", "--store",
                 str(store), "--no-k8s-lookup", "--cluster", "sim",
                 "--dead-letter", str(out / "dead.jsonl")]) == 0  # fmt: skip
    return store


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    """Four writes, each signed by a checkpoint of its own; two incidents across all four."""
    path = tmp_path / "vault" / "kubesentinel.db"
    build(path)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def incident_ids(store: Path) -> list[str]:
    with SQLiteStore(store, read_only=True) as reader:
        return [incident.id for incident in reader.list_incidents()]


def public_key(store: Path, tmp_path: Path) -> Path:
    with SQLiteStore(store, read_only=True) as reader:
        raw = reader.public_key()
    assert raw is not None
    path = tmp_path / "pinned.pem"
    path.write_text(public_pem(raw))
    return path


def export(store: Path, out: Path, *selection: str) -> None:
    assert main(["vault", "export", "--store", str(store), "--output", str(out),
                 *selection]) == 0  # fmt: skip


def read_lines(path: Path) -> Lines:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, lines: Lines) -> None:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def first_problem(report: BundleReport) -> str:
    assert not report.ok
    return str(report.problems[0])


# -- round trips ----------------------------------------------------------------------------


def test_an_incident_of_the_monitor_round_trips(
    replayed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SQLiteStore(replayed, read_only=True) as reader:
        incident = max(reader.list_incidents(limit=None), key=lambda i: i.event_count)
        stored = reader.stored_events_of(incident.id)
    bundle = tmp_path / "incident.bundle"
    code, out, _ = run(capsys, "vault", "export", "--store", str(replayed), "--incident-id",
                       incident.id, "--output", str(bundle))  # fmt: skip
    assert code == 0
    assert f"{len(stored)} events, 1 incidents" in out
    assert os.stat(bundle).st_mode & 0o777 == 0o600
    pinned = public_key(replayed, tmp_path)
    code, out, _ = run(capsys, "vault", "verify", "--bundle", str(bundle), "--public-key",
                       str(pinned), "--format", "json")  # fmt: skip
    report = json.loads(out)
    assert (code, report["ok"], report["key_pinned"]) == (0, True, True)
    assert (report["events"], report["incidents"]) == (len(stored), 1)
    assert report["notes"] == []  # every signal of the incident is there
    # The bytes in the bundle are the alerts exactly as the monitor received them.
    lines = read_lines(bundle)
    raw = {line["record"][1]: line["raw"].encode() for line in lines if line.get("type") == "event"}
    assert raw == {e.event.id: e.event.raw for e in stored}


def test_a_time_range_in_one_namespace_round_trips(
    replayed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "range.bundle"
    export(replayed, bundle, "--from", "2026-01-01T00:10:00Z", "--to", "2026-01-01T00:30:00Z",
           "--namespace", "shop")  # fmt: skip
    lines = read_lines(bundle)
    facets = {line["record"][0]: line["record"] for line in lines if line.get("type") == "facet"}
    events = [line["record"] for line in lines if line.get("type") == "event"]
    assert events
    assert {facets[event[4]][6] for event in events} == {"shop"}
    code, out, _ = run(capsys, "vault", "verify", "--bundle", str(bundle))
    assert code == 0, out
    assert "checked with the public key the bundle carries" in out


def test_an_incident_across_four_signed_segments(sealed: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    held = []
    for incident_id in incident_ids(sealed):
        export(sealed, bundle, "--incident-id", incident_id, "--force")
        report = verify_bundle(bundle)
        assert report.ok, report.problems
        assert (report.incidents, report.checkpoints, report.segments) == (1, 4, 4)
        held.append(report.events)
    assert sorted(held) == [8, 12]  # each write: three events of one workload, two of the other


# -- a bundle edited after export: exit 1, the first bad item named ----------------------------


def _first_of(lines: Lines, kind: str) -> dict[str, Any]:
    return next(line for line in lines if line.get("type") == kind)


def _edit_raw(lines: Lines) -> None:
    event = _first_of(lines, "event")
    event["raw"] = event["raw"].replace("bash", "bosh", 1)


def _edit_record(lines: Lines) -> None:
    _first_of(lines, "event")["record"][3] = 3  # a signal made context


def _edit_proof(lines: Lines) -> None:
    proof = _first_of(lines, "event")["proof"]
    proof[0] = base64.b64encode(bytes(32)).decode()


def _edit_checkpoint(lines: Lines) -> None:
    line = _first_of(lines, "checkpoint")
    line["note"] = line["note"].replace("\ntime ", "\ntime 1", 1)


def _edit_evidence(lines: Lines) -> None:
    segment = _first_of(lines, "segment")
    record = segment["record"]
    blob = codec.decompress(base64.b64decode(segment["data"]), "zstd", record[3] + record[4])
    segment["data"] = base64.b64encode(codec.compress(blob.replace(b"bash", b"bosh"))).decode()


def _edit_chain(lines: Lines) -> None:
    _first_of(lines, "chain")["links"][0][2] += 1  # a record count


def _edit_incident(lines: Lines) -> None:
    _first_of(lines, "incident")["record"][9] = 1.0  # the risk score


def _drop_event(lines: Lines) -> None:
    lines.remove(_first_of(lines, "event"))


def _drop_facet_and_recount(lines: Lines) -> None:
    lines.remove(_first_of(lines, "facet"))
    lines[-1]["counts"]["facet"] -= 1


def _drop_checkpoint(lines: Lines) -> None:
    lines.remove(_first_of(lines, "checkpoint"))
    lines[-1]["counts"]["checkpoint"] -= 1


def _move_event(lines: Lines) -> None:
    """An event of segment 1 filed, with its proof, under segment 2."""
    event = _first_of(lines, "event")
    lines.remove(event)
    lines.insert(len(lines) - 1, event)


BUNDLE_EDITS: dict[str, tuple[Callable[[Lines], None], str]] = {
    "event bytes": (_edit_raw, "its bytes are not the evidence sealed with it"),
    "event record": (_edit_record, "does not match segment 1's Merkle root"),
    "proof": (_edit_proof, "does not match segment 1's Merkle root"),
    "checkpoint": (_edit_checkpoint, "checkpoint on line 2: not valid"),
    "segment evidence": (_edit_evidence, "segment 1: its evidence does not match the sha256"),
    "chain": (_edit_chain, "chain to segment 1: does not lead to the head its checkpoint signs"),
    "incident record": (_edit_incident, "does not match segment 4's Merkle root"),
    "event line removed": (_drop_event, "its end line counts 12 event line(s), it holds 11"),
    "facet removed, count fixed": (_drop_facet_and_recount, "is not proven in the bundle"),
    "checkpoint removed, count fixed": (
        _drop_checkpoint, "chain to segment 1: ends at no valid checkpoint"
    ),
    "event moved": (_move_event, "names segment 1, but is filed under segment 4"),
}  # fmt: skip


@pytest.fixture
def bundle(sealed: Path, tmp_path: Path) -> Path:
    path = tmp_path / "incident.bundle"
    export(sealed, path, "--incident-id", incident_ids(sealed)[0])
    assert verify_bundle(path).ok
    return path


@pytest.mark.parametrize("case", list(BUNDLE_EDITS))
def test_an_edited_bundle_is_named(bundle: Path, case: str) -> None:
    edit, expected = BUNDLE_EDITS[case]
    lines = read_lines(bundle)
    edit(lines)
    write_lines(bundle, lines)
    report = verify_bundle(bundle)
    assert expected in first_problem(report), report.problems


def test_a_swapped_key_passes_alone_and_fails_against_the_pinned_key(
    bundle: Path, sealed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever holds the bundle re-signs its checkpoints with a key of their own."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kubesentinel.vault.checkpoint import sign_note

    forger = SigningKey(Ed25519PrivateKey.generate())
    lines = read_lines(bundle)
    lines[0]["public_key"] = forger.public_key_pem().decode()
    for line in lines:
        if line.get("type") == "checkpoint":
            body = line["note"].split("\n\n")[0] + "\n"
            line["note"] = sign_note(forger, lines[0]["origin"], body)
    write_lines(bundle, lines)
    assert verify_bundle(bundle).ok  # the bundle's own key agrees with itself...
    pinned = public_key(sealed, tmp_path)
    code, out, _ = run(capsys, "vault", "verify", "--bundle", str(bundle), "--public-key",
                       str(pinned))  # fmt: skip
    assert code == 1
    assert "first: bundle: names another public key than the pinned one" in out
    assert "checkpoint on line 2: not valid: not signed by a trusted key" in out


def test_events_outside_the_selection_are_named(sealed: Path, tmp_path: Path) -> None:
    path = tmp_path / "range.bundle"
    export(sealed, path, "--from", "2025-02-10T09:15:40Z", "--to", "2025-02-10T09:16:40Z")
    lines = read_lines(path)
    assert verify_bundle(path).ok
    lines[0]["selection"]["to_ns"] = lines[0]["selection"]["from_ns"] + 1
    write_lines(path, lines)
    assert "is outside the time range or namespace" in first_problem(verify_bundle(path))


def test_a_bundle_without_an_incidents_signals_says_so(bundle: Path) -> None:
    lines = read_lines(bundle)
    events = [line for line in lines if line.get("type") == "event"]
    signal = next(line for line in events if line["record"][3] is None)
    lines.remove(signal)
    lines[-1]["counts"]["event"] -= 1
    write_lines(bundle, lines)
    report = verify_bundle(bundle)
    assert report.ok  # what it holds is authentic...
    assert "was sealed with 12 signals; the bundle holds 11" in report.notes[0]  # ...not all


# -- not a bundle: exit 2 ---------------------------------------------------------------------


def _replace_header(bundle: Path, **changes: Any) -> None:
    lines = read_lines(bundle)
    lines[0].update(changes)
    write_lines(bundle, lines)


UNREADABLE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "garbage": (lambda p: p.write_bytes(b"\x00\xff garbage\n"), "line 1: not JSON"),
    "not an object": (lambda p: p.write_bytes(b"[1, 2]\n"), "not a JSON object"),
    "another format": (lambda p: p.write_text('{"format": "x"}\n'), "not a kubesentinel-vault"),
    "another version": (lambda p: _replace_header(p, version=2), "bundle version 2"),
    "cut mid-line": (
        lambda p: p.write_bytes(p.read_bytes()[:-10]), "cut short (no newline at its end)"
    ),
    "cut at a line": (
        lambda p: p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:-1])),
        "no end line: the bundle is truncated",
    ),
    "data after the end": (lambda p: p.write_bytes(p.read_bytes() + b"{}\n"), "after the end"),
    "a sqlite store": (
        lambda p: p.write_bytes(b"SQLite format 3\x00" + bytes(100)), "no newline at its end"
    ),
    "bad public key": (lambda p: _replace_header(p, public_key="x"), "not a PEM public key"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_what_is_not_a_bundle_cannot_be_checked(
    bundle: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, expected = UNREADABLE[case]
    damage(bundle)
    code, out, err = run(capsys, "vault", "verify", "--bundle", str(bundle))
    assert (code, out) == (2, "")
    assert "KS-E053" in err
    assert expected in err


def test_a_missing_bundle_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "vault", "verify", "--bundle", str(tmp_path / "none"))
    assert code == 2
    assert "cannot read the bundle" in err
    with pytest.raises(BundleError):
        verify_bundle(tmp_path)  # a directory


def test_untrusted_strings_are_escaped(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(bundle)
    _first_of(lines, "event")["record"][1] = "\x1b[31mred\x1b[0m\u202e"
    write_lines(bundle, lines)
    code, out, _ = run(capsys, "vault", "verify", "--bundle", str(bundle))
    assert code == 1
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "event \\x1b[31mred" in out


# -- export: a tampered store is not exported; usage errors ------------------------------------


def _tamper(path: Path, sql: str, *params: Any) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, params)
    db.close()


def _rewrite_evidence(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        data, size, sidecar = db.execute(
            "SELECT data, raw_bytes, sidecar_bytes FROM segments WHERE id = 2"
        ).fetchone()
        blob = codec.decompress(data, "zstd", size + sidecar).replace(b"bash", b"bosh")
        db.execute("UPDATE segments SET data = ?, sha256 = ? WHERE id = 2",
                   (codec.compress(blob), hashlib.sha256(blob).hexdigest()))  # fmt: skip
    db.close()


STORE_TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "event row": (
        lambda p: _tamper(p, "UPDATE events SET role = 3 WHERE id = 'e1-2'"),
        "segment 2: its records do not match its Merkle root",
    ),
    "evidence re-hashed": (_rewrite_evidence, "segment 2: its records do not match"),
    "evidence": (
        lambda p: _tamper(p, "UPDATE segments SET data = ? WHERE id = 3", codec.compress(b"x")),
        "segment 3: its evidence cannot be read",
    ),
    "checkpoint": (
        lambda p: _tamper(p, "UPDATE checkpoints SET note = replace(note, 'time', 'tame')"),
        "checkpoint 1: not valid",
    ),
    "incident": (
        lambda p: _tamper(p, "UPDATE incidents SET risk_score = 1.0"),
        "was changed after segment 4 wrote it",
    ),
    "seal": (
        lambda p: _tamper(p, "UPDATE segments SET root = zeroblob(32) WHERE id = 1"),
        "segment 1",
    ),
}


@pytest.mark.parametrize("case", list(STORE_TAMPERING))
def test_a_tampered_store_is_not_exported(
    sealed: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper, expected = STORE_TAMPERING[case]
    incident = incident_ids(sealed)[0]
    tamper(sealed)
    out_path = tmp_path / "out.bundle"
    code, out, _ = run(capsys, "vault", "export", "--store", str(sealed), "--incident-id",
                       incident, "--output", str(out_path))  # fmt: skip
    assert code == 1
    assert "TAMPERING" in out
    assert "nothing was written" in out
    assert expected in out
    assert not out_path.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_an_existing_output_is_kept_unless_forced(
    sealed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "out.bundle"
    out_path.write_text("keep me")
    incident = incident_ids(sealed)[0]
    args = ["vault", "export", "--store", str(sealed), "--incident-id", incident,
            "--output", str(out_path)]  # fmt: skip
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "exists" in err
    assert "--force" in err
    assert out_path.read_text() == "keep me"
    assert run(capsys, *args, "--force")[0] == 0
    assert verify_bundle(out_path).ok
    assert os.stat(out_path).st_mode & 0o777 == 0o600


EXPORT_ERRORS: dict[str, tuple[list[str], str]] = {
    "unknown incident": (["--incident-id", "nope"], "no incident 'nope'"),
    "empty range": (["--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z"],
                    "no events to export"),
    "empty namespace": (["--from", "2025-01-01T00:00:00Z", "--namespace", "none"],
                        "in namespace 'none'"),
    "reversed range": (["--from", "1h", "--to", "2h"], "--from is later than --to"),
    "--to with an incident": (["--incident-id", "x", "--to", "1h"], "go with --from"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(EXPORT_ERRORS))
def test_export_usage_errors_are_exit_2(
    sealed: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = EXPORT_ERRORS[case]
    out_path = tmp_path / "out.bundle"
    code, _, err = run(capsys, "vault", "export", "--store", str(sealed), "--output",
                       str(out_path), *args)  # fmt: skip
    assert code == 2
    assert expected in err
    assert not out_path.exists()


def test_export_from_no_store_or_a_bad_store_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "out.bundle"
    common = ["--incident-id", "x", "--output", str(out_path)]
    code, _, err = run(capsys, "vault", "export", "--store", str(tmp_path / "none.db"), *common)
    assert (code, "no incident store" in err) == (2, True)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite" * 100)
    code, _, err = run(capsys, "vault", "export", "--store", str(bad), *common)
    assert (code, "KS-E033" in err) == (2, True)
    assert not out_path.exists()


def test_a_segment_not_yet_signed_is_not_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A monitor killed before its next checkpoint: the tail is chained but not signed."""
    path = tmp_path / "ks.db"
    with SQLiteStore(path) as store:
        store.write([event("a", 0)], [])
        store.seal_tail()
        store.write([event("b", 1)], [])
    _tamper(path, "DELETE FROM checkpoints WHERE segment_id = 2")  # the one close signed
    code, _, err = run(capsys, "vault", "export", "--store", str(path), "--from",
                       "2025-01-01T00:00:00Z", "--output", str(tmp_path / "o"))  # fmt: skip
    assert code == 2
    assert "segment 2 is not signed by a checkpoint yet" in err


def test_verify_bundle_and_store_together_is_a_usage_error(
    bundle: Path, sealed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "vault", "verify", "--bundle", str(bundle), "--store", str(sealed))
    assert code == 2
    assert "leave out --store" in err


def test_the_bundle_carries_the_stores_public_key(bundle: Path, sealed: Path) -> None:
    signer = Signer(sealed.parent / "vault-signing-key.pem")
    assert read_lines(bundle)[0]["public_key"] == public_pem(signer.public_key)


def test_an_incident_in_a_segment_retention_thinned_exports_and_verifies(tmp_path: Path) -> None:
    """A lawful prune removed most of the segment's events: their tombstoned leaves keep their
    places in its tree, so the proofs of what remains still reach its sealed root."""
    from kubesentinel.vault.tombstone import Run, unpack_entries
    from tests.vault.test_prune import noise, run

    path = tmp_path / "vault" / "kubesentinel.db"
    noise_events = [noise(f"w{t}", t) for t in range(0, 3000, 100)]
    signals = [event("sig1", 2000.5, priority=Priority.CRITICAL)]
    (incident,) = Correlator().add(signals, signals[-1].time_ns)
    with SQLiteStore(path) as store:
        store.write(noise_events + signals, [incident])  # one segment for all
    assert run(path, days=100).events_removed > 0
    entries = [e for (blob,) in rows_of(path, "SELECT entries FROM tombstones")
               for e in unpack_entries(blob)]  # fmt: skip
    assert any(isinstance(e, Run) for e in entries)  # a compacted run: proofs pass a Gap
    bundle = tmp_path / "incident.bundle"
    export(path, bundle, "--incident-id", incident.id)
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.incidents == 1
    export(path, bundle, "--from", "2025-01-01T00:00:00Z", "--force")
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    with SQLiteStore(path, read_only=True) as reader:
        assert reader.verify().ok
    assert report.events == len(rows_of(path, "SELECT id FROM events"))


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()
