"""The emulator's object storage: getPolicy, the OSS form upload, oss:// inputs, and the
expiry of signed result URLs."""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import emulator_helpers
import pytest
from emulator_helpers import (
    AUTH,
    H,
    assert_error,
    make_body,
    submit,
    t2v,
    task_id,
    wait,
)

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


def _upload(client, emu, model, name="frame.png", data=b"\x89PNG fake", drop=()):
    pol = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": model},
                     headers=AUTH)
    assert pol.status_code == 200, pol.text
    d = pol.json()["data"]
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"],
            "policy": d["policy"], "key": f"{d['upload_dir']}/{name}",
            "x-oss-object-acl": d["x_oss_object_acl"],
            "x-oss-forbid-overwrite": d["x_oss_forbid_overwrite"],
            "success_action_status": "200", "x-oss-content-type": "image/png"}
    for k in drop:
        form.pop(k)
    r = client.post(d["upload_host"], data=form, files={"file": (name, data, "image/png")})
    return d, r, "oss://" + form["key"]


def test_get_policy_shape(make_emu, client):
    emu = make_emu()
    r = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "wan2.6-i2v"},
                   headers=AUTH)
    body = r.json()
    assert set(body) == {"request_id", "data"}
    d = body["data"]
    assert set(d) == {"policy", "signature", "upload_dir", "upload_host", "oss_access_key_id",
                      "x_oss_object_acl", "x_oss_forbid_overwrite", "expire_in_seconds",
                      "max_file_size_mb", "capacity_limit_mb"}
    assert d["upload_host"] == emu.url + "/oss"
    assert d["expire_in_seconds"] == 300 and d["max_file_size_mb"] == 100
    assert d["x_oss_object_acl"] == "private" and d["x_oss_forbid_overwrite"] == "true"
    upload_dir_pattern = r"dashscope-instant/[0-9a-f]{32}/\d{4}-\d\d-\d\d/[0-9a-f-]{36}"
    assert re.fullmatch(upload_dir_pattern, d["upload_dir"])
    again = client.get(emu.base_url + "/uploads",
                       params={"action": "getPolicy", "model": "wan2.6-i2v"},
                       headers=AUTH).json()["data"]
    assert again["upload_dir"] != d["upload_dir"]
    bad = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "m"},
                     headers={"Authorization": "Bearer nope"})
    assert_error(bad, 401, "InvalidApiKey")


def test_upload_then_submit_oss_url(make_emu, client):
    emu = make_emu()
    model = "wan2.6-i2v-flash"
    _, r, oss = _upload(client, emu, model)
    assert r.status_code == 200 and r.content == b""
    assert emu.objects()[oss[len("oss://"):]]["model"] == model
    body = make_body(model, {"prompt": "push in", "img_url": oss}, resolution="720P", duration=2)
    resolve = {**H, "X-DashScope-OssResourceResolve": "enable"}
    done = wait(client, emu, task_id(submit(client, emu, body, headers=resolve)))
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert_error(submit(client, emu, body), 400, "InvalidParameter", "input.img_url",
                 "X-DashScope-OssResourceResolve")
    other = make_body("wan2.6-i2v", {"img_url": oss}, resolution="720P")
    assert_error(submit(client, emu, other, headers=resolve), 400, "InvalidParameter",
                 "input.img_url", model)
    missing = make_body(model, {"img_url": oss + ".nope"}, resolution="720P")
    assert_error(submit(client, emu, missing, headers=resolve), 400, "InvalidParameter",
                 "input.img_url", "does not exist")


@pytest.mark.parametrize("drop", ["x-oss-object-acl", "x-oss-forbid-overwrite", "Signature"])
def test_upload_without_required_fields_is_denied(make_emu, client, drop):
    emu = make_emu()
    _, r, _ = _upload(client, emu, "wan2.6-i2v", drop=(drop,))
    assert r.status_code == 403
    assert r.content.startswith(b"<?xml") and b"<Error>" in r.content
    assert emu.objects() == {}


def test_upload_rules(make_emu, client):
    emu = make_emu()
    d, r, _ = _upload(client, emu, "wan2.6-i2v")
    assert r.status_code == 200
    # overwrite is forbidden
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"],
            "policy": d["policy"], "key": f"{d['upload_dir']}/frame.png",
            "x-oss-object-acl": "private", "x-oss-forbid-overwrite": "true",
            "success_action_status": "200"}
    again = client.post(d["upload_host"], data=form, files={"file": ("frame.png", b"x")})
    assert again.status_code == 409 and b"FileAlreadyExists" in again.content
    # the key must lie under the policy's upload_dir
    form["key"] = "elsewhere/frame.png"
    outside = client.post(d["upload_host"], data=form, files={"file": ("frame.png", b"x")})
    assert outside.status_code == 403


def test_upload_is_beijing_only(make_emu, client):
    emu = make_emu(region="singapore")
    r = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "wan2.6-i2v"},
                   headers=AUTH)
    assert_error(r, 403, "AccessDenied", "Beijing")


def test_url_ttl(make_emu, client):
    emu = make_emu(url_ttl=0.5)
    url = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    expires = int(parse_qs(urlsplit(url).query)["Expires"][0])   # whole seconds
    while time.time() <= expires:
        time.sleep(0.05)
    r = client.get(url)
    assert r.status_code == 403 and b"Request has expired" in r.content
