"""Logging: JSON lines for machines, key=value lines for people, the request id on each."""

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from entrypoints import logs
from entrypoints.logs import ConsoleFormatter, JsonFormatter, configure_logging

TOUCHED_LOGGERS = ("yoyo", "uvicorn", "uvicorn.error", "uvicorn.access", "todo_api.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it all back after each test."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for name in TOUCHED_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


@pytest.fixture
def request_id() -> Iterator[str]:
    token = logs.request_id.set("req-7f3a")
    try:
        yield "req-7f3a"
    finally:
        logs.request_id.reset(token)


def record(
    message: str = "hello %s",
    args: tuple[Any, ...] = ("world",),
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
) -> logging.LogRecord:
    return logging.getLogger("todo_api.test").makeRecord(
        "todo_api.test", level, __file__, 1, message, args, exc_info, extra=extra
    )


def emitted_lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines()]


# --- JsonFormatter ----------------------------------------------------------------------------


def test_a_json_line_has_time_level_logger_and_message() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert line["level"] == "info"
    assert line["logger"] == "todo_api.test"
    assert line["message"] == "hello world"
    assert line["time"].endswith("+00:00")
    assert len(line["time"]) == len("2025-06-01T12:00:00.000+00:00")
    assert set(line) == {"time", "level", "logger", "message"}


def test_a_json_line_carries_the_extra_fields_but_not_empty_ones() -> None:
    user = UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
    extra = {"status": 201, "path": "/api/tasks", "user": user, "nothing": None}
    line = json.loads(JsonFormatter().format(record(extra=extra)))
    assert (line["status"], line["path"], line["user"]) == (201, "/api/tasks", str(user))
    assert "nothing" not in line


def test_a_json_line_keeps_text_that_is_not_valid_unicode() -> None:
    # A lone surrogate (from a badly decoded header, say) cannot be encoded as UTF-8.
    line = json.loads(JsonFormatter().format(record("got %s", ("\ud800 and more",))))
    assert line["message"] == "got \ud800 and more"


def test_a_json_line_carries_the_exception() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        line = json.loads(JsonFormatter().format(record(exc_info=sys.exc_info())))
    assert "RuntimeError: boom" in line["exception"]
    assert "Traceback" in line["exception"]


def test_each_record_is_one_json_object_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("todo_api.test")
    log.info("first\nwith a second line", extra={"n": 1})
    log.warning("second", extra={"n": 2})
    lines = emitted_lines(capsys.readouterr().err)
    assert [(line["message"], line["n"], line["level"]) for line in lines] == [
        ("first\nwith a second line", 1, "info"),
        ("second", 2, "warning"),
    ]


def test_a_json_line_carries_the_request_id_of_its_context(
    capsys: pytest.CaptureFixture[str], request_id: str
) -> None:
    configure_logging("INFO", "json")
    user_token = logs.user_id.set("user-42")
    try:
        logging.getLogger("todo_api.test").info("inside a request")
    finally:
        logs.user_id.reset(user_token)
    [line] = emitted_lines(capsys.readouterr().err)
    assert (line["request_id"], line["user_id"]) == (request_id, "user-42")


def test_outside_a_request_there_is_no_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("todo_api.test").info("at startup")
    [line] = emitted_lines(capsys.readouterr().err)
    assert "request_id" not in line
    assert "user_id" not in line


def test_an_explicit_request_id_wins_over_the_context(
    capsys: pytest.CaptureFixture[str], request_id: str
) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("todo_api.test").info("x", extra={"request_id": "given"})
    [line] = emitted_lines(capsys.readouterr().err)
    assert line["request_id"] == "given"


# --- ConsoleFormatter -------------------------------------------------------------------------


def test_a_console_line_puts_extras_as_key_value() -> None:
    text = ConsoleFormatter().format(
        record(extra={"status": 404, "path": "/api/tasks/x", "nothing": None})
    )
    assert text.endswith("INFO    todo_api.test: hello world status=404 path=/api/tasks/x")
    assert "nothing" not in text
    assert "\n" not in text


def test_a_console_line_without_extras_ends_with_the_message() -> None:
    assert ConsoleFormatter().format(record()).endswith("todo_api.test: hello world")


def test_a_console_line_carries_the_request_id_of_its_context(
    capsys: pytest.CaptureFixture[str], request_id: str
) -> None:
    configure_logging("INFO", "console")
    logging.getLogger("todo_api.test").warning("slow", extra={"ms": 1200})
    [text] = capsys.readouterr().err.splitlines()
    assert text.endswith(f"WARNING todo_api.test: slow ms=1200 request_id={request_id}")


# --- configure_logging ------------------------------------------------------------------------


def test_configure_logging_sets_the_level_and_silences_the_access_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger("uvicorn.access").disabled = False
    configure_logging("WARNING", "json")
    root = logging.getLogger()
    assert root.level == logging.WARNING
    [handler] = root.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert logging.getLogger("uvicorn.access").disabled

    log = logging.getLogger("todo_api.test")
    log.info("dropped")
    log.warning("kept")
    logging.getLogger("uvicorn.access").warning("GET / 200")
    assert [line["message"] for line in emitted_lines(capsys.readouterr().err)] == ["kept"]


def test_configure_logging_reads_the_level_in_any_case() -> None:
    configure_logging("debug", "console")
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    [handler] = root.handlers
    assert isinstance(handler.formatter, ConsoleFormatter)


def test_configure_logging_replaces_handlers_rather_than_adding_them() -> None:
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")
    assert len(logging.getLogger().handlers) == 1


def test_uvicorns_own_records_reach_the_root_handler(capsys: pytest.CaptureFixture[str]) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.NullHandler())
    uvicorn_error.propagate = False
    configure_logging("INFO", "json")
    uvicorn_error.info("Started server process")
    [line] = emitted_lines(capsys.readouterr().err)
    assert (line["logger"], line["message"]) == ("uvicorn.error", "Started server process")


def test_yoyo_narrates_only_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "json")
    logging.getLogger("yoyo").info("applying step 1 of 40")
    assert capsys.readouterr().err == ""
