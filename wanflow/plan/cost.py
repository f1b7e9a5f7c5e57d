"""What generations cost: billed seconds per task, and the price per second in a region.

Pure. Billed seconds follow the reference (§9): the output's length, plus for
reference-to-video the reference videos' input seconds (wan2.6-r2v bills at most 5 s of
input in all; wan2.7-r2v bills input and output). Prices come from the model table's
indicative list prices for the region, overridden by the team's own (`Pricing.user`);
a spec never sets a price.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import models
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

    @property
    def basis(self) -> str:
        mine = " and your own prices" if self.user else ""
        return f"{self.region}, {self.currency}; {models.PRICE_BASIS}{mine}"


def billed_seconds(task: GenTask, outputs: Mapping[TaskId, Output],
                   picks: Mapping[str, int], clip_seconds: Mapping[str, float]) -> float:
    """What the provider bills for `task`: its clip, plus reference-video input seconds.

    `outputs` gives the length of inputs already known; `clip_seconds` (shot qid -> length)
    stands in for clips of other shots not generated yet."""
    shot = task.shot
    info = models.lookup(shot.model)
    assert info is not None   # the checker refuses unknown models
    seconds = float(info.clip_seconds(shot.duration))
    if info.kind != "r2v":
        return seconds
    videos = []
    for item in shot.inputs:
        if item.role != "reference_video":
            continue
        source = request.source_of(item, picks)
        out = outputs.get(source)
        if out is not None and out.duration is not None:
            videos.append(out.duration)
        elif item.ref is not None:
            videos.append(clip_seconds.get(item.ref.shot, 0.0))
        else:
            videos.append(0.0)   # an asset whose length is not known yet: bills no input
    if not videos:
        return seconds
    if info.name.startswith("wan2.6"):
        cap = _R2V26_INPUT_CAP.get(len(videos), 5.0 / len(videos))
        return seconds + sum(min(v, cap) for v in videos)
    return seconds + sum(videos)


def tier_of(task: GenTask) -> tuple[str, bool]:
    """(resolution tier, silent) that a generation is priced at."""
    info = models.lookup(task.shot.model)
    assert info is not None
    tier, _, _ = request.geometry(task.shot, info)
    return tier, bool(info.audio_switch and task.shot.generate_audio is False)
