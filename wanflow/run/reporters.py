"""Where executor events go: live progress on a terminal, plain lines in CI, JSON lines.

The executor calls `reporter(kind, **data)`; nothing else in wanflow prints progress.
This is the only module that imports rich.
"""
from __future__ import annotations

import json
import sys
import time


class PlainReporter:
    """One line per notable event; what CI logs want."""

    _FORMATS = {
        "start": "run     {task}  ({reason})",
        "submitted": "submit  {task}  -> {remote_id}",
        "reattach": "resume  {task}  {remote_id} ({state})",
        "retry": "retry   {task}  {why}",
        "finished": "done    {task}  {seconds}s",
        "failed": "FAILED  {task}  {error}",
        "skipped": "skipped {task}  (needs {because}, which failed)",
        "canceled": "cancel  {task}  {remote_id}",
        "interrupt": "{message}",
        "notice": "{message}",
    }

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, kind: str, **data) -> None:
        if kind == "done":
            line = (f"{data['generated']} generated, {data['cached']} cached, "
                    f"{data['failed']} failed, {data['skipped']} skipped; "
                    f"billed {data['billed_seconds']} s, cost {data['cost']:.2f}")
        elif kind == "plan":
            line = f"{data['tasks']} tasks, {data['to_run']} to run"
        elif kind in self._FORMATS:
            line = self._FORMATS[kind].format_map(_Blank(data))
        else:
            return
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        pass


class JsonReporter:
    """One JSON object per event on stdout (`--json`)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def __call__(self, kind: str, **data) -> None:
        print(json.dumps({"event": kind, "time": round(time.time(), 3), **data},
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

    def __call__(self, kind: str, **data) -> None:
        if kind == "plan":
            self.bar = self.progress.add_task("wanflow", total=data["to_run"])
            return
        if kind in ("finished", "failed", "skipped") and self.bar is not None:
            self.progress.advance(self.bar)
        if kind in ("submitted", "finished", "failed", "skipped", "retry", "reattach",
                    "interrupt", "notice", "canceled"):
            text = PlainReporter._FORMATS.get(kind, "{message}").format_map(_Blank(data))
            style = {"failed": "red", "skipped": "yellow", "finished": "green"}.get(kind, "")
            self.console.print(text, style=style, markup=False, highlight=False)
        if kind == "done":
            self.progress.stop()
            buf = []
            PlainReporter(_Collect(buf))(kind, **data)
            self.console.print(buf[0].rstrip(), markup=False, highlight=False)

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
