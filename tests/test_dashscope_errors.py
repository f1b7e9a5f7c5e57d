"""Error answers mapped to wanflow's errors: what is retryable, what is uncertain, and the
provider's code and message kept (without the key)."""
from __future__ import annotations

import email.utils
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from dashscope_support import KEY, T2V, emulator, expect, make, no_secret, run, submits

from wanflow import models
from wanflow.backends.dashscope.errors import retry_after, task_code_retryable
from wanflow.errors import (
    AuthError,
    BackendError,
    RateLimited,
    SubmitUncertain,
    TaskFailed,
)
from wanflow.plan.request import GenRequest


@pytest.fixture
def emu():
    with emulator() as e:
        yield e


def test_401_is_auth_error_without_the_key(emu):
    wrong = KEY + "-revoked"

    async def go():
        async with make(emu.base_url, api_key=wrong) as backend:
            await backend.submit(T2V, {})

    with pytest.raises(AuthError) as info:
        run(go())
    assert wrong not in str(info.value) and info.value.code == "InvalidApiKey"
    assert info.value.status == 401 and "Invalid API-key provided." in str(info.value)
    no_secret(info.value)


def test_429_is_rate_limited_with_retry_after(emu):
    emu.faults.submit_429 = 1
    emu.faults.retry_after = 2.5

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(RateLimited, go())
    assert err.retryable and err.retry_after == 2.5 and err.code == "Throttling.RateQuota"
    assert "Requests rate limit exceeded" in str(err) and not emu.submissions()


def test_400_carries_the_provider_code_and_message(emu):
    bad = GenRequest(model="wan2.6-t2v", endpoint=models.VIDEO_SYNTHESIS,
                     body={"model": "wan2.6-t2v", "input": {"prompt": "p"},
                           "parameters": {"size": "832*480", "duration": 5}},
                     blobs=(), take=1, duration=5, resolution="480P", width=832, height=480, fps=30)

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(bad, {})

    err = expect(BackendError, go())
    assert type(err) is BackendError and err.code == "InvalidParameter" and not err.retryable
    assert "parameters.size '832*480' is not supported by model wan2.6-t2v" in str(err)
    assert err.status == 400 and err.request_id


@pytest.mark.parametrize("fault, code, retryable", [
    ("inspection_fail", "DataInspectionFailed", False), ("fail_tasks", "InternalError", True)])
def test_failed_task_raises_provider_code_and_message(emu, fault, code, retryable):
    setattr(emu.faults, fault, 1)

    async def go():
        async with make(emu.base_url) as backend:
            sub = await backend.submit(T2V, {})
            await backend.wait(sub.remote_id, T2V)

    err = expect(TaskFailed, go())
    assert err.code == code and err.retryable is retryable
    assert err.provider_message == emu.tasks()[next(iter(emu.tasks()))]["message"]


def test_5xx_after_create_is_uncertain_and_never_resubmitted(emu):
    emu.faults.submit_5xx_after_create = 1

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, go())
    assert not err.retryable and err.status == 500 and err.code == "InternalError"
    assert "--resubmit-uncertain" in str(err) and "GET /tasks" in str(err)
    assert len(emu.tasks()) == 1 and len(submits(emu)) == 1


def test_reset_or_timeout_after_sending_is_uncertain_and_never_resubmitted(emu):
    emu.faults.submit_reset = 1

    async def reset():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, reset())
    assert "connection failed after the request was sent" in str(err)
    assert len(submits(emu)) == 1
    assert len(emu.tasks()) == 0  # this emulator fault drops the connection before creating

    # A reply slower than the client's timeout: the server creates the task after we gave up.
    emu.faults.slow_ms = 700

    async def slow():
        async with make(emu.base_url, timeout=0.3) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, slow())
    assert "no answer within the timeout" in str(err)
    emu.faults.slow_ms = 0
    deadline = time.monotonic() + 10
    while not emu.tasks() and time.monotonic() < deadline:
        time.sleep(0.02)   # the slow answer creates its task after the client gave up
    assert len(submits(emu)) == 2 and len(emu.tasks()) == 1


def test_connect_failure_is_retryable_not_uncertain():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens

    async def go():
        async with make(f"http://127.0.0.1:{port}/api/v1") as backend:
            await backend.submit(T2V, {})

    err = expect(BackendError, go())
    assert not isinstance(err, SubmitUncertain) and err.retryable and err.code == "ConnectError"


@pytest.mark.parametrize("status, code, kind, retryable", [
    (503, "ModelUnavailable", BackendError, True),
    (502, "BadGateway", SubmitUncertain, False),
    (504, "GatewayTimeout", SubmitUncertain, False),
    (429, "Throttling.AllocationQuota", BackendError, False),
    (403, "AccessDenied.Unpurchased", BackendError, False),
])
def test_submit_status_mapping(status, code, kind, retryable):
    def handler(request):
        return httpx.Response(status, json={"request_id": "rid-1", "code": code, "message": "m"},
                              headers={"retry-after-ms": "1500"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(kind, backend.submit(T2V, {}))
    assert type(err) is kind and err.code == code and err.retryable is retryable
    assert err.request_id == "rid-1" and err.status == status and err.retry_after == 1.5


def test_retry_after_reads_milliseconds_seconds_and_http_dates():
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"retry-after": "-3"}) == 0.0
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after({"retry-after": later}) <= 30
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_which_failed_task_codes_may_be_submitted_again():
    for code in ("InternalError", "InternalError.Timeout", "ModelServiceFailed", "SystemError",
                 "RequestTimeOut"):
        assert task_code_retryable(code), code
    for code in ("InternalError.Algo", "DataInspectionFailed", "InvalidParameter"):
        assert not task_code_retryable(code), code


def test_provider_text_echoing_the_key_is_scrubbed():
    def handler(request):
        return httpx.Response(401, json={"code": "InvalidApiKey",
                                         "message": f"Invalid API-key provided: {KEY}"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(AuthError, backend.submit(T2V, {}))
    assert "<api-key>" in str(err)


