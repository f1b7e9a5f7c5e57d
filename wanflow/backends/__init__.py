"""The backends, and which one runs: `preview` (offline, free) or `dashscope` (HTTP, paid).

Paid generation happens only when it is asked for explicitly: `--backend dashscope` on the
command line, or `backend: dashscope` in the spec with an API key set. Everything else —
`auto` included, and a key merely present in the environment — runs the preview backend.

The registry imports each backend lazily, and no backend imports this module back. It is
light itself (the command line reads `NAMES` when it starts).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..settings import Settings

if TYPE_CHECKING:
    from .base import Backend

NAMES = ("auto", "preview", "dashscope")   # what --backend and the spec's backend may say


@dataclass(frozen=True)
class Choice:
    """Which backend runs, and why (printed before anything else, and in --json)."""

    name: str      # preview | dashscope
    reason: str


def select(flag: str | None, spec: str | None, has_key: bool, *,
           key_required: bool = True) -> Choice:
    """The backend for a command-line `--backend` (None: not given) and the spec's
    `settings.backend` (None: not set). Pure: the rule of DESIGN §4 in one place.
    `key_required=False` (plan, status, report, diff: nothing is generated) lets
    `--backend dashscope` show the paid plan without a key."""
    if flag == "dashscope":
        if not has_key:
            if key_required:
                raise ConfigError("--backend dashscope needs DASHSCOPE_API_KEY in the "
                                  "environment")
            return Choice("dashscope", "--backend dashscope; no DASHSCOPE_API_KEY, so this "
                                       "command only looks")
        return Choice("dashscope", "--backend dashscope")
    if flag == "preview":
        return Choice("preview", "--backend preview")
    asked = "--backend auto" if flag == "auto" else None
    if spec == "dashscope" and flag is None:
        if has_key:
            return Choice("dashscope", "the spec says backend: dashscope and "
                                       "DASHSCOPE_API_KEY is set")
        return Choice("preview", "the spec says backend: dashscope but DASHSCOPE_API_KEY is "
                                 "not set")
    why = asked or (f"the spec says backend: {spec}" if spec in ("auto", "preview")
                    else "the default")
    return Choice("preview", f"{why}; paid generation needs --backend dashscope "
                             "(or backend: dashscope in the spec, with a key)")


def naming_only(choice: Choice, settings: Settings, *, region: str | None = None) -> Backend:
    """A backend that names the outputs `choice` would make (its identity: part of every
    key) but generates nothing and needs no key: what `wanflow pull` plans with."""
    if choice.name == "preview":
        from .preview import PreviewBackend

        # The scale is part of the identity: a scaled run's outputs are named at its scale.
        return PreviewBackend(scale=settings.preview_scale)
    _refuse_malformed_key(settings)   # said now, not when the first paid run needs it
    from .base import NamingOnly
    from .dashscope.client import resolve_endpoint

    return NamingOnly(choice.name, resolve_endpoint(region, settings.base_url).identity)


def make(choice: Choice, settings: Settings, *, region: str | None = None,
         cache_dir: str | None = None, **options: Any) -> Backend:
    """Construct the chosen backend. `options` are backend-specific (tests, benches)."""
    if choice.name == "preview":
        from .preview import PreviewBackend

        return PreviewBackend(delay=float(options.get("delay", 0.0)),
                              scale=settings.preview_scale)
    if settings.api_key is None:
        raise ConfigError("the dashscope backend needs DASHSCOPE_API_KEY in the environment")
    _refuse_malformed_key(settings)
    from .dashscope import DashScopeBackend

    for option in ("poll_first", "poll_max", "wait_timeout", "retry_backoff"):
        value = getattr(settings, option)
        if value is not None and option not in options:
            options[option] = value
    options.pop("delay", None)
    upload_cache = os.path.join(cache_dir, "uploads") if cache_dir else None
    return DashScopeBackend(api_key=settings.api_key.reveal(), region=region,
                            base_url=settings.base_url, workspace=settings.workspace,
                            upload_cache_dir=upload_cache, **options)


def _refuse_malformed_key(settings: Settings) -> None:
    if settings.api_key is not None and not settings.api_key.well_formed():
        raise ConfigError("DASHSCOPE_API_KEY is malformed: it contains whitespace, a control "
                          "character or a non-ASCII character (it is not shown); set it to "
                          "the key exactly as the Model Studio console gives it")
