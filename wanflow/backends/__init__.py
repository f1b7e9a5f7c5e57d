"""The backends and how one is chosen: `preview` (offline), `dashscope` (HTTP).

The registry imports each backend lazily, and no backend imports this module back.
"""
from __future__ import annotations

import os

from ..errors import ConfigError
from .base import Backend


def choose(name: str, *, env=None, region=None, base_url=None, cache_dir=None, notice=None,
           **options) -> Backend:
    """Make the backend `name` (auto | preview | dashscope).

    auto: DashScope when DASHSCOPE_API_KEY is set, else preview with a one-line notice.
    """
    env = os.environ if env is None else env
    key = env.get("DASHSCOPE_API_KEY", "").strip()
    if name == "auto":
        name = "dashscope" if key else "preview"
        if name == "preview" and notice:
            notice("DASHSCOPE_API_KEY is not set: using the offline preview backend "
                   "(animatics, no cost). Set it or pass --backend dashscope to generate.")
    if name == "preview":
        from .preview import PreviewBackend

        return PreviewBackend(**{k: v for k, v in options.items() if k in ("delay",)})
    if name == "dashscope":
        if not key:
            raise ConfigError("the dashscope backend needs DASHSCOPE_API_KEY in the environment")
        from .dashscope import DashScopeBackend

        for option, var in (("poll_first", "WANFLOW_POLL_FIRST"), ("poll_max", "WANFLOW_POLL_MAX"),
                            ("wait_timeout", "WANFLOW_WAIT_TIMEOUT")):
            if env.get(var) and option not in options:
                try:
                    options[option] = float(env[var])
                except ValueError:
                    raise ConfigError(f"{var} must be a number of seconds") from None
        region = region or env.get("DASHSCOPE_REGION") or None
        base_url = base_url or env.get("DASHSCOPE_BASE_URL") or None
        upload_cache = os.path.join(cache_dir, "uploads") if cache_dir else None
        return DashScopeBackend(api_key=key, region=region, base_url=base_url,
                                upload_cache_dir=upload_cache,
                                **{k: v for k, v in options.items() if k != "delay"})
    raise ConfigError(f"unknown backend {name!r}; choose auto, preview or dashscope")
