"""The JSON Schema of the spec language: loading it, validating with it, explaining its errors.

The only module that imports `jsonschema` (lazily: printing or regenerating the schema does
not need it). Structural rules (types, enums, ranges, required keys) come from
`schemas/wanflow.schema.json` and nowhere else; each jsonschema error is translated here into
one plain diagnostic at the offending key or value, with the allowed values. The parts of the
schema that restate the model table (model ids, tiers, ratios, sizes, durations, regions) are
generated from `models.py`:

    python -m wanflow.spec.schema --write     # rewrite the committed schema
    python -m wanflow.spec.schema --check     # exit 1 if it is out of date
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection, Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import models
from .messages import allowed, did_you_mean, number, show, suggest, type_word
from .nodes import Diagnostic, Where
from .positions import KeyPath, label

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

    from .yaml import Document

SCHEMA_RESOURCE = "schemas/wanflow.schema.json"   # inside the package: a link to the committed file
LIBRARY_ONLY = ("scenes", "films", "settings")    # keys an included file may not have
_NAMED_NODES = ("shot", "scene", "film", "spec", "included file")  # reported, never masked whole
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "true or false",
               "null": "null"}


class _Rejected:
    """Stands in for a value the schema rejected: later stages treat it as absent and do not
    report it again."""

    def __repr__(self) -> str:
        return "<invalid>"


REJECTED = _Rejected()


# --------------------------------------------------------------------------- the schema

def schema_text() -> str:
    """The packaged JSON Schema of the spec language."""
    return resources.files("wanflow").joinpath(SCHEMA_RESOURCE).read_text("utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


def generate() -> dict[str, Any]:
    """The committed schema with every list that restates `models.py` taken from it."""
    out: dict[str, Any] = json.loads(schema_text())
    defs = out["$defs"]
    names = sorted(models.model_names())
    model_id, snapshot = defs["model"]["anyOf"]
    model_id["enum"] = names
    snapshot["pattern"] = ("^(" + "|".join(re.escape(n) for n in names)
                           + ")-[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    tiers, lowercase = defs["resolution"]["anyOf"]
    tiers["enum"] = list(models.RESOLUTIONS)
    lowercase["enum"] = [r.lower() for r in models.RESOLUTIONS]
    defs["ratio"]["enum"] = list(models.RATIOS)
    defs["size"]["enum"] = list(models.SIZES.values())
    durations = [d for m in models.MODELS.values() for d in m.durations]
    defs["duration"]["minimum"], defs["duration"]["maximum"] = min(durations), max(durations)
    defs["durationWord"]["enum"] = list(dict.fromkeys(
        word for m in models.MODELS.values() for word in m.duration_words()))
    defs["seed"]["maximum"] = models.SEED_MAX
    defs["settings"]["properties"]["region"]["enum"] = list(models.REGIONS)
    return out


def render(document: dict[str, Any]) -> str:
    """The schema as the committed file spells it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def committed_path() -> str:
    """The committed schema file (the package's copy is a link to it)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.realpath(os.path.join(here, SCHEMA_RESOURCE))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["--write"], ["--check"]):
        print("usage: python -m wanflow.spec.schema --write | --check", file=sys.stderr)
        return 2
    text = render(generate())
    path = committed_path()
    with open(path, encoding="utf-8") as fh:
        current = fh.read()
    if current == text:
        print(f"{path}: up to date")
        return 0
    if args == ["--check"]:
        print(f"{path}: out of date with models.py; run python -m wanflow.spec.schema --write",
              file=sys.stderr)
        return 1
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"{path}: rewritten from models.py")
    return 0


# --------------------------------------------------------------------------- validating

@lru_cache(maxsize=2)
def _validator(library: bool) -> Draft202012Validator:
    import jsonschema

    root = schema()
    if library:
        wrapper = {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": "#/$defs/library"}
        return jsonschema.Draft202012Validator(wrapper)
    return jsonschema.Draft202012Validator(root)


def validate(doc: Document, refused: Collection[KeyPath] = ()) -> list[Diagnostic]:
    """Check `doc` against the schema; return one diagnostic per problem.

    `doc.data` is replaced by a copy in which every rejected value is REJECTED and every
    unknown key is dropped, so later stages neither trip over them nor report them twice.
    `refused`: values an earlier stage already reported; they are masked without a message.
    """
    out: list[Diagnostic] = []
    data = doc.data
    if doc.library:
        data = dict(data)
        for key in LIBRARY_ONLY:
            if key in data:
                out.append(Diagnostic(doc.pos.key((key,)), (
                    f"an included file cannot define '{key}' (only vars, assets, templates, "
                    "defaults and include); move it to the top-level spec")))
                data.pop(key)
    explainer = _Explainer(doc, out, refused)
    for err in _validator(doc.library).iter_errors(data):
        explainer.explain(err)
    if explainer.masks or explainer.drops:
        data = _sanitize(data, (), explainer.masks, explainer.drops)
    doc.data = data
    return out


def _sanitize(value: Any, path: KeyPath, masks: set[KeyPath], drops: set[KeyPath]) -> Any:
    if path in masks:
        return REJECTED
    if isinstance(value, dict):
        return {k: _sanitize(v, path + (k,), masks, drops) for k, v in value.items()
                if path + (k,) not in drops}
    if isinstance(value, list):
        return [_sanitize(v, path + (i,), masks, drops) for i, v in enumerate(value)]
    return value


def _deref(node: Any) -> dict[str, Any]:
    """A schema node with its `$ref` chain followed (the referring node's keys win)."""
    for _ in range(10):
        if not (isinstance(node, dict) and "$ref" in node):
            break
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            break
        target = schema()["$defs"].get(ref[len("#/$defs/"):], {})
        node = {**target, **{k: v for k, v in node.items() if k not in ("$ref", "description")}}
    return node if isinstance(node, dict) else {}


def _type_ok(node: dict[str, Any], value: Any) -> bool:
    """Whether `value` has a type the schema node accepts (ignoring everything else)."""
    types = node.get("type")
    if types is None:
        if "enum" in node and "const" not in node:
            return any(type(value) is type(v) for v in node["enum"])
        return True
    return any(_is_json_type(t, value) for t in ([types] if isinstance(types, str) else types))


def _is_json_type(name: str, value: Any) -> bool:
    """Whether `value` is of the JSON Schema type `name` (a bool is not a number)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    checks = {"object": isinstance(value, dict), "array": isinstance(value, list),
              "string": isinstance(value, str), "boolean": isinstance(value, bool),
              "null": value is None, "number": is_number,
              "integer": is_number and isinstance(value, int)}
    return checks.get(name, False)


class _Explainer:
    """Turns jsonschema errors into diagnostics, and notes what to mask or drop afterwards."""

    def __init__(self, doc: Document, out: list[Diagnostic],
                 refused: Collection[KeyPath] = ()) -> None:
        self.doc = doc
        self.out = out
        self.refused = set(refused)
        self.masks: set[KeyPath] = set(refused)   # values to replace with REJECTED
        self.drops: set[KeyPath] = set()   # unknown keys to remove

    def error(self, where: Where, message: str) -> None:
        self.out.append(Diagnostic(where, message))

    def explain(self, err: ValidationError) -> None:
        path: KeyPath = tuple(err.absolute_path)
        if path in self.refused:
            return  # reported already, by the stage that refused it
        kind = err.validator
        node = err.schema if isinstance(err.schema, dict) else {}
        if "propertyNames" in err.schema_path:
            self._bad_name(err, path, node)
        elif kind in ("anyOf", "oneOf"):
            self._no_branch(err, path, node)
        elif kind == "additionalProperties" and isinstance(err.instance, dict):
            self._unknown_keys(err, path, node)
        elif kind == "required":
            self._missing_keys(err, path, node)
        elif kind in ("minItems", "maxItems", "uniqueItems"):
            self._bad_list(err, path)
        else:
            self.masks.add(path)
            self.error(self.doc.pos.at(path), self._bad_value(err, path, node))

    def _bad_name(self, err: ValidationError, path: KeyPath, node: dict[str, Any]) -> None:
        name = str(err.instance)  # a property name: always a string
        key_path = path + (name,)
        where = self.doc.pos.key(key_path)
        self.drops.add(key_path)
        if err.validator in ("anyOf", "oneOf"):
            self.error(where, f"unknown model '{name}'"
                              f"{suggest(name, models.model_names(), models.MODELS)}")
        else:
            hint = node.get("patternErrorMessage", "")
            self.error(where, f"invalid name '{name}' in {label(path)}"
                       + (f": {hint}" if hint else ""))

    def _no_branch(self, err: ValidationError, path: KeyPath, node: dict[str, Any]) -> None:
        """No `anyOf` branch matched: an unknown enum value, or the errors of the one branch
        the value was evidently meant for, or a list of what would have been accepted."""
        value = err.instance
        where = self.doc.pos.at(path)
        branches = [_deref(b) for b in _listed(err.validator_value)]
        enum_branch = next((b for b in branches if "enum" in b), None)
        if isinstance(value, str) and enum_branch is not None and all(
                _type_ok(b, value) for b in branches):
            self.masks.add(path)
            names = enum_branch["enum"]
            what = "model" if node.get("title") == "model" else label(path)
            listing = models.MODELS if what == "model" else names
            self.error(where, f"unknown {what} {show(value)}{suggest(value, names, listing)}")
            return
        words = [i for i, b in enumerate(branches) if "enum" in b and b.get("type") == "string"]
        numbers = [i for i, b in enumerate(branches) if b.get("type") in ("integer", "number")]
        typed = [i for i, b in enumerate(branches) if _type_ok(b, value)]
        if words and numbers and len(words) + len(numbers) == len(branches) \
                and typed in ([], words):
            # Neither a number nor one of the words allowed instead (`duration: five`,
            # `duration: 2.5`): explained as the number it should be.
            if isinstance(value, str):
                self.masks.add(path)
                kinds = " or ".join(_TYPE_WORDS.get(t, t) for i, b in enumerate(branches)
                                    if i not in words for t in _listed(b.get("type")))
                listed = [w for i in words for w in branches[i]["enum"]]
                title = branches[words[0]].get("title", "word")
                self.error(where, f"{label(path)}: expected {kinds}, got a string {show(value)}"
                           f"{did_you_mean(value, listed)} (or a {title}: {allowed(listed)})")
                return
            typed = numbers
        if len(typed) > 1 and isinstance(value, dict):
            # several mapping forms: the one sharing the most keys with the value is meant
            scores = [(len(set(value) & set(branches[i].get("properties", {}))), i) for i in typed]
            best = max(s for s, _ in scores)
            top = [i for s, i in scores if s == best]
            if best > 0 and len(top) == 1:
                typed = top
        if len(typed) == 1:
            subs = [e for e in (err.context or [])
                    if e.relative_schema_path and e.relative_schema_path[0] == typed[0]]
            if subs:
                for sub in subs:
                    self.explain(sub)
                return
        self.masks.add(path)
        titles = [b.get("title") or _TYPE_WORDS.get(b.get("type", ""), "?") for b in branches]
        self.error(where, f"{label(path)}: expected " + " or ".join(titles)
                   + f", got {show(value)}")

    def _unknown_keys(self, err: ValidationError, path: KeyPath, node: dict[str, Any]) -> None:
        known = list((_deref(node).get("properties") or {}).keys())
        title = node.get("title") or label(path)
        assert isinstance(err.instance, dict)
        for key in [k for k in err.instance if k not in known]:
            key_path = path + (key,)
            self.drops.add(key_path)
            hint = did_you_mean(key, known)
            listing = "" if hint else f"; allowed keys: {allowed(sorted(known))}"
            self.error(self.doc.pos.key(key_path),
                       f"unknown key '{key}' in {title}{hint}{listing}")

    def _missing_keys(self, err: ValidationError, path: KeyPath, node: dict[str, Any]) -> None:
        value = err.instance
        missing = [k for k in _listed(err.validator_value)
                   if isinstance(value, dict) and k not in value]
        title = node.get("title") or label(path)
        if title not in _NAMED_NODES:
            self.masks.add(path)
        for key in missing:
            extra = " (add `wanflow: 1` at the top)" if key == "wanflow" and not path else ""
            self.error(self.doc.pos.at(path), f"{title} is missing required key '{key}'{extra}")

    def _bad_list(self, err: ValidationError, path: KeyPath) -> None:
        if len(path) > 1:
            self.masks.add(path)  # e.g. `references: []`: don't also report "needs references"
        name, where, n = label(path), self.doc.pos.at(path), err.validator_value
        if err.validator == "minItems":
            self.error(where, f"{name} needs at least {n} item{'s' if n != 1 else ''}")
        elif err.validator == "maxItems":
            self.error(where, f"{name} takes at most {n} items")
        else:
            self.error(where, f"{name} lists the same item twice")

    def _bad_value(self, err: ValidationError, path: KeyPath, node: dict[str, Any]) -> str:
        kind, value, name = err.validator, err.instance, label(path)
        custom = node.get("errorMessage")
        if custom:
            return f"{custom} (got {show(value)})"
        if kind == "type":
            words = " or ".join(_TYPE_WORDS.get(t, t) for t in _listed(err.validator_value))
            scalar = not isinstance(value, (dict, list)) and value is not None
            shown = f" {show(value)}" if scalar else ""
            return f"{name}: expected {words}, got {type_word(value)}{shown}"
        if kind == "enum":
            suggestion = suggest(value, _listed(err.validator_value))
            return f"{name} {show(value)} is not valid{suggestion}"
        if kind == "const":
            return f"{name} must be {show(err.validator_value)}, got {show(value)}"
        if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return f"{name} {show(value)} is out of range; allowed: {_range(node)}"
        if kind == "pattern":
            hint = node.get("patternErrorMessage")
            return f"{name} {show(value)} is not valid" + (
                f": {hint}" if hint else f" (must match {err.validator_value})")
        if kind == "minLength":
            return f"{name} must not be empty"
        return f"{name}: {err.message}"


def _listed(value: Any) -> list[Any]:
    """A keyword's value as a list (`type: string` is `[string]`)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _range(node: dict[str, Any]) -> str:
    """`2–15`, `≥ 0`, `> 0 and ≤ 2`: the bounds a schema node sets."""
    low, high, above = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
    if low is not None and high is not None:
        return f"{number(low)}–{number(high)}"
    parts = []
    if low is not None:
        parts.append(f"≥ {number(low)}")
    if above is not None:
        parts.append(f"> {number(above)}")
    if high is not None:
        parts.append(f"≤ {number(high)}")
    return " and ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
