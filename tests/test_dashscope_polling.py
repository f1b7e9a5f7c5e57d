"""Waiting for a task: the poll schedule, the query-rate limit, terminal and transient
answers."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from dashscope_support import KEY, T2V, api_calls, emulator, expect, make, run, submits

from wanflow.backends.base import Finished
from wanflow.backends.dashscope.polling import (
    Expectation,
    PollSchedule,
    default_poll_first,
    estimate_seconds,
    jittered,
    provider_seconds,
)
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




class Runs:
    """A RunHistory in memory: kind -> run times, newest first."""

    def __init__(self):
        self.runs: dict[str, list[float]] = {}

    def run_seconds(self, kind, limit=10):
        return self.runs.get(kind, [])[:limit]

    def record_run(self, kind, seconds):
        self.runs.setdefault(kind, []).insert(0, seconds)


def test_expectation_falls_back_to_the_table_then_learns_from_the_kinds_runs():
    table = estimate_seconds(T2V)                     # 720P, 5 s, prompt_extend: 60 s
    none = Expectation.learn(T2V, [])
    assert (none.typical, none.first, none.due_until, none.learned) == (
        table, default_poll_first(T2V), 0.0, 0)
    one = Expectation.learn(T2V, [80.0])              # too few to know the spread: ±25 %
    assert (one.typical, one.first, one.due_until) == (80.0, 60.0, 100.0)
    three = Expectation.learn(T2V, [100.0, 90.0, 110.0])
    assert three.typical == 100.0 and three.learned == 3
    assert three.first == pytest.approx(81.0)          # just before the quickest run seen
    assert three.due_until == pytest.approx(125.0)     # polled tightly until then
    scaled = Expectation.learn(T2V, [], time_scale=10)
    assert scaled.typical == table / 10 and scaled.first == default_poll_first(T2V) / 10


def test_expectation_clamps_what_a_restored_journal_teaches():
    table = estimate_seconds(T2V)
    tiny = Expectation.learn(T2V, [0.5, 0.4, 0.6])
    assert tiny.typical == table / 4                   # not a poll every second
    huge = Expectation.learn(T2V, [1e7, float("nan"), -5.0, float("inf")])
    assert huge.learned == 1 and huge.typical == 4 * table   # nan, -5 and inf dropped


def test_schedule_tightens_while_a_task_is_due():
    s = PollSchedule(first=81.0, poll_max=30.0, timeout=1800.0, due_until=125.0)
    assert s.next_delay(90.0, urgent=False, retry_after=None) == pytest.approx(7.2)
    assert s.next_delay(130.0, urgent=False, retry_after=None) == pytest.approx(26.0)


def test_provider_seconds_from_the_tasks_own_times():
    assert provider_seconds({"submit_time": "2026-05-01 10:00:00.120",
                             "end_time": "2026-05-01 10:02:31.870"}) == pytest.approx(151.75)
    assert provider_seconds({"submit_time": "2026-05-01 10:00:00.120"}) is None
    assert provider_seconds({"submit_time": "x", "end_time": "y"}) is None


def test_a_wait_records_how_long_the_task_ran_by_the_providers_clock():
    with Emulator(api_keys=(KEY,), latency=(0.5, 0.5), concurrency=100,
                  submit_rps=1000) as emu:
        runs = Runs()

        async def go():
            async with make(emu.base_url) as backend:
                backend.learn(runs)
                sub = await backend.submit(T2V, {})
                return await backend.wait(sub.remote_id, T2V)

        done = run(go())
    (recorded,) = runs.runs[f"wan2.7-t2v 720P 5s - {emu.base_url}"]
    assert recorded == done.ran_seconds and abs(recorded - 0.5) < 0.02


def test_waits_record_their_run_time_and_the_next_polls_when_due():
    # 120 simulated seconds at time scale 40: three real seconds; the emulator says so.
    with Emulator(api_keys=(KEY,), latency=(120.0, 120.0), time_scale=40, concurrency=100,
                  submit_rps=1000) as emu:
        runs = Runs()

        async def one(backend):
            sub = await backend.submit(T2V, {})
            return sub.remote_id, await backend.wait(sub.remote_id, T2V)

        async def go():
            async with make(emu.base_url, poll_first=None, poll_max=None) as backend:
                backend.learn(runs)
                # Three runs at once teach the kind's time; the fourth is polled by it.
                taught = await asyncio.gather(*(one(backend) for _ in range(3)))
                return [*taught, await one(backend)], backend

        results, backend = run(go())
        tasks = emu.tasks()
        polls = api_calls(emu, "tasks/", "GET")
    assert backend.time_scale == 40
    kind = f"wan2.7-t2v 720P 5s - {emu.base_url} x40"
    assert backend.kind(T2V) == kind and len(runs.runs[kind]) == 4
    assert all(abs(r - 3.0) < 0.05 for r in runs.runs[kind])    # the provider's own times
    remote_id, done = results[-1]     # three runs known: polled when it was due
    task = tasks[remote_id]
    ran = task["end_time"] - task["submit_time"]
    assert done.ran_seconds == pytest.approx(ran, abs=0.01)
    mine = sorted(p["time"] for p in polls if p["path"].endswith(remote_id))
    assert mine[0] - task["submit_time"] >= 0.8 * ran       # not before it could be done
    assert mine[-1] - task["end_time"] <= 0.1 * ran + 0.1   # noticed within ~10 %
    assert len(mine) <= 4
