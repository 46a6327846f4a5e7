"""What only the PostgreSQL store does: several writers share one vault (two writer processes
at once never fork the chain), the schema is made once, a write is visible to others when it
is acknowledged, records are those SQLite seals, NUL characters, URLs and their passwords."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.errors import StoreError
from kubesentinel.models import Event
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.store.open import open_store
from kubesentinel.runtime.store.postgres_schema import pg_id, pg_id_text
from kubesentinel.runtime.store.rows import encode_write
from kubesentinel.runtime.store.urls import DEFAULT_SCHEMA, parse_postgres_url, redact
from kubesentinel.runtime.store.writer import StoreProcess
from kubesentinel.vault.prune import PruneReport
from kubesentinel.vault.sqlite_ledger import SQLiteLedger
from tests.runtime.test_sqlite_store import DB, T0, WEB, event
from tests.store_behaviour.backends import postgres_connect, postgres_execute

WRITES = 12  # per writer
EVENTS = 40  # per write


def _batches(prefix: str, workload_offset: int) -> list[list[Event]]:
    return [
        [event(f"{prefix}{n}-{k}", workload_offset + n * 60 + k * 0.01,
               workload=WEB if k % 2 else DB) for k in range(EVENTS)]
        for n in range(WRITES)
    ]  # fmt: skip


def test_two_writer_processes_share_one_chain(postgres_url: str, tmp_path: Path) -> None:
    """Two monitors' writer processes commit at once; the vault holds one unbroken chain."""
    key = tmp_path / "vault-signing-key.pem"
    open_store(postgres_url, signing_key=key).close()  # the schema, before the race
    writers = [StoreProcess(postgres_url, key), StoreProcess(postgres_url, key)]
    acknowledged = [0, 0]

    def run(n: int) -> None:
        correlator = Correlator()
        for events in _batches(f"w{n}-", n * 7):
            incidents = correlator.add(events, events[-1].time_ns)
            encoded = encode_write(events, incidents)
            assert encoded is not None
            writers[n].submit(encoded, lambda error, n=n: _count(acknowledged, n, error))
        writers[n].close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert acknowledged == [WRITES, WRITES]
    with open_store(postgres_url, read_only=True) as store:
        report = store.verify()
        stats = store.vault_stats()
    assert report.ok, report.problems
    assert report.segments == 2 * WRITES
    assert report.last_segment == 2 * WRITES  # numbered 1..n, none taken twice
    assert report.events == 2 * WRITES * EVENTS
    assert report.unsigned_segments == 0  # each writer signed its tail when it closed
    assert stats["incidents"] == 4  # two workloads per writer, ids apart
    seqs = postgres_execute(_schema(postgres_url), "SELECT seq FROM incidents ORDER BY seq")
    assert [row[0] for row in seqs] == [1, 2, 3, 4]


def _count(acknowledged: list[int], n: int, error: StoreError | None) -> None:
    assert error is None
    acknowledged[n] += 1


def _schema(url: str) -> str:
    return parse_postgres_url(url).schema


def test_monitors_starting_together_make_the_schema_once(postgres_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(postgres_url, signing_key=tmp_path / "key.pem").close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    rows = postgres_execute(_schema(postgres_url), "SELECT version FROM schema_version")
    assert rows == [(4,)]


def test_a_write_is_visible_to_other_connections_when_acknowledged(
    postgres_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "key.pem"
    open_store(postgres_url, signing_key=key).close()
    seen: list[int] = []
    schema = _schema(postgres_url)

    def done(error: StoreError | None) -> None:
        assert error is None
        seen.append(postgres_execute(schema, "SELECT count(*) FROM events")[0][0])

    writer = StoreProcess(postgres_url, key)
    for n in range(3):
        events = [event(f"{n}-{k}", n * 10 + k) for k in range(50)]
        encoded = encode_write(events, [])
        assert encoded is not None
        writer.submit(encoded, done)
    writer.close()
    # Each write was committed when acknowledged (the next may be already, IN_FLIGHT = 2).
    assert len(seen) == 3
    assert all(count >= 50 * (n + 1) for n, count in enumerate(seen)), seen


def test_the_same_writes_seal_the_same_records_as_sqlite(postgres_url: str, tmp_path: Path) -> None:
    """Rows read back for verify are equal value for value, so their leaves are too."""
    from psycopg import sql

    from kubesentinel.vault.postgres_ledger import PostgresLedger

    path = tmp_path / "ks.db"
    odd = event("0123456789abcdef0123456789abcdef", 3)  # ids of every stored form
    uuid_id = event("3f2a9c1e-8d7b-4a6f-9e0d-1c2b3a4f5e6d", 4)
    for location in (str(path), postgres_url):
        correlator = Correlator(max_duration_s=20)
        with open_store(location, signing_key=tmp_path / "key.pem") as store:
            for n in range(3):
                events = [event(f"e{n}-{k}", n * 15 + k, workload=WEB if k % 2 else DB)
                          for k in range(4)]  # fmt: skip
                store.write(events, correlator.add(events, events[-1].time_ns))
            store.write([odd, uuid_id], correlator.add([odd, uuid_id], uuid_id.time_ns))
    db = sqlite3.connect(path)
    lite = SQLiteLedger(db)
    expected = (list(lite.facet_rows()), list(lite.event_rows()), sorted(lite.incident_rows()))
    db.close()
    with postgres_connect() as conn, conn.transaction():
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(_schema(postgres_url))))
        pg = PostgresLedger(conn)
        got = (list(pg.facet_rows()), list(pg.event_rows()), sorted(pg.incident_rows()))
    assert [list(map(tuple, rows)) for rows in got] == [list(map(tuple, r)) for r in expected]
    assert len(got[1]) == 14


def test_nul_characters_in_names_are_stored_escaped_and_sealed(
    postgres_url: str, tmp_path: Path
) -> None:
    bad = event("a", 0, pod="web\x00-0", rule="Shell\x00", fields={"fd.name": "x\x00y"})
    incidents = Correlator().add([bad], bad.time_ns)
    with open_store(postgres_url, signing_key=tmp_path / "key.pem") as store:
        store.write([bad], incidents)
        (stored,) = store.events_of(incidents[0].id)
        report_ok = store.verify().ok
    assert stored.pod == "web\\u0000-0"  # a column: PostgreSQL text cannot hold NUL
    assert stored.rule == "Shell\\u0000"
    assert stored.fields == {"fd.name": "x\x00y"}  # the evidence: bytes as received
    assert report_ok


def test_a_read_only_open_never_creates_the_store(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="the store is empty") as caught:
        open_store(postgres_url, read_only=True)
    assert caught.value.hint == "run `kubesentinel monitor` with this URL first"
    assert postgres_execute("public", "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (_schema(postgres_url),)) == []  # fmt: skip


def test_a_schema_holding_other_tables_is_refused(postgres_url: str, tmp_path: Path) -> None:
    schema = _schema(postgres_url)
    postgres_execute("public", f"CREATE SCHEMA {schema}")
    postgres_execute(schema, "CREATE TABLE orders (id integer)")
    with pytest.raises(StoreError, match="holds tables but no KubeSentinel store"):
        open_store(postgres_url, signing_key=tmp_path / "key.pem")


def test_a_newer_schema_is_refused(postgres_url: str, tmp_path: Path) -> None:
    open_store(postgres_url, signing_key=tmp_path / "key.pem").close()
    postgres_execute(_schema(postgres_url), "UPDATE schema_version SET version = 5")
    with pytest.raises(StoreError, match="version 5 is newer than this KubeSentinel reads"):
        open_store(postgres_url, read_only=True)


def test_an_unreachable_server_is_one_error_without_the_password() -> None:
    url = "postgresql://monitor:s3cr%40t@127.0.0.1:1/vault?schema=ks"
    with pytest.raises(StoreError) as caught:
        open_store(url, read_only=True)
    error = caught.value
    assert error.message.startswith("cannot connect to the store: ")
    assert error.file == "postgresql://monitor:***@127.0.0.1:1/vault?schema=ks"
    assert "s3cr" not in str(error)
    assert "s3cr" not in repr(error.__cause__ or error)


def test_a_missing_driver_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "kubesentinel.runtime.store.postgres", raising=False)
    monkeypatch.delitem(sys.modules, "kubesentinel.vault.postgres_ledger", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://monitor:pw@db.internal/vault")
    assert caught.value.hint == "pip install 'kubesentinel[postgres]'"
    assert caught.value.file == "postgresql://monitor:***@db.internal/vault"
    # SQLite stores need no driver
    open_store(str(tmp_path / "ks.db")).close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p%40ss@h:5433/db?sslmode=require", "postgresql://u:***@h:5433/db?sslmode=require"),
        ("postgres://u@h/db?password=pw&schema=x", "postgres://u@h/db?password=***&schema=x"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("/var/lib/ks/kubesentinel.db", "/var/lib/ks/kubesentinel.db"),
    ],
)  # fmt: skip
def test_passwords_are_redacted(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_the_schema_parameter_is_ours_and_checked() -> None:
    target = parse_postgres_url("postgresql://u:pw@h/db?sslmode=require&schema=team_a")
    assert (target.schema, target.conninfo) == ("team_a", "postgresql://u:pw@h/db?sslmode=require")
    assert "pw" not in repr(target)
    assert parse_postgres_url("postgresql://h/db").schema == DEFAULT_SCHEMA
    with pytest.raises(ValueError, match="not a plain PostgreSQL name"):
        parse_postgres_url("postgresql://u:pw@h/db?schema=Robert');DROP")
    with pytest.raises(ValueError, match="not a PostgreSQL URL") as caught:
        parse_postgres_url("mysql://u:pw@h/db")
    assert "pw" not in str(caught.value)


@given(
    st.text(max_size=40) | st.uuids().map(str) | st.binary(min_size=16, max_size=16).map(bytes.hex)
)
def test_every_event_id_reads_back_from_its_bytea(event_id: str) -> None:
    assert pg_id_text(pg_id(event_id)) == event_id


def test_a_reader_role_with_select_only_reads_and_verifies(
    postgres_url: str, tmp_path: Path
) -> None:
    """docs/vault.md: USAGE on the schema and SELECT on its tables are enough to read."""
    schema = _schema(postgres_url)
    events = [event("a", 0), event("b", 1)]
    with open_store(postgres_url, signing_key=tmp_path / "key.pem") as store:
        store.write(events, Correlator().add(events, events[-1].time_ns))
    role = f"ks_reader_{schema[-12:]}"
    postgres_execute("public", f"CREATE ROLE {role} LOGIN")
    try:
        postgres_execute("public", f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        postgres_execute("public", f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        parts = urlsplit(postgres_url)
        as_reader = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
        with open_store(as_reader, read_only=True) as store:
            assert store.verify().ok
            assert len(store.list_incidents()) == 1
        writer = open_store(as_reader, signing_key=tmp_path / "key.pem")
        with pytest.raises(StoreError, match="permission denied"):
            writer.write([event("c", 2)], [])
        writer.close()
    finally:
        postgres_execute("public", f"DROP OWNED BY {role}")
        postgres_execute("public", f"DROP ROLE {role}")


def _noise(name: str, at_s: float) -> Event:
    from kubesentinel.models import Priority

    return event(name, at_s, priority=Priority.INFORMATIONAL)


def _prune_at(url: str, key: Path, days: int, batch: int) -> PruneReport:
    from kubesentinel.vault.prune import PruneOptions, prune
    from kubesentinel.vault.retention import DAY_NS
    from tests.store_behaviour.test_retention import DEFAULT

    with open_store(url, signing_key=key) as store:
        return prune(store, PruneOptions(DEFAULT, T0 + days * DAY_NS, batch=batch))


def test_prune_and_a_writer_share_the_chain(postgres_url: str, tmp_path: Path) -> None:
    """A monitor writes while another prunes in small transactions: each takes the chain lock,
    so retention segments and written segments interleave on one chain, nothing written is
    lost or pruned by mistake, and the vault verifies."""
    key = tmp_path / "key.pem"
    with open_store(postgres_url, signing_key=key) as store:
        old = [_noise(f"old{k}", k) for k in range(3000)]
        for start in range(0, len(old), 500):
            store.write(old[start : start + 500], [])
    written: list[str] = []
    done = threading.Event()

    def writer() -> None:
        with open_store(postgres_url, signing_key=key) as store:
            n = 0
            while not done.is_set() or n < 20:
                batch = [_noise(f"new{n}-{k}", 30 * 86_400 + n * 10 + k) for k in range(20)]
                store.write(batch, [])
                written.extend(e.id for e in batch)
                n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = _prune_at(postgres_url, key, days=31, batch=300)
    finally:
        done.set()
        thread.join(timeout=120)
    assert report.events_removed == 3000
    assert len(report.retention_segments) == 10
    stored = postgres_execute(_schema(postgres_url), "SELECT id FROM events")
    assert {pg_id_text(bytes(row[0])) for row in stored} == set(written)
    with open_store(postgres_url, read_only=True) as store:
        final = store.verify()
    assert final.ok, final.problems
    assert final.removed_records == 3000


def test_two_monitors_pruning_at_once_remove_each_event_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two schedules of two monitors run together: the chain lock runs their transactions one
    at a time and each sees what the other removed, so no record is tombstoned twice."""
    key = tmp_path / "key.pem"
    with open_store(postgres_url, signing_key=key) as store:
        old = [_noise(f"old{k}", k) for k in range(2000)]
        for start in range(0, len(old), 250):
            store.write(old[start : start + 250], [])
    reports: list[PruneReport] = []

    def pruner() -> None:
        reports.append(_prune_at(postgres_url, key, days=31, batch=200))

    threads = [threading.Thread(target=pruner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(reports) == 2
    assert sum(r.events_removed for r in reports) == 2000
    assert postgres_execute(_schema(postgres_url), "SELECT count(*) FROM events") == [(0,)]
    with open_store(postgres_url, read_only=True) as store:
        final = store.verify()
    assert final.ok, final.problems
    assert final.removed_records == 2000
