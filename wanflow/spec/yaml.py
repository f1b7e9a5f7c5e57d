"""Reading one spec file: bytes → text → plain YAML values, with the position of each.

The only module that imports `yaml`, and it uses it as a parser only: values are built here
from the parser's events, so nothing is ever constructed from a tag and hostile YAML cannot
run code. The input is bounded before it is trusted: a size limit before reading, UTF-8 only,
a node count that includes every alias expansion (billion laughs), a nesting depth. Plain
scalars follow the YAML 1.2 core schema, as editors do: `ratio: 16:9` is the string "16:9"
and `yes` is a string, not a boolean. Duplicate keys are reported, not silently dropped.
"""
from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from .messages import show, type_word
from .nodes import Diagnostic, Where
from .positions import KeyPath, Positions, json_path

MAX_BYTES = 2 * 1024 * 1024     # a spec file larger than this is refused unread
MAX_NODES = 100_000             # YAML nodes per file, counting every alias expansion
MAX_DEPTH = 100                 # nesting of mappings and lists

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # used for its events only
_YAML_TAG = "tag:yaml.org,2002:"
_EXPLICIT_TAGS = {"str", "int", "float", "bool", "null"}   # `!!int "42"` and the like


@dataclass
class Document:
    """One file of a spec: its plain data and where each value was written."""

    file: str          # as shown in diagnostics: as given, or relative to it for includes
    abspath: str
    data: dict[str, Any]
    pos: Positions
    library: bool = False   # an included file
    errors: list[Diagnostic] = field(default_factory=list)  # duplicate keys: reported, not fatal

    @property
    def dir(self) -> str:
        return os.path.dirname(self.abspath)


class Unreadable(Exception):
    """The file cannot be read as a spec at all; `diagnostic` says why and where.

    `plain`: the message quotes nothing from the file (so it may be shown for any file)."""

    def __init__(self, diagnostic: Diagnostic, plain: bool = False) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.plain = plain


def _unreadable(file: str, line: int, col: int, message: str, path: KeyPath = (),
                plain: bool = False) -> Unreadable:
    return Unreadable(Diagnostic(Where(file, line, col, json_path(path)), message), plain)


# A spec declares itself with a top-level `wanflow:` key. A file that does not (a `.env`, a
# key file, /etc/passwd behind a symlink) may hold secrets, so nothing from it is quoted:
# not its values, keys, tags or anchors, not even the YAML parser's view of a broken line.
_DECLARES_SPEC = re.compile(r"^[\"']?wanflow[\"']?[ \t]*:", re.MULTILINE)


# --------------------------------------------------------------------------- bytes → text

def read(abspath: str, display: str, library: bool = False) -> Document:
    """Read and compose one YAML file. Raises Unreadable with a single clear diagnostic."""
    try:
        st = os.stat(abspath)
    except FileNotFoundError:
        raise _unreadable(display, 0, 0, f"no such file: {display}") from None
    except NotADirectoryError:
        raise _unreadable(display, 0, 0,
                          f"no such file: {display} (a parent is not a directory)") from None
    except PermissionError:
        raise _unreadable(display, 0, 0, f"cannot read {display}: permission denied") from None
    except OSError as err:
        raise _unreadable(display, 0, 0, f"cannot read {display}: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _unreadable(display, 0, 0, f"{display} is a directory, not a spec file")
    if not stat.S_ISREG(st.st_mode):
        raise _unreadable(display, 0, 0, f"{display} is not a regular file")
    limit = f"{MAX_BYTES // (1024 * 1024)} MiB"
    if st.st_size > MAX_BYTES:
        raise _unreadable(display, 1, 1, f"spec file is too large: {st.st_size} bytes "
                          f"(the limit is {limit})")
    try:
        with open(abspath, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise _unreadable(display, 0, 0, f"cannot read {display}: {err.strerror or err}") from None
    if len(raw) > MAX_BYTES:  # it grew between the stat and the read
        raise _unreadable(display, 1, 1, f"spec file is too large (the limit is {limit})")
    text = _decode(raw, display)
    return _Composer(text, display, abspath, library).compose()


def _line_col_of_byte(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    start = raw.rfind(b"\n", 0, offset) + 1
    return line, offset - start + 1


def _line_col_of_char(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    start = text.rfind("\n", 0, index) + 1
    return line, index - start + 1


def _decode(raw: bytes, display: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _unreadable(display, 1, 1, "spec is UTF-16 encoded; save it as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _line_col_of_byte(raw, nul)
        raise _unreadable(display, line, col, f"binary data, not a YAML spec "
                          f"(NUL byte at byte offset {nul})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col_of_byte(raw, err.start)
        raise _unreadable(display, line, col, f"not UTF-8 text: invalid byte "
                          f"0x{raw[err.start]:02x} at byte offset {err.start}") from None
    return text.removeprefix("\ufeff")


# --------------------------------------------------------------------------- scalars

_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
_LONGEST_NUMBER = 40  # longer plain scalars stay strings (no 5,000-digit integers)


def core_scalar(value: str) -> str | int | float | bool | None:
    """A plain scalar under the YAML 1.2 core schema."""
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if len(value) > _LONGEST_NUMBER:
        return value
    if _INT10.match(value):
        return int(value)
    if _INT8.match(value):
        return int(value, 0)
    if _INT16.match(value):
        return int(value, 0)
    if _FLOAT.match(value):
        return float(value)
    if _INF.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN.match(value):
        return math.nan
    return value


def _tag_text(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _tag_refused(file: str, line: int, col: int, tag: str, path: KeyPath) -> Unreadable:
    return _unreadable(file, line, col, f"unsupported YAML tag {_tag_text(tag)} "
                       "(wanflow reads plain YAML only; nothing is constructed from tags)", path)


def _scalar(event: yaml.ScalarEvent, file: str, line: int, col: int, path: KeyPath) -> Any:
    tag = event.tag
    value = event.value
    if tag is None:
        return core_scalar(value) if event.implicit[0] else value  # plain, else quoted/block
    if tag == "!":
        return value
    short = tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else None
    if short not in _EXPLICIT_TAGS:
        raise _tag_refused(file, line, col, tag, path)
    if short == "str":
        return value
    resolved = core_scalar(value)
    fits = {"int": isinstance(resolved, int) and not isinstance(resolved, bool),
            "float": isinstance(resolved, (int, float)) and not isinstance(resolved, bool),
            "bool": isinstance(resolved, bool),
            "null": resolved is None}[short]
    if not fits:
        raise _unreadable(file, line, col, f"{show(value)} is not a valid !!{short}", path)
    if short == "float" and isinstance(resolved, int):
        return float(resolved)
    return resolved


# --------------------------------------------------------------------------- events → values

class _MergeKey:
    """Stands for a pending `<<` key: its value is merged, not stored."""


_MERGE = _MergeKey()


@dataclass(eq=False)
class _Open:
    """A mapping or list whose end event has not come yet."""

    value: dict[str, Any] | list[Any]
    path: KeyPath
    anchor: str | None
    nodes_before: int        # the node count before this one (for its anchor's size)
    first_record: int        # index of its own position record
    line: int
    col: int
    key: str | _MergeKey | None = None        # the mapping key awaiting its value
    merges: list[tuple[Any, KeyPath]] = field(default_factory=list)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> where first seen


@dataclass(frozen=True)
class _Anchor:
    value: Any
    nodes: int        # nodes in the anchored subtree: what each alias of it costs
    records: range    # its position records, replayed under every alias path
    path: KeyPath


class _Composer:
    """Builds plain values from parser events, recording each value's (and key's) position.

    Aliases are counted, not re-walked: an alias adds its anchor's node count and replays
    its positions under the alias path.
    """

    def __init__(self, text: str, file: str, abspath: str, library: bool) -> None:
        self.text, self.file, self.abspath, self.library = text, file, abspath, library
        self.pos = Positions(file)
        self.records: list[tuple[KeyPath, int, int, bool]] = []
        self.anchors: dict[str, _Anchor] = {}
        self.errors: list[Diagnostic] = []
        self.stack: list[_Open] = []
        self.nodes = 0
        self.root: Any = None

    def compose(self) -> Document:
        """The document, or Unreadable; for a file that does not declare itself a spec, a
        message that quotes none of it."""
        try:
            root = self._compose()
        except Unreadable as err:
            if err.plain or _DECLARES_SPEC.search(self.text):
                raise
            w = err.diagnostic.where
            raise _unreadable(self.file, w.line, w.col, "cannot read this file as a spec, and "
                              "it does not declare `wanflow: 1`; nothing from a file that is "
                              "not a spec is quoted") from None
        if "wanflow" not in root:
            line, col = self.pos.line_col(()) or (1, 1)
            what = "included file" if self.library else "spec"
            raise _unreadable(self.file, line, col, f"{what} is missing required key 'wanflow' "
                              "(add `wanflow: 1` at the top); nothing else in a file that does "
                              "not declare itself a spec is read or quoted", plain=True)
        return Document(self.file, self.abspath, root, self.pos, self.library, self.errors)

    def _compose(self) -> dict[str, Any]:
        parser = _Parser(self.text)
        try:
            self._walk(parser)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            msg = " ".join(x for x in (err.context, err.problem) if x) or "invalid YAML"
            line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            raise _unreadable(self.file, line, col, f"invalid YAML: {msg}") from None
        except yaml.reader.ReaderError as err:
            line, col = (_line_col_of_char(self.text, err.position)
                         if isinstance(err.position, int) else (0, 0))
            ch = (err.character if isinstance(err.character, int)
                  else ord(str(err.character)[:1] or "?"))
            raise _unreadable(self.file, line, col,
                              f"invalid YAML: {err.reason} (U+{ch:04X})") from None
        except yaml.YAMLError as err:
            raise _unreadable(self.file, 0, 0, f"invalid YAML: {err}") from None
        except RecursionError:
            raise _unreadable(self.file, 0, 0, "spec is nested too deeply") from None
        finally:
            dispose = getattr(parser, "dispose", None)
            if dispose:
                dispose()
        root = self.root
        if root is None:
            raise _unreadable(self.file, 1, 1, "empty spec: the file has no YAML content",
                              plain=True)
        if not isinstance(root, dict):
            kind = "a list" if isinstance(root, list) else f"a single value ({type_word(root)})"
            line, col = self.pos.line_col(()) or (1, 1)
            raise _unreadable(self.file, line, col, "the top level of a spec must be a mapping "
                              f"(wanflow: 1, name: …, scenes: …), not {kind}", plain=True)
        return root

    def _walk(self, parser: Any) -> None:
        parser.get_event()  # StreamStart
        if parser.check_event(yaml.StreamEndEvent):
            raise _unreadable(self.file, 1, 1, "empty spec: the file has no YAML content",
                              plain=True)
        parser.get_event()  # DocumentStart
        while True:
            event = parser.get_event()
            if isinstance(event, yaml.DocumentEndEvent):
                break
            line, col = event.start_mark.line + 1, event.start_mark.column + 1
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                self._close()
                continue
            parent = self.stack[-1] if self.stack else None
            if parent is not None and isinstance(parent.value, dict) and parent.key is None:
                self._key(event, parent, line, col)
                continue
            path = self._path_of_next(parent)
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _unreadable(self.file, line, col,
                                  f"spec is too big: more than {MAX_NODES} YAML nodes", path)
            if isinstance(event, yaml.AliasEvent):
                self._alias(event, path, line, col)
            elif isinstance(event, yaml.ScalarEvent):
                value = _scalar(event, self.file, line, col, path)
                self._record(path, line, col, False)
                if event.anchor:
                    n = len(self.records)
                    self.anchors[event.anchor] = _Anchor(value, 1, range(n - 1, n), path)
                self._attach(value, path)
            else:
                self._open(event, path, line, col)
        event = parser.get_event()
        if not isinstance(event, yaml.StreamEndEvent):
            mark = event.start_mark
            raise _unreadable(self.file, mark.line + 1, mark.column + 1, "a spec file holds a "
                              "single YAML document; found a second one (a `---` line?)")

    def _record(self, path: KeyPath, line: int, col: int, key: bool) -> None:
        self.pos.add(path, line, col, key=key)
        self.records.append((path, line, col, key))

    def _path_of_next(self, parent: _Open | None) -> KeyPath:
        if parent is None:
            return ()
        if isinstance(parent.value, list):
            return parent.path + (len(parent.value),)
        if isinstance(parent.key, _MergeKey):
            return parent.path + ("<<",)
        assert parent.key is not None
        return parent.path + (parent.key,)

    def _attach(self, value: Any, path: KeyPath) -> None:
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
        elif isinstance(parent.key, _MergeKey):
            parent.merges.append((value, path))
            parent.key = None
        else:
            assert parent.key is not None
            parent.value[parent.key] = value
            parent.key = None

    def _key(self, event: Any, parent: _Open, line: int, col: int) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            raise _unreadable(self.file, line, col, "mapping keys must be plain strings (complex "
                              "keys, lists and aliases as keys are not supported)", parent.path)
        if event.tag is not None and event.tag not in ("!", _YAML_TAG + "str"):
            raise _unreadable(self.file, line, col, f"unsupported YAML tag {_tag_text(event.tag)} "
                              "on a key (wanflow reads plain YAML only)", parent.path)
        key = event.value
        if key == "<<" and event.implicit[0]:
            parent.key = _MERGE
            return
        path = parent.path + (key,)
        if key in parent.seen:
            first_line = parent.seen[key][0]
            self.errors.append(Diagnostic(Where(self.file, line, col, json_path(path)), (
                f"duplicate key '{key}' (first at line {first_line}); YAML would silently keep "
                "only the last one")))
        else:
            parent.seen[key] = (line, col)
        parent.key = key
        self._record(path, line, col, True)

    def _alias(self, event: yaml.AliasEvent, path: KeyPath, line: int, col: int) -> None:
        anchor = self.anchors.get(event.anchor or "")
        if anchor is None:
            raise _unreadable(self.file, line, col, f"alias *{event.anchor} refers to no anchor "
                              "defined before it", path)
        self.nodes += anchor.nodes - 1
        if self.nodes > MAX_NODES:
            raise _unreadable(self.file, line, col, f"spec is too big: aliases expand to more "
                              f"than {MAX_NODES} YAML nodes (an alias bomb?)", path)
        depth = len(anchor.path)
        for sub, sub_line, sub_col, key in self.records[anchor.records.start:anchor.records.stop]:
            self._record(path + sub[depth:], sub_line, sub_col, key)
        self._record(path, line, col, False)
        self._attach(anchor.value, path)

    def _open(self, event: Any, path: KeyPath, line: int, col: int) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (None, "!", _YAML_TAG + ("map" if is_map else "seq")):
            raise _tag_refused(self.file, line, col, event.tag, path)
        if len(self.stack) >= MAX_DEPTH:
            raise _unreadable(self.file, line, col,
                              f"spec is nested too deeply (more than {MAX_DEPTH} levels)", path)
        self._record(path, line, col, False)
        value: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Open(value, path, event.anchor, self.nodes - 1,
                                len(self.records) - 1, line, col))

    def _close(self) -> None:
        done = self.stack.pop()
        if isinstance(done.value, dict) and done.merges:
            self._merge(done)
        if done.anchor:
            self.anchors[done.anchor] = _Anchor(
                done.value, self.nodes - done.nodes_before,
                range(done.first_record, len(self.records)), done.path)
        self._attach(done.value, done.path)

    def _merge(self, mapping: _Open) -> None:
        """YAML merge keys (`<<: *base`): the merged mappings' keys that the mapping lacks."""
        assert isinstance(mapping.value, dict)
        for value, merge_path in mapping.merges:
            at = self.pos.line_col(merge_path) or (mapping.line, mapping.col)
            for source in value if isinstance(value, list) else [value]:
                if not isinstance(source, dict):
                    raise _unreadable(self.file, at[0], at[1],
                                      "`<<` merges a mapping or a list of mappings", merge_path)
                for key, item in source.items():
                    if key not in mapping.value:
                        mapping.value[key] = item
                        self.pos.add_missing(mapping.path + (key,), *at)
