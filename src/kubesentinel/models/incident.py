"""Alerts of one workload grouped over a time window, with a risk score and its reasons."""

from __future__ import annotations

from dataclasses import dataclass

from kubesentinel.models.event import Workload
from kubesentinel.models.severity import Severity


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    count: int  # repeats are counted, not repeated


@dataclass(frozen=True, slots=True)
class RiskReason:
    points: float
    reason: str  # "3 MITRE tactics in sequence: execution -> credential_access -> exfiltration"


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    workload: Workload
    first_ns: int
    last_ns: int
    severity: Severity
    risk_score: float  # 0..100
    reasons: tuple[RiskReason, ...]
    rules: tuple[RuleCount, ...]
    tactics: tuple[str, ...]  # in the order they were first seen
    techniques: tuple[str, ...]
    event_count: int
    event_ids: tuple[str, ...]
    posture: tuple[str, ...]  # static rule ids failing on this workload ("KS-0001", ...)
    status: str = "open"  # open until the window closes, then "closed"
