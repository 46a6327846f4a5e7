"""Event to FeatureVector: the workload and the behaviour of one Falco event, generalised.

Pure functions. Fields read, from the alert's ``output_fields`` as Falco writes them:
``proc.name``, ``proc.pname``, ``proc.aname[2]``, ``proc.exepath`` (else ``proc.exe``),
``fd.name`` (a file path, or ``client:port->server:port`` for a connection), ``evt.type``,
``user.name``, ``container.image.repository`` (else ``container.image``); for k8s_audit
events ``ka.user.name``, ``ka.verb``, ``ka.target.resource``, ``ka.target.subresource`` and
``ka.uri.param[command]``. Falco's ``<NA>``, null and "" all mean absent.

A connection's peer is its server side, except for accepted connections (``accept``,
``accept4``), whose peer is the client; the port is always the server's. Peers are classed
by ``PeerClasses`` (see ``tables``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from kubesentinel.ai.tables import (
    DEFAULT_POD_CIDRS,
    DEFAULT_SERVICE_CIDRS,
    MAX_PATH_CHARS,
    METADATA_IPS,
    PATH_MASKS,
    PRIVATE_CIDRS,
)
from kubesentinel.models.event import Event
from kubesentinel.models.feature_vector import FeatureVector

__all__ = [
    "Featurizer",
    "PeerClasses",
    "features_of",
    "generalise_path",
    "signature",
    "split_connection",
]

_HOUR_NS: Final = 3_600_000_000_000
_INBOUND: Final = frozenset({"accept", "accept4"})
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _text(value: object) -> str:
    """A field's text; "" when Falco had no value (null, "", "<NA>", not a string)."""
    if type(value) is str and value != "<NA>":
        return value
    return ""


@lru_cache(maxsize=16_384)
def generalise_path(path: str) -> str:
    """``path`` with what varies between runs masked: uuids, temp names, hex ids, numbers.

    >>> generalise_path("/var/log/app.log.3")
    '/var/log/app.log.<n>'
    """
    path = path[:MAX_PATH_CHARS]
    for pattern, replacement in PATH_MASKS:
        path = pattern.sub(replacement, path)
    return path


def split_connection(name: str) -> tuple[str, int, str, int] | None:
    """(client ip, client port, server ip, server port) of an ``fd.name`` like
    ``10.244.1.7:40312->10.96.0.1:443`` (IPv6 too: the port is after the last colon)."""
    client, arrow, server = name.partition("->")
    if not arrow:
        return None
    cip, _, cport = client.rpartition(":")
    sip, _, sport = server.rpartition(":")
    if not (cport.isdigit() and sport.isdigit() and cip and sip):
        return None
    return cip.strip("[]"), int(cport), sip.strip("[]"), int(sport)


class PeerClasses:
    """Classes an address: metadata, loopback, link-local, service, pod, node (other private
    space), external; "unknown" when it is not an IP address."""

    def __init__(
        self,
        service_cidrs: Sequence[str] = DEFAULT_SERVICE_CIDRS,
        pod_cidrs: Sequence[str] = DEFAULT_POD_CIDRS,
    ) -> None:
        self.service_cidrs = tuple(service_cidrs)
        self.pod_cidrs = tuple(pod_cidrs)
        self._tables: tuple[tuple[str, tuple[_Network, ...]], ...] = (
            ("service", _networks(self.service_cidrs)),
            ("pod", _networks(self.pod_cidrs)),
            ("node", _networks(PRIVATE_CIDRS)),
        )
        self._cache: dict[str, str] = {}

    def classify(self, address: str) -> str:
        found = self._cache.get(address)
        if found is None:
            found = self._classify(address)
            if len(self._cache) >= 65_536:
                self._cache.clear()
            self._cache[address] = found
        return found

    def _classify(self, address: str) -> str:
        if address in METADATA_IPS:
            return "metadata"
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "unknown"
        if ip.is_loopback:
            return "loopback"
        for name, networks in self._tables:
            if any(ip in net for net in networks if net.version == ip.version):
                return name
        if ip.is_link_local:
            return "link-local"
        return "external"


def _networks(cidrs: Sequence[str]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def signature(event: Event) -> tuple[Any, ...]:
    """Everything ``features_of`` reads, as a hashable key: events with equal signatures have
    equal feature vectors (the analyzer caches on it). The client's port is left out."""
    get = event.fields.get
    name = get("fd.name")
    if type(name) is str and "->" in name:
        name = name[name.index("->") :]  # the server side decides; the client's port varies
    return (
        event.workload.key, event.source, event.rule, get("evt.type"), get("proc.name"),
        get("proc.pname"), get("proc.aname[2]"), get("proc.exepath") or get("proc.exe"), name,
        get("user.name"), get("container.image.repository") or get("container.image"),
        get("ka.user.name"), get("ka.verb"), get("ka.target.resource"),
        get("ka.target.subresource"), get("ka.uri.param[command]"),
        event.time_ns // _HOUR_NS % 24,
    )  # fmt: skip


def features_of(event: Event, peers: PeerClasses) -> FeatureVector:
    """The FeatureVector of one event."""
    fields: Mapping[str, Any] = event.fields
    workload = event.workload
    hour = event.time_ns // _HOUR_NS % 24
    image = _image(fields)
    if event.source == "k8s_audit":
        return _audit_features(event, fields, image, hour)
    process = _text(fields.get("proc.name"))
    exe = _text(fields.get("proc.exepath")) or _text(fields.get("proc.exe"))
    event_type = _text(fields.get("evt.type"))
    name = _text(fields.get("fd.name"))
    file = peer = peer_class = ""
    port = 0
    connection = split_connection(name) if "->" in name else None
    if connection is not None:
        cip, _cport, sip, port = connection
        peer = cip if event_type in _INBOUND else sip
        peer_class = peers.classify(peer)
    elif name.startswith("/"):
        file = generalise_path(name)
    return FeatureVector(
        workload=workload.key,
        cluster=workload.cluster,
        namespace=workload.namespace,
        image=image,
        rule=event.rule,
        source=event.source,
        event_type=event_type,
        process=process,
        parent=_text(fields.get("proc.pname")),
        grandparent=_text(fields.get("proc.aname[2]")),
        exe=generalise_path(exe) if exe else "",
        file=file,
        peer=peer,
        peer_class=peer_class,
        port=port,
        user=_text(fields.get("user.name")),
        action="",
        hour=hour,
    )


def _audit_features(
    event: Event, fields: Mapping[str, Any], image: str, hour: int
) -> FeatureVector:
    verb = _text(fields.get("ka.verb"))
    resource = _text(fields.get("ka.target.resource"))
    sub = _text(fields.get("ka.target.subresource"))
    if not verb and sub in ("exec", "attach"):
        verb = "create"  # Attach/Exec Pod does not print the verb: exec is a create
    target = f"{resource}/{sub}" if sub else resource
    action = f"{verb} {target}".strip()
    workload = event.workload
    return FeatureVector(
        workload=workload.key,
        cluster=workload.cluster,
        namespace=workload.namespace,
        image=image,
        rule=event.rule,
        source=event.source,
        event_type=verb,
        process=_text(fields.get("ka.uri.param[command]")),
        parent="",
        grandparent="",
        exe="",
        file="",
        peer="",
        peer_class="",
        port=0,
        user=_text(fields.get("ka.user.name")),
        action=action,
        hour=hour,
    )


def _image(fields: Mapping[str, Any]) -> str:
    repository = _text(fields.get("container.image.repository"))
    if repository:
        return repository
    image = _text(fields.get("container.image")).partition("@")[0]
    if ":" in image.rsplit("/", 1)[-1]:
        image = image.rpartition(":")[0]
    return image


class Featurizer:
    """``features_of`` with a cache on the event's ``signature``: a workload repeats the same
    few behaviours, so nearly every event is one tuple build and one dict lookup. At most
    ``max_entries`` vectors are kept; the cache starts over when full."""

    def __init__(self, peers: PeerClasses | None = None, max_entries: int = 100_000) -> None:
        self.peers = peers if peers is not None else PeerClasses()
        self._max_entries = max_entries
        self._cache: dict[tuple[Any, ...], FeatureVector] = {}

    def __call__(self, event: Event) -> FeatureVector:
        return self.keyed(event)[1]

    def keyed(self, event: Event) -> tuple[tuple[Any, ...], FeatureVector]:
        """(signature, vector) of one event."""
        key = signature(event)
        return key, self.vector(key, event)

    def vector(self, key: tuple[Any, ...], event: Event) -> FeatureVector:
        """The vector of ``event``, whose ``signature`` is ``key``."""
        try:
            found = self._cache.get(key)
        except TypeError:  # a list or object where Falco writes text: no caching
            return features_of(event, self.peers)
        if found is None:
            found = features_of(event, self.peers)
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[key] = found
        return found
