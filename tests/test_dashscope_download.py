"""Downloading a result: streamed and hashed, resumed with Range, expiry told apart, never a
short file."""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dashscope_support import KEY, T2V, emulator, expect, make, no_secret, run

from wanflow.backends.base import Finished
from wanflow.backends.emulator import Emulator
from wanflow.errors import DownloadError


@pytest.fixture
def emu():
    with emulator() as e:
        yield e


def finish_one(emu, tmp_path, **kw):
    async def go():
        async with make(emu.base_url, **kw) as backend:
            sub = await backend.submit(T2V, {})
            done = await backend.wait(sub.remote_id, T2V)
            dest = str(tmp_path / "out" / "clip.mp4")
            try:
                return done, dest, await backend.download(done, dest)
            except DownloadError as exc:
                return done, dest, exc

    return run(go())


def leftovers(dest):
    d = os.path.dirname(dest)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_download_streams_and_hashes(emu, tmp_path):
    _, dest, digest = finish_one(emu, tmp_path)
    data = Path(dest).read_bytes()
    assert digest == hashlib.sha256(data).hexdigest() and len(data) > 1000
    assert data[4:8] == b"ftyp"
    assert leftovers(dest) == ["clip.mp4"]
    dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert "Authorization" not in dl[0]["headers"]  # signed URL: our key stays home


def test_truncated_download_resumes_with_range_to_the_exact_file(emu, tmp_path):
    emu.faults.truncated_downloads = 2
    emu.faults.download_reset = 0
    done, dest, digest = finish_one(emu, tmp_path)
    assert isinstance(digest, str), digest
    data = Path(dest).read_bytes()
    assert digest == hashlib.sha256(data).hexdigest()
    dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert len(dl) == 3
    assert "Range" not in dl[0]["headers"]
    have = [int(re.fullmatch(r"bytes=(\d+)-", r["headers"]["Range"]).group(1)) for r in dl[1:]]
    assert 0 < have[0] < have[1] < len(data)
    # The same video again, in one piece, is byte-identical.
    emu.faults.truncated_downloads = 0

    async def again():
        async with make(emu.base_url) as backend:
            return await backend.download(done, str(tmp_path / "again.mp4"))

    assert run(again()) == digest
    assert leftovers(dest) == ["clip.mp4"]


def test_download_reset_is_retried(emu, tmp_path):
    emu.faults.download_reset = 1
    _, dest, digest = finish_one(emu, tmp_path)
    assert digest == hashlib.sha256(Path(dest).read_bytes()).hexdigest()


def test_download_gives_up_after_attempts_leaving_nothing(emu, tmp_path):
    emu.faults.truncated_downloads = 10
    _, dest, err = finish_one(emu, tmp_path, download_attempts=3)
    assert isinstance(err, DownloadError) and err.retryable and err.code == "DownloadFailed"
    assert "3 attempts" in str(err) and "retry the download" in str(err)
    no_secret(err)
    assert leftovers(dest) == []


def test_expired_url_is_url_expired_and_leaves_nothing(tmp_path):
    with Emulator(api_keys=(KEY,), latency=(0.2, 0.3), url_ttl=0.5, render_scale=0.25) as emu:
        async def go():
            async with make(emu.base_url) as backend:
                sub = await backend.submit(T2V, {})
                done = await backend.wait(sub.remote_id, T2V)
                expires = int(parse_qs(urlsplit(done.video_url).query)["Expires"][0])
                # Waits on the wall clock, which no event can signal: Expires is whole
                # seconds, and the emulator refuses the URL only once time.time() passes it.
                while time.time() <= expires:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await backend.download(done, str(tmp_path / "out" / "clip.mp4"))

        err = expect(DownloadError, go())
        dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
        assert [r["status"] for r in dl] == [403]  # answered "Request has expired.": no retry
    assert err.code == "URLExpired" and not err.retryable
    assert "expired" in str(err) and "24 h" in str(err) and "generating it again" in str(err)
    assert "Signature" not in str(err)
    assert leftovers(str(tmp_path / "out" / "clip.mp4")) == []


def test_long_expired_url_fails_without_a_request(emu, tmp_path):
    emu.faults.expired_urls = 1
    _, dest, err = finish_one(emu, tmp_path)
    assert isinstance(err, DownloadError) and err.code == "URLExpired"
    no_secret(err)
    assert not [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert leftovers(dest) == []


def test_server_ignoring_range_restarts_and_short_body_is_never_success(tmp_path):
    payload = os.urandom(5000)
    calls = []

    def handler(request):
        calls.append(request.headers.get("range"))
        if len(calls) == 1:  # announces 5000 bytes, delivers 2000
            return httpx.Response(200, content=payload[:2000],
                                  headers={"Content-Length": "5000", "Accept-Ranges": "bytes"})
        return httpx.Response(200, content=payload)  # ignores Range: whole file again

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    done = Finished("t", None, "https://oss.example/v.mp4?Expires=9999999999", None, None, 5.0)
    digest = run(backend.download(done, str(tmp_path / "v.mp4")))
    assert calls == [None, "bytes=2000-"]
    assert (tmp_path / "v.mp4").read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest()

    def always_short(request):
        return httpx.Response(200, content=payload[:10], headers={"Content-Length": "5000"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(always_short),
                   download_attempts=2)
    err = expect(DownloadError, backend.download(done, str(tmp_path / "w.mp4")))
    assert "10 of 5000" in str(err)
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]


