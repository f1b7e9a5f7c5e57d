"""The per-model rules of a shot: what its model takes, from the capability table of `models.py`.

Geometry (`size` vs `resolution` + `ratio`), durations (seconds, `auto`, `source`),
`shot_type`, audio, the media inputs each model family needs, reference counts, the take to
pick, the parameters a newer model dropped; warnings for prompts over the model's limit (the
API silently truncates them), for a `ratio` that image-led models ignore, and for a dropped
parameter that only comes from `defaults` (it is left out of the request). Pure: no file,
network or clock access.
"""
from __future__ import annotations

from collections.abc import Callable

from .. import models
from .context import Report, Source
from .messages import allowed, format_numbers
from .nodes import FRAME_ROLES, REFERENCE_ROLES, Input, Shot, Where

_ROLE_ORDER = ["first_frame", "first_clip", "last_frame", "driving_audio"]  # as messages list them
_FIELD_OF = {"video": "source", "file": "document"}   # roles the spec spells otherwise
# What to write instead of a parameter a newer model dropped.
_DROPPED_HINTS = {
    "negative_prompt": "say what to avoid in the prompt",
    "size": "write `resolution` and `ratio` instead",
    "shot_type": "describe the shots in the prompt instead",
    "audio": "give the audio as a reference instead (`references: [ASSET]`, "
             "cited as \"Audio 1\" in the prompt)",
}


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


def field_of(role: str) -> str:
    """The spec's key for an input role (`references`, `source`, `first_frame`, …)."""
    return "references" if role in REFERENCE_ROLES else _FIELD_OF.get(role, role)


def check_shot(shot: Shot, info: models.Model, src: Source, out: Report) -> None:
    """Every rule of `info`, the shot's model, that the shot breaks (`src`: where its parts
    were written)."""
    name = info.name if info.name == shot.model else f"{shot.model} ({info.name})"
    dropped = _check_dropped(shot, info, name, src, out)
    _check_geometry(shot, info, name, src, out, dropped)
    _check_duration(shot, info, name, src, out)
    _check_switches(shot, info, name, src, out, dropped)
    _check_prompts(shot, info, name, src, out, dropped)
    if shot.pick > shot.takes:
        out.error(src.at("pick"), f"pick {shot.pick} is out of range: the shot has {shot.takes} "
                  f"take{'s' if shot.takes != 1 else ''}{src.via('pick')}; allowed: "
                  f"{format_numbers(range(1, shot.takes + 1))}")
    _check_inputs(shot, info, name, src, out)


def _check_dropped(shot: Shot, info: models.Model, name: str, src: Source,
                   out: Report) -> set[str]:
    """Parameters the model no longer takes: refused when the shot (or its template) sets
    them, left out of the request with a warning when they come from `defaults`. Returns
    the fields found, which the other rules then leave alone."""
    found = set()
    for field in info.dropped:
        if getattr(shot, field) is None:
            continue
        found.add(field)
        what = "audio input (audio_url)" if field == "audio" else field
        if src.inherited.get(field) == "defaults":
            out.warning(src.at(field), f"{name} takes no {what} (from defaults): it is left "
                        f"out of this shot's requests")
        else:
            out.error(src.at(field), f"{name} no longer takes {what}{src.via(field)}; "
                      f"{_DROPPED_HINTS[field]}")
    return found


def _check_geometry(shot: Shot, info: models.Model, name: str, src: Source, out: Report,
                    dropped: set[str]) -> None:
    at, via = src.at, src.via
    if shot.size and "size" not in dropped:
        if info.geometry != "size":
            tier, ratio = models.SIZE_TIER.get(shot.size), models.SIZE_RATIO.get(shot.size)
            out.error(at("size"), f"{name} does not take `size`{via('size')}; write "
                      f"`resolution: {tier}` and `ratio: \"{ratio}\"` instead "
                      "(they work for every model)")
        elif shot.size not in info.allowed_sizes():
            out.error(at("size"), f"size {shot.size} is not offered by {name}{via('size')}; "
                      f"allowed: {allowed(info.allowed_sizes())}")
        return
    tier = shot.resolution or info.default_resolution
    if tier not in info.resolutions:
        out.error(at("resolution"), f"{name} does not offer {tier}{via('resolution')}; "
                  f"allowed: {allowed(info.resolutions)}")
    elif info.geometry == "size" and shot.ratio and models.size_of(tier, shot.ratio) is None:
        ok = [r for r in models.RATIOS if models.size_of(tier, r)]
        out.error(at("ratio"), f"there is no standard {tier} size with ratio {shot.ratio} "
                  f"for {name}{via('ratio')}; allowed ratios at {tier}: {allowed(ok)}")
    if info.geometry == "resolution+ratio" and shot.ratio and shot.ratio not in info.ratios:
        out.error(at("ratio"), f"{name} does not take ratio {shot.ratio}{via('ratio')}; "
                  f"allowed: {allowed(info.ratios)}")
    has_first = any(i.role == "first_frame" for i in shot.inputs)
    if shot.ratio and src.inherited.get("ratio") != "defaults" and (
            info.kind in ("i2v", "kf2v") or (info.kind == "r2v" and has_first)):
        out.warning(at("ratio"), f"{name} ignores ratio{via('ratio')}: "
                    "the aspect follows the first frame")


def _check_duration(shot: Shot, info: models.Model, name: str, src: Source,
                    out: Report) -> None:
    at, via = src.at, src.via
    requested = shot.duration
    if isinstance(requested, str):
        if requested not in info.duration_words():
            takers = models_with(lambda m: requested in m.duration_words())
            out.error(at("duration"), f"{name} does not take duration: {requested}"
                      f"{via('duration')} (only {takers} do); give whole seconds: "
                      f"{format_numbers(info.durations)}")
    elif requested is not None and requested not in info.durations:
        if info.fixed_duration is not None:
            out.error(at("duration"), f"{name} makes fixed {info.fixed_duration} s clips: "
                      f"duration must be {info.fixed_duration}, got {requested}"
                      f"{via('duration')}; allowed: {info.fixed_duration}")
        else:
            words = "".join(f" or {w}" for w in info.duration_words())
            out.error(at("duration"), f"duration {requested} s is not offered by {name}"
                      f"{via('duration')}; allowed: {format_numbers(info.durations)}{words}")


def _check_switches(shot: Shot, info: models.Model, name: str, src: Source, out: Report,
                    dropped: set[str]) -> None:
    at, via = src.at, src.via
    if shot.shot_type is not None and "shot_type" not in dropped:
        if not info.shot_type:
            hint = (" (on wan2.7, describe the shots in the prompt instead)"
                    if info.shot_text else "")
            out.error(at("shot_type"), f"{name} does not take shot_type{via('shot_type')}{hint}; "
                      f"models that do: {models_with(lambda m: m.shot_type)}")
        elif shot.shot_type == "multi" and shot.prompt_extend is False:
            out.error(at("prompt_extend"), "shot_type: multi only works with prompt_extend: true"
                      f", but prompt_extend is false{via('prompt_extend')}")
    if shot.audio is not None and "audio" not in dropped and not info.audio_input:
        out.error(at("audio"), f"{name} takes no audio input{via('audio')}"
                  f"{' (it is silent)' if info.silent else ''}; models that do: "
                  f"{models_with(lambda m: m.audio_input)}")
    if shot.generate_audio is not None and not info.audio_switch:
        out.error(at("generate_audio"), f"{name} has no audio switch{via('generate_audio')}"
                  f"{' (it is always silent)' if info.silent else ''}; models that do: "
                  f"{models_with(lambda m: m.audio_switch)}")
    if shot.audio_setting is not None and not info.audio_setting:
        out.error(at("audio_setting"), f"{name} takes no audio_setting{via('audio_setting')}; "
                  f"only {models_with(lambda m: m.audio_setting)} does")
    if shot.effect is not None and info.kind not in ("i2v", "kf2v"):
        out.error(at("effect"), f"effect templates belong to image-to-video models; {name} is "
                  f"{info.kind}{via('effect')}")
    if shot.link is not None and not info.documents:
        out.error(at("link"), f"{name} reads no web page{via('link')}; models that do: "
                  f"{models_with(lambda m: m.documents)}")
    reads = shot.link is not None or any(i.role == "file" for i in shot.inputs)
    if reads and info.documents and shot.enable_thinking is False:
        out.warning(at("enable_thinking"), f"a document or a link reportedly needs "
                    f"enable_thinking: true on {name}, but it is false{via('enable_thinking')}")


def _check_prompts(shot: Shot, info: models.Model, name: str, src: Source, out: Report,
                   dropped: set[str]) -> None:
    at, via = src.at, src.via
    has_media = bool(shot.inputs) or shot.link is not None
    needs_text = info.kind in ("t2v", "r2v", "edit") or (info.kind == "omni" and not has_media)
    if not shot.prompt and needs_text and shot.effect is None:
        why = "edits as the prompt says" if info.kind == "edit" else "generates from text"
        out.error(src.where, f"shot '{shot.qid}' needs a prompt: {name} {why}")
    if len(shot.prompt) > info.prompt_limit:
        out.warning(at("prompt"), f"prompt is {len(shot.prompt)} characters{via('prompt')}; "
                    f"the API silently truncates prompts over {info.prompt_limit} characters "
                    f"for {info.name}")
    if (shot.negative_prompt and "negative_prompt" not in dropped
            and len(shot.negative_prompt) > models.NEGATIVE_PROMPT_LIMIT):
        out.warning(at("negative_prompt"), f"negative_prompt is {len(shot.negative_prompt)} "
                    f"characters{via('negative_prompt')}; the API silently truncates it over "
                    f"{models.NEGATIVE_PROMPT_LIMIT} characters")


# --------------------------------------------------------------------------- inputs

class _Inputs:
    """A shot's inputs as the input rules read them, and where each was written."""

    def __init__(self, shot: Shot, src: Source):
        self.shot, self.src = shot, src
        self.roles = [i.role for i in shot.inputs]

    def at(self, role: str) -> Where:
        """Where the first input of `role` was written (the shot, if it has none)."""
        for i, item in enumerate(self.shot.inputs):
            if item.role == role:
                return self.src.at("input", i)
        return self.src.where

    def of(self, *roles: str) -> list[Input]:
        return [i for i in self.shot.inputs if i.role in roles]

    @property
    def references(self) -> list[Input]:
        return self.of(*REFERENCE_ROLES)


def _check_inputs(shot: Shot, info: models.Model, name: str, src: Source, out: Report) -> None:
    if src.rejected & {"first_frame", "last_frame", "first_clip", "source", "references",
                       "document", "audio", "effect"}:
        return  # an input was already reported as malformed; its absence is not news
    got = _Inputs(shot, src)
    if _foreign_inputs(got, info, name, out):
        return
    {"t2v": _check_t2v, "i2v": _check_i2v, "kf2v": _check_kf2v, "r2v": _check_r2v,
     "omni": _check_omni, "edit": _check_edit}[info.kind](got, info, name, out)


def _foreign_inputs(got: _Inputs, info: models.Model, name: str, out: Report) -> bool:
    """Inputs only another generation of models takes (a clip to edit, a document, audio
    references); True if there were any (the family's own rules are then not run)."""
    found = False
    if "video" in got.roles and info.kind != "edit":
        out.error(got.at("video"), f"{name} edits no clip: `source` belongs to "
                  f"{models_with(lambda m: m.kind == 'edit')}")
        found = True
    if "file" in got.roles and not info.documents:
        out.error(got.at("file"), f"{name} reads no document; models that do: "
                  f"{models_with(lambda m: m.documents)}")
        found = True
    if "reference_audio" in got.roles and info.takes_references \
            and not info.max_reference_audios:
        out.error(got.at("reference_audio"), f"{name} takes no audio references; models that "
                  f"do: {models_with(lambda m: m.max_reference_audios > 0)}")
        found = True
    return found


def _check_t2v(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    for role in dict.fromkeys(got.roles):
        better = (f"a reference-to-video model such as {_newest('r2v')}"
                  if role in REFERENCE_ROLES
                  else f"an image-to-video model such as {_newest('i2v')}")
        out.error(got.at(role), f"{name} is text-to-video and takes no {field_of(role)}; "
                  f"use {better}")


def _no_references(got: _Inputs, name: str, out: Report) -> None:
    for role in dict.fromkeys(r for r in got.roles if r in REFERENCE_ROLES):
        out.error(got.at(role), f"{name} takes no references; references need a "
                  f"reference-to-video model ({models_with(lambda m: m.kind == 'r2v')})")


def _check_i2v(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    shot, roles, q = got.shot, got.roles, got.shot.qid
    _no_references(got, name, out)
    media_i2v = models_with(_is_media_i2v)
    if info.protocol == "media":
        combo = {r for r in roles if r in FRAME_ROLES}
        if shot.audio is not None:
            combo.add("driving_audio")
        if frozenset(combo) not in models.I2V_MEDIA_COMBOS:
            valid = " | ".join("+".join(sorted(c, key=_ROLE_ORDER.index))
                               for c in models.I2V_MEDIA_COMBOS)
            have = "+".join(sorted(combo, key=_ROLE_ORDER.index)) or "no inputs"
            out.error(got.src.where, f"{name} takes one of these input combinations: {valid}; "
                      f"shot '{q}' has {have}")
        return
    if "first_frame" not in roles:
        out.error(got.src.where, f"{name} is image-to-video: shot '{q}' needs a first_frame "
                  "(an image asset, or {shot: ID, frame: last})")
    if "last_frame" in roles:
        out.error(got.at("last_frame"), f"{name} takes no last_frame; use a first+last "
                  f"frame model ({models_with(lambda m: m.kind == 'kf2v')}) or {media_i2v}")
    if "first_clip" in roles:
        out.error(got.at("first_clip"), f"{name} takes no first_clip; only {media_i2v} does")


def _check_kf2v(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    roles, q = got.roles, got.shot.qid
    _no_references(got, name, out)
    if "first_frame" not in roles:
        out.error(got.src.where, f"{name} needs a first_frame and a last_frame; shot '{q}' has "
                  "no first_frame")
    if "last_frame" not in roles and got.shot.effect is None:
        out.error(got.src.where, f"{name} needs a first_frame and a last_frame (or an "
                  f"`effect`); shot '{q}' has no last_frame")
    if "first_clip" in roles:
        out.error(got.at("first_clip"), f"{name} takes no first_clip; only "
                  f"{models_with(_is_media_i2v)} does")


def _check_r2v(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    shot, roles, refs, src = got.shot, got.roles, got.references, got.src
    if info.protocol != "media":
        for role in ("first_frame", "last_frame", "first_clip"):
            if role in roles:
                out.error(got.at(role), f"{name} takes no {role}; give it references")
    else:
        for role in ("last_frame", "first_clip"):
            if role in roles:
                out.error(got.at(role), f"{name} takes no {role} (only references and "
                          "an optional first_frame)")
    if not refs:
        out.error(src.where, f"{name} is reference-to-video: shot '{shot.qid}' needs 1–"
                  f"{info.max_references} references")
    elif len(refs) > info.max_references:
        out.error(src.at("references"), f"{name} takes at most {info.max_references} "
                  f"references; shot '{shot.qid}' has {len(refs)}")
    videos = got.of("reference_video")
    if len(videos) > info.max_reference_videos:
        out.error(src.at("references"), f"{name} takes at most {info.max_reference_videos} "
                  f"reference videos; shot '{shot.qid}' has {len(videos)}")
    duration = info.longest_clip(shot.duration)
    cap = info.max_duration_with_video
    if videos and cap and duration > cap:
        out.error(src.at("duration"), f"with a reference video, {name} makes at most {cap} s; "
                  f"duration is {duration}{src.via('duration')}; allowed: "
                  f"{format_numbers(d for d in info.durations if d <= cap)}")
    _voices(got, info, name, out)


def _voices(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    if _is_media_r2v(info):
        return
    for i, item in enumerate(got.shot.inputs):
        if item.voice is not None or item.description is not None:
            out.error(got.src.at("input", i), f"{name} takes no voice or description on "
                      f"references; only {models_with(_is_media_r2v)} does")


def _check_omni(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    """Wan 3.0: text only, first (+ last) frame, or references (+ a document or a link)."""
    shot, roles, src = got.shot, got.roles, got.src
    if "first_clip" in roles:
        out.error(got.at("first_clip"), f"{name} takes no first_clip; only "
                  f"{models_with(_is_media_i2v)} does")
    if "last_frame" in roles and "first_frame" not in roles:
        out.error(got.at("last_frame"), f"{name} takes a last_frame only with a first_frame")
    frames = [r for r in roles if r in ("first_frame", "last_frame")]
    others = [field_of(r) for r in roles if r in REFERENCE_ROLES or r == "file"]
    others += ["link"] * (shot.link is not None)
    if frames and others:
        out.error(got.at(frames[0]), f"{name} cannot mix {' and '.join(frames)} with "
                  f"{' or '.join(dict.fromkeys(others))} in one request; start from frames or "
                  "from references, not both")
    if "file" in roles and shot.link is not None:
        out.error(src.at("link"), f"{name} takes a document or a link, not both")
    for role, cap in (("reference_image", info.max_reference_images),
                      ("reference_video", info.max_reference_videos),
                      ("reference_audio", info.max_reference_audios)):
        count = roles.count(role)
        if cap is not None and count > cap:
            kind = role.removeprefix("reference_")
            out.error(src.at("references"), f"{name} takes at most {cap} reference {kind}s; "
                      f"shot '{shot.qid}' has {count}")
    _voices(got, info, name, out)


def _check_edit(got: _Inputs, info: models.Model, name: str, out: Report) -> None:
    """wan2.7-videoedit: one clip to edit (`source`) and up to 4 reference images."""
    shot, roles, src = got.shot, got.roles, got.src
    if "video" not in roles:
        out.error(src.where, f"{name} edits a clip: shot '{shot.qid}' needs a `source` "
                  "(a video asset, or {shot: ID} for another shot's take)")
    for role in dict.fromkeys(r for r in roles if r in FRAME_ROLES):
        out.error(got.at(role), f"{name} takes no {role}; it edits its `source`")
    for role in ("reference_video", "reference_audio"):
        if role in roles:
            out.error(got.at(role), f"{name} takes reference images only, not "
                      f"{role.removeprefix('reference_')}s")
    images = roles.count("reference_image")
    cap = info.max_reference_images
    if cap is not None and images > cap:
        out.error(src.at("references"), f"{name} takes at most {cap} reference images; shot "
                  f"'{shot.qid}' has {images}")
    _voices(got, info, name, out)
