"""A spec on disk with its cache directory and lock file: where every command starts.

Loads and validates the spec (reusing the last load when none of its inputs changed),
hashes the local assets, and picks the cache and lock paths.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass

from .. import __version__
from ..errors import UsageError
from ..plan.tasks import mime_of
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


def open_project(path: str, cache: str | None = None) -> Project:
    """The spec at `path`, validated, with its cache directory and lock file.

    `cache` (from --cache or WANFLOW_CACHE) wins over the spec's `settings.cache`."""
    spec = load_spec(path, cache)
    if spec.library:
        raise UsageError(f"{path} is a library (templates, vars, assets; no scenes): include "
                         "it from a spec to use it; wanflow validate checks it on its own")
    spec_dir = os.path.dirname(os.path.abspath(spec.file))
    cache_dir = os.path.normpath(os.path.join(spec_dir, cache or spec.settings.cache
                                              or ".wanflow"))
    stem = os.path.splitext(os.path.basename(spec.file))[0]
    # Several specs may share a directory: each gets its own lock, `wanflow.yaml` the plain one.
    lock_stem = "wanflow" if stem == "wanflow" else stem
    return Project(spec, spec_dir, cache_dir, os.path.join(spec_dir, f"{lock_stem}.lock"),
                   os.path.join(spec_dir, f"{lock_stem}.preview.lock"))


# -- the parsed-spec cache ------------------------------------------------------------------
# Loading a 1,000-shot spec (YAML, schema, model rules, media checks) costs more than the
# whole rest of a no-op rerun. Unchanged inputs give the same Spec, so it is kept, pickled,
# beside the store, keyed by the bytes of every file the spec was loaded from and the
# size and mtime of every asset the checks looked at. Any difference means a full load.

def _spec_cache_path(path: str, cache: str | None) -> str:
    where = os.path.abspath(cache) if cache else os.path.join(
        os.path.dirname(os.path.abspath(path)), ".wanflow")
    ident = hashlib.sha256(f"{os.getcwd()}\0{path}".encode()).hexdigest()[:32]
    return os.path.join(where, "specs", ident + ".pickle")


def _fingerprint(spec: Spec) -> tuple:
    files = []
    for name in spec.files:
        with open(name, "rb") as f:
            files.append((name, hashlib.sha256(f.read()).hexdigest()))
    assets = []
    for asset in spec.assets.values():
        if asset.is_local:
            st = os.stat(asset.file)
            assets.append((asset.file, st.st_size, st.st_mtime_ns))
    return (__version__, _CODE, tuple(files), tuple(assets))


def _code_stamp() -> tuple:
    """Size and mtime of the code that turns YAML into a Spec: an edited wanflow reloads."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec_modules = sorted(f"spec/{n}" for n in os.listdir(os.path.join(here, "spec"))
                          if n.endswith(".py"))
    names = (*spec_modules, "models.py", "schemas/wanflow.schema.json")
    out = []
    for name in names:
        try:
            st = os.stat(os.path.join(here, name))
            out.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


_CODE = _code_stamp()


def load_spec(path: str, cache: str | None = None) -> Spec:
    """`spec.load(path)`, reusing the last result when none of its inputs changed."""
    record = _spec_cache_path(path, cache)
    try:
        with open(record, "rb") as f:
            fingerprint, spec = pickle.load(f)
        if _fingerprint(spec) == fingerprint:
            return spec
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError,
            TypeError, ImportError):
        pass  # no record, a stale one, or one from another version: load for real
    # yaml and jsonschema load only when the spec has to be read
    from ..spec import load

    spec = load(path)
    if spec.settings.cache and not cache:
        return spec   # the spec moves its cache: keep no record in the default place
    try:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        tmp = f"{record}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump((_fingerprint(spec), spec), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, record)
    except OSError:
        pass  # an unwritable cache is reported where it matters, by the store
    return spec


def hash_assets(spec: Spec) -> dict[str, str]:
    """sha256 of every local asset file (what keys use instead of paths)."""
    return {name: hash_file(asset.file)[0] for name, asset in spec.assets.items()
            if asset.is_local}


def asset_seconds(spec: Spec) -> dict[str, float]:
    """Length of every local video asset (reference videos are billed by the second)."""
    videos = {name: a.file for name, a in spec.assets.items()
              if a.file is not None and mime_of(a.file).startswith("video/")}
    if not videos:
        return {}
    from .. import media  # PyAV loads only when the spec has video inputs

    return {name: media.media_duration(path) for name, path in videos.items()}
