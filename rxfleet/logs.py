"""Logging: context ids on every record, JSON lines on demand, and no exception text.

* ``bind(run_id=..., batch=..., claim=..., task_id=..., trace_id=...)`` puts ids
  in a ``contextvars`` context; ``ContextFilter`` copies them onto every record
  (``None`` when unknown). The base task binds the run, the batch (its first
  sequence number) and count, the task id and the chain's root id (the trace).
* ``RXFLEET_LOG_FORMAT=json``: one JSON object a line (python-json-logger) with
  those ids; ``text`` (the default) keeps the handler's format and appends the ids
  bound (``[run_id=... link=validate batch=500 count=500]``).
* ``push``/``pop``: the same, for a pair of hooks: the worker binds a link's ids at
  Celery's ``task_prerun`` and drops them at ``task_postrun``, so Celery's own task
  lines (succeeded, retry, failed) carry them too.
* ``ScrubFilter``, always the last filter of every handler: exception text is
  never trusted (a message may quote a claim's value), so a record's exception
  becomes its type and its traceback's frames (no locals, no message), and an
  exception passed as a log argument becomes its type name. rxfleet's own log
  calls interpolate ids, counts and codes only, never a value of a claim.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from config import Settings

CONTEXT_FIELDS = ("run_id", "link", "batch", "count", "claim", "task_id", "trace_id")
#: What a text line shows of the context, when bound (ids a reader follows a batch by).
TEXT_FIELDS = ("run_id", "link", "batch", "count", "trace_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message", *CONTEXT_FIELDS]

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rxfleet_log_context", default=None
)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ids to the log context for the ``with`` block (this thread or task only)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def push(**fields: Any) -> contextvars.Token[dict[str, Any] | None]:
    """``bind`` for a pair of hooks (Celery's task_prerun and task_postrun): the
    returned token goes back to ``pop``."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    return _context.set({**(_context.get() or {}), **fields})


def pop(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Copies the bound ids onto the record (every field present, ``None`` when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # At interpreter shutdown module globals (contextlib too) are None: no ``suppress``.
        try:
            bound = _context.get() or {}
            for name in CONTEXT_FIELDS:
                if not hasattr(record, name) or name in bound:
                    setattr(record, name, bound.get(name))
        except (AttributeError, TypeError):
            pass
        return True


def fingerprint(exc: BaseException) -> str:
    """A stable id of a failure: its type and code locations, never its text."""
    parts = [f"{type(exc).__module__}.{type(exc).__qualname__}"]
    for frame in traceback.extract_tb(exc.__traceback__):
        parts.append(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}:{frame.lineno}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def safe_traceback(exc: BaseException) -> str:
    """The traceback's frames and the exception's type name: no message, no locals."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    blocks = []
    for one in reversed(chain):
        frames = "".join(
            traceback.StackSummary.extract(traceback.walk_tb(one.__traceback__)).format()
        )
        name = f"{type(one).__module__}.{type(one).__qualname__}"
        blocks.append(f"Traceback (most recent call last):\n{frames}{name} (message withheld)")
    return "\n\nwhich led to:\n\n".join(blocks)


def _scrub_arg(value: Any) -> Any:
    return type(value).__name__ if isinstance(value, BaseException) else value


class ScrubFilter(logging.Filter):
    """Exception text out of every record; keep it the last filter of a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, BaseException):
            record.msg = type(record.msg).__name__
        if isinstance(record.args, Mapping):
            record.args = {k: _scrub_arg(v) for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_scrub_arg(v) for v in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = safe_traceback(record.exc_info[1])
            record.exc_info = None
            record.rxfleet_scrubbed = True
        elif record.exc_text and not getattr(record, "rxfleet_scrubbed", False):
            record.exc_text = "(exception text withheld)"
        return True


class TextFormatter(logging.Formatter):
    """The handler's own text format (Celery's, or ``TEXT_FORMAT``), then the bound ids:
    ``... succeeded in 0.05s: {...} [run_id=3f2c... link=validate batch=500 count=500]``."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        ids = [f"{name}={getattr(record, name)}" for name in TEXT_FIELDS
               if getattr(record, name, None) is not None]  # fmt: skip
        return f"{line} [{' '.join(ids)}]" if ids else line


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(JSON_FIELDS)


def install(handler: logging.Handler, settings: Settings | None = None) -> None:
    """Context and scrub filters on ``handler`` (scrub last); JSON when configured."""
    for old in [f for f in handler.filters if isinstance(f, ContextFilter | ScrubFilter)]:
        handler.removeFilter(old)
    handler.addFilter(ContextFilter())
    handler.addFilter(ScrubFilter())
    if settings is not None and settings.log_format == "json":
        handler.setFormatter(json_formatter())
    elif not isinstance(handler.formatter, TextFormatter):
        handler.setFormatter(TextFormatter(handler.formatter))


def configure(settings: Settings, root: logging.Logger | None = None) -> None:
    """Install the filters (and the JSON format) on every handler of the root logger."""
    root = root or logging.getLogger()
    for handler in root.handlers:
        install(handler, settings)
