"""Logging: one JSON object per line (or plain text), with phone numbers masked on the way out.

Masking covers everything a line can carry: the message, ``extra`` fields and tracebacks, in both
formats, so a careless ``log.info("…", extra={"phone": …})`` cannot leak a number.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from gateway.config.model import LoggingConfig
from gateway.phones import mask_payload, scrub

__all__ = ["JsonFormatter", "MaskingFilter", "MaskingFormatter", "setup_logging"]

# Attributes every LogRecord has; anything else was passed in ``extra`` and belongs in the line.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class MaskingFilter(logging.Filter):
    """Mask any phone-shaped digits in a message before a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = scrub(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class MaskingFormatter(logging.Formatter):
    """Lines masked whole: message, traceback (even one another handler cached on the record)
    and stack."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))

    def formatException(self, ei) -> str:
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub(super().formatStack(stack_info))


class JsonFormatter(MaskingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        line.update(mask_payload(orjson.loads(orjson.dumps(extra, default=str))))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line).decode()


def setup_logging(config: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
