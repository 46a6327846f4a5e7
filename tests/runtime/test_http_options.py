"""The receiver's security policy: fails closed on a bad token variable, refuses to listen
off loopback unauthenticated, and names the file of any TLS option it cannot use."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.errors import UsageError
from kubesentinel.runtime.sources.http_options import HttpOptions, options_from_args

trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")


def args(**given: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "token_env": None, "tls_cert": None, "tls_key": None, "tls_client_ca": None,
        "allow_unauthenticated": False,
    }  # fmt: skip
    return argparse.Namespace(**{**defaults, **given})


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    files = {"cert": tmp_path / "tls.crt", "key": tmp_path / "tls.key", "ca": tmp_path / "ca.crt"}
    leaf.cert_chain_pems[0].write_to_path(str(files["cert"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    return {name: str(path) for name, path in files.items()}


def test_an_explicit_token_variable_that_is_unset_or_empty_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        options_from_args(args(token_env="KUBESENTINEL_HTTP_TOKEN"), "http://127.0.0.1:1", {})
    assert str(info.value) == (
        "--token-env KUBESENTINEL_HTTP_TOKEN: the variable is not set; export it or drop "
        "--token-env"
    )
    with pytest.raises(UsageError, match="MY_TOKEN: the variable is empty"):
        options_from_args(args(token_env="MY_TOKEN"), "http://127.0.0.1:1", {"MY_TOKEN": " "})
    got = options_from_args(args(token_env="MY_TOKEN"), "http://0.0.0.0:1", {"MY_TOKEN": "s3"})
    assert got == HttpOptions(token="s3")
    assert "s3" not in repr(got)


def test_the_default_variable_may_be_unset_on_loopback() -> None:
    for host in ("127.0.0.1", "127.3.0.1", "[::1]", "localhost"):
        assert options_from_args(args(), f"http://{host}:2801", {}) == HttpOptions()
    env = {"KUBESENTINEL_HTTP_TOKEN": "t0ken"}
    assert options_from_args(args(), "http://0.0.0.0:2801", env).token == "t0ken"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "[::]", "falco-receiver.local"])
def test_listening_off_loopback_unauthenticated_is_refused(host: str) -> None:
    with pytest.raises(UsageError, match="without authentication") as info:
        options_from_args(args(), f"http://{host}:2801", {})
    assert "--allow-unauthenticated" in (info.value.hint or "")


def test_allow_unauthenticated_lets_it_listen_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="kubesentinel.http"):
        got = options_from_args(args(allow_unauthenticated=True), "http://0.0.0.0:2801", {})
    assert got == HttpOptions()
    assert "without authentication" in caplog.text


def test_mutual_tls_counts_as_authentication(pem: dict[str, str]) -> None:
    given = args(tls_cert=pem["cert"], tls_key=pem["key"], tls_client_ca=pem["ca"])
    got = options_from_args(given, "https://0.0.0.0:2801", {})
    assert got.mutual_tls
    assert got.tls is not None
    server_only = args(tls_cert=pem["cert"], tls_key=pem["key"])
    with pytest.raises(UsageError, match="without authentication"):
        options_from_args(server_only, "https://0.0.0.0:2801", {})


def test_tls_options_need_https_and_https_needs_them(pem: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="--tls-cert apply to https:// sources only"):
        options_from_args(args(tls_cert=pem["cert"]), "http://127.0.0.1:1", {})
    with pytest.raises(UsageError, match="https needs a certificate and its key"):
        options_from_args(args(tls_cert=pem["cert"]), "https://127.0.0.1:1", {})
    with pytest.raises(UsageError, match="apply to https:// sources only"):
        options_from_args(args(tls_client_ca=pem["ca"]), "alerts.jsonl", {})


def test_unusable_tls_files_are_named(pem: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        (args(tls_cert=missing, tls_key=pem["key"]), f"--tls-cert {missing}: cannot read it"),
        (args(tls_cert=str(junk), tls_key=pem["key"]), f"--tls-cert {junk}: not a PEM cert"),
        (args(tls_cert=pem["cert"], tls_key=pem["cert"]), f"--tls-key {pem['cert']}: not a PEM"),
        (args(tls_cert=pem["ca"], tls_key=pem["key"]), f"--tls-key {pem['key']}: cannot be used"),
        (
            args(tls_cert=pem["cert"], tls_key=pem["key"], tls_client_ca=str(junk)),
            f"--tls-client-ca {junk}: not a PEM CA",
        ),
    ]
    for given, message in cases:
        with pytest.raises(UsageError) as info:
            options_from_args(given, "https://127.0.0.1:1", {})
        assert str(info.value).startswith(message)


def test_the_monitor_exits_2_before_listening(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBESENTINEL_HTTP_TOKEN", raising=False)
    store = ["--store", str(tmp_path / "ks.db")]
    assert main(["monitor", "--source", "http://0.0.0.0:0", *store]) == 2
    assert "--allow-unauthenticated" in capsys.readouterr().err
    code = main(["monitor", "--source", "http://127.0.0.1:0", "--token-env", "NOPE_X", *store])
    assert code == 2
    assert "--token-env NOPE_X: the variable is not set" in capsys.readouterr().err
    assert main(["monitor", "--source", "https://127.0.0.1:0", *store]) == 2
    assert "--tls-cert" in capsys.readouterr().err
    assert not (tmp_path / "ks.db").exists()
