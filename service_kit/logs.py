"""One log format for every process, with the request id on every line: text for a terminal
(the default), or with LOG_FORMAT=json one JSON object per line, carrying the request id, the
W3C trace and span ids of the work in hand and the id of the event being applied."""

import contextvars
import datetime
import json
import logging
import logging.config
from typing import Any

from opentelemetry import trace

from service_kit import request_id

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s rid=%(request_id)s %(message)s"
LOG_FORMATS = ("text", "json")
_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)


def bind_event(event_id: str | None) -> None:
    """The event whose application the following log lines of this thread are about."""
    _event_id.set(event_id)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """A line of JSON per record: time (UTC, RFC 3339), level, logger, message, process,
    request_id, trace_id and span_id (in a trace), event_id (applying an event), exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "request_id": request_id.current(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = f"{span.trace_id:032x}"
            line["span_id"] = f"{span.span_id:016x}"
        if (event_id := _event_id.get()) is not None:
            line["event_id"] = event_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(level: str = "INFO", log_format: str = "text") -> dict[str, Any]:
    """A dictConfig for the root logger and gunicorn's own loggers."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": log_format,
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"text": {"format": FORMAT}, "json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
            # Connexion logs every validation failure at ERROR; the 400 answer says it already.
            "connexion.decorators.validation": {"level": "CRITICAL"},
            # pika logs each failed connection attempt (tracebacks included) several times at
            # ERROR; the worker's tasks say it once per outage (messaging/broker.py's Outage).
            "pika": {"level": "CRITICAL"},
        },
    }


def configure(level: str = "INFO", log_format: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, log_format))
