"""Reliability suites: killed runs, injected provider faults, two runs on one cache, a cache
that cannot be written. Quick by default; `WANFLOW_TRIALS=N` runs N SIGKILL trials.

Each suite prints a line starting "RELIABILITY:" with its trials, faults injected, results
lost and duplicate submissions (goal: 0 and 0); the session repeats them all at its end,
with the fault scenarios summed into one "fault-matrix" line (see conftest.py).

The CLI runs as a user runs it (`wanflow run --backend dashscope --base-url <emulator>`),
with the polling schedule shortened to the emulator's sub-second tasks (WANFLOW_POLL_FIRST
and WANFLOW_POLL_MAX; the default first poll is ~20 s after a 2 s 720P submit). It runs in
the test's process, except where a run must be a process of its own: to be killed, or to
hold the cache while another run tries it.
"""
from __future__ import annotations

import collections
import errno
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli, start_cli

from wanflow.backends.emulator import ApiError, Emulator
from wanflow.errors import StoreError
from wanflow.run import session as engine
from wanflow.settings import Settings
from wanflow.store import Store, lockfile
from wanflow.store.objects import ObjectStore

TRIALS = int(os.environ.get("WANFLOW_TRIALS") or 0)
KEY = "sk-test"
LATENCY = (0.3, 0.6)           # seconds an emulated task takes: room to kill a run mid-task
FAULT_LATENCY = (0.1, 0.2)

PROMPTS = {
    "a": "Shot a: the lighthouse at dawn, waves below.",
    "b": "Shot b: the beam sweeps across the water.",
    "c": "Shot c: gulls wheel over the pier.",
    "d": "Shot d: the keeper climbs the spiral stair.",
    "e": "Shot e: a trawler rounds the point.",
}
GEN = {"a": "gen:s1.a#1", "b": "gen:s1.b#1", "c": "gen:s2.c#1", "d": "gen:s1.d#1",
       "e": "gen:s2.e#1"}

SPEC = """\
wanflow: 1
name: reliability
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", duration: 2, prompt_extend: false}
scenes:
  - id: s1
    shots:
      - {id: a, prompt: "%(a)s"}
      - {id: b, model: wan2.7-i2v, prompt: "%(b)s", first_frame: {shot: a, frame: last}}
%(more1)s
  - id: s2
    shots:
      - {id: c, prompt: "%(c)s"}
%(more2)s
films:
  - {id: main, path: renders/main.mp4, scenes: [s1, s2]}
"""


def write_spec(root: Path, *, long: bool = False, **prompts) -> Path:
    """Shots a -> b (continuity) and c; `long` adds d (after b) and e."""
    values = {**PROMPTS, **prompts, "more1": "", "more2": ""}
    if long:
        values["more1"] = (f"      - {{id: d, model: wan2.7-i2v, prompt: \"{values['d']}\", "
                           "first_frame: {shot: b, frame: last}}")
        values["more2"] = f"      - {{id: e, prompt: \"{values['e']}\"}}"
    spec = root / "reliability.yaml"
    spec.write_text(SPEC % values)
    return spec


def shots_of(spec: Path) -> list[str]:
    return [s for s in GEN if f'id: {s},' in spec.read_text()]


# --------------------------------------------------------------------------- helpers

# Retries back off from 50 ms instead of a second: the emulator answers at once.
BACKOFF = 0.05
POLL = {"DASHSCOPE_API_KEY": KEY, "WANFLOW_POLL_FIRST": "0.25", "WANFLOW_POLL_MAX": "0.25",
        "WANFLOW_RETRY_BACKOFF": str(BACKOFF)}


def wanflow(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return run_cli(args, env={**POLL, **(env or {})}, timeout=timeout)


def start(*args, env=None) -> subprocess.Popen:
    return start_cli(args, env={**POLL, **(env or {})})


# An account without quotas, where the quotas are not the point (the fault scenarios, whose
# only 429s are the injected ones, and the random SIGKILLs): wanflow's own limits are lifted
# to match, so that a run does not wait for its own rate tokens.
QUOTA = 100
UNTHROTTLED = {"WANFLOW_LIMITS": f"wan2.7-t2v={QUOTA}:{QUOTA},wan2.7-i2v={QUOTA}:{QUOTA}"}


def run(spec: Path, emu: Emulator, *extra, env=None, timeout=120) -> subprocess.CompletedProcess:
    quotas = UNTHROTTLED if emu.submit_rps == QUOTA else {}
    return wanflow("run", spec, "--backend", "dashscope", "--base-url", emu.base_url, "--json",
                   *extra, env={**quotas, **(env or {})}, timeout=timeout)


def events(proc) -> list[dict]:
    out = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def submissions(emu: Emulator) -> collections.Counter:
    """Tasks the provider created, per prompt."""
    return collections.Counter(s["body"]["input"]["prompt"] for s in emu.submissions())


def duplicates(emu: Emulator) -> int:
    """Generations submitted again although the provider had not FAILED the earlier one."""
    by_prompt = collections.defaultdict(list)
    for t in sorted(emu.tasks().values(), key=lambda t: t["submit_time"]):
        by_prompt[t["prompt"]].append(t)
    return sum(1 for tasks in by_prompt.values() for earlier in tasks[:-1]
               if earlier["outcome"] != "FAILED")


def lock_entries(spec: Path, preview: bool = False) -> dict:
    """The lock file of paid runs, or with `preview` the one preview runs write."""
    return lockfile.read(spec.with_suffix(".preview.lock" if preview else ".lock"))


def lost(emu: Emulator, spec: Path) -> int:
    """Paid generations (SUCCEEDED tasks) whose result is not recorded in the lock file."""
    kept = {e.task_id for e in lock_entries(spec).values()}
    return sum(1 for t in emu.tasks().values()
               if t["outcome"] == "SUCCEEDED" and t["task_id"] not in kept)


def verify_clean(spec: Path) -> dict:
    proc = wanflow("cache", "verify", spec, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["corrupt"] == [], report
    return report


def plan_status(spec: Path, emu: Emulator) -> dict:
    proc = wanflow("plan", spec, "--backend", "dashscope", "--base-url", emu.base_url, "--json")
    assert proc.returncode == 0, proc.stderr
    return {t["task"]: t for t in json.loads(proc.stdout)["tasks"]}


def failed_events(evs) -> dict:
    return {e["task"]: e for e in evs if e["event"] == "failed"}


def skipped_events(evs) -> set:
    return {e["task"] for e in evs if e["event"] == "skipped"}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reliability(suite: str, **figures) -> None:
    print("RELIABILITY: " + suite + " " + " ".join(f"{k}={v}" for k, v in figures.items()),
          flush=True)


@pytest.fixture
def emu():
    """For the fault scenarios: their faults hit requests, not moments, so tasks finish
    by the first poll."""
    with Emulator(latency=FAULT_LATENCY, render_scale=1.0, concurrency=QUOTA,
                  submit_rps=QUOTA) as e:
        yield e


# --------------------------------------------------------------------------- 1. SIGKILL

@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerun(tmp_path):
    """Kill `wanflow run` with SIGKILL after a random delay in [0, run length], rerun to
    completion: nothing submitted twice, nothing lost, rerun exits 0."""
    trials = TRIALS or 3
    rng = random.Random(20240601)
    # Run length: one undisturbed run of the same spec, a process like the victims (its
    # start-up included), so that the kill moments cover the whole of a run.
    ref = tmp_path / "reference"
    (ref / ".git").mkdir(parents=True)
    spec = write_spec(ref, long=True)
    with Emulator(latency=LATENCY, render_scale=1.0, concurrency=QUOTA,
                  submit_rps=QUOTA) as emu:
        started = time.monotonic()
        proc = start("run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                     "--json", env=UNTHROTTLED)
        _, err = proc.communicate(timeout=120)
        length = time.monotonic() - started
        assert proc.returncode == 0, err
    kills = dup = gone = missing = reattached = 0
    moments = []
    for trial in range(trials):
        root = tmp_path / f"trial{trial}"
        (root / ".git").mkdir(parents=True)
        spec = write_spec(root, long=True)
        delay = rng.uniform(0.0, length)
        moments.append(round(delay, 2))
        with Emulator(latency=LATENCY, render_scale=1.0, seed=trial, concurrency=QUOTA,
                      submit_rps=QUOTA) as emu:
            victim = start("run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                           "--json", env=UNTHROTTLED)
            time.sleep(delay)
            if victim.poll() is None:
                victim.send_signal(signal.SIGKILL)
                kills += 1
            victim.communicate(timeout=30)
            proc = run(spec, emu)
            assert proc.returncode == 0, f"trial {trial} (kill at {delay:.2f} s): {proc.stderr}"
            reattached += sum(e["event"] == "reattach" for e in events(proc))
            entries = lock_entries(spec)
            missing += sum(GEN[s] not in entries for s in shots_of(spec))
            assert (root / "renders" / "main.mp4").exists()
            counts = submissions(emu)
            assert set(counts) == {PROMPTS[s] for s in shots_of(spec)}, counts
            dup += duplicates(emu)
            gone += lost(emu, spec)
            verify_clean(spec)
    reliability("sigkill", trials=trials, faults=kills, run_length=f"{length:.2f}s",
                kill_at=moments, reattached=reattached, lost=gone + missing, duplicates=dup)
    assert dup == 0 and gone == 0 and missing == 0


def journal_states(root: Path) -> list[tuple[str, str]]:
    db = root / ".wanflow" / "journal.db"
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=1)
    try:
        return con.execute("SELECT task, state FROM journal").fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def delay_submit_answers(emu: Emulator, seconds: float) -> None:
    """Submits create their task at once but answer `seconds` later (a slow link)."""
    real = emu._submit

    def submit(*args, **kwargs):
        out = real(*args, **kwargs)
        time.sleep(seconds)
        return out

    emu._submit = submit


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["sent", "queued"])
def test_rerun_after_kill_with_several_submits_in_doubt(project, moment):
    """SIGKILL while three t2v submits are under way: `sent` - the first POST has created
    its task but not answered yet, the other two wait for a rate token; `queued` - the
    first is journaled as submitted, the other two wait. The rerun must adopt what was
    created, submit the rest once, and exit 0."""
    spec = write_spec(project, long=True)
    with Emulator(latency=LATENCY, render_scale=1.0) as emu:
        if moment == "sent":
            delay_submit_answers(emu, 1.5)
        victim = start("run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                       "--json")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = dict(journal_states(project))
            if moment == "sent" and len(emu.submissions()) == 1:
                time.sleep(0.3)      # a is created, its answer is still on the way
                break
            if (moment == "queued" and states.get(GEN["a"]) == "submitted"
                    and len(emu.submissions()) == 1):
                break
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        emu._submit = Emulator._submit.__get__(emu)
        assert len(emu.submissions()) == 1
        assert dict(journal_states(project)).get(GEN["a"]) == (
            "submitting" if moment == "sent" else "submitted")
        delay_submit_answers(emu, 0.3)
        proc = run(spec, emu)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        counts = submissions(emu)
        assert len(counts) == 5 and max(counts.values()) == 1, counts


# --------------------------------------------------------------------------- 2. faults

def inject_503(emu: Emulator, n: int) -> None:
    """The next n submits answer 503 ServiceUnavailable before any task is created (the
    emulator's own `submit_5xx` answers 500, which a client must treat as uncertain)."""
    real = emu._submit
    left = [n]

    def submit(*args, **kwargs):
        if left[0] > 0:
            left[0] -= 1
            raise ApiError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        return real(*args, **kwargs)

    emu._submit = submit


def record(name, emu, spec, *, faults, complete, failed=(), held=()):
    """Check the outcome shared by every scenario and note its figures.

    complete: shots that must be in the lock file; failed: shots that must not be; held:
    shots whose paid result is legitimately not collected (an uncertain submit)."""
    entries = lock_entries(spec)
    for s in complete:
        assert GEN[s] in entries, f"{name}: {s} missing from the lock file"
    for s in failed:
        assert GEN[s] not in entries, f"{name}: {s} should not be in the lock file"
    dup = duplicates(emu)
    held_ids = {t["task_id"] for t in emu.tasks().values()
                if t["prompt"] in {PROMPTS[s] for s in held}}
    kept = {e.task_id for e in entries.values()}
    gone = sum(1 for t in emu.tasks().values() if t["outcome"] == "SUCCEEDED"
               and t["task_id"] not in kept and t["task_id"] not in held_ids
               and t["prompt"] not in {PROMPTS[s] for s in failed})
    verify_clean(spec)
    reliability(f"fault:{name}", trials=1, faults=faults, lost=gone, duplicates=dup)
    assert dup == 0, f"{name}: {dup} generation(s) submitted twice: {submissions(emu)}"
    assert gone == 0, f"{name}: {gone} paid result(s) lost"


def requests_with(emu, status, path_part) -> int:
    return sum(1 for r in emu.requests() if r["status"] == status and path_part in r["path"])


def test_submit_429_storm_without_retry_after(project, emu):
    spec = write_spec(project)
    emu.faults.submit_429 = 3
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    assert requests_with(emu, 429, "/services/") == 3
    retries = [e for e in events(proc) if e["event"] == "retry"]
    # without Retry-After: backoff from WANFLOW_RETRY_BACKOFF, doubling for each task
    assert len(retries) == 3 and all(0 < e["delay"] <= 4 * BACKOFF for e in retries), retries
    assert all(n == 1 for n in submissions(emu).values()) and len(submissions(emu)) == 3
    record("submit_429", emu, spec, faults=3, complete="abc")


def test_submit_429_storm_with_retry_after(project, emu):
    spec = write_spec(project)
    emu.faults.submit_429 = 5
    emu.faults.retry_after = 0.3
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    retries = [e for e in events(proc) if e["event"] == "retry"]
    assert len(retries) == 5 and all(e["delay"] == pytest.approx(0.3) for e in retries), retries
    assert len(submissions(emu)) == 3 and max(submissions(emu).values()) == 1
    record("submit_429+retry_after", emu, spec, faults=5, complete="abc")


def test_submit_503_is_retried(project, emu):
    spec = write_spec(project)
    inject_503(emu, 3)
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    assert requests_with(emu, 503, "/services/") == 3
    assert len(submissions(emu)) == 3 and max(submissions(emu).values()) == 1
    record("submit_503", emu, spec, faults=3, complete="abc")


def test_submit_500_is_uncertain_never_blindly_resubmitted(project, emu):
    """The emulator's submit_5xx: HTTP 500 InternalError, no task created. From the client
    a 500 after the body was sent is indistinguishable from a task that was created, so it
    is reported as uncertain; --resubmit-uncertain then submits it once."""
    spec = write_spec(project)
    emu.faults.submit_5xx = 1
    proc = run(spec, emu, "--limit", "wan2.7-t2v=1")   # a is submitted first
    assert proc.returncode == 1, proc.stderr
    failed = failed_events(events(proc))
    assert set(failed) == {GEN["a"]}, failed
    assert "InternalError" in (failed[GEN["a"]]["code"] or "") + failed[GEN["a"]]["error"]
    assert "--resubmit-uncertain" in failed[GEN["a"]]["error"]
    assert submissions(emu)[PROMPTS["a"]] == 0
    again = run(spec, emu)
    assert again.returncode == 1 and submissions(emu)[PROMPTS["a"]] == 0, again.stderr
    assert failed_events(events(again))[GEN["a"]]["code"] == "SubmitUncertain"
    final = run(spec, emu, "--resubmit-uncertain")
    assert final.returncode == 0, final.stderr
    assert submissions(emu)[PROMPTS["a"]] == 1
    record("submit_5xx(500)", emu, spec, faults=1, complete="abc")


def test_submit_5xx_after_create_is_reported_and_not_resubmitted(project, emu):
    spec = write_spec(project)
    emu.faults.submit_5xx_after_create = 1
    proc = run(spec, emu, "--limit", "wan2.7-t2v=1")
    assert proc.returncode == 1, proc.stderr
    evs = events(proc)
    failed = failed_events(evs)
    assert set(failed) == {GEN["a"]}, failed
    assert failed[GEN["a"]]["code"] == "InternalError"     # the provider's code
    assert "--resubmit-uncertain" in failed[GEN["a"]]["error"]
    assert GEN["b"] in skipped_events(evs)
    assert submissions(emu)[PROMPTS["a"]] == 1      # exactly one task created for a
    again = run(spec, emu)
    assert again.returncode == 1, again.stderr
    assert failed_events(events(again))[GEN["a"]]["code"] == "SubmitUncertain"
    assert "--resubmit-uncertain" in failed_events(events(again))[GEN["a"]]["error"]
    assert submissions(emu)[PROMPTS["a"]] == 1      # the rerun did not submit it again
    record("submit_5xx_after_create", emu, spec, faults=1, complete="c", failed="ab",
           held="a")


@pytest.mark.parametrize("fault", ["poll_5xx", "poll_429"])
def test_poll_errors_are_transient(project, emu, fault):
    spec = write_spec(project)
    setattr(emu.faults, fault, 6)
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    bad = sum(1 for r in emu.requests() if r["path"].startswith("/api/v1/tasks/")
              and r["status"] in (429, 500, 503))
    assert bad == 6
    assert len(submissions(emu)) == 3 and max(submissions(emu).values()) == 1
    record(fault, emu, spec, faults=6, complete="abc")


def test_failed_task_is_resubmitted_and_not_billed(project, emu):
    spec = write_spec(project)
    emu.faults.fail_tasks = 1
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    failed = [t for t in emu.tasks().values() if t["outcome"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["code"] == "InternalError"
    counts = submissions(emu)
    assert counts[failed[0]["prompt"]] == 2 and sum(counts.values()) == 4
    assert any(e["event"] == "retry" and "task failed" in e["why"] for e in events(proc))
    entries = lock_entries(spec)
    assert sum(entries[GEN[s]].billed_seconds for s in "abc") == pytest.approx(6.0)
    assert failed[0]["task_id"] not in {e.task_id for e in entries.values()}
    record("fail_tasks", emu, spec, faults=1, complete="abc")


def test_inspection_failure_fails_that_shot_and_its_dependents_only(project, emu):
    spec = write_spec(project)
    emu.faults.inspection_fail = 1
    proc = run(spec, emu, "--limit", "wan2.7-t2v=1")   # a is created first
    assert proc.returncode == 1, proc.stderr
    evs = events(proc)
    failed = failed_events(evs)
    assert set(failed) == {GEN["a"]}, failed
    assert failed[GEN["a"]]["code"] == "DataInspectionFailed"
    assert "inappropriate content" in failed[GEN["a"]]["error"]
    assert {GEN["b"], "scene:s1", "film:main"} <= skipped_events(evs)
    counts = submissions(emu)
    assert counts[PROMPTS["a"]] == 1 and counts[PROMPTS["b"]] == 0 and counts[PROMPTS["c"]] == 1
    assert (project / ".wanflow").exists() and not (project / "renders" / "main.mp4").exists()
    record("inspection_fail", emu, spec, faults=1, complete="c", failed="ab")


def test_expired_url_is_a_clear_failure_and_nothing_is_stored(project, emu):
    spec = write_spec(project)
    emu.faults.expired_urls = 1
    proc = run(spec, emu, "--limit", "wan2.7-t2v=1")
    assert proc.returncode == 1, proc.stderr
    evs = events(proc)
    failed = failed_events(evs)
    assert set(failed) == {GEN["a"]}, failed
    assert "expired" in failed[GEN["a"]]["error"].lower()
    assert failed[GEN["a"]]["code"] == "URLExpired"
    assert GEN["b"] in skipped_events(evs)
    assert plan_status(spec, emu)[GEN["a"]]["status"] != "cached"
    assert submissions(emu)[PROMPTS["a"]] == 1
    record("expired_urls", emu, spec, faults=1, complete="c", failed="ab", held="a")


@pytest.mark.parametrize("fault", ["truncated_downloads", "download_reset"])
def test_broken_downloads_are_retried_to_the_right_file(project, emu, fault):
    spec = write_spec(project)
    setattr(emu.faults, fault, 2)
    proc = run(spec, emu)
    assert proc.returncode == 0, proc.stderr
    assert getattr(emu.faults, fault) == 0
    entries = lock_entries(spec)
    for s in "abc":
        served = Path(emu.workdir) / "videos" / f"{entries[GEN[s]].task_id}.mp4"
        assert entries[GEN[s]].output == sha256(served), s
    assert len(submissions(emu)) == 3 and max(submissions(emu).values()) == 1
    record(fault, emu, spec, faults=2, complete="abc")


# --------------------------------------------------------------------------- 3. two runs

@pytest.mark.slow
def test_two_runs_on_one_cache(project):
    spec = write_spec(project)
    with Emulator(latency=(1.0, 1.2), render_scale=1.0) as emu:
        first = start("run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                      "--json")
        lock = project / ".wanflow" / "run.lock"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not emu.submissions():
            time.sleep(0.05)
        assert lock.exists() and lock.read_text().strip() == str(first.pid)
        # The first holds the lock until it ends, so an error naming its pid shows that the
        # second gave up at once instead of waiting for it.
        second = run(spec, emu)
        assert second.returncode == 4, second.stdout + second.stderr
        assert "another wanflow run" in second.stderr and str(first.pid) in second.stderr
        assert "Traceback" not in second.stderr
        # With WANFLOW_LOCK_WAIT the third waits for the first, then finds it all cached.
        third = run(spec, emu, env={"WANFLOW_LOCK_WAIT": "30"})
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert third.returncode == 0, third.stderr
        done = [e for e in events(third) if e["event"] == "done"][-1]
        assert done["generated"] == 0 and done["failed"] == 0
        counts = submissions(emu)
        assert len(counts) == 3 and max(counts.values()) == 1, counts
        verify_clean(spec)
        reliability("two-runs", trials=1, faults=2, lost=lost(emu, spec),
                    duplicates=duplicates(emu))


@pytest.mark.slow
def test_waiting_run_budget_sees_the_cache_after_the_wait(project):
    """A run that waited for the lock (WANFLOW_LOCK_WAIT) assesses what the other run
    stored: --no-spend passes because nothing is left to pay for."""
    spec = write_spec(project)
    with Emulator(latency=(1.0, 1.2), render_scale=1.0) as emu:
        first = start("run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                      "--json")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not emu.submissions():
            time.sleep(0.05)
        waiting = run(spec, emu, "--no-spend", env={"WANFLOW_LOCK_WAIT": "30"})
        first.communicate(timeout=60)
        assert first.returncode == 0
        assert waiting.returncode == 0, waiting.stderr    # nothing is left to pay for


# --------------------------------------------------------------------------- 4. storage

def test_unwritable_cache_dir_is_one_clear_line(project):
    spec = write_spec(project)
    blocker = project / "not-a-dir"
    blocker.write_text("a regular file where the cache's parent should be\n")
    proc = wanflow("run", spec, "--backend", "preview", "--cache", blocker / "cache")
    assert proc.returncode == 4, proc.stderr
    lines = [x for x in proc.stderr.splitlines()
             if x.strip() and not x.startswith("wanflow: backend:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(blocker) in lines[0] and "--cache" in lines[0]
    reliability("unwritable-cache", trials=1, faults=1, lost=0, duplicates=0)


def _preview_run(spec, store_factory=None):
    session = engine.Session.open(str(spec), Settings(backend="preview"))
    if store_factory is not None:
        root = session.store.root
        session.store.close()
        session.store = store_factory(root)
    try:
        return engine.run(session, reporter=lambda *a, **k: None, install_signals=False)
    finally:
        session.close()


def _objects(cache: Path) -> dict:
    return {p.parent.name + p.name: p for p in (cache / "objects").glob("*/*") if p.is_file()}


def test_disk_full_inside_the_store_stops_the_run_cleanly(project, monkeypatch):
    """ENOSPC when the store moves a new object in: StoreError, no partial object, and the
    lock file still holds every earlier entry, readable."""
    spec = write_spec(project)
    assert _preview_run(spec).ok
    before = lock_entries(spec, preview=True)
    assert before
    spec = write_spec(project, c="Shot c: gulls wheel over the pier at noon.")  # one new gen
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if f"{os.sep}objects{os.sep}" in os.fspath(dst):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoreError) as info:
        _preview_run(spec)
    monkeypatch.undo()
    assert "no space left" in str(info.value)
    cache = project / ".wanflow"
    for digest, path in _objects(cache).items():
        assert sha256(path) == digest          # no partial object
    assert not list(cache.glob("tmp/*")), list(cache.glob("tmp/*"))   # no leftovers
    after = lock_entries(spec, preview=True)   # parses: not corrupt
    assert {t: e for t, e in after.items() if t != GEN["c"] and not t.startswith(("scene:s2",
            "film:"))} == {t: e for t, e in before.items() if t != GEN["c"]
                           and not t.startswith(("scene:s2", "film:"))}
    reliability("disk-full(store)", trials=1, faults=1, lost=0, duplicates=0)


def test_disk_full_from_put_file_is_a_store_error(project):
    """A raw OSError(ENOSPC) while writing into the cache (as a download into <cache>/tmp
    raises it) stops the run with one StoreError instead of failing task after task."""
    spec = write_spec(project)

    class FullObjects(ObjectStore):
        def put_file(self, src, *, move=False):
            raise OSError(errno.ENOSPC, "No space left on device")

    class FullDisk(Store):
        def __init__(self, root):
            super().__init__(root)
            self.objects = FullObjects(root)

    with pytest.raises(StoreError) as info:
        _preview_run(spec, FullDisk)
    assert "no space left" in str(info.value)
    assert not _objects(project / ".wanflow")
    lock_entries(spec, preview=True)
