"""The emulator's own statement of the DashScope Wan protocol rules.

Written from the protocol reference (§2 matrix, §2.5 wan2.7 media, §5 errors, §6 limits,
§7 uploads) and its Wan 3.0 delta (wan3-and-wan27-family.md: Wan 3.0, wan2.7-videoedit,
regions), deliberately independent of the client's capability table `wanflow.models`:
if the client's table states a wrong fact, its requests fail here instead of being agreed
with. Facts the reference marks uncertain (⚠) are taken as the reference states them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, timezone

# Submit paths under `/api/v1` (§1.2): kf2v models alone use the image2video path.
VIDEO_SYNTHESIS = "/services/aigc/video-generation/video-synthesis"
IMAGE2VIDEO = "/services/aigc/image2video/video-synthesis"

# `ratio` (§2.1): wan2.7 t2v and r2v take the first five; Wan 3.0 adds adaptive, the first
# frame's aspect (Wan 3.0 §1.3).
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "adaptive")
DEFAULT_RATIO = "16:9"

# The standard `W*H` of each tier and aspect (§2.2); 480P has no 4:3 or 3:4 size.
SIZES: dict[tuple[str, str], str] = {
    ("480P", "16:9"): "832*480", ("480P", "9:16"): "480*832", ("480P", "1:1"): "624*624",
    ("720P", "16:9"): "1280*720", ("720P", "9:16"): "720*1280", ("720P", "1:1"): "960*960",
    ("720P", "4:3"): "1088*832", ("720P", "3:4"): "832*1088",
    ("1080P", "16:9"): "1920*1080", ("1080P", "9:16"): "1080*1920",
    ("1080P", "1:1"): "1440*1440", ("1080P", "4:3"): "1632*1248", ("1080P", "3:4"): "1248*1632",
}
SIZE_TIER = {size: tier for (tier, _), size in SIZES.items()}
SIZE_RATIO = {size: ratio for (_, ratio), size in SIZES.items()}

# wan2.7 `input.media[].type` values the SDK knows (§2.5).
MEDIA_TYPES = ("first_frame", "last_frame", "reference_image", "reference_video",
               "reference_voice", "reference_audio", "video", "first_clip", "driving_audio",
               "file", "link")
# The only media combinations wan2.7-i2v accepts (§2.5).
I2V_MEDIA_COMBOS = (
    frozenset({"first_frame"}), frozenset({"first_frame", "driving_audio"}),
    frozenset({"first_frame", "last_frame"}),
    frozenset({"first_frame", "last_frame", "driving_audio"}),
    frozenset({"first_clip"}), frozenset({"first_clip", "last_frame"}),
)
# wan2.7-r2v: reference images and videos, plus at most one first frame (§2.3).
R2V_MEDIA_TYPES = ("reference_image", "reference_video", "first_frame")
# Wan 3.0 (Wan 3.0 §1.2): how many items of each media type a request may carry. Frames never
# come with references, a file or a link; a file never with a link; a last frame needs a
# first frame. Reference videos last at most 15 s together, so do reference audios, and the
# reference videos and the clip at most 30 s together.
WAN3_MEDIA_CAPS = {"first_frame": 1, "last_frame": 1, "reference_image": 10,
                   "reference_video": 5, "reference_audio": 5, "file": 1, "link": 1}
WAN3_FRAMES = ("first_frame", "last_frame")
WAN3_REFERENCE_SECONDS = 15.0
WAN3_TOTAL_SECONDS = 30.0
SMART_DURATION = -1      # Wan 3.0 `duration`: the model picks the length
SMART_PICK = 8           # the length this emulator picks (fits under the 30 s total)
# wan2.7-videoedit (Wan 3.0 §2): exactly one video to edit and up to 4 reference images;
# duration 0 keeps the video's length; audio_setting auto | origin.
VIDEOEDIT_MEDIA_CAPS = {"video": 1, "reference_image": 4}
VIDEOEDIT_SOURCE_SECONDS = (2.0, 10.0)
SOURCE_DURATION = 0
AUDIO_SETTINGS = ("auto", "origin")

SEED_MAX = 2147483647          # parameters.seed is 0 ... 2^31 - 1 (§2.1)
SHOT_TYPES = ("single", "multi")

# Account limits (§6): queries and lists at 20/s. Per-model submit limits are official
# only for wanx2.1 (2 in flight, 2/s); for the others the emulator assumes the figures below.
QUERY_QPS = 20.0
DEFAULT_CONCURRENCY = 5
DEFAULT_SUBMIT_RPS = 2.0

TASK_TTL_SECONDS = 24 * 3600     # task ids and result URLs live 24 h (§3.1)
UPLOAD_TTL_SECONDS = 48 * 3600   # oss:// temporary files live 48 h (§7)

# Task times carry no zone; the emulator reports Beijing time (§4.2 ⚠).
PROVIDER_TZ = timezone(timedelta(hours=8))

# Region names accepted by the emulator and their ids (§1.1, Wan 3.0 §4); temporary uploads
# exist only in Beijing (§7).
REGION_IDS = {"beijing": "cn-beijing", "singapore": "ap-southeast-1", "virginia": "us-east-1",
              "hongkong": "cn-hongkong", "tokyo": "ap-northeast-1", "frankfurt": "eu-central-1"}
REGION_ALIASES = {**{rid: name for name, rid in REGION_IDS.items()}, "intl": "singapore"}
UPLOAD_REGIONS = ("beijing",)


@dataclass(frozen=True)
class ModelRule:
    """What one Wan video model (or family of dated snapshots) accepts on the wire."""

    name: str
    kind: str                    # t2v | i2v | kf2v | r2v | omni (Wan 3.0) | edit (videoedit)
    inputs: str                  # prompt | img_url | frames | references | media
    geometry: str                # size | resolution | resolution+ratio
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, ...]   # integer seconds the model accepts
    default_duration: int
    prompt_limit: int            # characters kept; the rest is truncated, not rejected
    generation: str              # 2.1 | 2.2 | 2.6 | 3.0: picks the `usage` keys of a success
    fps: int = 30
    ratios: tuple[str, ...] = RATIOS[:5]
    default_ratio: str | None = DEFAULT_RATIO   # None: the edited video's aspect
    negative_prompt: bool = True   # takes input.negative_prompt
    audio_url: bool = False      # takes input.audio_url
    soundtrack: bool = False     # the video has sound (generated, or from the given audio)
    audio_switch: bool = False   # takes parameters.audio (false = silent)
    shot_type: bool = False      # takes parameters.shot_type
    max_references: int = 0      # r2v: reference items in total
    max_reference_videos: int = 0
    max_duration_with_video: int | None = None  # r2v: duration cap with a reference video
    concurrency: int = DEFAULT_CONCURRENCY       # tasks in flight per account
    submit_rps: float = DEFAULT_SUBMIT_RPS

    @property
    def endpoint(self) -> str:
        return IMAGE2VIDEO if self.kind == "kf2v" else VIDEO_SYNTHESIS

    def sizes(self) -> tuple[str, ...]:
        """The `W*H` values of the model's tiers, for models that take `size`."""
        return tuple(s for (tier, _), s in SIZES.items() if tier in self.resolutions)


_ALL_TIERS = ("480P", "720P", "1080P")
_HD = ("720P", "1080P")
_2_TO_15 = tuple(range(2, 16))
_2_TO_10 = tuple(range(2, 11))
_FIVE = (5,)  # fixed 5 s clips (wan2.2, most of wanx2.1); for kf2v any other value fails
# Output is 30 fps, except 24 fps for wan2.2 and wan2.5 (§2.3, ⚠ from mirrors).
_2_TO_30 = tuple(range(2, 31))


def _wan3(name: str) -> ModelRule:
    # Wan 3.0 §1: media protocol, 480P-1080P (default 1080P), ratio incl. adaptive (its
    # default), 2-30 s or -1 (default 5), 20,000-character prompts, sound unless audio:
    # false; no negative_prompt, size, shot_type or audio_url. -prime: same rules.
    return ModelRule(name, "omni", "media", "resolution+ratio", _ALL_TIERS, "1080P", _2_TO_30,
                     5, 20000, "3.0", soundtrack=True, audio_switch=True, ratios=RATIOS,
                     default_ratio="adaptive", negative_prompt=False, max_references=20,
                     max_reference_videos=5)


_RULES = (
    _wan3("wan3.0-video"),
    _wan3("wan3.0-video-prime"),
    # wan2.7-videoedit (Wan 3.0 §2): 720P/1080P, ratio optional, 2-10 s or 0.
    ModelRule("wan2.7-videoedit", "edit", "media", "resolution+ratio", _HD, "1080P", _2_TO_10,
              SOURCE_DURATION, 5000, "3.0", soundtrack=True, default_ratio=None,
              max_references=4),
    # wan2.7: resolution (+ ratio for t2v/r2v), 2-15 s, 5000-character prompts.
    ModelRule("wan2.7-t2v", "t2v", "prompt", "resolution+ratio", _HD, "1080P", _2_TO_15, 5,
              5000, "2.6", audio_url=True, soundtrack=True, audio_switch=True),
    ModelRule("wan2.7-i2v", "i2v", "media", "resolution", _HD, "1080P", _2_TO_15, 5, 5000,
              "2.6", soundtrack=True, audio_switch=True),
    ModelRule("wan2.7-r2v", "r2v", "media", "resolution+ratio", _HD, "1080P", _2_TO_15, 5,
              5000, "2.6", soundtrack=True, audio_switch=True, max_references=5,
              max_reference_videos=5, max_duration_with_video=10),
    # wan2.6: t2v and r2v take `size` (no 480P), i2v takes `resolution`; shot_type.
    ModelRule("wan2.6-t2v", "t2v", "prompt", "size", _HD, "1080P", _2_TO_15, 5, 1500, "2.6",
              audio_url=True, soundtrack=True, shot_type=True),
    ModelRule("wan2.6-i2v", "i2v", "img_url", "resolution", _HD, "1080P", _2_TO_15, 5, 1500,
              "2.6", audio_url=True, soundtrack=True, shot_type=True),
    ModelRule("wan2.6-i2v-flash", "i2v", "img_url", "resolution", _HD, "1080P", _2_TO_15, 5,
              1500, "2.6", audio_url=True, soundtrack=True, audio_switch=True, shot_type=True),
    ModelRule("wan2.6-r2v", "r2v", "references", "size", _HD, "1080P", _2_TO_10, 5, 1500,
              "2.6", soundtrack=True, audio_switch=True, shot_type=True, max_references=5,
              max_reference_videos=3),
    ModelRule("wan2.6-r2v-flash", "r2v", "references", "size", _HD, "1080P", _2_TO_10, 5,
              1500, "2.6", soundtrack=True, audio_switch=True, shot_type=True,
              max_references=5, max_reference_videos=3),
    # wan2.5 previews: all three tiers, 5 or 10 s, sound.
    ModelRule("wan2.5-t2v-preview", "t2v", "prompt", "size", _ALL_TIERS, "1080P", (5, 10), 5,
              2000, "2.2", fps=24, audio_url=True, soundtrack=True),
    ModelRule("wan2.5-i2v-preview", "i2v", "img_url", "resolution", _ALL_TIERS, "1080P",
              (5, 10), 5, 2000, "2.2", fps=24, audio_url=True, soundtrack=True),
    # wan2.2: silent, 5 s.
    ModelRule("wan2.2-t2v-plus", "t2v", "prompt", "size", ("480P", "1080P"), "1080P", _FIVE, 5,
              800, "2.2", fps=24),
    ModelRule("wan2.2-i2v-plus", "i2v", "img_url", "resolution", ("480P", "1080P"), "1080P",
              _FIVE, 5, 800, "2.2", fps=24),
    ModelRule("wan2.2-i2v-flash", "i2v", "img_url", "resolution", _ALL_TIERS, "720P", _FIVE, 5,
              800, "2.2", fps=24),
    ModelRule("wan2.2-kf2v-flash", "kf2v", "frames", "resolution", _ALL_TIERS, "720P", _FIVE, 5,
              800, "2.2", fps=24),
    # wanx2.1: silent, the only models with official quotas (2 in flight, 2 submits/s).
    ModelRule("wanx2.1-t2v-turbo", "t2v", "prompt", "size", ("480P", "720P"), "720P", _FIVE, 5,
              800, "2.1", concurrency=2, submit_rps=2.0),
    ModelRule("wanx2.1-t2v-plus", "t2v", "prompt", "size", ("720P",), "720P", _FIVE, 5, 800,
              "2.1", concurrency=2, submit_rps=2.0),
    ModelRule("wanx2.1-i2v-turbo", "i2v", "img_url", "resolution", ("480P", "720P"), "720P",
              (3, 4, 5), 5, 800, "2.1", concurrency=2, submit_rps=2.0),
    ModelRule("wanx2.1-i2v-plus", "i2v", "img_url", "resolution", ("720P",), "720P", _FIVE, 5,
              800, "2.1", concurrency=2, submit_rps=2.0),
    ModelRule("wanx2.1-kf2v-plus", "kf2v", "frames", "resolution", ("720P",), "720P", _FIVE, 5,
              800, "2.1", concurrency=2, submit_rps=2.0),
)

RULES: dict[str, ModelRule] = {rule.name: rule for rule in _RULES}
# The docs also spell the 2.1 models `wan2.1-…`; dated snapshots such as
# `wan2.7-t2v-2026-06-12` follow their family.
_ALIASES = {name.replace("wanx2.1", "wan2.1"): name for name in RULES if name.startswith("wanx")}
_SNAPSHOT = re.compile(r"^(?P<family>.+?)-\d{4}-\d{2}-\d{2}$")


def rule_for(model: str) -> ModelRule | None:
    """The rules of `model`, through aliases and dated snapshots; None for an unknown model."""
    name = _ALIASES.get(model, model)
    if name in RULES:
        return RULES[name]
    snapshot = _SNAPSHOT.match(model)
    return rule_for(snapshot.group("family")) if snapshot else None
