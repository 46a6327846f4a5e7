"""The signing key's file: created on first use, owner-only, refused when others can read it."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubesentinel.errors import KeyFileError, VaultError
from kubesentinel.vault.keys import (
    SigningKey,
    VerifyKey,
    load_or_create_signing_key,
    load_pinned,
)

# golang.org/x/mod/sumdb/note's documented example key pair (typed as data).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def go_example_key() -> SigningKey:
    seed = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[4])[1:]  # after the type byte 0x01
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_key_is_created_on_first_use_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vault" / "signing.pem"
    key = load_or_create_signing_key(path)
    assert key.path == path
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert os.listdir(path.parent) == ["signing.pem"]  # no temporary file left behind
    again = load_or_create_signing_key(path)
    assert again.verify_key == key.verify_key


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_a_new_key_is_owner_only_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = tmp_path / "new" / "signing.pem"
        load_or_create_signing_key(path)
    finally:
        os.umask(previous)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    load_or_create_signing_key(tmp_path / "signing.pem")
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "signing.pem") == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620])
def test_a_key_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    load_or_create_signing_key(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_or_create_signing_key(path)
    error = caught.value
    assert error.file == str(path)
    assert f"mode {mode:04o}" in error.message
    assert error.hint == f"chmod 600 {path}"
    assert error.code == "KS-E051"
    assert isinstance(error, VaultError)
    path.chmod(0o400)  # owner read-only is fine
    load_or_create_signing_key(path)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    keys: list[VerifyKey] = []
    start = threading.Barrier(8)

    def first_use() -> None:
        start.wait()
        keys.append(load_or_create_signing_key(path).verify_key)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert os.listdir(tmp_path) == ["signing.pem"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not an unencrypted PEM private key"),
        (
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
            "not an unencrypted PEM private key",
        ),
        (
            generate_private_key(SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "not Ed25519",
        ),
    ],
)
def test_a_file_that_is_not_an_ed25519_key_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        load_or_create_signing_key(path)


def test_a_directory_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(KeyFileError, match="cannot create the signing key"):
            load_or_create_signing_key(tmp_path / "signing.pem")
    finally:
        tmp_path.chmod(0o700)


def test_a_key_path_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(KeyFileError, match="cannot read the signing key") as caught:
        load_or_create_signing_key(tmp_path / "file" / "signing.pem")
    assert caught.value.file == str(tmp_path / "file" / "signing.pem")


def test_a_directory_in_place_of_the_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "signing.pem").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_or_create_signing_key(tmp_path / "signing.pem")


def test_the_exported_public_key_pins_and_verifies(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path / "private" / "signing.pem")
    exported = tmp_path / "pinned" / "vault.pub"
    exported.parent.mkdir()
    key.export_public(exported)
    assert _mode(exported) == 0o644
    assert exported.read_bytes() == key.public_key_pem()
    assert exported.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    pinned = load_pinned(exported)
    assert pinned == key.verify_key
    signature = key.sign(b"message")
    assert pinned.verify(signature, b"message")
    assert not pinned.verify(signature, b"messagE")
    other = load_or_create_signing_key(tmp_path / "other" / "signing.pem")
    assert not other.verify_key.verify(signature, b"message")


def test_a_pinned_file_must_be_an_ed25519_public_key(tmp_path: Path) -> None:
    private = tmp_path / "signing.pem"
    load_or_create_signing_key(private)
    with pytest.raises(KeyFileError, match="a private key, not a public key"):
        load_pinned(private)
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("hello\n")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_pinned(garbage)
    ec_public = tmp_path / "ec.pub"
    ec_public.write_bytes(
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="not Ed25519"):
        load_pinned(ec_public)
    with pytest.raises(KeyFileError, match="cannot read") as caught:
        load_pinned(tmp_path / "missing.pub")
    assert caught.value.file == str(tmp_path / "missing.pub")


def test_key_id_and_verifier_key_match_go_sumdb_note() -> None:
    key = go_example_key()
    assert key.key_id("PeterNeumann").hex() == "c74f20a3"
    assert key.verify_key.verifier_key("PeterNeumann") == GO_VERIFIER_KEY
    raw = base64.b64decode(GO_VERIFIER_KEY.split("+", 2)[2])[1:]
    assert VerifyKey.from_raw(raw) == key.verify_key
    assert key.key_id("PeterNeumann2") != key.key_id("PeterNeumann")


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0"])
def test_key_names_follow_the_signed_note_rules(name: str) -> None:
    with pytest.raises(ValueError, match="not a key name"):
        go_example_key().key_id(name)


def test_public_names_are_pinned() -> None:
    from kubesentinel.vault import keys as module

    assert sorted(module.__all__) == [
        "ED25519_SIGNATURE_TYPE",
        "SigningKey",
        "VerifyKey",
        "load_or_create_signing_key",
        "load_pinned",
    ]


def test_the_crypto_library_loads_only_when_a_key_is_used(tmp_path: Path) -> None:
    """The monitor's processes import the vault at start-up; pyca/cryptography (about 7 MB of
    the idle memory) loads with the first key read, not before."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import kubesentinel.cli, kubesentinel.runtime.store.sqlite, kubesentinel.vault.schedule\n"
        "import kubesentinel.runtime.store.writer, kubesentinel.vault.verify\n"
        "assert 'cryptography' not in sys.modules, 'imported at start-up'\n"
        "from kubesentinel.vault.keys import load_or_create_signing_key\n"
        f"key = load_or_create_signing_key(Path({str(tmp_path / 'k.pem')!r}))\n"
        "assert key.verify_key.verify(key.sign(b'x'), b'x')\n"
        "print('cryptography' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
