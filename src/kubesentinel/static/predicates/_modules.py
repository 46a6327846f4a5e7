"""Importing this module imports every predicate module (each registers itself)."""

from kubesentinel.static.predicates import (  # noqa: F401
    hardening,
    host_paths,
    images,
    network,
    pss_baseline,
    pss_restricted,
    rbac,
    resources,
    secrets,
    service_accounts,
    workload,
)
