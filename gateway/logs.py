"""Logging: one JSON object per line (or plain text), with phone numbers masked on the way out.

``logging.format`` picks the form; left out, a terminal gets text (a person is reading) and
anything else — a pipe, a file, journald — gets JSON (a program is).

Masking covers everything a line can carry: the message, ``extra`` fields and tracebacks, in both
formats, so a careless ``log.info("…", extra={"phone": …})`` cannot leak a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, BinaryIO, TextIO

import orjson

from gateway.config.model import LoggingConfig
from gateway.payload_masking import mask_payload
from gateway.phones import scrub

__all__ = [
    "ACCESS_LOG",
    "AccessLog",
    "JsonFormatter",
    "MaskingFilter",
    "MaskingFormatter",
    "TextFormatter",
    "escape_controls",
    "log_masked",
    "setup_logging",
]

# Attributes every LogRecord has; anything else was passed in ``extra`` and belongs in the line.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: The record attribute ``log_masked`` puts its fields under: masked already, JSON-ready.
MASKED_FIELDS = "smsedge_masked_fields"


def _iso_time(created: float, _last: list[Any] = [None, ""]) -> str:  # noqa: B006 — the cache
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, its date and
    time of day formatted once per second (isoformat with a timespec costs several µs a line).

    The microseconds are rounded as ``fromtimestamp`` rounds them (half to even)."""
    whole = int(created)
    micro = round((created - whole) * 1e6)
    if created < 0 or micro >= 1_000_000:  # before 1970, or rounded up to the next second
        return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    if whole != _last[0]:
        _last[:] = whole, datetime.fromtimestamp(whole, UTC).isoformat()[:-6]  # without "+00:00"
    return f"{_last[1]}.{micro // 1000:03d}+00:00"


def log_masked(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """Log at INFO a line whose message and fields the caller has masked already (the access log).

    The same line ``logger.info(message, extra=fields)`` gives, without its per-line costs: no
    caller lookup (the line names no source file), no second masking of the message, and in JSON
    no round trip of the fields through orjson and ``mask_payload``.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.handle(
            logger.makeRecord(
                logger.name,
                logging.INFO,
                "(unknown file)",
                0,
                message,
                (),
                None,
                extra={MASKED_FIELDS: fields},
            )
        )


class AccessLog:
    """The access log (``smsedge.access``): one line per request, the hottest line there is.

    Where lines are JSON on the one stream ``setup_logging`` set up, a line is encoded once, as
    ``JsonFormatter`` would, and the lines of one loop turn go out together at its end: no
    ``LogRecord``, no handler lock, no write call per line. They go in writes of whole lines of at
    most ``PIPE_BUF`` bytes, so that on a pipe that several workers share (systemd, Docker) each
    write is atomic and no line is cut by another worker's, as with one write per line. Elsewhere
    (text lines, tests, no ``setup_logging``) a line goes through ``logging`` like any other.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger("smsedge.access")
        self._stream: BinaryIO | None = None
        self._lines: list[bytes] = []

    @property
    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def direct(self, stream: BinaryIO | None) -> None:
        """Write JSON lines straight into ``stream`` (the log handler's own), or None: via logging."""
        self._stream = stream

    def write(self, message: str, fields: dict[str, Any]) -> None:
        """One line whose message and fields the caller has masked already."""
        if self._stream is None:
            log_masked(self._logger, message, fields)
            return
        if not self._lines:
            asyncio.get_running_loop().call_soon(self._flush)
        self._lines.append(
            orjson.dumps(
                {
                    "time": _iso_time(time.time()),
                    "level": "INFO",
                    "logger": self._logger.name,
                    "message": message,
                    **fields,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )

    def _flush(self) -> None:
        lines, self._lines = self._lines, []
        if self._stream is None:
            return
        # A stream that is gone loses the lines, as logging's own handler would.
        with contextlib.suppress(OSError, ValueError):
            for chunk in _whole_lines(lines, select.PIPE_BUF):
                self._stream.write(chunk)
                self._stream.flush()


def _whole_lines(lines: list[bytes], most: int) -> Iterator[bytes]:
    """``lines`` joined into chunks of at most ``most`` bytes (a longer line is a chunk alone)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > most:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk)


ACCESS_LOG = AccessLog()


class MaskingFilter(logging.Filter):
    """Mask any phone-shaped digits in a message before a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if MASKED_FIELDS in record.__dict__:  # masked by whoever logged it (``log_masked``)
            return True
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

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub(super().formatStack(stack_info))


def _printable(char: str) -> bool:
    return char.isprintable() or unicodedata.category(char) == "Zs"


def escape_controls(text: str) -> str:
    """``text`` with what a terminal would not show as itself (line breaks, escape sequences,
    direction overrides, zero-width characters) written as ``repr`` writes it: ``\\n``, ``\\u202e``."""
    if text.isprintable():  # nearly every line: one pass in C
        return text
    return "".join(char if _printable(char) else char.encode("unicode_escape").decode() for char in text)


class TextFormatter(MaskingFormatter):
    """A line for a person: time, level, logger, message, then an access line's fields as
    ``key=value`` (masked with the rest of the line). Control characters in any of them are
    escaped (``escape_controls``): a name or a carrier's text holding a newline cannot forge a
    line. A traceback keeps its own lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = record.__dict__.get(MASKED_FIELDS)
        if fields:
            line += "".join(f" {key}={value}" for key, value in fields.items() if value is not None)
        return escape_controls(line)


class JsonFormatter(MaskingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__.get(MASKED_FIELDS)
        if fields is not None and not record.exc_info and not record.stack_info:
            return orjson.dumps(
                {
                    "time": _iso_time(record.created),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": record.getMessage(),
                    **fields,
                }
            ).decode()
        line = {
            "time": _iso_time(record.created),
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


def _line_format(configured: str, stream: TextIO) -> str:
    """``json`` or ``text``: as configured, else text when ``stream`` is a terminal."""
    if configured != "auto":
        return configured
    return "text" if stream.isatty() else "json"


def setup_logging(config: LoggingConfig) -> None:
    # No line names a thread or a process: don't look them up for every record (the logging
    # HOWTO's own advice for a hot path).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    json_lines = _line_format(config.format, sys.stderr) == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    ACCESS_LOG.direct(getattr(sys.stderr, "buffer", None) if json_lines else None)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
