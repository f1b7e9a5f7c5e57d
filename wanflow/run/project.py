"""A spec on disk with its cache directory and lock file: the edge where commands start.

Loads and validates the spec, hashes the local assets, picks the cache and lock paths and
merges the quota overrides (spec < environment < command line).
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass

from .. import __version__, models
from ..store import lockfile
from ..errors import UsageError
from .executor import Limits
from ..spec.nodes import Spec
from ..store.objects import hash_file


@dataclass(frozen=True)
class Project:
    spec: Spec
    spec_dir: str
    cache_dir: str
    lock_path: str


def open_project(path: str, cache: str | None = None, env=None) -> Project:
    env = os.environ if env is None else env
    explicit = cache or env.get("WANFLOW_CACHE")
    spec = load_spec(path, explicit)
    spec_dir = os.path.dirname(os.path.abspath(spec.file))
    cache = explicit or spec.settings.cache or ".wanflow"
    cache_dir = os.path.normpath(os.path.join(spec_dir, cache))
    stem = os.path.splitext(os.path.basename(spec.file))[0]
    # Several specs may share a directory: each gets its own lock, `wanflow.yaml` the plain one.
    lock_name = "wanflow.lock" if stem == "wanflow" else f"{stem}.lock"
    return Project(spec, spec_dir, cache_dir, os.path.join(spec_dir, lock_name))


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
    from ..spec import load  # yaml and jsonschema load only when the spec has to be read

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


def read_lock(project: Project) -> dict:
    return lockfile.read(project.lock_path)


def parse_limit(text: str) -> tuple[str, int | None, float | None]:
    """`MODEL=CONCURRENCY[:RPS]` -> (model, concurrency, submissions per second)."""
    model, _, value = text.partition("=")
    conc, _, rps = value.partition(":")
    try:
        return model.strip(), int(conc) if conc else None, float(rps) if rps else None
    except ValueError:
        raise UsageError(f"bad limit {text!r}: expected MODEL=CONCURRENCY[:SUBMITS_PER_SECOND],"
                         " e.g. wan2.7-t2v=4:2") from None


def limits(spec: Spec, cli: tuple[str, ...] = (), env=None) -> dict[str, Limits]:
    """Per-model quotas: table defaults, then the spec, WANFLOW_LIMITS, then --limit."""
    env = os.environ if env is None else env
    merged: dict[str, Limits] = {}

    def apply(model: str, conc, rps) -> None:
        info = models.lookup(model)
        if info is None:
            raise UsageError(f"limit for unknown model {model!r}")
        base = merged.get(info.name) or Limits(info.concurrency, info.submit_rps)
        merged[info.name] = Limits(conc if conc else base.concurrency,
                                   rps if rps else base.submit_rps)

    for item in spec.settings.limits:
        apply(item.model, item.concurrency, item.submit_rps)
    for text in filter(None, env.get("WANFLOW_LIMITS", "").split(",")):
        apply(*parse_limit(text))
    for text in cli:
        apply(*parse_limit(text))
    for shot in spec.shots():  # snapshots share their family's quota
        info = models.lookup(shot.model)
        if shot.model not in merged and info and info.name in merged:
            merged[shot.model] = merged[info.name]
    return merged
