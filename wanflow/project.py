"""A spec on disk with its cache directory and lock file: the edge where commands start.

Loads and validates the spec, hashes the local assets, picks the cache and lock paths and
merges the quota overrides (spec < environment < command line).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from . import loader, lockfile, models
from .errors import UsageError
from .executor import Limits
from .spec import Spec


@dataclass(frozen=True)
class Project:
    spec: Spec
    spec_dir: str
    cache_dir: str
    lock_path: str


def open_project(path: str, cache: str | None = None, env=None) -> Project:
    env = os.environ if env is None else env
    spec = loader.load(path)
    spec_dir = os.path.dirname(os.path.abspath(spec.file))
    cache = cache or env.get("WANFLOW_CACHE") or spec.settings.cache or ".wanflow"
    cache_dir = os.path.normpath(os.path.join(spec_dir, cache))
    stem = os.path.splitext(os.path.basename(spec.file))[0]
    # Several specs may share a directory: each gets its own lock, `wanflow.yaml` the plain one.
    lock_name = "wanflow.lock" if stem == "wanflow" else f"{stem}.lock"
    return Project(spec, spec_dir, cache_dir, os.path.join(spec_dir, lock_name))


def hash_assets(spec: Spec) -> dict[str, str]:
    """sha256 of every local asset file (what keys use instead of paths)."""
    out = {}
    for name, asset in spec.assets.items():
        if asset.is_local:
            digest = hashlib.sha256()
            with open(asset.file, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            out[name] = digest.hexdigest()
    return out


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
