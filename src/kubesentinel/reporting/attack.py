"""Names and pages of the MITRE ATT&CK tactics and techniques an incident can carry.

Ids come from Falco's rule tags (``runtime/mitre.py``); the table holds every technique id the
Falco rules tag (a test checks it against Falco's rule files) and names from ATT&CK Enterprise.
An id it does not know is still shown and linked, with its id as its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from kubesentinel.models.report import Attack
from kubesentinel.runtime.mitre import TACTIC_IDS

__all__ = ["TECHNIQUE_NAMES", "tactics", "techniques"]

_BASE: Final = "https://attack.mitre.org"

TACTIC_NAMES: Final[Mapping[str, str]] = {
    "reconnaissance": "Reconnaissance",
    "resource_development": "Resource Development",
    "initial_access": "Initial Access",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege_escalation": "Privilege Escalation",
    "defense_evasion": "Defense Evasion",
    "credential_access": "Credential Access",
    "discovery": "Discovery",
    "lateral_movement": "Lateral Movement",
    "collection": "Collection",
    "command_and_control": "Command and Control",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}
_TACTIC_ID: Final = {name: tactic_id for tactic_id, name in TACTIC_IDS.items()}

TECHNIQUE_NAMES: Final[Mapping[str, str]] = {
    "T1005": "Data from Local System",
    "T1020": "Automated Exfiltration",
    "T1046": "Network Service Discovery",
    "T1053.003": "Scheduled Task/Job: Cron",
    "T1055.008": "Process Injection: Ptrace System Calls",
    "T1059": "Command and Scripting Interpreter",
    "T1059.004": "Command and Scripting Interpreter: Unix Shell",
    "T1070": "Indicator Removal",
    "T1072": "Software Deployment Tools",
    "T1083": "File and Directory Discovery",
    "T1098": "Account Manipulation",
    "T1098.004": "Account Manipulation: SSH Authorized Keys",
    "T1132": "Data Encoding",
    "T1190": "Exploit Public-Facing Application",
    "T1195.002": "Supply Chain Compromise: Compromise Software Supply Chain",
    "T1204": "User Execution",
    "T1205.001": "Traffic Signaling: Port Knocking",
    "T1222.002": "File and Directory Permissions Modification: Linux and Mac",
    "T1485": "Data Destruction",
    "T1496": "Resource Hijacking",
    "T1505": "Server Software Component",
    "T1505.003": "Server Software Component: Web Shell",
    "T1543": "Create or Modify System Process",
    "T1546.004": "Event Triggered Execution: Unix Shell Configuration Modification",
    "T1548.001": "Abuse Elevation Control Mechanism: Setuid and Setgid",
    "T1548.003": "Abuse Elevation Control Mechanism: Sudo and Sudo Caching",
    "T1552": "Unsecured Credentials",
    "T1552.001": "Unsecured Credentials: Credentials In Files",
    "T1552.005": "Unsecured Credentials: Cloud Instance Metadata API",
    "T1555": "Credentials from Password Stores",
    "T1556": "Modify Authentication Process",
    "T1557.002": "Adversary-in-the-Middle: ARP Cache Poisoning",
    "T1564.001": "Hide Artifacts: Hidden Files and Directories",
    "T1565": "Data Manipulation",
    "T1610": "Deploy Container",
    "T1611": "Escape to Host",
    "T1620": "Reflective Code Loading",
    "T1622": "Debugger Evasion",
}


def tactics(names: Iterable[str]) -> tuple[Attack, ...]:
    """Tactics as ``runtime/mitre.py`` names them ("execution"), with their ids and pages."""
    found = []
    for name in names:
        tactic_id = _TACTIC_ID.get(name)
        if tactic_id is None:
            continue  # not a tactic mitre_of returns: nothing to link
        found.append(Attack(tactic_id, TACTIC_NAMES[name], f"{_BASE}/tactics/{tactic_id}/"))
    return tuple(found)


def techniques(ids: Iterable[str]) -> tuple[Attack, ...]:
    """Technique ids ("T1059.004"), each with its name and page (sub-techniques nest)."""
    return tuple(
        Attack(tid, TECHNIQUE_NAMES.get(tid, tid), f"{_BASE}/techniques/{tid.replace('.', '/')}/")
        for tid in ids
    )
