"""Predicates over hostPath volumes: writable mounts, sensitive host paths, runtime sockets."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import Container, Path, PodSpec, containers, pod_spec, sequence
from kubesentinel.static.predicates import Params, Violation, predicate

_SLASHES = re.compile(r"/+")


@dataclass(frozen=True, slots=True)
class HostPathVolume:
    name: str
    host_path: str  # as written
    path: Path  # of the volume's hostPath.path field


@dataclass(frozen=True, slots=True)
class Mount:
    container: Container
    spec: Mapping[str, Any]
    path: Path  # of the volumeMounts entry


@functools.lru_cache(maxsize=4096)  # pods share their host paths; pure, and strings are small
def normalize(host_path: str) -> str:
    """/var/run//docker.sock/ and /var/run/./docker.sock name the same host file."""
    collapsed = _SLASHES.sub("/", host_path.strip())
    return posixpath.normpath(collapsed) if collapsed else collapsed


def host_path_volumes(pod: PodSpec) -> Iterator[HostPathVolume]:
    for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
        if not isinstance(volume, dict) or not isinstance(volume.get("hostPath"), dict):
            continue
        path, name = volume["hostPath"].get("path"), volume.get("name")
        yield HostPathVolume(
            name=name if isinstance(name, str) else "",
            host_path=path if isinstance(path, str) else "",
            path=(*pod.path, "volumes", index, "hostPath", "path"),
        )


def _volumes(obj: K8sObject) -> Iterator[tuple[PodSpec, HostPathVolume]]:
    pod = pod_spec(obj)
    if pod is not None:
        for volume in host_path_volumes(pod):
            yield pod, volume


def mounts_of(pod: PodSpec, volume: HostPathVolume) -> Iterator[Mount]:
    """Every volumeMounts entry, in any container, that mounts the volume."""
    for container in containers(pod):
        for index, mount in enumerate(sequence(container.spec.get("volumeMounts"))):
            if isinstance(mount, dict) and volume.name and mount.get("name") == volume.name:
                yield Mount(container, mount, (*container.path, "volumeMounts", index))


@predicate("host_path_mount_writable")
def host_path_mount_writable(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """A container mounts a hostPath volume without readOnly: true."""
    for pod, volume in _volumes(obj):
        for mount in mounts_of(pod, volume):
            if mount.spec.get("readOnly") is not True:
                yield Violation(
                    f'{mount.container.label} mounts hostPath volume "{volume.name}"'
                    f' ("{volume.host_path}") without readOnly: true',
                    (*mount.path, "readOnly"),
                )


@functools.lru_cache(maxsize=64)  # one entry per rule of the catalogue
def _normalized(paths: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize(path) for path in paths)


@predicate("host_path_in_list")
def host_path_in_list(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A hostPath volume points at one of params.paths (exact host paths, normalized).

    Reported at each container mount; a volume no container mounts is reported on its own.
    """
    volumes = list(_volumes(obj))
    if not volumes:
        return  # most pods: no hostPath volume, so no need to read the list
    listed = _normalized(tuple(str(path) for path in params["paths"]))
    what = params["what"]
    for pod, volume in volumes:
        if normalize(volume.host_path) not in listed:
            continue
        where = f'"{volume.host_path}" (volume "{volume.name}")'
        mounts = list(mounts_of(pod, volume))
        for mount in mounts:
            yield Violation(f"{mount.container.label} mounts {what} {where}", mount.path)
        if not mounts:
            yield Violation(f"pod spec declares {what} {where}", volume.path)
