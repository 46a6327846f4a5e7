"""Open the store the configuration names: SQLite by default, PostgreSQL for a URL.

The location is, first found: ``--store`` (a path or a URL), ``forensics.storage_url``, then
``forensics.storage_path/kubesentinel.db``. The PostgreSQL driver (psycopg) is an optional
extra, imported only here and only for a URL. The signing key is ``forensics.signing_key``;
unset, a SQLite store keeps it beside its file and a PostgreSQL store in
``forensics.storage_path``, the monitor's own private directory (the database is shared, the
key file must not be).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from kubesentinel.errors import StoreError, UsageError
from kubesentinel.runtime.store.interface import VaultStore
from kubesentinel.runtime.store.urls import is_url, redact
from kubesentinel.vault.signer import KEY_FILE

if TYPE_CHECKING:  # the writer process opens stores by location and need not load the config
    from kubesentinel.config import Config

__all__ = ["DB_NAME", "open_existing", "open_store", "signing_key_for", "store_location"]

DB_NAME: Final = "kubesentinel.db"
INSTALL_HINT: Final = "pip install 'kubesentinel[postgres]'"


def store_location(config: Config, given: str | None) -> str:
    """Where the store is: ``given`` (``--store``), the configured URL, or the default file."""
    if given:
        return given
    if config.forensics.storage_url:
        return config.forensics.storage_url
    return str(Path(config.forensics.storage_path) / DB_NAME)


def signing_key_for(config: Config, location: str) -> Path | None:
    """The checkpoint key of the store at ``location`` (None: the SQLite store's default)."""
    if config.forensics.signing_key:
        return Path(config.forensics.signing_key)
    if is_url(location):
        return Path(config.forensics.storage_path) / KEY_FILE
    return None


def open_store(
    location: str, *, signing_key: str | Path | None = None, read_only: bool = False
) -> VaultStore:
    """The store at ``location``, a file path or a ``postgresql://`` URL, created on first
    use unless ``read_only``."""
    if is_url(location):
        try:
            from kubesentinel.runtime.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"a PostgreSQL store needs the psycopg driver, which is not installed ({exc})",
                file=redact(location),
                hint=INSTALL_HINT,
            ) from None
        return PostgresStore(location, read_only=read_only, signing_key=signing_key)
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    return SQLiteStore(location, read_only=read_only, signing_key=signing_key)


def open_existing(config: Config, given: str | None) -> VaultStore:
    """The store for the commands that only read (``incidents``, ``vault``): never created."""
    location = store_location(config, given)
    if is_url(location):
        return open_store(location, read_only=True)
    from kubesentinel.runtime.store.sqlite import MigrationNeeded

    if not Path(location).is_file():
        raise UsageError(
            f"no incident store at {location}",
            hint="run `kubesentinel monitor` first, or pass --store PATH",
        )
    try:
        return open_store(location, read_only=True)  # works on a full disk, never checkpoints
    except MigrationNeeded:
        # An older store: a writer upgrades it in place (and signs what it sealed).
        return open_store(location, signing_key=signing_key_for(config, location))
