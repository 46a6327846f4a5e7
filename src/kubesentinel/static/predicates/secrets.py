"""Predicates on secrets reaching containers through the environment.

What counts as a literal credential (sensitive_literal_env), decided once here:

* A name is sensitive when, ignoring case and separators (``_``, ``-``, ``.``, camelCase), it
  contains password, passwd, secret, credential, api key or private key, one of its words
  ends in token (``GITHUB_TOKEN``, ``accessToken``; ``TOKENIZER`` is not a token), or a word
  is ``pwd`` or its last word is ``pass`` (``MYSQL_PWD``, ``DB_PASS``; ``PASS_THROUGH`` is not).
* Env names ending in key (``AZURE_BATCH_KEY``, ``accessKey``, ``OCI_CLI_KEY_CONTENT``) are
  weaker: ``CACHE_KEY`` or ``PARTITION_KEY`` name no secret. A public key (``SSH_PUBLIC_KEY``)
  never counts; for the others the value must also not read as an identifier made of letters
  only (``users``, ``tenant_id``, ``orders.created``) or be an ARN, on top of the checks below.
* Its value is a credential unless it is: empty; a boolean, number or duration (``true``,
  ``8``, ``30s``: settings such as ``PASSWORD_MIN_LENGTH``); a file path (``/run/secrets/db``);
  a URL without a password; built from ``$(VAR)`` references; or a placeholder that cannot
  work as a secret (``${VAR}``, ``{{ .Values.x }}``, ``<password>``, ``xxxx``, ``****``,
  ``REPLACE_ME``, ``TODO``). Default passwords such as ``changeme`` or ``password`` ARE
  flagged: they are what the pod runs with until someone changes them.
* Any value, whatever the name, is a credential when it holds a private key block, a
  known token format (AWS access key id, GitHub, GitLab, Slack, Google API key, Stripe live
  key, JWT) or a URL with an embedded password.

Messages name the variable and the kind of credential, never the value.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import (
    Container,
    Path,
    containers,
    mapping,
    pod_spec,
    sequence,
)
from kubesentinel.static.predicates import Params, Violation, predicate

_SENSITIVE_PARTS = ("password", "passwd", "secret", "credential", "apikey", "privatekey")
_KEY_CONTENT = frozenset({"content", "data", "material", "value", "b64", "base64", "pem"})
# A key-named value that is letters in dotted, dashed or slashed segments names something
# (a cache key, a partition key, a label); secrets have digits or symbols in them.
_IDENTIFIER = re.compile(r"[A-Za-z]+([._:/-][A-Za-z]+)*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

_VAR_REF = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.-]*\)")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_DURATION_OR_SIZE = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h|d|w|[KMGTPE]i?|[kmgtpe]b?))+")
_PATH = re.compile(r"(/|\./|\.\./|~/|[A-Za-z]:\\)\S*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
# Unrendered templates: ${VAR} (envsubst), {{ .Values.x }} (Helm), <password> (docs).
_TEMPLATE = re.compile(r"\$\{[^}]*\}|\{\{.*?\}\}", re.DOTALL)
_ANGLE_PLACEHOLDER = re.compile(r"<[^<>]+>")
_MASK = re.compile(r"([xX]+|\*+|\.+|#+)")
_BOOLEAN_WORDS = frozenset(
    {"true", "false", "yes", "no", "on", "off", "y", "n", "enabled", "disabled"}
)
_PLACEHOLDERS = frozenset(
    {"replaceme", "replace", "todo", "tbd", "fixme", "placeholder", "redacted",
     "none", "null", "nil", "undefined", "na", "empty", "unset", "notset"}
)  # fmt: skip

# (description, hints, pattern): formats that are credentials whatever the variable is called.
# A match needs one of the hints verbatim; testing them first spares most values the regex
# scan (the patterns cannot use a literal prefix search, and ConfigMaps hold whole files).
_CREDENTIAL_FORMATS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "a private key",
        ("---",),
        re.compile(r"-{3,}\s*BEGIN\s+[A-Z0-9 ]*PRIVATE\s+KEY", re.IGNORECASE),
    ),
    ("an AWS access key id", ("AKIA", "ASIA"), re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "a GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{40,})"),
    ),
    ("a GitLab token", ("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a Stripe live key", ("k_live_",), re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}")),
    (
        "a JSON Web Token",
        ("eyJ",),
        re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*", re.ASCII),
    ),
    (
        "a URL with an embedded password",
        ("://",),
        re.compile(r"://[^/:@\s]*:(?!\$[({]|\{\{)[^/@\s]+@"),
    ),
)


@functools.lru_cache(maxsize=4096)  # names repeat across a scan: env vars, annotation keys
def sensitive_name(name: str) -> bool:
    """password/secret/credential/api key/private key anywhere, or a word ending in token."""
    compact = _NOT_ALNUM.sub("", name.lower())
    if any(part in compact for part in _SENSITIVE_PARTS):
        return True
    words = [word.lower() for word in _WORD_SPLIT.split(_CAMEL.sub(" ", name)) if word]
    return (
        "pwd" in words
        or words[-1:] == ["pass"]
        or any(word.endswith(("token", "tokens")) for word in words)
    )


@functools.lru_cache(maxsize=4096)
def key_name(name: str) -> bool:
    """An env name ending in key, or key and its content (``OCI_CLI_KEY_CONTENT``), not public."""
    words = [word.lower() for word in _WORD_SPLIT.split(_CAMEL.sub(" ", name)) if word]
    if "public" in words or "pub" in words:
        return False
    if words[-1:] and words[-1] in _KEY_CONTENT:
        words.pop()
    return words[-1:] in (["key"], ["keys"])


def looks_like_key_value(value: Any) -> bool:
    """A literal that could work as a key: a secret value that is no identifier or ARN."""
    if not looks_like_secret_value(value):
        return False
    text = value.strip()
    return not (_IDENTIFIER.fullmatch(text) or text.startswith("arn:"))


def credential_format(value: str) -> str | None:
    """Which known credential format the value contains, if any."""
    for description, hints, pattern in _CREDENTIAL_FORMATS:
        for hint in hints:
            if hint in value:
                if pattern.search(value):
                    return description
                break
    return None


def looks_like_secret_value(value: Any) -> bool:
    """A non-empty literal that could work as a credential (see the module docstring)."""
    if not isinstance(value, str):
        return False  # booleans and numbers parsed from YAML are settings, not secrets
    text = value.strip()
    if not text or _VAR_REF.search(text) or _TEMPLATE.search(text):
        return False  # built from references the kubelet or a template engine fills in
    lowered = _NOT_ALNUM.sub("", text.lower())
    if lowered in _BOOLEAN_WORDS or lowered in _PLACEHOLDERS:
        return False
    if _NUMBER.fullmatch(text) or _DURATION_OR_SIZE.fullmatch(text) or _MASK.fullmatch(text):
        return False
    # URLs with a password were caught as a credential format before this point.
    return not (_ANGLE_PLACEHOLDER.fullmatch(text) or _PATH.fullmatch(text) or _URL.fullmatch(text))


def _literal_env(container: Container) -> Iterator[tuple[int, str, Any]]:
    """(index, name, value) of env entries that set a literal value, not valueFrom."""
    for index, entry in enumerate(sequence(container.spec.get("env"))):
        if not isinstance(entry, dict) or entry.get("valueFrom") is not None:
            continue
        name = entry.get("name")
        yield index, name if isinstance(name, str) else f"env[{index}]", entry.get("value")


@predicate("sensitive_literal_env")
def sensitive_literal_env(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A container sets a literal env value that looks like a credential."""
    pod = pod_spec(obj)
    if pod is None:
        return
    for container in containers(pod):
        for index, name, value in _literal_env(container):
            found = credential_format(value) if isinstance(value, str) else None
            if found is None and (
                (sensitive_name(name) and looks_like_secret_value(value))
                or (key_name(name) and looks_like_key_value(value))
            ):
                found = "a literal credential"
            if found is not None:
                yield Violation(
                    f"{container.label} env var {name} holds {found} in plain text",
                    (*container.path, "env", index, "value"),
                )


def _secret_refs(container: Container) -> Iterator[Violation]:
    for index, entry in enumerate(sequence(container.spec.get("env"))):
        ref = mapping(mapping(mapping(entry).get("valueFrom")).get("secretKeyRef"))
        if ref:
            yield Violation(
                f'{container.label} reads Secret "{ref.get("name")}" into env var '
                f"{mapping(entry).get('name')}",
                (*container.path, "env", index, "valueFrom", "secretKeyRef"),
            )
    for index, entry in enumerate(sequence(container.spec.get("envFrom"))):
        ref = mapping(mapping(entry).get("secretRef"))
        if ref:
            yield Violation(
                f'{container.label} loads Secret "{ref.get("name")}" into its environment',
                (*container.path, "envFrom", index, "secretRef"),
            )


@predicate("secret_in_env_ref")
def secret_in_env_ref(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A container takes a Secret through env[].valueFrom.secretKeyRef or envFrom[].secretRef."""
    pod = pod_spec(obj)
    if pod is None:
        return
    for container in containers(pod):
        yield from _secret_refs(container)


# Words that name a secret-like value too weakly to flag a plain word, strongly enough to flag
# a high-entropy string: "apiKey: 3f9a..." yes, "key: app.kubernetes.io/name" no.
_WEAK_SECRET_WORDS = ("key", "auth", "salt", "signature", "sig", "hmac", "bearer", "cred")
_KEY_VALUE_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][\w.\-]*)\s*[:=]\s*(\S.*?)\s*$")
_HEX_DIGEST = re.compile(r"(sha\d+:)?[0-9a-f]{32,128}")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-.~]{16,}")
_MIXED = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])")
ENTROPY_BITS = 3.5  # bits per character; words and paths stay below, random keys above
# Annotations that hold no secret whatever their names say: the applied manifest (reported
# where it is declared), Helm checksums of Secrets, Vault agent paths to secrets.
_SAFE_ANNOTATION_PREFIXES = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "checksum/",
    "vault.hashicorp.com/",
    "secrets-store.csi.k8s.io/",
)


def entropy(text: str) -> float:
    """Shannon entropy of the characters, in bits per character."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for char in text:
        counts[char] = counts.get(char, 0) + 1
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def redacted(value: str) -> str:
    """A hint to find the value again that does not reveal it: length, and at most 3
    leading characters of a long value."""
    value = value.strip()
    if len(value) >= 12:
        return f'"{value[:3]}..." ({len(value)} characters)'
    return f"({len(value)} characters)"


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@functools.lru_cache(maxsize=4096)
def _weak_secret_name(name: str) -> bool:
    words = _WORD_SPLIT.split(_CAMEL.sub(" ", name).lower())
    return any(word in _WEAK_SECRET_WORDS for word in words)


def secret_kind(name: str, value: str) -> str | None:
    """Why a named literal looks like a credential, or None: a known format, a sensitive name
    with a usable literal, or a weaker name with a high-entropy token (not a hex digest)."""
    found = credential_format(value)
    if found is not None:
        return found
    text = _unquoted(value.strip())
    if sensitive_name(name) and looks_like_secret_value(text):
        return "a literal credential"
    if (
        _weak_secret_name(name)
        and _TOKEN_CHARS.fullmatch(text)
        and not _HEX_DIGEST.fullmatch(text)
        and _MIXED.search(text)  # random keys mix letters and digits; dotted names do not
        and entropy(text) >= ENTROPY_BITS
        and looks_like_secret_value(text)
    ):
        return "a high-entropy secret"
    return None


def _embedded(text: str) -> Iterator[tuple[str, str]]:
    """(name, value) of the key=value / key: value lines of a file kept in a ConfigMap."""
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";", "//")):
            continue
        match = _KEY_VALUE_LINE.match(line)
        if match:
            yield match.group(1), match.group(2)


@predicate("configmap_credentials")
def configmap_credentials(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A ConfigMap value (or a key=value line of a file it holds) looks like a credential."""
    for key, value in mapping(obj.body.get("data")).items():
        if not isinstance(value, str):
            continue
        path = ("data", key)
        single = "\n" not in value.strip()
        found = secret_kind(str(key), value) if single else credential_format(value)
        if found is not None:
            yield Violation(f'key "{key}" holds {found} {redacted(value)}', path)
            continue
        for name, inner in _embedded(value):
            found = secret_kind(name, inner)
            if found is not None:
                yield Violation(
                    f'key "{key}" sets {name} to {found} {redacted(_unquoted(inner))}', path
                )


@predicate("annotation_credentials")
def annotation_credentials(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """An annotation (of the object or its pod template) looks like a credential."""
    places: list[tuple[Path, Mapping[str, Any]]] = [
        (("metadata",), mapping(obj.body.get("metadata")))
    ]
    pod = pod_spec(obj)
    if pod is not None and pod.metadata_path != ("metadata",):
        places.append((pod.metadata_path, pod.metadata))
    for place, metadata in places:
        for key, value in mapping(metadata.get("annotations")).items():
            name = str(key)
            if not isinstance(value, str) or name.startswith(_SAFE_ANNOTATION_PREFIXES):
                continue
            found = secret_kind(name.rsplit("/", 1)[-1], value)
            if found is not None:
                yield Violation(
                    f'annotation "{name}" holds {found} {redacted(value)}',
                    (*place, "annotations", name),
                )
