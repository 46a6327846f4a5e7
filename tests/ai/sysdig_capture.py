"""Run Debian's sysdig on the shared captures, or skip saying what to install."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import shared_path

INSTALL = "apt-get install sysdig (Debian's 0.29 reads .scap captures offline, no kernel module)"


def sysdig_json(capture: str, *args: str) -> bytes:
    """``sysdig -r CAPTURE -j ARGS...`` output for a file in ../shared/falco/captures."""
    path = shared_path("falco", "captures", capture)
    if shutil.which("sysdig") is None:
        pytest.skip(f"needs the sysdig binary: {INSTALL}")
    done = subprocess.run(
        ["sysdig", "-r", str(path), "-j", *args], capture_output=True, timeout=120, check=True
    )
    return done.stdout
