"""The emulator in a child process, for the benches that time whole runs against it.

A child of its own keeps the emulator's work off the measured process's interpreter (as a
real provider's is), and at a time scale of 100 every real millisecond of overhead shows.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

_SERVE = r"""
import json, sys
from wanflow.backends.emulator import Emulator
kw = json.loads(sys.argv[1])
kw["latency"] = tuple(kw["latency"])
emu = Emulator(**kw).start()
print(emu.base_url, flush=True)
sys.stdin.read()          # serve until the parent closes our stdin
emu.stop()
"""


class ChildEmulator:
    """`wanflow.backends.emulator.Emulator(**options)` served by a child process, and its
    control API (`/_emulator/...`: tasks, requests, submissions, reset)."""

    def __init__(self, **options: object):
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, json.dumps(options)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError("the emulator did not start")
        self.url = self.base_url[: -len("/api/v1")]

    def control(self, name: str, method: str = "GET"):
        return httpx.request(method, f"{self.url}/_emulator/{name}", timeout=120).json()

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
