"""Which partition a workload's events go to, and what ingress tells the workers about them.

The partition is the first 8 bytes of sha256(workload key), big-endian, modulo the number of
partitions: the same on every host and Python (``hash()`` is salted per process).
"""

from __future__ import annotations

import hashlib
from typing import Final

import orjson

from kubesentinel.models.event import Workload

DEFAULT_OUT_SUBJECT: Final = "kubesentinel.part"
DEFAULT_OUT_STREAM: Final = "KUBESENTINEL_PART"
MSG_ID_HEADER: Final = "Nats-Msg-Id"  # JetStream drops a second message with this id
WORKLOAD_HEADER: Final = "Ks-Workload"  # the workload ingress computed, as JSON


def partition_of(workload_key: str, partitions: int) -> int:
    """A stable partition in ``range(partitions)`` for a workload key."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    digest = hashlib.sha256(workload_key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def subject_of(out_subject: str, partition: int) -> str:
    return f"{out_subject}.{partition}"


def workload_header(workload: Workload) -> str:
    return orjson.dumps(
        [workload.cluster, workload.namespace, workload.kind, workload.name]
    ).decode()


def workload_from_header(text: str) -> Workload | None:
    """The workload in a ``Ks-Workload`` header, or None when it is not one."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(value, list) and len(value) == 4 and all(type(v) is str for v in value)):
        return None
    return Workload(*value)
