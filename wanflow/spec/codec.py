"""The frozen spec values as JSON and back, for the parsed-spec cache.

A cache directory may be restored from a shared CI cache, so what is read back is input like
any other: plain JSON (nothing in it can run), and every value is checked against the type
its field declares in `nodes.py` — strings, integers (never booleans), finite floats,
tuples, mappings and nested nodes, with no unknown or missing fields. Any mismatch raises
`CodecError`, which the cache treats as a miss: the spec is then loaded for real.

Fields equal to their default are left out, which keeps a 1,000-shot record small; the
decoders are built once from the dataclass fields, so reading one back costs about what
unpickling did.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from . import nodes
from .nodes import Spec, Where

FORMAT = 1   # bump when the encoding changes

Decoder = Callable[[Any], Any]


class CodecError(ValueError):
    """The text is not a spec record this version of wanflow wrote."""


def dumps(spec: Spec) -> str:
    """The JSON text of `spec` (a spec holds no NaN or infinity: the loader refuses them)."""
    return json.dumps({"format": FORMAT, "spec": _encode(spec)}, ensure_ascii=False,
                      allow_nan=False, separators=(",", ":"))


def loads(text: str | bytes) -> Spec:
    """The Spec `text` encodes; CodecError if it is anything else."""
    try:
        record = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise CodecError(f"not JSON: {err}") from None
    if type(record) is not dict or record.keys() != {"format", "spec"}:
        raise CodecError("not a spec record")
    if record["format"] != FORMAT or type(record["format"]) is not int:
        raise CodecError("a record of another format")
    try:
        spec: Spec = _DECODERS[Spec](record["spec"])
    except RecursionError:
        raise CodecError("nested too deeply") from None
    return spec


def _no_constant(name: str) -> float:
    raise CodecError(f"{name} is not a value a spec holds")


# --------------------------------------------------------------------------- encoding

def _encode(value: Any) -> Any:
    if type(value) is Where:   # the most frequent node: a list, [file, line, col, path]
        return [value.file, value.line, value.col, value.path]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in _FIELDS[type(value)]:
            item = getattr(value, f.name)
            if f.name not in _DEFAULTS[type(value)] or item != _DEFAULTS[type(value)][f.name]:
                out[f.name] = _encode(item)
        return out
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- decoding

def _fail(expected: str, value: Any) -> CodecError:
    return CodecError(f"expected {expected}, got {type(value).__name__}")


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _fail("a string", value)
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _fail("an integer", value)
    return value


def _float(value: Any) -> float:
    if type(value) is not float or not math.isfinite(value):
        raise _fail("a finite float", value)
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _fail("true or false", value)
    return value


def _optional(inner: Decoder) -> Decoder:
    return lambda value: None if value is None else inner(value)


def _optional_str(value: Any) -> str | None:
    if value is not None and type(value) is not str:
        raise _fail("a string or null", value)
    return value


def _one_of(decoders: dict[type, Decoder], nullable: bool) -> Decoder:
    """A union of plain types (`int | str | None`): the value's exact type picks the decoder."""
    def decode(value: Any) -> Any:
        if value is None and nullable:
            return None
        decoder = decoders.get(type(value))
        if decoder is None:
            raise _fail(" or ".join(t.__name__ for t in decoders), value)
        return decoder(value)
    return decode


def _tuple_of(inner: Decoder) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _fail("a list", value)
        return tuple([inner(v) for v in value])
    return decode


def _dict_of(inner: Decoder) -> Decoder:
    def decode(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise _fail("a mapping", value)
        return {_str(k): inner(v) for k, v in value.items()}
    return decode


def _node(cls: type, decoders: dict[str, Decoder]) -> Decoder:
    """A node from a mapping of its fields; omitted fields take their defaults. Built without
    running `__init__` (as unpickling does), after every field has been checked.

    `decoders` (field -> decoder) is filled once every node class has a decoder."""
    defaults = _DEFAULTS[cls]
    required = frozenset(f.name for f in _FIELDS[cls]) - frozenset(defaults)
    has_post_init = hasattr(cls, "__post_init__")

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _fail(f"a {cls.__name__} mapping", value)
        keys = value.keys()
        if not required <= keys <= decoders.keys():
            raise CodecError(f"{cls.__name__} lacks fields or has unknown ones: {sorted(keys)}")
        state = dict(defaults)
        for name, item in value.items():
            state[name] = decoders[name](item)
        if has_post_init:
            return cls(**state)
        node: Any = object.__new__(cls)
        node.__dict__.update(state)
        return node
    return decode


def _where(value: Any) -> Where:
    if type(value) is not list or len(value) != 4:
        raise _fail("a [file, line, col, path] list", value)
    file, line, col, path = value
    if not (type(file) is str and type(line) is int and type(col) is int and type(path) is str):
        raise CodecError("a position of the wrong types")
    where = object.__new__(Where)
    where.__dict__.update(file=file, line=line, col=col, path=path)
    return where


def _decoder_for(hint: Any) -> Decoder:
    simple = {str: _str, int: _int, float: _float, bool: _bool}
    if hint in simple:
        return simple[hint]
    if hint in _DECODERS:
        return _DECODERS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return _optional_str if inner is str else _optional(_decoder_for(inner))
    if origin in (typing.Union, types.UnionType) and set(args) <= set(simple) | {type(None)}:
        return _one_of({t: simple[t] for t in args if t is not type(None)}, type(None) in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(_decoder_for(args[0]))
    if origin is dict and args[0] is str:
        return _dict_of(_decoder_for(args[1]))
    raise TypeError(f"the spec codec cannot decode {hint!r}")  # a new kind of field: teach it


_NODES = [cls for cls in vars(nodes).values()
          if isinstance(cls, type) and dataclasses.is_dataclass(cls)
          and cls.__module__ == nodes.__name__]
_FIELDS = {cls: dataclasses.fields(cls) for cls in _NODES}
# Defaults by field; a default_factory (Spec.assets) is always encoded, so it has none here.
_DEFAULTS = {cls: {f.name: f.default for f in _FIELDS[cls] if f.default is not dataclasses.MISSING}
             for cls in _NODES}
_DECODERS: dict[Any, Decoder] = {}


def _build() -> None:
    fields: dict[type, dict[str, Decoder]] = {cls: {} for cls in _NODES}
    _DECODERS.update({cls: _node(cls, fields[cls]) for cls in _NODES})
    _DECODERS[Where] = _where
    for cls in _NODES:
        hints = typing.get_type_hints(cls, vars(nodes))
        fields[cls].update({f.name: _decoder_for(hints[f.name]) for f in _FIELDS[cls]})


_build()
