"""Predicates on the service account a pod runs as and its API token."""

from __future__ import annotations

from collections.abc import Iterator

from kubesentinel.models import K8sObject
from kubesentinel.static.context import ScanContext, namespace_of
from kubesentinel.static.podspec import PodSpec, pod_spec
from kubesentinel.static.predicates import Params, Violation, predicate

AUTOMOUNT = "automountServiceAccountToken"


def service_account_name(pod: PodSpec) -> tuple[str, str | None]:
    """The service account the pod runs as, and the field naming it (None when defaulted).

    serviceAccountName wins; the deprecated serviceAccount is still honoured by the API server.
    """
    for field in ("serviceAccountName", "serviceAccount"):
        value = pod.spec.get(field)
        if isinstance(value, str) and value:
            return value, field
    return "default", None


@predicate("automount_sa_token")
def automount_sa_token(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """The pod gets an API token: automountServiceAccountToken is not false on the pod spec,
    nor (when the pod leaves it unset) on its ServiceAccount found in the same scan."""
    pod = pod_spec(obj)
    if pod is None:
        return
    path = (*pod.path, AUTOMOUNT)
    own = pod.spec.get(AUTOMOUNT)
    if own is False:
        return
    if own is not None:
        shown = str(own).lower() if isinstance(own, bool) else repr(own)
        yield Violation(f"pod spec sets {AUTOMOUNT}: {shown}", path)
        return
    name, _ = service_account_name(pod)
    account = ctx.find("ServiceAccount", name, namespace_of(obj))
    if account is not None and account.body.get(AUTOMOUNT) is False:
        return
    yield Violation(
        f'pod spec does not set {AUTOMOUNT}: false, nor does ServiceAccount "{name}"', path
    )


@predicate("default_service_account")
def default_service_account(
    obj: K8sObject, ctx: ScanContext, params: Params
) -> Iterator[Violation]:
    """The pod runs as the namespace's default service account."""
    pod = pod_spec(obj)
    if pod is None:
        return
    name, field = service_account_name(pod)
    if name != "default":
        return
    if field is None:
        yield Violation(
            "pod spec sets no serviceAccountName, so it runs as the default service account",
            (*pod.path, "serviceAccountName"),
        )
    else:
        yield Violation(f'pod spec sets {field}: "default"', (*pod.path, field))
