"""Log records: context ids, JSON lines, and no exception text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from config import Settings
from rxfleet import logs

RAW = "ZH987654321"


@pytest.fixture
def stream() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(logs.TEXT_FORMAT))
    logger = logging.getLogger("rxfleet.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, out, handler
    logger.removeHandler(handler)
    logger.propagate = True


def _fail() -> None:
    raise ValueError(f"bad {RAW}")


def test_exception_text_is_withheld_frames_kept(
    stream: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, out, handler = stream
    logs.install(handler, Settings())
    try:
        _fail()
    except ValueError as exc:
        logger.exception("link failed")
        logger.warning("failed: %s", exc)
        logger.error(exc)
        logger.error("failed: %(exc)s", {"exc": exc})
    text = out.getvalue()
    assert RAW not in text
    assert "builtins.ValueError (message withheld)" in text and "in _fail" in text
    assert text.count("failed: ValueError") == 2


def test_scrub_is_the_last_filter_and_install_is_idempotent() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(logging.Filter())
    logs.install(handler)
    logs.install(handler)
    kinds = [type(f) for f in handler.filters]
    assert kinds == [logging.Filter, logs.ContextFilter, logs.ScrubFilter]


def test_json_lines_with_context_ids(
    stream: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, out, handler = stream
    logs.install(handler, Settings(log_format="json"))
    with logs.bind(run_id="r1", batch=500, count=250, task_id="t1", trace_id="root1"):
        with logs.bind(claim="pt_abc"):
            logger.info("recorded %d claims", 250)
        logger.info("outside the claim")
    logger.info("no context")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["message"] == "recorded 250 claims"
    assert lines[0]["run_id"] == "r1" and lines[0]["batch"] == 500 and lines[0]["count"] == 250
    assert lines[0]["claim"] == "pt_abc" and lines[0]["trace_id"] == "root1"
    assert lines[1]["claim"] is None and lines[1]["run_id"] == "r1"
    assert lines[2]["run_id"] is None and lines[2]["levelname"] == "INFO"


def test_json_exception_is_withheld(
    stream: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, out, handler = stream
    logs.install(handler, Settings(log_format="json"))
    try:
        _fail()
    except ValueError:
        logger.exception("link failed")
    line = json.loads(out.getvalue())
    assert RAW not in out.getvalue() and "ValueError" in line["exc_info"]


def test_unknown_context_field_refused() -> None:
    with pytest.raises(ValueError, match="unknown log context"), logs.bind(member="x"):
        pass


def test_fingerprint_is_stable_and_textless() -> None:
    refs = set()
    for value in ("a", "b"):
        try:
            raise ValueError(value)
        except ValueError as exc:
            refs.add(logs.fingerprint(exc))
    assert len(refs) == 1 and len(refs.pop()) == 12
