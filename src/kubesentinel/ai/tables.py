"""The analyzer's tables, as data: how paths are generalised, how peers are classed, which
behaviour combinations are counted and how much each weighs."""

from __future__ import annotations

import re
from typing import Final

# Applied in order to file and executable paths: what varies between runs of the same
# behaviour (rotated logs, temp names, ids) is masked so the behaviour counts as one.
PATH_MASKS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    # mktemp's tmp.XXXXXXXXXX, Python's tempfile tmpXXXXXXXX, systemd-private-*, sed's sedXXXXXX
    (re.compile(r"(?<=/)(tmp\.|tmp|sed|systemd-private-)[A-Za-z0-9_]{6,}(?=/|$)"), r"\1<rand>"),
    # hex runs of 8+ characters with a digit: container ids, hashes, WAL segment names
    (re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?![0-9A-Za-z])", re.I), "<hex>"),
    (re.compile(r"[0-9]+"), "<n>"),  # pids (/proc/1234), rotated logs (app.log.3), dates
)
MAX_PATH_CHARS: Final = 256  # longer paths are cut: a hostile path cannot grow the model

# Cloud instance metadata endpoints (AWS IPv4 and IPv6, GCP, Azure; ECS task metadata;
# Alibaba): reaching them from a pod is how stolen node credentials start.
METADATA_IPS: Final = frozenset(
    {"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"}
)
# Defaults of kubeadm (services) and flannel/kubeadm docs (pods); a model records the ones it
# was trained with (`ai train --service-cidr/--pod-cidr`).
DEFAULT_SERVICE_CIDRS: Final = ("10.96.0.0/12",)
DEFAULT_POD_CIDRS: Final = ("10.244.0.0/16",)
# Other private space: nodes and the VPC (class "node").
PRIVATE_CIDRS: Final = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)
# Peer classes whose exact address is a behaviour of its own: an external address is telling.
# Pods and nodes come and go and services are created with new addresses, so for them only
# the class and the port count.
EXACT_PEER_CLASSES: Final = frozenset({"external", "metadata"})
# Peer classes whose novelty weighs more than its rarity alone says: a workload that starts
# talking to the instance metadata endpoint is how stolen node credentials begin (MITRE
# T1552.005), even where other workloads (node agents, SDKs) reach it every minute. Applied to
# the items that name the peer (peer, class, remote, network); learned like any other item, so
# a workload that always reads its metadata is not affected.
SENSITIVE_PEER_WEIGHTS: Final = {"metadata": 2.0}

# Behaviour combinations counted per workload: (kind, the FeatureVector fields it joins,
# weight). A kind is left out of an event that lacks any of its fields.
COMBINATIONS: Final[tuple[tuple[str, tuple[str, ...], float], ...]] = (
    ("process", ("process",), 1.0),
    ("parent", ("process", "parent"), 1.0),
    ("ancestry", ("process", "parent", "grandparent"), 0.7),
    ("exe", ("process", "exe"), 1.0),
    ("file", ("process", "file"), 0.8),
    ("peer", ("process", "peer_class", "port"), 1.0),
    # a workload that never reached outside, or metadata; below 1 so that, as rare, the
    # program and its executable are named first
    ("class", ("peer_class",), 0.9),
    ("remote", ("peer", "port"), 0.5),  # addresses churn: the network says more
    ("network", ("peer", "port"), 0.8),  # the /16 of an external peer (rarity.network_of)
    ("user", ("user",), 1.0),
    ("process-user", ("process", "user"), 0.8),
    ("action", ("user", "action"), 1.0),
    ("rule", ("rule",), 0.6),
)
