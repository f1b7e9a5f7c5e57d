"""Where executor events go: a live view on a terminal, plain lines in CI, JSON lines.

The executor calls `reporter(event, **data)`; nothing else in wanflow prints progress.
This is the only module that imports rich.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..text import terminal
from . import budget
from . import events as ev
from .events import Event

E = Event

_FORMATS = {
    E.START: "run     {task}  ({reason})",
    E.SUBMITTED: "submit  {task}  -> {remote_id}",
    E.REATTACH: "resume  {task}  {remote_id} ({state})",
    E.RETRY: "retry   {task}  {why}",
    E.FINISHED: "done    {task}  {seconds}s",
    E.FAILED: "FAILED  {task}  {error}",
    E.SKIPPED: "skipped {task}  (needs {because}, which failed)",
    E.CANCELED: "cancel  {task}  {remote_id}",
    E.INTERRUPT: "{message}",
    E.NOTICE: "{message}",
}


def plain_lines(kind: Event, data: dict) -> list[str]:
    """The lines a person reads for one event (none for the chatty ones)."""
    if kind is E.DONE:
        summary = (f"{data['generated']} generated, {data['cached']} cached, "
                   f"{data['failed']} failed, {data['skipped']} skipped; "
                   f"billed {data['billed_seconds']} s, "
                   + budget.cost_words(data["cost"], data.get("unpriced") or 0))
        return [summary, *(f"film    {path}" for path in data.get("films") or ())]
    if kind is E.PLAN:
        return [f"{data['tasks']} tasks, {data['to_run']} to run"]
    if kind in _FORMATS:
        return [_FORMATS[kind].format_map(_Blank(data))]
    return []


class PlainReporter:
    """One line per notable event; what CI logs want."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, kind: Event, **data) -> None:
        for line in plain_lines(kind, data):
            print(terminal(line), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class JsonReporter:
    """One JSON object per event on stdout (`--json`)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __call__(self, kind: Event, **data) -> None:
        print(json.dumps({"event": kind.value, "time": round(time.time(), 3), **data},
                         default=str), file=self.stream, flush=True)

    def close(self) -> None:
        pass


# -- the live view ------------------------------------------------------------------------

_WORDS = {ev.WAITING: "waiting for a slot", ev.UPLOADING: "uploading",
          ev.RUNNING: "running at the provider", ev.DOWNLOADING: "downloading",
          ev.ASSEMBLING: "assembling", ev.EXTRACTING: "extracting a frame",
          ev.STORING: "storing"}
_LINE_STYLES = {E.FAILED: "red", E.SKIPPED: "yellow", E.FINISHED: "green",
                E.REATTACH: "cyan", E.RETRY: "yellow"}


@dataclass
class _Row:
    """A task in flight or waiting, as the live view shows it."""

    task: str
    reason: str
    started: float                  # on the view's clock
    state: str = "starting"
    submitted: float | None = None  # on the view's clock (before `started` if resumed)
    expected: float | None = None   # seconds from submit to success
    resumed: bool = False


@dataclass
class _Totals:
    tasks: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    billed: float = 0.0
    cost: float = 0.0
    unpriced: int = 0   # finished generations whose cost is not known
    currency: str | None = None
    max_cost: float | None = None


class LiveReporter:
    """On an interactive terminal: a live table of the tasks in flight or waiting — shot,
    state, elapsed, time left, why it runs — above the run's totals against `--max-cost`;
    finished, failed, resumed and skipped tasks scroll by as lines; the films written are
    listed at the end."""

    def __init__(self, console=None, *, clock: Callable[[], float] = time.monotonic,
                 refresh_per_second: float = 4.0):
        from rich.console import Console
        from rich.live import Live

        self.console = console if console is not None else Console(stderr=True)
        self.clock = clock
        self.rows: dict[str, _Row] = {}
        self.totals = _Totals()
        self.preview = False
        # Events arrive on the run's thread, refreshes on rich's: one lock for the rows.
        self._lock = threading.Lock()
        self.live = Live(console=self.console, refresh_per_second=refresh_per_second,
                         transient=True, get_renderable=self.render)
        self.live.start()

    def __call__(self, kind: Event, **data) -> None:
        from rich.text import Text

        with self._lock:
            self._update(kind, data)
        if kind is E.DONE:
            self.close()
        if kind not in (E.PLAN, E.START, E.SUBMITTED):   # those show in the table
            for line in plain_lines(kind, data):
                self.console.print(Text(terminal(line), style=_LINE_STYLES.get(kind, "")),
                                   highlight=False)
        if self.live.is_started:
            self.live.refresh()

    def _update(self, kind: Event, data: dict) -> None:
        now, t = self.clock(), self.totals
        task = str(data.get("task", ""))
        row = self.rows.get(task)
        if kind is E.PLAN:
            t.tasks, t.cached = data["tasks"], data.get("cached", data["tasks"] - data["to_run"])
            t.currency, t.max_cost = data.get("currency"), data.get("max_cost")
            self.preview = str(data.get("backend", "")).startswith("preview")
        elif kind is E.START:
            self.rows[task] = _Row(task, str(data.get("reason") or ""), now)
        elif row is None:
            if kind is E.CACHED:
                t.cached += 1
            elif kind is E.SKIPPED:
                t.skipped += 1
        elif kind is E.STATE:
            row.state = data["state"]
        elif kind is E.SUBMITTED:
            row.state, row.submitted, row.expected = "submitted", now, data.get("expected")
        elif kind is E.REATTACH:
            row.resumed, row.expected = True, data.get("expected")
            row.state = "submitted" if data.get("state") == "submitted" else ev.DOWNLOADING
            row.submitted = now - float(data.get("elapsed") or 0.0)
            row.started = min(row.started, row.submitted)
        elif kind in (E.FINISHED, E.FAILED):
            del self.rows[task]
            if kind is E.FAILED:
                t.failed += 1
            else:
                t.done += 1
                t.billed += data.get("billed_seconds") or 0.0
                t.cost += data.get("cost") or 0.0
                if data.get("priced") is False:
                    t.unpriced += 1

    def render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            totals = Text(self.totals_line(), style="bold")
            rows = list(self.rows.values())
        if not rows:
            return totals
        now = self.clock()
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        for name, justify in (("task", "left"), ("state", "left"), ("elapsed", "right"),
                              ("left", "right"), ("why", "left")):
            table.add_column(name, justify=justify, no_wrap=name != "why")
        for row in rows:
            table.add_row(terminal(row.task), self._state(row), _clock(now - row.started),
                          self._left(row, now), terminal(row.reason))
        return Group(table, totals)

    def _state(self, row: _Row) -> str:
        word = _WORDS.get(row.state, row.state)
        if row.state == ev.DOWNLOADING and self.preview:
            word = "rendering the preview"
        return f"resumed, {word}" if row.resumed else word

    @staticmethod
    def _left(row: _Row, now: float) -> str:
        if row.expected is None or row.submitted is None or row.state in (
                ev.DOWNLOADING, ev.WAITING):
            return ""
        left = row.expected - (now - row.submitted)
        return f"~{_clock(left)}" if left >= 0.5 else "due"

    def totals_line(self) -> str:
        t = self.totals
        currency = f" {t.currency}" if t.currency else ""
        limit = f" of max {t.max_cost:.2f}" if t.max_cost is not None else ""
        parts = [f"{t.done} done", f"{t.cached} cached", f"{t.failed} failed"]
        if t.skipped:
            parts.append(f"{t.skipped} skipped")
        parts += [f"{len(self.rows)} in flight", f"of {t.tasks} tasks"]
        if self.preview:
            return ", ".join(parts) + "; preview: free"
        money = budget.cost_words(t.cost, t.unpriced, currency=currency, budget=limit)
        return ", ".join(parts) + f"; billed {t.billed:.1f} s, {money}"

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class _Blank(dict):
    def __missing__(self, key):
        return ""


def make(as_json: bool, stream=None, *, plain: bool = False):
    """JSON lines with `--json`; the live view on an interactive terminal unless `plain`
    (CI); plain lines otherwise."""
    if as_json:
        return JsonReporter()
    if not plain and (stream or sys.stderr).isatty():
        return LiveReporter()
    return PlainReporter(stream)
