"""Semantic checks of a spec: what a JSON Schema cannot say.

Pure functions (no file, network or clock access) over the draft `Spec` the loader builds
and a `Context` that says where each value came from. Structural rules (types, enums,
ranges, required keys) live in `schemas/wanflow.schema.json`; the rules of each shot's model
in `model_rules.py`; this module does the rest:

- unique ids and names; references to assets, shots, scenes and templates resolve
  (with "did you mean"); a shot cannot use its own output; dependency cycles;
- assets of the right media kind for where they are used; crossfades shorter than clips;
- the lifecycle of the models used: a warning for a preview or legacy model (unless the
  spec accepts that status) and for one near or past its retirement date.

Path rules need the file system (symlinks are followed): `paths.py`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .. import models
from .context import Context, Report
from .messages import allowed, did_you_mean, suggest
from .model_rules import check_shot
from .nodes import REFERENCE_ROLES, Diagnostic, Shot, Where

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
AUDIO_EXTS = (".wav", ".mp3")
VIDEO_EXTS = (".mp4", ".mov")
_KINDS = (("image", IMAGE_EXTS), ("audio", AUDIO_EXTS), ("video", VIDEO_EXTS),
          ("document", models.DOCUMENT_EXTS))

ROLE_NEEDS = {  # what kind of medium each input role takes (references: by their kind)
    "first_frame": "image", "last_frame": "image", "first_clip": "video", "video": "video",
    "driving_audio": "audio", "file": "document",
}
_LABELS = {"video": "source", "file": "document"}   # input roles the spec spells otherwise


# --------------------------------------------------------------------------- helpers

def media_kind(path_or_url: str | None) -> str | None:
    """image | audio | video | document from the file extension (URL query and fragment
    ignored)."""
    if not path_or_url:
        return None
    tail = re.split(r"[?#]", path_or_url, maxsplit=1)[0].lower()
    for kind, exts in _KINDS:
        if tail.endswith(exts):
            return kind
    return None


def exts_of(kind: str) -> str:
    return ", ".join(dict(_KINDS)[kind])


def clip_seconds(shot: Shot) -> float | None:
    """The length of a shot's clip, when the spec alone tells it (None when its model is
    unknown, the model chooses the length, or it is the length of a clip not measured)."""
    info = models.lookup(shot.model) if shot.model else None
    return info.clip_seconds(shot.duration) if info is not None else None


def longest_clip(shot: Shot) -> int | None:
    """The longest a shot's clip can be (None when its model is unknown)."""
    info = models.lookup(shot.model) if shot.model else None
    return info.longest_clip(shot.duration) if info is not None else None


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


def template_args(template: str, declared: dict[str, Any], given: dict[str, Any],
                  where_with: Where, where_use: Where,
                  key_where: Callable[[str], Where]) -> list[Diagnostic]:
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
    names = sorted(set(known))
    hint = did_you_mean(name, names)
    listing = f" (known: {allowed(names)})" if names and not hint else ""
    return Diagnostic(where, f"unknown {kind} '{name}'{hint}{listing}{extra}")


def shot_refs(shot: Shot) -> list[tuple[str, int, str, str]]:
    """(part, index, role, qualified id) of every shot this one depends on; `part` is
    "input" (index into shot.inputs) or "needs" (index into shot.needs)."""
    out = [("input", i, item.role, item.ref.shot) for i, item in enumerate(shot.inputs)
           if item.ref is not None]
    out += [("needs", j, "needs", qid) for j, qid in enumerate(shot.needs)]
    return out


# --------------------------------------------------------------------------- the spec

def check(ctx: Context) -> list[Diagnostic]:
    """Every semantic error and warning of the draft spec."""
    out = Report()
    spec = ctx.spec
    _check_ids(ctx, out)
    _check_assets(ctx, out)
    qids = {s.qid for s in spec.shots()}
    for scene in spec.scenes:
        if scene.audio is not None:
            _check_asset_ref(ctx, out, scene.audio.asset, "audio",
                             ctx.scene(scene.id).at("audio"), "a scene's audio")
        for shot in scene.shots:
            _check_shot_refs(ctx, out, shot, qids)
            info = models.lookup(shot.model) if shot.model else None
            if ctx.shot(shot.qid).skip_model_rules:
                continue
            if info is None:
                out.error(ctx.shot(shot.qid).at("model"), f"unknown model '{shot.model}'"
                          f"{suggest(shot.model, models.model_names(), models.MODELS)}")
                continue
            check_shot(shot, info, ctx.shot(shot.qid), out)
    _check_transitions(ctx, out)
    _check_cycles(ctx, out)
    _check_films(ctx, out)
    _check_lifecycle(ctx, out)
    return out.items


def _check_ids(ctx: Context, out: Report) -> None:
    spec = ctx.spec
    out.items += unique("scene id", [(s.id, s.where) for s in spec.scenes])
    for scene in spec.scenes:
        out.items += unique("shot id", [(s.id, s.where) for s in scene.shots],
                            f" in scene '{scene.id}'")
    out.items += unique("film id", [(f.id, f.where) for f in spec.films])
    if not spec.scenes and not spec.library:
        out.error(ctx.top, "the spec has no scenes: add `scenes:` with at least one scene of shots")


def _check_assets(ctx: Context, out: Report) -> None:
    """Local assets must have a known media extension (path rules need I/O: the loader)."""
    for name, asset in ctx.spec.assets.items():
        if asset.path is not None and name not in ctx.bad_assets and media_kind(asset.path) is None:
            out.error(ctx.asset(name), (
                f"asset '{name}': cannot tell the media type of '{asset.path}'; use an image "
                f"({exts_of('image')}), audio ({exts_of('audio')}), video ({exts_of('video')}) "
                f"or document ({exts_of('document')}) file"))


def _kind_of(ctx: Context, name: str) -> str | None:
    asset = ctx.spec.assets.get(name)
    if asset is None:
        return None
    return media_kind(asset.path or asset.url)


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _check_asset_ref(ctx: Context, out: Report, name: str, need: str | None, where: Where,
                     what: str) -> None:
    """`name` must be a declared asset of media kind `need` (None: image, video or audio,
    as a reference may be)."""
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
            out.error(where, f"{what}: cannot tell whether URL asset '{name}' is an image, a "
                      "video or audio; use a URL whose path ends in a media extension")
        return
    if need is None:
        if kind not in ("image", "video", "audio"):
            out.error(where, f"{what} must be an image, a video or audio, but asset '{name}' "
                      f"is {_a(kind)}")
    elif kind != need:
        out.error(where, f"{what} must be {_a(need)} ({exts_of(need)}), but asset '{name}' is "
                  f"{_a(kind)}")


def _check_shot_refs(ctx: Context, out: Report, shot: Shot, qids: set[str]) -> None:
    q = shot.qid
    src = ctx.shot(q)
    for i, item in enumerate(shot.inputs):
        label = ("a reference" if item.role in REFERENCE_ROLES
                 else _LABELS.get(item.role, item.role.replace("_", " ")))
        if item.asset is not None:
            need = None if item.role in REFERENCE_ROLES else ROLE_NEEDS.get(item.role)
            _check_asset_ref(ctx, out, item.asset, need, src.at("input", i), label)
        if item.voice is not None:
            _check_asset_ref(ctx, out, item.voice, "audio", src.at("voice", i), "a voice")
    if shot.audio is not None:
        _check_asset_ref(ctx, out, shot.audio, "audio", src.at("audio"), "a shot's audio")
    for part, index, role, target in shot_refs(shot):
        where = src.at(part, index)
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


def _check_transitions(ctx: Context, out: Report) -> None:
    for scene in ctx.spec.scenes:
        t = scene.transition
        if t.type != "crossfade" or len(scene.shots) < 2:
            continue
        lengths = [(d, s.qid) for s in scene.shots if (d := clip_seconds(s)) is not None]
        if lengths:
            shortest, qid = min(lengths)
            if t.seconds >= shortest:
                out.error(ctx.scene(scene.id).at("transition"), (
                    f"a {t.seconds:g} s crossfade is not shorter than shot '{qid}' "
                    f"({shortest:g} s); keep crossfades shorter than every clip they join"))


def _check_cycles(ctx: Context, out: Report) -> None:
    shots = {s.qid: s for s in ctx.spec.shots()}
    edges: dict[str, list[tuple[str, Where]]] = {}
    for q, shot in shots.items():
        src = ctx.shot(q)
        edges[q] = [(target, src.at(part, index)) for part, index, _role, target in shot_refs(shot)
                    if target in shots and target != q]
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset[str]] = set()
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


def _check_films(ctx: Context, out: Report) -> None:
    scene_ids = [s.id for s in ctx.spec.scenes]
    for film in ctx.spec.films:
        src = ctx.film(film.id)
        for i, sid in enumerate(film.scenes):
            if sid not in scene_ids:
                out.items.append(unknown_name(sid, scene_ids, src.at("scenes", i), "scene"))
        if film.audio is not None:
            _check_asset_ref(ctx, out, film.audio.asset, "audio", src.at("audio"),
                             "a film's audio")


def _check_lifecycle(ctx: Context, out: Report) -> None:
    """One warning per model id the spec uses (at its first use) that is in preview, legacy
    (unless `settings.accept_status` lists that status), or retiring within
    RETIREMENT_WARNING_DAYS of today, or retired."""
    accepted = set(ctx.spec.settings.accept_status)
    first_use: dict[str, Shot] = {}
    for shot in ctx.spec.shots():
        if shot.model and not ctx.shot(shot.qid).skip_model_rules:
            first_use.setdefault(shot.model, shot)
    today = models.today()
    for name, shot in first_use.items():
        info = models.lookup(name)
        if info is None:
            continue
        where = ctx.shot(shot.qid).at("model")
        users = sum(1 for s in ctx.spec.shots() if s.model == name)
        used = f" (used by {users} shots)" if users > 1 else ""
        if info.status in (models.PREVIEW, models.LEGACY) and info.status not in accepted:
            why = ("it may change or be withdrawn" if info.status == models.PREVIEW
                   else "Alibaba lists it among the legacy video models")
            out.warning(where, f"{name} is a {info.status} model{used}: {why}; add "
                        f"`accept_status: [{info.status}]` under `settings` to use it on purpose")
        ends = models.retirement(name)
        if ends is None:
            continue
        days = (ends - today).days
        if days < 0:
            out.warning(where, f"{name} was retired on {ends.isoformat()}{used}: calls to it "
                        "fail; move to a current model")
        elif days <= models.RETIREMENT_WARNING_DAYS:
            out.warning(where, f"{name} retires on {ends.isoformat()}, in {days} days{used}; "
                        "move to a current model before then")
