"""A ``helm template`` command on Helm's own engine, for machines without the helm binary.

helm-python-sdk ships Helm v4's Go library (libhelm_c.so): charts are loaded, values files and
``--set`` expressions parsed (Helm's strvals) and templates rendered by Helm itself, through a
client-side dry-run install, the action ``helm template`` runs. This file is only the command
line around it: ``helm template RELEASE CHART [--namespace NS] [--values FILE]... [--set S]...``
prints the release manifest, and a failure prints Helm's error and exits 1, as helm does.

The scanner's tests put it on PATH as ``helm`` when no real helm is installed
(``install_on_path``); with a real helm on PATH they use that instead.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import Any


def available() -> bool:
    try:
        import helm_python  # noqa: F401
    except (ImportError, OSError):  # OSError: the bundled library failed to load
        return False
    return True


def install_on_path(directory: Path) -> Path:
    """Write an executable ``helm`` into ``directory`` that runs this module's main."""
    script = directory / "helm"
    body = f"import runpy\nrunpy.run_path({__file__!r}, run_name='__main__')\n"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values: maps merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def main(argv: list[str]) -> int:
    import helm_python
    from helm_python import Config

    parser = argparse.ArgumentParser(prog="helm")
    commands = parser.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template")
    template.add_argument("release")
    template.add_argument("chart")
    template.add_argument("--namespace", "-n", default="default")
    template.add_argument("--values", "-f", action="append", default=[])
    template.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        values: dict[str, Any] = {}
        for path in args.values:
            values = _merge(values, helm_python.values_from_yaml(Path(path).read_text()))
        for expression in args.set:
            values = _merge(values, helm_python.parse_set_string(expression))
        config = Config(storage_driver="memory", namespace=args.namespace)
        release = config.install(
            os.path.abspath(args.chart),
            args.release,
            values,
            dry_run="client",
            namespace=args.namespace,
        )
    except helm_python.HelmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(release["manifest"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
