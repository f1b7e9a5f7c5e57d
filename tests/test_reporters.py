"""What a run shows: the live view on a terminal, plain lines in CI, JSON lines."""
from __future__ import annotations

import asyncio
import io
import json
import re

import pytest
from rich.console import Console

from wanflow.backends.dashscope import DashScopeBackend
from wanflow.backends.emulator import Emulator
from wanflow.plan.tasks import TaskId
from wanflow.run import reporters
from wanflow.run import session as sessions
from wanflow.run.events import Event
from wanflow.settings import Secret, Settings

SPEC = """\
wanflow: 1
name: view
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", prompt_extend: false}
scenes:
  - id: s
    shots:
      - {id: keep, prompt: "A lighthouse at dawn.", duration: 2}
      - {id: resume, prompt: "Waves on the rocks.", duration: 2}
      - {id: broken, prompt: "FORBIDDEN harbour.", duration: 2}
films:
  - {id: main, path: renders/view.mp4, scenes: [s]}
"""
KEEP, RESUME, BROKEN = (TaskId.gen(f"s.{name}", 1) for name in ("keep", "resume", "broken"))


@pytest.fixture
def emu():
    with Emulator(api_keys=("sk-test",), latency=(0.4, 0.6), concurrency=100, submit_rps=1000,
                  render_scale=0.25) as e:
        e.faults.fail_prompts = ("FORBIDDEN",)
        yield e


def settings(emu) -> Settings:
    return Settings(backend="dashscope", api_key=Secret("sk-test"), base_url=emu.base_url,
                    region="singapore", poll_first=0.05, poll_max=0.2)


def submit_as_a_killed_run_did(spec, emu, task: TaskId) -> str:
    """Submit `task` and journal its id, as a run killed right after the submit leaves it."""
    with sessions.Session.open(str(spec), settings(emu)) as session:
        state = session.states[task]

        async def submit():
            async with DashScopeBackend(api_key="sk-test", base_url=emu.base_url) as backend:
                return await backend.submit(state.prepared.request, {})

        sent = asyncio.run(submit())
        session.journal.record_submit(state.key, task, session.backend.identity,
                                      sent.remote_id, sent.request_id)
    return sent.remote_id


def test_live_view_shows_resumed_failed_and_cached_tasks_with_totals(project, emu):
    spec = project / "view.yaml"
    spec.write_text(SPEC)
    with sessions.Session.open(str(spec), settings(emu), only=("s.keep",)) as session:
        assert sessions.run(session, reporter=reporters.PlainReporter(io.StringIO()),
                            install_signals=False).ok
    remote = submit_as_a_killed_run_did(spec, emu, RESUME)

    console = Console(record=True, force_terminal=True, width=140, file=io.StringIO())
    view = reporters.LiveReporter(console)
    with sessions.Session.open(str(spec), settings(emu)) as session:
        summary = sessions.run(session, reporter=view, install_signals=False)
    text = console.export_text()
    assert summary.failed == 1 and summary.generated == 1 and summary.cached == 1

    def rows(task):
        return [line for line in text.splitlines() if line.startswith(task + " ")]

    # The resumed task: from the moment it re-attaches its row says so, with the time
    # since its submit and (while the provider has it) the time left.
    resumed = rows(RESUME)
    first = next(i for i, r in enumerate(resumed) if "resumed, " in r)
    assert all("resumed, " in r for r in resumed[first:]), resumed
    assert re.search(r"resumed, submitted +\d+s +(~\d+s|due) +in flight as ", resumed[first])
    assert f"in flight as {remote}" in resumed[0]
    assert f"resume  {RESUME}  {remote} (submitted)" in text
    # The failed task: a row while it ran (why: new), then a line with the provider's error.
    broken = rows(BROKEN)
    assert broken and any(re.search(r"(submitted|running at the provider) +\d+s +~\d+s +new",
                                    r) for r in broken), broken
    assert re.search(rf"FAILED  {re.escape(BROKEN)}  .*inappropriate", text)
    assert f"skipped scene:s  (needs {BROKEN}, which failed)" in text
    # The cached task never has a row; the totals count it, and end with the run's money.
    assert not rows(KEEP)
    final = re.findall(r"\d+ done, .*?USD", text)[-1]   # frames follow each other on a line
    assert final.startswith("1 done, 1 cached, 1 failed, 2 skipped, 0 in flight, of 5 tasks")
    assert final.endswith("billed 2.0 s, cost 0.20 USD"), final
    assert "1 generated, 1 cached, 1 failed, 2 skipped" in text


def test_live_view_rows_time_left_and_budget_from_events():
    now = [100.0]
    console = Console(record=True, force_terminal=True, width=120, file=io.StringIO())
    view = reporters.LiveReporter(console, clock=lambda: now[0])
    view(Event.PLAN, tasks=3, to_run=3, cost=1.0, backend="dashscope", cached=0,
         currency="USD", max_cost=5.0)
    view(Event.START, task="gen:a.b#1", reason="request changed: input.prompt")
    view(Event.STATE, task="gen:a.b#1", state="uploading")
    now[0] = 102.0
    view(Event.SUBMITTED, task="gen:a.b#1", remote_id="r1", expected=60.0)
    view(Event.START, task="gen:a.c#1", reason="new")
    view(Event.STATE, task="gen:a.c#1", state="waiting")
    now[0] = 132.0
    view(Event.STATE, task="gen:a.b#1", state="running")
    table = console.export_text().splitlines()
    assert re.search(r"gen:a\.b#1 +running at the provider +32s +~30s +request changed: "
                     r"input\.prompt", table[-3]), table[-3:]
    assert re.search(r"gen:a\.c#1 +waiting for a slot +30s +new", table[-2]), table[-2]
    assert table[-1] == ("0 done, 0 cached, 0 failed, 2 in flight, of 3 tasks; billed 0.0 s, "
                         "cost 0.00 of max 5.00 USD")
    now[0] = 200.0
    view(Event.STATE, task="gen:a.b#1", state="running")
    assert re.search(r"running at the provider +1m40s +due ", console.export_text()
                     .splitlines()[-3])
    view(Event.FINISHED, task="gen:a.b#1", seconds=98.0, output="ab" * 32, cost=0.5,
         billed_seconds=5.0)
    view(Event.DONE, generated=1, cached=0, failed=0, skipped=0, billed_seconds=5.0, cost=0.5,
         interrupted=False, films=["renders/a.mp4"])
    tail = console.export_text().splitlines()[-2:]
    assert tail == ["1 generated, 0 cached, 0 failed, 0 skipped; billed 5.0 s, cost 0.50",
                    "film    renders/a.mp4"]
    assert not view.live.is_started


def test_live_view_says_a_cost_nobody_knows_is_unknown():
    now = [0.0]
    console = Console(record=True, force_terminal=True, width=120, file=io.StringIO())
    view = reporters.LiveReporter(console, clock=lambda: now[0])
    view(Event.PLAN, tasks=2, to_run=2, cost=0.3, backend="dashscope", cached=0,
         currency="USD", max_cost=None)
    for task, cost, priced in (("gen:a.b#1", 0.3, {}), ("gen:a.c#1", None, {"priced": False})):
        view(Event.START, task=task, reason="new")
        view(Event.FINISHED, task=task, seconds=1.0, output="ab" * 32, cost=cost,
             billed_seconds=3.0, **priced)
    assert console.export_text().splitlines()[-1].endswith(
        "billed 6.0 s, cost 0.30 USD + ? (1 with no known price)")
    view(Event.DONE, generated=2, cached=0, failed=0, skipped=0, billed_seconds=6.0, cost=0.3,
         unpriced=1, interrupted=False, films=[])
    assert console.export_text().splitlines()[-1] == (
        "2 generated, 0 cached, 0 failed, 0 skipped; billed 6.0 s, "
        "cost 0.30 + ? (1 with no known price)")


def test_plain_lines_name_the_films_and_json_keeps_its_fields(project):
    out = io.StringIO()
    plain = reporters.PlainReporter(out)
    plain(Event.REATTACH, task="gen:a.b#1", remote_id="r1", state="submitted", elapsed=3.0,
          expected=40.0)
    plain(Event.STATE, task="gen:a.b#1", state="running")        # shown only in the view
    plain(Event.DONE, generated=0, cached=3, failed=0, skipped=0, billed_seconds=0, cost=0,
          interrupted=False, films=["renders/x.mp4", "renders/y.mp4"])
    assert out.getvalue().splitlines() == [
        "resume  gen:a.b#1  r1 (submitted)",
        "0 generated, 3 cached, 0 failed, 0 skipped; billed 0 s, cost 0.00",
        "film    renders/x.mp4", "film    renders/y.mp4"]
    out = io.StringIO()
    reporters.JsonReporter(out)(Event.FINISHED, task="gen:a.b#1", seconds=1.5, output="d",
                                cost=0.2, billed_seconds=2.0)
    line = json.loads(out.getvalue())
    assert {"event", "time", "task", "seconds", "output", "cost"} <= set(line)
    assert line["event"] == "finished" and line["billed_seconds"] == 2.0


def test_make_chooses_plain_lines_off_a_terminal_and_in_ci():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(reporters.make(True), reporters.JsonReporter)
    assert isinstance(reporters.make(False, io.StringIO()), reporters.PlainReporter)
    assert isinstance(reporters.make(False, Tty(), plain=True), reporters.PlainReporter)
