"""`wanflow pick SCENE.SHOT TAKE`: choose the take that goes into the cut, in the spec file.

The edit is made where the loader says the shot's `pick:` is written (its line and column),
or as a `pick:` line right after the shot's own `takes:`; every other byte of the file
(comments, layout, line endings) stays as it was. A `pick` or `takes` that the shot gets
from a template, from `defaults` or from an included file is not the shot's to change: the
command refuses and names the file and line to edit instead. The spec is validated after
the edit and the file put back as it was if it no longer loads.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

from ..errors import SpecError, UsageError
from ..spec.nodes import Shot, Spec
from ..text import shown

_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Picked:
    shot: str
    take: int
    previous: int
    file: str
    line: int          # where the edit is (0: nothing to do)

    def __str__(self) -> str:
        if not self.line:
            return f"{self.shot}: take {self.take} is already picked"
        return (f"{self.file}:{self.line}: {self.shot} now picks take {self.take} "
                f"(was {self.previous})")


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _read(path: str):
    # The loader's own reader, which records where each value is written.
    from ..spec import yaml as spec_yaml

    try:
        return spec_yaml.read(path, _display(path))
    except spec_yaml.Unreadable as err:
        raise SpecError([err.diagnostic]) from None


def pick(spec_file: str, target: str, take: int) -> Picked:
    """Make `take` the picked take of shot `target` (`scene.shot`) in the spec file."""
    from ..spec import load

    spec = load(spec_file)
    shot = spec.shot(target) if "." in target else None
    if shot is None:
        known = ", ".join(s.qid for s in spec.shots())
        raise UsageError(f"no shot {shown(target)} in {shown(spec_file)} (expected "
                         f"SCENE.SHOT: {known})")
    if not 1 <= take <= shot.takes:
        raise UsageError(f"{shot.qid} has {shot.takes} take(s): pick one of 1 to {shot.takes}")
    if take == shot.pick:
        return Picked(shot.qid, take, shot.pick, _display(spec.file), 0)
    doc = _read(spec.file)
    path = _shot_path(doc.data, shot)
    raw = doc.data["scenes"][path[1]]["shots"][path[3]]
    for key in ("pick", "takes"):
        if key not in raw:
            _refuse_inherited(spec, shot, key, raw)
    with open(spec.file, "rb") as f:
        original = f.read()
    text = original.decode("utf-8")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = io.StringIO(text[len(bom):], newline="").readlines()
    if "pick" in raw:
        line, col = doc.pos.line_col(path + ("pick",)) or (0, 0)
        _replace_number(lines, line, col, take, doc.file)
    elif "takes" in raw:
        line = _insert_after_takes(lines, doc, path, take)
    else:
        raise UsageError(f"{doc.file}:{shot.where.line}: {shot.qid} has no `takes:` of its "
                         "own to put `pick:` beside; add it by hand")
    _write(spec.file, (bom + "".join(lines)).encode("utf-8"))
    try:
        after = load(spec_file)
        edited = after.shot(shot.qid)
        if edited is None or edited.pick != take:
            raise UsageError(f"{doc.file}:{line}: the edit did not take effect")
    except (SpecError, UsageError):
        _write(spec.file, original)   # as it was: a pick never leaves a broken spec
        raise
    return Picked(shot.qid, take, shot.pick, doc.file, line)


def _shot_path(data: dict, shot: Shot) -> tuple:
    for i, scene in enumerate(data.get("scenes") or []):
        if isinstance(scene, dict) and scene.get("id") == shot.scene:
            for j, raw in enumerate(scene.get("shots") or []):
                if isinstance(raw, dict) and raw.get("id") == shot.id:
                    return ("scenes", i, "shots", j)
    raise UsageError(f"{shot.qid} is not written in {shot.where.file}")   # loader disagrees


def _refuse_inherited(spec: Spec, shot: Shot, key: str, raw: dict) -> None:
    """Say where the `key` the shot inherits is written, and refuse to edit it here."""
    docs = [_read(f) for f in [*spec.files[1:], spec.files[0]]]   # the loader's order
    where, origin = None, None
    use = raw.get("use")
    if isinstance(use, str):
        owner = next((d for d in docs if isinstance(d.data.get("templates"), dict)
                      and use in d.data["templates"]), None)
        if owner is not None and isinstance(owner.data["templates"][use], dict) \
                and key in owner.data["templates"][use]:
            where, origin = owner.pos.key(("templates", use, key)), f"template '{use}'"
    if where is None:
        owners = [d for d in docs if isinstance(d.data.get("defaults"), dict)
                  and key in d.data["defaults"]]
        if owners:
            where, origin = owners[-1].pos.key(("defaults", key)), "defaults"
    if where is None:
        return   # not inherited: the shot's own (or the default), edited at the shot
    raise UsageError(f"{where.file}:{where.line}: {shot.qid} takes its `{key}` from "
                     f"{origin}; edit it there (or give the shot its own `takes:` and `pick:`)")


def _replace_number(lines: list[str], line: int, col: int, take: int, file: str) -> None:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    m = _NUMBER.match(text, col - 1) if col else None
    if m is None:
        raise UsageError(f"{file}:{line}: `pick:` is not written as a plain number there; "
                         "edit it by hand")
    lines[line - 1] = text[:m.start()] + str(take) + text[m.end():]


def _insert_after_takes(lines: list[str], doc, path: tuple, take: int) -> int:
    """Put `pick: N` beside the shot's `takes:`: on the next line at the same indentation,
    or after the value inside a flow mapping (`{id: x, takes: 3}`)."""
    key = doc.pos.key(path + ("takes",))
    value = doc.pos.line_col(path + ("takes",))
    text = lines[key.line - 1]
    before = text[:key.col - 1].rstrip()
    if before.endswith(("{", ",")) and value is not None:
        vline, vcol = value
        vtext = lines[vline - 1]
        m = _NUMBER.match(vtext, vcol - 1)
        if m is None:
            raise UsageError(f"{doc.file}:{vline}: `takes:` is not a plain number there; "
                             "add `pick:` by hand")
        lines[vline - 1] = vtext[:m.end()] + f", pick: {take}" + vtext[m.end():]
        return vline
    ending = text[len(text.rstrip("\r\n")):] or "\n"
    if not text.endswith(("\n", "\r")):
        lines[key.line - 1] = text + ending
    lines.insert(key.line, " " * (key.col - 1) + f"pick: {take}" + ending)
    return key.line + 1


def _write(path: str, data: bytes) -> None:
    """Replace the file atomically, keeping its permissions."""
    mode = os.stat(path).st_mode & 0o7777
    tmp = f"{path}.{os.getpid()}.pick"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
