"""The per-model rules of a shot: what its model takes, from the capability table of `models.py`.

Geometry (`size` vs `resolution` + `ratio`), durations, `shot_type`, audio, the media inputs
each model family needs, reference counts, the take to pick; warnings for prompts over the
model's limit (the API silently truncates them) and for a `ratio` that image-led models
ignore. Pure: no file, network or clock access.
"""
from __future__ import annotations

from collections.abc import Callable

from .. import models
from .context import Report, Source
from .messages import allowed, format_numbers
from .nodes import FRAME_ROLES, REFERENCE_ROLES, Input, Shot, Where

_ROLE_ORDER = ["first_frame", "first_clip", "last_frame", "driving_audio"]  # as messages list them


def models_with(predicate: Callable[[models.Model], bool]) -> str:
    """The names of the models that have a capability, for "models that do: …"."""
    return ", ".join(m.name for m in models.MODELS.values() if predicate(m))


def _newest(kind: str) -> str:
    """The first model of a kind in the table (the newest), to name as an example."""
    return next(m.name for m in models.MODELS.values() if m.kind == kind)


def _is_media_i2v(m: models.Model) -> bool:
    """An i2v model that takes `media` items: last frames and first clips too."""
    return m.kind == "i2v" and m.protocol == "media"


def _is_media_r2v(m: models.Model) -> bool:
    """An r2v model that takes `media` items: references with a voice and a description."""
    return m.kind == "r2v" and m.protocol == "media"


def check_shot(shot: Shot, info: models.Model, src: Source, out: Report) -> None:
    """Every rule of `info`, the shot's model, that the shot breaks (`src`: where its parts
    were written)."""
    q = shot.qid
    at, via = src.at, src.via
    name = info.name if info.name == shot.model else f"{shot.model} ({info.name})"

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
    if shot.ratio and src.inherited.get("ratio") != "defaults" and (
            info.kind in ("i2v", "kf2v") or (info.kind == "r2v" and has_first)):
        out.warning(at("ratio"), f"{name} ignores ratio{via('ratio')}: "
                    "the aspect follows the first frame")

    # duration --------------------------------------------------------------
    if shot.duration is not None and shot.duration not in info.durations:
        if info.fixed_duration is not None:
            out.error(at("duration"), f"{name} makes fixed {info.fixed_duration} s clips: "
                      f"duration must be {info.fixed_duration}, got {shot.duration}"
                      f"{via('duration')}; allowed: {info.fixed_duration}")
        else:
            out.error(at("duration"), f"duration {shot.duration} s is not offered by {name}"
                      f"{via('duration')}; allowed: {format_numbers(info.durations)}")

    # switches ----------------------------------------------------------------
    if shot.shot_type is not None:
        if not info.shot_type:
            hint = " (on wan2.7, describe the shots in the prompt instead)" if info.shot_text else ""
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
        out.error(src.where, f"shot '{q}' needs a prompt: {name} generates from text")
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

    _check_inputs(shot, info, name, src, out)


def _check_inputs(shot: Shot, info: models.Model, name: str, src: Source, out: Report) -> None:
    q = shot.qid
    roles = [i.role for i in shot.inputs]

    def at_role(role: str) -> Where:
        for i, item in enumerate(shot.inputs):
            if item.role == role:
                return src.at("input", i)
        return src.where

    def field_of(role: str) -> str:
        return "references" if role in REFERENCE_ROLES else role

    refs = [i for i in shot.inputs if i.role in REFERENCE_ROLES]
    if src.rejected & {"first_frame", "last_frame", "first_clip", "references", "audio", "effect"}:
        return  # an input was already reported as malformed; its absence is not news
    if info.kind == "t2v":
        for role in dict.fromkeys(roles):
            better = (f"a reference-to-video model such as {_newest('r2v')}"
                      if role in REFERENCE_ROLES
                      else f"an image-to-video model such as {_newest('i2v')}")
            out.error(at_role(role), f"{name} is text-to-video and takes no {field_of(role)}; "
                      f"use {better}")
        return
    if info.kind != "r2v":
        for item_role in dict.fromkeys(r for r in roles if r in REFERENCE_ROLES):
            out.error(at_role(item_role), f"{name} takes no references; references need a "
                      f"reference-to-video model ({models_with(lambda m: m.kind == 'r2v')})")
    media_i2v = models_with(_is_media_i2v)
    if info.kind == "i2v":
        if info.protocol == "media":
            combo = {r for r in roles if r in FRAME_ROLES}
            if shot.audio is not None:
                combo.add("driving_audio")
            if frozenset(combo) not in models.I2V_MEDIA_COMBOS:
                valid = " | ".join("+".join(sorted(c, key=_ROLE_ORDER.index))
                                   for c in models.I2V_MEDIA_COMBOS)
                got = "+".join(sorted(combo, key=_ROLE_ORDER.index)) or "no inputs"
                out.error(src.where, f"{name} takes one of these input combinations: {valid}; "
                          f"shot '{q}' has {got}")
        else:
            if "first_frame" not in roles:
                out.error(src.where, f"{name} is image-to-video: shot '{q}' needs a first_frame "
                          "(an image asset, or {shot: ID, frame: last})")
            if "last_frame" in roles:
                out.error(at_role("last_frame"), f"{name} takes no last_frame; use a first+last "
                          f"frame model ({models_with(lambda m: m.kind == 'kf2v')}) or "
                          f"{media_i2v}")
            if "first_clip" in roles:
                out.error(at_role("first_clip"), f"{name} takes no first_clip; only "
                          f"{media_i2v} does")
    elif info.kind == "kf2v":
        if "first_frame" not in roles:
            out.error(src.where, f"{name} needs a first_frame and a last_frame; shot '{q}' has "
                      "no first_frame")
        if "last_frame" not in roles and shot.effect is None:
            out.error(src.where, f"{name} needs a first_frame and a last_frame (or an `effect`); "
                      f"shot '{q}' has no last_frame")
        if "first_clip" in roles:
            out.error(at_role("first_clip"), f"{name} takes no first_clip; only "
                      f"{media_i2v} does")
    elif info.kind == "r2v":
        _check_references(shot, info, name, refs, at_role, src, out)


def _check_references(shot: Shot, info: models.Model, name: str, refs: list[Input],
                      at_role: Callable[[str], Where], src: Source, out: Report) -> None:
    q = shot.qid
    roles = [i.role for i in shot.inputs]
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
        out.error(src.where, f"{name} is reference-to-video: shot '{q}' needs 1–"
                  f"{info.max_references} references")
    elif len(refs) > info.max_references:
        out.error(src.at("references"), f"{name} takes at most {info.max_references} "
                  f"references; shot '{q}' has {len(refs)}")
    videos = [i for i in refs if i.role == "reference_video"]
    if len(videos) > info.max_reference_videos:
        out.error(src.at("references"), f"{name} takes at most {info.max_reference_videos} "
                  f"reference videos; shot '{q}' has {len(videos)}")
    duration = info.clip_seconds(shot.duration)
    cap = info.max_duration_with_video
    if videos and cap and duration > cap:
        out.error(src.at("duration"), f"with a reference video, {name} makes at most {cap} s; "
                  f"duration is {duration}{src.via('duration')}; allowed: "
                  f"{format_numbers(d for d in info.durations if d <= cap)}")
    if info.protocol != "media":
        for i, item in enumerate(shot.inputs):
            if item.voice is not None or item.description is not None:
                out.error(src.at("input", i), f"{name} takes no voice or description on "
                          f"references; only {models_with(_is_media_r2v)} does")
