"""MITRE ATT&CK tactics and techniques from Falco rule tags.

Falco tags a rule with its tactic as ``mitre_<tactic>`` (``mitre_execution``), with technique
ids (``T1059``, ``T1552.001``) and, where a rule has no single technique, with the tactic id
itself (``TA0003``). Tags are sorted alphabetically in Falco's output, so their order carries no
meaning: tactics come back in kill-chain order and techniques sorted. Unknown ``mitre_*`` tags
from old rule sets (``mitre_remote_service`` named a technique, not a tactic) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["KILL_CHAIN_ORDER", "TACTIC_IDS", "TACTIC_RANK", "mitre_of"]

# The 14 ATT&CK Enterprise tactics in matrix order: the order an intrusion tends to walk.
KILL_CHAIN_ORDER: Final[tuple[str, ...]] = (
    "reconnaissance",
    "resource_development",
    "initial_access",
    "execution",
    "persistence",
    "privilege_escalation",
    "defense_evasion",
    "credential_access",
    "discovery",
    "lateral_movement",
    "collection",
    "command_and_control",
    "exfiltration",
    "impact",
)

# Position of each tactic in KILL_CHAIN_ORDER, for comparing how far an attack has gone.
TACTIC_RANK: Final[Mapping[str, int]] = {name: i for i, name in enumerate(KILL_CHAIN_ORDER)}

TACTIC_IDS: Final[Mapping[str, str]] = {
    "TA0043": "reconnaissance",
    "TA0042": "resource_development",
    "TA0001": "initial_access",
    "TA0002": "execution",
    "TA0003": "persistence",
    "TA0004": "privilege_escalation",
    "TA0005": "defense_evasion",
    "TA0006": "credential_access",
    "TA0007": "discovery",
    "TA0008": "lateral_movement",
    "TA0009": "collection",
    "TA0011": "command_and_control",
    "TA0010": "exfiltration",
    "TA0040": "impact",
}

_TACTIC_TAGS: Final = {f"mitre_{name}": name for name in KILL_CHAIN_ORDER}
_TECHNIQUE: Final = re.compile(r"T\d{4}(?:\.\d{3})?")


def mitre_of(tags: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tactics in kill-chain order, techniques sorted) named by a rule's tags."""
    key = tags if isinstance(tags, tuple) else tuple(tags)
    found = _CACHE.get(key)
    if found is None:
        found = _mitre_of(key)
        # Tags are an alert's, so untrusted: a few megabyte-long ones must not stay cached.
        if len(key) <= _MAX_CACHED_TAGS and sum(map(len, key)) <= _MAX_CACHED_TAG_CHARS:
            if len(_CACHE) >= _MAX_CACHED:
                _CACHE.clear()
            _CACHE[key] = found
    return found


# Every alert of a rule carries the same tags, so a small cache answers almost every call. A
# dict, not functools.lru_cache: only a miss can tell the key is too large to keep.
_MAX_CACHED: Final = 4096
_MAX_CACHED_TAGS: Final = 64
_MAX_CACHED_TAG_CHARS: Final = 4096
_CACHE: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _mitre_of(tags: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    tactics: set[str] = set()
    techniques: set[str] = set()
    for tag in tags:
        name = _TACTIC_TAGS.get(tag) or _TACTIC_TAGS.get(tag.lower())
        if name is not None:
            tactics.add(name)
            continue
        upper = tag.upper()
        if upper in TACTIC_IDS:
            tactics.add(TACTIC_IDS[upper])
        elif _TECHNIQUE.fullmatch(upper):
            techniques.add(upper)
    ordered = tuple(name for name in KILL_CHAIN_ORDER if name in tactics)
    return ordered, tuple(sorted(techniques))
