"""One log format for every process, with the request id on every line."""

import logging
import logging.config
from typing import Any

from service_kit import request_id

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s rid=%(request_id)s %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current() or "-"
        return True


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for the root logger and gunicorn's own loggers."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "standard",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"standard": {"format": FORMAT}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
            # Connexion logs every validation failure at ERROR; the 400 answer says it already.
            "connexion.decorators.validation": {"level": "CRITICAL"},
        },
    }


def configure(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
