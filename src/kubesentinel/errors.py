"""Exception tree. Each class carries its exit code and a stable error code; only cli.py prints.

KubeSentinelError             exit 2 unless a subclass says otherwise
├── UsageError                bad command line (KS-E001)
├── ConfigError               config.yaml unreadable, unknown key, wrong type (KS-E002)
│   └── PolicyError           a vault retention policy file is invalid (KS-E003)
├── InputError                a manifest could not be read or parsed (KS-E010..)
├── RuleError                 a rule file is invalid (KS-E020)
├── BaselineError             a --baseline file is unreadable or not a baseline (KS-E040)
├── RuntimeLayerError         the runtime monitor (KS-E030)
│   ├── EventError            one event could not be parsed; dead-lettered (KS-E031)
│   ├── SourceError           a source cannot be opened or read (KS-E032)
│   ├── StoreError            the incident store cannot be opened or written (KS-E033)
│   └── DeadLetterError       the dead-letter file cannot be written or read (KS-E034)
├── VaultError                the forensic vault (KS-E050)
│   ├── KeyFileError          a key file is unreadable, not Ed25519, or readable by others (KS-E051)
│   ├── CheckpointError       a checkpoint is malformed, foreign, or not signed by the key (KS-E052)
│   └── BundleError           not a readable export bundle: truncated, another version (KS-E053)
├── AIError                   the behavioural analyzer (KS-E060)
│   ├── ModelError            unreadable, a pickle, tampered, another version (KS-E061)
│   └── ServiceError          the analyzer service: cannot listen, unreachable, refused (KS-E062)
└── ReportError               a report cannot be built or written: unknown incident, empty
                              period, unreadable evidence, output not writable (KS-E070)
"""

from __future__ import annotations


class KubeSentinelError(Exception):
    exit_code = 2
    code = "KS-E000"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint
        if code is not None:
            self.code = code

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"


class UsageError(KubeSentinelError):
    code = "KS-E001"


class ConfigError(KubeSentinelError):
    code = "KS-E002"


class PolicyError(ConfigError):
    """A retention policy file (vault) is invalid. Names the column too: policy files nest
    several keys on one line in flow style ("match: {tags: [x]}")."""

    code = "KS-E003"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, hint=hint)
        self.column = column

    @property
    def location(self) -> str:
        where = super().location
        return f"{where}:{self.column}" if where and self.line and self.column else where


class InputError(KubeSentinelError):
    code = "KS-E010"


class RuleError(KubeSentinelError):
    code = "KS-E020"


class BaselineError(KubeSentinelError):
    code = "KS-E040"


class RuntimeLayerError(KubeSentinelError):
    """Base of the runtime monitor's errors."""

    code = "KS-E030"


class EventError(RuntimeLayerError):
    """One event could not be parsed; it goes to the dead-letter file, the stream goes on."""

    code = "KS-E031"


class SourceError(RuntimeLayerError):
    """A source cannot be opened or read (bad URI, port in use, broker unreachable)."""

    code = "KS-E032"


class StoreError(RuntimeLayerError):
    """The incident store cannot be opened or written."""

    code = "KS-E033"


class DeadLetterError(RuntimeLayerError):
    """The dead-letter file cannot be written (disk full, no permission) or read back."""

    code = "KS-E034"


class VaultError(KubeSentinelError):
    """Base of the forensic vault's errors."""

    code = "KS-E050"


class KeyFileError(VaultError):
    """A signing key or pinned public key cannot be read, created, or trusted (a private key
    other users can read is refused)."""

    code = "KS-E051"


class CheckpointError(VaultError):
    """A checkpoint is malformed, names another log, or carries no valid signature by a
    trusted key (a forged checkpoint, or one signed by a swapped key)."""

    code = "KS-E052"


class BundleError(VaultError):
    """A ``vault export`` bundle cannot be checked at all: not a bundle, truncated, of another
    version, or malformed. Tampering found in a well-formed bundle is a report, not this."""

    code = "KS-E053"


class AIError(KubeSentinelError):
    """Base of the behavioural analyzer's errors."""

    code = "KS-E060"


class ModelError(AIError):
    """A model file cannot be used: unreadable, a pickle (refused: loading one runs code), not
    a KubeSentinel model, of an unsupported schema version, or changed since it was written
    (its sha256 digest does not match)."""

    code = "KS-E061"


class ServiceError(AIError):
    """The analyzer's gRPC service: ``ai serve`` cannot listen (or would listen beyond loopback
    without TLS), or a client (``RemoteScorer``) cannot reach it, is refused, or gets an answer
    that does not fit its request."""

    code = "KS-E062"


class ReportError(KubeSentinelError):
    """``kubesentinel report`` cannot build or write a report (exit 2). Evidence that reads
    but fails verification is not this: the report is written with a banner saying so."""

    code = "KS-E070"
