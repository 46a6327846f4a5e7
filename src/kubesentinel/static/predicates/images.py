"""Predicates on container images: mutable tags, digest pinning, pull policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext
from kubesentinel.static.podspec import Container, containers, pod_spec
from kubesentinel.static.predicates import Params, Violation, predicate

# The only digest form the concept accepts as pinned: sha256 with 64 lowercase hex characters.
_SHA256_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference split the way the container runtime reads it."""

    text: str
    tag: str  # "" when the reference has no tag
    digest: str  # whatever follows "@", "" when absent

    @property
    def pinned(self) -> bool:
        return _SHA256_DIGEST.search(self.text) is not None


def parse_image(text: str) -> ImageRef:
    """Split name[:tag][@digest]; a ":" before the last "/" is a registry port, not a tag."""
    name, _, digest = text.partition("@")
    last_part = name.rsplit("/", 1)[-1]
    tag = last_part.rpartition(":")[2] if ":" in last_part else ""
    return ImageRef(text, tag, digest)


def _images(obj: K8sObject) -> Iterator[tuple[Container, ImageRef]]:
    """Every container with a non-empty image string (others cannot be judged)."""
    pod = pod_spec(obj)
    if pod is None:
        return
    for container in containers(pod):
        image = container.spec.get("image")
        if isinstance(image, str) and image.strip():
            yield container, parse_image(image.strip())


@predicate("image_tag_mutable")
def image_tag_mutable(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """An image has no tag or the tag latest, and is not pinned by a digest."""
    for container, image in _images(obj):
        if image.digest or image.tag not in ("", "latest"):
            continue
        problem = "has no tag" if not image.tag else "uses the latest tag"
        yield Violation(
            f'{container.label} image "{image.text}" {problem}', (*container.path, "image")
        )


@predicate("image_not_digest")
def image_not_digest(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """An image is not pinned by a well-formed sha256 digest."""
    for container, image in _images(obj):
        if not image.pinned:
            yield Violation(
                f'{container.label} image "{image.text}" is not pinned by a sha256 digest',
                (*container.path, "image"),
            )


def defaulted_pull_policy(image: ImageRef) -> str:
    """The policy the API server fills in when none is set: Always for the latest tag (or no
    tag and no digest, which means latest), IfNotPresent otherwise."""
    return "Always" if image.tag == "latest" or not (image.tag or image.digest) else "IfNotPresent"


def _pull_policy_problem(container: Container, defaulting: bool) -> str | None:
    """What is wrong with the container's pull policy, or None when it is (or becomes) Always."""
    policy = container.spec.get("imagePullPolicy")
    if policy == "Always":
        return None
    if policy is not None:
        return f"sets imagePullPolicy: {policy}"
    if not defaulting:
        return "sets no imagePullPolicy"
    image = container.spec.get("image")
    if not isinstance(image, str) or not image.strip():
        return None  # the default depends on the image, which is not there to judge
    if defaulted_pull_policy(parse_image(image.strip())) == "Always":
        return None
    return "sets no imagePullPolicy, which defaults to IfNotPresent for this image"


@predicate("image_pull_policy_not_always")
def image_pull_policy_not_always(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """A container's pull policy is not Always. With params.defaulting (the default) an unset
    policy is judged as the API server fills it in; without, unset always counts."""
    pod = pod_spec(obj)
    if pod is None:
        return
    for container in containers(pod):
        problem = _pull_policy_problem(container, bool(params.get("defaulting", True)))
        if problem is not None:
            yield Violation(f"{container.label} {problem}", (*container.path, "imagePullPolicy"))


DEFAULT_REGISTRY = "docker.io"


def registry_of(image: str) -> str:
    """The registry host an image is pulled from, as the container runtime resolves it: the
    first path part when it looks like a host (has "." or ":", or is localhost), else
    Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DEFAULT_REGISTRY


def allowed_by(image: str, allowed: tuple[str, ...]) -> bool:
    """An entry is a registry host ("registry.example.com") or a repository prefix
    ("registry.example.com/team/"); Docker Hub short names ("nginx") are docker.io/library."""
    registry = registry_of(image)
    full = (
        image
        if registry != DEFAULT_REGISTRY or image.startswith("docker.io/")
        else (
            f"docker.io/{image}" if "/" in image.partition(":")[0] else f"docker.io/library/{image}"
        )
    )
    for entry in allowed:
        wanted = entry.strip().lower().rstrip("/")
        if "/" not in wanted:
            if registry == wanted:
                return True
        elif full.lower().startswith(wanted + "/"):
            return True
    return False


@predicate("image_registry_not_allowed")
def image_registry_not_allowed(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """An image comes from outside static.allowed_registries (no finding when it is empty)."""
    allowed = ctx.allowed_registries
    if not allowed:
        return
    for container, image in _images(obj):
        if not allowed_by(image.text, allowed):
            yield Violation(
                f'{container.label} image "{image.text}" comes from {registry_of(image.text)}, '
                f"not from an allowed registry ({', '.join(allowed)})",
                (*container.path, "image"),
            )
