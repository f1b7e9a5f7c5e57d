"""Semantic checks of a spec: what a JSON Schema cannot say.

Pure functions (no file, network or clock access) over the draft `Spec` the loader builds
and a `Context` that says where each value came from. Structural rules (types, enums,
ranges, required keys) live in `schemas/wanflow.schema.json`; this module does the
cross-references and the per-model rules of `models.py`:

- unique ids and names; references to assets, shots, scenes and templates resolve
  (with "did you mean"); a shot cannot use its own output; dependency cycles;
- per model: geometry (`size` vs `resolution` + `ratio`), durations, `shot_type`, audio,
  the media inputs each model family needs, reference counts, take/pick ranges;
- output and asset path rules (relative, inside the project root);
- warnings: prompts over the model's limit (the API silently truncates them), `ratio`
  ignored by image-led models.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .. import models
from .nodes import Diagnostic, Shot, Spec, Where

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
AUDIO_EXTS = (".wav", ".mp3")
VIDEO_EXTS = (".mp4", ".mov")

ROLE_NEEDS = {  # what kind of medium each input role takes
    "first_frame": "image", "last_frame": "image", "first_clip": "video",
    "reference_image": "image", "reference_video": "video", "driving_audio": "audio",
}
FRAME_ROLES = ("first_frame", "last_frame", "first_clip")
REFERENCE_ROLES = ("reference_image", "reference_video")


# --------------------------------------------------------------------------- helpers

def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` when `word` is close to one of `candidates`, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def suggest(word, candidates: Iterable, listing: Iterable | None = None) -> str:
    """`; did you mean 'x'? (allowed: …)` or `; allowed: …` (`listing`: what to list, if not
    all the candidates)."""
    candidates = [str(v) for v in candidates]
    values = [str(v) for v in listing] if listing is not None else candidates
    hint = did_you_mean(word, candidates) if isinstance(word, str) else ""
    if hint:
        return f"{hint} (allowed: {allowed(values)})"
    return f"; allowed: {allowed(values)}"


def allowed(values: Iterable) -> str:
    """A readable list of allowed values (long lists are shortened)."""
    items = [str(v) for v in values]
    if len(items) > 24:
        items = items[:24] + [f"… ({len(items) - 24} more)"]
    return ", ".join(items) if items else "none"


def format_numbers(values: Iterable[int]) -> str:
    """`2–15`, `5`, `5, 10`, `3–5, 8`: integers with consecutive runs compressed."""
    nums = sorted(set(values))
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return ", ".join(parts)


def media_kind(path_or_url: str | None) -> str | None:
    """image | audio | video from the file extension (URL query and fragment ignored)."""
    if not path_or_url:
        return None
    tail = re.split(r"[?#]", path_or_url, maxsplit=1)[0].lower()
    for kind, exts in (("image", IMAGE_EXTS), ("audio", AUDIO_EXTS), ("video", VIDEO_EXTS)):
        if tail.endswith(exts):
            return kind
    return None


def exts_of(kind: str) -> str:
    return ", ".join({"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "video": VIDEO_EXTS}[kind])


def is_inside(path: str, root: str) -> bool:
    """Whether absolute normalised `path` lies inside (or is) absolute directory `root`."""
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def path_problem(path: str, base_dir: str, root: str, what: str = "path") -> str | None:
    """Why a relative `path` (as written, relative to absolute `base_dir`) is not allowed."""
    if path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return (f"{what} '{path}' must be relative (to the file that names it), "
                "not absolute, so the project can move")
    full = os.path.normpath(os.path.join(base_dir, path))
    if not is_inside(full, root):
        return (f"{what} '{path}' leaves the project directory {root}; "
                "keep every file inside the project")
    return None


def models_with(predicate: Callable[[models.Model], bool]) -> str:
    return ", ".join(m.name for m in models.MODELS.values() if predicate(m))


# --------------------------------------------------------------------------- context

@dataclass
class Context:
    """What the checks need besides the draft spec.

    where: key -> Where. Keys: ("shot", qid) the shot mapping; ("shot", qid, field) the
        effective value of a field (which may sit in a template or in defaults);
        ("shot", qid, "input", i) input i of `shot.inputs`; ("shot", qid, "voice", i);
        ("shot", qid, "needs", i); ("scene", id[, field]); ("film", id[, field[, i]]);
        ("asset", name). A missing key falls back to its longest known prefix.
    origin: (qid, field) -> "template 'x'" | "defaults" for values a shot inherited.
    """

    spec: Spec
    where: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)
    bad_assets: set = field(default_factory=set)   # declared but invalid: no "unknown" errors
    skip_model: set = field(default_factory=set)   # qids whose model is missing or invalid
    bad_fields: dict = field(default_factory=dict)  # qid -> fields the schema rejected
    base_dir: str = ""                             # directory of the top-level spec
    file: str = ""                                 # the top-level spec as displayed

    def at(self, *key) -> Where:
        while key:
            w = self.where.get(key)
            if w is not None:
                return w
            key = key[:-1]
        return Where(self.file or self.spec.file, 1, 1)

    def via(self, qid: str, name: str) -> str:
        src = self.origin.get((qid, name))
        return f" (from {src})" if src else ""


class _Out:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, where: Where, message: str) -> None:
        self.items.append(Diagnostic(where, message))

    def warning(self, where: Where, message: str) -> None:
        self.items.append(Diagnostic(where, message, "warning"))


# --------------------------------------------------------------------------- small checks

def unique(kind: str, items: Iterable[tuple[str, Where]], scope: str = "") -> list[Diagnostic]:
    """An error for every repeated name, pointing at the repeat and naming the first."""
    out: list[Diagnostic] = []
    seen: dict[str, Where] = {}
    for name, where in items:
        if name in seen:
            first = seen[name]
            out.append(Diagnostic(where, f"duplicate {kind} '{name}'{scope} "
                                         f"(first defined at {first})"))
        else:
            seen[name] = where
    return out


def template_args(template: str, declared: dict, given: dict, where_with: Where,
                  where_use: Where, key_where: Callable[[str], Where]) -> list[Diagnostic]:
    """Missing and unknown template parameters. `declared`: name -> default (None = required)."""
    out: list[Diagnostic] = []
    for name in given:
        if name not in declared:
            hint = did_you_mean(name, declared)
            out.append(Diagnostic(key_where(name), (
                f"template '{template}' has no parameter '{name}'{hint}"
                f" (parameters: {allowed(declared) if declared else 'none'})")))
    missing = [n for n, default in declared.items() if default is None and n not in given]
    if missing:
        where = where_with if given else where_use
        out.append(Diagnostic(where, (
            f"template '{template}' needs {'parameter' if len(missing) == 1 else 'parameters'} "
            f"{', '.join(repr(m) for m in missing)}: add them under `with:`")))
    return out


def unknown_name(name: str, known: Iterable[str], where: Where, kind: str = "variable",
                 extra: str = "") -> Diagnostic:
    known = sorted(set(known))
    hint = did_you_mean(name, known)
    listing = f" (known: {allowed(known)})" if known and not hint else ""
    return Diagnostic(where, f"unknown {kind} '{name}'{hint}{listing}{extra}")


def shot_refs(shot: Shot) -> list[tuple[int | None, str, str]]:
    """(input index or None for needs, role, qualified id) of every shot this one depends on."""
    out = []
    for i, item in enumerate(shot.inputs):
        if item.ref is not None:
            out.append((i, item.role, item.ref.shot))
    for j, qid in enumerate(shot.needs):
        out.append((-1 - j, "needs", qid))
    return out


# --------------------------------------------------------------------------- the spec

def check(ctx: Context) -> list[Diagnostic]:
    """Every semantic error and warning of the draft spec."""
    out = _Out()
    spec = ctx.spec
    _check_ids(ctx, out)
    _check_assets(ctx, out)
    qids = {s.qid for s in spec.shots()}
    for scene in spec.scenes:
        if scene.audio is not None:
            _check_asset_ref(ctx, out, scene.audio.asset, "audio", ctx.at("scene", scene.id, "audio"),
                             "a scene's audio")
        for shot in scene.shots:
            _check_shot_refs(ctx, out, shot, qids)
            info = models.lookup(shot.model) if shot.model else None
            if shot.qid in ctx.skip_model:
                continue
            if info is None:
                where = ctx.at("shot", shot.qid, "model")
                out.error(where, f"unknown model '{shot.model}'"
                          f"{suggest(shot.model, models.model_names(), models.MODELS)}")
                continue
            _check_model_rules(ctx, out, shot, info)
    _check_transitions(ctx, out)
    _check_cycles(ctx, out)
    _check_films(ctx, out)
    _check_outputs(ctx, out)
    return out.items


def _check_ids(ctx: Context, out: _Out) -> None:
    spec = ctx.spec
    out.items += unique("scene id", [(s.id, s.where) for s in spec.scenes])
    for scene in spec.scenes:
        out.items += unique("shot id", [(s.id, s.where) for s in scene.shots],
                            f" in scene '{scene.id}'")
    out.items += unique("film id", [(f.id, f.where) for f in spec.films])
    if not spec.scenes:
        out.error(ctx.at("spec"),
                  "the spec has no scenes: add `scenes:` with at least one scene of shots")


def _check_assets(ctx: Context, out: _Out) -> None:
    """Local assets must have a known media extension (path rules need I/O: the loader)."""
    for name, asset in ctx.spec.assets.items():
        if asset.path is not None and name not in ctx.bad_assets and media_kind(asset.path) is None:
            out.error(ctx.at("asset", name), (
                f"asset '{name}': cannot tell the media type of '{asset.path}'; use an image "
                f"({exts_of('image')}), audio ({exts_of('audio')}) or video ({exts_of('video')}) file"))


def _kind_of(ctx: Context, name: str) -> str | None:
    asset = ctx.spec.assets.get(name)
    if asset is None:
        return None
    return media_kind(asset.path or asset.url)


def _check_asset_ref(ctx: Context, out: _Out, name: str, need: str | None, where: Where,
                     what: str) -> None:
    """`name` must be a declared asset of media kind `need` (None: image or video)."""
    if name in ctx.bad_assets:
        return
    if name not in ctx.spec.assets:
        out.items.append(unknown_name(name, ctx.spec.assets, where, "asset",
                                      "" if ctx.spec.assets else "; declare it under `assets:`"))
        return
    kind = _kind_of(ctx, name)
    if kind is None:
        asset = ctx.spec.assets[name]
        if asset.url and need is None:
            out.error(where, f"{what}: cannot tell whether URL asset '{name}' is an image or a "
                      "video; use a URL whose path ends in a media extension")
        return
    if need is None:
        if kind not in ("image", "video"):
            out.error(where, f"{what} must be an image or a video, but asset '{name}' is {kind}")
    elif kind != need:
        out.error(where, f"{what} must be {'an' if need[0] in 'aeiou' else 'a'} {need} "
                  f"({exts_of(need)}), but asset '{name}' is {'an' if kind[0] in 'aeiou' else 'a'} {kind}")


def _check_shot_refs(ctx: Context, out: _Out, shot: Shot, qids: set[str]) -> None:
    q = shot.qid
    for i, item in enumerate(shot.inputs):
        where = ctx.at("shot", q, "input", i)
        label = item.role.replace("_", " ") if item.role not in REFERENCE_ROLES else "a reference"
        if item.asset is not None:
            need = None if item.role in REFERENCE_ROLES else ROLE_NEEDS.get(item.role)
            _check_asset_ref(ctx, out, item.asset, need, where, label)
        if item.voice is not None:
            _check_asset_ref(ctx, out, item.voice, "audio", ctx.at("shot", q, "voice", i), "a voice")
    if shot.audio is not None:
        _check_asset_ref(ctx, out, shot.audio, "audio", ctx.at("shot", q, "audio"), "a shot's audio")
    for index, role, target in shot_refs(shot):
        where = (ctx.at("shot", q, "input", index) if index >= 0
                 else ctx.at("shot", q, "needs", -1 - index))
        if target == q:
            out.error(where, f"shot '{q}' cannot depend on itself ({role})")
        elif target not in qids:
            scene_id, _, shot_id = target.partition(".")
            same = [s.id for s in ctx.spec.shots() if s.scene == scene_id]
            if same:
                hint = did_you_mean(shot_id, same)
                listing = "" if hint else f" (shots there: {allowed(same)})"
                out.error(where, f"unknown shot '{shot_id}' in scene '{scene_id}'{hint}{listing}")
            else:
                scenes = [s.id for s in ctx.spec.scenes]
                out.error(where, f"unknown scene '{scene_id}' in shot reference '{target}'"
                          f"{did_you_mean(scene_id, scenes)}")


def _check_model_rules(ctx: Context, out: _Out, shot: Shot, info: models.Model) -> None:
    q = shot.qid
    name = info.name if info.name == shot.model else f"{shot.model} ({info.name})"

    def at(f: str) -> Where:
        return ctx.at("shot", q, f)

    def via(f: str) -> str:
        return ctx.via(q, f)

    # geometry ------------------------------------------------------------
    if shot.size:
        if info.geometry != "size":
            tier, ratio = models.SIZE_TIER.get(shot.size), models.SIZE_RATIO.get(shot.size)
            out.error(at("size"), f"{name} does not take `size`{via('size')}; write "
                      f"`resolution: {tier}` and `ratio: \"{ratio}\"` instead "
                      "(they work for every model)")
        elif shot.size not in info.allowed_sizes():
            out.error(at("size"), f"size {shot.size} is not offered by {name}{via('size')}; "
                      f"allowed: {allowed(info.allowed_sizes())}")
    else:
        tier = shot.resolution or info.default_resolution
        if tier not in info.resolutions:
            out.error(at("resolution"), f"{name} does not offer {tier}{via('resolution')}; "
                      f"allowed: {allowed(info.resolutions)}")
        elif info.geometry == "size" and shot.ratio and models.size_of(tier, shot.ratio) is None:
            ok = [r for r in models.RATIOS if models.size_of(tier, r)]
            out.error(at("ratio"), f"there is no standard {tier} size with ratio {shot.ratio} "
                      f"for {name}{via('ratio')}; allowed ratios at {tier}: {allowed(ok)}")
    has_first = any(i.role == "first_frame" for i in shot.inputs)
    if shot.ratio and ctx.origin.get((q, "ratio")) != "defaults" and (
            info.kind in ("i2v", "kf2v") or (info.kind == "r2v" and has_first)):
        out.warning(at("ratio"), f"{name} ignores ratio{via('ratio')}: "
                    "the aspect follows the first frame")

    # duration --------------------------------------------------------------
    duration = shot.duration if shot.duration is not None else info.default_duration
    if shot.duration is not None and shot.duration not in info.durations:
        if info.kind == "kf2v":
            out.error(at("duration"), f"{name} makes fixed 5 s clips: duration must be 5, "
                      f"got {shot.duration}{via('duration')}; allowed: 5")
        else:
            out.error(at("duration"), f"duration {shot.duration} s is not offered by {name}"
                      f"{via('duration')}; allowed: {format_numbers(info.durations)}")

    # switches ----------------------------------------------------------------
    if shot.shot_type is not None:
        if not info.shot_type:
            hint = " (on wan2.7, describe the shots in the prompt instead)" if "2.7" in info.name else ""
            out.error(at("shot_type"), f"{name} does not take shot_type{via('shot_type')}{hint}; "
                      f"models that do: {models_with(lambda m: m.shot_type)}")
        elif shot.shot_type == "multi" and shot.prompt_extend is False:
            out.error(at("prompt_extend"), "shot_type: multi only works with prompt_extend: true"
                      f", but prompt_extend is false{via('prompt_extend')}")
    if shot.audio is not None and not info.audio_input:
        out.error(at("audio"), f"{name} takes no audio input{via('audio')}"
                  f"{' (it is silent)' if info.silent else ''}; models that do: "
                  f"{models_with(lambda m: m.audio_input)}")
    if shot.generate_audio is not None and not info.audio_switch:
        out.error(at("generate_audio"), f"{name} has no audio switch{via('generate_audio')}"
                  f"{' (it is always silent)' if info.silent else ''}; models that do: "
                  f"{models_with(lambda m: m.audio_switch)}")
    if shot.effect is not None and info.kind not in ("i2v", "kf2v"):
        out.error(at("effect"), f"effect templates belong to image-to-video models; {name} is "
                  f"{info.kind}{via('effect')}")

    # prompts ---------------------------------------------------------------------
    if not shot.prompt and info.kind in ("t2v", "r2v") and shot.effect is None:
        out.error(ctx.at("shot", q), f"shot '{q}' needs a prompt: {name} generates from text")
    if len(shot.prompt) > info.prompt_limit:
        out.warning(at("prompt"), f"prompt is {len(shot.prompt)} characters{via('prompt')}; "
                    f"the API silently truncates prompts over {info.prompt_limit} characters "
                    f"for {info.name}")
    if shot.negative_prompt and len(shot.negative_prompt) > models.NEGATIVE_PROMPT_LIMIT:
        out.warning(at("negative_prompt"), f"negative_prompt is {len(shot.negative_prompt)} "
                    f"characters{via('negative_prompt')}; the API silently truncates it over "
                    f"{models.NEGATIVE_PROMPT_LIMIT} characters")

    # takes ---------------------------------------------------------------------------
    if shot.pick > shot.takes:
        out.error(at("pick"), f"pick {shot.pick} is out of range: the shot has {shot.takes} "
                  f"take{'s' if shot.takes != 1 else ''}{via('pick')}; allowed: "
                  f"{format_numbers(range(1, shot.takes + 1))}")

    _check_inputs(ctx, out, shot, info, name, duration)


def _check_inputs(ctx: Context, out: _Out, shot: Shot, info: models.Model, name: str,
                  duration: int) -> None:
    q = shot.qid
    roles = [i.role for i in shot.inputs]

    def at_role(role: str) -> Where:
        for i, item in enumerate(shot.inputs):
            if item.role == role:
                return ctx.at("shot", q, "input", i)
        return ctx.at("shot", q)

    def field_of(role: str) -> str:
        return "references" if role in REFERENCE_ROLES else role

    shot_where = ctx.at("shot", q)
    refs = [i for i in shot.inputs if i.role in REFERENCE_ROLES]
    bad = ctx.bad_fields.get(q, set())
    if bad & {"first_frame", "last_frame", "first_clip", "references", "audio", "effect"}:
        return  # an input was already reported as malformed; its absence is not news

    if info.kind == "t2v":
        for role in dict.fromkeys(roles):
            better = ("a reference-to-video model such as wan2.7-r2v" if role in REFERENCE_ROLES
                      else "an image-to-video model such as wan2.7-i2v")
            out.error(at_role(role), f"{name} is text-to-video and takes no {field_of(role)}; "
                      f"use {better}")
        return
    if info.kind != "r2v":
        for item_role in dict.fromkeys(r for r in roles if r in REFERENCE_ROLES):
            out.error(at_role(item_role), f"{name} takes no references; references need a "
                      f"reference-to-video model ({models_with(lambda m: m.kind == 'r2v')})")
    if info.kind == "i2v":
        if info.protocol == "media":
            combo = {r for r in roles if r in FRAME_ROLES}
            if shot.audio is not None:
                combo.add("driving_audio")
            if frozenset(combo) not in models.I2V_MEDIA_COMBOS:
                valid = " | ".join("+".join(sorted(c, key=_ROLE_ORDER.index))
                                   for c in models.I2V_MEDIA_COMBOS)
                got = "+".join(sorted(combo, key=_ROLE_ORDER.index)) or "no inputs"
                out.error(shot_where, f"{name} takes one of these input combinations: {valid}; "
                          f"shot '{q}' has {got}")
        else:
            if "first_frame" not in roles:
                out.error(shot_where, f"{name} is image-to-video: shot '{q}' needs a first_frame "
                          "(an image asset, or {shot: ID, frame: last})")
            if "last_frame" in roles:
                out.error(at_role("last_frame"), f"{name} takes no last_frame; use a first+last "
                          "frame model (wan2.2-kf2v-flash, wanx2.1-kf2v-plus) or wan2.7-i2v")
            if "first_clip" in roles:
                out.error(at_role("first_clip"), f"{name} takes no first_clip; only wan2.7-i2v does")
    elif info.kind == "kf2v":
        if "first_frame" not in roles:
            out.error(shot_where, f"{name} needs a first_frame and a last_frame; shot '{q}' has "
                      "no first_frame")
        if "last_frame" not in roles and shot.effect is None:
            out.error(shot_where, f"{name} needs a first_frame and a last_frame (or an `effect`); "
                      f"shot '{q}' has no last_frame")
        if "first_clip" in roles:
            out.error(at_role("first_clip"), f"{name} takes no first_clip; only wan2.7-i2v does")
    elif info.kind == "r2v":
        if info.protocol != "media":
            for role in ("first_frame", "last_frame", "first_clip"):
                if role in roles:
                    out.error(at_role(role), f"{name} takes no {role}; give it references")
        else:
            for role in ("last_frame", "first_clip"):
                if role in roles:
                    out.error(at_role(role), f"{name} takes no {role} (only references and "
                              "an optional first_frame)")
        if not refs:
            out.error(shot_where, f"{name} is reference-to-video: shot '{q}' needs 1–"
                      f"{info.max_references} references")
        elif len(refs) > info.max_references:
            out.error(ctx.at("shot", q, "references"), f"{name} takes at most "
                      f"{info.max_references} references; shot '{q}' has {len(refs)}")
        videos = [i for i in refs if i.role == "reference_video"]
        if len(videos) > info.max_reference_videos:
            out.error(ctx.at("shot", q, "references"), f"{name} takes at most "
                      f"{info.max_reference_videos} reference videos; shot '{q}' has {len(videos)}")
        if videos and info.max_duration_with_video and duration > info.max_duration_with_video:
            out.error(ctx.at("shot", q, "duration"), f"with a reference video, {name} makes at "
                      f"most {info.max_duration_with_video} s; duration is {duration}"
                      f"{ctx.via(q, 'duration')}; allowed: "
                      f"{format_numbers(d for d in info.durations if d <= info.max_duration_with_video)}")
        if info.protocol != "media":
            for i, item in enumerate(shot.inputs):
                if item.voice is not None or item.description is not None:
                    out.error(ctx.at("shot", q, "input", i), f"{name} takes no voice or "
                              "description on references; only wan2.7-r2v does")


_ROLE_ORDER = ["first_frame", "first_clip", "last_frame", "driving_audio"]


def clip_seconds(shot: Shot) -> int | None:
    """The length of a shot's clip (None when its model is unknown)."""
    info = models.lookup(shot.model) if shot.model else None
    if info is None:
        return None
    if info.kind == "kf2v":
        return 5
    return shot.duration if shot.duration is not None else info.default_duration


def _check_transitions(ctx: Context, out: _Out) -> None:
    for scene in ctx.spec.scenes:
        t = scene.transition
        if t.type != "crossfade" or len(scene.shots) < 2:
            continue
        lengths = [(clip_seconds(s), s.qid) for s in scene.shots]
        lengths = [(d, q) for d, q in lengths if d is not None]
        if lengths:
            shortest, qid = min(lengths)
            if t.seconds >= shortest:
                out.error(ctx.at("scene", scene.id, "transition"), (
                    f"a {t.seconds:g} s crossfade is not shorter than shot '{qid}' ({shortest} s); "
                    "keep crossfades shorter than every clip they join"))


def _check_cycles(ctx: Context, out: _Out) -> None:
    shots = {s.qid: s for s in ctx.spec.shots()}
    edges: dict[str, list[tuple[str, Where]]] = {}
    for q, shot in shots.items():
        lst = []
        for index, _role, target in shot_refs(shot):
            if target in shots and target != q:
                where = (ctx.at("shot", q, "input", index) if index >= 0
                         else ctx.at("shot", q, "needs", -1 - index))
                lst.append((target, where))
        edges[q] = lst
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset] = set()
    for start in shots:
        if state.get(start):
            continue
        stack = [(start, iter(edges[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            target, where = nxt
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    out.error(where, "dependency cycle: " + " -> ".join(cycle))
            elif not state.get(target):
                state[target] = 1
                stack.append((target, iter(edges[target])))
                path.append(target)


def _check_films(ctx: Context, out: _Out) -> None:
    scene_ids = [s.id for s in ctx.spec.scenes]
    for film in ctx.spec.films:
        for i, sid in enumerate(film.scenes):
            if sid not in scene_ids:
                out.items.append(unknown_name(sid, scene_ids, ctx.at("film", film.id, "scenes", i),
                                              "scene"))
        if film.audio is not None:
            _check_asset_ref(ctx, out, film.audio.asset, "audio", ctx.at("film", film.id, "audio"),
                             "a film's audio")


def _check_outputs(ctx: Context, out: _Out) -> None:
    spec = ctx.spec
    base = ctx.base_dir or os.path.dirname(spec.file)
    outputs: list[tuple[str, Where, str]] = []
    for scene in spec.scenes:
        if scene.path:
            outputs.append((scene.path, ctx.at("scene", scene.id, "path"), f"scene '{scene.id}'"))
        for shot in scene.shots:
            if shot.path:
                outputs.append((shot.path, ctx.at("shot", shot.qid, "path"), f"shot '{shot.qid}'"))
    for film in spec.films:
        if film.path:
            outputs.append((film.path, ctx.at("film", film.id, "path"), f"film '{film.id}'"))
    seen: dict[str, str] = {}
    for path, where, owner in outputs:
        problem = path_problem(path, base, spec.root, "output path")
        if problem:
            out.error(where, problem)
            continue
        norm = os.path.normpath(os.path.join(base, path))
        if norm in seen:
            out.error(where, f"output path '{path}' of {owner} is also the output of {seen[norm]}")
        else:
            seen[norm] = owner
