"""The simulation's fixed quantities: time units, its default window, the cluster's name."""

from __future__ import annotations

from typing import Final

NS: Final = 1_000_000_000
DEFAULT_START_NS: Final = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
MIN_HOURS: Final = 0.25  # the four attacks need a quarter of an hour to play out
CLUSTER: Final = "sim"
SCENARIOS: Final = ("web-rce", "cron-miner", "container-escape", "exec-exfiltration")
