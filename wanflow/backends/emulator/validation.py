"""Validation of a submit against the emulator's rules, model family by model family.

A submit the real service would refuse is answered as it would be (reference §5): 403
AccessDenied without the async header, 404 ModelNotFound, 400 InvalidURL on the wrong path,
400 BadRequest.* for a missing model or input, and 400 InvalidParameter with a message naming
the field and what would be valid. Unknown input and parameter keys are ignored (§1.4).
Absent size/resolution/ratio/duration take the model's defaults.

Wan 3.0 and wan2.7-videoedit add rules on lengths (reference totals, the clip to edit): the
emulator measures what it holds itself — uploaded files — and takes http(s) media it does
not fetch at their word.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import rules
from .errors import URL_ERROR, ApiError, invalid
from .rules import ModelRule

# `find_upload(key)`: the model an oss:// file was uploaded for, or None if it does not
# exist or has expired.
FindUpload = Callable[[str], str | None]


@dataclass(frozen=True)
class Measured:
    """What the emulator could learn of a medium: its length (audio, video) and size."""

    seconds: float | None
    width: int = 0
    height: int = 0


# `measure(url)`: a medium the emulator holds (an upload), measured; None for one it cannot
# look at.
Measure = Callable[[str], Measured | None]

_DATA_URI = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")


@dataclass(frozen=True)
class Submission:
    """A submit the emulator accepted: the request, and the clip it will make."""

    model: str          # as requested: a dated snapshot or alias stays as sent
    rule: ModelRule
    body: dict
    prompt: str         # truncated to the model's limit, as the service does
    width: int
    height: int
    duration: float     # seconds of the clip (whole, except when it copies an edited clip's)
    tier: str           # 480P | 720P | 1080P
    ratio: str
    prompt_extend: bool
    audible: bool       # the clip has a soundtrack
    input_seconds: float = 0.0   # input video seconds, billed with the clip (Wan 3.0, edit)


def check_submit(path: str, headers: Mapping, raw: bytes,
                 find_upload: FindUpload, measure: Measure | None = None) -> Submission:
    """Check a submit POSTed to `path` (under /api/v1); raise ApiError as the service would."""
    if (headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
        raise ApiError(403, "AccessDenied", "current user api does not support synchronous calls")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise invalid(f"The request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object with model, input, parameters.")
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise ApiError(400, "BadRequest.EmptyModel", "Required parameter(model) missing or empty.")
    rule = rules.rule_for(model)
    if rule is None:
        raise ApiError(404, "ModelNotFound", f"Model not found ({model})!")
    if path != rule.endpoint:
        raise ApiError(400, "InvalidURL", URL_ERROR)
    inp = body.get("input")
    if not isinstance(inp, dict) or not inp:
        raise ApiError(400, "BadRequest.EmptyInput", "Required input can't be empty.")
    params = body.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid("parameters must be a JSON object.")
    resolve = (headers.get("X-DashScope-OssResourceResolve") or "").strip().lower() == "enable"
    urls = _Urls(model, resolve, find_upload, measure or (lambda url: None))
    return _check_model(model, rule, body, inp, params, urls)


def _check_model(model: str, rule: ModelRule, body: dict, inp: dict, params: dict,
                 urls: _Urls) -> Submission:
    prompt = _check_prompt(model, rule, inp)
    if inp.get("audio_url") is not None:
        if not rule.audio_url:
            raise invalid(f"input.audio_url is not supported by model {model}.")
        urls.check("input.audio_url", inp["audio_url"])
    media_types = _INPUT_CHECKS[rule.inputs](model, rule, inp, urls)
    lengths = _Lengths.of(inp, urls) if rule.kind in ("omni", "edit") else _Lengths()
    tier, ratio, size = _check_geometry(model, rule, params, media_types, lengths)
    duration = _check_duration(model, rule, params, media_types, lengths)
    prompt_extend = _check_flags(model, rule, params)
    width, height = (int(side) for side in size.split("*"))
    # `audio` is a parameter only some models take; the others ignore it (§1.4).
    audible = rule.soundtrack and not (rule.audio_switch and params.get("audio") is False)
    return Submission(model=model, rule=rule, body=body, prompt=prompt, width=width,
                      height=height, duration=duration, tier=tier, ratio=ratio,
                      prompt_extend=prompt_extend, audible=audible,
                      input_seconds=lengths.billed_input(rule))


def _check_prompt(model: str, rule: ModelRule, inp: dict) -> str:
    prompt = inp.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise invalid("input.prompt must be a string.")
    prompt = (prompt or "")[: rule.prompt_limit]
    needed = rule.kind in ("t2v", "r2v", "edit") or (rule.kind == "omni" and not inp.get("media"))
    if needed and not prompt.strip() and not inp.get("template"):
        raise invalid(f"input.prompt is required for model {model}.")
    negative = inp.get("negative_prompt")
    if negative is not None and not rule.negative_prompt:
        raise invalid(f"input.negative_prompt is not supported by model {model}.")
    if negative is not None and not isinstance(negative, str):
        raise invalid("input.negative_prompt must be a string.")
    return prompt


class _Urls:
    """Checks input URLs: http(s), base64 data URIs, or oss:// files uploaded for the model."""

    def __init__(self, model: str, resolve: bool, find_upload: FindUpload, measure: Measure):
        self.model = model
        self.resolve = resolve  # X-DashScope-OssResourceResolve: enable was sent
        self.find_upload = find_upload
        self.measure = measure

    def check(self, where: str, value) -> None:
        if not isinstance(value, str) or not value:
            raise invalid(f"{where} must be a non-empty URL string.")
        if value.startswith(("http://", "https://")):
            return
        if value.startswith("data:"):
            if not _DATA_URI.match(value):
                raise invalid(f"{where} is not a valid data URI "
                              "(expected data:<mime>;base64,<data>).")
            return
        if value.startswith("oss://"):
            self._check_upload(where, value)
            return
        raise invalid(f"{where} must be an http(s)://, oss:// or data: URL, got {value[:60]!r}.")

    def _check_upload(self, where: str, url: str) -> None:
        if not self.resolve:
            raise invalid(f"{where}: oss:// URLs need the header "
                          "X-DashScope-OssResourceResolve: enable.")
        owner = self.find_upload(url[len("oss://"):])
        if owner is None:
            raise invalid(f"{where}: the file {url} does not exist or has expired.")
        if owner != self.model:
            raise invalid(f"{where}: the file {url} was uploaded for model {owner}, "
                          f"not {self.model}.")


# --------------------------------------------------------------------------- inputs
# One check per input protocol; each returns the wan2.7 media types it saw (else empty).

def _check_prompt_only(model: str, rule: ModelRule, inp: dict, urls: _Urls) -> list[str]:
    return []


def _check_img_url(model: str, rule: ModelRule, inp: dict, urls: _Urls) -> list[str]:
    if inp.get("img_url") is None:
        raise invalid(f"input.img_url is required for model {model}.")
    urls.check("input.img_url", inp["img_url"])
    return []


def _check_frames(model: str, rule: ModelRule, inp: dict, urls: _Urls) -> list[str]:
    if inp.get("first_frame_url") is None:
        raise invalid(f"input.first_frame_url is required for model {model}.")
    urls.check("input.first_frame_url", inp["first_frame_url"])
    if inp.get("last_frame_url") is not None:
        urls.check("input.last_frame_url", inp["last_frame_url"])
    elif not inp.get("template"):
        raise invalid(f"input.last_frame_url is required for model {model} "
                      "(unless input.template is set).")
    return []


def _check_references(model: str, rule: ModelRule, inp: dict, urls: _Urls) -> list[str]:
    refs, field = inp.get("reference_urls"), "input.reference_urls"
    if refs is None and inp.get("reference_video_urls") is not None:
        refs, field = inp["reference_video_urls"], "input.reference_video_urls"  # older name
    if not isinstance(refs, list) or not refs:
        raise invalid(f"input.reference_urls is required for model {model}: "
                      f"a list of 1..{rule.max_references} URLs.")
    if len(refs) > rule.max_references:
        raise invalid(f"{field} has {len(refs)} items; model {model} accepts "
                      f"1..{rule.max_references}.")
    for i, ref in enumerate(refs):
        urls.check(f"{field}[{i}]", ref)
    videos = sum(1 for ref in refs if _looks_like_video(ref))
    if videos > rule.max_reference_videos:
        raise invalid(f"{field} has {videos} videos; model {model} accepts at most "
                      f"{rule.max_reference_videos} reference videos.")
    return []


def _check_media(model: str, rule: ModelRule, inp: dict, urls: _Urls) -> list[str]:
    media = inp.get("media")
    if rule.kind == "omni" and not media:
        return []   # Wan 3.0 without media is text-to-video
    if not isinstance(media, list) or not media:
        raise invalid(f"input.media is required for model {model}: a list of "
                      "{type, url} items.")
    types: list[str] = []
    for i, item in enumerate(media):
        if not isinstance(item, dict):
            raise invalid(f"input.media[{i}] must be an object with type and url.")
        mtype = item.get("type")
        if mtype not in rules.MEDIA_TYPES:
            raise invalid(f"input.media[{i}].type {mtype!r} is not valid; allowed: "
                          + ", ".join(rules.MEDIA_TYPES) + ".")
        types.append(mtype)
        if mtype != "link":
            urls.check(f"input.media[{i}].url", item.get("url"))
        elif not str(item.get("url") or "").startswith(("http://", "https://")):
            raise invalid(f"input.media[{i}].url of a link must be an http(s) web page.")
        if item.get("reference_voice") is not None:
            urls.check(f"input.media[{i}].reference_voice", item["reference_voice"])
    if rule.kind == "i2v":
        _check_i2v_combo(model, types)
    elif rule.kind == "r2v":
        _check_r2v_media(model, rule, types)
    elif rule.kind == "omni":
        _check_wan3_media(model, types)
    elif rule.kind == "edit":
        _check_edit_media(model, types)
    return types


def _check_i2v_combo(model: str, types: list[str]) -> None:
    combo = frozenset(types)
    if len(combo) != len(types) or combo not in rules.I2V_MEDIA_COMBOS:
        allowed = "; ".join("+".join(sorted(c)) for c in rules.I2V_MEDIA_COMBOS)
        raise invalid(f"input.media types {'+'.join(types)} are not a valid combination for "
                      f"model {model}; allowed: {allowed}.")


def _check_r2v_media(model: str, rule: ModelRule, types: list[str]) -> None:
    for i, mtype in enumerate(types):
        if mtype not in rules.R2V_MEDIA_TYPES:
            raise invalid(f"input.media[{i}].type {mtype!r} is not supported by model {model}; "
                          f"allowed: {', '.join(rules.R2V_MEDIA_TYPES)}.")
    if types.count("first_frame") > 1:
        raise invalid("input.media: at most one first_frame item is allowed.")
    refs = [t for t in types if t != "first_frame"]
    if not 1 <= len(refs) <= rule.max_references:
        raise invalid(f"input.media needs 1..{rule.max_references} reference items "
                      f"for model {model}, got {len(refs)}.")


def _check_caps(model: str, types: list[str], caps: dict[str, int]) -> None:
    for i, mtype in enumerate(types):
        if mtype not in caps:
            raise invalid(f"input.media[{i}].type {mtype!r} is not supported by model {model}; "
                          f"allowed: {', '.join(caps)}.")
    for mtype, cap in caps.items():
        if types.count(mtype) > cap:
            raise invalid(f"input.media has {types.count(mtype)} {mtype} items; model {model} "
                          f"accepts at most {cap}.")


def _check_wan3_media(model: str, types: list[str]) -> None:
    _check_caps(model, types, rules.WAN3_MEDIA_CAPS)
    frames = [t for t in types if t in rules.WAN3_FRAMES]
    if frames and len(frames) < len(types):
        raise invalid("input.media: first_frame and last_frame cannot be combined with "
                      "reference_image, reference_video, reference_audio, file or link.")
    if "file" in types and "link" in types:
        raise invalid("input.media: file and link cannot be combined.")
    if "last_frame" in types and "first_frame" not in types:
        raise invalid("input.media: last_frame needs a first_frame.")


def _check_edit_media(model: str, types: list[str]) -> None:
    _check_caps(model, types, rules.VIDEOEDIT_MEDIA_CAPS)
    if "video" not in types:
        raise invalid(f"input.media needs one video item (the video to edit) for model {model}.")


@dataclass(frozen=True)
class _Lengths:
    """The lengths the emulator knows of a request's media (unknown ones count as 0)."""

    reference_video: float = 0.0
    reference_audio: float = 0.0
    source: Measured | None = None   # the video an edit takes

    @classmethod
    def of(cls, inp: dict, urls: _Urls) -> _Lengths:
        totals = {"reference_video": 0.0, "reference_audio": 0.0}
        source = None
        for item in inp.get("media") or ():
            mtype, url = item.get("type"), item.get("url")
            if mtype in totals or mtype == "video":
                measured = urls.measure(url) if isinstance(url, str) else None
                if mtype == "video":
                    source = measured
                elif measured is not None:
                    totals[mtype] += measured.seconds or 0.0
        return cls(totals["reference_video"], totals["reference_audio"], source)

    def billed_input(self, rule: ModelRule) -> float:
        """Input video seconds billed with the clip (this emulator bills them all)."""
        if rule.kind == "omni":
            return round(self.reference_video, 3)
        if rule.kind == "edit" and self.source is not None:
            return round(self.source.seconds or 0.0, 3)
        return 0.0


_INPUT_CHECKS = {"prompt": _check_prompt_only, "img_url": _check_img_url,
                 "frames": _check_frames, "references": _check_references,
                 "media": _check_media}


def _looks_like_video(url: str) -> bool:
    if url.startswith("data:"):
        return url.startswith("data:video/")
    return urlsplit(url).path.lower().endswith(_VIDEO_SUFFIXES)


# --------------------------------------------------------------------------- parameters

def _check_geometry(model: str, rule: ModelRule, params: dict, media_types: list[str],
                    lengths: _Lengths) -> tuple[str, str, str]:
    """(tier, ratio, `W*H`) of the clip, from `size` or from `resolution` (+ `ratio`)."""
    size, resolution, ratio = params.get("size"), params.get("resolution"), params.get("ratio")
    if rule.geometry == "size":
        allowed = ", ".join(rule.sizes())
        for name, value in (("resolution", resolution), ("ratio", ratio)):
            if value is not None:
                raise invalid(f"parameters.{name} is not supported by model {model}; "
                              f"use parameters.size, one of: {allowed}.")
        if size is None:
            size = rules.SIZES[(rule.default_resolution, rules.DEFAULT_RATIO)]
        if size not in rule.sizes():
            raise invalid(f"parameters.size {size!r} is not supported by model {model}; "
                          f"allowed: {allowed}.")
        return rules.SIZE_TIER[size], rules.SIZE_RATIO[size], size
    if size is not None:
        raise invalid(f"parameters.size is not supported by model {model}; use "
                      f"parameters.resolution, one of: {', '.join(rule.resolutions)}.")
    tier = rule.default_resolution if resolution is None else resolution
    if tier not in rule.resolutions:
        raise invalid(f"parameters.resolution {tier!r} is not supported by model {model}; "
                      f"allowed: {', '.join(rule.resolutions)}.")
    if rule.geometry == "resolution+ratio":
        chosen = rule.default_ratio if ratio is None else ratio
        if chosen is not None and chosen not in rule.ratios:
            raise invalid(f"parameters.ratio {chosen!r} is not supported by model {model}; "
                          f"allowed: {', '.join(rule.ratios)}.")
        if chosen is None:   # an edit keeps its video's aspect, when the emulator can see it
            source = lengths.source
            chosen = (_nearest_ratio(source.width, source.height) if source and source.width
                      else rules.DEFAULT_RATIO)
        # The emulator cannot see a first frame, so its aspect (and adaptive) is 16:9.
        ratio = (rules.DEFAULT_RATIO if "first_frame" in media_types or chosen == "adaptive"
                 else chosen)
    elif ratio is not None:
        raise invalid(f"parameters.ratio is not supported by model {model}; its aspect ratio "
                      "follows the input image.")
    else:
        ratio = rules.DEFAULT_RATIO  # i2v and kf2v follow the image; 16:9 stands in for it
    size = rules.SIZES.get((tier, ratio)) or rules.SIZES[(tier, rules.DEFAULT_RATIO)]
    return tier, ratio, size


def _nearest_ratio(width: int, height: int) -> str:
    def aspect(ratio: str) -> float:
        w, h = ratio.split(":")
        return int(w) / int(h)
    return min(rules.RATIOS[:5], key=lambda r: abs(aspect(r) - width / height))


def _check_duration(model: str, rule: ModelRule, params: dict, media_types: list[str],
                    lengths: _Lengths) -> float:
    duration = params.get("duration")
    if duration is None:
        duration = rule.default_duration
    if rule.kind == "omni":
        return _wan3_duration(model, rule, duration, lengths)
    if rule.kind == "edit":
        return _edit_duration(model, rule, duration, lengths)
    if (isinstance(duration, bool) or not isinstance(duration, int)
            or duration not in rule.durations):
        raise invalid(f"parameters.duration {duration!r} is not supported by model {model}; "
                      f"allowed: {_ranges(rule.durations)} (integer seconds).")
    if (rule.max_duration_with_video and "reference_video" in media_types
            and duration > rule.max_duration_with_video):
        raise invalid(f"parameters.duration {duration} is too long for model {model} with a "
                      f"reference_video; allowed: 2-{rule.max_duration_with_video}.")
    return duration


def _whole(duration, allowed: tuple[int, ...], extra: int) -> bool:
    return (not isinstance(duration, bool) and isinstance(duration, int)
            and (duration in allowed or duration == extra))


def _wan3_duration(model: str, rule: ModelRule, duration, lengths: _Lengths) -> float:
    if not _whole(duration, rule.durations, rules.SMART_DURATION):
        raise invalid(f"parameters.duration {duration!r} is not supported by model {model}; "
                      f"allowed: 2-30 (integer seconds) or {rules.SMART_DURATION} (the model "
                      "chooses).")
    for kind, total in (("reference_video", lengths.reference_video),
                        ("reference_audio", lengths.reference_audio)):
        if total > rules.WAN3_REFERENCE_SECONDS:
            raise invalid(f"input.media: the {kind} items last {total:g} s together; model "
                          f"{model} accepts at most {rules.WAN3_REFERENCE_SECONDS:g} s.")
    room = rules.WAN3_TOTAL_SECONDS - lengths.reference_video
    if duration == rules.SMART_DURATION:
        return float(min(rules.SMART_PICK, int(room)))
    if duration > room:
        raise invalid(f"parameters.duration {duration} is too long for model {model}: the "
                      f"reference videos last {lengths.reference_video:g} s and together "
                      f"with the output they may last at most {rules.WAN3_TOTAL_SECONDS:g} s.")
    return duration


def _edit_duration(model: str, rule: ModelRule, duration, lengths: _Lengths) -> float:
    if not _whole(duration, rule.durations, rules.SOURCE_DURATION):
        raise invalid(f"parameters.duration {duration!r} is not supported by model {model}; "
                      f"allowed: {rules.SOURCE_DURATION} (the video's length) or "
                      f"{_ranges(rule.durations)} (integer seconds).")
    seconds = lengths.source.seconds if lengths.source is not None else None
    low, high = rules.VIDEOEDIT_SOURCE_SECONDS
    if seconds is not None and not low <= seconds <= high:
        raise invalid(f"input.media: the video lasts {seconds:g} s; model {model} edits "
                      f"videos of {low:g}-{high:g} s.")
    if duration == rules.SOURCE_DURATION:
        return round(seconds, 3) if seconds is not None else 5.0
    return duration


def _check_flags(model: str, rule: ModelRule, params: dict) -> bool:
    """Check prompt_extend, watermark, audio, seed and shot_type; return prompt_extend."""
    for name in ("prompt_extend", "watermark", "audio", "enable_thinking"):
        if params.get(name) is not None and not isinstance(params[name], bool):
            raise invalid(f"parameters.{name} must be true or false.")
    setting = params.get("audio_setting")
    if rule.kind == "edit" and setting is not None and setting not in rules.AUDIO_SETTINGS:
        raise invalid(f"parameters.audio_setting {setting!r} is not valid; allowed: "
                      f"{', '.join(rules.AUDIO_SETTINGS)}.")
    prompt_extend = params.get("prompt_extend", True) is not False  # the API's default: on
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed <= rules.SEED_MAX):
        raise invalid(f"parameters.seed must be an integer in [0, {rules.SEED_MAX}].")
    shot_type = params.get("shot_type")
    if shot_type is not None:
        if not rule.shot_type:
            raise invalid(f"parameters.shot_type is not supported by model {model}.")
        if shot_type not in rules.SHOT_TYPES:
            raise invalid(f"parameters.shot_type {shot_type!r} is not valid; allowed: "
                          f"{', '.join(rules.SHOT_TYPES)}.")
        if shot_type == "multi" and rule.kind in ("t2v", "i2v") and not prompt_extend:
            raise invalid("parameters.shot_type 'multi' requires parameters.prompt_extend "
                          "to be true.")
    return prompt_extend


def _ranges(values) -> str:
    """`2-15` for a run of integers, else a comma list."""
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)
