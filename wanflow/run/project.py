"""A spec on disk with its cache directory and lock file: where every command starts.

Loads and validates the spec (reusing the last load when none of its inputs changed),
hashes the local assets, and picks the cache and lock paths.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass

from .. import __version__, models
from ..errors import UsageError
from ..plan.tasks import mime_of
from ..spec import codec, paths
from ..spec.nodes import Spec
from ..store.fs import hash_file


@dataclass(frozen=True)
class Project:
    spec: Spec
    spec_dir: str
    cache_dir: str
    lock_path: str            # what paid generations produced: committed, reviewed
    preview_lock_path: str    # what preview runs produced, kept apart

    def lock_for(self, paid: bool) -> str:
        return self.lock_path if paid else self.preview_lock_path


def open_project(path: str, cache: str | None = None, state_dir: str | None = None) -> Project:
    """The spec at `path`, validated, with its cache directory and lock file.

    `state_dir` holds this machine's key for signing parsed-spec records (`Settings.
    state_dir`); without it every command loads the spec for real.

    `cache` (from --cache or WANFLOW_CACHE, relative to the working directory) wins over
    the spec's `settings.cache` (relative to the spec, and checked to stay in the project)."""
    spec = load_spec(path, cache, state_dir)
    if spec.library:
        raise UsageError(f"{path} is a library (templates, vars, assets; no scenes): include "
                         "it from a spec to use it; wanflow validate checks it on its own")
    spec_dir = os.path.dirname(os.path.abspath(spec.file))
    cache_dir = os.path.abspath(cache) if cache else paths.cache_dir(spec)
    stem = os.path.splitext(os.path.basename(spec.file))[0]
    # Several specs may share a directory: each gets its own lock, `wanflow.yaml` the plain one.
    lock_stem = "wanflow" if stem == "wanflow" else stem
    return Project(spec, spec_dir, cache_dir, os.path.join(spec_dir, f"{lock_stem}.lock"),
                   os.path.join(spec_dir, f"{lock_stem}.preview.lock"))


# -- the parsed-spec cache ------------------------------------------------------------------
# Loading a 1,000-shot spec (YAML, schema, model rules, media checks) costs more than the
# whole rest of a no-op rerun. Unchanged inputs give the same Spec, so it is kept beside the
# store, keyed by the bytes of every file the spec was loaded from, the size and mtime of
# every asset the checks looked at, and the code that did the loading. Any difference means
# a full load. The record is JSON read back through a checking codec (a cache may come from
# elsewhere: nothing in it is executed), and the spec it holds must still pass the path rules.
# A cache restored from elsewhere could still hold a record that matches the fingerprint but
# says something else (other prompts, more takes: money), so every record is signed with a
# key that never leaves this machine (HMAC-SHA256, key in the user's data folder, not in the
# cache): a record this machine did not write is simply a miss.

def _spec_cache_path(path: str, cache: str | None) -> str:
    where = os.path.abspath(cache) if cache else os.path.join(
        os.path.dirname(os.path.abspath(path)), paths.DEFAULT_CACHE)
    ident = hashlib.sha256(f"{os.getcwd()}\0{path}".encode()).hexdigest()[:32]
    return os.path.join(where, "specs", ident + ".json")


def _fingerprint(files: list[str], assets: list[str]) -> list:
    """What a record is valid for, as JSON values: versions and the day (a model's
    retirement warnings depend on it), spec files by content, assets by size and mtime.
    Raises OSError when one of them is gone."""
    hashed = []
    for name in files:
        with open(name, "rb") as f:
            hashed.append([name, hashlib.sha256(f.read()).hexdigest()])
    stats = []
    for name in assets:
        st = os.stat(name)
        stats.append([name, st.st_size, st.st_mtime_ns])
    return [[__version__, models.today().isoformat()], _CODE, hashed, stats]


def _inputs(spec: Spec) -> tuple[list[str], list[str]]:
    return list(spec.files), [a.file for a in spec.assets.values() if a.file is not None]


def _code_stamp() -> list:
    """Size and mtime of the code that turns YAML into a Spec: an edited wanflow reloads."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec_modules = sorted(f"spec/{n}" for n in os.listdir(os.path.join(here, "spec"))
                          if n.endswith(".py"))
    names = (*spec_modules, "models.py", "schemas/wanflow.schema.json")
    out = []
    for name in names:
        try:
            st = os.stat(os.path.join(here, name))
            out.append([name, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([name, None, None])
    return out


_CODE = _code_stamp()


_KEY_FILE = "spec-cache.key"


def _machine_key(state_dir: str, *, create: bool) -> bytes | None:
    """This machine's secret for signing records (32 random bytes, created on first use)."""
    path = os.path.join(state_dir, _KEY_FILE)
    try:
        with open(path, "rb") as f:
            key = f.read()
        return key if len(key) == 32 else None
    except FileNotFoundError:
        if not create:
            return None
    try:
        os.makedirs(state_dir, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    except FileExistsError:
        pass   # another process made it first
    except OSError:
        return None
    return _machine_key(state_dir, create=False)


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).hexdigest().encode()


def _read_record(record: str, key: bytes) -> Spec | None:
    """The spec a record holds, if it is signed by this machine, well-formed, current and
    still within the rules."""
    try:
        with open(record, "rb") as f:
            signature, _, signed = f.read().partition(b"\n")
        if not hmac.compare_digest(signature, _sign(key, signed)):
            return None
        head, _, body = signed.partition(b"\n")
        stored = json.loads(head)
        if not (isinstance(stored, list) and len(stored) == 4 and isinstance(stored[2], list)
                and isinstance(stored[3], list)):
            return None
        files = [entry[0] for entry in stored[2]]
        assets = [entry[0] for entry in stored[3]]
        if not all(isinstance(n, str) for n in files + assets):
            return None
        if _fingerprint(files, assets) != stored:
            return None
        spec = codec.loads(body)
    except (OSError, ValueError, TypeError, IndexError, KeyError, RecursionError):
        return None   # no record, a stale or foreign one: load for real (CodecError included)
    if _inputs(spec) != (files, assets) or not paths.still_trusted(spec):
        return None
    return spec


def load_spec(path: str, cache: str | None = None, state_dir: str | None = None) -> Spec:
    """`spec.load(path)`, reusing the last result when none of its inputs changed."""
    record = _spec_cache_path(path, cache)
    key = _machine_key(state_dir, create=True) if state_dir else None
    spec = _read_record(record, key) if key else None
    if spec is not None and spec.file == os.path.abspath(path):
        return spec
    from ..spec import load  # yaml and jsonschema: only when the spec has to be read

    spec = load(path)
    if key is None or (spec.settings.cache and not cache):
        return spec   # no key to sign with, or the spec moves its cache: keep no record
    try:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        tmp = f"{record}.{os.getpid()}.tmp"
        signed = (json.dumps(_fingerprint(*_inputs(spec))) + "\n"
                  + codec.dumps(spec)).encode("utf-8")
        with open(tmp, "wb") as f:
            f.write(_sign(key, signed) + b"\n" + signed)
        os.replace(tmp, record)
    except OSError:
        pass  # an unwritable cache is reported where it matters, by the store
    return spec


def hash_assets(spec: Spec) -> dict[str, str]:
    """sha256 of every local asset file (what keys use instead of paths)."""
    return {name: hash_file(asset.file)[0] for name, asset in spec.assets.items()
            if asset.file is not None}   # the local ones


def asset_seconds(spec: Spec) -> dict[str, float]:
    """Length of every local video asset (reference videos are billed by the second)."""
    videos = {name: a.file for name, a in spec.assets.items()
              if a.file is not None and mime_of(a.file).startswith("video/")}
    if not videos:
        return {}
    from .. import media  # PyAV loads only when the spec has video inputs

    return {name: media.media_duration(path) for name, path in videos.items()}
