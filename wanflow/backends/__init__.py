"""The backends and how one is chosen: `preview` (offline), `dashscope` (HTTP).

The registry imports each backend lazily, and no backend imports this module back.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import ConfigError
from ..settings import Settings
from .base import Backend


def choose(name: str, settings: Settings, *, region: str | None = None,
           base_url: str | None = None, cache_dir: str | None = None,
           notice: Callable[[str], None] | None = None, **options: object) -> Backend:
    """Make the backend `name` (auto | preview | dashscope).

    auto: DashScope when an API key is set, else preview with a one-line notice.
    """
    key = settings.api_key
    if name == "auto":
        name = "dashscope" if key else "preview"
        if name == "preview" and notice:
            notice("DASHSCOPE_API_KEY is not set: using the offline preview backend "
                   "(animatics, no cost). Set it or pass --backend dashscope to generate.")
    if name == "preview":
        from .preview import PreviewBackend

        return PreviewBackend(delay=float(options.get("delay", 0.0)))  # type: ignore[arg-type]
    if name == "dashscope":
        if key is None:
            raise ConfigError("the dashscope backend needs DASHSCOPE_API_KEY in the environment")
        from .dashscope import DashScopeBackend

        for option in ("poll_first", "poll_max", "wait_timeout"):
            value = getattr(settings, option)
            if value is not None and option not in options:
                options[option] = value
        upload_cache = os.path.join(cache_dir, "uploads") if cache_dir else None
        options.pop("delay", None)
        return DashScopeBackend(api_key=key.reveal(), region=region, base_url=base_url,
                                upload_cache_dir=upload_cache, **options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown backend {name!r}; choose auto, preview or dashscope")
