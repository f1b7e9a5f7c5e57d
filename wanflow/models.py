"""What each Wan model accepts: the per-model capability table, standard sizes, regions and
hosts, lifecycle, quotas and prices.

Every fact about the provider that wanflow relies on lives here, so that when the API changes
(or a fact marked ⚠ in the reference turns out wrong) there is one place to edit. The spec
checker, the request builder, the DashScope backend and the cost estimate read this table
(the emulator states the protocol on its own, on purpose). "the reference" is
shared/reference/dashscope-wan-api.md; "the Wan 3.0 reference" is
shared/reference/wan3-and-wan27-family.md, whose tags ([ALI], [COMFY], [3P]) are repeated
where a fact comes from it.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

# Submit paths, relative to the region's `/api/v1` base.
VIDEO_SYNTHESIS = "services/aigc/video-generation/video-synthesis"
IMAGE2VIDEO = "services/aigc/image2video/video-synthesis"  # kf2v models only

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
ADAPTIVE = "adaptive"      # Wan 3.0: keep the first frame's aspect [ALI][COMFY]
RATIOS = ASPECT_RATIOS + (ADAPTIVE,)   # every `ratio` some model takes
DEFAULT_RATIO = "16:9"     # what the API assumes when a ratio-taking model gets none
RESOLUTIONS = ("480P", "720P", "1080P")

# Standard `W*H` for each tier and ratio (reference §2.2). 480P has no 4:3 / 3:4 size.
SIZES: dict[tuple[str, str], str] = {
    ("480P", "16:9"): "832*480", ("480P", "9:16"): "480*832", ("480P", "1:1"): "624*624",
    ("720P", "16:9"): "1280*720", ("720P", "9:16"): "720*1280", ("720P", "1:1"): "960*960",
    ("720P", "4:3"): "1088*832", ("720P", "3:4"): "832*1088",
    ("1080P", "16:9"): "1920*1080", ("1080P", "9:16"): "1080*1920", ("1080P", "1:1"): "1440*1440",
    ("1080P", "4:3"): "1632*1248", ("1080P", "3:4"): "1248*1632",
}
SIZE_TIER = {size: tier for (tier, _), size in SIZES.items()}
SIZE_RATIO = {size: ratio for (_, ratio), size in SIZES.items()}

# wan2.7 media item types the SDK knows (reference §2.5).
MEDIA_TYPES = ("first_frame", "last_frame", "reference_image", "reference_video",
               "reference_voice", "reference_audio", "video", "first_clip", "driving_audio",
               "file", "link")
# Documents Wan 3.0 takes as its `file` medium (⚠ the formats are not documented; ≤100 MB [3P]).
DOCUMENT_EXTS = (".pdf", ".docx")
DOCUMENT_MAX_BYTES = 100 * 1024 * 1024
# A document or web page (`file`/`link`) reportedly needs enable_thinking on (⚠ [3P]): it is
# sent as true unless the spec says otherwise.
THINKING_WITH_DOCUMENTS = True
# Valid media combinations of wan2.7-i2v (⚠ from two mirrors that agree).
I2V_MEDIA_COMBOS = (
    frozenset({"first_frame"}), frozenset({"first_frame", "driving_audio"}),
    frozenset({"first_frame", "last_frame"}),
    frozenset({"first_frame", "last_frame", "driving_audio"}),
    frozenset({"first_clip"}), frozenset({"first_clip", "last_frame"}),
)


@dataclass(frozen=True)
class ImageLimits:
    min_side: int = 360
    max_side: int = 2000
    max_bytes: int = 10 * 1024 * 1024


WAN27_IMAGES = ImageLimits(min_side=240, max_side=8000, max_bytes=20 * 1024 * 1024)  # ⚠ mirrors
LEGACY_IMAGES = ImageLimits()


@dataclass(frozen=True)
class AudioLimits:
    min_seconds: float = 3.0  # ⚠ some wan2.7 mirrors say 2 s
    max_seconds: float = 30.0
    max_bytes: int = 15 * 1024 * 1024


AUDIO_LIMITS = AudioLimits()


# Spec words for a duration the request does not give in seconds.
AUTO = "auto"       # Wan 3.0: the model chooses the length
SOURCE = "source"   # wan2.7-videoedit: as long as the clip it edits

# Lifecycle (Wan 3.0 reference §5): GA, preview (may change or be withdrawn), legacy
# (superseded: Alibaba moved the 2.1–2.6 docs under "legacy video models" on 2026-10-11).
GA, PREVIEW, LEGACY = "GA", "preview", "legacy"


@dataclass(frozen=True)
class Model:
    """Capabilities of one Wan video model (or family of dated snapshots)."""

    name: str
    kind: str              # t2v | i2v | kf2v | r2v | omni (Wan 3.0: text, frames or
                           # references) | edit (wan2.7-videoedit: restyle a clip)
    protocol: str          # prompt | img_url | frames | references | media  (how inputs are sent)
    geometry: str          # size | resolution | resolution+ratio
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, ...]
    default_duration: int | str   # seconds, or SOURCE
    prompt_limit: int      # characters; the API silently truncates beyond it (⚠ mirrors)
    fps: int = 30          # ⚠ some mirrors say 24 for 2.2/2.5
    status: str = GA       # GA | preview | legacy
    snapshots: tuple[str, ...] = ()   # dated ids in use (any `NAME-YYYY-MM-DD` is accepted)
    ratios: tuple[str, ...] = ASPECT_RATIOS   # resolution+ratio models
    default_ratio: str | None = DEFAULT_RATIO  # None: not sent (the clip keeps its source's)
    auto_duration: int | None = None     # what `duration: auto` is sent as
    source_duration: int | None = None   # what `duration: source` is sent as
    source_seconds: tuple[float, float] | None = None  # length of the clip an edit takes
    audio_input: bool = False     # accepts user audio (audio_url / driving_audio)
    auto_audio: bool = False      # generates a soundtrack when no audio is given
    audio_switch: bool = False    # takes parameters.audio (false = silent)
    audio_setting: bool = False   # takes parameters.audio_setting auto|origin (videoedit)
    shot_type: bool = False       # takes parameters.shot_type single|multi
    max_references: int = 0       # reference items in total
    max_reference_images: int | None = None   # None: only the total applies
    max_reference_videos: int = 0
    max_reference_audios: int = 0
    reference_seconds: float | None = None    # total length of the reference videos, and of
                                              # the reference audios (each kind apart)
    max_seconds_with_references: int | None = None  # reference-video seconds + the clip
    max_duration_with_video: int | None = None  # r2v: duration cap when a reference video is given
    frames_with_references: bool = True   # a first frame may come with references
    documents: bool = False       # takes a `file` (document) or a `link` (web page)
    dropped: tuple[str, ...] = () # spec fields of older models this one no longer takes
    explicit_prompt_extend: bool = True   # send the API's default (true) when unset
    workspace_only: bool = False  # documented on workspace hosts only
    input_billing: str = "none"   # reference/source video seconds billed: none | all | capped
    fixed_duration: int | None = None   # kf2v: always this long, and `duration` is not sent
    voice_seconds: tuple[float, float] | None = None       # reference_voice length (wan2.7-r2v, ⚠)
    first_clip_seconds: tuple[float, float] | None = None  # first_clip length (wan2.7-i2v, ⚠)
    images: ImageLimits = LEGACY_IMAGES
    concurrency: int = 5          # default in-flight tasks per account (⚠ unknown for wan2.2+)
    submit_rps: float = 2.0       # default submissions per second (⚠ unknown for wan2.2+)

    @property
    def endpoint(self) -> str:
        return IMAGE2VIDEO if self.kind == "kf2v" else VIDEO_SYNTHESIS

    @property
    def sends_duration(self) -> bool:
        return self.fixed_duration is None

    def duration_words(self) -> tuple[str, ...]:
        """The words `duration` may be instead of seconds (`auto`, `source`)."""
        return tuple(word for word, value in ((AUTO, self.auto_duration),
                                              (SOURCE, self.source_duration))
                     if value is not None)

    def wire_duration(self, requested: int | str | None) -> int:
        """What `parameters.duration` carries for a spec's `duration`."""
        chosen = self.default_duration if requested is None else requested
        if chosen == AUTO and self.auto_duration is not None:
            return self.auto_duration
        if chosen == SOURCE and self.source_duration is not None:
            return self.source_duration
        assert isinstance(chosen, int), f"{self.name} takes no duration {chosen!r}"
        return chosen

    def clip_seconds(self, requested: int | str | None,
                     source: float | None = None) -> float | None:
        """The length of the clip this model makes when asked for `requested`: None while
        it cannot be known (the model chooses it; the source clip is not measured yet)."""
        if self.fixed_duration is not None:
            return self.fixed_duration
        chosen = self.default_duration if requested is None else requested
        if chosen == AUTO:
            return None
        if chosen == SOURCE:
            return source
        return int(chosen)

    def longest_clip(self, requested: int | str | None) -> int:
        """The longest clip `requested` can give: what a budget counts until the clip exists."""
        known = self.clip_seconds(requested)
        if known is not None:
            return int(known)
        if (self.default_duration if requested is None else requested) == SOURCE \
                and self.source_seconds is not None:
            return int(self.source_seconds[1])
        return max(self.durations)

    @property
    def silent(self) -> bool:
        return not (self.audio_input or self.auto_audio)

    @property
    def shot_text(self) -> bool:
        """Multi-shot is written as timestamped shot text in the prompt, not `shot_type`."""
        return self.name.startswith(("wan2.7", "wan3"))

    @property
    def takes_references(self) -> bool:
        return self.max_references > 0

    def allowed_sizes(self) -> tuple[str, ...]:
        return tuple(s for (tier, _), s in SIZES.items() if tier in self.resolutions)


_2_to_15 = tuple(range(2, 16))
_2_to_10 = tuple(range(2, 11))
_2_to_30 = tuple(range(2, 31))


def _wan3(name: str) -> Model:
    """Wan 3.0 (Wan 3.0 reference §1): one model for text, first/last frames and references.
    `-prime` has the same capabilities, faster and dearer [ALI][COMFY]."""
    return Model(
        name, "omni", "media", "resolution+ratio", RESOLUTIONS,
        default_resolution="1080P",   # ⚠ [COMFY][3P]
        durations=_2_to_30, default_duration=5,   # ⚠ default [COMFY][3P]
        prompt_limit=20000,           # [COMFY][3P]; excess truncated
        status=PREVIEW,               # ⚠ [ALI] API reference says preview; 3P claim GA
        ratios=RATIOS, default_ratio=ADAPTIVE,   # ⚠ default [COMFY][3P]
        auto_duration=-1,             # "smart duration" [COMFY][3P]
        auto_audio=True, audio_switch=True,      # `audio`, default true [COMFY]
        max_references=20, max_reference_images=10, max_reference_videos=5,
        max_reference_audios=5,       # [ALI] ≤20 assets; per-type caps [COMFY]
        reference_seconds=15.0,       # total per kind [COMFY]
        max_seconds_with_references=30,   # reference-video seconds + output ≤ 30 [COMFY]
        frames_with_references=False,     # request fails when mixed [COMFY][3P]
        documents=True,
        # ⚠ [COMFY][3P]; `audio` is the spec's name for audio_url
        dropped=("negative_prompt", "size", "shot_type", "audio"),
        # ⚠ sources conflict on prompt_extend (and on enable_thinking): send only when set
        explicit_prompt_extend=False,
        workspace_only=True,          # ⚠ only workspace hosts are listed [ALI]
        input_billing="all",          # ⚠ [3P]: billed seconds likely include input video
        images=WAN27_IMAGES)


_TABLE = (
    _wan3("wan3.0-video"),
    _wan3("wan3.0-video-prime"),
    # Wan 3.0 reference §2. ⚠ resolution default, source length, ratio list: [COMFY][3P].
    Model("wan2.7-videoedit", "edit", "media", "resolution+ratio", ("720P", "1080P"), "1080P",
          _2_to_10, SOURCE, 5000, auto_audio=True, audio_setting=True, default_ratio=None,
          source_duration=0, source_seconds=(2.0, 10.0), max_references=4,
          max_reference_images=4, input_billing="all",   # ⚠ input seconds possibly billed
          images=WAN27_IMAGES),
    Model("wan2.7-t2v", "t2v", "prompt", "resolution+ratio", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 5000, audio_input=True, auto_audio=True, audio_switch=True,
          images=WAN27_IMAGES, snapshots=("wan2.7-t2v-2026-04-25", "wan2.7-t2v-2026-06-12")),
    Model("wan2.7-i2v", "i2v", "media", "resolution", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 5000, audio_input=True, auto_audio=True, audio_switch=True,
          images=WAN27_IMAGES, first_clip_seconds=(2.0, 10.0),
          snapshots=("wan2.7-i2v-2026-04-25",)),
    Model("wan2.7-r2v", "r2v", "media", "resolution+ratio", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 5000, auto_audio=True, audio_switch=True, max_references=5,
          max_reference_videos=5, max_duration_with_video=10, images=WAN27_IMAGES,
          voice_seconds=(1.0, 10.0), input_billing="all", snapshots=("wan2.7-r2v-2026-06-12",)),
    Model("wan2.6-t2v", "t2v", "prompt", "size", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 1500, audio_input=True, auto_audio=True, shot_type=True, status=LEGACY),
    Model("wan2.6-i2v", "i2v", "img_url", "resolution", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 1500, audio_input=True, auto_audio=True, shot_type=True, status=LEGACY),
    Model("wan2.6-i2v-flash", "i2v", "img_url", "resolution", ("720P", "1080P"), "1080P",
          _2_to_15, 5, 1500, audio_input=True, auto_audio=True, audio_switch=True,
          shot_type=True, status=LEGACY),
    Model("wan2.6-r2v", "r2v", "references", "size", ("720P", "1080P"), "1080P",
          _2_to_10, 5, 1500, auto_audio=True, audio_switch=True, shot_type=True,
          max_references=5, max_reference_videos=3, input_billing="capped", status=LEGACY),
    Model("wan2.6-r2v-flash", "r2v", "references", "size", ("720P", "1080P"), "1080P",
          _2_to_10, 5, 1500, auto_audio=True, audio_switch=True, shot_type=True,
          max_references=5, max_reference_videos=3, input_billing="capped", status=LEGACY),
    Model("wan2.5-t2v-preview", "t2v", "prompt", "size", RESOLUTIONS, "1080P", (5, 10), 5, 2000,
          audio_input=True, auto_audio=True, fps=24, status=LEGACY),
    Model("wan2.5-i2v-preview", "i2v", "img_url", "resolution", RESOLUTIONS, "1080P", (5, 10), 5,
          2000, audio_input=True, auto_audio=True, fps=24, status=LEGACY),
    Model("wan2.2-t2v-plus", "t2v", "prompt", "size", ("480P", "1080P"), "1080P", (5,), 5, 800,
          fps=24, status=LEGACY),
    Model("wan2.2-i2v-plus", "i2v", "img_url", "resolution", ("480P", "1080P"), "1080P", (5,), 5,
          800, fps=24, status=LEGACY),
    Model("wan2.2-i2v-flash", "i2v", "img_url", "resolution", RESOLUTIONS, "720P", (5,), 5, 800,
          fps=24, status=LEGACY),
    Model("wan2.2-kf2v-flash", "kf2v", "frames", "resolution", RESOLUTIONS, "720P", (5,), 5, 800,
          fps=24, fixed_duration=5, status=LEGACY),
    Model("wanx2.1-t2v-turbo", "t2v", "prompt", "size", ("480P", "720P"), "720P", (5,), 5, 800,
          concurrency=2, submit_rps=2, status=LEGACY),
    Model("wanx2.1-t2v-plus", "t2v", "prompt", "size", ("720P",), "720P", (5,), 5, 800,
          concurrency=2, submit_rps=2, status=LEGACY),
    Model("wanx2.1-i2v-turbo", "i2v", "img_url", "resolution", ("480P", "720P"), "720P",
          (3, 4, 5), 5, 800, concurrency=2, submit_rps=2, status=LEGACY),
    Model("wanx2.1-i2v-plus", "i2v", "img_url", "resolution", ("720P",), "720P", (5,), 5, 800,
          concurrency=2, submit_rps=2, status=LEGACY),
    Model("wanx2.1-kf2v-plus", "kf2v", "frames", "resolution", ("720P",), "720P", (5,), 5, 800,
          fixed_duration=5, concurrency=2, submit_rps=2, status=LEGACY),
)

MODELS: dict[str, Model] = {m.name: m for m in _TABLE}
# The docs also spell the 2.1 models `wan2.1-…`.
ALIASES = {m.name.replace("wanx2.1", "wan2.1"): m.name for m in _TABLE if m.name.startswith("wanx")}
# Dated snapshots, e.g. `wan2.7-t2v-2026-06-12`, share their family's capabilities.
_SNAPSHOT = re.compile(r"^(?P<base>.+?)-\d{4}-\d{2}-\d{2}$")


def lookup(name: str) -> Model | None:
    """The capabilities of `name`, resolving aliases and dated snapshots; None if unknown."""
    if name in MODELS:
        return MODELS[name]
    if name in ALIASES:
        return MODELS[ALIASES[name]]
    m = _SNAPSHOT.match(name)
    if m:
        return lookup(m.group("base"))
    return None


# ---- lifecycle (Wan 3.0 reference §5) ------------------------------------------------------
# A dated snapshot is retired after a 30-day notice, a mainline id after three months; calls
# fail after retirement [ALI]. Dates by model or snapshot id, "YYYY-MM-DD". None is published
# for any Wan model yet (⚠ a 2026-10-14 wan2.6 retirement circulates but no source has it).
RETIREMENTS: dict[str, str] = {}
RETIREMENT_WARNING_DAYS = 30


def today() -> datetime.date:
    """Today's date, for retirement warnings (the one place the clock is read; tests set it)."""
    return datetime.date.today()


def retirement(name: str) -> datetime.date | None:
    """When `name` (a model, alias or snapshot id) stops working, if a date is published:
    its own date, else its family's."""
    info = lookup(name)
    for candidate in (name, info.name if info else None):
        if candidate and candidate in RETIREMENTS:
            return datetime.date.fromisoformat(RETIREMENTS[candidate])
    return None



def model_names() -> tuple[str, ...]:
    return tuple(MODELS) + tuple(ALIASES)


def size_of(resolution: str, ratio: str) -> str | None:
    return SIZES.get((resolution, ratio))


def dimensions(size: str) -> tuple[int, int]:
    w, h = size.split("*")
    return int(w), int(h)


# ---- regions and hosts (reference §1.1, Wan 3.0 reference §4) ------------------------------


@dataclass(frozen=True)
class Region:
    """A DashScope region: its id, its classic host, and what it offers."""

    name: str                   # as wanflow spells it: beijing
    id: str                     # as Alibaba spells it: cn-beijing
    classic_host: str | None    # the shared `dashscope*` host; None: workspace hosts only
    currency: str               # of its list prices
    uploads: bool = False       # temporary storage for local files (getPolicy + OSS)

    @property
    def classic_url(self) -> str | None:
        return f"https://{self.classic_host}/api/v1" if self.classic_host else None

    def workspace_url(self, workspace: str) -> str:
        """The workspace host: where Wan 3.0 is documented, recommended for production."""
        return f"https://{workspace}.{self.id}.maas.aliyuncs.com/api/v1"


REGIONS: dict[str, Region] = {r.name: r for r in (
    Region("beijing", "cn-beijing", "dashscope.aliyuncs.com", "CNY", uploads=True),
    Region("singapore", "ap-southeast-1", "dashscope-intl.aliyuncs.com", "USD"),
    # ⚠ the docs say dashscope-us; SDK 2.0.2 maps us-east-1 to dashscope-intl instead.
    Region("virginia", "us-east-1", "dashscope-us.aliyuncs.com", "USD"),
    # ⚠ the classic host is in the SDK only; the currency of its prices is a guess.
    Region("hongkong", "cn-hongkong", "cn-hongkong.dashscope.aliyuncs.com", "USD"),
    # ⚠ no classic host is listed for Tokyo or Frankfurt: a workspace is needed there.
    Region("tokyo", "ap-northeast-1", None, "USD"),
    Region("frankfurt", "eu-central-1", None, "USD"),
)}
REGION_ALIASES = {**{r.id: r.name for r in REGIONS.values()}, "intl": "singapore"}
UPLOAD_REGIONS = tuple(r.name for r in REGIONS.values() if r.uploads)  # getPolicy: Beijing only
DEFAULT_REGION = "beijing"   # the SDK's default host, and ours
REGION_CURRENCY = {r.name: r.currency for r in REGIONS.values()}
# A workspace id is one DNS label of the host it selects: nothing else may reach the host name.
WORKSPACE_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_WORKSPACE_HOST = re.compile(r"^https://[A-Za-z0-9-]+\.(?P<region>[a-z0-9-]+)\.maas\.aliyuncs\.com/api/v1$")
DATA_URI_MAX_BYTES = 10 * 1024 * 1024  # ⚠ images sent inline when upload is unavailable


def region_of_url(base_url: str) -> str | None:
    """The region whose official host `base_url` (…/api/v1) is, classic or workspace; None
    for any other server."""
    for region in REGIONS.values():
        if base_url == region.classic_url:
            return region.name
    m = _WORKSPACE_HOST.match(base_url)
    return REGION_ALIASES.get(m.group("region")) if m else None


# ---- prices (reference §9) ---------------------------------------------------------------
# Per billed second, by region, model family and tier; "720P/silent" is the price of a silent
# clip where a model bills audio apart (wan2.6 flash). ⚠ Indicative list prices gathered from
# public pages, not a quote: plans label them so. Where a (region, model, tier) has no entry
# here the plan says "price unknown"; a team's own prices (the user config file or --prices)
# fill or override entries. Prices never come from a spec.
PRICE_BASIS = "indicative list prices (reference §9); verify on your account"

_INTERNATIONAL = {   # USD, Singapore ("international")
    "wanx2.1-t2v-turbo": {"480P": 0.036, "720P": 0.036},
    "wanx2.1-i2v-turbo": {"480P": 0.036, "720P": 0.036},
    "wanx2.1-t2v-plus": {"720P": 0.10}, "wanx2.1-i2v-plus": {"720P": 0.10},
    "wanx2.1-kf2v-plus": {"720P": 0.10},
    "wan2.6-t2v": {"720P": 0.10, "1080P": 0.15}, "wan2.6-i2v": {"720P": 0.10, "1080P": 0.15},
    "wan2.6-r2v": {"720P": 0.10, "1080P": 0.15},
    "wan2.6-i2v-flash": {"720P": 0.05, "720P/silent": 0.025, "1080P": 0.075,
                         "1080P/silent": 0.0375},
    "wan2.6-r2v-flash": {"720P": 0.05, "720P/silent": 0.025, "1080P": 0.075,
                         "1080P/silent": 0.0375},
    # ⚠ sources differ for wan2.7: 0.10/0.15 per some, a flat 0.10 per others.
    "wan2.7-t2v": {"720P": 0.10, "1080P": 0.15}, "wan2.7-i2v": {"720P": 0.10, "1080P": 0.15},
    "wan2.7-r2v": {"720P": 0.10, "1080P": 0.15},
}
_CHINA = {   # CNY, Beijing
    "wan2.5-t2v-preview": {"480P": 0.30, "720P": 0.60, "1080P": 1.00},
    "wan2.5-i2v-preview": {"480P": 0.30, "720P": 0.60, "1080P": 1.00},
    "wan2.2-t2v-plus": {"480P": 0.14, "1080P": 0.70},
    "wan2.2-i2v-plus": {"480P": 0.14, "1080P": 0.70},
    "wan2.2-i2v-flash": {"480P": 0.10, "720P": 0.20, "1080P": 0.48},
    "wan2.2-kf2v-flash": {"480P": 0.10, "720P": 0.20, "1080P": 0.48},
    "wan2.6-r2v": {"720P": 0.60, "1080P": 1.00},
    "wanx2.1-t2v-turbo": {"480P": 0.24, "720P": 0.24},
    "wanx2.1-i2v-turbo": {"480P": 0.24, "720P": 0.24},
    "wanx2.1-t2v-plus": {"720P": 0.70}, "wanx2.1-i2v-plus": {"720P": 0.70},
    "wanx2.1-kf2v-plus": {"720P": 0.70},
}
LIST_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "beijing": _CHINA, "singapore": _INTERNATIONAL}

# Wan 3.0 and wan2.7-videoedit have no official price table (Wan 3.0 reference §1.5, §2).
# What third parties quote is shown beside "price unknown", labelled, and never used for an
# estimate or a --max-cost check: a budget must not pass on a reseller's guess. A team that
# knows its price puts it in the user config file's [prices].
INDICATIVE_PRICES: dict[str, tuple[str, dict[str, dict[str, float]]]] = {   # by currency ⚠
    "CNY": ("a third-party client's Beijing prices (Wan 3.0 reference §1.5)", {
        "wan3.0-video": {"480P": 0.30, "720P": 0.60, "1080P": 1.20},
        "wan3.0-video-prime": {"480P": 0.45, "720P": 0.90, "1080P": 1.80}}),
    "USD": ("fal's resale prices (Wan 3.0 reference §1.5)", {
        "wan3.0-video": {"480P": 0.05, "720P": 0.10, "1080P": 0.20},
        "wan3.0-video-prime": {"480P": 0.068, "720P": 0.14, "1080P": 0.28}}),
}


def price_key(tier: str, silent: bool) -> str:
    return f"{tier}/silent" if silent else tier


def billed_seconds(usage: dict | None, fallback: float) -> float:
    """Billable seconds from a task's `usage` (field names vary by model generation; with
    Wan 3.0's `duration: auto` only `usage` knows the length)."""
    if usage:
        for key in ("duration", "video_duration", "output_video_duration"):
            value = usage.get(key)
            if isinstance(value, (int, float)) and value > 0:
                return float(value)
    return float(fallback)


# Account-wide limits (reference §6).
QUERY_QPS = 20.0          # GET /tasks/{id}, all tasks together
TASK_TTL_SECONDS = 24 * 3600   # task ids and result URLs expire after 24 h
UPLOAD_TTL_SECONDS = 48 * 3600  # oss:// temporary files live 48 h
NEGATIVE_PROMPT_LIMIT = 500
SEED_MAX = 2147483647

# Task times (`submit_time`, list filters) are in the provider's zone, presumably UTC+8 (⚠).
PROVIDER_UTC_OFFSET_HOURS = 8


def provider_time(epoch: float) -> str:
    """`YYYYMMDDhhmmss` in the provider's zone, as the task-list filters take it."""
    zone = datetime.timezone(datetime.timedelta(hours=PROVIDER_UTC_OFFSET_HOURS))
    return datetime.datetime.fromtimestamp(epoch, zone).strftime("%Y%m%d%H%M%S")
