"""What generations cost: billed seconds per task, and the price per second in a region.

Pure. Billed seconds follow the reference (§9): the output's length, plus the input video
seconds where the model bills them (`Model.input_billing`): wan2.6-r2v bills at most 5 s of
reference video in all; wan2.7-r2v, Wan 3.0 (⚠ likely) and wan2.7-videoedit (⚠ possibly)
bill all of it. A clip whose length the model chooses (`duration: auto`) counts as long as it
can be until it exists. Prices come from the model table's indicative list prices for the
region, overridden by the team's own (`Pricing.user`); a spec never sets a price.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .. import models
from ..spec.nodes import Input
from . import request
from .tasks import GenTask, Output, TaskId

# wan2.6-r2v caps the billed input (reference §9): the cap per reference video, by count.
_R2V26_INPUT_CAP = {1: 5.0, 2: 2.5, 3: 1.65}


@dataclass(frozen=True)
class Pricing:
    """Prices per billed second in one region, in that region's currency."""

    region: str
    currency: str
    user: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # model -> key -> price

    @classmethod
    def for_region(cls, region: str | None,
                   user: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None
                   ) -> Pricing:
        name = region or models.DEFAULT_REGION
        return cls(name, models.REGION_CURRENCY.get(name, "USD"), (user or {}).get(name, {}))

    def per_second(self, model: str, tier: str, silent: bool = False) -> float | None:
        """The price of a billed second, or None when neither table knows it."""
        info = models.lookup(model)
        family = info.name if info else model
        keys = [models.price_key(tier, silent)] + ([tier] if silent else [])
        for table in (self.user, models.LIST_PRICES.get(self.region, {})):
            for name in dict.fromkeys((model, family)):
                prices = table.get(name, {})
                for key in keys:
                    if key in prices:
                        return float(prices[key])
        return None

    def third_party(self, model: str) -> tuple[str, dict[str, float]] | None:
        """What third parties quote for `model` in this currency, (source, tier -> price):
        shown beside "price unknown", never used for an estimate."""
        source, table = models.INDICATIVE_PRICES.get(self.currency, ("", {}))
        info = models.lookup(model)
        prices = table.get(info.name if info else model)
        return (source, prices) if prices else None

    @property
    def basis(self) -> str:
        mine = " and your own prices" if self.user else ""
        return f"{self.region}, {self.currency}; {models.PRICE_BASIS}{mine}"


def billed_seconds(task: GenTask, outputs: Mapping[TaskId, Output],
                   picks: Mapping[str, int], clip_seconds: Mapping[str, float]) -> float:
    """What the provider bills for `task`: its clip, plus input video seconds.

    `outputs` gives the length of inputs already known; `clip_seconds` (shot qid -> length,
    the longest it can be) stands in for clips of other shots not generated yet."""
    shot = task.shot
    info = models.lookup(shot.model)
    assert info is not None   # the checker refuses unknown models
    videos = [(item.role, _input_seconds(item, outputs, picks, clip_seconds))
              for item in shot.inputs if item.role in ("reference_video", "video")]
    source = next((seconds for role, seconds in videos if role == "video"), None)
    clip = info.clip_seconds(shot.duration, source)
    seconds = float(clip if clip is not None else info.longest_clip(shot.duration))
    inputs = [s or 0.0 for _, s in videos]   # a length not known yet bills no input
    if not inputs or info.input_billing == "none":
        return seconds
    if info.input_billing == "capped":
        cap = _R2V26_INPUT_CAP.get(len(inputs), 5.0 / len(inputs))
        return seconds + sum(min(v, cap) for v in inputs)
    return seconds + sum(inputs)


def _input_seconds(item: Input, outputs: Mapping[TaskId, Output], picks: Mapping[str, int],
                   clip_seconds: Mapping[str, float]) -> float | None:
    out = outputs.get(request.source_of(item, picks))
    if out is not None and out.duration is not None:
        return out.duration
    if item.ref is not None:
        return clip_seconds.get(item.ref.shot)
    return None


def upper_bound(task: GenTask, outputs: Mapping[TaskId, Output], picks: Mapping[str, int],
                chosen: Collection[str]) -> bool:
    """Whether `billed_seconds` is a ceiling rather than an estimate: the model chooses the
    clip's length, or the clip follows or bills a clip not made yet of a shot in `chosen`
    (shots whose model chooses their length)."""
    shot = task.shot
    if shot.qid in chosen:
        return True
    return any(item.ref is not None and item.ref.shot in chosen
               and request.source_of(item, picks) not in outputs
               and item.role in ("reference_video", "video") for item in shot.inputs)


def tier_of(task: GenTask) -> tuple[str, bool]:
    """(resolution tier, silent) that a generation is priced at."""
    info = models.lookup(task.shot.model)
    assert info is not None
    tier, _, _ = request.geometry(task.shot, info)
    return tier, bool(info.audio_switch and task.shot.generate_audio is False)
