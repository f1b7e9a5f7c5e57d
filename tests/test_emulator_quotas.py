"""The emulator's quotas: tasks in flight and submits per second per model, queries per
second per account."""
from __future__ import annotations

import time

import emulator_helpers
from emulator_helpers import (
    AUTH,
    assert_error,
    poll,
    submit,
    t2v,
    task_id,
)

from wanflow import models
from wanflow.backends.emulator import (
    Faults,
)

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


def test_concurrency_quota(make_emu, client):
    emu = make_emu(latency=(20.0, 20.0), concurrency={"wan2.6-t2v": 2}, submit_rps=100)
    a = task_id(submit(client, emu, t2v()))
    task_id(submit(client, emu, t2v()))
    assert_error(submit(client, emu, t2v()), 429, "Throttling.RateQuota",
                 "Requests rate limit exceeded, please try again later.")
    task_id(submit(client, emu, t2v("wan2.7-t2v", resolution="720P")))  # other models unaffected
    r = client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    task_id(submit(client, emu, t2v()))  # the slot is free again


def test_default_concurrency_per_model(make_emu, client):
    """Without a concurrency option each model has its own cap: 2 in flight for wanx2.1
    (reference §6), as the client's table must state too."""
    emu = make_emu(latency=(20.0, 20.0), submit_rps=100)
    limit = models.lookup("wanx2.1-t2v-turbo").concurrency
    assert limit == 2
    for _ in range(limit):
        task_id(submit(client, emu, t2v("wanx2.1-t2v-turbo", size="832*480")))
    assert_error(submit(client, emu, t2v("wanx2.1-t2v-turbo", size="832*480")), 429,
                 "Throttling.RateQuota")


def test_submit_rate_quota_and_retry_after(make_emu, client):
    emu = make_emu(submit_rps=2, concurrency=100, faults=Faults(retry_after=1.5))
    task_id(submit(client, emu, t2v()))
    task_id(submit(client, emu, t2v()))
    r = submit(client, emu, t2v())
    assert_error(r, 429, "Throttling.RateQuota", "rate limit exceeded")
    assert r.headers["retry-after"] == "1.5"
    time.sleep(1.05)
    task_id(submit(client, emu, t2v()))
    assert len(emu.submissions()) == 3


def test_query_rate_limit(make_emu, client):
    emu = make_emu(query_qps=5)
    tid = task_id(submit(client, emu, t2v()))
    codes = [client.get(f"{emu.base_url}/tasks/{tid}", headers=AUTH) for _ in range(7)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    assert_error(codes[5], 429, "Throttling")
    time.sleep(1.05)
    assert poll(client, emu, tid)["output"]["task_status"] == "SUCCEEDED"
