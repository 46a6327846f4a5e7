"""config.yaml: the design's five sections, strictly typed. Errors name the file and line."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kubesentinel.errors import ConfigError
from kubesentinel.models import Severity
from kubesentinel.static.context import LATEST_PSS
from kubesentinel.static.fix.defaults import FixDefaults, parse_fix_defaults
from kubesentinel.static.skips import SkipRule, parse_skips
from kubesentinel.static.yamldoc import LineDict, parse_file

MAX_CONFIG_BYTES = 1024 * 1024
REPORT_FORMATS = ("json", "markdown", "html")


@dataclass(frozen=True, slots=True)
class StaticConfig:
    # Extra rule files or a directory of them; empty: the built-in rules only.
    rules_path: str = ""
    severity_threshold: str = "medium"
    # Pod Security Standards version the PSS rules follow: "latest" or "v1.30".
    pss_version: str = "latest"
    max_file_size_mb: int = 32
    # Registries (or registry/path/ prefixes) images may come from; empty: any registry.
    allowed_registries: tuple[str, ...] = ()
    # Findings not to report, with a reason (see docs/scanning.md, "Suppressions and baselines").
    skip: tuple[SkipRule, ...] = ()
    # Resource requests and limits `kubesentinel fix` writes where a container has none.
    fix_defaults: FixDefaults = field(default_factory=FixDefaults)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    falco_socket: str = "unix:///var/run/falco/falco.sock"
    buffer_size: int = 10000
    # Bytes of alert data the live sources may hold in memory before refusing more (64 MiB).
    buffer_bytes: int = 64 * 1024 * 1024
    workers: int = 4
    # An incident closes after this many seconds without a new qualifying alert...
    incident_gap: float = 300.0
    # ...and never spans more than this: a longer episode continues as a new, linked incident.
    incident_max_duration: float = 3600.0


@dataclass(frozen=True, slots=True)
class AIConfig:
    # The analyzer's gRPC service the monitor scores through; empty: in-process (model_path).
    endpoint: str = ""
    # TLS to ai.endpoint (PEM file paths, read when the monitor starts): the CA that signed the
    # service's certificate (empty: the system's roots for https://; any of the three turns a
    # bare host:port into TLS), and the client certificate and key a service started with
    # --tls-client-ca requires.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # Kept for the design's users; models are stored in a format that cannot run code.
    model_path: str = "./ai-module/models/baseline.pkl"
    threshold: float = 0.75


@dataclass(frozen=True, slots=True)
class ForensicsConfig:
    storage_path: str = "./forensics"
    # A PostgreSQL vault shared by several monitors (postgresql://USER@HOST/DB?schema=NAME);
    # empty: the SQLite file in storage_path (docs/vault.md, PostgreSQL).
    storage_url: str = ""
    retention_days: int = 90
    max_size_mb: int = 1000
    # The Ed25519 key that signs the store's checkpoints; empty: vault-signing-key.pem in the
    # store's directory, created on first use (docs/vault.md).
    signing_key: str = ""
    # Retention policy files or directories of them, in order; empty: the shipped default
    # policy (docs/vault-policies.md).
    policies: tuple[str, ...] = ()
    # Seconds before and after an incident whose events of its workload are kept with it;
    # None: the policy's context window.
    context_window_s: int | None = None
    # Age in days after which classes that roll up (noise) become hourly counts; None: each
    # class's rollup_after_days from the policy.
    rollup_after_days: int | None = None
    # How often the monitor applies the retention policy; 0: never (run `vault prune`).
    prune_interval_s: int = 3600


@dataclass(frozen=True, slots=True)
class ReportingConfig:
    formats: tuple[str, ...] = ("json", "markdown")
    output_path: str = "./reports"
    # The monitor writes an incident's report (each format, into output_path) when it opens
    # or its severity rises; off by default: reports hold evidence, and take disk space.
    on_incident: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    static: StaticConfig = field(default_factory=StaticConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    ai: AIConfig = field(default_factory=AIConfig)
    forensics: ForensicsConfig = field(default_factory=ForensicsConfig)
    reporting: ReportingConfig = field(default_factory=ReportingConfig)
    source: str = "<defaults>"


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _severity(value: Any) -> str | None:
    try:
        Severity.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _unit_interval(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _pss_version(value: Any) -> str | None:
    try:
        parse_pss_version(value)
    except ValueError as exc:
        return str(exc)
    return None


def _storage_url(value: Any) -> str | None:
    from kubesentinel.runtime.store.urls import parse_postgres_url

    if value == "":
        return None
    try:
        parse_postgres_url(value)
    except ValueError as exc:
        return str(exc)
    return None


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _optional_int(key: str, low: int, high: int) -> Callable[[Any, str, int], int | None]:
    """A parser for an integer key that may be null (``None``: the policy decides)."""

    def parse(value: Any, file: str, line: int) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(
                f"{key} must be an integer or null, got {type(value).__name__} {value!r}",
                file=file,
                line=line,
            )
        if not low <= value <= high:
            raise ConfigError(
                f"{key} must be between {low:,} and {high:,}, got {value}", file=file, line=line
            )
        return value

    return parse


def _report_formats(value: Any) -> str | None:
    if not value:
        return "must list at least one format"
    unknown = [v for v in value if v not in REPORT_FORMATS]
    return (
        f"unknown report format(s) {unknown} (allowed: {', '.join(REPORT_FORMATS)})"
        if unknown
        else None
    )


Check = Callable[[Any], str | None]
_CHECKS: Mapping[str, Check] = {
    "static.severity_threshold": _severity,
    "static.pss_version": _pss_version,
    "static.max_file_size_mb": _positive,
    "runtime.buffer_size": _positive,
    "runtime.buffer_bytes": _positive,
    "runtime.workers": _positive,
    "runtime.incident_gap": _positive,
    "runtime.incident_max_duration": _positive,
    "ai.threshold": _unit_interval,
    "forensics.retention_days": _positive,
    "forensics.max_size_mb": _positive,
    "forensics.storage_url": _storage_url,
    "forensics.prune_interval_s": _non_negative,
    "reporting.formats": _report_formats,
}
# Keys whose value is structured: parsed by their own module, which raises ConfigError.
_PARSERS: Mapping[str, Callable[[Any, str, int], Any]] = {
    "static.skip": parse_skips,
    "static.fix_defaults": parse_fix_defaults,
    # The policy's own bounds: a window up to a week, a roll-up age up to 100 years.
    "forensics.context_window_s": _optional_int("forensics.context_window_s", 0, 604_800),
    "forensics.rollup_after_days": _optional_int("forensics.rollup_after_days", 0, 36_500),
}
_SECTIONS: Mapping[str, type] = {
    "static": StaticConfig,
    "runtime": RuntimeConfig,
    "ai": AIConfig,
    "forensics": ForensicsConfig,
    "reporting": ReportingConfig,
}


# Keys naming files or directories. A relative value written in a config file is read from the
# file's directory, so a config works from any working directory (defaults stay relative to it).
_PATH_KEYS = frozenset({
    "static.rules_path", "runtime.falco_socket", "ai.tls_ca", "ai.tls_cert", "ai.tls_key",
    "ai.model_path", "forensics.storage_path", "forensics.signing_key", "forensics.policies",
    "reporting.output_path",
})  # fmt: skip
# Inputs a person writes must exist when the config loads: a typo must not drop the team's
# rules or policies silently. The others are read or created by the command that uses them
# (TLS files where the monitor runs, a model that `ai train` writes; docs/configuration.md).
_MUST_EXIST = frozenset({"static.rules_path", "forensics.policies"})


def _resolved(dotted: str, value: Any, config_file: str, line: int) -> Any:
    """``value`` (a path, or a tuple of them) read from ``config_file``'s directory."""
    if isinstance(value, tuple):
        return tuple(_resolved(dotted, item, config_file, line) for item in value)
    if not value or (dotted == "runtime.falco_socket" and ("://" in value or value == "-")):
        return value  # empty means "unset"; URIs name absolute paths already
    path = os.path.normpath(os.path.join(os.path.dirname(config_file), os.path.expanduser(value)))
    if dotted in _MUST_EXIST and not os.path.exists(path):
        raise ConfigError(
            f"{dotted}: no such file or directory: {path}",
            file=config_file,
            line=line,
            hint="relative paths are read from the config file's directory; "
            'fix the path, or remove the key (or set it to "" or [])',
        )
    return path


def parse_pss_version(text: str) -> tuple[int, int] | None:
    """'latest' -> None; 'v1.30' or '1.30' -> (1, 30); versions we do not know are refused."""
    if text == "latest":
        return None
    major, dot, minor = text.removeprefix("v").partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"PSS version {text!r} must be 'latest' or like 'v1.30'")
    version = int(major), int(minor)
    if not (1, 0) <= version <= LATEST_PSS:
        # A typo (v9.99) must not silently apply the latest policy, nor v2 an unknown one.
        raise ValueError(
            f"PSS version {text!r} is not known: use 'latest' or v1.0 to v1.{LATEST_PSS[1]}"
        )
    return version


def load_config(path: str | None) -> Config:
    """Built-in defaults, overridden by the file at ``path`` when given."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", file=path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("config file larger than 1 MB", file=path)
    parsed = parse_file(data, path)
    if parsed.errors:
        first = parsed.errors[0]
        raise ConfigError(first.message, file=path, line=first.line)
    if not parsed.documents:
        return replace(Config(), source=path)
    if len(parsed.documents) > 1:
        raise ConfigError(
            "config holds more than one YAML document", file=path, line=parsed.documents[1].line
        )
    root = parsed.documents[0].value
    if not isinstance(root, LineDict):
        raise ConfigError(
            "config must be a mapping of sections", file=path, line=parsed.documents[0].line
        )
    sections: dict[str, Any] = {}
    for name, value in root.items():
        line = root.key_lines[name]
        if name not in _SECTIONS:
            raise ConfigError(
                f"unknown section {name!r} (allowed: {', '.join(_SECTIONS)})", file=path, line=line
            )
        sections[name] = _section(name, value, path, line)
    return Config(**sections, source=path)


def _section(name: str, value: Any, path: str, line: int) -> Any:
    cls = _SECTIONS[name]
    if value is None:
        return cls()
    if not isinstance(value, LineDict):
        raise ConfigError(f"section {name!r} must be a mapping", file=path, line=line)
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, item in value.items():
        key_line = value.key_lines[key]
        if key not in known:
            raise ConfigError(
                f"unknown key {name}.{key} (allowed: {', '.join(known)})", file=path, line=key_line
            )
        dotted = f"{name}.{key}"
        parser = _PARSERS.get(dotted)
        if parser is not None:
            values[key] = parser(item, path, key_line)
            continue
        values[key] = _typed(dotted, item, getattr(cls(), key), path, key_line)
        if dotted in _PATH_KEYS:
            values[key] = _resolved(dotted, values[key], path, key_line)
    return cls(**values)


def _typed(dotted: str, value: Any, default: Any, path: str, line: int) -> Any:
    expected = type(default)
    ok: bool
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif expected is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        want = {str: "a string", int: "an integer", float: "a number", tuple: "a list of strings",
                bool: "true or false"}  # fmt: skip
        raise ConfigError(
            f"{dotted} must be {want[expected]}, got {type(value).__name__} {value!r}",
            file=path,
            line=line,
        )
    check = _CHECKS.get(dotted)
    problem = check(value) if check else None
    if problem:
        raise ConfigError(
            f"{dotted} {problem}" if problem.startswith("must") else f"{dotted}: {problem}",
            file=path,
            line=line,
        )
    return value
