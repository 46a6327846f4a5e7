"""Turn one finding and its FixSpec into an edit of a parsed document, or a reason not to.

Works on any tree of dicts and lists (ruamel.yaml's round-trip types are subclasses), so it
knows nothing of YAML. Edits are prepared against the document as read, then run: removals
from capabilities.add run last, so list indexes in the findings' paths stay valid until then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping, MutableSequence
from dataclasses import dataclass
from typing import Any

from kubesentinel.static.fix.defaults import FixDefaults, quantity
from kubesentinel.static.fix.specs import RUNTIME_DEFAULT, SC, FixSpec, specs_for

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

Token = str | int
Factories = tuple[Callable[[], MutableMapping[str, Any]], Callable[[list[Any]], list[Any]]]


@dataclass(frozen=True, slots=True)
class Edit:
    run: Callable[[], bool]  # True when it changed the document
    last: bool = False  # removals from lists run after every other edit


def parse_path(field_path: str) -> list[Token]:
    """``a.b[0].c`` -> ``["a", "b", 0, "c"]``."""
    return [int(index) if index else key for key, index in _TOKEN.findall(field_path)]


def prepare(
    root: Any, rule_id: str, field_path: str, defaults: FixDefaults, factories: Factories
) -> Edit | str:
    """The edit fixing this finding, or why there is none (for a person to read)."""
    specs = specs_for(rule_id)
    if not specs:
        return "no mechanical fix"
    tokens = parse_path(field_path)
    # A rule with several edits (KS-0020): the one whose field the path names.
    spec = next((s for s in specs if s.field[-1] in tokens), specs[0])
    owner_path = _owner_path(tokens, spec)
    if owner_path is None:
        return f"the finding's path does not lead to {'.'.join(spec.field)}"
    owner = _walk(root, owner_path)
    if not isinstance(owner, MutableMapping):
        return f"no object at {_show(owner_path)}"
    if spec.guard is not None and (why := GUARDS[spec.guard](root, owner_path)):
        return why
    return _ACTIONS[spec.action](owner, tokens, spec, defaults, factories)


def _owner_path(tokens: list[Token], spec: FixSpec) -> list[Token] | None:
    head = spec.field[0]
    for index in range(len(tokens) - 1, -1, -1):
        if tokens[index] == head:
            return tokens[:index]
    return None


def _walk(node: Any, tokens: list[Token]) -> Any:
    for token in tokens:
        if isinstance(token, int):
            if not isinstance(node, MutableSequence) or token >= len(node):
                return None
        elif not isinstance(node, MutableMapping) or token not in node:
            return None
        node = node[token]
    return node


def _show(tokens: list[Token]) -> str:
    return "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens).lstrip(".")


def _ensure(node: MutableMapping[str, Any], keys: tuple[str, ...], factories: Factories) -> Any:
    """The mapping at ``keys`` under ``node``, made where missing; None if something else is."""
    for key in keys:
        if node.get(key) is None:
            node[key] = factories[0]()
        node = node[key]
        if not isinstance(node, MutableMapping):
            return None
    return node


def _set(
    owner: MutableMapping[str, Any],
    tokens: list[Token],
    spec: FixSpec,
    defaults: FixDefaults,
    factories: Factories,
) -> Edit | str:
    def run() -> bool:
        parent = _ensure(owner, spec.field[:-1], factories)
        if parent is None or parent.get(spec.field[-1]) == spec.value:
            return False
        parent[spec.field[-1]] = spec.value
        return True

    return _checked(owner, spec.field[:-1], run)


def _seccomp(
    owner: MutableMapping[str, Any],
    tokens: list[Token],
    spec: FixSpec,
    defaults: FixDefaults,
    factories: Factories,
) -> Edit | str:
    def run() -> bool:
        context = _ensure(owner, (SC,), factories)
        profile = context.get("seccompProfile") if context is not None else None
        if context is None:
            return False
        if not isinstance(profile, MutableMapping):
            profile = context["seccompProfile"] = factories[0]()
        if profile.get("type") == RUNTIME_DEFAULT:
            return False
        profile["type"] = RUNTIME_DEFAULT
        profile.pop("localhostProfile", None)  # only meant with type Localhost
        return True

    return _checked(owner, (SC,), run)


def _drop_all(
    owner: MutableMapping[str, Any],
    tokens: list[Token],
    spec: FixSpec,
    defaults: FixDefaults,
    factories: Factories,
) -> Edit | str:
    current = _walk(owner, list(spec.field))
    if current is not None and not isinstance(current, MutableSequence):
        return "capabilities.drop is not a list"

    def run() -> bool:
        capabilities = _ensure(owner, spec.field[:-1], factories)
        if capabilities is None:
            return False
        drop = capabilities.get("drop")
        if drop is None:
            capabilities["drop"] = factories[1](["ALL"])
            return True
        if "ALL" in drop:
            return False
        drop.append("ALL")
        return True

    return _checked(owner, spec.field[:-1], run)


def _remove_added(
    owner: MutableMapping[str, Any],
    tokens: list[Token],
    spec: FixSpec,
    defaults: FixDefaults,
    factories: Factories,
) -> Edit | str:
    index = tokens[-1]
    capabilities = _walk(owner, list(spec.field[:-1]))
    added = _walk(owner, list(spec.field))
    if not (isinstance(index, int) and tokens[-2] == "add" and isinstance(added, MutableSequence)):
        return "the finding does not name one added capability"
    if index >= len(added):
        return "no such capability in capabilities.add"
    name = added[index]

    def run() -> bool:
        if name not in added:
            return False  # another finding removed it already
        added.remove(name)
        if not added and capabilities.get("add") is added:
            del capabilities["add"]
        return True

    return Edit(run, last=True)


def _resource(
    owner: MutableMapping[str, Any],
    tokens: list[Token],
    spec: FixSpec,
    defaults: FixDefaults,
    factories: Factories,
) -> Edit | str:
    _, section, resource = spec.field
    other = "limits" if section == "requests" else "requests"
    value = defaults.value(section, resource)
    paired = _walk(owner, ["resources", other, resource])
    if paired is not None:
        # Never a request above its limit: the API server would refuse the object.
        bound = quantity(paired)
        if bound is None:
            return f"resources.{other}.{resource} {paired!r} is not a quantity"
        wanted = quantity(value) or 0.0
        if (section == "limits" and bound > wanted) or (section == "requests" and bound < wanted):
            value = str(paired)

    def run() -> bool:
        parent = _ensure(owner, spec.field[:-1], factories)
        if parent is None or parent.get(resource) is not None:
            return False
        parent[resource] = value
        return True

    return _checked(owner, spec.field[:-1], run)


def _checked(
    owner: MutableMapping[str, Any], keys: tuple[str, ...], run: Callable[[], bool]
) -> Edit | str:
    """The edit, unless a mapping it must write into is something else (a list, a string)."""
    node: Any = owner
    for key in keys:
        node = node.get(key) if isinstance(node, MutableMapping) else None
        if node is None:
            break
        if not isinstance(node, MutableMapping):
            return f"{key} is not a mapping"
    return Edit(run)


def _no_root_uid(root: Any, owner_path: list[Token]) -> str | None:
    """runAsNonRoot: true beside runAsUser: 0 would stop the container from starting."""
    pod_path = owner_path
    if len(owner_path) >= 2 and owner_path[-2] in _CONTAINER_LISTS:
        pod_path = owner_path[:-2]
    pod = _walk(root, pod_path)
    if not isinstance(pod, MutableMapping):
        return None
    contexts = [pod.get(SC)]
    if pod_path == owner_path:  # pod level: every container inherits it
        for name in _CONTAINER_LISTS:
            items = pod.get(name)
            if isinstance(items, list):
                contexts += [c.get(SC) for c in items if isinstance(c, MutableMapping)]
    else:
        owner = _walk(root, owner_path)
        contexts.append(owner.get(SC) if isinstance(owner, MutableMapping) else None)
    for context in contexts:
        if isinstance(context, MutableMapping) and context.get("runAsUser") == 0:
            return "runAsUser is 0: pick a non-root UID the image supports, then runAsNonRoot"
    return None


GUARDS: dict[str, Callable[[Any, list[Token]], str | None]] = {"no_root_uid": _no_root_uid}
_ACTIONS: dict[
    str,
    Callable[[MutableMapping[str, Any], list[Token], FixSpec, FixDefaults, Factories], Edit | str],
] = {
    "set": _set,
    "seccomp": _seccomp,
    "drop_all": _drop_all,
    "remove_added": _remove_added,
    "resource": _resource,
}
