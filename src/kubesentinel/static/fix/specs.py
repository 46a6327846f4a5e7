"""Which findings `fix` can fix, and how: rule id -> one edit, as data.

An edit names the field it writes relative to an *owner* (a container, the pod spec, a volume
mount), found in the finding's field path: the owner is the path before the last occurrence of
the field's first key (``...containers[0].securityContext.runAsNonRoot`` -> ``containers[0]``).
A rule missing here has no mechanical fix: `fix` lists its findings for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SC = "securityContext"
RUNTIME_DEFAULT = "RuntimeDefault"


@dataclass(frozen=True, slots=True)
class FixSpec:
    # set: field = value; seccomp: type RuntimeDefault; drop_all: "ALL" in capabilities.drop;
    # remove_added: take the capability the path names out of capabilities.add;
    # resource: the value from static.fix_defaults.
    action: str
    field: tuple[str, ...]
    value: Any = None
    # A check on the owner before editing (edits.GUARDS): why not, or None to go ahead.
    guard: str | None = None


_NON_ROOT = FixSpec("set", (SC, "runAsNonRoot"), True, guard="no_root_uid")
_SECCOMP = FixSpec("seccomp", (SC, "seccompProfile"))
_DROP = FixSpec("drop_all", (SC, "capabilities", "drop"))
_REMOVE = FixSpec("remove_added", (SC, "capabilities", "add"))
_NO_ESCALATION = FixSpec("set", (SC, "allowPrivilegeEscalation"), False)

FIXES: dict[str, FixSpec | tuple[FixSpec, ...]] = {
    "KS-0001": FixSpec("set", (SC, "privileged"), False),
    "KS-0008": _SECCOMP,
    "KS-0016": _NO_ESCALATION,
    "KS-0022": _NO_ESCALATION,
    "KS-0017": _NON_ROOT,
    "KS-0023": _NON_ROOT,
    "KS-0019": _SECCOMP,
    "KS-0033": _SECCOMP,
    "KS-0026": FixSpec("set", (SC, "readOnlyRootFilesystem"), True),
    # KS-0020 is about both lists: a missing drop, or an added capability beyond the set.
    "KS-0020": (_DROP, _REMOVE),
    "KS-0028": _DROP,
    "KS-0029": _DROP,
    "KS-0007": _REMOVE,
    "KS-0030": _REMOVE,
    "KS-0031": _REMOVE,
    "KS-0032": _REMOVE,
    "KS-0034": FixSpec("set", ("readOnly",), True),
    "KS-0040": FixSpec("resource", ("resources", "requests", "cpu")),
    "KS-0041": FixSpec("resource", ("resources", "limits", "cpu")),
    "KS-0042": FixSpec("resource", ("resources", "requests", "memory")),
    "KS-0043": FixSpec("resource", ("resources", "limits", "memory")),
    "KS-0048": FixSpec("set", ("imagePullPolicy",), "Always"),
    "KS-0051": FixSpec("set", ("automountServiceAccountToken",), False),
}

# Why a person has to decide, for rules near the fixed ones (the rest: "no mechanical fix").
REASONS: dict[str, str] = {
    "KS-0002": "the workload may need the host's process namespace",
    "KS-0003": "the workload may need the host's IPC namespace",
    "KS-0004": "the workload may need the host's network",
    "KS-0005": "the hostPath volume needs another volume type or a documented exception",
    "KS-0015": "the volume needs a type the Restricted profile allows",
    "KS-0006": "the host port needs a Service instead",
    "KS-0018": "the container runs as UID 0: pick a non-root UID the image supports",
    "KS-0024": "a UID above 10000 must match the image's file ownership",
    "KS-0025": "a non-root group must match the image's file ownership",
    "KS-0027": "the capabilities left in capabilities.add may be needed",
    "KS-0035": "the sensitive host path needs another volume type or an exception",
    "KS-0036": "the container runtime socket gives control of the node",
    "KS-0044": "a probe needs the application's health endpoint",
    "KS-0045": "a probe needs the application's readiness endpoint",
    "KS-0046": "the image needs a pinned version tag",
    "KS-0047": "the image needs the digest of the version you run",
    "KS-0050": "the credential belongs in a Secret",
}


def specs_for(rule_id: str) -> tuple[FixSpec, ...]:
    found = FIXES.get(rule_id, ())
    return found if isinstance(found, tuple) else (found,)
