"""The ``vault export`` bundle format, version 1: one JSON Lines file (docs/vault-export.md).

A bundle is read as untrusted input, so the format is plain data in a fixed order that a
reader checks as it streams, holding one segment's evidence at a time:

1. the header: format name, version, the vault's origin and public key, what was selected;
2. ``checkpoint`` lines: signed notes, as the store keeps them;
3. ``chain`` lines: from the head before a run of segments, each segment's (id, Merkle root,
   record count) up to a signed checkpoint, whose root hash the last head must equal;
4. per segment: a ``segment`` line (its record, its inclusion proof at leaf 0, and its
   evidence as stored when events of it are exported), then the ``facet``, ``event`` and
   ``incident`` lines proven in that segment, each a record with its leaf index and proof;
5. the ``end`` line, counting the lines of each type (a bundle without it is truncated).

Records are the vault's own (``ledger``): an exported record hashes to its leaf with any
RFC 6962 tool. Binary values are standard base64 with padding, in their canonical spelling.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from kubesentinel.errors import VaultError

__all__ = [
    "FORMAT",
    "LINE_TYPES",
    "MAX_LINE_BYTES",
    "MAX_SEGMENT_BYTES",
    "RECORD_TYPES",
    "VERSION",
    "BundleWriter",
    "PrivateOutput",
    "Selection",
    "b64",
    "b64decode",
]

FORMAT: Final = "kubesentinel-vault-bundle"
VERSION: Final = 1
# A segment's evidence (a batch of up to 2,048 alerts) is a few MB uncompressed; these bound
# what a hostile bundle can make a reader allocate.
MAX_SEGMENT_BYTES: Final = 256 << 20
MAX_LINE_BYTES: Final = 64 << 20  # one line: a segment's compressed evidence in base64
# The leaf kinds a record line proves, with the position of the segment id in its record
# (a record line must sit in the block of the segment that seals it).
RECORD_TYPES: Final = {"facet": 1, "event": 5, "incident": 20}
LINE_TYPES: Final = ("checkpoint", "chain", "segment", *RECORD_TYPES, "end")


@dataclass(frozen=True, slots=True)
class Selection:
    """What an export holds: one incident and its events, or the events of a time range."""

    incident_id: str | None = None
    from_ns: int | None = None
    to_ns: int | None = None
    namespace: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.incident_id is not None:
            return {"incident_id": self.incident_id}
        return {"from_ns": self.from_ns, "to_ns": self.to_ns, "namespace": self.namespace}


class BundleWriter:
    """Writes a bundle's lines in order to a binary file, counting each type for ``end``."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.counts: dict[str, int] = dict.fromkeys(LINE_TYPES[:-1], 0)

    def header(self, origin: str, public_key_pem: str, selection: Selection, created: str) -> None:
        self._write({
            "format": FORMAT, "version": VERSION, "created": created, "origin": origin,
            "public_key": public_key_pem, "selection": selection.as_json(),
        })  # fmt: skip

    def line(self, kind: str, **fields: Any) -> None:
        self.counts[kind] += 1
        self._write({"type": kind, **fields})

    def end(self) -> None:
        self._write({"type": "end", "counts": self.counts})

    def _write(self, document: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(document) + b"\n")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64decode(text: object) -> bytes | None:
    """Standard base64 with padding in its one canonical spelling; None for anything else."""
    if type(text) is not str:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if b64(data) == text else None


class PrivateOutput:
    """A bundle file created 0600 (it holds command lines and other evidence), written under
    a temporary name and moved into place only when complete: a failed or refused export
    leaves nothing at ``path``. An existing file is replaced only with ``force``."""

    def __init__(self, path: Path, *, force: bool) -> None:
        self.path = path
        self.force = force
        self._temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        if not force and os.path.lexists(path):
            raise VaultError(f"{path} exists", hint="pass --force to replace it")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self._temporary, flags, 0o600)
        except OSError as exc:
            raise _write_error(path, exc) from None
        os.fchmod(fd, 0o600)  # exactly this mode, whatever the umask
        self.file: IO[bytes] = os.fdopen(fd, "wb")

    def commit(self) -> int:
        """Put the complete file at ``path``; its size in bytes."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            if self.force:
                os.replace(self._temporary, self.path)
            else:
                os.link(self._temporary, self.path)  # fails rather than replaces a new file
                self._temporary.unlink()
            return self.path.stat().st_size
        except FileExistsError:
            raise VaultError(f"{self.path} exists", hint="pass --force to replace it") from None
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        finally:
            self.discard()

    def discard(self) -> None:
        self.file.close()
        self._temporary.unlink(missing_ok=True)


def _write_error(path: Path, exc: OSError) -> VaultError:
    return VaultError(
        f"cannot write the bundle: {exc.strerror or exc}",
        file=str(path),
        hint="choose a path in a directory this user can write, with free space",
    )
