"""Logging: one JSON object per line for machines, readable lines on a terminal. Every record
of a request carries its request id (and the user's id once known)."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id: ContextVar[str | None] = ContextVar("user_id", default=None)

_JSON = msgspec.json.Encoder(enc_hook=str)  # anything else a record carries: its str()
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


class _RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "user_id"):
            record.user_id = user_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and value is not None
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return _JSON.encode(line).decode()
        except UnicodeEncodeError:  # a lone surrogate, which msgspec refuses: json escapes it
            return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s")

    def format(self, record: logging.LogRecord) -> str:
        extra = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and key != "context" and value is not None
        }
        record.context = "".join(f" {key}={value}" for key, value in extra.items())
        return super().format(record)


def configure_logging(level: str = "INFO", format: str | None = None) -> None:
    """`format` is "json" or "console"; None picks console on a terminal, JSON elsewhere."""
    chosen = format or ("console" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    handler.addFilter(_RequestContext())
    # No line shows the thread or the process: spare every record looking them up.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # yoyo narrates every step of every migration; the service logs each migration once.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    # uvicorn's own access log would repeat the request log line, without its context.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
