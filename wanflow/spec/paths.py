"""Where a spec's files may be: inside the project, judged on real paths.

A spec comes from a pull request, and a symlink is as easy to commit as a file. So every
inside-the-project check resolves symlinks first (`os.path.realpath`), for what is read (the
spec, its includes, its assets) and for what is written (outputs, the cache): a link cannot
carry a file in from outside, or an output out. And an output may never land on an input:
an asset, a spec file or the cache, nor differ from one only by the `.preview` variant a
preview run writes instead of the paid path.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .nodes import Diagnostic, Spec, Where

if TYPE_CHECKING:
    from .context import Context

DEFAULT_CACHE = ".wanflow"   # the cache directory beside the spec, unless moved
PREVIEW_MARK = ".preview"    # renders/x.mp4 -> renders/x.preview.mp4 on preview runs
ROOT_MARKERS = (".git", ".wanflow-root")


def project_root(start: str) -> str:
    """The nearest ancestor of `start` holding `.git` (or a `.wanflow-root` marker, for a
    project that is not a repository of its own), else `start` itself."""
    probe = start
    while True:
        if any(os.path.exists(os.path.join(probe, m)) for m in ROOT_MARKERS):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return start
        probe = parent


def is_inside(path: str, root: str) -> bool:
    """Whether absolute `path` lies inside (or is) absolute directory `root`, as written."""
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def real_inside(path: str, root: str) -> bool:
    """Whether `path` still lies inside `root` once every symlink on the way is followed."""
    return is_inside(os.path.realpath(path), os.path.realpath(root))


def path_problem(path: str, base_dir: str, root: str, what: str = "path") -> str | None:
    """Why a relative `path` (as written, relative to absolute `base_dir`) is not allowed:
    absolute, outside `root`, or inside it only until a symlink is followed."""
    if path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return (f"{what} '{path}' must be relative (to the file that names it), "
                "not absolute, so the project can move")
    full = os.path.normpath(os.path.join(base_dir, path))
    if not is_inside(full, root):
        return (f"{what} '{path}' leaves the project directory {root}; "
                "keep every file inside the project")
    if not real_inside(full, root):
        return (f"{what} '{path}' leads outside the project through a symlink; "
                "keep every file inside the project")
    return None


def preview_variant(path: str) -> str:
    """Where a preview run writes the output meant for `path` (`x.mp4` -> `x.preview.mp4`)."""
    stem, ext = os.path.splitext(path)
    return stem + PREVIEW_MARK + ext


def _plain(path: str) -> str:
    """`path` without its preview mark: a path and its preview variant compare equal."""
    stem, ext = os.path.splitext(path)
    return stem.removesuffix(PREVIEW_MARK) + ext


def cache_dir(spec: Spec) -> str:
    """The cache directory the spec implies: `settings.cache`, or `.wanflow` beside it."""
    return os.path.normpath(os.path.join(os.path.dirname(spec.file),
                                         spec.settings.cache or DEFAULT_CACHE))


def check(spec: Spec, ctx: Context | None = None) -> list[Diagnostic]:
    """Every output that leaves the project or lands on an input, repeated outputs, and a
    default cache directory that a symlink leads out of the project.

    `ctx` places each diagnostic at the `path:` that causes it; without it (re-checking a
    spec from the parsed-spec cache) at the node."""
    out: list[Diagnostic] = []
    base = os.path.dirname(spec.file)
    top = ctx.top if ctx is not None else Where(spec.file, 1, 1)
    cache = cache_dir(spec)
    if not spec.settings.cache and not real_inside(cache, spec.root):
        out.append(Diagnostic(top, f"the cache directory {DEFAULT_CACHE} beside the spec is a "
                              "symlink that leads outside the project; remove it, or choose "
                              "the cache with --cache or WANFLOW_CACHE"))
    inputs = _inputs(spec)
    real_cache = os.path.realpath(cache)
    seen: dict[str, str] = {}
    for path, where, owner in _outputs(spec, ctx):
        problem = path_problem(path, base, spec.root, "output path")
        if problem:
            out.append(Diagnostic(where, problem))
            continue
        full = os.path.normpath(os.path.join(base, path))
        written = {os.path.realpath(full), os.path.realpath(preview_variant(full))}
        clash = next((inputs[_plain(w)] for w in sorted(written) if _plain(w) in inputs), None)
        if clash:
            out.append(Diagnostic(where, f"output path '{path}' of {owner} would overwrite "
                                  f"{clash} (or differs from it only by the {PREVIEW_MARK} a "
                                  "preview run adds); write outputs to their own files, "
                                  "e.g. under renders/"))
        elif any(is_inside(w, real_cache) for w in written):
            out.append(Diagnostic(where, f"output path '{path}' of {owner} is inside the cache "
                                  f"directory {os.path.relpath(cache, base)}; write outputs "
                                  "elsewhere, e.g. under renders/"))
        elif full in seen:
            out.append(Diagnostic(where, f"output path '{path}' of {owner} is also the output "
                                  f"of {seen[full]}"))
        else:
            seen[full] = owner
    return out


def _inputs(spec: Spec) -> dict[str, str]:
    """What an output must not overwrite, by real path without preview mark: a description."""
    inputs: dict[str, str] = {}
    for i, file in enumerate(spec.files):
        what = "the spec file" if i == 0 else f"the included file {os.path.basename(file)}"
        inputs[_plain(os.path.realpath(file))] = what
    for name, asset in spec.assets.items():
        if asset.file is not None:
            inputs[_plain(os.path.realpath(asset.file))] = f"asset '{name}' ({asset.path})"
    return inputs


def _outputs(spec: Spec, ctx: Context | None) -> list[tuple[str, Where, str]]:
    """(path as written, where it is written, whose output) of every output of the spec."""
    outputs: list[tuple[str, Where, str]] = []
    for scene in spec.scenes:
        if scene.path:
            where = ctx.scene(scene.id).at("path") if ctx else scene.where
            outputs.append((scene.path, where, f"scene '{scene.id}'"))
        for shot in scene.shots:
            if shot.path:
                where = ctx.shot(shot.qid).at("path") if ctx else shot.where
                outputs.append((shot.path, where, f"shot '{shot.qid}'"))
    for film in spec.films:
        if film.path:
            where = ctx.film(film.id).at("path") if ctx else film.where
            outputs.append((film.path, where, f"film '{film.id}'"))
    return outputs


def still_trusted(spec: Spec) -> bool:
    """Whether a spec read back from the parsed-spec cache passes every path rule against
    the files as they are now (a symlink may have appeared since it was stored)."""
    root = spec.root
    if not spec.files or spec.files[0] != spec.file:
        return False
    if root != project_root(os.path.dirname(spec.file)):
        return False
    if not all(real_inside(f, root) for f in spec.files):
        return False
    if spec.settings.cache is not None and path_problem(
            spec.settings.cache, os.path.dirname(spec.file), root, "cache"):
        return False
    for asset in spec.assets.values():
        if asset.file is not None and (not os.path.isabs(asset.file)
                                       or not real_inside(asset.file, root)):
            return False
    return not check(spec)
