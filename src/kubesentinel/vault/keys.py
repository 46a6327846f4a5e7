"""The vault's Ed25519 keys: the signing key, created on first use, and pinned public keys.

The signing key is an unencrypted PKCS#8 PEM file that only its owner may read: mode 0600,
in a directory created 0700. Unencrypted because the monitor signs unattended; a passphrase
would have to sit beside the key (in the config or the environment) and would protect
nothing more. The file's mode is the protection, so a key file that the group or others
can read (or write) is refused, as ssh refuses such a private key.

A verifier trusts a public key given to it out of band: the PEM ``export_public`` writes
(``load_pinned`` reads it back), or the one-line signed-note verifier key
(``VerifyKey.verifier_key``) that Go's golang.org/x/mod/sumdb/note reads.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from kubesentinel.errors import KeyFileError

# pyca/cryptography is imported when a key is first read, made or used, not with this module:
# the monitor and its writer import the vault at start-up and sign only once a batch is
# stored, and the library's bindings cost about 3 MB of the idle memory target.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "SigningKey",
    "VerifyKey",
    "load_or_create_signing_key",
    "load_pinned",
]

# The signed-note signature type byte of Ed25519 (c2sp.org/signed-note).
ED25519_SIGNATURE_TYPE: Final = b"\x01"
_PRIVATE_MODE: Final = 0o600
_DIRECTORY_MODE: Final = 0o700
_PUBLIC_MODE: Final = 0o644
_MAX_KEY_FILE: Final = 64 * 1024  # a PEM Ed25519 key is about 120 bytes


class VerifyKey:
    """An Ed25519 public key that checks signatures."""

    __slots__ = ("_public", "raw")

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.raw: bytes = public.public_bytes_raw()  # the 32 bytes of RFC 8032

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        """The key from its 32 raw bytes (ValueError when they are not an Ed25519 key)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return cls(Ed25519PublicKey.from_public_bytes(raw))

    def key_id(self, name: str) -> bytes:
        """The signed-note key ID of this key under ``name``:
        SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        _check_key_name(name)
        return hashlib.sha256(name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + self.raw).digest()[
            :4
        ]

    def verifier_key(self, name: str) -> str:
        """The signed-note verifier key, ``name+<hex key ID>+<base64(0x01 || key)>``."""
        encoded = base64.b64encode(ED25519_SIGNATURE_TYPE + self.raw).decode()
        return f"{name}+{self.key_id(name).hex()}+{encoded}"

    def pem(self) -> bytes:
        """The SubjectPublicKeyInfo PEM of the key."""
        from cryptography.hazmat.primitives import serialization

        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message``."""
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"VerifyKey({base64.b64encode(self.raw).decode()})"


class SigningKey:
    """An Ed25519 private key that signs checkpoints; ``path`` is the file it came from."""

    __slots__ = ("_private", "path", "verify_key")

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private = private
        self.path = path
        self.verify_key = VerifyKey(private.public_key())

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (64 bytes; deterministic, RFC 8032)."""
        return self._private.sign(message)

    def public_key_pem(self) -> bytes:
        return self.verify_key.pem()

    def key_id(self, name: str) -> bytes:
        """The signed-note key ID of the public key under ``name``."""
        return self.verify_key.key_id(name)

    def export_public(self, path: Path) -> None:
        """Write the public key as PEM (mode 0644), to pin on the machines that verify."""
        try:
            _write_file(path, self.public_key_pem(), _PUBLIC_MODE, replace=True)
        except OSError as error:
            raise KeyFileError(
                f"cannot write the public key: {error.strerror or error}",
                file=str(path),
                hint="choose a path in a directory this user can write",
            ) from error

    def __repr__(self) -> str:
        return f"SigningKey(path={self.path!r}, public={self.verify_key!r})"


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The signing key at ``path``; a new one is created there when there is none.

    A new key file is written 0600 under a temporary name opened with O_CREAT|O_EXCL (it is
    never readable by others, not even while written) and linked into place, which fails
    rather than replaces when another process created the key meanwhile; that key is used.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = _read_private(path)
    if pem is None:
        _create_signing_key(path)
        pem = _read_private(path)
        if pem is None:  # created, then removed by someone else before it was read
            raise KeyFileError("the new signing key disappeared", file=str(path))
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFileError(
            "not an unencrypted PEM private key",
            file=str(path),
            hint="restore the vault's signing key; checkpoints by another key will not verify",
        ) from error
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(
            f"a {type(private).__name__} key, not Ed25519",
            file=str(path),
            hint="the vault signs with Ed25519 keys only; restore the vault's signing key",
        )
    return SigningKey(private, path)


def load_pinned(path: Path) -> VerifyKey:
    """The public key pinned in ``path``: the PEM ``SigningKey.export_public`` writes."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        with path.open("rb") as file:
            pem = file.read(_MAX_KEY_FILE)
    except OSError as error:
        raise KeyFileError(
            f"cannot read the pinned public key: {error.strerror or error}", file=str(path)
        ) from error
    if b"PRIVATE KEY" in pem:
        raise KeyFileError(
            "a private key, not a public key",
            file=str(path),
            hint="pin the public key the vault exported; the private key stays on its host",
        )
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError("not a PEM public key", file=str(path)) from error
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError(f"a {type(public).__name__} key, not Ed25519", file=str(path))
    return VerifyKey(public)


def _check_key_name(name: str) -> None:
    """A signed-note key name: non-empty, no Unicode space, no plus sign."""
    if not name or "+" in name or any(char.isspace() for char in name):
        raise ValueError(f"{name!r} is not a key name: it must be non-empty, no spaces or '+'")


def _read_private(path: Path) -> bytes | None:
    """The key file's bytes, None when there is none; refused when others may read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeyFileError(
            f"cannot read the signing key: {error.strerror or error}", file=str(path)
        ) from error
    try:
        status = os.fstat(fd)  # of the file opened, so a swap after a check cannot fool it
        if not stat.S_ISREG(status.st_mode):
            raise KeyFileError("the signing key is not a regular file", file=str(path))
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"the signing key is accessible to other users (mode {mode:04o}); "
                "a private key must be readable by its owner only",
                file=str(path),
                hint=f"chmod 600 {path}",
            )
        return os.read(fd, _MAX_KEY_FILE)
    finally:
        os.close(fd)


def _create_signing_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _make_private_directory(path.parent)
        _write_file(path, pem, _PRIVATE_MODE, replace=False)
    except OSError as error:
        raise KeyFileError(
            f"cannot create the signing key: {error.strerror or error}",
            file=str(path),
            hint="the key's directory must be writable by the user the monitor runs as",
        ) from error


def _make_private_directory(directory: Path) -> None:
    """Create a missing directory 0700; an existing one is left as its owner set it."""
    try:
        directory.mkdir(mode=_DIRECTORY_MODE, parents=True)
    except FileExistsError:
        return
    os.chmod(directory, _DIRECTORY_MODE)  # the umask may have taken bits from mkdir's mode


def _write_file(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Put a complete file at ``path``, or nothing: written under a temporary name opened
    O_EXCL with its final mode, then moved in. Without ``replace`` an existing file wins
    (os.link fails where os.rename would replace it)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask
            file.write(data)
            file.flush()
            os.fsync(fd)
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                return
        _fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
