"""The exact request a shot's take would send, with every input named by content hash.

This is the single place that knows each model family's wire shape (reference §2). The
request body built here is what the DashScope backend sends — after swapping each
`sha256:<hex>` placeholder for a URL it can serve — and what the content key hashes.
Pure: no file, network or clock access.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import models
from ..spec.nodes import Input, Shot, ShotRef
from .tasks import TaskId

PLACEHOLDER = "sha256:"


@dataclass(frozen=True)
class Blob:
    """An input medium as the request refers to it."""

    digest: str          # sha256 hex of the bytes
    mime: str            # image/png, audio/wav, video/mp4, ...
    url: str | None = None  # original https URL, when the asset is remote
    seconds: float | None = None  # length of audio or video, when measured (never keyed)

    @property
    def ref(self) -> str:
        return PLACEHOLDER + self.digest


@dataclass(frozen=True)
class Cue:
    """Where a shot's clip falls in its scene and in the first film that shows the scene, in
    seconds from their start. Preview cards show it; it is never part of a key."""

    scene_start: float | None
    film_start: float | None = None


@dataclass(frozen=True)
class GenRequest:
    """One generation: the body to send (inputs as placeholders) and what to expect back."""

    model: str
    endpoint: str
    body: dict[str, Any]   # JSON, as sent
    blobs: tuple[Blob, ...]
    take: int
    duration: float        # seconds of video expected (a stand-in when the model chooses)
    resolution: str        # tier: 480P | 720P | 1080P
    width: int
    height: int
    fps: int
    aspect_from_input: bool = False  # i2v/kf2v: the provider follows the first frame's aspect
    label: str = ""        # `scene.shot#take`, for progress lines and preview cards
    # Not sent and not keyed (the body is): what a preview card shows besides the body.
    cue: Cue | None = None
    roles: tuple[tuple[str, str], ...] = ()   # (input role, digest), in the shot's order


def asset_source(name: str) -> TaskId:
    return TaskId.asset(name)


def ref_source(ref: ShotRef, pick: int) -> TaskId:
    """Task id that produces a shot reference: a frame of, or the clip of, the picked take."""
    if ref.frame is None:
        return TaskId.gen(ref.shot, pick)
    return TaskId.frame_of(ref.shot, pick, ref.frame)


def input_sources(shot: Shot, picks: Mapping[str, int]) -> list[TaskId]:
    """Task ids whose outputs this shot sends, in a stable order (no duplicates)."""
    out: list[TaskId] = []

    def add(source: TaskId) -> None:
        if source not in out:
            out.append(source)

    for item in shot.inputs:
        add(source_of(item, picks))
        if item.voice:
            add(asset_source(item.voice))
    audio = driving_audio(shot)
    if audio:
        add(asset_source(audio))
    return out


def _model(shot: Shot) -> models.Model:
    info = models.lookup(shot.model)
    if info is None:  # the checker rejects unknown models before planning
        raise ValueError(f"unknown model {shot.model!r}")
    return info


def _sent(shot: Shot, info: models.Model, field: str) -> bool:
    """Whether a shot's field goes into its request: set, and not a parameter the model
    dropped (a dropped one can only come from `defaults`: the checker refuses the rest)."""
    return getattr(shot, field) is not None and field not in info.dropped


def driving_audio(shot: Shot) -> str | None:
    """The asset of the shot's driving audio, if its request sends one."""
    return shot.audio if _sent(shot, _model(shot), "audio") else None


def source_of(item: Input, picks: Mapping[str, int]) -> TaskId:
    """The task whose output an input of a shot is."""
    if item.ref is not None:
        return ref_source(item.ref, picks.get(item.ref.shot, 1))
    assert item.asset is not None, "an input names an asset or a shot"
    return asset_source(item.asset)


def take_seed(shot: Shot, take: int) -> int | None:
    """The seed sent for a take: the shot's seed stepped per take, or one derived from the id."""
    if shot.seed is not None:
        return (shot.seed + take - 1) % (models.SEED_MAX + 1)
    if shot.takes > 1:
        digest = hashlib.sha256(f"{shot.qid}#{take}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % (models.SEED_MAX + 1)
    return None


def geometry(shot: Shot, info: models.Model) -> tuple[str, int, int]:
    """(tier, width, height) the model will produce for this shot (16:9 stands in for an
    aspect that follows an input)."""
    if shot.size and _sent(shot, info, "size"):
        w, h = models.dimensions(shot.size)
        return models.SIZE_TIER.get(shot.size, info.default_resolution), w, h
    tier = shot.resolution or info.default_resolution
    ratio = shot.ratio or info.default_ratio or models.DEFAULT_RATIO
    size = models.size_of(tier, ratio) or models.size_of(tier, models.DEFAULT_RATIO)
    assert size is not None, f"no {models.DEFAULT_RATIO} size at {tier}"
    w, h = models.dimensions(size)
    return tier, w, h


def expected_seconds(shot: Shot, info: models.Model, source: float | None = None) -> float:
    """How long the clip should be, for the preview to render and the poller to expect:
    the model's default when the model chooses, the source's length for `source`."""
    known = info.clip_seconds(shot.duration, source)
    if known is not None:
        return float(known)
    if isinstance(info.default_duration, int):
        return float(info.default_duration)
    return float(info.longest_clip(shot.duration))


def build(shot: Shot, take: int, blobs: Mapping[TaskId, Blob],
          picks: Mapping[str, int], cue: Cue | None = None) -> GenRequest:
    """The request for `take` of `shot`. `blobs` maps every source of `input_sources` to a Blob."""
    info = _model(shot)
    tier, width, height = geometry(shot, info)
    used: list[Blob] = []

    def ref_of(source: TaskId) -> str:
        b = blobs[source]
        if b not in used:
            used.append(b)
        return b.ref

    inp = _input(shot, info, picks, ref_of)
    params = _parameters(shot, info, take, tier, width, height, inp)
    body = {"model": shot.model, "input": inp, "parameters": params}
    source = next((blobs[source_of(i, picks)].seconds for i in shot.inputs
                   if i.role == "video"), None)
    first = any(i.role == "first_frame" for i in shot.inputs)
    ratio_follows = info.kind in ("i2v", "kf2v") or (first and (
        info.kind == "r2v" or (shot.ratio or info.default_ratio) == models.ADAPTIVE))
    follows_source = info.kind == "edit" and not shot.ratio
    return GenRequest(model=shot.model, endpoint=info.endpoint, body=body, blobs=tuple(used),
                      take=take, duration=expected_seconds(shot, info, source),
                      resolution=tier, width=width, height=height, fps=info.fps,
                      aspect_from_input=(ratio_follows or follows_source) and not shot.size,
                      label=f"{shot.qid}#{take}", cue=cue,
                      roles=tuple((item.role, blobs[source_of(item, picks)].digest)
                                  for item in shot.inputs))


def _input(shot: Shot, info: models.Model, picks: Mapping[str, int],
           ref_of: Callable[[TaskId], str]) -> dict[str, Any]:
    """`input`: the prompt and the media, in the shape of the model's protocol."""
    inp: dict[str, Any] = {}
    if shot.prompt:
        inp["prompt"] = shot.prompt
    if _sent(shot, info, "negative_prompt"):
        inp["negative_prompt"] = shot.negative_prompt
    if shot.effect:
        inp["template"] = shot.effect
    by_role: dict[str, list[Input]] = {}
    for item in shot.inputs:
        by_role.setdefault(item.role, []).append(item)
    audio = driving_audio(shot)
    audio_ref = ref_of(asset_source(audio)) if audio else None

    if info.protocol == "prompt":
        if audio_ref:
            inp["audio_url"] = audio_ref
    elif info.protocol == "img_url":
        first = by_role.get("first_frame", [])
        if first:
            inp["img_url"] = ref_of(source_of(first[0], picks))
        if audio_ref:
            inp["audio_url"] = audio_ref
    elif info.protocol == "frames":
        frame_fields = (("first_frame", "first_frame_url"), ("last_frame", "last_frame_url"))
        for role, field_name in frame_fields:
            items = by_role.get(role, [])
            if items:
                inp[field_name] = ref_of(source_of(items[0], picks))
    elif info.protocol == "references":
        inp["reference_urls"] = [ref_of(source_of(i, picks)) for i in shot.inputs
                                 if i.role in ("reference_image", "reference_video")]
    elif info.protocol == "media":
        media = []
        for item in shot.inputs:
            entry = {"type": item.role, "url": ref_of(source_of(item, picks))}
            if item.voice:
                entry["reference_voice"] = ref_of(asset_source(item.voice))
            if item.description:
                entry["reference_description"] = item.description
            media.append(entry)
        if audio_ref:
            media.append({"type": "driving_audio", "url": audio_ref})
        if shot.link is not None:
            media.append({"type": "link", "url": shot.link})
        if media or info.kind != "omni":   # Wan 3.0 without media is text-to-video
            inp["media"] = media
    return inp


def _parameters(shot: Shot, info: models.Model, take: int, tier: str, width: int, height: int,
                inp: dict[str, Any]) -> dict[str, Any]:
    """`parameters`, with the API's defaults made explicit (unless sources disagree on them)."""
    params: dict[str, Any] = {}
    if info.geometry == "size":
        params["size"] = f"{width}*{height}"
    else:
        params["resolution"] = tier
        ratio = shot.ratio or info.default_ratio
        if info.geometry == "resolution+ratio" and ratio is not None:
            params["ratio"] = ratio
    if info.sends_duration:
        params["duration"] = info.wire_duration(shot.duration)
    if info.explicit_prompt_extend:
        params["prompt_extend"] = True if shot.prompt_extend is None else shot.prompt_extend
    elif shot.prompt_extend is not None:
        params["prompt_extend"] = shot.prompt_extend
    params["watermark"] = bool(shot.watermark)
    seed = take_seed(shot, take)
    if seed is not None:
        params["seed"] = seed
    if info.shot_type and shot.shot_type:
        params["shot_type"] = shot.shot_type
    if info.audio_switch and shot.generate_audio is not None:
        params["audio"] = shot.generate_audio
    if info.audio_setting:
        params["audio_setting"] = shot.audio_setting or "auto"
    reads = any(m["type"] in ("file", "link") for m in inp.get("media", ()))
    if shot.enable_thinking is not None:
        params["enable_thinking"] = shot.enable_thinking
    elif reads and models.THINKING_WITH_DOCUMENTS:
        params["enable_thinking"] = True
    return params


def substitute(value: Any, urls: Mapping[str, str]) -> Any:
    """`value` (a JSON body or part of one) with every `sha256:<hex>` placeholder replaced by
    the URL the backend serves it at."""
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return urls[value[len(PLACEHOLDER):]]
    if isinstance(value, dict):
        return {k: substitute(v, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, urls) for v in value]
    return value
