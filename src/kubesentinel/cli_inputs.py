"""Scan options for inputs beyond files: Helm values, and a live cluster through kubeconfig.

Kept apart from cli.py so each stays short; nothing here prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.static.catalogue import Catalogue
    from kubesentinel.static.reader import ReadBatch
    from kubesentinel.static.render import RenderOptions


def add_input_options(scan: argparse.ArgumentParser) -> None:
    helm = scan.add_argument_group("Helm charts (rendered with `helm template`)")
    helm.add_argument(
        "--helm-values",
        action="append",
        default=[],
        metavar="FILE",
        help="values file for every chart scanned; repeatable, later ones win",
    )
    helm.add_argument(
        "--helm-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value set on the command line (as helm's --set); repeatable",
    )
    helm.add_argument(
        "--helm-release",
        default="release-name",
        metavar="NAME",
        help="release name the templates see (default: release-name)",
    )
    cluster = scan.add_argument_group("live cluster (through kubeconfig)")
    cluster.add_argument(
        "--cluster",
        action="store_true",
        help="scan the objects of the cluster of the current kubeconfig context",
    )
    cluster.add_argument(
        "--context",
        metavar="NAME",
        help="kubeconfig context to use with --cluster (default: current)",
    )
    cluster.add_argument(
        "--namespace",
        "-n",
        metavar="NS",
        help="with --cluster: read only this namespace (cluster-wide objects "
        "are then skipped); for Helm charts: the release namespace",
    )


def render_options(args: argparse.Namespace) -> RenderOptions:
    from kubesentinel.static.render import RenderOptions

    if not args.path and not args.cluster:
        raise UsageError("nothing to scan", hint="give --path PATH (repeatable) or --cluster")
    if args.context and not args.cluster:
        raise UsageError("--context needs --cluster")
    for assignment in args.helm_set:
        if "=" not in assignment:
            raise UsageError(f"--helm-set {assignment!r} is not KEY=VALUE")
    return RenderOptions(
        release=args.helm_release,
        namespace=args.namespace,
        values=tuple(args.helm_values),
        set_values=tuple(args.helm_set),
    )


def cluster_batches(args: argparse.Namespace, catalogue: Catalogue) -> list[ReadBatch]:
    if not args.cluster:
        return []
    from kubesentinel.static.cluster import read_cluster

    return [read_cluster(catalogue.target_kinds, context=args.context, namespace=args.namespace)]
