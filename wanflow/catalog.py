"""`wanflow models`: the capability table the validator uses, shown to people and programs.

Rows are read from `models.MODELS` (the one table) and priced with `plan.cost.Pricing`, so
what this prints is what `validate` checks and what `plan` charges — never a copy.
"""
from __future__ import annotations

from .models import I2V_MEDIA_COMBOS, MODELS, RATIOS, Model
from .plan.cost import Pricing

_ROLE_WORDS = {"first_frame": "first frame", "first_clip": "first clip",
               "last_frame": "last frame", "driving_audio": "driving audio"}


def rows(pricing: Pricing) -> list[dict]:
    """One dict per model, in the table's order (newest first): the `--json` shape."""
    return [_row(m, pricing) for m in MODELS.values()]


def _row(m: Model, pricing: Pricing) -> dict:
    prices: dict[str, float | None] = {}
    for tier in m.resolutions:
        prices[tier] = pricing.per_second(m.name, tier)
        if m.audio_switch:
            silent = pricing.per_second(m.name, tier, silent=True)
            if silent != prices[tier]:
                prices[f"{tier}/silent"] = silent
    return {
        "model": m.name, "kind": m.kind, "inputs": _inputs(m),
        "durations": list(m.durations), "fixed_duration": m.fixed_duration,
        "default_duration": m.default_duration,
        "geometry": m.geometry, "resolutions": list(m.resolutions),
        "default_resolution": m.default_resolution,
        "ratios": list(RATIOS) if m.geometry == "resolution+ratio" else [],
        "sizes": list(m.allowed_sizes()) if m.geometry == "size" else [],
        "audio": {"input": m.audio_input, "generates": m.auto_audio, "switch": m.audio_switch},
        "multi_shot": "shot_type" if m.shot_type else ("prompt" if m.shot_text else None),
        "fps": m.fps, "prompt_limit": m.prompt_limit,
        "region": pricing.region, "currency": pricing.currency, "price_per_second": prices,
    }


def _inputs(m: Model) -> list[str]:
    """What a shot of this model is made from, in words (i2v `media`: each combination)."""
    audio = ["audio"] if m.audio_input else []
    if m.kind == "t2v":
        return ["prompt", *audio]
    if m.kind == "kf2v":
        return ["first frame + last frame (or an effect)", "prompt"]
    if m.kind == "r2v":
        refs = f"1-{m.max_references} references (at most {m.max_reference_videos} videos)"
        extra = ["a voice per reference", "first frame"] if m.protocol == "media" else []
        return ["prompt", refs, *extra]
    if m.protocol == "media":
        combos = (" + ".join(_ROLE_WORDS[r] for r in _ordered(c)) for c in I2V_MEDIA_COMBOS)
        return ["prompt", "one of: " + " | ".join(combos)]
    return ["first frame", "prompt", *audio]


def _ordered(combo: frozenset[str]) -> list[str]:
    return sorted(combo, key=list(_ROLE_WORDS).index)


def table(data: list[dict]) -> str:
    """The rows as a text table (one line per model, wrapped inputs indented below)."""
    if not data:
        return ""
    currency = data[0]["currency"]
    head = ("model", "kind", "seconds", "resolutions", "geometry", "audio", "multi-shot",
            f"price/s ({currency}, {data[0]['region']})")
    cells = [head] + [(r["model"], r["kind"], _seconds(r), ", ".join(r["resolutions"]),
                       _geometry(r), _audio(r["audio"]), r["multi_shot"] or "-",
                       _prices(r["price_per_second"])) for r in data]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    lines = []
    for i, cell in enumerate(cells):
        # The last column is left ragged: `widths` has no entry for it.
        padded = (f"{v:<{w}}" for v, w in zip(cell, widths, strict=False))
        lines.append("  ".join(padded) + "  " + cell[-1])
        if i:
            lines.append(f"  inputs: {'; '.join(data[i - 1]['inputs'])}")
    return "\n".join(line.rstrip() for line in lines)


def _seconds(r: dict) -> str:
    if r["fixed_duration"] is not None:
        return f"{r['fixed_duration']} (fixed)"
    d = r["durations"]
    if len(d) > 2 and d == list(range(d[0], d[-1] + 1)):
        return f"{d[0]}-{d[-1]}"
    return ", ".join(map(str, d))


def _geometry(r: dict) -> str:
    if r["geometry"] == "size":
        return "size or resolution+ratio"
    if r["geometry"] == "resolution":
        return "resolution (image aspect)"
    return "resolution+ratio"


def _audio(audio: dict) -> str:
    words = [w for w, on in (("in", audio["input"]), ("generates", audio["generates"]),
                             ("switch", audio["switch"])) if on]
    return ", ".join(words) or "silent"


def _prices(prices: dict) -> str:
    if all(p is None for p in prices.values()):
        return "unknown"
    return ", ".join(f"{tier} {'unknown' if p is None else f'{p:g}'}"
                     for tier, p in prices.items())
