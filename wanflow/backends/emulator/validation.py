"""Validation of a submit against the emulator's rules, model family by model family.

A submit the real service would refuse is answered as it would be (reference §5): 403
AccessDenied without the async header, 404 ModelNotFound, 400 InvalidURL on the wrong path,
400 BadRequest.* for a missing model or input, and 400 InvalidParameter with a message naming
the field and what would be valid. Unknown input and parameter keys are ignored (§1.4).
Absent size/resolution/ratio/duration take the model's defaults.
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
    duration: int
    tier: str           # 480P | 720P | 1080P
    ratio: str
    prompt_extend: bool
    audible: bool       # the clip has a soundtrack


def check_submit(path: str, headers: Mapping, raw: bytes,
                 find_upload: FindUpload) -> Submission:
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
    urls = _Urls(model, resolve, find_upload)
    return _check_model(model, rule, body, inp, params, urls)


def _check_model(model: str, rule: ModelRule, body: dict, inp: dict, params: dict,
                 urls: _Urls) -> Submission:
    prompt = _check_prompt(model, rule, inp)
    if inp.get("audio_url") is not None:
        if not rule.audio_url:
            raise invalid(f"input.audio_url is not supported by model {model}.")
        urls.check("input.audio_url", inp["audio_url"])
    media_types = _INPUT_CHECKS[rule.inputs](model, rule, inp, urls)
    tier, ratio, size = _check_geometry(model, rule, params, media_types)
    duration = _check_duration(model, rule, params, media_types)
    prompt_extend = _check_flags(model, rule, params)
    width, height = (int(side) for side in size.split("*"))
    # `audio` is a parameter only some models take; the others ignore it (§1.4).
    audible = rule.soundtrack and not (rule.audio_switch and params.get("audio") is False)
    return Submission(model=model, rule=rule, body=body, prompt=prompt, width=width,
                      height=height, duration=duration, tier=tier, ratio=ratio,
                      prompt_extend=prompt_extend, audible=audible)


def _check_prompt(model: str, rule: ModelRule, inp: dict) -> str:
    prompt = inp.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise invalid("input.prompt must be a string.")
    prompt = (prompt or "")[: rule.prompt_limit]
    if rule.kind in ("t2v", "r2v") and not prompt.strip() and not inp.get("template"):
        raise invalid(f"input.prompt is required for model {model}.")
    negative = inp.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise invalid("input.negative_prompt must be a string.")
    return prompt


class _Urls:
    """Checks input URLs: http(s), base64 data URIs, or oss:// files uploaded for the model."""

    def __init__(self, model: str, resolve: bool, find_upload: FindUpload):
        self.model = model
        self.resolve = resolve  # X-DashScope-OssResourceResolve: enable was sent
        self.find_upload = find_upload

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
        if item.get("reference_voice") is not None:
            urls.check(f"input.media[{i}].reference_voice", item["reference_voice"])
    if rule.kind == "i2v":
        _check_i2v_combo(model, types)
    elif rule.kind == "r2v":
        _check_r2v_media(model, rule, types)
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


_INPUT_CHECKS = {"prompt": _check_prompt_only, "img_url": _check_img_url,
                 "frames": _check_frames, "references": _check_references,
                 "media": _check_media}


def _looks_like_video(url: str) -> bool:
    if url.startswith("data:"):
        return url.startswith("data:video/")
    return urlsplit(url).path.lower().endswith(_VIDEO_SUFFIXES)


# --------------------------------------------------------------------------- parameters

def _check_geometry(model: str, rule: ModelRule, params: dict,
                    media_types: list[str]) -> tuple[str, str, str]:
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
        chosen = rules.DEFAULT_RATIO if ratio is None else ratio
        if chosen not in rules.RATIOS:
            raise invalid(f"parameters.ratio {chosen!r} is not supported by model {model}; "
                          f"allowed: {', '.join(rules.RATIOS)}.")
        # With a first frame the ratio is ignored; the emulator cannot see the image, so 16:9.
        ratio = rules.DEFAULT_RATIO if "first_frame" in media_types else chosen
    elif ratio is not None:
        raise invalid(f"parameters.ratio is not supported by model {model}; its aspect ratio "
                      "follows the input image.")
    else:
        ratio = rules.DEFAULT_RATIO  # i2v and kf2v follow the image; 16:9 stands in for it
    size = rules.SIZES.get((tier, ratio)) or rules.SIZES[(tier, rules.DEFAULT_RATIO)]
    return tier, ratio, size


def _check_duration(model: str, rule: ModelRule, params: dict, media_types: list[str]) -> int:
    duration = params.get("duration")
    if duration is None:
        duration = rule.default_duration
    if (isinstance(duration, bool) or not isinstance(duration, int)
            or duration not in rule.durations):
        raise invalid(f"parameters.duration {duration!r} is not supported by model {model}; "
                      f"allowed: {_ranges(rule.durations)} (integer seconds).")
    if (rule.max_duration_with_video and "reference_video" in media_types
            and duration > rule.max_duration_with_video):
        raise invalid(f"parameters.duration {duration} is too long for model {model} with a "
                      f"reference_video; allowed: 2-{rule.max_duration_with_video}.")
    return duration


def _check_flags(model: str, rule: ModelRule, params: dict) -> bool:
    """Check prompt_extend, watermark, audio, seed and shot_type; return prompt_extend."""
    for name in ("prompt_extend", "watermark", "audio"):
        if params.get(name) is not None and not isinstance(params[name], bool):
            raise invalid(f"parameters.{name} must be true or false.")
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
