"""Injected faults, and the parsing of the emulator's command-line options."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Faults:
    """Injected faults. Counters mean "the next N"; each use decrements. Mutable at run time."""

    submit_429: int = 0               # next N submits answer 429 Throttling.RateQuota
    submit_5xx: int = 0               # next N submits answer 500 InternalError, no task created
    submit_5xx_after_create: int = 0  # next N submits create the task, then answer 500
    submit_reset: int = 0             # next N submits: connection closed unanswered, no task
    poll_5xx: int = 0                 # next N GET /tasks/{id}: 503, 500, 503, ... (alternating)
    poll_429: int = 0                 # next N GET /tasks/{id}: 429 Throttling
    fail_tasks: int = 0               # next N created tasks end FAILED with InternalError
    inspection_fail: int = 0          # next N created tasks end FAILED with DataInspectionFailed
    fail_prompts: tuple = ()          # prompt contains any substring -> FAILED DataInspectionFailed
    expired_urls: int = 0             # next N successful tasks get an already-expired video URL
    truncated_downloads: int = 0      # next N downloads send half the body (full Content-Length)
    download_reset: int = 0           # next N downloads close the connection without a response
    slow_ms: int = 0                  # delay added to every response (not control endpoints)
    retry_after: float | None = None  # Retry-After seconds sent on every 429 (injected or quota)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["fail_prompts"] = list(self.fail_prompts)
        return d

    def update(self, values: dict) -> None:
        """Set fields from a mapping (JSON control endpoint, CLI); unknown names raise KeyError."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            setattr(self, key, _coerce(key, value))


def fault_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Faults)]


def _coerce(name: str, value):
    if name == "fail_prompts":
        if isinstance(value, str):
            return tuple(p for p in value.split("|") if p)
        return tuple(str(v) for v in (value or ()))
    if name == "retry_after":
        return None if value in (None, "", "none", "None") else float(value)
    return int(value)


def parse_faults(items) -> Faults:
    """Faults from CLI-style strings `NAME=VALUE` (fail_prompts may repeat or use `a|b`)."""
    faults = Faults()
    prompts: list[str] = []
    for item in items or ():
        name, sep, value = str(item).partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"fault {item!r}: expected NAME=VALUE")
        if name == "fail_prompts":
            prompts.extend(p for p in value.split("|") if p)
            continue
        try:
            faults.update({name: value})
        except KeyError:
            raise ValueError(f"unknown fault {name!r}; valid: {', '.join(fault_names())}") from None
    if prompts:
        faults.fail_prompts = tuple(prompts)
    return faults


def parse_latency(text: str) -> tuple[float, float]:
    """`"MIN:MAX"` or `"SECONDS"` -> (min, max)."""
    lo, sep, hi = str(text).partition(":")
    lo_f = float(lo)
    hi_f = float(hi) if sep else lo_f
    if lo_f < 0 or hi_f < lo_f:
        raise ValueError(f"latency {text!r}: expected MIN:MAX with 0 <= MIN <= MAX")
    return lo_f, hi_f


def _parse_per_model(text):
    """`"5"` -> 5.0; `"wan2.7-t2v=3,wan2.6-t2v=1"` -> dict."""
    if text is None or isinstance(text, (int, float, dict)):
        return text
    text = str(text)
    if "=" not in text:
        return float(text)
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        out[name.strip()] = float(value)
    return out


def options_from_cli(*, latency=None, time_scale=None, faults=(), api_keys=(), concurrency=None,
                     submit_rps=None, query_qps=None, task_ttl=None, url_ttl=None, seed=None,
                     workdir=None, region=None, render_scale=None,
                     latency_spread=None) -> dict:
    """Keyword arguments for `Emulator`/`serve` from CLI strings; None/empty means default."""
    opts: dict = {}
    if latency is not None:
        opts["latency"] = parse_latency(latency) if isinstance(latency, str) else tuple(latency)
    if time_scale is not None:
        opts["time_scale"] = float(time_scale)
    if faults:
        opts["faults"] = parse_faults(faults)
    if api_keys:
        opts["api_keys"] = tuple(api_keys)
    if concurrency is not None:
        value = _parse_per_model(concurrency)
        opts["concurrency"] = ({k: int(v) for k, v in value.items()} if isinstance(value, dict)
                               else int(value))
    if submit_rps is not None:
        opts["submit_rps"] = _parse_per_model(submit_rps)
    for name, value in (("query_qps", query_qps), ("task_ttl", task_ttl), ("url_ttl", url_ttl),
                        ("render_scale", render_scale), ("latency_spread", latency_spread)):
        if value is not None:
            opts[name] = float(value)
    if seed is not None:
        opts["seed"] = int(seed)
    if workdir is not None:
        opts["workdir"] = str(workdir)
    if region is not None:
        opts["region"] = str(region)
    return opts
