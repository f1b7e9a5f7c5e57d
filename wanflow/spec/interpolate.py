"""`${name}` in spec strings: variables, their substitution, and templates' parameters.

Variables come from every file's `vars:` (the including file wins) and may refer to each
other; cycles and runaway growth are reported, never followed. A string that is exactly
`${name}` takes the variable's type (`duration: ${secs}` is an integer). `$${` writes a
literal `${`. Template strings keep their `${param}`s until a shot applies the template
`with:` values, which is when the parameters are filled.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .checks import template_args, unknown_name
from .nodes import Diagnostic, Where
from .positions import KeyPath
from .schema import REJECTED

if TYPE_CHECKING:
    from .yaml import Document

MAX_STRING = 100_000   # characters of one string after interpolation
_MAX_NESTING = 100     # variables defined through variables, this deep at most
VARNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_WHOLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")


@dataclass(frozen=True)
class Template:
    """A template as declared: its name, the file and key path it sits at, and its fields."""

    name: str
    doc: Document
    path: KeyPath
    data: dict[str, Any]


def param_names(params: Any) -> tuple[str, ...]:
    """The parameter names a template declares (a list of names, or name -> default)."""
    if isinstance(params, list):
        return tuple(p for p in params if isinstance(p, str))
    if isinstance(params, dict):
        return tuple(k for k in params if isinstance(k, str))
    return ()


def param_defaults(params: Any) -> dict[str, Any]:
    """name -> default value (None: the parameter is required)."""
    if isinstance(params, list):
        return {p: None for p in params if isinstance(p, str)}
    if isinstance(params, dict):
        return {k: (None if v is REJECTED else v) for k, v in params.items()}
    return {}


def as_text(value: Any) -> str:
    """A variable's value inside a longer string: `true`, `6` (not `6.0`), `cheetah`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


class Interpolator:
    """Resolves the spec's variables once, then interpolates documents and templates.

    Problems are appended to `out`, the loader's list of diagnostics, in the order found.
    """

    def __init__(self, out: list[Diagnostic]) -> None:
        self.out = out
        self.vars: dict[str, Any] = {}
        self.bad_vars: set[str] = set()   # declared but invalid: using them is not news

    # ----------------------------------------------------------------- variables
    def resolve_vars(self, docs: Iterable[Document]) -> None:
        """Collect `vars:` of every document (later ones win) and resolve references."""
        raw: dict[str, tuple[Any, Document, KeyPath]] = {}
        for doc in docs:
            section = doc.data.get("vars")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                if (isinstance(name, str) and VARNAME.match(name)
                        and isinstance(value, (str, int, float))):
                    raw[name] = (value, doc, ("vars", name))
                    self.bad_vars.discard(name)
                else:
                    self.bad_vars.add(name)
                    raw.pop(name, None)
        resolved: dict[str, Any] = {}
        resolving: list[str] = []

        def resolve(name: str) -> None:
            value, doc, path = raw[name]
            if not isinstance(value, str) or "${" not in value:
                resolved[name] = value
                return
            if len(resolving) > _MAX_NESTING:
                self.out.append(Diagnostic(doc.pos.at(path),
                                           f"variables nest too deeply at '{name}'"))
                resolved[name] = ""
                return
            resolving.append(name)
            for m in _TOKEN.finditer(value):
                dep = m.group(1)
                if dep is None or dep not in raw or dep in resolved:
                    continue
                if dep in resolving:
                    cycle = resolving[resolving.index(dep):] + [dep]
                    self.out.append(Diagnostic(doc.pos.at(path),
                                               "variable cycle: " + " -> ".join(cycle)))
                    resolved[dep] = ""
                    continue
                resolve(dep)
            resolving.pop()
            lookup = dict(resolved)
            for dep in raw:  # names still unresolved here are cycle members: empty
                lookup.setdefault(dep, "")
            result = self.substitute(value, lookup, doc.pos.at(path), known=raw)
            if isinstance(result, str) and len(result) >= MAX_STRING:
                result = ""  # reported once here; variables built from it stay quiet
            resolved[name] = result

        for name in raw:
            if name not in resolved:
                resolve(name)
        self.vars = resolved

    def substitute(self, text: str, lookup: dict[str, Any], where: Where, *,
                   keep: Collection[str] = (), unescape: bool = True,
                   known: Iterable[str] | None = None, report: bool = True,
                   kind: str = "variable") -> Any:
        """Interpolate `${name}` in `text` from `lookup`. Names in `keep` are left as written
        (template parameters, filled later); `unescape` turns `$${` into `${`; `report`
        says whether unknown or malformed references are diagnostics here."""
        if "${" not in text:
            return text
        whole = _WHOLE.fullmatch(text)
        if whole and whole.group(1) in lookup and whole.group(1) not in keep:
            return lookup[whole.group(1)]
        parts: list[str] = []
        size = 0
        last = 0
        for m in _TOKEN.finditer(text):
            parts.append(text[last:m.start()])
            size += m.start() - last
            last = m.end()
            token = m.group(0)
            if token == "$${":
                parts.append("${" if unescape else "$${")
                continue
            name = m.group(1)
            if name is None:
                if report:
                    self.out.append(Diagnostic(
                        where, "unterminated '${' (write '$${' for a literal '${')"))
                parts.append(token)
                continue
            if not VARNAME.match(name):
                if report:
                    self.out.append(Diagnostic(where, (
                        f"bad variable reference '${{{name}}}': names use letters, digits, '-' "
                        "and '_' (write '$${' for a literal '${')")))
                parts.append(token)
                continue
            if name in keep:
                parts.append(token)
                continue
            if name in lookup:
                value = as_text(lookup[name])
            else:
                value = ""
                if report and name not in self.bad_vars:
                    names = list(known if known is not None else lookup)
                    extra = "" if names else "; declare it under `vars:`"
                    self.out.append(unknown_name(name, names, where, kind, extra))
            parts.append(value)
            size += len(value)
            if size > MAX_STRING:
                self.out.append(Diagnostic(
                    where, f"interpolated text is longer than {MAX_STRING} characters"))
                return "".join(parts)[:MAX_STRING]
        parts.append(text[last:])
        return "".join(parts)

    # ----------------------------------------------------------------- documents
    def interpolate(self, doc: Document) -> None:
        """Replace `${var}` in every string of `doc` (not in `vars` and `include`: variables
        are resolved on their own, and include paths are literal)."""
        out: dict[str, Any] = {}
        for key, value in doc.data.items():
            if key in ("vars", "include"):
                out[key] = value
            elif key == "templates" and isinstance(value, dict):
                out[key] = {name: self._template(doc, ("templates", name), template)
                            for name, template in value.items()}
            else:
                out[key] = self._strings(doc, (key,), value)
        doc.data = out

    def _strings(self, doc: Document, path: KeyPath, value: Any, keep: Collection[str] = (),
                 unescape: bool = True, known: Iterable[str] | None = None,
                 kind: str = "variable") -> Any:
        if isinstance(value, str):
            if "${" not in value:
                return value
            return self.substitute(value, self.vars, doc.pos.at(path), keep=keep,
                                   unescape=unescape, known=known, kind=kind)
        if isinstance(value, dict):
            return {k: self._strings(doc, path + (k,), v, keep, unescape, known, kind)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._strings(doc, path + (i,), v, keep, unescape, known, kind)
                    for i, v in enumerate(value)]
        return value

    def _template(self, doc: Document, path: KeyPath, template: Any) -> Any:
        """Variables are filled now; parameters (and `$${`) wait for the shot that uses it."""
        if not isinstance(template, dict):
            return template
        params = param_names(template.get("params"))
        known = list(self.vars) + list(params)
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key == "params":
                out[key] = self._strings(doc, path + (key,), value)
            else:
                out[key] = self._strings(doc, path + (key,), value, keep=params, unescape=False,
                                         known=known, kind="variable or template parameter")
        return out

    # ----------------------------------------------------------------- templates
    def expand(self, template: Template, shot_doc: Document, shot_path: KeyPath, given: Any,
               fields: Iterable[str]) -> dict[str, Any]:
        """The `fields` a template gives a shot, with `${param}` filled from its `with:`
        (missing and unknown parameters are reported at the shot)."""
        declared = param_defaults(template.data.get("params"))
        given = given if isinstance(given, dict) else {}
        self.out.extend(template_args(
            template.name, declared, given, shot_doc.pos.at(shot_path + ("with",)),
            shot_doc.pos.at(shot_path + ("use",)),
            lambda k: shot_doc.pos.key(shot_path + ("with", k))))
        scope = {k: v for k, v in declared.items() if v is not None}
        scope.update({k: v for k, v in given.items() if v is not REJECTED and k in declared})
        for k in declared:
            scope.setdefault(k, "")
        layer: dict[str, Any] = {}
        for key in fields:
            if key in template.data:
                value = template.data[key]
                if value is not REJECTED:
                    value = self._fill(template.doc, template.path + (key,), value, scope)
                layer[key] = value
        return layer

    def _fill(self, doc: Document, path: KeyPath, value: Any, scope: dict[str, Any]) -> Any:
        if isinstance(value, str):
            return self.substitute(value, scope, doc.pos.at(path), report=False)
        if isinstance(value, dict):
            return {k: self._fill(doc, path + (k,), v, scope) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(doc, path + (i,), v, scope) for i, v in enumerate(value)]
        return value
