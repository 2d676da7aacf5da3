"""Structured JSON log lines with the request id and no personal data (LG-4).

Every line is one JSON object: time, level, logger, message, request id, and only whitelisted extra
fields. Exceptions are logged as their type and the stack's file/line/function, never their message or
local values: a database error's message can carry the bound parameters of a statement, and those can
be a person's name.
"""

from __future__ import annotations

import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

from app.config import Settings

# The request being served on this task (set by the request middleware in app/main.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("shokai_request_id", default=None)
# Extra fields a log call may attach (``extra={...}``); anything else is dropped.
SAFE_FIELDS = ("code", "job", "outcome", "kind", "status", "route", "seq", "count", "run_id")
_HANDLER_MARK = "_shokai_json_handler"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        for name in SAFE_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["stack"] = [
                f"{frame.filename}:{frame.lineno}:{frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])
            ]
        return orjson.dumps(line, default=str).decode()


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr for the ``shokai`` loggers (once per process, whatever the number of apps)."""
    logger = logging.getLogger("shokai")
    logger.setLevel(settings.log_level.upper())
    if not settings.log_json or any(getattr(h, _HANDLER_MARK, False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)
    logger.propagate = False
