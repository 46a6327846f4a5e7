"""The helpers behind the registry allow-list and the credential rules, case by case."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesentinel.config import load_config
from kubesentinel.errors import ConfigError
from kubesentinel.static.predicates.images import allowed_by, registry_of
from kubesentinel.static.predicates.secrets import (
    credential_format,
    entropy,
    key_name,
    redacted,
    secret_kind,
    sensitive_name,
)


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("nginx", "docker.io"),
        ("nginx:1.27", "docker.io"),
        ("bitnami/redis:7", "docker.io"),
        ("docker.io/library/nginx", "docker.io"),
        ("ghcr.io/org/app:1", "ghcr.io"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
        ("Registry.Example.com/App", "registry.example.com"),
        ("registry:5000/app@sha256:" + "a" * 64, "registry:5000"),
    ],
)
def test_registry_is_resolved_like_the_container_runtime(image: str, registry: str) -> None:
    assert registry_of(image) == registry


@pytest.mark.parametrize(
    ("image", "allowed", "ok"),
    [
        ("registry.example.com/shop/web:1", ("registry.example.com",), True),
        ("registry.example.com.evil.io/web:1", ("registry.example.com",), False),
        ("registry.example.com/shop/web:1", ("registry.example.com/ops/",), False),
        ("registry.example.com/ops/agent:1", ("registry.example.com/ops",), True),
        ("nginx:1.27", ("docker.io/library/",), True),
        ("bitnami/redis:7", ("docker.io/library/",), False),
        ("bitnami/redis:7", ("docker.io",), True),
        ("docker.io/bitnami/redis:7", ("docker.io/bitnami/",), True),
        ("ghcr.io/org/app", ("docker.io", "quay.io"), False),
    ],
)
def test_allow_list_entries_are_hosts_or_repository_prefixes(
    image: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert allowed_by(image, allowed) is ok


def test_allowed_registries_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("static:\n  allowed_registries: [registry.example.com]\n")
    assert load_config(str(path)).static.allowed_registries == ("registry.example.com",)
    path.write_text("static:\n  allowed_registries: registry.example.com\n")
    with pytest.raises(ConfigError, match="list of strings"):
        load_config(str(path))


def test_entropy_separates_words_from_random_keys() -> None:
    assert entropy("") == 0.0
    assert entropy("aaaa") == 0.0
    assert entropy("passwordpassword") < 3.5
    assert entropy("q8Xv3Lm9Tz2Rk7Wp5Ny4Hb6Jc1Fd0Gs") > 4.5


def test_redaction_never_shows_a_value_in_full() -> None:
    assert redacted("hunter2") == "(7 characters)"
    assert redacted("  correct-horse-battery  ") == '"cor..." (21 characters)'
    value = "AKIAIOSFODNN7EXAMPLE"
    assert value not in redacted(value)


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("DB_PASSWORD", "changeme", "a literal credential"),
        ("DB_PASSWORD", "${DB_PASSWORD}", None),
        ("DB_PASSWORD", "/run/secrets/db", None),
        ("anything", "AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("webhook", "postgres://app:s3cret@db:5432/shop", "a URL with an embedded password"),
        ("signing_key", "q8Xv3Lm9Tz2Rk7Wp5Ny4Hb6Jc1Fd0Gs", "a high-entropy secret"),
        ("signing_key", "app.kubernetes.io/name", None),  # words, no digits
        ("cache_key", "5d41402abc4b2a76b9719d911017c592", None),  # a hex digest
        ("description", "q8Xv3Lm9Tz2Rk7Wp5Ny4Hb6Jc1Fd0Gs", None),  # no secret-like name
    ],
)
def test_secret_kind(name: str, value: str, kind: str | None) -> None:
    assert secret_kind(name, value) == kind


@pytest.mark.parametrize(
    ("name", "sensitive", "key"),
    [
        ("pwd", True, False),
        ("MYSQL_PWD", True, False),
        ("DB_PASS", True, False),
        ("smtpPass", True, False),
        ("PASS_THROUGH", False, False),  # pass is the last word only
        ("COMPASS_URL", False, False),
        ("db_passwd", True, False),
        ("SERVICE_SECRET", True, False),
        ("refresh_token", True, False),
        ("TOKENIZER", False, False),
        ("azure_batch_key", False, True),
        ("accessKey", False, True),
        ("OCI_CLI_KEY_CONTENT", False, True),
        ("KEY_PATH", False, False),
        ("public_key", False, False),
        ("SSH_PUB_KEY", False, False),
        ("KEY_ID", False, False),
    ],
)
def test_credential_names(name: str, sensitive: bool, key: bool) -> None:
    assert (sensitive_name(name), key_name(name)) == (sensitive, key)


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
        ("-----begin private key-----", "a private key"),  # any case, not only PRIVATE
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("ASIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("ghp_" + "a1" * 18, "a GitHub token"),
        ("ghs_" + "a1" * 18, "a GitHub token"),
        ("github_pat_" + "a1" * 20, "a GitHub token"),
        ("glpat-" + "a1" * 10, "a GitLab token"),
        ("xoxb-" + "1" * 10, "a Slack token"),
        ("AIza" + "a" * 35, "a Google API key"),
        ("rk_live_" + "a1" * 10, "a Stripe live key"),
        ("eyJhbGciOiJI.eyJzdWIiOiIx.c2ln", "a JSON Web Token"),
        ("https://app:s3cret@db.example.com", "a URL with an embedded password"),
    ],
)
def test_credential_formats_are_found_inside_longer_text(token: str, kind: str) -> None:
    # Each format is tried only when one of its literal hints occurs: a hint that a real match
    # can lack would hide credentials, which this catches.
    assert credential_format(f"first line\nsetting = {token}\nlast line") == kind
