"""Load a spec: YAML → positions → includes → vars → JSON Schema → templates/defaults → Spec.

The only module that imports `yaml` and `jsonschema`.

- YAML is read defensively: size limit before reading, UTF-8 only, no custom tags (nothing is
  ever constructed from a tag), duplicate keys reported, aliases counted (billion laughs),
  nesting depth bounded. Scalars follow the YAML 1.2 core schema (as editors do), so
  `ratio: 16:9` is the string "16:9" and `yes` is a string, not a boolean.
- Every value's source position is recorded by its JSON path (`Doc.pos`, `Doc.kpos` for keys),
  so every diagnostic points at `file:line:col` and names `$.scenes[0].shots[2].duration`.
- Structural rules come from `schemas/wanflow.schema.json` only; its errors are translated
  into friendly messages here. Semantic rules are in `checks.py`.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import jsonschema
import yaml

from . import checks
from .. import models
from ..errors import SpecError
from .nodes import (Asset, AudioBed, Diagnostic, Film, Input, ModelLimit, Scene, Shot, ShotRef,
                   Spec, SpecSettings, Transition, Where)

MAX_BYTES = 2 * 1024 * 1024     # a spec file larger than this is refused unread
MAX_NODES = 100_000             # YAML nodes per file, counting every alias expansion
MAX_DEPTH = 100                 # nesting of mappings and lists
MAX_STRING = 100_000            # characters of one string after interpolation
MAX_FILES = 200                 # spec + includes
# Media limits models.py does not carry yet (reference §2.4, ⚠ from mirrors).
VOICE_SECONDS = (1.0, 10.0)       # wan2.7-r2v reference_voice
FIRST_CLIP_SECONDS = (2.0, 10.0)  # wan2.7-i2v first_clip

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # used as a parser only
_YAML_TAG = "tag:yaml.org,2002:"
_VARNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_WHOLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HTTPS = re.compile(r"^https://[^\s/?#]+")
SHOT_FIELDS = ("model", "prompt", "negative_prompt", "duration", "resolution", "ratio", "size",
               "seed", "prompt_extend", "watermark", "shot_type", "audio", "generate_audio",
               "effect", "enable_thinking", "first_frame", "last_frame", "first_clip",
               "references", "takes", "pick")
LIBRARY_ONLY = ("scenes", "films", "settings")


class _Bad:
    """Stands in for a value the schema rejected: treated as absent, never re-reported."""

    def __repr__(self) -> str:
        return "<invalid>"


BAD = _Bad()


class _Fatal(Exception):
    def __init__(self, diag: Diagnostic):
        super().__init__(diag.message)
        self.diag = diag


# =============================================================================== public API

def load(path) -> Spec:
    """Read, resolve and check the spec at `path`.

    Raises SpecError with every diagnostic found (warnings included, severity "warning");
    on success the returned Spec carries the warnings.
    """
    return _Session(str(path)).run()


def schema_text() -> str:
    """The packaged JSON Schema of the spec language."""
    return resources.files("wanflow").joinpath("schemas/wanflow.schema.json").read_text("utf-8")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(schema_text())


def summary(spec: Spec) -> dict:
    """Counts and seconds of a loaded spec, for `validate --json` and the summary line."""
    shots = list(spec.shots())
    seconds = 0
    generated = 0
    used_models: set[str] = set()
    for shot in shots:
        d = _effective_duration(shot)
        seconds += d
        generated += d * shot.takes
        used_models.add(shot.model)
    return {
        "name": spec.name,
        "file": spec.file,
        "scenes": len(spec.scenes),
        "shots": len(shots),
        "takes": sum(s.takes for s in shots),
        "films": len(spec.films),
        "assets": len(spec.assets),
        "seconds": seconds,
        "generated_seconds": generated,
        "models": sorted(used_models),
        "files": list(spec.files),
        "warnings": len(spec.warnings),
    }


def summary_line(spec: Spec) -> str:
    """E.g. `2 scenes, 7 shots (9 takes), 1 film, 38 s of video`."""
    s = summary(spec)

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    shots = n(s["shots"], "shot")
    if s["takes"] != s["shots"]:
        shots += f" ({n(s['takes'], 'take')})"
    line = f"{n(s['scenes'], 'scene')}, {shots}, {n(s['films'], 'film')}, {s['seconds']} s of video"
    if s["warnings"]:
        line += f", {n(s['warnings'], 'warning')}"
    return line


def _effective_duration(shot: Shot) -> int:
    info = models.lookup(shot.model)
    if info is None:
        return shot.duration or 5
    if info.kind == "kf2v":
        return 5
    return shot.duration or info.default_duration


# =============================================================================== positions

def json_path(path: tuple) -> str:
    out = "$"
    if len(path) > 24:  # very deep paths (hostile nesting) are shortened for one clear line
        return json_path(path[:8]) + ".…" + json_path(path[-2:])[1:]
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out


@dataclass
class Doc:
    """One YAML file: its data and the position of every value (and key) by JSON path."""

    file: str                 # display name (as given, or relative to it for includes)
    abspath: str
    data: object
    pos: dict = field(default_factory=dict)    # path -> (line, col) of the value node
    kpos: dict = field(default_factory=dict)   # path -> (line, col) of the key naming it
    library: bool = False                      # an included file
    errors: list = field(default_factory=list)  # non-fatal reading problems (duplicate keys)

    @property
    def dir(self) -> str:
        return os.path.dirname(self.abspath)

    def where(self, path: tuple = (), key: bool = False) -> Where:
        path = tuple(path)
        if key and path in self.kpos:
            line, col = self.kpos[path]
            return Where(self.file, line, col, json_path(path))
        probe = path
        while True:
            if probe in self.pos:
                line, col = self.pos[probe]
                return Where(self.file, line, col, json_path(path))
            if not probe:
                return Where(self.file, 1, 1, json_path(path))
            probe = probe[:-1]


def _diag(file: str, line: int, col: int, message: str, path: str = "$") -> Diagnostic:
    return Diagnostic(Where(file, line, col, path), message)


# =============================================================================== reading YAML

def _read(abspath: str, display: str, library: bool = False) -> Doc:
    """Read and compose one YAML file. Raises _Fatal with a single clear diagnostic."""
    try:
        st = os.stat(abspath)
    except FileNotFoundError:
        raise _Fatal(_diag(display, 0, 0, f"no such file: {display}"))
    except NotADirectoryError:
        raise _Fatal(_diag(display, 0, 0, f"no such file: {display} (a parent is not a directory)"))
    except PermissionError:
        raise _Fatal(_diag(display, 0, 0, f"cannot read {display}: permission denied"))
    except OSError as err:
        raise _Fatal(_diag(display, 0, 0, f"cannot read {display}: {err.strerror or err}"))
    import stat as _stat
    if _stat.S_ISDIR(st.st_mode):
        raise _Fatal(_diag(display, 0, 0, f"{display} is a directory, not a spec file"))
    if not _stat.S_ISREG(st.st_mode):
        raise _Fatal(_diag(display, 0, 0, f"{display} is not a regular file"))
    if st.st_size > MAX_BYTES:
        raise _Fatal(_diag(display, 1, 1, f"spec file is too large: {st.st_size} bytes "
                           f"(the limit is {MAX_BYTES // (1024 * 1024)} MiB)"))
    try:
        with open(abspath, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise _Fatal(_diag(display, 0, 0, f"cannot read {display}: {err.strerror or err}"))
    if len(raw) > MAX_BYTES:
        raise _Fatal(_diag(display, 1, 1, f"spec file is too large (the limit is "
                           f"{MAX_BYTES // (1024 * 1024)} MiB)"))
    text = _decode(raw, display)
    return _compose(text, display, abspath, library)


def _line_col_of_byte(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    start = raw.rfind(b"\n", 0, offset) + 1
    return line, offset - start + 1


def _decode(raw: bytes, display: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _Fatal(_diag(display, 1, 1, "spec is UTF-16 encoded; save it as UTF-8"))
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _line_col_of_byte(raw, nul)
        raise _Fatal(_diag(display, line, col, f"binary data, not a YAML spec "
                           f"(NUL byte at byte offset {nul})"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col_of_byte(raw, err.start)
        raise _Fatal(_diag(display, line, col, f"not UTF-8 text: invalid byte "
                           f"0x{raw[err.start]:02x} at byte offset {err.start}"))
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _line_col_of_char(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    start = text.rfind("\n", 0, index) + 1
    return line, index - start + 1


def _tag_text(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


def _core_scalar(value: str):
    """A plain scalar under the YAML 1.2 core schema."""
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if len(value) > 40:
        return value
    if _INT10.match(value):
        return int(value)
    if _INT8.match(value):
        return int(value[2:], 8)
    if _INT16.match(value):
        return int(value[2:], 16)
    if _FLOAT.match(value):
        return float(value)
    if _INF.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN.match(value):
        return math.nan
    return value


_EXPLICIT = {"str", "int", "float", "bool", "null"}


class _Frame:
    __slots__ = ("kind", "value", "path", "key", "anchor", "count0", "order0", "merges", "seen",
                 "line", "col")

    def __init__(self, kind, value, path, anchor, count0, order0, line, col):
        self.kind, self.value, self.path, self.anchor = kind, value, path, anchor
        self.count0, self.order0 = count0, order0
        self.key = None
        self.merges: list = []
        self.seen: dict = {}
        self.line, self.col = line, col


_MERGE = object()


def _compose(text: str, display: str, abspath: str, library: bool) -> Doc:
    """Build plain Python data from YAML events, recording positions; nothing is constructed
    from tags, so hostile YAML cannot run code; aliases are counted, not re-walked."""
    doc = Doc(display, abspath, None, library=library)
    pos, kpos = doc.pos, doc.kpos
    order: list[tuple[tuple, int, int, bool]] = []
    anchors: dict[str, tuple] = {}
    errors: list[Diagnostic] = []
    stack: list[_Frame] = []
    total = 0
    root = None
    have_root = False
    parser = _Loader(text)

    def fatal(line: int, col: int, message: str, path: tuple = ()) -> _Fatal:
        return _Fatal(_diag(display, line, col, message, json_path(path)))

    def record(path: tuple, line: int, col: int, is_key: bool) -> None:
        (kpos if is_key else pos)[path] = (line, col)
        order.append((path, line, col, is_key))

    def attach(value, path: tuple) -> None:
        nonlocal root, have_root
        if not stack:
            root, have_root = value, True
            return
        parent = stack[-1]
        if parent.kind == "seq":
            parent.value.append(value)
        elif parent.key is _MERGE:
            parent.merges.append((value, path))
            parent.key = None
        else:
            parent.value[parent.key] = value
            parent.key = None

    try:
        event = parser.get_event()  # StreamStart
        if parser.check_event(yaml.StreamEndEvent):
            raise _Fatal(_diag(display, 1, 1, "empty spec: the file has no YAML content"))
        parser.get_event()  # DocumentStart
        while True:
            event = parser.get_event()
            if isinstance(event, yaml.DocumentEndEvent):
                break
            mark = event.start_mark
            line, col = mark.line + 1, mark.column + 1
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                if frame.kind == "map" and frame.merges:
                    _apply_merges(frame, pos, display)
                if frame.anchor:
                    anchors[frame.anchor] = (frame.value, total - frame.count0, frame.order0,
                                             len(order), frame.path)
                attach(frame.value, frame.path)
                continue
            parent = stack[-1] if stack else None
            if parent is not None and parent.kind == "map" and parent.key is None:
                # a mapping key
                if not isinstance(event, yaml.ScalarEvent):
                    raise fatal(line, col, "mapping keys must be plain strings "
                                "(complex keys, lists and aliases as keys are not supported)",
                                parent.path)
                if event.tag not in (None, "!", _YAML_TAG + "str"):
                    raise fatal(line, col, f"unsupported YAML tag {_tag_text(event.tag)} on a key "
                                "(wanflow reads plain YAML only)", parent.path)
                key = event.value
                if key == "<<" and event.implicit[0]:
                    parent.key = _MERGE
                    continue
                kpath = parent.path + (key,)
                if key in parent.seen:
                    fl, fc = parent.seen[key]
                    errors.append(_diag(display, line, col, f"duplicate key '{key}' "
                                        f"(first at line {fl}); YAML would silently keep only "
                                        "the last one", json_path(kpath)))
                else:
                    parent.seen[key] = (line, col)
                parent.key = key
                record(kpath, line, col, True)
                continue
            if parent is None:
                path: tuple = ()
            elif parent.kind == "seq":
                path = parent.path + (len(parent.value),)
            elif parent.key is _MERGE:
                path = parent.path + ("<<",)
            else:
                path = parent.path + (parent.key,)
            total += 1
            if total > MAX_NODES:
                raise fatal(line, col, f"spec is too big: more than {MAX_NODES} YAML nodes", path)
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise fatal(line, col, f"alias *{event.anchor} refers to no anchor defined "
                                "before it", path)
                value, count, o0, o1, apath = anchors[event.anchor]
                total += count - 1
                if total > MAX_NODES:
                    raise fatal(line, col, f"spec is too big: aliases expand to more than "
                                f"{MAX_NODES} YAML nodes (an alias bomb?)", path)
                n = len(apath)
                for p, ln, cl, is_key in order[o0:o1]:
                    record(path + p[n:], ln, cl, is_key)
                record(path, line, col, False)
                attach(value, path)
                continue
            if isinstance(event, yaml.ScalarEvent):
                value = _scalar(event, display, line, col, path)
                record(path, line, col, False)
                if event.anchor:
                    anchors[event.anchor] = (value, 1, len(order) - 1, len(order), path)
                attach(value, path)
                continue
            # MappingStart / SequenceStart
            is_map = isinstance(event, yaml.MappingStartEvent)
            allowed_tag = _YAML_TAG + ("map" if is_map else "seq")
            if event.tag not in (None, "!", allowed_tag):
                raise fatal(line, col, f"unsupported YAML tag {_tag_text(event.tag)} "
                            "(wanflow reads plain YAML only; nothing is constructed from tags)",
                            path)
            if len(stack) >= MAX_DEPTH:
                raise fatal(line, col, f"spec is nested too deeply (more than {MAX_DEPTH} levels)",
                            path)
            record(path, line, col, False)
            stack.append(_Frame("map" if is_map else "seq", {} if is_map else [], path,
                                event.anchor, total - 1, len(order) - 1, line, col))
        event = parser.get_event()
        if not isinstance(event, yaml.StreamEndEvent):
            mark = event.start_mark
            raise fatal(mark.line + 1, mark.column + 1, "a spec file holds a single YAML "
                        "document; found a second one (a `---` line?)")
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        msg = " ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise _Fatal(_diag(display, line, col, f"invalid YAML: {msg}"))
    except yaml.reader.ReaderError as err:
        line, col = _line_col_of_char(text, err.position) if isinstance(err.position, int) \
            else (0, 0)
        ch = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
        raise _Fatal(_diag(display, line, col, f"invalid YAML: {err.reason} (U+{ch:04X})"))
    except yaml.YAMLError as err:
        raise _Fatal(_diag(display, 0, 0, f"invalid YAML: {err}"))
    except RecursionError:
        raise _Fatal(_diag(display, 0, 0, "spec is nested too deeply"))
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose:
            dispose()
    doc.errors = errors
    if not have_root or root is None:
        raise _Fatal(_diag(display, 1, 1, "empty spec: the file has no YAML content"))
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else f"a single value ({_show(root)})"
        line, col = pos.get((), (1, 1))
        raise _Fatal(_diag(display, line, col, "the top level of a spec must be a mapping "
                           f"(wanflow: 1, name: …, scenes: …), not {kind}"))
    doc.data = root
    return doc


def _scalar(event, display: str, line: int, col: int, path: tuple):
    tag = event.tag
    value = event.value
    if tag is None:
        if event.implicit[0]:   # plain scalar
            try:
                return _core_scalar(value)
            except ValueError:
                return value
        return value            # quoted or block scalar
    if tag == "!":
        return value
    short = tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else None
    if short not in _EXPLICIT:
        raise _Fatal(_diag(display, line, col, f"unsupported YAML tag {_tag_text(tag)} "
                           "(wanflow reads plain YAML only; nothing is constructed from tags)",
                           json_path(path)))
    if short == "str":
        return value
    try:
        resolved = _core_scalar(value)
    except ValueError:
        resolved = value
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool),
          "null": lambda v: v is None}[short]
    if not ok(resolved):
        raise _Fatal(_diag(display, line, col, f"{_show(value)} is not a valid !!{short}",
                           json_path(path)))
    return float(resolved) if short == "float" else resolved


def _apply_merges(frame: _Frame, pos: dict, display: str) -> None:
    """YAML merge keys (`<<: *base`): keys of the merged mappings that the mapping lacks."""
    for value, mpath in frame.merges:
        sources = value if isinstance(value, list) else [value]
        for src in sources:
            if not isinstance(src, dict):
                line, col = pos.get(mpath, (frame.line, frame.col))
                raise _Fatal(_diag(display, line, col, "`<<` merges a mapping or a list of "
                                   "mappings", json_path(mpath)))
            for k, v in src.items():
                if k not in frame.value:
                    frame.value[k] = v
                    p = frame.path + (k,)
                    if p not in pos:
                        pos[p] = pos.get(mpath, (frame.line, frame.col))


# =============================================================================== messages

def _show(value) -> str:
    if value is None:
        return "null"
    if value is BAD:
        return "an invalid value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "…"
        return "'" + text.replace("\n", "\\n") + "'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "true or false",
               "null": "null"}


def _type_word(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _type_ok(schema: dict, value) -> bool:
    types = schema.get("type")
    if types is None:
        if "const" in schema:
            return True
        if "enum" in schema:
            return any(type(value) is type(v) for v in schema["enum"])
        return True
    if isinstance(types, str):
        types = [types]
    for t in types:
        if t == "object" and isinstance(value, dict):
            return True
        if t == "array" and isinstance(value, list):
            return True
        if t == "string" and isinstance(value, str):
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if t == "null" and value is None:
            return True
        if t == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
    return False


def _label(path: tuple) -> str:
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            tail = "".join(f"[{p}]" for p in path[i + 1:])
            return f"{path[i]}{tail}"
    return "spec" if not path else f"item [{path[-1]}]"


def _num(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


# =============================================================================== the session

class _Session:
    def __init__(self, path: str):
        self.display = path
        self.abspath = os.path.abspath(path)
        self.diags: list[Diagnostic] = []
        self.docs: list[Doc] = []          # include order: included files first, top last
        self.loaded: dict[str, Doc] = {}
        self.root = ""
        self.vars: dict = {}
        self.var_where: dict = {}
        self.bad_vars: set[str] = set()

    # ----------------------------------------------------------------- driver
    def run(self) -> Spec:
        try:
            top = _read(self.abspath, self.display)
        except _Fatal as f:
            raise SpecError([f.diag])
        self.diags += top.errors
        self.root = _project_root(os.path.dirname(self.abspath))
        self.top = top
        self.loaded[self.abspath] = top
        self._includes(top, [self.abspath])
        self.docs.append(top)
        self._resolve_vars()
        for doc in self.docs:
            self._interpolate_doc(doc)
        for doc in self.docs:
            self._validate(doc)
        spec, ctx = self._build()
        self.diags += checks.check(ctx)
        if not any(d.is_error for d in self.diags):
            self._media_checks(spec, ctx)
        return self._finish(spec)

    def error(self, where: Where, message: str) -> None:
        self.diags.append(Diagnostic(where, message))

    def _finish(self, spec: Spec) -> Spec:
        rank: dict[str, int] = {}
        for doc in [self.top] + self.docs:
            rank.setdefault(doc.file, len(rank))
        seen = set()
        unique = []
        for d in self.diags:
            key = (d.where.file, d.where.line, d.where.col, d.where.path, d.message, d.severity)
            if key not in seen:
                seen.add(key)
                unique.append(d)
        unique.sort(key=lambda d: (rank.get(d.where.file, len(rank)), d.where.file, d.where.line,
                                   d.where.col, d.severity != "error"))
        if any(d.is_error for d in unique):
            raise SpecError(unique)
        warnings = tuple(d for d in unique if not d.is_error)
        return Spec(file=spec.file, root=spec.root, name=spec.name, version=spec.version,
                    assets=spec.assets, scenes=spec.scenes, films=spec.films,
                    settings=spec.settings, files=spec.files, warnings=warnings)

    # ----------------------------------------------------------------- includes
    def _includes(self, doc: Doc, chain: list[str]) -> None:
        items = doc.data.get("include")
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item:
                continue  # the schema reports it
            where = doc.where(("include", i))
            if "${" in item:
                self.error(where, "include paths are literal: variables are not interpolated "
                           "in `include`")
                continue
            problem = checks.path_problem(item, doc.dir, self.root, "include")
            if problem:
                self.error(where, problem)
                continue
            abspath = os.path.normpath(os.path.join(doc.dir, item))
            display = os.path.normpath(os.path.join(os.path.dirname(doc.file), item))
            if abspath in chain:
                names = [self._display_of(p) for p in chain[chain.index(abspath):]]
                self.error(where, "include cycle: " + " -> ".join(names + [display]))
                continue
            if abspath in self.loaded:
                continue
            if len(self.loaded) >= MAX_FILES:
                self.error(where, f"too many included files (the limit is {MAX_FILES})")
                return
            if not os.path.exists(abspath):
                self.error(where, f"included file not found: {item} (looked for {display})")
                continue
            try:
                child = _read(abspath, display, library=True)
            except _Fatal as f:
                self.diags.append(f.diag)
                continue
            self.diags += child.errors
            self.loaded[abspath] = child
            self._includes(child, chain + [abspath])
            self.docs.append(child)

    def _display_of(self, abspath: str) -> str:
        doc = self.loaded.get(abspath)
        return doc.file if doc else abspath

    # ----------------------------------------------------------------- vars
    def _resolve_vars(self) -> None:
        raw: dict[str, tuple] = {}
        for doc in self.docs:
            section = doc.data.get("vars")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                ok = (isinstance(name, str) and _VARNAME.match(name)
                      and isinstance(value, (str, int, float)))
                if ok:
                    raw[name] = (value, doc, ("vars", name))
                    self.bad_vars.discard(name)
                else:
                    self.bad_vars.add(name)
                    raw.pop(name, None)
        resolved: dict = {}
        resolving: list[str] = []

        def resolve(name: str) -> None:
            value, doc, path = raw[name]
            if not isinstance(value, str) or "${" not in value:
                resolved[name] = value
                return
            if len(resolving) > 100:
                self.error(doc.where(path), f"variables nest too deeply at '{name}'")
                resolved[name] = ""
                return
            resolving.append(name)
            for m in _TOKEN.finditer(value):
                dep = m.group(1)
                if dep is None or dep not in raw or dep in resolved:
                    continue
                if dep in resolving:
                    cycle = resolving[resolving.index(dep):] + [dep]
                    self.error(doc.where(path), "variable cycle: " + " -> ".join(cycle))
                    resolved[dep] = ""
                    continue
                resolve(dep)
            resolving.pop()
            lookup = {k: v for k, v in resolved.items()}
            # names not yet resolved here are cycle members: treat them as empty
            for dep in raw:
                lookup.setdefault(dep, "")
            result = self._subst(value, lookup, (), True, doc.where(path), known=raw)
            if isinstance(result, str) and len(result) >= MAX_STRING:
                result = ""  # reported once here; variables built from it stay quiet
            resolved[name] = result

        for name in raw:
            if name not in resolved:
                resolve(name)
        self.vars = resolved
        self.var_where = {name: raw[name][1].where(raw[name][2]) for name in raw}

    def _subst(self, s: str, lookup: dict, keep, unescape: bool, where: Where,
               known=None, report: bool = True, kind: str = "variable"):
        """Interpolate `${name}` in `s`. A string that is exactly `${name}` takes the value's
        type. Names in `keep` are left as written (template parameters); `$${` escapes."""
        if "${" not in s:
            return s
        m = _WHOLE.fullmatch(s)
        if m and m.group(1) in lookup and m.group(1) not in keep:
            return lookup[m.group(1)]
        parts: list[str] = []
        size = 0
        last = 0
        for m in _TOKEN.finditer(s):
            parts.append(s[last:m.start()])
            size += m.start() - last
            last = m.end()
            token = m.group(0)
            if token == "$${":
                parts.append("${" if unescape else "$${")
                continue
            name = m.group(1)
            if name is None:
                if report:
                    self.error(where, "unterminated '${' (write '$${' for a literal '${')")
                parts.append(token)
                continue
            if not _VARNAME.match(name):
                if report:
                    self.error(where, f"bad variable reference '${{{name}}}': names use letters, "
                               "digits, '-' and '_' (write '$${' for a literal '${')")
                parts.append(token)
                continue
            if name in keep:
                parts.append(token)
                continue
            if name in lookup:
                text = _text(lookup[name])
            else:
                text = ""
                if report and name not in self.bad_vars:
                    names = list(known if known is not None else lookup)
                    extra = ("" if names else "; declare it under `vars:`")
                    self.diags.append(checks.unknown_name(name, names, where, kind, extra))
            parts.append(text)
            size += len(text)
            if size > MAX_STRING:
                self.error(where, f"interpolated text is longer than {MAX_STRING} characters")
                return "".join(parts)[:MAX_STRING]
        parts.append(s[last:])
        return "".join(parts)

    def _interp(self, doc: Doc, path: tuple, value, keep=(), unescape=True, known=None,
                kind="variable"):
        if isinstance(value, str):
            if "${" not in value:
                return value
            return self._subst(value, self.vars, keep, unescape, doc.where(path), known=known,
                               kind=kind)
        if isinstance(value, dict):
            return {k: self._interp(doc, path + (k,), v, keep, unescape, known, kind)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._interp(doc, path + (i,), v, keep, unescape, known, kind)
                    for i, v in enumerate(value)]
        return value

    def _interpolate_doc(self, doc: Doc) -> None:
        out = {}
        for key, value in doc.data.items():
            if key in ("vars", "include"):
                out[key] = value
            elif key == "templates" and isinstance(value, dict):
                out[key] = {name: self._interp_template(doc, ("templates", name), t)
                            for name, t in value.items()}
            else:
                out[key] = self._interp(doc, (key,), value)
        doc.data = out

    def _interp_template(self, doc: Doc, path: tuple, tpl):
        if not isinstance(tpl, dict):
            return tpl
        params = _param_names(tpl.get("params"))
        known = list(self.vars) + list(params)
        out = {}
        for key, value in tpl.items():
            if key == "params":
                out[key] = self._interp(doc, path + (key,), value)
            else:
                out[key] = self._interp(doc, path + (key,), value, keep=params, unescape=False,
                                        known=known, kind="variable or template parameter")
        return out

    # ----------------------------------------------------------------- schema
    def _validate(self, doc: Doc) -> None:
        data = doc.data
        if doc.library:
            stripped = dict(data)
            for key in LIBRARY_ONLY:
                if key in stripped:
                    self.error(doc.where((key,), key=True), (
                        f"an included file cannot define '{key}' (only vars, assets, templates, "
                        "defaults and include); move it to the top-level spec"))
                    stripped.pop(key)
            data = stripped
        validator = _validator(doc.library)
        masks: set = set()
        drops: set = set()
        for err in validator.iter_errors(data):
            self._explain(doc, err, masks, drops)
        if masks or drops:
            data = _sanitize(data, (), masks, drops)
        doc.data = data

    def _explain(self, doc: Doc, err, masks: set, drops: set) -> None:
        path = tuple(err.absolute_path)
        v = err.validator
        sch = err.schema if isinstance(err.schema, dict) else {}
        inst = err.instance
        label = _label(path)
        custom = sch.get("errorMessage")

        if "propertyNames" in err.schema_path:
            kp = path + (inst,)
            where = doc.where(kp, key=True)
            drops.add(kp)
            if v in ("anyOf", "oneOf"):
                self.error(where, f"unknown model '{inst}'{checks.suggest(inst, models.model_names(), models.MODELS)}")
            else:
                hint = sch.get("patternErrorMessage", "")
                self.error(where, f"invalid name '{inst}' in {label}" + (f": {hint}" if hint else ""))
            return

        where = doc.where(path)
        if v in ("anyOf", "oneOf"):
            branches = [_deref(b) for b in err.validator_value]
            enum_branch = next((b for b in branches if "enum" in b), None)
            if isinstance(inst, str) and enum_branch is not None and all(
                    _type_ok(b, inst) for b in branches):
                masks.add(path)
                names = enum_branch["enum"]
                what = "model" if sch.get("title") == "model" else label
                listing = models.MODELS if what == "model" else names
                self.error(where, f"unknown {what} {_show(inst)}{checks.suggest(inst, names, listing)}")
                return
            typed = [i for i, b in enumerate(branches) if _type_ok(b, inst)]
            if len(typed) > 1 and isinstance(inst, dict):
                scores = [(len(set(inst) & set(branches[i].get("properties", {}))), i) for i in typed]
                best = max(s for s, _ in scores)
                top = [i for s, i in scores if s == best]
                if best > 0 and len(top) == 1:
                    typed = top
            if len(typed) == 1:
                subs = [e for e in (err.context or [])
                        if e.relative_schema_path and e.relative_schema_path[0] == typed[0]]
                if subs:
                    for e in subs:
                        self._explain(doc, e, masks, drops)
                    return
            masks.add(path)
            titles = [b.get("title") or _TYPE_WORDS.get(b.get("type"), "?") for b in branches]
            self.error(where, f"{label}: expected " + " or ".join(titles) + f", got {_show(inst)}")
            return
        if v == "additionalProperties" and isinstance(inst, dict):
            known = _known_keys(sch)
            extras = [k for k in inst if k not in known]
            title = sch.get("title") or label
            for k in extras:
                kp = path + (k,)
                drops.add(kp)
                hint = checks.did_you_mean(k, known)
                listing = "" if hint else f"; allowed keys: {checks.allowed(sorted(known))}"
                self.error(doc.where(kp, key=True), f"unknown key '{k}' in {title}{hint}{listing}")
            return
        if v == "required":
            missing = [k for k in err.validator_value if isinstance(inst, dict) and k not in inst]
            title = sch.get("title") or label
            if title not in ("shot", "scene", "film", "spec", "included file"):
                masks.add(path)
            for k in missing:
                extra = " (add `wanflow: 1` at the top)" if k == "wanflow" and not path else ""
                self.error(where, f"{title} is missing required key '{k}'{extra}")
            return
        if v in ("minItems", "maxItems", "uniqueItems"):
            if len(path) > 1:
                masks.add(path)  # e.g. `references: []`: don't also report "needs references"
            if v == "minItems":
                n = err.validator_value
                self.error(where, f"{label} needs at least {n} item{'s' if n != 1 else ''}")
            elif v == "maxItems":
                self.error(where, f"{label} takes at most {err.validator_value} items")
            else:
                self.error(where, f"{label} lists the same item twice")
            return
        masks.add(path)
        if custom:
            self.error(where, f"{custom} (got {_show(inst)})")
        elif v == "type":
            expected = err.validator_value
            expected = [expected] if isinstance(expected, str) else expected
            words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
            self.error(where, f"{label}: expected {words}, got {_type_word(inst)}"
                       + (f" {_show(inst)}" if not isinstance(inst, (dict, list)) and inst is not None else ""))
        elif v == "enum":
            values = err.validator_value
            self.error(where, f"{label} {_show(inst)} is not valid{checks.suggest(inst, values)}")
        elif v == "const":
            self.error(where, f"{label} must be {_show(err.validator_value)}, got {_show(inst)}")
        elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            lo = sch.get("minimum")
            hi = sch.get("maximum")
            xlo = sch.get("exclusiveMinimum")
            rng = []
            if lo is not None:
                rng.append(f"≥ {_num(lo)}")
            if xlo is not None:
                rng.append(f"> {_num(xlo)}")
            if hi is not None:
                rng.append(f"≤ {_num(hi)}")
            if lo is not None and hi is not None:
                text = f"{_num(lo)}–{_num(hi)}"
            else:
                text = " and ".join(rng)
            self.error(where, f"{label} {_show(inst)} is out of range; allowed: {text}")
        elif v == "pattern":
            hint = sch.get("patternErrorMessage")
            self.error(where, f"{label} {_show(inst)} is not valid" + (f": {hint}" if hint else
                                                                         f" (must match {err.validator_value})"))
        elif v == "minLength":
            self.error(where, f"{label} must not be empty")
        else:
            self.error(where, f"{label}: {err.message}")

    # ----------------------------------------------------------------- building
    def _build(self):
        top = self.top
        ctx = checks.Context(spec=None, base_dir=top.dir, file=top.file)  # type: ignore[arg-type]
        W = ctx.where
        W[("spec",)] = top.where(())

        # assets -------------------------------------------------------------
        assets: dict[str, Asset] = {}
        decls = []
        for doc in self.docs:
            section = doc.data.get("assets")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                where = doc.where(("assets", name))
                decls.append((name, doc.where(("assets", name), key=True)))
                if name in assets or name in ctx.bad_assets:
                    continue
                asset = self._asset(doc, name, value, where)
                W[("asset", name)] = where
                if asset is None:
                    ctx.bad_assets.add(name)
                else:
                    assets[name] = asset
        self.diags += checks.unique("asset", decls)

        # templates ----------------------------------------------------------
        templates: dict[str, tuple] = {}
        bad_templates: set[str] = set()
        decls = []
        for doc in self.docs:
            section = doc.data.get("templates")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                decls.append((name, doc.where(("templates", name), key=True)))
                if name in templates or name in bad_templates:
                    continue
                if not isinstance(value, dict):
                    bad_templates.add(name)
                    continue
                templates[name] = (doc, ("templates", name), value)
        self.diags += checks.unique("template", decls)

        # defaults -------------------------------------------------------------
        defaults: dict[str, tuple] = {}
        for doc in self.docs:
            section = doc.data.get("defaults")
            if isinstance(section, dict):
                for key, value in section.items():
                    if value is not BAD:
                        defaults[key] = (value, doc, ("defaults", key), "defaults")

        # scenes ----------------------------------------------------------------
        scenes = []
        data = top.data
        raw_scenes = data.get("scenes") if isinstance(data.get("scenes"), list) else []
        for si, raw in enumerate(raw_scenes):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            sid = raw["id"]
            spath = ("scenes", si)
            swhere = top.where(spath)
            W[("scene", sid)] = swhere
            shots = []
            raw_shots = raw.get("shots") if isinstance(raw.get("shots"), list) else []
            for hi, rshot in enumerate(raw_shots):
                if not isinstance(rshot, dict) or not isinstance(rshot.get("id"), str):
                    continue
                shot = self._shot(ctx, top, spath + ("shots", hi), sid, rshot, templates,
                                  bad_templates, defaults, assets)
                shots.append(shot)
            for key in ("audio", "path", "transition"):
                if key in raw:
                    W[("scene", sid, key)] = top.where(spath + (key,))
            scenes.append(Scene(id=sid, where=swhere, shots=tuple(shots),
                                transition=_transition(raw.get("transition")),
                                audio=_bed(raw.get("audio")),
                                path=raw.get("path") if isinstance(raw.get("path"), str) else None))

        # films ------------------------------------------------------------------
        films = []
        raw_films = data.get("films") if isinstance(data.get("films"), list) else []
        for fi, raw in enumerate(raw_films):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            fid = raw["id"]
            fpath = ("films", fi)
            W[("film", fid)] = top.where(fpath)
            for key in ("audio", "path", "transition", "scenes"):
                if key in raw:
                    W[("film", fid, key)] = top.where(fpath + (key,))
            ids = []
            for j, sid in enumerate(raw.get("scenes") if isinstance(raw.get("scenes"), list) else []):
                if isinstance(sid, str):
                    W[("film", fid, "scenes", len(ids))] = top.where(fpath + ("scenes", j))
                    ids.append(sid)
            films.append(Film(id=fid, path=_opt_str(raw.get("path")) or "", where=top.where(fpath), scenes=tuple(ids),
                              transition=_transition(raw.get("transition")),
                              audio=_bed(raw.get("audio")),
                              resolution=_opt_str(raw.get("resolution")),
                              ratio=_opt_str(raw.get("ratio"))))

        files = tuple([top.abspath] + [d.abspath for d in self.docs if d is not top])
        spec = Spec(file=top.abspath, root=self.root,
                    name=data.get("name") if isinstance(data.get("name"), str) else "",
                    version=1, assets=assets, scenes=tuple(scenes), films=tuple(films),
                    settings=_settings(data.get("settings")), files=files)
        ctx.spec = spec
        return spec, ctx

    def _asset(self, doc: Doc, name: str, value, where: Where) -> Asset | None:
        if value is BAD or value is None:
            return None
        path = url = None
        if isinstance(value, str):
            if _URL.match(value):
                if not value.lower().startswith("https://"):
                    self.error(where, f"asset '{name}': only https URLs are allowed, got "
                               f"{_show(value)}")
                    return None
                url = value
            else:
                path = value
        elif isinstance(value, dict):
            path, url = value.get("path"), value.get("url")
            if path is BAD or url is BAD:
                return None
            if path is not None:
                where = doc.where(("assets", name, "path"))
            else:
                where = doc.where(("assets", name, "url"))
        else:
            return None
        if url is not None:
            if not _HTTPS.match(url):
                self.error(where, f"asset '{name}': {_show(url)} is not a valid https URL")
                return None
            return Asset(name=name, where=where, url=url)
        if not isinstance(path, str):
            return None
        problem = checks.path_problem(path, doc.dir, self.root, f"asset '{name}': path")
        if problem:
            self.error(where, problem)
            return None
        full = os.path.normpath(os.path.join(doc.dir, path))
        if not os.path.exists(full):
            self.error(where, f"asset '{name}': file not found: {path} (looked for {full})")
            return None
        if os.path.isdir(full):
            self.error(where, f"asset '{name}': {path} is a directory, not a file")
            return None
        return Asset(name=name, where=where, path=path, file=full)

    def _shot(self, ctx, doc: Doc, path: tuple, sid: str, raw: dict, templates: dict,
              bad_templates: set, defaults: dict, assets: dict) -> Shot:
        W = ctx.where
        hid = raw["id"]
        qid = f"{sid}.{hid}"
        swhere = doc.where(path)
        W[("shot", qid)] = swhere
        layers: list[dict] = [defaults]
        use = raw.get("use")
        template_name = None
        if use is not None:
            if use is BAD or use in bad_templates:
                ctx.skip_model.add(qid)
            elif use not in templates:
                self.diags.append(checks.unknown_name(use, templates, doc.where(path + ("use",)),
                                                      "template"))
                ctx.skip_model.add(qid)
            else:
                template_name = use
                layers.append(self._expand(ctx, doc, path, use, templates[use], raw.get("with")))
        elif "with" in raw:
            self.error(doc.where(path + ("with",), key=True),
                       "`with` gives template parameters, but the shot has no `use: TEMPLATE`")
        own = {}
        for key in SHOT_FIELDS:
            if key in raw:
                own[key] = (raw[key], doc, path + (key,), None)
        layers.append(own)

        eff: dict[str, tuple] = {}
        for layer in layers:
            keys = set(layer)
            if "size" in keys and keys & {"resolution", "ratio"}:
                _v, sdoc, spath_, src = layer["size"]
                self.error(sdoc.where(spath_), "give either `size` or `resolution` + `ratio`, not "
                           f"both{f' (in {src})' if src else ''}")
            if "size" in keys:
                eff.pop("resolution", None)
                eff.pop("ratio", None)
            if keys & {"resolution", "ratio"}:
                eff.pop("size", None)
            eff.update(layer)
        values = {}
        for key, (value, vdoc, vpath, origin) in eff.items():
            W[("shot", qid, key)] = vdoc.where(vpath)
            if origin:
                ctx.origin[(qid, key)] = origin
            if value is BAD:
                if key == "model":
                    ctx.skip_model.add(qid)
                ctx.bad_fields.setdefault(qid, set()).add(key)
                continue
            values[key] = value

        model = values.get("model")
        if model is None and qid not in ctx.skip_model:
            self.error(swhere, f"shot '{qid}' has no model: set `model` on the shot, in its "
                       "template or under `defaults`")
            ctx.skip_model.add(qid)

        inputs: list[Input] = []

        def add_input(item: Input, where: Where) -> None:
            W[("shot", qid, "input", len(inputs))] = where
            inputs.append(item)

        def qualify(ref: str) -> str:
            return ref if "." in ref else f"{sid}.{ref}"

        for role, default_frame in (("first_frame", "last"), ("first_clip", None),
                                    ("last_frame", "first")):
            value = values.get(role)
            where = eff[role][1].where(eff[role][2]) if role in eff else swhere
            if isinstance(value, str):
                add_input(Input(role, asset=value), where)
            elif isinstance(value, dict) and isinstance(value.get("shot"), str):
                frame = value.get("frame") if role != "first_clip" else None
                frame = frame if frame in ("first", "last") else default_frame
                add_input(Input(role, ref=ShotRef(qualify(value["shot"]), frame)), where)
        refs = values.get("references")
        if isinstance(refs, list):
            _v, rdoc, rpath, _o = eff["references"]
            for i, item in enumerate(refs):
                where = rdoc.where(rpath + (i,))
                if isinstance(item, str):
                    add_input(Input(_ref_role(item, assets), asset=item), where)
                elif isinstance(item, dict) and isinstance(item.get("asset"), str):
                    voice = item.get("voice") if isinstance(item.get("voice"), str) else None
                    desc = item.get("description") if isinstance(item.get("description"), str) else None
                    if voice is not None:
                        W[("shot", qid, "voice", len(inputs))] = rdoc.where(rpath + (i, "voice"))
                    add_input(Input(_ref_role(item["asset"], assets), asset=item["asset"],
                                    voice=voice, description=desc), where)
                elif isinstance(item, dict) and isinstance(item.get("shot"), str):
                    add_input(Input("reference_video", ref=ShotRef(qualify(item["shot"]))), where)
        needs = []
        raw_needs = raw.get("needs")
        if isinstance(raw_needs, list):
            for j, ref in enumerate(raw_needs):
                if isinstance(ref, str):
                    W[("shot", qid, "needs", len(needs))] = doc.where(path + ("needs", j))
                    needs.append(qualify(ref))
        if "path" in raw:
            W[("shot", qid, "path")] = doc.where(path + ("path",))

        def opt(key, kind):
            value = values.get(key)
            return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None

        return Shot(scene=sid, id=hid, model=model if isinstance(model, str) else "", where=swhere,
                    prompt=opt("prompt", str) or "",
                    negative_prompt=opt("negative_prompt", str),
                    duration=opt("duration", int), resolution=opt("resolution", str),
                    ratio=opt("ratio", str), size=opt("size", str), seed=opt("seed", int),
                    prompt_extend=opt("prompt_extend", bool), watermark=opt("watermark", bool),
                    shot_type=opt("shot_type", str), audio=opt("audio", str),
                    generate_audio=opt("generate_audio", bool), effect=opt("effect", str),
                    enable_thinking=opt("enable_thinking", bool), inputs=tuple(inputs),
                    takes=opt("takes", int) or 1, pick=opt("pick", int) or 1, needs=tuple(needs),
                    path=raw.get("path") if isinstance(raw.get("path"), str) else None,
                    template=template_name)

    def _expand(self, ctx, doc: Doc, path: tuple, name: str, template: tuple, given) -> dict:
        """The fields a template gives a shot, with `${param}` filled from `with`."""
        tdoc, tpath, tdata = template
        declared = _param_decl(tdata.get("params"))
        given = given if isinstance(given, dict) else {}
        usable = {k: v for k, v in given.items() if v is not BAD}
        self.diags += checks.template_args(
            name, declared, given, doc.where(path + ("with",)), doc.where(path + ("use",)),
            lambda k: doc.where(path + ("with", k), key=True))
        scope = {k: v for k, v in declared.items() if v is not None}
        scope.update({k: v for k, v in usable.items() if k in declared})
        for k in declared:
            scope.setdefault(k, "")
        origin = f"template '{name}'"
        layer = {}
        for key in SHOT_FIELDS:
            if key not in tdata:
                continue
            value = tdata[key]
            fpath = tpath + (key,)
            if value is not BAD:
                value = self._fill(tdoc, fpath, value, scope)
            layer[key] = (value, tdoc, fpath, origin)
        return layer

    def _fill(self, doc: Doc, path: tuple, value, scope: dict):
        if isinstance(value, str):
            return self._subst(value, scope, (), True, doc.where(path), report=False)
        if isinstance(value, dict):
            return {k: self._fill(doc, path + (k,), v, scope) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(doc, path + (i,), v, scope) for i, v in enumerate(value)]
        return value

    # ----------------------------------------------------------------- media
    def _media_checks(self, spec: Spec, ctx) -> None:
        """Decode local assets the shots use and check them against the API's limits."""
        uses: dict[str, dict] = {}

        def use(name: str) -> dict:
            return uses.setdefault(name, {"images": set(), "api_audio": False, "clip": False,
                                          "voice": False})

        for shot in spec.shots():
            info = models.lookup(shot.model)
            for item in shot.inputs:
                if item.asset:
                    if info is not None:
                        use(item.asset)["images"].add(info.images)
                    else:
                        use(item.asset)
                    if item.role == "first_clip":
                        use(item.asset)["clip"] = True
                if item.voice:
                    use(item.voice)["voice"] = True
            if shot.audio:
                use(shot.audio)["api_audio"] = True
        for bed in [s.audio for s in spec.scenes] + [f.audio for f in spec.films]:
            if bed is not None:
                use(bed.asset)
        if not uses:
            return
        try:
            from .. import media
        except Exception:  # media support not installed or not importable: skip, don't fail
            return
        for name in sorted(uses):
            asset = spec.assets.get(name)
            if asset is None or not asset.file:
                continue
            kind = checks.media_kind(asset.path)
            problems: list[str] = []
            try:
                if kind == "image":
                    limits = uses[name]["images"] or {models.LEGACY_IMAGES}
                    for lim in sorted(limits, key=lambda x: (x.min_side, x.max_side)):
                        for p in media.check_image(asset.file, min_side=lim.min_side,
                                                   max_side=lim.max_side, max_bytes=lim.max_bytes):
                            if p not in problems:
                                problems.append(p)
                elif kind == "audio":
                    if uses[name]["voice"]:
                        problems += list(media.check_audio(
                            asset.file, min_seconds=VOICE_SECONDS[0], max_seconds=VOICE_SECONDS[1],
                            max_bytes=models.AUDIO_LIMITS.max_bytes))
                    if uses[name]["api_audio"]:
                        lim = models.AUDIO_LIMITS
                        problems += list(media.check_audio(
                            asset.file, min_seconds=lim.min_seconds, max_seconds=lim.max_seconds,
                            max_bytes=lim.max_bytes))
                    else:
                        problems += _check_audio_bed(media, asset.file)
                elif kind == "video":
                    if uses[name]["clip"]:
                        problems += list(media.check_video(
                            asset.file, min_seconds=FIRST_CLIP_SECONDS[0],
                            max_seconds=FIRST_CLIP_SECONDS[1]))
                    else:
                        problems += list(media.check_video(asset.file))
            except Exception as err:  # a broken file must not produce a traceback
                problems.append(f"cannot read the file: {err}")
            for p in problems:
                p = str(p)
                if p.startswith(asset.file + ": "):
                    p = p[len(asset.file) + 2:]
                self.error(ctx.at("asset", name), f"asset '{name}' ({asset.path}): {p}")


def _check_audio_bed(media, path: str) -> list[str]:
    """A bed is mixed locally, not sent to the API: only require that it decodes."""
    try:
        seconds = media.media_duration(path)
    except Exception as err:
        return [f"cannot decode the audio: {err}"]
    return [] if seconds > 0 else ["the audio is empty"]


# =============================================================================== helpers

@lru_cache(maxsize=2)
def _validator(library: bool):
    root = schema()
    if library:
        wrapper = {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": "#/$defs/library"}
        return jsonschema.Draft202012Validator(wrapper)
    return jsonschema.Draft202012Validator(root)


def _deref(node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 10:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            break
        target = schema()["$defs"].get(ref[len("#/$defs/"):], {})
        node = {**target, **{k: v for k, v in node.items() if k not in ("$ref", "description")}}
        seen += 1
    return node if isinstance(node, dict) else {}


def _known_keys(sch: dict) -> list[str]:
    return list((_deref(sch).get("properties") or {}).keys())


def _sanitize(value, path: tuple, masks: set, drops: set):
    if path in masks:
        return BAD
    if isinstance(value, dict):
        return {k: _sanitize(v, path + (k,), masks, drops) for k, v in value.items()
                if path + (k,) not in drops}
    if isinstance(value, list):
        return [_sanitize(v, path + (i,), masks, drops) for i, v in enumerate(value)]
    return value


def _param_names(params) -> tuple:
    if isinstance(params, list):
        return tuple(p for p in params if isinstance(p, str))
    if isinstance(params, dict):
        return tuple(k for k in params if isinstance(k, str))
    return ()


def _param_decl(params) -> dict:
    """name -> default (None = required)."""
    if isinstance(params, list):
        return {p: None for p in params if isinstance(p, str)}
    if isinstance(params, dict):
        return {k: (None if v is BAD else v) for k, v in params.items()}
    return {}


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _opt_str(value):
    return value if isinstance(value, str) else None


def _transition(value) -> Transition:
    if value == "crossfade":
        return Transition("crossfade", 0.5)
    if isinstance(value, dict) and value.get("type") in ("cut", "crossfade"):
        if value["type"] == "cut":
            return Transition()
        seconds = value.get("seconds", 0.5)
        return Transition("crossfade", float(seconds) if isinstance(seconds, (int, float)) else 0.5)
    return Transition()


def _bed(value) -> AudioBed | None:
    if isinstance(value, str):
        return AudioBed(value)
    if isinstance(value, dict) and isinstance(value.get("asset"), str):
        vol = value.get("volume", 1.0)
        duck = value.get("duck")
        return AudioBed(value["asset"],
                        volume=float(vol) if isinstance(vol, (int, float)) and not isinstance(vol, bool) else 1.0,
                        duck=float(duck) if isinstance(duck, (int, float)) and not isinstance(duck, bool) else None)
    return None


def _settings(value) -> SpecSettings:
    if not isinstance(value, dict):
        return SpecSettings()
    limits = []
    raw_limits = value.get("limits")
    if isinstance(raw_limits, dict):
        for model, lim in sorted(raw_limits.items()):
            if isinstance(lim, dict):
                c = lim.get("concurrency")
                r = lim.get("submit_rps")
                limits.append(ModelLimit(model, c if isinstance(c, int) else None,
                                         float(r) if isinstance(r, (int, float)) else None))
    region = value.get("region")
    if isinstance(region, str):
        region = models.REGION_ALIASES.get(region, region)
    cost = value.get("max_cost")
    return SpecSettings(backend=value.get("backend") if isinstance(value.get("backend"), str) else "auto",
                    region=region if isinstance(region, str) else None,
                    base_url=_opt_str(value.get("base_url")), cache=_opt_str(value.get("cache")),
                    max_cost=float(cost) if isinstance(cost, (int, float)) and cost is not BAD else None,
                    limits=tuple(limits))


def _ref_role(asset: str, assets: dict) -> str:
    a = assets.get(asset)
    kind = checks.media_kind(a.path or a.url) if a is not None else None
    return "reference_video" if kind == "video" else "reference_image"


ROOT_MARKERS = (".git", ".wanflow-root")


def _project_root(start: str) -> str:
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
