"""Real services the runtime tests talk to (NATS): skip cleanly when absent, unless required.

CI sets ``KUBESENTINEL_REQUIRE_SERVICES=1`` where the services are started, so a service that
failed to start fails the run instead of silently skipping its tests.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_ENV = "KUBESENTINEL_REQUIRE_SERVICES"


def require_service(host: str, port: int, name: str) -> None:
    """Skip the test (fail it when REQUIRE_ENV=1) unless ``host:port`` accepts connections."""
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc.strerror or exc})"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to make this a failure")
