"""Claims (`wanflow.store.claims`): create-only generations, heartbeats, staleness by the
store's clock, take-over and adoption — against file:// and a real S3 API server."""
import asyncio
import json

import pytest
import remote_helpers
from test_store_remote import record

from wanflow.errors import Interrupted
from wanflow.store.claims import Claims, Runner
from wanflow.store.remote import RemoteStore

s3_server = remote_helpers.s3_server
s3_remote = remote_helpers.s3_remote
file_remote = remote_helpers.file_remote
any_remote = remote_helpers.any_remote

KEY = record(7).key
# moto's Last-Modified has one-second resolution: staleness is judged in whole seconds there,
# up to a second early. A file's modification time is exact, so claims there go stale sooner.
S3_TIMES = {"heartbeat": 0.3, "stale": 2.5}
FILE_TIMES = {"heartbeat": 0.2, "stale": 1.2}
CLOCK_STEP = {"s3": 1.0, "file": 0.05}   # how early a claim may be judged stale


def times(url: str) -> dict[str, float]:
    return S3_TIMES if url.startswith("s3://") else FILE_TIMES


def fleet(url: str, n: int = 2) -> list[Claims]:
    remote = RemoteStore.open(url)
    notes: list[str] = []
    return [Claims(remote, Runner(f"runner-{i}"), notice=notes.append, **times(url))
            for i in range(n)]


def names(url: str) -> set[str]:
    return set(asyncio.run(RemoteStore.open(url).listing(f"claims/{KEY}")))


def test_of_runners_racing_for_a_key_exactly_one_holds_it(any_remote):
    runners = fleet(any_remote, 6)

    async def go():
        async def one(claims):
            try:
                return await asyncio.wait_for(claims.settle(KEY, "gen:s.a#1"), 1.5)
            except TimeoutError:
                return None
        done = await asyncio.gather(*map(one, runners))
        for claims in runners:
            await claims.close()
        return done

    settled = asyncio.run(go())
    holders = [s for s in settled if s is not None]
    assert len(holders) == 1 and holders[0].claim.generation == 1 and holders[0].adopt is None
    assert names(any_remote) <= {"1", "1.beat"}


def test_a_waiting_runner_takes_the_result_once_it_is_on_the_remote(file_remote):
    first, second = fleet(file_remote)
    result = record(7)

    async def go():
        held = await first.settle(KEY, "gen:s.a#1")
        waiting = asyncio.create_task(second.settle(KEY, "gen:s.a#1"))
        await asyncio.sleep(1.0)               # beats keep the claim alive meanwhile
        assert not waiting.done()
        await first.remote.put_result(result)
        first.done(KEY)
        got = await asyncio.wait_for(waiting, 5)
        await first.close()
        return held, got

    held, got = asyncio.run(go())
    assert held.claim.generation == 1
    assert got.record is not None and got.record.digest == result.digest and got.claim is None
    assert "1.beat" in names(file_remote)


def test_a_stale_claim_is_taken_over_and_its_task_adopted(any_remote):
    first, second = fleet(any_remote)

    async def go():
        held = await first.settle(KEY, "gen:s.a#1")
        await first.note_task(held.claim, "task-0001-abc", "dashscope")
        await first.close()                    # it dies: no more heartbeats
        started = asyncio.get_running_loop().time()
        took = await asyncio.wait_for(second.settle(KEY, "gen:s.a#1"), 20)
        waited = asyncio.get_running_loop().time() - started
        still = await first.still_held(held.claim)
        await second.close()
        return took, waited, still

    took, waited, still = asyncio.run(go())
    assert took.claim.generation == 2
    assert took.adopt is not None and took.adopt.remote_id == "task-0001-abc"
    assert took.adopt.backend == "dashscope" and took.adopt.age >= 0
    # not before it went stale (by the store's clock)
    assert waited >= times(any_remote)["stale"] - CLOCK_STEP[any_remote.split(":")[0]]
    assert still is False                      # the first runner learns it lost the key
    assert {"1", "1.task", "2"} <= names(any_remote)


def test_heartbeats_keep_a_claim_from_going_stale(file_remote):
    first, second = fleet(file_remote)

    async def go():
        await first.settle(KEY, "gen:s.a#1")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(second.settle(KEY, "gen:s.a#1"), 2 * FILE_TIMES["stale"])
        await first.close()

    asyncio.run(go())
    assert "2" not in names(file_remote)


def test_a_released_claim_is_free_at_once_and_not_adopted(file_remote):
    first, second = fleet(file_remote)

    async def go():
        held = await first.settle(KEY, "gen:s.a#1")
        await first.note_task(held.claim, "task-failed", "dashscope")
        await first.release(held.claim, "its task failed")
        took = await asyncio.wait_for(second.settle(KEY, "gen:s.a#1"), 1.0)
        await first.close()
        await second.close()
        return took

    took = asyncio.run(go())
    assert took.claim.generation == 2 and took.adopt is None


def test_an_uncertain_submit_is_passed_on_not_paid_again(file_remote):
    first, second = fleet(file_remote)

    async def go():
        held = await first.settle(KEY, "gen:s.a#1")
        await first.note_task(held.claim, "", "dashscope", uncertain="read timeout")
        await first.close()
        took = await asyncio.wait_for(second.settle(KEY, "gen:s.a#1"), 20)
        await second.close()
        return took

    took = asyncio.run(go())
    assert took.adopt is not None and took.adopt.uncertain == "read timeout"


@pytest.mark.parametrize("body", [
    {"remote_id": "../../tasks/other", "backend": "dashscope"},
    {"remote_id": 42, "backend": "dashscope"},
    {"remote_id": "task-1", "backend": ["dashscope"]},
    "not an object",
])
def test_a_malformed_provider_task_is_never_adopted(file_remote, body):
    first, second = fleet(file_remote)

    async def go():
        held = await first.settle(KEY, "gen:s.a#1")
        await first.remote.create(f"claims/{KEY}/1.task", json.dumps(body).encode())
        await first.close()
        took = await asyncio.wait_for(second.settle(KEY, "gen:s.a#1"), 20)
        await second.close()
        return held, took

    _, took = asyncio.run(go())
    assert took.claim.generation == 2 and took.adopt is None


def test_junk_under_a_key_is_ignored(file_remote):
    remote = RemoteStore.open(file_remote)
    for name in ("0", "-1", "01", "1.exe", "x", "1.task.beat", "99999999999999999999"):
        asyncio.run(remote.write(f"claims/{KEY}/{name}", b"junk"))
    (claims,) = fleet(file_remote, 1)

    async def go():
        took = await asyncio.wait_for(claims.settle(KEY, "gen:s.a#1"), 2)
        await claims.close()
        return took

    assert asyncio.run(go()).claim.generation == 1


def test_a_waiting_runner_stops_when_asked(file_remote):
    first, second = fleet(file_remote)

    async def go():
        await first.settle(KEY, "gen:s.a#1")
        try:
            with pytest.raises(Interrupted):
                await asyncio.wait_for(second.settle(KEY, "gen:s.a#1", stop=lambda: True), 5)
        finally:
            await first.close()

    asyncio.run(go())


def test_heartbeat_must_be_shorter_than_staleness(file_remote):
    with pytest.raises(ValueError):
        Claims(RemoteStore.open(file_remote), heartbeat=5, stale=5)
