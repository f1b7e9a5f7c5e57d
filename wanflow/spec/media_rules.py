"""The checks of input media files: each local asset a shot uses, decoded and held against
the limits of the models that use it (image sides and bytes, audio and clip lengths).

Runs only on a spec with no other errors (decoding is the slow part of validation), and
imports `wanflow.media` lazily: it pulls in PyAV and numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import models
from .checks import clip_seconds, media_kind
from .context import Context
from .nodes import AudioBed, Diagnostic, Spec


@dataclass
class _Use:
    """How the shots use one asset, and so which limits apply to it."""

    images: set[models.ImageLimits] = field(default_factory=set)
    voice_seconds: set[tuple[float, float]] = field(default_factory=set)  # as a reference voice
    clip_seconds: set[tuple[float, float]] = field(default_factory=set)   # as a first clip
    sent_as_audio: bool = False   # audio_url / driving_audio: the API's audio limits apply


def check(spec: Spec, ctx: Context) -> list[Diagnostic]:
    """A diagnostic for every used local asset that cannot be decoded or breaks a limit."""
    uses = _uses(spec)
    if not uses:
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
    if not out:
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
                if (item.role == "first_clip" and info is not None
                        and info.first_clip_seconds is not None):
                    use.clip_seconds.add(info.first_clip_seconds)
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
        else:
            problems += _bed_problems(file)
    elif kind == "video":
        if use.clip_seconds:
            for low, high in sorted(use.clip_seconds):
                problems += media.check_video(file, min_seconds=low, max_seconds=high)
        else:
            problems += media.check_video(file)


def _bed_problems(file: str) -> list[str]:
    """A bed is mixed locally, not sent to the API: only require that it decodes."""
    from .. import media

    try:
        seconds = media.media_duration(file)
    except Exception as err:  # noqa: BLE001  whatever the decoder says, as a message
        return [f"cannot decode the audio: {err}"]
    return [] if seconds > 0 else ["the audio is empty"]
