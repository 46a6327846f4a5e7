"""Signed checkpoints: the C2SP formats, round trips, and every tamper refused."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.errors import CheckpointError, VaultError
from kubesentinel.vault.checkpoint import (
    Checkpoint,
    checkpoint_hash,
    open_note,
    parse_and_verify,
    sign_checkpoint,
    sign_note,
)
from kubesentinel.vault.keys import SigningKey
from kubesentinel.vault.merkle import EMPTY_ROOT, leaf_hash
from tests.vault.test_keys import GO_VERIFIER_KEY, go_example_key

ORIGIN = "kubesentinel.example/vault/4f1c2a9e"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))
FIRST = Checkpoint(
    origin=ORIGIN,
    size=1,
    root_hash=leaf_hash(b"segment 1"),
    record_count=17,
    previous=None,
    timestamp=1_764_822_000,
)
# Go's golang.org/x/mod/sumdb/note documentation example, signed by GO_VERIFIER_KEY's pair.
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
    "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def second_checkpoint() -> tuple[str, str, Checkpoint]:
    first = sign_checkpoint(KEY, FIRST)
    second = Checkpoint(
        origin=ORIGIN,
        size=5,
        root_hash=leaf_hash(b"segment 5"),
        record_count=1_000_017,
        previous=checkpoint_hash(first),
        timestamp=1_764_822_060,
    )
    return first, sign_checkpoint(KEY, second), second


def verify(text: str) -> Checkpoint:
    return parse_and_verify(text, KEY.verify_key, expected_origin=ORIGIN)


def test_the_text_is_a_c2sp_checkpoint_in_a_signed_note() -> None:
    _, text, checkpoint = second_checkpoint()
    body, signatures = text.split("\n\n")
    assert body.split("\n") == [
        ORIGIN,
        "5",
        base64.b64encode(checkpoint.root_hash).decode(),
        "records 1000017",
        f"previous {base64.b64encode(checkpoint.previous or b'').decode()}",
        "time 1764822060",
    ]
    match = re.fullmatch(r"\u2014 (\S+) ([A-Za-z0-9+/]+=*)\n", signatures)
    assert match is not None
    assert match[1] == ORIGIN  # the key name is the origin, as tlog-checkpoint advises
    blob = base64.b64decode(match[2])
    assert blob[:4] == KEY.key_id(ORIGIN)
    assert len(blob) == 4 + 64
    assert KEY.verify_key.verify(blob[4:], (body + "\n").encode())  # the body, its newline too


def test_the_first_checkpoint_has_no_previous_line() -> None:
    text = sign_checkpoint(KEY, FIRST)
    assert "previous" not in text
    assert verify(text) == FIRST


def test_a_signed_checkpoint_round_trips() -> None:
    first, text, checkpoint = second_checkpoint()
    assert verify(text) == checkpoint
    assert verify(text).previous == checkpoint_hash(first)


@given(
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    count=st.integers(0, 2**64 - 1),
    previous=st.none() | st.binary(min_size=32, max_size=32),
    timestamp=st.integers(0, 2**40),
)
def test_any_checkpoint_round_trips(
    size: int, root: bytes, count: int, previous: bytes | None, timestamp: int
) -> None:
    checkpoint = Checkpoint(ORIGIN, size, root, count, previous, timestamp)
    assert verify(sign_checkpoint(KEY, checkpoint)) == checkpoint


def test_our_note_signer_reproduces_go_sumdb_note() -> None:
    # Ed25519 is deterministic, so the same key and text give Go's published note exactly.
    assert sign_note(go_example_key(), "PeterNeumann", GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, "PeterNeumann", go_example_key().verify_key) == GO_TEXT
    assert go_example_key().verify_key.verifier_key("PeterNeumann") == GO_VERIFIER_KEY


def test_checkpoint_hash_covers_the_signed_body_only() -> None:
    first, _, _ = second_checkpoint()
    body = first[: first.rindex("\n\n") + 1]
    assert checkpoint_hash(first) == hashlib.sha256(body.encode()).digest()
    cosigned = first + f"\u2014 witness.example {base64.b64encode(bytes(68)).decode()}\n"
    assert checkpoint_hash(cosigned) == checkpoint_hash(first)
    assert verify(cosigned) == FIRST  # a signature by an unknown key is ignored


def _flip(text: str, index: int) -> str:
    return text[:index] + chr(ord(text[index]) ^ 1) + text[index + 1 :]


@pytest.mark.parametrize("line", range(6))
def test_a_changed_body_line_is_refused(line: int) -> None:
    _, text, _ = second_checkpoint()
    start = sum(len(part) + 1 for part in text.split("\n")[:line])
    with pytest.raises(CheckpointError):
        verify(_flip(text, start))


def test_a_changed_value_that_still_parses_fails_the_signature() -> None:
    _, text, _ = second_checkpoint()
    for old, new in (("\n5\n", "\n6\n"), ("records 1000017", "records 1000016"),
                     ("time 1764822060", "time 1764822061")):  # fmt: skip
        with pytest.raises(CheckpointError, match="does not verify"):
            verify(text.replace(old, new))


def test_a_changed_signature_is_refused() -> None:
    _, text, _ = second_checkpoint()
    signature_start = text.rindex(" ") + 1
    for offset in (1, 3):  # in the key ID: a key nobody trusts
        with pytest.raises(CheckpointError, match="not signed by a trusted key"):
            verify(_flip(text, signature_start + offset))
    for offset in (10, 40, 80):  # in the signature
        with pytest.raises(CheckpointError, match="does not verify"):
            verify(_flip(text, signature_start + offset))


def test_a_checkpoint_by_a_swapped_key_is_refused() -> None:
    forged = sign_checkpoint(OTHER_KEY, FIRST)
    with pytest.raises(CheckpointError, match="not signed by a trusted key") as caught:
        verify(forged)
    assert OTHER_KEY.key_id(ORIGIN).hex() in caught.value.message
    assert KEY.key_id(ORIGIN).hex() in caught.value.message
    assert caught.value.code == "KS-E052"
    assert isinstance(caught.value, VaultError)


def test_a_signature_under_the_pinned_key_id_by_another_key_is_refused() -> None:
    # The key ID is short and not secret: a forger can claim it, never make it verify.
    text = sign_checkpoint(OTHER_KEY, FIRST)
    body, line = text.split("\n\n")
    blob = base64.b64decode(line.split(" ")[2])
    claimed = base64.b64encode(KEY.key_id(ORIGIN) + blob[4:]).decode()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify(f"{body}\n\n\u2014 {ORIGIN} {claimed}\n")


def test_a_valid_signature_under_another_key_name_is_not_trusted() -> None:
    # A key is its name and its ID together: the same ID under another name is unknown.
    text = sign_checkpoint(KEY, FIRST).replace(f"\u2014 {ORIGIN} ", "\u2014 other.example ")
    with pytest.raises(CheckpointError, match="not signed by a trusted key"):
        verify(text)


def test_either_of_two_pinned_keys_verifies_during_a_rotation() -> None:
    text = sign_checkpoint(OTHER_KEY, FIRST)
    keys = [KEY.verify_key, OTHER_KEY.verify_key]
    assert parse_and_verify(text, keys, expected_origin=ORIGIN) == FIRST


def test_a_dropped_previous_link_is_refused() -> None:
    _, text, _ = second_checkpoint()
    dropped = re.sub(r"previous \S+\n", "", text)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify(dropped)


def test_reordered_lines_are_refused() -> None:
    _, text, _ = second_checkpoint()
    body, signatures = text.split("\n\n")
    lines = body.split("\n")
    for i, j in ((0, 1), (1, 2), (3, 5), (4, 5)):
        swapped = list(lines)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        with pytest.raises(CheckpointError):
            verify("\n".join(swapped) + "\n\n" + signatures)


def test_a_checkpoint_of_another_vault_is_refused() -> None:
    other = replace(FIRST, origin="kubesentinel.example/vault/other")
    with pytest.raises(CheckpointError, match="not of this vault"):
        verify(sign_checkpoint(KEY, other))


ROOT = base64.b64encode(EMPTY_ROOT).decode()
# The same 32 bytes with a spare bit of the last base64 digit set: one hash, two spellings.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NON_CANONICAL_ROOT = ROOT[:-2] + _ALPHABET[_ALPHABET.index(ROOT[-2]) ^ 1] + "="


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n1\n",  # two lines only
        f"{ORIGIN}\n01\n{ROOT}\nrecords 1\ntime 1\n",  # a leading zero
        f"{ORIGIN}\n\u0661\n{ROOT}\nrecords 1\ntime 1\n",  # an Arabic-Indic digit one
        f"{ORIGIN}\n{2**64}\n{ROOT}\nrecords 1\ntime 1\n",  # beyond 64 bits
        f"{ORIGIN}\n1\n{base64.b64encode(b'short').decode()}\nrecords 1\ntime 1\n",
        f"{ORIGIN}\n1\n{ROOT[:-1]}\nrecords 1\ntime 1\n",  # no padding
        f"{ORIGIN}\n1\n{NON_CANONICAL_ROOT}\nrecords 1\ntime 1\n",
        f"{ORIGIN}\n1\n{ROOT}\ntime 1\n",  # no record count
        f"{ORIGIN}\n1\n{ROOT}\nrecords 1\n",  # no time
        f"{ORIGIN}\n1\n{ROOT}\nrecords 1\ntime 1\nextra 1\n",
        f"{ORIGIN}\n1\n{ROOT}\nrecords  1\ntime 1\n",
        f"{ORIGIN}\n1\n{ROOT}\nrecords 1\nprevious {ROOT}\nprevious {ROOT}\ntime 1\n",
    ],
)
def test_malformed_checkpoints_are_refused_though_signed(body: str) -> None:
    with pytest.raises(CheckpointError, match="malformed checkpoint"):
        verify(sign_note(KEY, ORIGIN, body))


@pytest.mark.parametrize("text", ["", "no blank line\n\u2014 name AAAAAAAA\n", "body\n\n"])
def test_text_that_is_no_signed_note_is_refused(text: str) -> None:
    with pytest.raises(CheckpointError, match="malformed note"):
        verify(text)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("\u2014", "-"),  # a hyphen is not the em dash
        lambda t: t.replace("\u2014", "\u2013"),  # nor is an en dash
        lambda t: t[:-1],  # no final newline
        lambda t: t.replace("\n\n", "\n"),  # no blank line
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("time", "time\t"),
        lambda t: t.rstrip("\n").rstrip("=") + "\n",  # base64 without its padding
        lambda t: t + "\u2014 \n",  # a signature line without a name
        lambda t: t.replace(f"\u2014 {ORIGIN}", f"\u2014 {ORIGIN}+x"),
        lambda t: t + "\ud800",  # not UTF-8
        lambda t: t + ("\u2014 w AAAAAAAA\n" * 100),  # more signatures than we read
    ],
)
def test_malformed_notes_are_refused(mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(CheckpointError, match="malformed"):
        verify(mangle(sign_checkpoint(KEY, FIRST)))


def test_a_note_without_a_trusted_signature_is_refused() -> None:
    cosignature_only = sign_note(OTHER_KEY, "witness.example", FIRST.body())
    with pytest.raises(CheckpointError, match="not signed by a trusted key"):
        verify(cosignature_only)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"origin": ""}, "not an origin"),
        ({"origin": "two\nlines"}, "not an origin"),
        ({"size": -1}, "unsigned 64-bit"),
        ({"record_count": 2**64}, "unsigned 64-bit"),
        ({"timestamp": -1}, "never negative"),
        ({"root_hash": b"short"}, "32 bytes"),
        ({"previous": b"short"}, "32 bytes"),
    ],
)
def test_an_impossible_checkpoint_cannot_be_made(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(FIRST, **changes)  # type: ignore[arg-type]


def test_an_origin_that_is_no_key_name_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="not a key name"):
        sign_checkpoint(KEY, replace(FIRST, origin="has space"))
    with pytest.raises(ValueError, match="no empty line"):
        sign_note(KEY, ORIGIN, "a\n\nb\n")
    with pytest.raises(ValueError, match="control"):
        sign_note(KEY, ORIGIN, "a\tb\n")


def test_the_example_in_the_docs_is_a_valid_checkpoint() -> None:
    # docs/vault-integrity.md shows a checkpoint signed by KEY; it must stay a true example.
    doc = (Path(__file__).parents[2] / "docs" / "vault-integrity.md").read_text()
    example = doc.split("## Checkpoints", 1)[1].split("```\n", 2)[1]
    checkpoint = parse_and_verify(example, KEY.verify_key, expected_origin=example.split("\n")[0])
    assert (checkpoint.size, checkpoint.record_count) == (42, 86017)
    assert KEY.verify_key.verifier_key(checkpoint.origin) in doc


def test_public_names_are_pinned() -> None:
    from kubesentinel.vault import checkpoint as module

    assert sorted(module.__all__) == [
        "Checkpoint",
        "checkpoint_hash",
        "open_note",
        "parse_and_verify",
        "sign_checkpoint",
        "sign_note",
    ]
