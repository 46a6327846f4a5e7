"""The store's side of checkpoints: a ``Signer`` for the writer, a ``NoteKey`` for verify.

Thin on purpose: the key file is ``keys``'s, the note format ``checkpoint``'s; this module
only says where a store's key lives and what a store's checkpoint holds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from kubesentinel.vault.checkpoint import (
    Checkpoint,
    checkpoint_hash,
    parse_and_verify,
    sign_checkpoint,
)
from kubesentinel.vault.keys import VerifyKey, load_or_create_signing_key, load_pinned

__all__ = ["KEY_FILE", "NoteKey", "Signer", "default_key_path", "public_pem"]

KEY_FILE: Final = "vault-signing-key.pem"


def default_key_path(store: Path) -> Path:
    """``forensics.signing_key`` unset: the key beside the store, in its private directory."""
    return store.parent / KEY_FILE


class Signer:
    """Signs a store's checkpoints; the key file is read (or created, 0600) on construction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = load_or_create_signing_key(path)
        self.public_key: bytes = self._key.verify_key.raw

    def sign(
        self, origin: str, segment_id: int, head: bytes, records: int, previous: bytes | None
    ) -> str:
        """A checkpoint over segments 1..``segment_id`` (``records`` records, chain ``head``)."""
        checkpoint = Checkpoint(origin, segment_id, head, records, previous, int(time.time()))
        return sign_checkpoint(self._key, checkpoint)

    @staticmethod
    def note_hash(note: str) -> bytes:
        return checkpoint_hash(note)


class NoteKey:
    """Checks a store's checkpoints with one public key (``verify.CheckpointKey``)."""

    def __init__(self, public_key: bytes | VerifyKey) -> None:
        self.key = public_key if isinstance(public_key, VerifyKey) else _raw_key(public_key)

    @classmethod
    def from_pem_file(cls, path: Path) -> NoteKey:
        return cls(load_pinned(path))

    def check(self, note: str, origin: str) -> Checkpoint:
        """The checkpoint, once its signature by this key verifies (CheckpointError if not)."""
        return parse_and_verify(note, self.key, expected_origin=origin)

    @staticmethod
    def note_hash(note: str) -> bytes:
        return checkpoint_hash(note)


def public_pem(raw: bytes) -> str:
    return _raw_key(raw).pem().decode()


def _raw_key(raw: bytes) -> VerifyKey:
    from kubesentinel.errors import CheckpointError

    try:
        return VerifyKey.from_raw(raw)
    except ValueError:
        raise CheckpointError(
            "the store names no valid public key (vault_meta.public_key is damaged or empty)",
            hint="verify with --public-key and the key exported when the store was created",
        ) from None
