"""Local inputs: getPolicy + OSS form uploads and their cache, inline data URIs outside
regions with temporary storage."""
from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from dashscope_support import (
    KEY,
    Recorder,
    api_calls,
    emulator,
    expect,
    make,
    no_secret,
    run,
    shot,
    submits,
    write,
)

from wanflow import models
from wanflow.backends.dashscope import UPLOAD_CACHE_FILE, DashScopeBackend
from wanflow.backends.emulator import Emulator
from wanflow.errors import ConfigError
from wanflow.plan.request import Blob, build
from wanflow.spec.nodes import Input


@pytest.fixture
def emu():
    with emulator() as e:
        yield e


I2V_MEDIA = shot("wan2.7-i2v", resolution="720P", audio="s",
                 inputs=(Input("first_frame", asset="a"),))


def local_blobs(tmp_path):
    img, img_d = write(tmp_path / "hero.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    aud, aud_d = write(tmp_path / "voice.wav", b"RIFF" + os.urandom(3000))
    blobs = {"asset:a": Blob(img_d, "image/png"), "asset:s": Blob(aud_d, "audio/wav")}
    return blobs, {img_d: img, aud_d: aud}


def test_local_files_upload_once_via_policy_and_oss_form_then_reuse(emu, tmp_path):
    blobs, files = local_blobs(tmp_path)
    req = build(I2V_MEDIA, 1, blobs, {})
    rec = Recorder()

    async def go():
        async with make(emu.base_url, tmp_path, transport=rec) as backend:
            first = await backend.submit(req, files)
            done = await backend.wait(first.remote_id, req)
            second = await backend.submit(req, files)
        async with make(emu.base_url, tmp_path) as other:  # a later run: the cache file
            third = await other.submit(req, files)
        return first, done, second, third

    first, done, second, third = run(go())
    assert done.status == "SUCCEEDED"
    assert len({first.remote_id, second.remote_id, third.remote_id}) == 3  # three tasks
    # One credential for both files of the submit, two form uploads, nothing more later.
    assert len(api_calls(emu, "uploads")) == 1
    policy_call = api_calls(emu, "uploads")[0]
    assert policy_call["query"] == {"action": "getPolicy", "model": "wan2.7-i2v"}
    forms = [(r, body) for r, body in rec.seen if r.url.path == "/oss"]
    assert len(forms) == 2
    for request, body in forms:
        assert "authorization" not in request.headers  # the key never goes to OSS
        names = re.findall(rb'; name="([^"]+)"', body)
        assert names == [b"OSSAccessKeyId", b"Signature", b"policy", b"key", b"x-oss-object-acl",
                         b"x-oss-forbid-overwrite", b"success_action_status",
                         b"x-oss-content-type", b"file"]
        for name, value in ((b"x-oss-object-acl", b"private"), (b"x-oss-forbid-overwrite", b"true"),
                            (b"success_action_status", b"200")):
            assert re.search(rb'name="' + name + rb'"\r\n\r\n' + value + rb"\r\n", body)
    objects = emu.objects()
    assert sorted(o["content_type"] for o in objects.values()) == ["audio/wav", "image/png"]
    assert all(o["model"] == "wan2.7-i2v" for o in objects.values())
    # Every submit sent the same oss:// URLs with the resolve header.
    bodies = [s["body"] for s in emu.submissions()]
    assert bodies[0] == bodies[1] == bodies[2]
    urls = [m["url"] for m in bodies[0]["input"]["media"]]
    assert all(u.startswith("oss://") and u[6:] in objects for u in urls)
    for call in submits(emu):
        assert call["headers"]["X-DashScope-OssResourceResolve"] == "enable"
    cache = (tmp_path / "uploads" / UPLOAD_CACHE_FILE).read_text()
    assert KEY not in cache and KEY[3:] not in cache
    assert len(json.loads(cache)["entries"]) == 2
    assert not [p for p in os.listdir(tmp_path / "uploads") if p != UPLOAD_CACHE_FILE]


def test_expired_or_foreign_cache_entries_are_not_reused(emu, tmp_path):
    blobs, files = local_blobs(tmp_path)
    req = build(I2V_MEDIA, 1, blobs, {})
    cache_file = tmp_path / "uploads" / UPLOAD_CACHE_FILE

    def age(hours):
        data = json.loads(cache_file.read_text())
        for entry in data["entries"].values():
            entry["uploaded_at"] = time.time() - hours * 3600
        cache_file.write_text(json.dumps(data))

    async def submit_once(**kw):
        async with make(emu.base_url, tmp_path, **kw) as backend:
            return await backend.submit(req, files)

    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 1
    age(46)  # still inside the 47 h reuse window
    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 1
    age(47.01)  # past it: the 48 h object may vanish before the task reads it
    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 2
    assert len(emu.objects()) == 4
    # Another account (key) does not see this account's uploads.
    emu.api_keys = (KEY, "sk-other-account")
    run(submit_once(api_key="sk-other-account"))
    assert len(api_calls(emu, "uploads")) == 3
    # A different model is a different upload (files are bound to the model).
    other = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})

    async def go():
        async with make(emu.base_url, tmp_path) as backend:
            await backend.submit(other, files)

    run(go())
    assert [c["query"]["model"] for c in api_calls(emu, "uploads")][-1] == "wan2.6-i2v-flash"
    assert len(emu.submissions()) == 5


def test_singapore_sends_images_inline_and_refuses_local_audio(tmp_path):
    blobs, files = local_blobs(tmp_path)
    img_d = blobs["asset:a"].digest
    i2v = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})
    t2v = build(shot("wan2.6-t2v", audio="s"), 1, blobs, {})
    with Emulator(api_keys=(KEY,), region="singapore", latency=(0.2, 0.3)) as emu:
        async def go():
            async with make(emu.base_url, tmp_path, region="singapore") as backend:
                assert not backend.supports_upload and backend.identity == "dashscope:custom"
                await backend.submit(i2v, files)
                err = None
                try:
                    await backend.submit(t2v, files)
                except ConfigError as exc:
                    err = exc
                return err

        err = run(go())
        [accepted] = emu.submissions()
        raw = Path(files[img_d]).read_bytes()
        assert accepted["body"]["input"]["img_url"] == \
            "data:image/png;base64," + base64.b64encode(raw).decode()
        assert not api_calls(emu, "uploads")
        assert len(submits(emu)) == 1  # the audio submit never left
    assert isinstance(err, ConfigError)
    no_secret(err)
    text = str(err)
    assert "voice.wav" in text and "audio/wav" in text and "https" in text and "singapore" in text


def test_oversized_inline_image_is_a_config_error(tmp_path, monkeypatch):
    blobs, files = local_blobs(tmp_path)
    monkeypatch.setattr(models, "DATA_URI_MAX_BYTES", 1000)
    req = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})

    def refuse(request):
        raise AssertionError("nothing may be sent")

    backend = DashScopeBackend(api_key=KEY, region="intl", transport=httpx.MockTransport(refuse))
    assert backend.base_url == models.REGIONS["singapore"].classic_url
    err = expect(ConfigError, backend.submit(req, files))
    assert "hero.png" in str(err) and "https URL" in str(err)




def test_uploads_keep_the_files_extension(emu, tmp_path):
    """Store objects have no extension; the object uploaded is named `DIGEST.wav` (or .png):
    the service reads the type from the name (mimetypes knows no extension for audio/wav)."""
    blobs, files = local_blobs(tmp_path)
    stored = {}
    for digest, path in files.items():   # as the store keeps them: by digest, no extension
        stored[digest] = str(tmp_path / digest)
        os.replace(path, stored[digest])
    run(make(emu.base_url, tmp_path).submit(build(I2V_MEDIA, 1, blobs, {}), stored))
    names = sorted(key.rsplit("/", 1)[1] for key in emu.objects())
    assert names == sorted([f"{blobs['asset:a'].digest}.png", f"{blobs['asset:s'].digest}.wav"])
