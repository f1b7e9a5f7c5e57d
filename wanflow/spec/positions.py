"""Where each value of a spec file was written, so every diagnostic can say `file:line:col`.

A value is addressed by its key path from the document's root: `("scenes", 0, "shots", 2,
"duration")`, shown to people as the JSON path `$.scenes[0].shots[2].duration`.
"""
from __future__ import annotations

import json
import re

from .nodes import Where

KeyPath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_LONGEST_SHOWN = 24  # deeper paths (hostile nesting) are shortened to keep one clear line


def json_path(path: KeyPath) -> str:
    """`$.scenes[0].shots[2].duration`; keys that are not plain names are quoted."""
    if len(path) > _LONGEST_SHOWN:
        return json_path(path[:8]) + ".…" + json_path(path[-2:])[1:]
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def label(path: KeyPath) -> str:
    """How a message names the value at `path`: its key, with any list indexes after it."""
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            tail = "".join(f"[{p}]" for p in path[i + 1:])
            return f"{path[i]}{tail}"
    return "spec" if not path else f"item [{path[-1]}]"


class Positions:
    """The line and column of every value, and of every mapping key, of one document.

    Filled while the YAML is composed; afterwards it only answers questions. A path that was
    never recorded (a value the loader filled in, a key a merge brought) is placed at its
    nearest recorded ancestor, so a diagnostic always points somewhere sensible.
    """

    def __init__(self, file: str) -> None:
        self.file = file  # the file as shown in diagnostics
        self._values: dict[KeyPath, tuple[int, int]] = {}
        self._keys: dict[KeyPath, tuple[int, int]] = {}

    def add(self, path: KeyPath, line: int, col: int, *, key: bool = False) -> None:
        """Record the value at `path` (or, with `key`, the mapping key naming it)."""
        (self._keys if key else self._values)[path] = (line, col)

    def add_missing(self, path: KeyPath, line: int, col: int) -> None:
        """Record the value at `path` unless it already has a position."""
        self._values.setdefault(path, (line, col))

    def line_col(self, path: KeyPath) -> tuple[int, int] | None:
        """The recorded position of the value at `path`, if there is one."""
        return self._values.get(path)

    def at(self, path: KeyPath = ()) -> Where:
        """Where the value at `path` is (or its nearest recorded ancestor)."""
        probe = path
        while True:
            found = self._values.get(probe)
            if found is not None:
                return Where(self.file, found[0], found[1], json_path(path))
            if not probe:
                return Where(self.file, 1, 1, json_path(path))
            probe = probe[:-1]

    def key(self, path: KeyPath) -> Where:
        """Where the mapping key naming `path` is; the value's position if it has no key."""
        found = self._keys.get(path)
        if found is not None:
            return Where(self.file, found[0], found[1], json_path(path))
        return self.at(path)
