"""Back-off and retry of the poller (tenacity), without servers: the waits and when it gives up."""

from __future__ import annotations

import threading

import pytest
import tenacity

import storage
from pipeline.core.errors import StorageError
from pipeline.mail.poller import Backoff, retry_while_database_down


def _delays(backoff: Backoff, attempt: int, samples: int = 300) -> list[float]:
    wait = backoff.wait()
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return [wait(state) for _ in range(samples)]


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    backoff = Backoff(1.0, 10.0)
    for attempt, full in enumerate([1.0, 2.0, 4.0, 8.0, 10.0, 10.0], start=1):
        delays = _delays(backoff, attempt)
        # between half and all of initial * 2**(attempt - 1), capped at the maximum, and spread over it
        assert all(full / 2 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert min(delays) < full * 0.6 and max(delays) > full * 0.9


class _Flaky:
    """Fails with ``error`` the first ``failures`` calls, then returns "ok"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


FAST = Backoff(0.01, 0.02)


def test_database_errors_are_retried_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    action = _Flaky(2, StorageError("connection refused"))
    assert retry_while_database_down(action, "open the database", FAST, threading.Event()) == "ok"
    assert action.calls == 3
    assert "the database is unavailable (connection refused); retry 2 in" in caplog.text


def test_gives_up_after_the_attempts_with_the_last_error() -> None:
    action = _Flaky(5, StorageError("down"))
    with pytest.raises(StorageError, match="down"):
        retry_while_database_down(action, "open the database", FAST, threading.Event(), attempts=3)
    assert action.calls == 3


def test_a_schema_error_is_not_retried() -> None:
    action = _Flaky(5, storage.SchemaError("run complaintdesk init"))
    with pytest.raises(storage.SchemaError):
        retry_while_database_down(action, "open the database", FAST, threading.Event())
    assert action.calls == 1


def test_a_stop_request_ends_the_waiting_with_none() -> None:
    stop = threading.Event()

    def fail_then_stop() -> str:
        stop.set()
        raise StorageError("down")

    assert retry_while_database_down(fail_then_stop, "open the database", Backoff(30.0, 60.0), stop) is None
    stop.set()
    assert retry_while_database_down(_Flaky(0, StorageError("-")), "open", FAST, stop) is None
