"""Log records: context ids, JSON lines, and no exception text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from config import Settings
from rxfleet import logs
from workers import signals

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


def test_celery_task_lines_carry_the_links_ids_and_one_summary_line(
    stream: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    """task_prerun binds run, link, batch and count before Celery logs the task; a
    line logged then (Celery's own "succeeded") has them, and postrun logs one summary
    line of the link's counts, then unbinds."""
    logger, out, handler = stream
    logs.install(handler, Settings(log_format="json"))
    signals.log.addHandler(handler)
    level = signals.log.level
    signals.log.setLevel(logging.INFO)
    task = SimpleNamespace(name="tasks.crosswalk.crosswalk", request=SimpleNamespace(root_id="r0"))
    try:
        signals._on_task_prerun(task_id="t1", task=task, args=("run-1", 500, 250))
        logger.info("Task %s succeeded", "tasks.crosswalk.crosswalk")
        signals._on_task_postrun(task_id="t1", retval={"done": 240, "quarantined": 10,
                                 "reason": RAW, "deferred": False}, state="SUCCESS")  # fmt: skip
        logger.info("after the task")
    finally:
        signals.log.removeHandler(handler)
        signals.log.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    celery_line, summary, after = lines
    for line in (celery_line, summary):
        assert (line["run_id"], line["link"], line["batch"], line["count"]) == (
            "run-1", "crosswalk", 500, 250)  # fmt: skip
        assert line["trace_id"] == "r0" and line["task_id"] == "t1"
    assert "link crosswalk success in" in summary["message"]
    assert "done=240 quarantined=10" in summary["message"] and RAW not in summary["message"]
    assert after["run_id"] is None and after["link"] is None


def test_text_lines_show_the_bound_ids(
    stream: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, out, handler = stream
    logs.install(handler, Settings())
    with logs.bind(run_id="run-2", link="submit", batch=0, count=500):
        logger.info("window sent")
    logger.info("no ids")
    first, second = out.getvalue().splitlines()
    assert first.endswith("window sent [run_id=run-2 link=submit batch=0 count=500]")
    assert second.endswith("no ids")
