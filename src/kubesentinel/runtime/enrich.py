"""FalcoAlert to Event: the Kubernetes context of each alert (namespace, pod, workload, image),
its MITRE tactics and techniques, and a stable id.

Where the fields come from, in ``output_fields``:

- syscall and other per-process sources: ``k8s.ns.name`` / ``k8s.pod.name`` (from the
  container runtime), else ``k8smeta.ns.name`` / ``k8smeta.pod.name`` (k8smeta plugin);
  ``container.id`` ("host" means a host process, stored as None), ``container.image.repository``
  with ``container.image.tag``, else ``container.image``.
- k8s_audit: ``ka.target.namespace``, ``ka.target.resource`` and ``ka.target.name`` (or
  ``ka.resp.name`` for creates that got a generated name).

The workload is, in order: a Deployment the alert itself names (``k8smeta.deployment.name``),
the owner lookup's answer, the pod's naming (see ``identity``), and the host for alerts outside
any pod. Falco fields never carry the literal ``<NA>`` as a value worth keeping: it, null and ""
all mean absent.

A workload's names and an event's id are keys that later stages hash and store as UTF-8, so a
lone surrogate in them (JSON allows a ``"\\ud800"`` escape; the parser keeps it, for the
evidence) is written as a backslash escape there, as the store writes such text in its columns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from kubesentinel.models.event import Event, Workload
from kubesentinel.models.falco_alert import FalcoAlert
from kubesentinel.runtime.identity import (
    OwnerLookup,
    host_workload,
    kind_of_pod_name,
    kind_of_resource,
    workload_of,
)
from kubesentinel.runtime.mitre import mitre_of

__all__ = ["Enricher", "content_id"]

_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True, default=str
)
# Per-instance dicts, not functools.lru_cache: the enricher is pickled into spawned workers,
# and only a miss can tell a key is too long to keep (below).
_MAX_CACHED_PODS: Final = 65_536
# Longer keys are not cached: Kubernetes names are at most 253 characters, and 65,536 entries of
# hostile megabyte-long fields would take the monitor's memory.
_MAX_CACHED_KEY_CHARS: Final = 2048
_Context = tuple[str | None, Workload, str | None, str | None]  # pod, workload, container, image


def content_id(alert: FalcoAlert) -> str:
    """A stable id for an alert without a uuid: the same content always gives the same id.

    sha256 of canonical JSON (sorted keys, no spaces) of rule, time_ns, hostname, output and
    output_fields; the first 32 hex characters (128 bits). Canonical rather than the bytes as
    received, so one alert relayed by two paths that re-serialize it (a log shipper reorders
    keys) is still one event.
    """
    fields = alert.output_fields
    if not isinstance(fields, dict):
        fields = dict(fields)
    content = [alert.rule, alert.time_ns, alert.hostname, alert.output, fields]
    try:
        doc = orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # integers beyond 64 bits: the stdlib encoder handles them
        doc = _CANONICAL.encode(content).encode()
    return hashlib.sha256(doc).hexdigest()[:32]


def _present(value: object) -> str | None:
    """A field's text, or None when Falco had no value (null, "", "<NA>", not a string)."""
    if type(value) is str and value and value != "<NA>":
        return value
    return None


class Enricher:
    """Adds Kubernetes context, MITRE mapping and ids to parsed alerts, a batch at a time."""

    def __init__(self, cluster: str = "default", lookup: OwnerLookup | None = None) -> None:
        self.cluster = cluster
        self._lookup = lookup
        # (namespace, pod) -> Workload by naming; only used without a lookup, whose answers
        # may change as its cache expires.
        self._named: dict[tuple[str, str], Workload] = {}
        # The hostname and every output field _context reads -> what they resolve to. Alerts of
        # one container share them, so nearly every alert is one lookup; not used with an owner
        # lookup (see above).
        self._contexts: dict[tuple[Any, ...], _Context] = {}

    def enrich(self, parsed: Sequence[tuple[FalcoAlert, int]]) -> list[Event]:
        """One Event per (alert, received_ns), in order."""
        events: list[Event] = []
        append = events.append
        contexts = self._contexts if self._lookup is None else None
        for alert, received_ns in parsed:
            fields = alert.output_fields
            if alert.source == "k8s_audit":
                _namespace, pod, workload = self._audit_target(fields, alert.hostname)
                context: _Context = (pod, _encodable_workload(workload), None, None)
            elif contexts is not None:
                get = fields.get
                key = (  # spelled out: a comprehension here is slower
                    alert.hostname, get("k8s.ns.name"), get("k8smeta.ns.name"),
                    get("k8s.pod.name"), get("k8smeta.pod.name"), get("container.id"),
                    get("container.name"), get("container.image.repository"),
                    get("container.image.tag"), get("container.image"),
                    get("k8smeta.deployment.name"), get("k8s.deployment.name"),
                )  # fmt: skip
                try:
                    context = contexts[key]
                except KeyError:
                    context = self._context(fields, alert.hostname)
                    if _key_chars(key) <= _MAX_CACHED_KEY_CHARS:
                        if len(contexts) >= _MAX_CACHED_PODS:
                            contexts.clear()
                        contexts[key] = context
                except TypeError:  # a list or object where Falco writes text: no caching
                    context = self._context(fields, alert.hostname)
            else:
                context = self._context(fields, alert.hostname)
            tactics, techniques = mitre_of(alert.tags)
            uuid = alert.uuid
            if uuid is not None and not uuid.isascii():
                uuid = _encodable(uuid)
            append(
                Event(
                    uuid or content_id(alert),
                    alert.time_ns,
                    received_ns,
                    alert.rule,
                    alert.priority,
                    alert.source,
                    alert.hostname,
                    context[1],
                    context[0],
                    context[2],
                    context[3],
                    tactics,
                    techniques,
                    alert.tags,
                    alert.output,
                    fields,
                    alert.origin,
                    alert.raw,
                )
            )
        return events

    def _context(self, fields: Mapping[str, Any], hostname: str) -> _Context:
        """(pod, workload, container id, image) of an alert from a process (syscall, plugins)."""
        namespace = _present(fields.get("k8s.ns.name")) or _present(fields.get("k8smeta.ns.name"))
        pod = _present(fields.get("k8s.pod.name")) or _present(fields.get("k8smeta.pod.name"))
        container_id = _present(fields.get("container.id"))
        if container_id == "host":
            container_id = None
        if pod is not None:
            workload = self._pod_workload(namespace or "", pod, fields)
        elif container_id is not None:
            # A container outside Kubernetes (plain Docker, or metadata not yet known): group
            # by the container, not the whole host.
            name = _present(fields.get("container.name")) or container_id
            workload = Workload(self.cluster, namespace or "", "Container", name)
        else:
            workload = host_workload(self.cluster, namespace, hostname)
        return pod, _encodable_workload(workload), container_id, _image(fields)

    def enrich_one(self, alert: FalcoAlert, received_ns: int) -> Event:
        """The per-item form of ``enrich``."""
        return self.enrich([(alert, received_ns)])[0]

    def _pod_workload(self, namespace: str, pod: str, fields: Mapping[str, Any]) -> Workload:
        deployment = _present(fields.get("k8smeta.deployment.name")) or _present(
            fields.get("k8s.deployment.name")
        )
        if deployment is not None:
            return Workload(self.cluster, namespace, "Deployment", deployment)
        if self._lookup is not None:
            return workload_of(self.cluster, namespace, pod, self._lookup)
        key = (namespace, pod)
        workload = self._named.get(key)
        if workload is None:
            kind, name = kind_of_pod_name(pod)
            workload = Workload(self.cluster, namespace, kind, name)
            if len(namespace) + len(pod) <= _MAX_CACHED_KEY_CHARS:
                if len(self._named) >= _MAX_CACHED_PODS:
                    self._named.clear()
                self._named[key] = workload
        return workload

    def _audit_target(
        self, fields: Mapping[str, Any], hostname: str
    ) -> tuple[str | None, str | None, Workload]:
        """(namespace, pod, workload) of a k8s_audit alert: the object the request acted on."""
        namespace = _present(fields.get("ka.target.namespace")) or _uri_namespace(
            fields.get("ka.uri")
        )
        resource = _present(fields.get("ka.target.resource"))
        name = _present(fields.get("ka.target.name")) or _present(fields.get("ka.resp.name"))
        if resource is None or name is None:
            return namespace, None, host_workload(self.cluster, namespace, hostname)
        if resource == "pods":
            return namespace, name, self._pod_workload(namespace or "", name, fields)
        kind = kind_of_resource(resource)
        return namespace, None, Workload(self.cluster, namespace or "", kind, name)


def _key_chars(key: tuple[Any, ...]) -> int:
    return sum(len(value) for value in key if type(value) is str)


def _encodable(text: str) -> str:
    """``text``, with any lone surrogate as a backslash escape (see the module docstring)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _encodable_workload(workload: Workload) -> Workload:
    key = workload.key
    if key.isascii() or _encodable(key) is key:
        return workload
    return Workload(
        _encodable(workload.cluster),
        _encodable(workload.namespace),
        _encodable(workload.kind),
        _encodable(workload.name),
    )


def _uri_namespace(uri: object) -> str | None:
    """The namespace in a request URI ("/apis/apps/v1/namespaces/staging/deployments/x"), for
    audit rules whose output names no ka.target.namespace (e.g. "Disallowed K8s User")."""
    if not isinstance(uri, str):
        return None
    _, marker, rest = uri.partition("/namespaces/")
    namespace = rest.split("/", 1)[0].split("?", 1)[0] if marker else ""
    return namespace or None


def _image(fields: Mapping[str, Any]) -> str | None:
    repository = _present(fields.get("container.image.repository"))
    if repository is None:
        return _present(fields.get("container.image"))
    tag = _present(fields.get("container.image.tag"))
    return f"{repository}:{tag}" if tag is not None else repository
