"""The monitor's log lines on stderr: text for people, or one JSON object per line
(``--log-format json``) for a log pipeline.

Text lines escape control characters: workload names, rules and origins come from alerts, and
an attacker must not be able to forge log lines or drive the terminal. JSON lines carry the
same message plus the structured fields a line was given (``extra={"incident": {...}}``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Final

LOGGER: Final = "kubesentinel"
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\n(?!  )")
_STRUCTURED: Final = ("incident",)
log = logging.getLogger(f"{LOGGER}.monitor")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("kubesentinel: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.exc_info:  # a traceback keeps its lines; the message itself is escaped
            return text
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _STRUCTURED:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure(fmt: str, level: int = logging.INFO) -> None:
    """Send KubeSentinel's log records to stderr in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
