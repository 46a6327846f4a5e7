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


def _service_account(obj: K8sObject, ctx: ScanContext, name: str) -> K8sObject | None:
    """The ServiceAccount the pod names, preferring one from the pod's own file when the scan
    holds several with that name (separate examples side by side, not one cluster)."""
    found = _accounts(ctx).get((namespace_of(obj), name), [])
    same_file = [a for a in found if a.source.file == obj.source.file]
    candidates = same_file or found
    return candidates[0] if candidates else None


def _accounts(ctx: ScanContext) -> dict[tuple[str, str], list[K8sObject]]:
    """(namespace, name) -> the scan's ServiceAccounts, in scan order (built once per scan)."""

    def build() -> dict[tuple[str, str], list[K8sObject]]:
        index: dict[tuple[str, str], list[K8sObject]] = {}
        for account in ctx.of_kind("ServiceAccount"):
            index.setdefault((namespace_of(account), account.name), []).append(account)
        return index

    return ctx.memo("service_accounts_by_name", build)


def _token_problem(obj: K8sObject, ctx: ScanContext, pod: PodSpec) -> str | None:
    """Why the pod gets a token; None when the pod (or, if it is silent, its account) opts out."""
    own = pod.spec.get(AUTOMOUNT)
    if own is False:
        return None
    if own is not None:  # the pod's own value wins over the account's
        shown = str(own).lower() if isinstance(own, bool) else repr(own)
        return f"pod spec sets {AUTOMOUNT}: {shown}"
    name, _ = service_account_name(pod)
    account = _service_account(obj, ctx, name)
    if account is None:
        why = f'no ServiceAccount "{name}" in namespace "{namespace_of(obj)}" was scanned'
    elif account.body.get(AUTOMOUNT) is False:
        return None
    else:
        why = f'neither does its ServiceAccount "{name}"'
    return f"pod spec does not set {AUTOMOUNT}: false, and {why}"


@predicate("automount_sa_token")
def automount_sa_token(obj: K8sObject, ctx: ScanContext, params: Params) -> Iterator[Violation]:
    """The pod gets an API token: automountServiceAccountToken is not false on the pod spec,
    nor (when the pod leaves it unset) on its ServiceAccount found in the same scan."""
    pod = pod_spec(obj)
    if pod is None:
        return
    problem = _token_problem(obj, ctx, pod)
    if problem is not None:
        yield Violation(problem, (*pod.path, AUTOMOUNT))


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
