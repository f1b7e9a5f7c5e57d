"""Tests of wanflow.journal: durability, states, live(), threads and processes."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from wanflow.errors import StoreError
from wanflow.store.journal import Journal, JournalEntry


@pytest.fixture
def path(tmp_path):
    return tmp_path / "cache" / "journal.db"  # the directory is created on open


def test_record_then_reopen_sees_it(path):
    j = Journal(path)
    j.record_submit("k1", "gen:a#1", "dashscope", "remote-1", "req-1", submitted_at=100.0)
    # Without closing the first one: a new connection sees what was committed.
    other = Journal(path)
    assert other.get("k1") == JournalEntry("k1", "gen:a#1", "dashscope", "remote-1", "req-1",
                                           100.0, "submitted")
    finished = {"video_url": "https://example/x.mp4", "usage": {"duration": 5}, "n": [1, 2]}
    j.mark_finished("k1", finished)
    assert other.get("k1").state == "finished" and other.get("k1").finished == finished
    j.close()
    other.close()
    with Journal(path) as again:
        e = again.get("k1")
        assert (e.state, e.finished, e.remote_id, e.submitted_at) == ("finished", finished,
                                                                      "remote-1", 100.0)
        assert again.mark_done("k1") is True
        assert again.get("k1").state == "done"
        assert again.get("k1").finished == finished  # kept
        assert again.get("missing") is None
        assert again.mark_done("missing") is False


def test_states_and_live_filter(path):
    now = 1_000_000.0
    with Journal(path) as j:
        j.record_submit("fresh", "gen:a#1", "dashscope", "r1", None, submitted_at=now - 10)
        j.record_submit("fin", "gen:b#1", "dashscope", "r2", "q2", submitted_at=now - 20)
        j.mark_finished("fin", {"url": "u"})
        j.record_submit("old", "gen:c#1", "dashscope", "r3", None, submitted_at=now - 90_000)
        j.record_submit("done", "gen:d#1", "dashscope", "r4", None, submitted_at=now - 5)
        j.mark_done("done")
        j.record_submit("failed", "gen:e#1", "dashscope", "r5", None, submitted_at=now - 5)
        j.mark_failed("failed", "DataInspectionFailed: nope")
        j.record_submit("other", "gen:f#1", "preview", "r6", None, submitted_at=now - 5)
        j.record_uncertain("unsure", "gen:g#1", "dashscope", "read timeout after sending")

        live = j.live("dashscope", now=now)
        assert sorted(live) == ["fin", "fresh"]
        assert live["fin"].finished == {"url": "u"}
        assert sorted(j.live("dashscope", max_age=100_000, now=now)) == ["fin", "fresh", "old"]
        assert sorted(j.live("preview", now=now)) == ["other"]

        assert j.get("failed").state == "failed"
        assert j.get("failed").error == "DataInspectionFailed: nope"
        unsure = j.get("unsure")
        assert (unsure.state, unsure.remote_id, unsure.error) == (
            "uncertain", "", "read timeout after sending")
        assert [e.key for e in j.entries(states=["uncertain"])] == ["unsure"]
        assert len(j.entries(backend="dashscope")) == 6

        # Resubmitting a key (e.g. after a failure) replaces its entry.
        j.record_submit("failed", "gen:e#1", "dashscope", "r5b", None, submitted_at=now - 1)
        assert j.get("failed").state == "submitted" and j.get("failed").error is None

        j.forget("fresh")
        assert j.get("fresh") is None
        with pytest.raises(ValueError):
            j.record_submit("k", "t", "b", "", None)


def test_concurrent_writers_from_threads(path):
    j = Journal(path)
    errors = []

    def worker(n):
        try:
            for i in range(50):
                key = f"k{n}-{i}"
                j.record_submit(key, f"gen:{n}.{i}#1", "dashscope", f"r{n}-{i}", None)
                j.mark_finished(key, {"i": i})
                if i % 2:
                    j.mark_done(key)
                j.get(key)
                j.live("dashscope")
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(j.entries()) == 400
    assert len(j.live("dashscope")) == 200  # the even ones are still "finished"
    j.close()


_CHILD = """
import sys
from wanflow.store.journal import Journal
j = Journal(sys.argv[1])
for i in range(int(sys.argv[3])):
    j.record_submit(f"{sys.argv[2]}{i}", f"gen:{i}#1", "dashscope", f"remote-{i}", None)
live = j.live("dashscope")
print(len(live), flush=True)
"""


def _child(path, prefix, n):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), prefix, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_process_reads_and_writes(path):
    j = Journal(path)
    j.record_submit("parent-0", "gen:p#1", "dashscope", "rp", None)
    # A process started now writes while this one writes too (WAL + busy timeout).
    proc = _child(path, "child-", 100)
    for i in range(1, 100):
        j.record_submit(f"parent-{i}", f"gen:p{i}#1", "dashscope", f"rp{i}", None)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert int(out) >= 101  # the child saw at least our first entry and all of its own
    keys = set(j.live("dashscope"))
    assert {f"child-{i}" for i in range(100)} <= keys
    assert len(keys) == 200
    j.close()


def test_closed_and_corrupt(path, tmp_path):
    j = Journal(path)
    j.close()
    j.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        j.get("k")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not an sqlite database" * 200)
    with pytest.raises(StoreError) as info:
        Journal(bad)
    assert str(bad) in str(info.value)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Journal(blocker / "journal.db")


def test_run_times_newest_first_per_kind_pruned_and_checked(path):
    with Journal(path) as j:
        for i in range(60):
            j.record_run("wan2.7-t2v 720P 5s", 100.0 + i, now=1000.0 + i)
        j.record_run("wan2.7-t2v 1080P 5s", 150.0, now=2000.0)
        for bad in (float("nan"), float("inf"), 0.0, -3.0):
            j.record_run("wan2.7-t2v 720P 5s", bad, now=3000.0)
        assert j.run_seconds("wan2.7-t2v 720P 5s", 3) == [159.0, 158.0, 157.0]
        assert len(j.run_seconds("wan2.7-t2v 720P 5s", 1000)) == 50   # older ones pruned
        assert j.run_seconds("wan2.7-t2v 1080P 5s") == [150.0]
        assert j.run_seconds("unknown kind") == []
    with Journal(path) as j:   # kept across runs: the next run learns from them
        assert j.run_seconds("wan2.7-t2v 1080P 5s") == [150.0]
