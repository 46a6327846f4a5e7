"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.

A checkpoint commits to the vault's chain at one segment and links to the checkpoint before
it, as a CloudTrail digest file names the previous digest file. The text is a signed note
(c2sp.org/signed-note) whose body is a checkpoint (c2sp.org/tlog-checkpoint)::

    kubesentinel.vault/4f1c2a9e                     the origin: the store; also the key name
    42                                              the size: the last segment signed
    5LCMhKNk2ZqQVqq7BljLdeXc5RB78fZQxaS1hCiRTFs=    the root hash: the chain head after it
    records 86017                                   records in the segments up to it
    previous rRefhjlyJbQJFgQ1oGL6qw35LNSGKrhbdSBdAy8oNN4=    checkpoint_hash of the one before
    time 1764822300                                 unix seconds when signed

    — kubesentinel.vault/4f1c2a9e HYy+kSwI...RDJXyhAVrgU=     base64(key ID || signature)

The three extension lines come in this order; ``previous`` is left out of the first
checkpoint only. A vault checkpoint's root hash is the chain head (``record.chain_head``),
which covers every segment root before it, so its size counts segments, not leaves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from kubesentinel.errors import CheckpointError
from kubesentinel.vault.keys import SigningKey, VerifyKey
from kubesentinel.vault.merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "checkpoint_hash",
    "open_note",
    "parse_and_verify",
    "sign_checkpoint",
    "sign_note",
]

_SIGNATURE_PREFIX: Final = "\u2014 "  # em dash, space
_MAX_NOTE_CHARS: Final = 64 * 1024  # a vault checkpoint is about 300 characters
_MAX_SIGNATURES: Final = 100  # the spec asks verifiers to accept at least 16
_ED25519_SIGNATURE_BYTES: Final = 64
_MAX_U64: Final = 2**64 - 1
_CONTROL: Final = re.compile("[\x00-\x09\x0b-\x1f]")  # every ASCII control but newline
_DECIMAL: Final = re.compile("0|[1-9][0-9]*")  # ASCII digits, no leading zero
_EXTENSION_LINES: Final = (("records", "previous", "time"), ("records", "time"))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint signs."""

    origin: str  # the store's name; checkpoints of another origin are refused
    size: int  # the id of the last segment the checkpoint covers
    root_hash: bytes  # the chain head after that segment
    record_count: int  # records in the segments it covers
    previous: bytes | None  # checkpoint_hash of the checkpoint before; None for the first
    timestamp: int  # unix seconds when it was signed

    def __post_init__(self) -> None:
        if not self.origin or _CONTROL.search(self.origin) or "\n" in self.origin:
            raise ValueError(f"{self.origin!r} is not an origin line")
        for name, number in (("size", self.size), ("record count", self.record_count)):
            if not 0 <= number <= _MAX_U64:
                raise ValueError(f"a checkpoint's {name} is an unsigned 64-bit integer")
        if self.timestamp < 0:
            raise ValueError("a checkpoint's time is unix seconds, never negative")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"a root hash is {HASH_SIZE} bytes")
        if self.previous is not None and len(self.previous) != HASH_SIZE:
            raise ValueError(f"a checkpoint hash is {HASH_SIZE} bytes")

    def body(self) -> str:
        """The note text that is signed, final newline included."""
        lines = [
            self.origin,
            str(self.size),
            _b64(self.root_hash),
            f"records {self.record_count}",
        ]
        if self.previous is not None:
            lines.append(f"previous {_b64(self.previous)}")
        lines.append(f"time {self.timestamp}")
        return "\n".join(lines) + "\n"


def sign_checkpoint(key: SigningKey, checkpoint: Checkpoint) -> str:
    """The checkpoint as a signed note, signed by ``key`` under the origin as key name."""
    return sign_note(key, checkpoint.origin, checkpoint.body())


def parse_and_verify(
    text: str, keys: VerifyKey | Sequence[VerifyKey], *, expected_origin: str
) -> Checkpoint:
    """The checkpoint in ``text`` once it is shown well formed, of ``expected_origin``, and
    signed by one of ``keys`` (more than one while a key is rotated).

    Raises CheckpointError when the note or body is malformed, the origin is another, a
    trusted key's signature does not verify (the text was changed), or no trusted key
    signed it (a swapped key).
    """
    body, _ = _split_note(text)
    checkpoint = _parse_body(body)
    if checkpoint.origin != expected_origin:
        raise CheckpointError(
            f"checkpoint of {checkpoint.origin!r}, not of this vault ({expected_origin!r})"
        )
    open_note(text, expected_origin, keys)
    return checkpoint


def checkpoint_hash(text: str) -> bytes:
    """SHA-256 of the checkpoint's signed text (its body): what the next one links to.
    Signatures are left out, so a cosignature added later does not break the link."""
    body, _ = _split_note(text)
    return hashlib.sha256(body.encode()).digest()


def sign_note(key: SigningKey, name: str, text: str) -> str:
    """``text`` (ending in a newline) as a signed note with one Ed25519 signature line."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise ValueError("a note text ends in a newline and has no empty line")
    if _CONTROL.search(text):
        raise ValueError("a note text has no control characters but newlines")
    signature = key.sign(text.encode())
    return f"{text}\n{_SIGNATURE_PREFIX}{name} {_b64(key.key_id(name) + signature)}\n"


def open_note(text: str, name: str, keys: VerifyKey | Sequence[VerifyKey]) -> str:
    """The note's text once a signature by one of ``keys`` under ``name`` verifies.

    Signatures by other keys are ignored, as the spec requires (a witness's cosignature,
    say); a trusted key's signature that fails rejects the whole note.
    """
    trusted = [keys] if isinstance(keys, VerifyKey) else list(keys)
    if not trusted:
        raise ValueError("a note is verified against at least one key")
    by_id = {key.key_id(name): key for key in trusted}
    body, signatures = _split_note(text)
    message = body.encode()
    verified = False
    for signer, key_id, signature in signatures:
        key = by_id.get(key_id) if signer == name else None
        if key is None:
            continue
        if len(signature) != _ED25519_SIGNATURE_BYTES or not key.verify(signature, message):
            raise CheckpointError(
                f"the signature of {name} (key {key_id.hex()}) does not verify: "
                "the signed text was changed, or the signature forged"
            )
        verified = True
    if not verified:
        found = ", ".join(f"{signer} key {key_id.hex()}" for signer, key_id, _ in signatures)
        pinned = ", ".join(key_id.hex() for key_id in by_id)
        raise CheckpointError(
            f"not signed by a trusted key: signed by {found}; trusted: {name} key {pinned}",
            hint="the signing key was replaced, or the pinned key is another vault's",
        )
    return body


def _split_note(text: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """(text, [(key name, key ID, signature)]) of a well-formed signed note."""
    if len(text) > _MAX_NOTE_CHARS:
        raise CheckpointError(f"malformed note: longer than {_MAX_NOTE_CHARS} characters")
    if _CONTROL.search(text) or not _is_utf8(text):
        raise CheckpointError("malformed note: a control character or invalid UTF-8")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: no signature, or no newline after the last")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        signer, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
        blob = _b64decode(encoded)
        if (
            not line.startswith(_SIGNATURE_PREFIX)
            or not signer
            or "+" in signer
            or blob is None
            or len(blob) < 5
        ):
            raise CheckpointError(f"malformed note: {line!r} is not a signature line")
        signatures.append((signer, blob[:4], blob[4:]))
    return body, signatures


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed checkpoint: fewer than three lines")
    origin, size, root_hash, *extensions = lines
    words = [line.split(" ") for line in extensions]
    if tuple(word[0] for word in words) not in _EXTENSION_LINES or any(len(w) != 2 for w in words):
        raise CheckpointError(
            "malformed checkpoint: after the root hash come the lines 'records <n>', "
            "'previous <hash>' (left out of the first checkpoint) and 'time <seconds>'"
        )
    values = {word[0]: word[1] for word in words}
    previous = values.get("previous")
    try:
        return Checkpoint(
            origin=origin,
            size=_decimal(size, "size"),
            root_hash=_hash(root_hash, "root hash"),
            record_count=_decimal(values["records"], "record count"),
            previous=None if previous is None else _hash(previous, "previous checkpoint hash"),
            timestamp=_decimal(values["time"], "time"),
        )
    except ValueError as error:
        raise CheckpointError(f"malformed checkpoint: {error}") from None


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > _MAX_U64:
        raise CheckpointError(f"malformed checkpoint: the {what} {text!r} is not a number")
    return int(text)


def _hash(text: str, what: str) -> bytes:
    digest = _b64decode(text)
    if digest is None or len(digest) != HASH_SIZE:
        raise CheckpointError(f"malformed checkpoint: the {what} is not base64 of 32 bytes")
    return digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64decode(text: str) -> bytes | None:
    """Standard base64 with padding, in its one canonical spelling; None otherwise."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True
