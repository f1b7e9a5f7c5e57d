"""Loading a spec: the stages in order, and the files it includes.

    read the file (yaml) → includes → variables (interpolate) → numbers → JSON Schema
    (schema) → frozen values (build) → semantic rules (checks) → input media (media_rules)

Every stage reports into one list of diagnostics and carries on, so a spec with five
problems gets five diagnostics, sorted by file and position. Only a file that cannot be
read at all stops the load early.
"""
from __future__ import annotations

import dataclasses
import os

from ..errors import SpecError
from . import checks, media_rules, numbers, paths, schema
from .build import Builder
from .interpolate import Interpolator
from .nodes import Diagnostic, Spec, Where
from .yaml import Document, Unreadable, read

MAX_FILES = 200   # the spec and every file it includes, directly or not
SPEC_ONLY = ("scenes", "films", "settings")
LIBRARY_KEYS = ("templates", "assets")   # what a library offers the specs that include it


def is_library(data: object) -> bool:
    """A file meant to be included — templates or assets (with vars, defaults...), and
    nothing only a spec has — checked on its own when it is named directly. A file with
    neither is a spec that lacks its scenes, and is told so."""
    return (isinstance(data, dict) and not any(k in data for k in SPEC_ONLY)
            and any(k in data for k in LIBRARY_KEYS))


def load(path: str | os.PathLike[str]) -> Spec:
    """Read, resolve and check the spec at `path`.

    Raises SpecError with every diagnostic found (warnings included, severity "warning");
    on success the returned Spec carries the warnings.
    """
    return _Loading(str(path)).run()


class _Loading:
    """One load of one spec: its files and the diagnostics found so far."""

    def __init__(self, path: str) -> None:
        self.display = path
        self.abspath = os.path.abspath(path)
        self.out: list[Diagnostic] = []
        self.docs: list[Document] = []          # included files first, the top-level last
        self.loaded: dict[str, Document] = {}   # by absolute path
        self.root = ""

    def run(self) -> Spec:
        self.root = paths.project_root(os.path.dirname(self.abspath))
        if not paths.real_inside(self.abspath, self.root):
            raise SpecError([Diagnostic(Where(self.display), (
                f"{self.display} is a symlink to a file outside the project; "
                "it is not read"))])
        try:
            top = read(self.abspath, self.display)
        except Unreadable as err:
            raise SpecError([err.diagnostic]) from None
        self.out += top.errors
        top.library = is_library(top.data)
        self.loaded[self.abspath] = top
        self._includes(top, [self.abspath])
        self.docs.append(top)
        interpolator = Interpolator(self.out)
        interpolator.resolve_vars(self.docs)
        for doc in self.docs:
            interpolator.interpolate(doc)
        for doc in self.docs:
            found, refused = numbers.normalise(doc)
            self.out += found
            self.out += schema.validate(doc, refused)
        spec, ctx = Builder(self.docs, top, self.root, interpolator, self.out).build()
        self.out += checks.check(ctx)
        self.out += paths.check(spec, ctx)
        if not any(d.is_error for d in self.out):
            self.out += media_rules.check(spec, ctx)
        return self._finish(spec, top)

    def _finish(self, spec: Spec, top: Document) -> Spec:
        """Raise SpecError with every diagnostic, or return the spec with its warnings."""
        rank: dict[str, int] = {}
        for doc in [top] + self.docs:
            rank.setdefault(doc.file, len(rank))
        seen = set()
        unique = []
        for d in self.out:
            key = (d.where.file, d.where.line, d.where.col, d.where.path, d.message, d.severity)
            if key not in seen:
                seen.add(key)
                unique.append(d)
        unique.sort(key=lambda d: (rank.get(d.where.file, len(rank)), d.where.file, d.where.line,
                                   d.where.col, d.severity != "error"))
        if any(d.is_error for d in unique):
            raise SpecError(unique)
        return dataclasses.replace(spec, warnings=tuple(d for d in unique if not d.is_error))

    def _includes(self, doc: Document, chain: list[str]) -> None:
        """Read the files `doc` includes, depth first, each once (a diamond loads once)."""
        items = doc.data.get("include")
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                continue  # the schema reports it
            where = doc.pos.at(("include", i))
            if "${" in item:
                self.out.append(Diagnostic(where, "include paths are literal: variables are not "
                                           "interpolated in `include`"))
                continue
            problem = paths.path_problem(item, doc.dir, self.root, "include")  # before reading
            if problem:
                self.out.append(Diagnostic(where, problem))
                continue
            abspath = os.path.normpath(os.path.join(doc.dir, item))
            display = os.path.normpath(os.path.join(os.path.dirname(doc.file), item))
            if abspath in chain:
                names = [self._display_of(p) for p in chain[chain.index(abspath):]]
                self.out.append(Diagnostic(where,
                                           "include cycle: " + " -> ".join(names + [display])))
                continue
            if abspath in self.loaded:
                continue
            if len(self.loaded) >= MAX_FILES:
                self.out.append(Diagnostic(
                    where, f"too many included files (the limit is {MAX_FILES})"))
                return
            if not os.path.exists(abspath):
                self.out.append(Diagnostic(
                    where, f"included file not found: {item} (looked for {display})"))
                continue
            try:
                child = read(abspath, display, library=True)
            except Unreadable as err:
                self.out.append(err.diagnostic)
                continue
            self.out += child.errors
            self.loaded[abspath] = child
            self._includes(child, chain + [abspath])
            self.docs.append(child)

    def _display_of(self, abspath: str) -> str:
        doc = self.loaded.get(abspath)
        return doc.file if doc else abspath
