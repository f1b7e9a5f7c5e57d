"""Never pay twice: a run killed with SIGKILL mid-flight resumes its journaled tasks."""
import collections
import json
import signal
import sqlite3
import time

import pytest
from conftest import run_cli, run_process, start_cli

from wanflow.backends.emulator import Emulator

pytestmark = pytest.mark.slow   # every test kills or interrupts a run mid-flight

SPEC = """\
wanflow: 1
name: resume
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", duration: 2}
scenes:
  - id: s
    shots:
%s
films:
  - {id: main, path: renders/main.mp4, scenes: [s]}
"""


def write_spec(root, shots=6):
    body = "\n".join(f"      - {{id: shot{i}, prompt: \"Shot number {i} of the chase.\"}}"
                     for i in range(shots))
    path = root / "resume.yaml"
    path.write_text(SPEC % body)
    return path


def journal_rows(root):
    db = root / ".wanflow" / "journal.db"
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT task, state, remote_id FROM journal").fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def submitted_prompts(emu):
    return collections.Counter(s["body"]["input"]["prompt"] for s in emu.submissions())


KEY = {"DASHSCOPE_API_KEY": "sk-test"}
# The runs that are stopped keep a few tasks in flight (their own --limit), so that some
# shots are not submitted yet; the emulator's account has no quota of its own, and a rerun
# may have every shot in flight at once.
QUOTA = 100
EVERY_SHOT = ["--limit", "wan2.7-t2v=6:10"]


def start_run(spec, emu):
    """A run in a process of its own, to be killed."""
    return start_cli(["run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                      "--json", "--limit", "wan2.7-t2v=3"], env=KEY)


@pytest.mark.parametrize("kill_after", [2, 4])
def test_sigkill_mid_flight_then_rerun_submits_nothing_twice(project, kill_after):
    spec = write_spec(project)
    # Full-size clips (cheap to render) let the rerun assemble by stream copy, not upscaling.
    with Emulator(latency=(1.0, 1.5), render_scale=1.0, concurrency=QUOTA,
                  submit_rps=QUOTA) as emu:
        proc = start_run(spec, emu)
        deadline = time.time() + 30
        # Kill once `kill_after` tasks are submitted and journaled, while they still run.
        while time.time() < deadline:
            rows = journal_rows(project)
            if len([r for r in rows if r[2]]) >= kill_after and any(
                    r[1] == "submitted" for r in rows):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = len(emu.submissions())
        assert before >= kill_after

        # End to end: the rerun too is the `wanflow` command in a process of its own.
        proc = run_process(["run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                            "--json", *EVERY_SHOT], env=KEY)
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        resumed = [e for e in events if e["event"] == "reattach"]
        assert resumed, "the rerun should re-attach to the journaled tasks"
        counts = submitted_prompts(emu)
        assert len(counts) == 6 and max(counts.values()) == 1, counts
        assert (project / "renders" / "main.mp4").exists()


def test_kill_during_submit_is_reconciled_not_resubmitted(project):
    """A submit journaled as 'submitting' whose task was created: adopted on rerun."""
    spec = write_spec(project, shots=1)
    with Emulator(latency=(0.5, 0.8), render_scale=1.0) as emu:
        emu.faults.slow_ms = 1000       # the submit is held: kill while it is in the air
        proc = start_run(spec, emu)
        deadline = time.time() + 20
        while time.time() < deadline and not any(
                r["method"] == "POST" and "video-synthesis" in r["path"] for r in emu.requests()):
            time.sleep(0.01)
        assert any(r[1] == "submitting" for r in journal_rows(project))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        while time.time() < deadline and not emu.submissions():
            time.sleep(0.05)   # the emulator creates the task after the delay
        assert len(emu.submissions()) == 1
        emu.faults.slow_ms = 0
        proc = run_cli(["run", str(spec), "--backend", "dashscope", "--base-url",
                        emu.base_url], env=KEY)
        assert proc.returncode == 0, proc.stderr
        assert "adopted" in proc.stderr
        assert len(emu.submissions()) == 1


def test_sigint_stops_submitting_finishes_in_flight_and_exits_130(project):
    spec = write_spec(project, shots=6)
    with Emulator(latency=(1.0, 1.5), render_scale=1.0, concurrency=QUOTA,
                  submit_rps=QUOTA) as emu:
        proc = start_cli(["run", spec, "--backend", "dashscope", "--base-url", emu.base_url,
                          "--json", "--limit", "wan2.7-t2v=2"], env=KEY)
        deadline = time.time() + 20
        while time.time() < deadline and len(emu.submissions()) < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        submitted = len(emu.submissions())
        assert 2 <= submitted < 6
        events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        assert any(e["event"] == "interrupt" for e in events)
        finished = {e["task"] for e in events if e["event"] == "finished"
                    and e["task"].startswith("gen:")}
        assert len(finished) == submitted   # what was in flight was still collected
        proc = run_cli(["run", str(spec), "--backend", "dashscope", "--base-url",
                        emu.base_url, *EVERY_SHOT], env=KEY)
        assert proc.returncode == 0, proc.stderr
        assert max(submitted_prompts(emu).values()) == 1 and len(emu.submissions()) == 6


def test_second_sigint_aborts_and_cancels_tasks_still_queued(project):
    spec = write_spec(project, shots=2)
    with Emulator(latency=(30.0, 30.0), render_scale=0.25) as emu:   # PENDING for 3 s
        proc = start_cli(["run", spec, "--backend", "dashscope", "--base-url", emu.base_url],
                         env=KEY)
        deadline = time.time() + 20
        while time.time() < deadline:
            rows = journal_rows(project)
            if len(rows) == 2 and all(r[1] == "submitted" for r in rows):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        seen = ""   # the second press must come after the first was handled
        while "stopping:" not in seen and (line := proc.stderr.readline()):
            seen += line
        proc.send_signal(signal.SIGINT)
        err = seen + proc.communicate(timeout=30)[1]
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        states = sorted(t["status"] for t in emu.tasks().values())
        assert states == ["CANCELED", "CANCELED"], emu.tasks()
