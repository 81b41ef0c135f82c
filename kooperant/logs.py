"""Log output of the ``kooperant`` command and the Windows service: where it goes and how it reads.

``configure_logging`` sends every record to stderr, or to a size-rotated file, as one line per
event: a traceback or a message with line breaks is escaped onto that line (text format) or put
into a JSON field (json format). Every line carries the local time with its UTC offset (ISO 8601),
the level, the logger name and the message.

A filter on the handler masks registered secret values (``register_secret``) and the password
part of URLs in the message and in the exception text. Only the handler set up here applies it:
other handlers added to the root logger get records unmasked.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, SecretStr

from kooperant.net import mask_url_credentials

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

MEGABYTE = 1_000_000
DEFAULT_MAX_MEGABYTES = 10.0
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_MEGABYTES * MEGABYTE)
DEFAULT_BACKUP_COUNT = 5

# These libraries log every step (each OPC UA node added, each MQTT session transition) at
# INFO; kooperant logs the outcomes itself, and verbose output brings the detail back.
CHATTY_LIBRARIES = ("alembic", "amqtt", "asyncua", "transitions")

MASK = "***"
# The name of the handler configure_logging installs, so that a second call replaces it.
_HANDLER_NAME = "kooperant"
# A URL inside free text: a scheme, "://" and everything up to the next white space.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


class LogFileError(Exception):
    """Raised when the log file cannot be created or opened for appending."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write the log file {path}: {reason}")
        self.path = path
        self.reason = reason


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line written from now on, also percent-encoded or escaped.

    The escaped forms are those of ``repr`` of the text and of its UTF-8 bytes, and of JSON.
    Empty values are ignored. A very short secret masks every occurrence of those characters,
    which garbles unrelated text but never shows the secret.
    """
    if not value:
        return
    escaped = (repr(value)[1:-1], json.dumps(value)[1:-1], repr(value.encode())[2:-1])
    variants = {value, quote(value, safe=""), *escaped}
    with _secrets_lock:
        _secrets.update(variant for variant in variants if variant)


def register_secrets_in(value: object) -> None:
    """Register every pydantic ``SecretStr`` in ``value``: models, mappings and sequences, deep."""
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            register_secrets_in(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            register_secrets_in(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            register_secrets_in(item)


def mask_secrets(text: str) -> str:
    """Return ``text`` with registered secrets and URL passwords replaced by ``***``."""
    with _secrets_lock:
        # The longest first, so that a secret containing another one is masked whole.
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: mask_url_credentials(match.group(0)), text)


class SecretFilter(logging.Filter):
    """Mask secrets in a record's message, exception text and stack before any handler formats it.

    The record is changed in place: its message is formatted once and its arguments dropped, and
    ``exc_text``, which ``logging.Formatter`` reuses, contains the masked traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A record whose arguments do not fit its format string is still written, masked.
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask_secrets(message)
        record.args = None

        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def _iso_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created).astimezone()
    return moment.isoformat(timespec="milliseconds")


def _escape_line_breaks(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class OneLineFormatter(logging.Formatter):
    """Format ``TIME LEVEL LOGGER: MESSAGE | TRACEBACK`` with line breaks escaped as ``\\n``.

    Backslashes are left as they are, so Windows paths stay readable, and a literal ``\\n`` in a
    message looks the same as an escaped line break.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        details = _exception_and_stack(self, record)
        if details:
            line = f"{line} | {details}"
        return _escape_line_breaks(line)


class JsonFormatter(logging.Formatter):
    """Format one JSON object per line: time, level, logger, message and, if any, exception."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, str] = {
            "time": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exception"] = record.exc_text
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes line breaks inside strings, so the object stays on one line.
        return json.dumps(event, ensure_ascii=False)


def _exception_and_stack(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [record.exc_text or ""]
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return " | ".join(part for part in parts if part)


def configure_logging(
    *,
    verbose: bool,
    log_file: Path | None,
    log_format: LogFormat = "text",
    max_bytes: int = DEFAULT_MAX_BYTES,
    backup_count: int = DEFAULT_BACKUP_COUNT,
) -> None:
    """Send log records to stderr, or to ``log_file`` rotated at ``max_bytes``, one line each.

    ``verbose`` logs DEBUG and the detail of ``CHATTY_LIBRARIES``; otherwise INFO and their
    warnings. ``log_file``'s folder is created, and ``backup_count`` old files are kept as
    ``NAME.1`` to ``NAME.N``. A second call replaces the handler of the first. Raises
    ``LogFileError`` if the file cannot be opened and ``ValueError`` for sizes below 1.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    if backup_count < 1:
        raise ValueError(f"backup_count must be at least 1, got {backup_count}")

    handler = _open_handler(log_file, max_bytes, backup_count)
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter())
    handler.addFilter(SecretFilter())
    handler.set_name(_HANDLER_NAME)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

    library_level = logging.NOTSET if verbose else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)


def _open_handler(log_file: Path | None, max_bytes: int, backup_count: int) -> logging.Handler:
    if log_file is None:
        return logging.StreamHandler(sys.stderr)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
    except FileExistsError as error:
        # mkdir reports a file where a folder of the path should be as "File exists".
        raise LogFileError(log_file, os.strerror(errno.ENOTDIR)) from error
    except OSError as error:
        raise LogFileError(log_file, error.strerror or str(error)) from error
