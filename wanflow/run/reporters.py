"""Where executor events go: live progress on a terminal, plain lines in CI, JSON lines.

The executor calls `reporter(event, **data)`; nothing else in wanflow prints progress.
This is the only module that imports rich.
"""
from __future__ import annotations

import json
import sys
import time

from ..text import terminal
from .events import Event

E = Event


class PlainReporter:
    """One line per notable event; what CI logs want."""

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

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, kind: Event, **data) -> None:
        if kind is E.DONE:
            line = (f"{data['generated']} generated, {data['cached']} cached, "
                    f"{data['failed']} failed, {data['skipped']} skipped; "
                    f"billed {data['billed_seconds']} s, cost {data['cost']:.2f}")
        elif kind is E.PLAN:
            line = f"{data['tasks']} tasks, {data['to_run']} to run"
        elif kind in self._FORMATS:
            line = self._FORMATS[kind].format_map(_Blank(data))
        else:
            return
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


class RichReporter:
    """A live progress bar plus the tasks in flight, on an interactive terminal."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=False)
        self.bar = None
        self.progress.start()

    def __call__(self, kind: Event, **data) -> None:
        if kind is E.PLAN:
            self.bar = self.progress.add_task("wanflow", total=data["to_run"])
            return
        if kind in (E.FINISHED, E.FAILED, E.SKIPPED) and self.bar is not None:
            self.progress.advance(self.bar)
        if kind in (E.SUBMITTED, E.FINISHED, E.FAILED, E.SKIPPED, E.RETRY, E.REATTACH,
                    E.INTERRUPT, E.NOTICE, E.CANCELED):
            text = PlainReporter._FORMATS.get(kind, "{message}").format_map(_Blank(data))
            style = {E.FAILED: "red", E.SKIPPED: "yellow", E.FINISHED: "green"}.get(kind, "")
            self.console.print(terminal(text), style=style, markup=False, highlight=False)
        if kind is E.DONE:
            self.progress.stop()
            buf = []
            PlainReporter(_Collect(buf))(kind, **data)
            self.console.print(terminal(buf[0].rstrip()), markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


class _Collect:
    def __init__(self, buf):
        self.buf = buf

    def write(self, text):
        if text.strip():
            self.buf.append(text)

    def flush(self):
        pass


class _Blank(dict):
    def __missing__(self, key):
        return ""


def make(as_json: bool, stream=None):
    if as_json:
        return JsonReporter()
    if (stream or sys.stderr).isatty():
        return RichReporter()
    return PlainReporter(stream)
