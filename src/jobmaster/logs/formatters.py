"""Formats for worker logs: one line a record, as text or as JSON, for people and log shippers."""

from __future__ import annotations

import logging
import logging.config
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from jobmaster.errors import ConfigError
from jobmaster.logs.context import JOB_FIELDS, JobFieldsFilter


class TextFormatter(logging.Formatter):
    """One record a line, UTC timestamps, the job id when there is one: log shippers split on
    newlines, so a traceback's newlines are written as `\\n`."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(job_tag)s%(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job_tag = "" if job_id is None else f"[job {job_id}] "
        return super().format(record).replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the job's fields, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


FORMATTERS: Mapping[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


def configure(
    *, fmt: str = "text", levels: Sequence[str] = ("INFO",), config_file: str | Path | None = None
) -> None:
    """Logging for a worker process: one stderr handler in `fmt`, with the job fields, and levels
    given as `LEVEL` (the root's) or `logger=LEVEL`; or a standard `logging` config file (`.ini`
    for `fileConfig`, `.json` for `dictConfig`) instead of the handler, with the levels on top."""
    root = logging.getLogger()
    if config_file is not None:
        _load_config(Path(config_file))
        for handler in root.handlers:
            handler.addFilter(JobFieldsFilter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FORMATTERS[fmt]())
        handler.addFilter(JobFieldsFilter())
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
    for spec in levels:
        name, _, level = spec.rpartition("=")
        number = logging.getLevelName(level.strip().upper())
        if not isinstance(number, int):
            raise ConfigError(f"--log-level {spec!r}: {level!r} is not a level (DEBUG, INFO, WARNING, ERROR)")
        logging.getLogger(name.strip() or None).setLevel(number)


def _load_config(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"--log-config: no file {path}")
    try:
        if path.suffix == ".json":
            logging.config.dictConfig(orjson.loads(path.read_bytes()))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"--log-config {path}: {exc}") from None
