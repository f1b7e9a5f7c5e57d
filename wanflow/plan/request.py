"""The exact request a shot's take would send, with every input named by content hash.

This is the single place that knows each model family's wire shape (reference §2). The
request body built here is what the DashScope backend sends — after swapping each
`sha256:<hex>` placeholder for a URL it can serve — and what the content key hashes.
Pure: no file, network or clock access.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

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

    @property
    def ref(self) -> str:
        return PLACEHOLDER + self.digest


@dataclass(frozen=True)
class Cue:
    """Where a shot's clip falls in its scene and in the first film that shows the scene, in
    seconds from their start. Preview cards show it; it is never part of a key."""

    scene_start: float
    film_start: float | None = None


@dataclass(frozen=True)
class GenRequest:
    """One generation: the body to send (inputs as placeholders) and what to expect back."""

    model: str
    endpoint: str
    body: dict
    blobs: tuple[Blob, ...]
    take: int
    duration: float        # seconds of video expected
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
    if shot.audio:
        add(asset_source(shot.audio))
    return out


def source_of(item: Input, picks: Mapping[str, int]) -> TaskId:
    """The task whose output an input of a shot is."""
    if item.ref is not None:
        return ref_source(item.ref, picks.get(item.ref.shot, 1))
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
    """(tier, width, height) the model will produce for this shot."""
    if shot.size:
        w, h = models.dimensions(shot.size)
        return models.SIZE_TIER.get(shot.size, info.default_resolution), w, h
    tier = shot.resolution or info.default_resolution
    ratio = shot.ratio or models.DEFAULT_RATIO
    size = models.size_of(tier, ratio) or models.size_of(tier, models.DEFAULT_RATIO)
    w, h = models.dimensions(size)
    return tier, w, h


def build(shot: Shot, take: int, blobs: Mapping[TaskId, Blob],
          picks: Mapping[str, int], cue: Cue | None = None) -> GenRequest:
    """The request for `take` of `shot`. `blobs` maps every source of `input_sources` to a Blob."""
    info = models.lookup(shot.model)
    if info is None:  # the checker rejects unknown models before planning
        raise ValueError(f"unknown model {shot.model!r}")
    tier, width, height = geometry(shot, info)
    duration = info.clip_seconds(shot.duration)

    inp: dict = {}
    if shot.prompt:
        inp["prompt"] = shot.prompt
    if shot.negative_prompt is not None:
        inp["negative_prompt"] = shot.negative_prompt
    if shot.effect:
        inp["template"] = shot.effect

    def blob(item_source: TaskId) -> Blob:
        return blobs[item_source]

    used: list[Blob] = []

    def ref_of(source: TaskId) -> str:
        b = blob(source)
        if b not in used:
            used.append(b)
        return b.ref

    by_role: dict[str, list[Input]] = {}
    for item in shot.inputs:
        by_role.setdefault(item.role, []).append(item)
    audio_ref = ref_of(asset_source(shot.audio)) if shot.audio else None

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
        for role, field_name in (("first_frame", "first_frame_url"), ("last_frame", "last_frame_url")):
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
        inp["media"] = media

    params: dict = {}
    if info.geometry == "size":
        params["size"] = f"{width}*{height}"
    else:
        params["resolution"] = tier
        if info.geometry == "resolution+ratio":
            params["ratio"] = shot.ratio or models.DEFAULT_RATIO
    if info.sends_duration:
        params["duration"] = duration
    params["prompt_extend"] = True if shot.prompt_extend is None else shot.prompt_extend
    params["watermark"] = bool(shot.watermark)
    seed = take_seed(shot, take)
    if seed is not None:
        params["seed"] = seed
    if info.shot_type and shot.shot_type:
        params["shot_type"] = shot.shot_type
    if info.audio_switch and shot.generate_audio is not None:
        params["audio"] = shot.generate_audio
    if shot.enable_thinking is not None:
        params["enable_thinking"] = shot.enable_thinking

    body = {"model": shot.model, "input": inp, "parameters": params}
    has_image_lead = info.kind in ("i2v", "kf2v") or "first_frame" in by_role
    return GenRequest(model=shot.model, endpoint=info.endpoint, body=body, blobs=tuple(used),
                      take=take, duration=float(duration), resolution=tier, width=width,
                      height=height, fps=info.fps,
                      aspect_from_input=has_image_lead and not shot.size,
                      label=f"{shot.qid}#{take}", cue=cue,
                      roles=tuple((item.role, blob(source_of(item, picks)).digest)
                                  for item in shot.inputs))


def substitute(value, urls: dict[str, str]):
    """`value` with every `sha256:<hex>` placeholder replaced by the URL the backend serves it at."""
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return urls[value[len(PLACEHOLDER):]]
    if isinstance(value, dict):
        return {k: substitute(v, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, urls) for v in value]
    return value
