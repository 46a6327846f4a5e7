"""What the behavioural analyzer reads of one event: its workload and its behaviour, generalised.

Built by ``ai.features.features_of``. Empty strings mean "not in this event" (a k8s_audit
event has no executable, a process event no peer).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FeatureVector:
    workload: str  # Workload.key: cluster/namespace/Kind/name (never the pod)
    cluster: str
    namespace: str
    image: str  # container image repository, without tag or digest ("" outside containers)
    rule: str  # the Falco rule that fired
    source: str  # syscall, k8s_audit, internal, ...
    event_type: str  # evt.type (execve, openat, connect), or the audit verb
    process: str  # proc.name; for an audit exec, the command run in the pod
    parent: str  # proc.pname
    grandparent: str  # proc.aname[2]
    exe: str  # proc.exepath, generalised
    file: str  # fd.name of a file, generalised
    peer: str  # the remote address ("" when none)
    peer_class: str  # metadata, loopback, service, pod, node, external, link-local
    port: int  # the server port of a connection (0 when none)
    user: str  # user.name, or the audit user (ka.user.name)
    action: str  # audit: "verb resource/subresource"; "" for other sources
    hour: int  # hour of day, UTC, 0-23
