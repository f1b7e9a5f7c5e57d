"""Settings: everything a command needs to know that is not in the spec, resolved once.

Built at the edge (the CLI, or a program using the Python API) from command-line flags and
the environment; nothing below reads `os.environ`. The spec may add its own choices later
(`Session` applies them), but a spec never chooses where the API key goes or where the
cache lives outside the project: those come only from here (DESIGN §5a).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .errors import ConfigError, UsageError


class Secret:
    """A value that must never be shown: repr/str hide it, and it cannot be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: object) -> str:
        """`text` with the secret replaced, for anything that may be shown or logged."""
        shown = "" if text is None else str(text)
        if self._value and self._value in shown:
            shown = shown.replace(self._value, "<api-key>")
        return shown

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __reduce__(self):
        raise TypeError("a secret is not picklable")


@dataclass(frozen=True)
class Settings:
    backend: str | None = None          # auto | preview | dashscope, as asked on the command line
    api_key: Secret | None = field(default=None, repr=False)
    region: str | None = None
    base_url: str | None = None
    cache: str | None = None            # cache directory (relative to the working directory)
    limits: tuple[str, ...] = ()        # MODEL=N[:RPS] overrides, environment then flags
    lock_wait: float = 0.0              # seconds to wait for another run's cache lock
    poll_first: float | None = None     # seconds before the first poll (tests, demos)
    poll_max: float | None = None       # longest pause between polls
    wait_timeout: float | None = None   # give up waiting for a remote task after this
    github_actions: bool = False        # annotate errors and write a step summary
    step_summary: str | None = None     # $GITHUB_STEP_SUMMARY

    @classmethod
    def resolve(cls, env: Mapping[str, str], **flags: object) -> Settings:
        """Settings from the environment, overridden by flags that are not None."""
        key = env.get("DASHSCOPE_API_KEY", "").strip()
        settings = cls(
            api_key=Secret(key) if key else None,
            region=env.get("DASHSCOPE_REGION") or None,
            base_url=env.get("WANFLOW_BASE_URL") or env.get("DASHSCOPE_BASE_URL") or None,
            cache=env.get("WANFLOW_CACHE") or None,
            limits=tuple(filter(None, env.get("WANFLOW_LIMITS", "").split(","))),
            lock_wait=_seconds(env, "WANFLOW_LOCK_WAIT") or 0.0,
            poll_first=_seconds(env, "WANFLOW_POLL_FIRST"),
            poll_max=_seconds(env, "WANFLOW_POLL_MAX"),
            wait_timeout=_seconds(env, "WANFLOW_WAIT_TIMEOUT"),
            github_actions=env.get("GITHUB_ACTIONS") == "true",
            step_summary=env.get("GITHUB_STEP_SUMMARY") or None)
        given = {k: v for k, v in flags.items() if v is not None and v != ()}
        if "limits" in given:
            given["limits"] = settings.limits + tuple(given["limits"])  # type: ignore[operator]
        return replace(settings, **given)  # type: ignore[arg-type]


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a number of seconds, not {text!r}")
    return value


def parse_limit(text: str) -> tuple[str, int | None, float | None]:
    """`MODEL=CONCURRENCY[:RPS]` -> (model, concurrency, submissions per second)."""
    model, _, value = text.partition("=")
    conc, _, rps = value.partition(":")
    try:
        concurrency = int(conc) if conc else None
        rate = float(rps) if rps else None
    except ValueError:
        concurrency, rate = -1, None
    if (concurrency is not None and concurrency < 1) or (
            rate is not None and not (math.isfinite(rate) and rate > 0)):
        raise UsageError(f"bad limit {text!r}: expected MODEL=CONCURRENCY[:SUBMITS_PER_SECOND],"
                         " e.g. wan2.7-t2v=4:2")
    return model.strip(), concurrency, rate
