"""Waiting for a task: the poll schedule, the query-rate limit, terminal and transient
answers."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from dashscope_support import KEY, T2V, api_calls, emulator, expect, make, run, submits

from wanflow.backends.base import Finished
from wanflow.backends.dashscope.polling import PollSchedule, jittered
from wanflow.backends.emulator import Emulator
from wanflow.errors import BackendError, TaskFailed


@pytest.fixture
def emu():
    with emulator() as e:
        yield e


def test_wait_returns_finished_with_usage_and_actual_prompt(emu):
    async def go():
        async with make(emu.base_url) as backend:
            sub = await backend.submit(T2V, {})
            return sub, await backend.wait(sub.remote_id, T2V)

    sub, done = run(go())
    assert isinstance(done, Finished) and done.remote_id == sub.remote_id
    assert done.status == "SUCCEEDED" and done.video_url.startswith("http://127.0.0.1")
    assert done.usage["duration"] == 5 and done.billed_seconds == 5.0
    assert done.actual_prompt and done.actual_prompt.startswith("a cheetah")
    assert done.request_id


def test_poll_schedule_first_near_expected_then_proportional_capped_and_urgent():
    s = PollSchedule(first=20.0, poll_max=30.0, timeout=1800.0)
    assert s.first_delay(0.0) == 20.0 and s.first_delay(-3.0) == 20.0
    assert s.first_delay(15.0) == 5.0 and s.first_delay(60.0) == 0.0  # a resumed wait
    assert s.next_delay(50.0, urgent=False, retry_after=None) == pytest.approx(10.0)
    assert s.next_delay(0.0, urgent=False, retry_after=None) == 1e-3
    assert s.next_delay(1000.0, urgent=False, retry_after=None) == 30.0
    assert s.next_delay(1000.0, urgent=True, retry_after=None) == pytest.approx(5.0)
    assert s.next_delay(50.0, urgent=False, retry_after=12.0) == 12.0
    assert all(9.0 <= jittered(10.0) <= 11.0 for _ in range(200))


def test_polls_stay_under_query_qps_across_concurrent_waits():
    qps, n = 8.0, 20
    with Emulator(api_keys=(KEY,), latency=(0.5, 1.5), concurrency=100, submit_rps=1000,
                  query_qps=qps) as emu:
        async def go():
            async with make(emu.base_url, query_qps=qps, poll_first=0.05, poll_max=0.2) as backend:
                subs = [await backend.submit(T2V, {}) for _ in range(n)]
                return await asyncio.gather(*(backend.wait(s.remote_id, T2V) for s in subs))

        done = run(go())
        polls = api_calls(emu, "tasks/", "GET")
    assert len(done) == n and all(d.status == "SUCCEEDED" for d in done)
    assert all(p["status"] == 200 for p in polls)  # the emulator's own 8 QPS window never fired
    times = sorted(p["time"] for p in polls)
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert qps - 2 <= busiest <= qps, busiest  # saturated, yet never over
    print(f"polls={len(polls)} busiest 1 s window={busiest} (limit {qps:g})")
    assert len(polls) >= n


def test_unknown_task_is_terminal_after_one_poll(emu):
    async def go():
        async with make(emu.base_url) as backend:
            await backend.wait("no-such-task", T2V)

    err = expect(TaskFailed, go())
    assert err.code == "UNKNOWN" and not err.retryable
    assert "expired" in str(err) and "no-such-task" in str(err)
    assert len(api_calls(emu, "tasks/")) == 1


def test_http_404_on_poll_is_unknown_too():
    def handler(request):
        return httpx.Response(404, json={"code": "NotFound", "message": "not found"})

    backend = make("https://dashscope.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(TaskFailed, backend.wait("gone", T2V))
    assert err.code == "UNKNOWN" and err.status == 404


def test_wait_timeout_names_task_elapsed_and_last_status():
    with Emulator(api_keys=(KEY,), latency=(30, 30)) as emu:
        async def go():
            async with make(emu.base_url, wait_timeout=0.6) as backend:
                sub = await backend.submit(T2V, {})
                started = time.monotonic()
                try:
                    await backend.wait(sub.remote_id, T2V)
                finally:
                    go.elapsed = time.monotonic() - started
                    go.task = sub.remote_id

        err = expect(BackendError, go())
    assert err.code == "WaitTimeout" and not err.retryable and not isinstance(err, TaskFailed)
    assert go.task in str(err) and "last status PENDING" in str(err) and "0.6 s" in str(err)
    # It waited its timeout; that it gave up soon after shows in PENDING, which the task
    # leaves a tenth into its 30 s.
    assert go.elapsed >= 0.5


def test_poll_5xx_and_429_are_survived_without_resubmitting(emu):
    emu.faults.poll_5xx = 3
    emu.faults.poll_429 = 2
    emu.faults.retry_after = 0.1

    async def go():
        async with make(emu.base_url, poll_max=0.1) as backend:
            sub = await backend.submit(T2V, {})
            return await backend.wait(sub.remote_id, T2V)

    assert run(go()).status == "SUCCEEDED"
    statuses = [p["status"] for p in api_calls(emu, "tasks/")]
    assert statuses[:5].count(429) == 2 and sorted(statuses[:5])[2:] == [500, 503, 503]
    assert statuses[-1] == 200 and len(submits(emu)) == 1


