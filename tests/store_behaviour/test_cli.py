"""The commands on either backend: `monitor --store` (its writer process commits), then
`incidents list|show`, `vault verify|stats|key export` on the same store, and
`forensics.storage_url` routing them all when no --store is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubesentinel.cli import main
from tests.store_behaviour.backends import Backend, postgres_execute


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--seed", "5", "--hours", "0.25"]) == 0
    return out / "falco.jsonl"


def _config(tmp_path: Path, backend: Backend, *, url: bool) -> Path:
    """A config naming the backend's key, or for ``url`` the store and no key (the default)."""
    config = tmp_path / "config.yaml"
    lines = ["forensics:", f"  storage_path: {tmp_path / 'forensics'}"]
    if url:
        lines.append(f"  storage_url: {backend.location}")
    else:
        lines.append(f"  signing_key: {backend.key}")
    config.write_text("\n".join(lines) + "\n")
    return config


def test_monitor_then_every_reading_command(
    backend: Backend, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path, backend, url=False))
    store = ["--store", backend.location]
    code, out, err = run(capsys, "--config", config, "monitor", "--source", str(stream),
                         "--until-eof", "--format", "json", "--workers", "2", *store)  # fmt: skip
    assert code == 0, err
    stored = json.loads(out)["events_stored"]
    assert stored > 100

    code, out, err = run(capsys, "--config", config, "incidents", "list", "-f", "json",
                         "--limit", "0", *store)  # fmt: skip
    assert code == 0, err
    incidents = json.loads(out)
    assert incidents
    code, out, err = run(capsys, "--config", config, "incidents", "show", incidents[0]["id"],
                         "-f", "json", *store)  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["incident"]["id"] == incidents[0]["id"]
    assert document["events"]
    assert document["events"][0]["evidence"]["ref"].startswith("segment ")

    code, out, err = run(capsys, "--config", config, "vault", "verify", "--format", "json", *store)
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["ok"]
    assert report["events"] == stored
    assert report["unsigned_segments"] == 0
    code, out, _ = run(capsys, "--config", config, "vault", "stats", "--format", "json", *store)
    assert code == 0
    assert json.loads(out)["events"] == stored
    code, pem, _ = run(capsys, "--config", config, "vault", "key", "export", *store)
    assert code == 0
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    public = tmp_path / "public.pem"
    public.write_text(pem)

    backend.execute("UPDATE incidents SET risk_score = risk_score + 1")
    code, out, _ = run(capsys, "--config", config, "vault", "verify", "--public-key", str(public),
                       *store)  # fmt: skip
    assert code == 1
    assert "was changed after segment" in out


def test_storage_url_routes_every_command(
    postgres_url: str, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend("postgres", postgres_url, tmp_path / "keys" / "key.pem")
    config = str(_config(tmp_path, backend, url=True))
    code, out, err = run(capsys, "--config", config, "monitor", "--source", str(stream),
                         "--until-eof", "--format", "json", "--workers", "1")  # fmt: skip
    assert code == 0, err
    assert not (tmp_path / "forensics" / "kubesentinel.db").exists()
    # The key's default for a URL: the monitor's own directory, private.
    key = tmp_path / "forensics" / "vault-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    code, out, err = run(capsys, "--config", config, "vault", "verify")
    assert code == 0, err
    assert out.startswith(backend.location + ": ")
    code, out, _ = run(capsys, "--config", config, "incidents", "list", "-f", "json")
    assert code == 0
    assert json.loads(out)


def test_a_failing_url_is_one_line_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://monitor:hunter2@127.0.0.1:1/vault"
    for command in (["incidents", "list"], ["vault", "verify"], ["vault", "stats"]):
        code, out, err = run(capsys, *command, "--store", url)
        assert code == 2
        assert "hunter2" not in out + err
        assert "postgresql://monitor:***@127.0.0.1:1/vault" in err
        assert "KS-E033" in err


def test_a_bad_storage_url_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("forensics:\n  storage_url: mysql://u:pw@h/db\n")
    code, _, err = run(capsys, "--config", str(config), "vault", "stats")
    assert code == 2
    assert "forensics.storage_url" in err
    assert "not a PostgreSQL URL" in err
    assert ":pw@" not in err


def test_incidents_show_checks_what_it_reads(
    backend: Backend, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clean incident shows with exit 0; one whose event was edited behind KubeSentinel's
    back is shown with the problem and exit 1, on either backend."""
    config = str(_config(tmp_path, backend, url=False))
    store = ["--store", backend.location]
    code, _, err = run(capsys, "--config", config, "monitor", "--source", str(stream),
                       "--until-eof", "--workers", "1", *store)  # fmt: skip
    assert code == 0, err
    ((incident_id, seq),) = backend.execute(
        "SELECT id, seq FROM incidents ORDER BY event_count DESC, id LIMIT 1"
    )
    code, out, err = run(capsys, "--config", config, "incidents", "show", incident_id,
                         "-f", "json", *store)  # fmt: skip
    assert code == 0, err
    backend.execute("UPDATE events SET role = 3 WHERE incident = ? AND role IS NULL", (seq,))
    code, out, _ = run(capsys, "--config", config, "incidents", "show", incident_id, *store)
    assert code == 1
    assert "its records do not match its Merkle root" in out
    # `incidents list` reads incident rows only: the edited events pass it, an edited
    # incident does not.
    assert run(capsys, "--config", config, "incidents", "list", *store)[0] == 0
    backend.execute("UPDATE incidents SET risk_score = 99.5 WHERE id = ?", (incident_id,))
    code, _, err = run(capsys, "--config", config, "incidents", "list", *store)
    assert code == 1
    assert f"incident {incident_id}: was changed after segment" in err


def test_retention_commands_on_either_backend(
    backend: Backend, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vault hold`, `stats`, `prune [--dry-run]`, `release`, then `verify`, on the store the
    monitor wrote (a PostgreSQL store named by forensics.storage_url, no --store)."""
    url = backend.kind == "postgres"
    config = str(_config(tmp_path, backend, url=url))
    store = [] if url else ["--store", backend.location]
    code, _, err = run(capsys, "--config", config, "monitor", "--source", str(stream),
                       "--until-eof", "--workers", "1", *store)  # fmt: skip
    assert code == 0, err
    ((incident_id,),) = backend.execute("SELECT id FROM incidents ORDER BY id LIMIT 1")
    code, out, err = run(capsys, "--config", config, "vault", "hold", "--incident-id",
                         incident_id, "--reason", "ticket 9", *store)  # fmt: skip
    assert (code, out) == (0, f"incident {incident_id}: held\n"), err
    code, out, err = run(capsys, "--config", config, "vault", "stats", "--format", "json", *store)
    assert code == 0, err
    stats = json.loads(out)
    assert stats["holds"] == [{"incident_id": incident_id, "reason": "ticket 9"}]
    assert sum(stats["records_per_class"].values()) == stats["events"]
    assert stats["records_per_class"]["hold"] > 0
    for dry in (["--dry-run"], []):
        code, out, err = run(capsys, "--config", config, "vault", "prune", "--format", "json",
                             *dry, *store)  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["dry_run"] is bool(dry)
    code, out, err = run(capsys, "--config", config, "vault", "release", "--incident-id",
                         incident_id, *store)  # fmt: skip
    assert (code, out) == (0, f"incident {incident_id}: released\n"), err
    code, _, err = run(capsys, "--config", config, "vault", "release", "--incident-id",
                       incident_id, *store)  # fmt: skip
    assert code == 2
    assert "is not held" in err
    code, _, err = run(capsys, "--config", config, "vault", "hold", "--incident-id", "nope",
                       *store)  # fmt: skip
    assert code == 2
    assert "no incident 'nope'" in err
    code, out, err = run(capsys, "--config", config, "vault", "verify", "--format", "json", *store)
    assert code == 0, (out, err)
    assert json.loads(out)["ok"]


def test_retention_never_creates_a_postgresql_vault(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["prune"], ["hold", "--incident-id", "x"], ["export", "--incident-id", "x",
                    "--output", str(tmp_path / "b.jsonl")]):  # fmt: skip
        code, _, err = run(capsys, "vault", *command, "--store", postgres_url)
        assert code == 2
        assert "the store is empty" in err
    schema = postgres_url.rsplit("schema=", 1)[1]
    assert not postgres_execute("public", "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (schema,))  # fmt: skip
