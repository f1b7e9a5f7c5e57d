"""Plain YAML values → the frozen spec values of `nodes.py`, and where each came from.

Runs after interpolation and the schema, so values are of the right type or REJECTED (already
reported; treated as absent here). A shot's fields are layered: `defaults` < its template
(parameters filled from `with:`) < its own. Shot references are qualified (`scene.shot`),
asset files resolved and checked to exist inside the project. Where each scene, film, shot
field and input was written is recorded in the `Context` the semantic checks read.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .checks import media_kind, unique, unknown_name
from .context import Context, Source
from .interpolate import Interpolator, Template
from .messages import show
from .nodes import (
    Asset,
    AudioBed,
    Diagnostic,
    Film,
    Input,
    ModelLimit,
    Scene,
    Shot,
    ShotRef,
    Spec,
    SpecSettings,
    Transition,
    Where,
)
from .paths import path_problem
from .positions import KeyPath
from .schema import REJECTED
from .urls import url_problem

if TYPE_CHECKING:
    from .yaml import Document

# The fields `defaults` and templates can give a shot (the rest are the shot's own).
SHOT_FIELDS = ("model", "prompt", "negative_prompt", "duration", "resolution", "ratio", "size",
               "seed", "prompt_extend", "watermark", "shot_type", "audio", "generate_audio",
               "effect", "enable_thinking", "audio_setting", "first_frame", "last_frame",
               "first_clip", "source", "references", "document", "link", "takes", "pick")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEFAULT_CROSSFADE = 0.5  # seconds, when `crossfade` gives none


@dataclass(frozen=True)
class FieldValue:
    """A shot field's value and where it was written: the shot, a template or defaults."""

    value: Any
    doc: Document
    path: KeyPath
    origin: str | None = None   # "template 'x'" | "defaults"; None for the shot's own

    @property
    def where(self) -> Where:
        return self.doc.pos.at(self.path)


class Builder:
    """Builds the draft Spec and its Context from the loaded documents (top-level last).

    Problems are appended to `out`, the loader's list of diagnostics, in the order found.
    """

    def __init__(self, docs: list[Document], top: Document, root: str,
                 interpolator: Interpolator, out: list[Diagnostic]) -> None:
        self.docs, self.top, self.root = docs, top, root
        self.interpolator = interpolator
        self.out = out
        self.assets: dict[str, Asset] = {}
        self.templates: dict[str, Template] = {}
        self.bad_templates: set[str] = set()
        self.defaults: dict[str, FieldValue] = {}
        self.ctx_assets: dict[str, Where] = {}
        self.bad_assets: set[str] = set()
        self.scene_sources: dict[str, Source] = {}
        self.film_sources: dict[str, Source] = {}
        self.shot_sources: dict[str, Source] = {}

    def error(self, where: Where, message: str) -> None:
        self.out.append(Diagnostic(where, message))

    def build(self) -> tuple[Spec, Context]:
        self._collect_assets()
        self._collect_templates()
        for doc in self.docs:
            section = doc.data.get("defaults")
            if isinstance(section, dict):
                for key, value in section.items():
                    if value is not REJECTED:
                        self.defaults[key] = FieldValue(value, doc, ("defaults", key), "defaults")
        data = self.top.data
        scenes = [self._scene(i, raw) for i, raw in enumerate(_list(data.get("scenes")))
                  if isinstance(raw, dict) and isinstance(raw.get("id"), str)]
        films = [self._film(i, raw) for i, raw in enumerate(_list(data.get("films")))
                 if isinstance(raw, dict) and isinstance(raw.get("id"), str)]
        files = tuple([self.top.abspath] + [d.abspath for d in self.docs if d is not self.top])
        name = data.get("name")
        spec = Spec(file=self.top.abspath, root=self.root,
                    name=name if isinstance(name, str) else "", version=1, assets=self.assets,
                    scenes=tuple(scenes), films=tuple(films),
                    settings=self._settings(data.get("settings")), files=files,
                    library=self.top.library, templates=tuple(self.templates),
                    variables=tuple(self.interpolator.vars))
        ctx = Context(spec=spec, file=self.top.file, base_dir=self.top.dir,
                      top=self.top.pos.at(), assets=self.ctx_assets, scenes=self.scene_sources,
                      films=self.film_sources, shots=self.shot_sources,
                      bad_assets=self.bad_assets)
        return spec, ctx

    def _settings(self, value: Any) -> SpecSettings:
        settings = _settings(value)
        if settings.cache is not None:
            problem = path_problem(settings.cache, self.top.dir, self.root, "cache directory")
            if problem:
                self.error(self.top.pos.at(("settings", "cache")), (
                    f"{problem}; a cache outside the project comes from --cache or "
                    "WANFLOW_CACHE, never from the spec"))
                settings = dataclasses.replace(settings, cache=None)
        return settings

    # ----------------------------------------------------------------- declarations
    def _collect_assets(self) -> None:
        declared: list[tuple[str, Where]] = []
        for doc in self.docs:
            section = doc.data.get("assets")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                where = doc.pos.at(("assets", name))
                declared.append((name, doc.pos.key(("assets", name))))
                if name in self.assets or name in self.bad_assets:
                    continue  # the first declaration wins; the repeat is reported below
                asset = self._asset(doc, name, value, where)
                self.ctx_assets[name] = where
                if asset is None:
                    self.bad_assets.add(name)
                else:
                    self.assets[name] = asset
        self.out.extend(unique("asset", declared))

    def _asset(self, doc: Document, name: str, value: Any, where: Where) -> Asset | None:
        if value is REJECTED or value is None:
            return None
        path = url = None
        if isinstance(value, str):
            if _URL.match(value):
                url = value
            else:
                path = value
        elif isinstance(value, dict):
            path, url = value.get("path"), value.get("url")
            if path is REJECTED or url is REJECTED:
                return None
            where = doc.pos.at(("assets", name, "path" if path is not None else "url"))
        else:
            return None
        if url is not None:
            problem = url_problem(url)
            if problem:
                self.error(where, f"asset '{name}': cannot use {show(url)}: {problem}")
                return None
            return Asset(name=name, where=where, url=url)
        if not isinstance(path, str):
            return None
        problem = path_problem(path, doc.dir, self.root, f"asset '{name}': path")
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

    def _collect_templates(self) -> None:
        declared: list[tuple[str, Where]] = []
        for doc in self.docs:
            section = doc.data.get("templates")
            if not isinstance(section, dict):
                continue
            for name, value in section.items():
                declared.append((name, doc.pos.key(("templates", name))))
                if name in self.templates or name in self.bad_templates:
                    continue
                if isinstance(value, dict):
                    self.templates[name] = Template(name, doc, ("templates", name), value)
                else:
                    self.bad_templates.add(name)
        self.out.extend(unique("template", declared))

    # ----------------------------------------------------------------- scenes and films
    def _scene(self, index: int, raw: dict[str, Any]) -> Scene:
        sid = raw["id"]
        path: KeyPath = ("scenes", index)
        where = self.top.pos.at(path)
        source = self.scene_sources.setdefault(sid, Source(where))
        source.where = where
        shots = [self._shot(path + ("shots", i), sid, raw_shot)
                 for i, raw_shot in enumerate(_list(raw.get("shots")))
                 if isinstance(raw_shot, dict) and isinstance(raw_shot.get("id"), str)]
        for key in ("audio", "path", "transition"):
            if key in raw:
                source.fields[key] = self.top.pos.at(path + (key,))
        return Scene(id=sid, where=where, shots=tuple(shots),
                     transition=_transition(raw.get("transition")), audio=_bed(raw.get("audio")),
                     path=_opt_str(raw.get("path")))

    def _film(self, index: int, raw: dict[str, Any]) -> Film:
        fid = raw["id"]
        path: KeyPath = ("films", index)
        where = self.top.pos.at(path)
        source = self.film_sources.setdefault(fid, Source(where))
        source.where = where
        for key in ("audio", "path", "transition", "scenes"):
            if key in raw:
                source.fields[key] = self.top.pos.at(path + (key,))
        ids: list[str] = []
        for j, sid in enumerate(_list(raw.get("scenes"))):
            if isinstance(sid, str):
                source.items[("scenes", len(ids))] = self.top.pos.at(path + ("scenes", j))
                ids.append(sid)
        return Film(id=fid, path=_opt_str(raw.get("path")) or "", where=where, scenes=tuple(ids),
                    transition=_transition(raw.get("transition")), audio=_bed(raw.get("audio")),
                    resolution=_tier(_opt_str(raw.get("resolution"))),
                    ratio=_opt_str(raw.get("ratio")), size=_opt_str(raw.get("size")),
                    fps=_opt_int(raw.get("fps")))

    # ----------------------------------------------------------------- shots
    def _shot(self, path: KeyPath, sid: str, raw: dict[str, Any]) -> Shot:
        doc = self.top
        hid = raw["id"]
        qid = f"{sid}.{hid}"
        where = doc.pos.at(path)
        source = self.shot_sources.setdefault(qid, Source(where))
        source.where = where
        template_name, layers = self._layers(doc, path, qid, raw, source)
        effective = _merge_layers(layers, self.error)
        values: dict[str, Any] = {}
        for key, field_value in effective.items():
            source.fields[key] = field_value.where
            if field_value.origin:
                source.inherited[key] = field_value.origin
            if field_value.value is REJECTED:
                if key == "model":
                    source.skip_model_rules = True
                source.rejected.add(key)
                continue
            values[key] = field_value.value

        model = values.get("model")
        if model is None and not source.skip_model_rules:
            self.error(where, f"shot '{qid}' has no model: set `model` on the shot, in its "
                       "template or under `defaults`")
            source.skip_model_rules = True
        inputs = self._inputs(sid, values, effective, where, source)
        link = values.get("link")
        problem = url_problem(link) if isinstance(link, str) else None
        if problem:   # the provider fetches it: a public web page, like a URL asset
            self.error(effective["link"].where, f"link: cannot use {show(link)}: {problem}")
            values.pop("link")
        needs: list[str] = []
        for j, ref in enumerate(_list(raw.get("needs"))):
            if isinstance(ref, str):
                source.items[("needs", len(needs))] = doc.pos.at(path + ("needs", j))
                needs.append(_qualify(ref, sid))
        if "path" in raw:
            source.fields["path"] = doc.pos.at(path + ("path",))

        def opt(key: str, kind: type) -> Any:
            value = values.get(key)
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
            return None

        return Shot(scene=sid, id=hid, model=model if isinstance(model, str) else "", where=where,
                    prompt=opt("prompt", str) or "",
                    negative_prompt=opt("negative_prompt", str),
                    duration=opt("duration", str) or opt("duration", int),
                    resolution=_tier(opt("resolution", str)),
                    ratio=opt("ratio", str), size=opt("size", str), seed=opt("seed", int),
                    prompt_extend=opt("prompt_extend", bool), watermark=opt("watermark", bool),
                    shot_type=opt("shot_type", str), audio=opt("audio", str),
                    generate_audio=opt("generate_audio", bool), effect=opt("effect", str),
                    enable_thinking=opt("enable_thinking", bool),
                    audio_setting=opt("audio_setting", str), link=opt("link", str),
                    inputs=tuple(inputs),
                    takes=opt("takes", int) or 1, pick=opt("pick", int) or 1, needs=tuple(needs),
                    path=_opt_str(raw.get("path")), template=template_name)

    def _layers(self, doc: Document, path: KeyPath, qid: str, raw: dict[str, Any],
                source: Source) -> tuple[str | None, list[dict[str, FieldValue]]]:
        """The template the shot uses (if any) and its layers: defaults, template, own."""
        layers = [self.defaults]
        use = raw.get("use")
        template_name = None
        if use is not None:
            if use is REJECTED or use in self.bad_templates:
                source.skip_model_rules = True
            elif use not in self.templates:
                self.out.append(unknown_name(use, self.templates, doc.pos.at(path + ("use",)),
                                             "template"))
                source.skip_model_rules = True
            else:
                template_name = use
                template = self.templates[use]
                filled = self.interpolator.expand(template, doc, path, raw.get("with"),
                                                  SHOT_FIELDS)
                origin = f"template '{use}'"
                layers.append({key: FieldValue(value, template.doc, template.path + (key,), origin)
                               for key, value in filled.items()})
        elif "with" in raw:
            self.error(doc.pos.key(path + ("with",)),
                       "`with` gives template parameters, but the shot has no `use: TEMPLATE`")
        layers.append({key: FieldValue(raw[key], doc, path + (key,)) for key in SHOT_FIELDS
                       if key in raw})
        return template_name, layers

    def _inputs(self, sid: str, values: dict[str, Any], effective: dict[str, FieldValue],
                shot_where: Where, source: Source) -> list[Input]:
        """The shot's media inputs in the order they are sent: the clip an edit restyles,
        frames and clips, references, then a document."""
        inputs: list[Input] = []

        def add(item: Input, where: Where) -> None:
            source.items[("input", len(inputs))] = where
            inputs.append(item)

        for key, role, default_frame in (("source", "video", None),
                                         ("first_frame", "first_frame", "last"),
                                         ("first_clip", "first_clip", None),
                                         ("last_frame", "last_frame", "first")):
            value = values.get(key)
            where = effective[key].where if key in effective else shot_where
            if isinstance(value, str):
                add(Input(role, asset=value), where)
            elif isinstance(value, dict) and isinstance(value.get("shot"), str):
                frame = value.get("frame") if default_frame is not None else None
                frame = frame if frame in ("first", "last") else default_frame
                add(Input(role, ref=ShotRef(_qualify(value["shot"], sid), frame)), where)
        self._references(sid, values, effective, add, lambda: len(inputs), source)
        document = values.get("document")
        if isinstance(document, str):
            add(Input("file", asset=document), effective["document"].where)
        return inputs

    def _references(self, sid: str, values: dict[str, Any], effective: dict[str, FieldValue],
                    add: Callable[[Input, Where], None], count: Callable[[], int],
                    source: Source) -> None:
        """`references:` in order, each as the role its media kind gives it (`count()`: the
        index the next input gets)."""
        refs = values.get("references")
        if not isinstance(refs, list):
            return
        declared = effective["references"]
        for i, item in enumerate(refs):
            where = declared.doc.pos.at(declared.path + (i,))
            if isinstance(item, str):
                add(Input(self._reference_role(item), asset=item), where)
            elif isinstance(item, dict) and isinstance(item.get("asset"), str):
                voice = _opt_str(item.get("voice"))
                if voice is not None:
                    source.items[("voice", count())] = declared.doc.pos.at(
                        declared.path + (i, "voice"))
                add(Input(self._reference_role(item["asset"]), asset=item["asset"], voice=voice,
                          description=_opt_str(item.get("description"))), where)
            elif isinstance(item, dict) and isinstance(item.get("shot"), str):
                add(Input("reference_video", ref=ShotRef(_qualify(item["shot"], sid))), where)

    def _reference_role(self, asset_name: str) -> str:
        asset = self.assets.get(asset_name)
        kind = media_kind(asset.path or asset.url) if asset is not None else None
        return {"video": "reference_video", "audio": "reference_audio"}.get(
            kind or "", "reference_image")


def _merge_layers(layers: list[dict[str, FieldValue]],
                  error: Callable[[Where, str], None]) -> dict[str, FieldValue]:
    """Later layers win. Geometry is one choice: a layer's `size` replaces the `resolution`
    and `ratio` of the layers below it, and the other way round."""
    effective: dict[str, FieldValue] = {}
    for layer in layers:
        keys = set(layer)
        if "size" in keys and keys & {"resolution", "ratio"}:
            size = layer["size"]
            error(size.where, "give either `size` or `resolution` + `ratio`, not both"
                  f"{f' (in {size.origin})' if size.origin else ''}")
        if "size" in keys:
            effective.pop("resolution", None)
            effective.pop("ratio", None)
        if keys & {"resolution", "ratio"}:
            effective.pop("size", None)
        effective.update(layer)
    return effective


def _qualify(ref: str, scene_id: str) -> str:
    return ref if "." in ref else f"{scene_id}.{ref}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tier(resolution: str | None) -> str | None:
    """`720p` is `720P`: one spelling, so both key alike (the schema allows only these)."""
    return resolution.upper() if resolution is not None else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _transition(value: Any) -> Transition:
    if value == "crossfade":
        return Transition("crossfade", _DEFAULT_CROSSFADE)
    if isinstance(value, dict) and value.get("type") == "crossfade":
        seconds = value.get("seconds", _DEFAULT_CROSSFADE)
        return Transition("crossfade", float(seconds) if isinstance(seconds, (int, float))
                          else _DEFAULT_CROSSFADE)
    return Transition()


def _bed(value: Any) -> AudioBed | None:
    if isinstance(value, str):
        return AudioBed(value)
    if isinstance(value, dict) and isinstance(value.get("asset"), str):
        volume = _number(value.get("volume", 1.0))
        return AudioBed(value["asset"], volume=1.0 if volume is None else volume,
                        duck=_number(value.get("duck")), loop=value.get("loop") is True,
                        fade=_number(value.get("fade")))
    return None


def _settings(value: Any) -> SpecSettings:
    if not isinstance(value, dict):
        return SpecSettings()
    limits = []
    raw_limits = value.get("limits")
    if isinstance(raw_limits, dict):
        for model, limit in sorted(raw_limits.items()):
            if isinstance(limit, dict):
                concurrency = limit.get("concurrency")
                rps = limit.get("submit_rps")
                limits.append(ModelLimit(
                    model, concurrency if isinstance(concurrency, int) else None,
                    float(rps) if isinstance(rps, (int, float)) else None))
    cost = value.get("max_cost")
    backend = value.get("backend")
    accepted = value.get("accept_status")
    return SpecSettings(backend=backend if isinstance(backend, str) else "auto",
                        region=_opt_str(value.get("region")),
                        cache=_opt_str(value.get("cache")),
                        max_cost=float(cost) if isinstance(cost, (int, float)) else None,
                        limits=tuple(limits),
                        accept_status=tuple(s for s in _list(accepted) if isinstance(s, str)))
