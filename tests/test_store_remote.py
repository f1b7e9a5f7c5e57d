"""The remote tier's store (`wanflow.store.remote`) against a real S3 API server and file://.

Everything read from a remote is untrusted: records are checked like input, objects are
hashed as they arrive, and only what hashes right is ever installed.
"""
import asyncio
import hashlib
import json
import os
import time

import pytest
import remote_helpers

from wanflow.errors import ConfigError, RemoteError
from wanflow.plan.keys import KEY_SCHEME, key_of
from wanflow.store import Result
from wanflow.store.objects import ObjectStore
from wanflow.store.remote import (
    CorruptObject,
    RemoteStore,
    _s3_options,
    decode_record,
    encode_record,
)

s3_server = remote_helpers.s3_server
s3_remote = remote_helpers.s3_remote
file_remote = remote_helpers.file_remote
any_remote = remote_helpers.any_remote


def run(coro):
    return asyncio.run(coro)


def record(n: int = 0, *, digest: str | None = None, size: int = 10, **meta) -> Result:
    material = {"kind": "frame", "clip": f"{n:064x}", "frame": "last"}
    return Result(key=key_of(material), task=f"frame:s.a#{n + 1}:last",
                  digest=digest or hashlib.sha256(str(n).encode()).hexdigest(), size=size,
                  meta={"material": material, "kind": "frame", "duration": 2.0, **meta},
                  created=1_700_000_000.0)


# --------------------------------------------------------------------------- records

def test_records_round_trip_in_one_batch(any_remote):
    remote = RemoteStore.open(any_remote)
    stored = [record(n) for n in range(40)]

    async def go():
        await asyncio.gather(*(remote.put_result(r) for r in stored[:30]))
        return await remote.get_results([r.key for r in stored])

    found, refused = run(go())
    assert refused == {}
    assert set(found) == {r.key for r in stored[:30]}
    got = found[stored[3].key]
    assert (got.digest, got.size, got.task, got.meta) == (
        stored[3].digest, 10, stored[3].task, stored[3].meta)


def _raw(result: Result, **changes) -> bytes:
    value = json.loads(encode_record(result))
    for name, new in changes.items():
        if name.startswith("meta_"):
            value["meta"][name[5:]] = new
        else:
            value[name] = new
    return json.dumps(value).encode()


GOOD = record(1)
HOSTILE = {
    "not JSON": b"{not json",
    "not UTF-8": b"\xff\xfe{}",
    "a list": b"[1, 2]",
    "NaN": _raw(GOOD).replace(b'"duration": 2.0', b'"duration": NaN'),
    "a field twice": _raw(GOOD)[:-1] + b', "size": 11}',
    "another key scheme": _raw(GOOD, scheme=KEY_SCHEME + 1),
    "a boolean scheme": _raw(GOOD, scheme=True),
    "filed under another key": _raw(record(2)),
    "key material of another key": _raw(GOOD, meta_material={"kind": "frame", "clip": "x"}),
    "no key material": _raw(GOOD, meta_material=None),
    "a short digest": _raw(GOOD, digest="abc"),
    "an upper-case digest": _raw(GOOD, digest=GOOD.digest.upper()),
    "a negative size": _raw(GOOD, size=-1),
    "a boolean size": _raw(GOOD, size=True),
    "a text size": _raw(GOOD, size="10"),
    "a task id with spaces": _raw(GOOD, task="gen:a b#1"),
    "an unknown provenance field": _raw(GOOD, meta_pickle="gASV"),
    "a text duration": _raw(GOOD, meta_duration="2"),
    "a negative cost": _raw(GOOD, meta_cost=-1.0),
    "a fractional width": _raw(GOOD, meta_width=1.5),
    "a missing field": json.dumps({k: v for k, v in json.loads(_raw(GOOD)).items()
                                   if k != "created"}).encode(),
    "an extra field": _raw(GOOD, code="print(1)"),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_hostile_record_is_refused_and_treated_as_absent(file_remote, what):
    remote = RemoteStore.open(file_remote)
    run(remote.write(remote.result_name(GOOD.key), HOSTILE[what]))
    found, refused = run(remote.get_results([GOOD.key]))
    assert found == {} and GOOD.key in refused, what
    with pytest.raises(ValueError):
        decode_record(HOSTILE[what], GOOD.key)


def test_a_record_larger_than_a_mebibyte_is_not_even_read(file_remote):
    remote = RemoteStore.open(file_remote)
    run(remote.write(remote.result_name(GOOD.key), b" " * (1 << 20) + _raw(GOOD)))
    record_, why = run(remote.get_result(GOOD.key))
    assert record_ is None and "larger than" in why


def test_a_well_formed_record_decodes():
    assert decode_record(encode_record(GOOD), GOOD.key).meta == GOOD.meta


# --------------------------------------------------------------------------- objects

def test_objects_upload_once_and_download_verified(any_remote, tmp_path):
    remote = RemoteStore.open(any_remote)
    data = os.urandom(300_000)
    digest = hashlib.sha256(data).hexdigest()
    src = tmp_path / "clip.mp4"
    src.write_bytes(data)
    assert run(remote.upload(digest, src)) is True
    assert run(remote.upload(digest, src)) is False        # already there: not sent again
    assert run(remote.has_object(digest, len(data)))
    local = ObjectStore(tmp_path / "cache")
    assert run(remote.download(digest, local, len(data))) is True
    assert local.verified_path(digest) is not None
    missing = hashlib.sha256(b"nothing").hexdigest()
    assert run(remote.download(missing, local)) is False
    assert os.listdir(local.tmp_dir) == []


def test_a_corrupt_remote_object_is_never_installed(any_remote, tmp_path):
    remote = RemoteStore.open(any_remote)
    good = b"the real clip" * 1000
    digest = hashlib.sha256(good).hexdigest()
    bad = tmp_path / "bad"
    bad.write_bytes(b"X" + good[1:])            # same size, one byte flipped
    run(remote.upload(digest, bad))
    local = ObjectStore(tmp_path / "cache")
    with pytest.raises(CorruptObject, match="does not hash"):
        run(remote.download(digest, local, len(good)))
    with pytest.raises(CorruptObject, match="bytes, not"):
        run(remote.download(digest, local, len(good) + 1))
    assert not local.has(digest) and os.listdir(local.tmp_dir) == []
    # The good object is uploaded over the corrupt one when asked to replace it.
    fixed = tmp_path / "good"
    fixed.write_bytes(good)
    assert run(remote.upload(digest, fixed, replace=True)) is True
    assert run(remote.download(digest, local, len(good))) is True


class BreakingStore(RemoteStore):
    """The real store, with the first transfer of each object cut off half-way."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[dict | None] = []

    async def _get(self, path, options):
        self.requests.append(options)
        reply = await super()._get(path, options)
        if len(self.requests) > 1:
            return reply

        class Half:
            meta = reply.meta

            @staticmethod
            async def stream(min_chunk_size):
                async for chunk in reply.stream(min_chunk_size=min_chunk_size):
                    yield chunk[:len(chunk) // 2]
                    raise ConnectionResetError("connection reset by peer")
        return Half()


def test_a_broken_download_resumes_from_where_it_stopped(any_remote, tmp_path):
    plain = RemoteStore.open(any_remote)
    data = os.urandom(200_000)
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "f").write_bytes(data)
    run(plain.upload(digest, tmp_path / "f"))
    remote = BreakingStore(plain._store, plain.url)
    local = ObjectStore(tmp_path / "cache")
    assert run(remote.download(digest, local, len(data))) is True
    assert local.verified_path(digest) is not None
    first, second = remote.requests
    assert first is None and second["range"] == {"offset": 100_000} and second["if_match"]


# --------------------------------------------------------------------------- small objects

def test_create_is_create_only_and_listing_carries_the_store_clock(any_remote):
    remote = RemoteStore.open(any_remote)

    async def go():
        won = await asyncio.gather(*(remote.create("claims/k/1", f"{i}".encode())
                                     for i in range(8)))
        await remote.write("claims/k/1.beat", b"x")
        return won, await remote.listing("claims/k"), await remote.now()

    won, listed, now = run(go())
    assert sum(won) == 1
    assert set(listed) == {"1", "1.beat"}
    assert all(abs(modified - now) < 5 for _, modified in listed.values())
    assert abs(now - time.time()) < 5        # same machine here; never relied upon
    assert run(remote.listing("claims/none")) == {}
    assert run(remote.refuses_second_create()) is True


class Overwriting(RemoteStore):
    """A store that does not enforce create-only (some S3-compatible services)."""

    async def create(self, name, data):
        await self.write(name, data)
        return True


def test_the_probe_finds_a_store_that_overwrites(file_remote):
    plain = RemoteStore.open(file_remote)
    assert run(Overwriting(plain._store, plain.url).refuses_second_create()) is False


# --------------------------------------------------------------------------- opening

@pytest.mark.parametrize("url, message", [
    ("http://bucket/x", "expected an s3://"),
    ("s3://user:secret@bucket/x", "must not hold credentials"),
    ("s3://bucket/x?acl=public", "unknown option"),
    ("file://relative/path", "absolute path"),
    ("s3://bucket/x?endpoint=ftp://host", "http(s) URL"),
    ("gs://bucket/x?endpoint=https://example.com", "s3:// URL"),
])
def test_bad_remote_urls_are_config_errors(url, message):
    with pytest.raises(ConfigError, match=r"remote|endpoint") as info:
        RemoteStore.open(url)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_s3_compatible_endpoints():
    oss = _s3_options("films", "https://oss-cn-hangzhou.aliyuncs.com", None, False)
    assert oss["endpoint"] == "https://films.oss-cn-hangzhou.aliyuncs.com"
    assert oss["virtual_hosted_style_request"] is True
    minio = _s3_options("films", "http://127.0.0.1:9000/", "us-east-1", True)
    assert minio == {"endpoint": "http://127.0.0.1:9000", "region": "us-east-1",
                     "skip_signature": True, "client_options": {"allow_http": True}}


def test_anonymous_reads_a_public_bucket_and_writes_nothing(s3_server, monkeypatch):
    for name, value in remote_helpers.S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = remote_helpers.make_bucket(s3_server, public_read=True)
    url = f"s3://{bucket}/w?endpoint={s3_server}"
    run(RemoteStore.open(url).put_result(GOOD))
    reader = RemoteStore.open(url, anonymous=True)   # unsigned requests: no credentials
    assert reader.writable is False
    found, _ = run(reader.get_results([GOOD.key]))
    assert GOOD.key in found
    private = f"s3://{remote_helpers.make_bucket(s3_server)}/w?endpoint={s3_server}"
    run(RemoteStore.open(private).put_result(GOOD))
    with pytest.raises(RemoteError, match="refused reading from the remote"):
        run(RemoteStore.open(private, anonymous=True).get_result(GOOD.key))


def test_an_unreachable_remote_is_one_clear_error(tmp_path):
    remote = RemoteStore.open("s3://bucket/x?endpoint=http://127.0.0.1:9&region=us-east-1")
    started = time.monotonic()
    with pytest.raises(RemoteError, match="cannot use the remote s3://bucket/x while"):
        run(remote.get_result(GOOD.key))
    assert time.monotonic() - started < 60
