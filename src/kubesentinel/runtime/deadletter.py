"""The dead-letter file: malformed alerts with where they came from and why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from kubesentinel.runtime.parse import Rejected


class DeadLetter:
    """Malformed alerts, one JSON object per line: where from, why, and the bytes (as text)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stream: TextIO | None = None

    def write(self, rejected: Sequence[Rejected]) -> None:
        if not rejected or self.path is None:
            return
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("a", encoding="utf-8")
        for item in rejected:
            record = {
                "origin": item.origin,
                "reason": item.reason,
                "data": item.data.decode("utf-8", errors="replace"),
            }
            self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
