"""Predicates over RBAC: what a Role/ClusterRole grants, and the bindings that hand it out.

A policy rule covers a request the way the Kubernetes RBAC authorizer decides it: its verbs,
apiGroups and resources each contain the requested value or "*". A subresource ("pods/exec")
is covered by "*", by itself or by "*/exec", never by "pods/*". A rule that lists
resourceNames reaches only those objects (and never authorizes create), so it does not grant
the unrestricted access these rules look for.

Roles are flagged where a rule grants; bindings are flagged when they hand such a role (found
in the same scan) to at least one subject, because peers report one or the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext, namespace_of
from kubesentinel.static.podspec import mapping, sequence
from kubesentinel.static.predicates import Params, Violation, predicate

ALL = "*"
ADMIN_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
RBAC_GROUP = "rbac.authorization.k8s.io"
CLUSTER_ADMIN = "cluster-admin"
ROLE_KINDS = frozenset({"Role", "ClusterRole"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})

Request = tuple[str, str, str]  # (verb, apiGroup, resource) as the authorizer sees it


@predicate("rbac_wildcard")
def rbac_wildcard(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A Role/ClusterRole rule lists "*" (or "*/subresource") among its verbs or resources."""
    if not is_rbac(obj, ROLE_KINDS):
        return
    for index, rule in _rules(obj):
        for key in ("verbs", "resources"):
            for position, value in enumerate(sequence(rule.get(key))):
                if value == ALL or (key == "resources" and _any_resource(value)):
                    yield Violation(
                        f'rules[{index}] uses "{value}" in {key}', ("rules", index, key, position)
                    )
                    break


@predicate("rbac_grants")
def rbac_grants(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A role grants one of params.grants, or a binding hands such a role to a subject."""
    if is_rbac(obj, ROLE_KINDS):
        for index, hits in _grants(obj, ctx, params):
            yield Violation(f"rules[{index}] grants {describe(hits)}", ("rules", index))
        return
    who = subjects(obj)
    for role in bound_roles(obj, ctx):
        hits = [hit for _, granted in _grants(role, ctx, params) for hit in granted]
        if hits and who:
            yield Violation(
                f'binds {role.kind} "{role.name}", which grants {describe(hits)}, to {who}',
                ("roleRef", "name"),
            )


@predicate("cluster_admin_binding")
def cluster_admin_binding(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """A binding hands out cluster-admin, or a role with a "*" verbs/resources/apiGroups rule."""
    ref, who = mapping(obj.body.get("roleRef")), subjects(obj)
    if not who or not is_rbac(obj, BINDING_KINDS):
        return
    if ref.get("kind") == "ClusterRole" and ref.get("name") == CLUSTER_ADMIN:
        yield Violation(f'binds ClusterRole "{CLUSTER_ADMIN}" to {who}', ("roleRef", "name"))
        return
    for role in bound_roles(obj, ctx):
        for index, policy in _policies(role, ctx):
            verbs = _admin_verbs(policy)
            if verbs:
                yield Violation(
                    f'binds {role.kind} "{role.name}", whose rules[{index}] grants '
                    f'{verbs} on "*" resources in every API group, to {who}',
                    ("roleRef", "name"),
                )
                break


def _admin_verbs(policy: _Policy) -> str | None:
    """ "*" verbs, or every read and write verb spelled out, on everything in every group.

    The spelled-out form lacks escalate/bind/impersonate, but write access to every resource
    (pods, roles, bindings) reaches cluster-admin anyway, which is why Polaris counts it.
    """
    if _covered(policy, [(ALL, ALL, ALL)]):
        return '"*" verbs'
    if all(_covered(policy, [(verb, ALL, ALL)]) for verb in ADMIN_VERBS):
        return "all read and write verbs"
    return None


def covers(rule: Mapping[str, Any], request: Request) -> bool:
    """The authorizer's match of one policy rule against one request (no resource name)."""
    policy = _policy(rule)
    return policy is not None and bool(_covered(policy, [request]))


def bound_roles(binding: K8sObject, ctx: ScanContext) -> list[K8sObject]:
    """The roles in the scan that a binding's roleRef names (a Role only from a RoleBinding)."""
    if not is_rbac(binding, BINDING_KINDS):
        return []
    ref = mapping(binding.body.get("roleRef"))
    kind, name = ref.get("kind"), ref.get("name")
    if not isinstance(name, str):
        return []  # object names are strings: no role of the scan has this one
    if kind == "ClusterRole":
        key = ("ClusterRole", "", name)
    elif kind == "Role" and binding.kind == "RoleBinding":
        key = ("Role", namespace_of(binding), name)
    else:
        return []
    return list(_roles_by_name(ctx).get(key, ()))


def _roles_by_name(ctx: ScanContext) -> dict[tuple[str, str, str], list[K8sObject]]:
    """(kind, namespace or "" for a ClusterRole, name) -> the scan's roles, in scan order."""

    def build() -> dict[tuple[str, str, str], list[K8sObject]]:
        index: dict[tuple[str, str, str], list[K8sObject]] = {}
        for role in ctx.of_kind("ClusterRole", "Role"):
            if is_rbac(role, ROLE_KINDS):
                namespace = namespace_of(role) if role.kind == "Role" else ""
                index.setdefault((role.kind, namespace, role.name), []).append(role)
        return index

    return ctx.memo("rbac_roles_by_name", build)


def is_rbac(obj: K8sObject, kinds: frozenset[str]) -> bool:
    """One of the RBAC kinds, in the RBAC API group (other groups reuse names like "Role")."""
    return obj.kind in kinds and obj.api_version.partition("/")[0] == RBAC_GROUP


def subjects(binding: K8sObject) -> str:
    """'ServiceAccount "prod/app", User "alice"'; empty when the binding names nobody."""
    names: list[str] = []
    for subject in sequence(binding.body.get("subjects")):
        kind, name = mapping(subject).get("kind"), mapping(subject).get("name")
        namespace = mapping(subject).get("namespace")
        if isinstance(name, str) and name:
            if kind == "ServiceAccount" and isinstance(namespace, str) and namespace:
                name = f"{namespace}/{name}"
            names.append(f'{kind if isinstance(kind, str) else "subject"} "{name}"')
    return ", ".join(names)


def describe(hits: Iterable[Request]) -> str:
    """'get, list on secrets; bind on roles' (verbs grouped by the resources they reach)."""
    by_verb: dict[str, list[str]] = {}
    for verb, _group, resource in hits:
        resources = by_verb.setdefault(verb, [])
        if resource not in resources:
            resources.append(resource)
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for verb, resources in by_verb.items():
        by_resources.setdefault(tuple(resources), []).append(verb)
    parts = (f"{', '.join(verbs)} on {', '.join(res)}" for res, verbs in by_resources.items())
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Policy:
    """A policy rule's lists as the authorizer reads them (strings only)."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: tuple[str, ...]


def _policy(rule: Mapping[str, Any]) -> _Policy | None:
    """None for a rule narrowed to named objects (resourceNames): it grants no open access."""
    if sequence(rule.get("resourceNames")):
        return None
    verbs, groups = _strings(rule, "verbs"), _strings(rule, "apiGroups")
    return _Policy(frozenset(verbs), frozenset(groups), tuple(_strings(rule, "resources")))


def _policies(role: K8sObject, ctx: ScanContext) -> list[tuple[int, _Policy]]:
    """(index, policy) of the role's rules that are not narrowed; read once per scan, as
    every binding to the role and several rules of the catalogue ask again. A cache of the
    role alone: roles are checked where their file is read, only bindings wait for the scan."""
    # Keyed by id(); each entry holds the role, so that no other object can take its id.
    cache: dict[int, tuple[K8sObject, list[tuple[int, _Policy]]]] = ctx.cache("rbac_rules", dict)
    entry = cache.get(id(role))
    if entry is None:
        parsed = ((index, _policy(rule)) for index, rule in _rules(role))
        entry = cache[id(role)] = (role, [(i, p) for i, p in parsed if p is not None])
    return entry[1]


_Granted = list[tuple[int, list[Request]]]


def _grants(role: K8sObject, ctx: ScanContext, params: Params) -> _Granted:
    """(index, requests granted) of the role's rules that grant any of params.grants."""
    cache: dict[tuple[int, int], tuple[K8sObject, Params, _Granted]] = ctx.cache(
        "rbac_grants", dict
    )
    key = (id(role), id(params))  # the entry holds both, so neither id can be reused
    entry = cache.get(key)
    if entry is None:
        wanted = _wanted(params, ctx)
        granted = ((index, _covered(policy, wanted)) for index, policy in _policies(role, ctx))
        entry = cache[key] = (role, params, [(index, hits) for index, hits in granted if hits])
    return entry[2]


def _wanted(params: Params, ctx: ScanContext) -> list[Request]:
    """_requests of a rule's params, expanded once per scan."""
    cache: dict[int, tuple[Params, list[Request]]] = ctx.cache("rbac_requests", dict)
    entry = cache.get(id(params))
    if entry is None:
        entry = cache[id(params)] = (params, _requests(params))  # held: its id stays unique
    return entry[1]


def _requests(params: Params) -> list[Request]:
    """params.grants: [{apiGroup, resources, verbs}] expanded to single requests, in order."""
    requests: list[Request] = []
    for grant in sequence(params.get("grants")):
        group = mapping(grant).get("apiGroup") or ""
        for resource in sequence(mapping(grant).get("resources")):
            for verb in sequence(mapping(grant).get("verbs")):
                requests.append((str(verb), str(group), str(resource)))
    return requests


def _covered(policy: _Policy, wanted: list[Request]) -> list[Request]:
    """The requests one policy rule authorizes."""
    verbs, groups, resources = policy.verbs, policy.groups, policy.resources
    any_verb, any_group = ALL in verbs, ALL in groups
    return [
        (verb, group, resource)
        for verb, group, resource in wanted
        if (any_verb or verb in verbs)
        and (any_group or group in groups)
        and any(_resource_covers(have, resource) for have in resources)
    ]


def _rules(role: K8sObject) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, rule) for each mapping under rules (manifests are untrusted)."""
    for index, rule in enumerate(sequence(role.body.get("rules"))):
        if isinstance(rule, dict):
            yield index, rule


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    return [value for value in sequence(rule.get(key)) if isinstance(value, str)]


def _resource_covers(have: str, resource: str) -> bool:
    if have in (ALL, resource):
        return True
    _, slash, subresource = resource.partition("/")
    return bool(slash) and have == f"*/{subresource}"


def _any_resource(value: Any) -> bool:
    """ "*/scale" reaches that subresource of every resource, so it is a wildcard too."""
    return isinstance(value, str) and value.startswith("*/")


@predicate("default_service_account_binding")
def default_service_account_binding(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """A binding names a namespace's "default" ServiceAccount as a subject: every pod that
    sets no serviceAccountName runs with that role (CIS 5.1.5)."""
    if not is_rbac(obj, BINDING_KINDS):
        return
    role = mapping(obj.body.get("roleRef")).get("name")
    for index, entry in enumerate(sequence(obj.body.get("subjects"))):
        subject = mapping(entry)
        if subject.get("kind") != "ServiceAccount" or subject.get("name") != "default":
            continue
        namespace = subject.get("namespace") or obj.namespace or "default"
        yield Violation(
            f'binds role "{role}" to the default ServiceAccount of namespace "{namespace}", '
            "which every pod without serviceAccountName uses",
            ("subjects", index),
        )
