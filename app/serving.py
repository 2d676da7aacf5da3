"""How a Shokai server process is started: uvicorn's options in one place (no personal data in logs).

uvicorn's own access log writes every request line with its query string, and
``GET /audit/subject-access`` takes a person's kana name and birth date as query parameters (api.md).
So uvicorn's access log is off and its loggers write the project's JSON lines; the request line is
logged by the app itself (``RequestContext`` in app/main.py) with the route template, never the URL.
Both the image (`shokai gateway`) and `shokai serve` start through :func:`server_config`.
"""

from __future__ import annotations

from typing import Any

import uvicorn

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.monitoring.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        # Never a handler here, whatever else is configured: its lines carry the query string.
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


# What every server gets; the callers add where to listen, workers and the like.
SERVER_OPTIONS: dict[str, Any] = {"access_log": False, "log_config": LOG_CONFIG, "server_header": False}


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of a Shokai server; ``app`` is an app or an import string."""
    return uvicorn.Config(app, **SERVER_OPTIONS, **options)


def run(app: Any, **options: Any) -> None:
    """``uvicorn.run`` with :data:`SERVER_OPTIONS` (one process or several workers)."""
    uvicorn.run(app, **SERVER_OPTIONS, **options)
