"""Shared by the emulator tests: fixtures, request builders and assertions.

The emulator is driven over real loopback HTTP with httpx (and, in test_emulator.py, the
official SDK). A test module takes the fixtures by assigning them (`make_emu =
emulator_helpers.make_emu`), which is how pytest finds fixtures defined elsewhere.
"""
from __future__ import annotations

import functools
import ssl
import time

import httpx
import pytest

from wanflow.backends.emulator import Emulator

KEY = "sk-test"
H = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
AUTH = {"Authorization": f"Bearer {KEY}"}
VS = "/services/aigc/video-generation/video-synthesis"
I2V_PATH = "/services/aigc/image2video/video-synthesis"
PNG = ("data:image/png;base64,"
       "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
ENVELOPE = {"request_id", "code", "message"}


@pytest.fixture
def make_emu():
    started = []

    def make(**kw) -> Emulator:
        kw.setdefault("render_scale", 0.25)
        kw.setdefault("latency", (0.0, 0.0))
        emu = Emulator(**kw).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for the tests' clients (building one reads the whole CA bundle); the
    emulator itself is plain HTTP on loopback."""
    return httpx.create_ssl_context()


@pytest.fixture
def client():
    with httpx.Client(timeout=20, verify=tls()) as c:
        yield c


def t2v(model="wan2.6-t2v", prompt="a red kite over the dunes", **params) -> dict:
    if not params:
        params = {"size": "1280*720", "duration": 2}
    return {"model": model, "input": {"prompt": prompt}, "parameters": params}


def submit(client, emu, body, path=VS, headers=H):
    return client.post(emu.base_url + path, json=body, headers=headers)


def task_id(resp) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["output"]["task_id"]


def poll(client, emu, tid):
    r = client.get(f"{emu.base_url}/tasks/{tid}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def wait(client, emu, tid, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        out = poll(client, emu, tid)
        if out["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return out
        assert time.time() < deadline, out
        time.sleep(0.05)


def assert_error(resp, status, code, *fragments):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == ENVELOPE, body
    assert body["code"] == code, body
    for frag in fragments:
        assert frag in body["message"], body
    return body


def make_body(model, inp, **params):
    return {"model": model, "input": inp, "parameters": params}
