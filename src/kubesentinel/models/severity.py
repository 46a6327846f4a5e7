"""Finding severities, ordered so thresholds compare naturally."""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read a severity name in any case; raise ValueError naming the valid ones."""
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            valid = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {valid})") from None

    @property
    def label(self) -> str:
        return _LABELS[self]  # reports ask once per finding: name.lower() via the enum was slow

    @property
    def security_score(self) -> str:
        """CVSS-like score GitHub code scanning uses to bucket alerts."""
        return {1: "3.0", 2: "5.5", 3: "8.0", 4: "9.5"}[self.value]


_LABELS = {severity: severity.name.lower() for severity in Severity}
