"""Settings: everything a command needs to know that is not in the spec, resolved once.

Built at the edge (the CLI, or a program using the Python API) from command-line flags, the
environment and the user config file, in that order of precedence; nothing below reads
`os.environ`. The spec may add its own choices later (`Session` applies them), but a spec
never chooses where the API key goes, where the cache lives outside the project, or what
things cost: those come only from here (DESIGN §5a).

The user config file is one TOML file in the platform's user config folder (on Linux
`~/.config/wanflow/config.toml`), never read from the project::

    base_url = "https://dashscope-intl.aliyuncs.com/api/v1"   # where the key may go
    region = "singapore"
    workspace = "llm-xxxxxxxx"   # selects https://llm-xxxxxxxx.ap-southeast-1.maas.aliyuncs.com

    remote = "s3://team-bucket/wanflow"   # the team's remote store (see README, Teams and CI)
    remote_endpoint = "https://oss-cn-hangzhou.aliyuncs.com"   # an S3-compatible service

    [prices.singapore."wan2.7-t2v"]     # per billed second, in the region's currency
    "720P" = 0.09
    "1080P" = 0.135
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError, UsageError

Prices = Mapping[str, Mapping[str, Mapping[str, float]]]   # region -> model -> tier -> price


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

    def well_formed(self) -> bool:
        """Printable ASCII without spaces: what an API key is. Anything else (a stray
        newline from a secrets file, a pasted control character) would end up in a header
        or an error message, so it is refused without being shown."""
        return bool(self._value) and all("!" <= ch <= "~" for ch in self._value)


@dataclass(frozen=True)
class Settings:
    backend: str | None = None          # auto | preview | dashscope, as asked on the command line
    api_key: Secret | None = field(default=None, repr=False)
    region: str | None = None
    base_url: str | None = None
    workspace: str | None = None        # Model Studio workspace id: selects its host
    cache: str | None = None            # cache directory (relative to the working directory)
    limits: tuple[str, ...] = ()        # MODEL=N[:RPS] overrides, environment then flags
    lock_wait: float = 0.0              # seconds to wait for another run's cache lock
    poll_first: float | None = None     # seconds before the first poll (tests, demos)
    poll_max: float | None = None       # longest pause between polls
    wait_timeout: float | None = None   # give up waiting for a remote task after this
    retry_backoff: float | None = None  # seconds before a first retry, doubling after
    github_actions: bool = False        # annotate errors and write a step summary
    step_summary: str | None = None     # $GITHUB_STEP_SUMMARY
    run_url: str | None = None          # the Actions run (its artifacts hold the review page)
    prices: Prices = field(default_factory=dict)   # the team's own prices per region
    state_dir: str | None = None        # this machine's own data (the spec-cache signing key)
    remote: str | None = None           # the team's remote store: s3:// gs:// az:// file://
    remote_endpoint: str | None = None  # an S3-compatible service (OSS, MinIO, R2)
    remote_anonymous: bool = False      # read the remote without credentials (fork PRs)
    remote_claims: bool = True          # claim paid work on the remote (a fleet pays once)
    claim_heartbeat: float = 30.0       # seconds between a held claim's heartbeats
    claim_stale: float = 120.0          # a claim silent this long may be taken over

    def __post_init__(self) -> None:
        if not 0 < self.claim_heartbeat < self.claim_stale:
            raise ConfigError(f"a claim's heartbeat ({self.claim_heartbeat:g} s) must be "
                              f"positive and shorter than its staleness "
                              f"({self.claim_stale:g} s)")
    preview_scale: float = 1.0          # preview animatics at this fraction of the model's size

    @classmethod
    def resolve(cls, env: Mapping[str, str], *, config: Mapping[str, Any] | None = None,
                prices_file: str | None = None, **flags: Any) -> Settings:
        """Settings from the user config file (`config`, see `read_config`), overridden by
        the environment, overridden by flags that are not None (`flags` are fields of
        Settings; `limits` adds to the environment's). `prices_file` (--prices) adds to and
        overrides the config file's prices."""
        config = config or {}
        key = env.get("DASHSCOPE_API_KEY", "")
        prices = _prices(config.get("prices", {}), "the user config file")
        if prices_file:
            extra = _prices(read_toml(prices_file).get("prices", {}), prices_file)
            prices = {r: {**prices.get(r, {}), **extra.get(r, {})}
                      for r in {*prices, *extra}}
        settings = cls(
            api_key=Secret(key) if key else None,
            region=env.get("DASHSCOPE_REGION") or _text(config, "region") or None,
            base_url=(env.get("WANFLOW_BASE_URL") or env.get("DASHSCOPE_BASE_URL")
                      or _text(config, "base_url") or None),
            workspace=env.get("WANFLOW_WORKSPACE") or _text(config, "workspace") or None,
            prices=prices,
            cache=env.get("WANFLOW_CACHE") or None,
            limits=tuple(filter(None, env.get("WANFLOW_LIMITS", "").split(","))),
            lock_wait=_seconds(env, "WANFLOW_LOCK_WAIT") or 0.0,
            poll_first=_seconds(env, "WANFLOW_POLL_FIRST"),
            poll_max=_seconds(env, "WANFLOW_POLL_MAX"),
            wait_timeout=_seconds(env, "WANFLOW_WAIT_TIMEOUT"),
            retry_backoff=_seconds(env, "WANFLOW_RETRY_BACKOFF"),
            preview_scale=_fraction(env, "WANFLOW_PREVIEW_SCALE"),
            github_actions=env.get("GITHUB_ACTIONS") == "true",
            state_dir=state_dir(),
            step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
            run_url=_run_url(env),
            remote=env.get("WANFLOW_REMOTE") or _text(config, "remote") or None,
            remote_endpoint=(env.get("WANFLOW_REMOTE_ENDPOINT")
                             or _text(config, "remote_endpoint") or None),
            remote_anonymous=_flag(env, "WANFLOW_REMOTE_ANONYMOUS"),
            claim_heartbeat=_seconds(env, "WANFLOW_CLAIM_HEARTBEAT") or 30.0,
            claim_stale=_seconds(env, "WANFLOW_CLAIM_STALE") or 120.0)
        given = {k: v for k, v in flags.items() if v is not None and v != ()}
        if "limits" in given:
            given["limits"] = settings.limits + tuple(given["limits"])
        return replace(settings, **given)


def _run_url(env: Mapping[str, str]) -> str | None:
    """The page of this GitHub Actions run, where its artifacts are listed."""
    server = env.get("GITHUB_SERVER_URL", "")
    repo, run = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
    if not (server.startswith("https://") and re.fullmatch(r"[\w.-]+/[\w.-]+", repo)
            and run.isdigit()):
        return None
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"


def config_path(env: Mapping[str, str]) -> str:
    """The user config file: in the platform's user config folder, never in the project."""
    from platformdirs import user_config_dir

    del env   # platformdirs reads XDG_CONFIG_HOME and friends itself
    return os.path.join(user_config_dir("wanflow", appauthor=False), "config.toml")


def state_dir() -> str:
    """This machine's wanflow data folder (never the project, never a cache directory)."""
    from platformdirs import user_data_dir

    return user_data_dir("wanflow", appauthor=False)


def read_config(env: Mapping[str, str]) -> dict[str, Any]:
    """The user config file's contents ({} when there is none)."""
    path = config_path(env)
    if not os.path.exists(path):
        return {}
    return read_toml(path)


def read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    known = {"base_url", "region", "prices", "remote", "remote_endpoint", "workspace"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return data


def _text(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"the user config file's {name} must be a string")
    return value


def _prices(raw: object, where: str) -> dict[str, dict[str, dict[str, float]]]:
    """`[prices.REGION."MODEL"] TIER = PRICE` tables, checked: finite, non-negative."""
    bad = ConfigError(f"{where}: prices must look like [prices.REGION.\"MODEL\"] with "
                      "\"720P\" = 0.10 (per billed second, in the region's currency; "
                      "\"720P/silent\" for a silent clip where it is cheaper)")
    if not isinstance(raw, dict):
        raise bad
    out: dict[str, dict[str, dict[str, float]]] = {}
    for region, by_model in raw.items():
        if not isinstance(by_model, dict):
            raise bad
        for model, by_tier in by_model.items():
            if not isinstance(by_tier, dict):
                raise bad
            for tier, price in by_tier.items():
                if (isinstance(price, bool) or not isinstance(price, (int, float))
                        or not math.isfinite(price) or price < 0):
                    raise bad
                out.setdefault(region, {}).setdefault(model, {})[tier] = float(price)
    return out


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


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, not {text!r}")
def _fraction(env: Mapping[str, str], name: str) -> float:
    text = env.get(name)
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:   # NaN fails too
        raise ConfigError(f"{name} must be a fraction in (0, 1], not {text!r}")
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
