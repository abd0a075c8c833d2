"""Structured (JSON) logs. Records carry what happened, never request bodies or patient data."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

ACCESS_FORMAT = (
    '{"time": "%(t)s", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": %(B)s, "ms": %(M)s}'
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def logging_config(level: str = "INFO") -> dict:
    def handler(formatter: str) -> dict:
        return {
            "class": "logging.StreamHandler",
            "formatter": formatter,
            "stream": "ext://sys.stderr",
        }

    return {
        "version": 1,
        "disable_existing_loggers": False,
        # access lines are JSON already (ACCESS_FORMAT); everything else goes through JsonFormatter
        "formatters": {"json": {"()": JsonFormatter}, "raw": {"format": "%(message)s"}},
        "handlers": {"stderr": handler("json"), "access": handler("raw")},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }
