"""Tests of wanflow.store: objects, atomic writes, materialise, verify/gc, records, run lock."""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import time

import pytest

import wanflow.store.fs as store_mod
from wanflow.errors import StoreError
from wanflow.store import Result, Store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "cache")
    yield s
    s.close()


def leftovers(s: Store) -> list[str]:
    return os.listdir(s.objects.tmp_dir) if s.objects.tmp_dir.exists() else []


def all_objects(s: Store) -> list[str]:
    return [d for d, _ in s.objects.objects()]


# ---- objects ------------------------------------------------------------------------------

def test_put_bytes_has_path(store):
    data = b"hello wanflow"
    digest = store.objects.put_bytes(data)
    assert digest == sha(data)
    assert store.has(digest)
    assert store.objects.path(digest) == store.root / "objects" / digest[:2] / digest[2:]
    assert store.objects.path(digest).read_bytes() == data
    assert store.objects.verified_path(digest) == store.objects.path(digest)
    assert not store.has(sha(b"other"))
    assert store.objects.verified_path(sha(b"other")) is None
    assert leftovers(store) == []


def test_objects_are_read_only_and_not_rewritten(store, tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(3 * store_mod.CHUNK + 17))  # spans several chunks
    digest, size = store.objects.put_file(src)
    assert (digest, size) == (sha(src.read_bytes()), src.stat().st_size)
    assert src.exists()  # copied, not consumed
    obj = store.objects.path(digest)
    assert obj.stat().st_mode & 0o777 == 0o444
    before = obj.stat()
    assert store.objects.put_file(src) == (digest, size)
    after = obj.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_put_file_move_consumes_source(store, tmp_path):
    src = tmp_path / "out.mp4"
    src.write_bytes(b"x" * 1000)
    ino = src.stat().st_ino
    digest, size = store.objects.put_file(src, move=True)
    assert not src.exists()
    assert store.objects.path(digest).stat().st_ino == ino  # renamed in, not copied
    assert size == 1000
    # Moving in content that is already stored just consumes the source.
    src.write_bytes(b"x" * 1000)
    assert store.objects.put_file(src, move=True) == (digest, size)
    assert not src.exists()
    assert leftovers(store) == []


def test_put_file_move_across_filesystems_copies(store, tmp_path, monkeypatch):
    src = tmp_path / "out.mp4"
    src.write_bytes(b"y" * 5000)
    real_replace = os.replace

    def replace(a, b):
        if os.fspath(a) == os.fspath(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    digest, _size = store.objects.put_file(src, move=True)
    assert not src.exists()
    assert store.objects.path(digest).read_bytes() == b"y" * 5000
    assert leftovers(store) == []


def test_truncated_object_is_replaced_on_put(store):
    data = b"z" * 4096
    digest = store.objects.put_bytes(data)
    path = store.objects.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(data[:100])  # e.g. a crash on a filesystem without ordered writes
    assert store.objects.put_bytes(data) == digest
    assert path.read_bytes() == data


def test_corrupt_object_is_detected_removed_and_never_served(store):
    good = store.objects.put_bytes(b"good object" * 100)
    bad = store.objects.put_bytes(b"soon corrupt" * 100)
    path = store.objects.path(bad)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0x01  # flip one bit, same size
    path.write_bytes(bytes(raw))
    assert store.has(bad)  # has() is only a stat
    assert store.objects.verified_path(bad) is None
    assert not path.exists() and not store.has(bad)

    third = store.objects.put_bytes(b"third" * 10)
    p3 = store.objects.path(third)
    os.chmod(p3, 0o644)
    p3.write_bytes(b"tampered")
    report = store.verify()
    assert report == {"checked": 2, "corrupt": [third], "removed": 1, "invalidated": []}
    assert store.has(good) and not store.has(third)
    assert store.verify() == {"checked": 1, "corrupt": [], "removed": 0, "invalidated": []}


def test_materialize_of_corrupt_object_with_copy_refuses(store, tmp_path, monkeypatch):
    digest = store.objects.put_bytes(b"a" * 100)
    path = store.objects.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"b" * 100)
    monkeypatch.setattr(os, "link", _no_link)
    with pytest.raises(StoreError, match="corrupt"):
        store.objects.materialize(digest, tmp_path / "out" / "a.mp4")
    assert not (tmp_path / "out" / "a.mp4").exists()
    assert not store.has(digest)


def test_invalid_digest_rejected(store):
    with pytest.raises(ValueError):
        store.objects.path("../../etc/passwd")
    with pytest.raises(ValueError):
        store.has("ABC")


# ---- atomic writes and failures -------------------------------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_enospc_on_replace_leaves_nothing(store, tmp_path, monkeypatch):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2 * store_mod.CHUNK + 5))
    monkeypatch.setattr(os, "replace", _enospc)
    with pytest.raises(StoreError) as info:
        store.objects.put_file(src)
    msg = str(info.value)
    assert "no space left" in msg and str(store.root) in msg and "--cache" in msg
    assert all_objects(store) == [] and leftovers(store) == []
    assert info.value.exit_code == 4


def test_enospc_mid_copy_leaves_nothing(store, tmp_path, monkeypatch):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * store_mod.CHUNK))
    writes = []
    real_write = os.write

    class FailingFile:
        """Stands in for the temporary file: the second chunk hits a full disk."""

        def __init__(self, fd, *a, **k):
            self.fd = fd

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, chunk):
            writes.append(len(chunk))
            if len(writes) == 2:
                _enospc()
            return real_write(self.fd, chunk)

    monkeypatch.setattr(store_mod.os, "fdopen", FailingFile)
    with pytest.raises(StoreError, match="no space left"):
        store.objects.put_file(src)
    assert len(writes) == 2
    assert all_objects(store) == [] and leftovers(store) == []


def test_enospc_in_put_bytes_and_fsync(store, monkeypatch):
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(StoreError, match="no space left"):
        store.objects.put_bytes(b"data" * 1000)
    assert all_objects(store) == [] and leftovers(store) == []


def test_permission_error_is_a_store_error(store, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(StoreError, match="permission denied") as info:
        store.objects.put_bytes(b"x")
    assert str(store.root) in str(info.value)
    assert leftovers(store) == []


def test_uncreatable_root(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as info:
        Store(blocker / "sub")
    assert str(blocker / "sub") in str(info.value)
    with pytest.raises(StoreError):
        Store(blocker)  # a file, not a directory


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_root(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    os.chmod(root, 0o500)
    try:
        with pytest.raises(StoreError, match="permission denied"):
            Store(root)
    finally:
        os.chmod(root, 0o700)


# ---- materialise ---------------------------------------------------------------------------

def _no_link(*a, **k):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_materialize_copies_and_is_idempotent(store, tmp_path):
    digest = store.objects.put_bytes(b"video bytes" * 1000)
    dest = tmp_path / "out" / "scene" / "shot.mp4"
    store.objects.materialize(digest, dest)
    assert dest.read_bytes() == b"video bytes" * 1000
    # Never a hard link: writing to a render must not reach the store.
    assert dest.stat().st_ino != store.objects.path(digest).stat().st_ino
    with open(dest, "ab") as f:
        f.write(b"appended by an editor")
    assert store.objects.verified_path(digest) is not None
    store.objects.materialize(digest, dest)
    assert dest.read_bytes() == b"video bytes" * 1000
    before = os.stat(dest)
    store.objects.materialize(digest, dest)  # already that object: nothing happens
    after = os.stat(dest)
    assert (before.st_ino, before.st_ctime_ns) == (after.st_ino, after.st_ctime_ns)
    assert sorted(os.listdir(dest.parent)) == ["shot.mp4"]  # no temp leftovers

    other = store.objects.put_bytes(b"another take")
    store.objects.materialize(other, dest)  # replaces what was there, atomically
    assert dest.read_bytes() == b"another take"
    assert store.objects.verified_path(digest) is not None  # the old object is untouched


def test_materialize_copies_when_links_fail(store, tmp_path, monkeypatch):
    digest = store.objects.put_bytes(b"copy me" * 500)
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"stale output")
    monkeypatch.setattr(os, "link", _no_link)
    store.objects.materialize(digest, dest)
    assert dest.read_bytes() == b"copy me" * 500
    assert dest.stat().st_ino != store.objects.path(digest).stat().st_ino
    assert dest.stat().st_mode & 0o200  # a copy is an ordinary writable file
    os.utime(dest, ns=(1_000_000_000, 1_000_000_000))
    store.objects.materialize(digest, dest)  # same content already there: not rewritten
    assert dest.stat().st_mtime_ns == 1_000_000_000
    assert sorted(os.listdir(tmp_path)) == ["cache", "out.mp4"]


def test_materialize_missing_object(store, tmp_path):
    with pytest.raises(StoreError, match="missing from the cache"):
        store.objects.materialize(sha(b"never stored"), tmp_path / "x.mp4")


# ---- gc -------------------------------------------------------------------------------------

def test_gc_dry_run_then_real(store):
    keep = store.objects.put_bytes(b"keep me")
    drop1 = store.objects.put_bytes(b"drop me")
    drop2 = store.objects.put_bytes(b"drop me too!")
    store.actions.put(Result("k-keep", "gen:a#1", keep, 7, {}))
    store.actions.put(Result("k-drop", "gen:b#1", drop1, 7, {}))
    expected = sorted([(drop1, 7), (drop2, 12)])

    assert sorted(store.gc({keep})) == expected  # dry run by default
    assert store.has(drop1) and store.has(drop2)
    assert store.get_result("k-drop") is not None

    assert sorted(store.gc({keep}, dry_run=False)) == expected
    assert store.has(keep) and not store.has(drop1) and not store.has(drop2)
    assert store.get_result("k-drop") is None
    assert store.get_result("k-keep") is not None
    assert store.gc({keep}) == []


# ---- result records ---------------------------------------------------------------------------

def test_results_round_trip_and_persist(store):
    digest = store.objects.put_bytes(b"out")
    meta = {"backend": "dashscope", "model": "wan2.6-t2v", "task_id": "t-1",
            "actual_prompt": "一只猫 in the rain", "billed_seconds": 5, "cost": 0.5}
    r = Result("a" * 64, "gen:chase.wide#1", digest, 3, meta, created=1234.5)
    store.actions.put(r)
    assert store.get_result("a" * 64) == r
    assert store.get_result("missing") is None
    r2 = Result("a" * 64, "gen:chase.wide#1", digest, 3, {"backend": "preview"}, created=99.0)
    store.actions.put(r2)  # upsert
    assert store.actions.all() == [r2]
    store.close()
    with Store(store.root) as again:  # a new connection sees the committed record
        assert again.get_result("a" * 64) == r2


def test_get_results_10000_keys_in_batches(store):
    digest = sha(b"x")
    results = [Result(sha(str(i).encode()), f"gen:s{i}#1", digest, i, {"i": i}, created=1.0)
               for i in range(10_000)]
    store.actions.put_many(results)
    keys = [r.key for r in results] + [sha(b"absent %d" % i) for i in range(100)]
    found = store.get_results(keys)   # its speed is measured in bench/bench_engine.py
    assert len(found) == 10_000
    assert found[results[1234].key] == results[1234]


# ---- run lock ---------------------------------------------------------------------------------

_LOCKER = """
import sys, time
from wanflow.errors import StoreError
from wanflow.store import Store
s = Store(sys.argv[1])
print("trying", flush=True)
t = time.monotonic()
try:
    with s.run_lock(wait=float(sys.argv[2])):
        print("acquired %.3f" % (time.monotonic() - t), flush=True)
except StoreError as e:
    print("error %.3f %s" % (time.monotonic() - t, e), flush=True)
"""


def _locker(root, wait):
    return subprocess.Popen([sys.executable, "-c", _LOCKER, str(root), str(wait)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_run_lock_second_process_fails_fast(store):
    with store.run_lock():
        assert (store.root / "run.lock").read_text().strip() == str(os.getpid())
        proc = _locker(store.root, 0)
        out, err = proc.communicate(timeout=30)
    assert out.splitlines()[0] == "trying", err
    # We hold the lock until the locker has answered: an error shows it did not wait.
    status, _, msg = out.splitlines()[1].split(" ", 2)
    assert status == "error"
    assert msg == (f"another wanflow run (pid {os.getpid()}) is using the cache at "
                   f"{store.root}; wait for it or use --cache to pick another directory")
    # Released: the lock can be taken again, by another process too.
    proc = _locker(store.root, 0)
    out, _ = proc.communicate(timeout=30)
    assert out.splitlines()[1].startswith("acquired")


def test_run_lock_waits_until_released(store):
    with store.run_lock():
        proc = _locker(store.root, 10)
        assert proc.stdout.readline().strip() == "trying"
        time.sleep(0.5)
    out, err = proc.communicate(timeout=30)
    status, elapsed = out.split()
    assert status == "acquired", err
    assert float(elapsed) > 0.3        # it waited while the lock was held


def test_run_lock_in_process_with_wait_times_out(store, tmp_path):
    other = Store(store.root)  # a second open file description: flock conflicts
    with store.run_lock():
        start = time.monotonic()
        with pytest.raises(StoreError, match="another wanflow run"), \
                other.run_lock(wait=0.3, poll=0.05):
            pass
        assert time.monotonic() - start > 0.25   # it waited before giving up
    with other.run_lock():
        pass
    other.close()
