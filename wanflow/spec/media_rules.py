"""The checks of input media files: each local asset a shot uses, decoded and held against
the limits of the models that use it (image sides and bytes, audio and clip lengths), and
the lengths that add up across a shot's inputs (Wan 3.0's reference totals, the clip an
edit takes) — counting another shot's clip at the length its spec gives it.

Runs only on a spec with no other errors (decoding is the slow part of validation), and
imports `wanflow.media` lazily: it pulls in PyAV and numpy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .. import models
from .checks import clip_seconds, media_kind
from .context import Context
from .model_rules import field_of
from .nodes import AudioBed, Diagnostic, Input, Shot, Spec


@dataclass
class _Use:
    """How the shots use one asset, and so which limits apply to it."""

    images: set[models.ImageLimits] = field(default_factory=set)
    voice_seconds: set[tuple[float, float]] = field(default_factory=set)  # as a reference voice
    clip_seconds: set[tuple[float, float]] = field(default_factory=set)   # first clip, edit source
    sent_as_audio: bool = False   # audio_url / driving_audio: the API's audio limits apply
    reference: bool = False       # a Wan 3.0 reference: only the totals apply to its length


def check(spec: Spec, ctx: Context) -> list[Diagnostic]:
    """A diagnostic for every used local asset that cannot be decoded or breaks a limit,
    and for every shot whose inputs are too long together."""
    uses = _uses(spec)
    if not uses and not any(_lengths_matter(s) for s in spec.shots()):
        return []
    try:
        from .. import media  # noqa: F401  (only to learn whether it can be imported)
    except Exception:  # noqa: BLE001  media support missing or broken: skip, don't fail
        return []
    out: list[Diagnostic] = []
    for name in sorted(uses):
        asset = spec.assets.get(name)
        if asset is None or not asset.file or asset.path is None:
            continue
        problems: list[str] = []
        try:
            _add_problems(problems, asset.file, media_kind(asset.path), uses[name])
        except Exception as err:  # noqa: BLE001  a broken file must not produce a traceback
            problems.append(f"cannot read the file: {err}")
        for problem in problems:
            text = str(problem).removeprefix(asset.file + ": ")
            out.append(Diagnostic(ctx.asset(name), f"asset '{name}' ({asset.path}): {text}"))
    if not out:   # totals only once every file decodes
        for shot in spec.shots():
            out += _check_lengths(spec, ctx, shot)
        out += _short_beds(spec, ctx)
    return out


def _short_beds(spec: Spec, ctx: Context) -> list[Diagnostic]:
    """A warning for every bed that ends before its scene or film and says neither
    `loop: true` nor `fade: SECONDS`: it would stop in silence, and nobody chose that."""
    from .. import media

    lengths: dict[str, float] = {}

    def bed_seconds(bed: AudioBed) -> float | None:
        asset = spec.assets.get(bed.asset)
        if asset is None or asset.file is None:
            return None   # an https bed: its length is known once fetched
        if bed.asset not in lengths:
            lengths[bed.asset] = media.media_duration(asset.file)
        return lengths[bed.asset]

    scene_seconds = {s.id: _joined([float(clip_seconds(shot) or 0) for shot in s.shots],
                                   s.transition.seconds if s.transition.type == "crossfade"
                                   else 0.0) for s in spec.scenes}
    out: list[Diagnostic] = []
    beds = [("scene", s.id, s.audio, scene_seconds[s.id], ctx.scene(s.id).at("audio"))
            for s in spec.scenes]
    beds += [("film", f.id, f.audio,
              _joined([scene_seconds.get(sid, 0.0) for sid in f.scenes],
                      f.transition.seconds if f.transition.type == "crossfade" else 0.0),
              ctx.film(f.id).at("audio")) for f in spec.films]
    for kind, ident, bed, length, where in beds:
        if bed is None or bed.loop or bed.fade is not None:
            continue
        seconds = bed_seconds(bed)
        if seconds is not None and seconds + 0.05 < length:
            out.append(Diagnostic(where, (
                f"the {kind} '{ident}' runs {length:g} s but its audio bed '{bed.asset}' only "
                f"{seconds:.2f} s: it stops in silence; say `loop: true` to repeat it or "
                "`fade: SECONDS` to fade it out"), "warning"))
    return out


def _joined(lengths: list[float], overlap: float) -> float:
    """How long clips of `lengths` last once joined with crossfades of `overlap` seconds."""
    return sum(lengths) - overlap * max(0, len(lengths) - 1)


def _uses(spec: Spec) -> dict[str, _Use]:
    uses: dict[str, _Use] = {}
    for shot in spec.shots():
        info = models.lookup(shot.model)
        for item in shot.inputs:
            if item.asset:
                use = uses.setdefault(item.asset, _Use())
                if info is not None:
                    use.images.add(info.images)
                    span = {"first_clip": info.first_clip_seconds,
                            "video": info.source_seconds}.get(item.role)
                    if span is not None:
                        use.clip_seconds.add(span)
                    use.reference |= info.reference_seconds is not None and \
                        item.role in ("reference_video", "reference_audio")
            if item.voice:
                use = uses.setdefault(item.voice, _Use())
                if info is not None and info.voice_seconds is not None:
                    use.voice_seconds.add(info.voice_seconds)
        if shot.audio:
            uses.setdefault(shot.audio, _Use()).sent_as_audio = True
    for bed in [s.audio for s in spec.scenes] + [f.audio for f in spec.films]:
        if bed is not None:
            uses.setdefault(bed.asset, _Use())
    return uses


def _add_problems(problems: list[str], file: str, kind: str | None, use: _Use) -> None:
    from .. import media

    if kind == "image":
        limits = use.images or {models.LEGACY_IMAGES}
        for lim in sorted(limits, key=lambda x: (x.min_side, x.max_side)):
            for problem in media.check_image(file, min_side=lim.min_side, max_side=lim.max_side,
                                             max_bytes=lim.max_bytes):
                if problem not in problems:
                    problems.append(problem)
    elif kind == "audio":
        audio = models.AUDIO_LIMITS
        for low, high in sorted(use.voice_seconds):
            problems += media.check_audio(file, min_seconds=low, max_seconds=high,
                                          max_bytes=audio.max_bytes)
        if use.sent_as_audio:
            problems += media.check_audio(file, min_seconds=audio.min_seconds,
                                          max_seconds=audio.max_seconds, max_bytes=audio.max_bytes)
        elif use.reference:   # its length counts in the shot's total: only that it decodes
            problems += media.check_audio(file, min_seconds=0.0, max_seconds=float("inf"),
                                          max_bytes=audio.max_bytes)
        else:
            problems += _bed_problems(file)
    elif kind == "video":
        if use.clip_seconds:
            for low, high in sorted(use.clip_seconds):
                problems += media.check_video(file, min_seconds=low, max_seconds=high)
        else:
            problems += media.check_video(file)
    elif kind == "document":
        size = os.path.getsize(file)
        if size > models.DOCUMENT_MAX_BYTES:
            problems.append(f"the document is {size} bytes, over the "
                            f"{models.DOCUMENT_MAX_BYTES} bytes the API takes")


def _bed_problems(file: str) -> list[str]:
    """A bed is mixed locally, not sent to the API: only require that it decodes."""
    from .. import media

    try:
        seconds = media.media_duration(file)
    except Exception as err:  # noqa: BLE001  whatever the decoder says, as a message
        return [f"cannot decode the audio: {err}"]
    return [] if seconds > 0 else ["the audio is empty"]


# --------------------------------------------------------------------------- lengths

def _lengths_matter(shot: Shot) -> bool:
    info = models.lookup(shot.model)
    return info is not None and (info.reference_seconds is not None
                                 or info.source_seconds is not None)


def _length_of(spec: Spec, item: Input) -> float | None:
    """How long an input is, if the spec tells: a local asset's decoded length, or the
    length another shot's spec gives its clip (None: a URL, or chosen by the model)."""
    if item.ref is not None:
        target = spec.shot(item.ref.shot)
        return clip_seconds(target) if target is not None else None
    asset = spec.assets.get(item.asset or "")
    if asset is None or asset.file is None:
        return None
    from .. import media

    return media.media_duration(asset.file)


def _check_lengths(spec: Spec, ctx: Context, shot: Shot) -> list[Diagnostic]:
    info = models.lookup(shot.model)
    if info is None or not _lengths_matter(shot):
        return []
    src = ctx.shot(shot.qid)
    out: list[Diagnostic] = []
    name = shot.model
    if info.source_seconds is not None:
        low, high = info.source_seconds
        for i, item in enumerate(shot.inputs):
            if item.role != "video" or item.ref is None:
                continue   # an asset's length is checked with the file
            seconds = _length_of(spec, item)
            if seconds is None:
                out.append(Diagnostic(src.at("input", i), (
                    f"{name} edits clips of {low:g}–{high:g} s, and the model of "
                    f"'{item.ref.shot}' chooses its length: if it makes a longer one, this "
                    "edit fails after paying for it"), "warning"))
            elif not low <= seconds <= high:
                out.append(Diagnostic(src.at("input", i), (
                    f"{name} edits clips of {low:g}–{high:g} s; the {field_of(item.role)} "
                    f"'{item.ref.shot}' is {seconds:g} s")))
    cap = info.reference_seconds
    if cap is None:
        return out
    totals: dict[str, float] = {}
    for item in shot.inputs:
        if item.role in ("reference_video", "reference_audio"):
            seconds = _length_of(spec, item)
            totals[item.role] = totals.get(item.role, 0.0) + (seconds or 0.0)
    for role, total in totals.items():
        if total > cap:
            kind = role.removeprefix("reference_")
            out.append(Diagnostic(src.at("references"), (
                f"the reference {kind}s of shot '{shot.qid}' last {total:g} s together; "
                f"{name} takes at most {cap:g} s of reference {kind}")))
    videos, clip = totals.get("reference_video", 0.0), info.clip_seconds(shot.duration)
    limit = info.max_seconds_with_references
    if limit is not None and videos and clip is not None and videos + clip > limit:
        out.append(Diagnostic(src.at("duration"), (
            f"{name} makes at most {limit} s with its reference videos: they last {videos:g} s "
            f"and the clip {clip:g} s{src.via('duration')}; shorten one of them")))
    return out
