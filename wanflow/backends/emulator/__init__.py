"""`wanflow emulator`: a local HTTP server that speaks DashScope's Wan video task protocol.

It accepts the same submits, polls, cancels, task lists, upload policies and OSS form uploads
as the real service (reference §1-§7), validates each request against the capability table in
`wanflow.models`, simulates PENDING -> RUNNING -> SUCCEEDED/FAILED on a scaled clock, serves a
preview MP4 (rendered lazily by `wanflow.media`) at a signed, expiring URL, enforces per-model
quotas, and injects faults on request. The official `dashscope` SDK works against it.

Standard library only (http.server + threads); the only wanflow imports are `models` and,
lazily when a video is first downloaded, `media`.

Times: `latency` and `time_scale` describe *simulated generation*: a task draws a latency in
[min, max] seconds and takes latency / time_scale real seconds (~10 % PENDING, the rest
RUNNING). Every other duration (task_ttl, url_ttl, upload_ttl, policy expiry, rate windows)
is in real seconds and is not scaled. Timestamps in task outputs are wall-clock UTC+8.

HTTP surface (paths under `/api/v1` need `Authorization: Bearer <key>`; errors use the
`{"request_id", "code", "message"}` envelope):
  POST /api/v1/services/aigc/video-generation/video-synthesis   submit (all but kf2v)
  POST /api/v1/services/aigc/image2video/video-synthesis        submit (kf2v only)
  GET  /api/v1/tasks/{id}           200 for every state; UNKNOWN for unknown/expired ids
  POST /api/v1/tasks/{id}/cancel    PENDING only, else 400 UnsupportedOperation
  GET  /api/v1/tasks                list: {"data": [...], total, total_page, page_no, page_size}
  GET  /api/v1/uploads?action=getPolicy&model=M    temporary-storage policy (Beijing only)
  POST /oss                         fake OSS PostObject form upload -> oss://<key>
  GET|HEAD /videos/<task_id>.mp4?Expires&OSSAccessKeyId&Signature   signed result URL
  GET  /_emulator/{requests,submissions,tasks,faults}; POST /_emulator/faults (JSON sets
       Faults fields); POST /_emulator/reset.  Control calls are not logged in requests().

Choices where the reference is unsure: unknown model -> 404 ModelNotFound; wrong submit path
-> 400 InvalidURL "url error, please check url!"; cancel of a non-PENDING or unknown task ->
400 UnsupportedOperation; getPolicy outside Beijing -> 403 AccessDenied; poll throttling and
GET /tasks over `query_qps` -> 429 Throttling; quota and injected submit 429s ->
Throttling.RateQuota. Absent size/resolution/ratio/duration take the model's defaults.
"""
from __future__ import annotations

import base64
import dataclasses
import email.parser
import email.policy
import hashlib
import hmac
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
import wave
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

from ... import models

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_emulator"
TZ = timezone(timedelta(hours=8))  # DashScope reports times without a zone; Beijing time
OSS_ACCESS_KEY_ID = "LTAI5tWanflowEmulator"
OSS_BUCKET = "dashscope-instant"
POLICY_TTL = 300
MAX_UPLOAD_MB = 100

THROTTLE_MESSAGE = "Requests rate limit exceeded, please try again later."
URL_ERROR = "url error, please check url!"
INTERNAL_MESSAGE = ("An internal error has occured, please try again later or contact service "
                    "support.")
DEFAULT_ACTUAL_SUFFIX = (" The scene is captured with cinematic lighting, a smooth, steady camera "
                         "and rich, natural detail; the motion is fluid and physically plausible.")

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


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
        names = {f.name: f for f in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(key)
            setattr(self, key, _coerce_fault(key, value))


def _coerce_fault(name: str, value):
    if name == "fail_prompts":
        if isinstance(value, str):
            return tuple(p for p in value.split("|") if p)
        return tuple(str(v) for v in (value or ()))
    if name == "retry_after":
        return None if value in (None, "", "none", "None") else float(value)
    if isinstance(value, bool):
        return int(value)
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
            valid = ", ".join(f.name for f in dataclasses.fields(Faults))
            raise ValueError(f"unknown fault {name!r}; valid: {valid}") from None
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
                     workdir=None, region=None, render_scale=None) -> dict:
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
                        ("render_scale", render_scale)):
        if value is not None:
            opts[name] = float(value)
    if seed is not None:
        opts["seed"] = int(seed)
    if workdir is not None:
        opts["workdir"] = str(workdir)
    if region is not None:
        opts["region"] = str(region)
    return opts


class ApiError(Exception):
    """An error answer: HTTP status + DashScope `code`/`message` envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def _fmt_time(t: float | None) -> str | None:
    if t is None:
        return None
    dt = datetime.fromtimestamp(t, TZ)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def _parse_list_time(text: str) -> float:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=TZ).timestamp()


def _generation(name: str) -> str:
    if name.startswith(("wanx2.1", "wan2.1")):
        return "2.1"
    if name.startswith(("wan2.2", "wan2.5")):
        return "2.2"
    return "2.6"


class _Window:
    """Sliding-window rate counter."""

    def __init__(self):
        self.hits: deque[float] = deque()

    def allow(self, rate: float, now: float) -> bool:
        if rate is None or rate <= 0:
            return True
        window = max(1.0, 1.0 / rate)
        cap = max(1, int(round(rate * window)))
        while self.hits and self.hits[0] <= now - window:
            self.hits.popleft()
        if len(self.hits) >= cap:
            return False
        self.hits.append(now)
        return True


@dataclass
class _Task:
    task_id: str
    model: str            # as requested
    canonical: str        # models.Model.name
    body: dict
    api_key: str
    t_submit: float
    t_sched: float
    t_end: float
    outcome: str          # SUCCEEDED | FAILED
    fail_code: str | None = None
    fail_message: str | None = None
    expired_url: bool = False
    canceled_at: float | None = None
    width: int = 0
    height: int = 0
    duration: int = 5
    fps: int = 30
    tier: str = "720P"
    ratio: str = "16:9"
    prompt: str = ""
    actual_prompt: str | None = None
    prompt_extend: bool = True
    audible: bool = False  # the model generates a soundtrack for this request
    usage: dict = field(default_factory=dict)

    def status(self, now: float) -> str:
        if self.canceled_at is not None:
            return "CANCELED"
        if now < self.t_sched:
            return "PENDING"
        if now < self.t_end:
            return "RUNNING"
        return self.outcome


class Emulator:
    """A DashScope Wan video-task server on loopback. See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys=("sk-test",),
                 latency=(2.0, 4.0), time_scale: float = 1.0, concurrency=None, submit_rps=None,
                 task_ttl: float = 86400, url_ttl: float = 86400, faults: Faults | None = None,
                 seed: int = 0, workdir=None, region: str = "beijing", render_scale: float = 1.0,
                 query_qps: float = models.QUERY_QPS,
                 upload_ttl: float = models.UPLOAD_TTL_SECONDS):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if not 0 < render_scale <= 1:
            raise ValueError("render_scale must be in (0, 1]")
        self.host = host
        self.port = port
        self.api_keys = tuple(api_keys)
        self.latency = (float(latency[0]), float(latency[1]))
        self.time_scale = float(time_scale)
        self.concurrency = concurrency
        self.submit_rps = submit_rps
        self.task_ttl = float(task_ttl)
        self.url_ttl = float(url_ttl)
        self.upload_ttl = float(upload_ttl)
        self.query_qps = query_qps
        self.faults = faults if faults is not None else Faults()
        self.seed = seed
        self.region = models.REGION_ALIASES.get(region, region)
        self.render_scale = float(render_scale)
        self._own_workdir = workdir is None
        self.workdir = None if workdir is None else os.fspath(workdir)  # tempdir made on start()
        self._secret = hashlib.sha256(f"wanflow-emulator:{seed}".encode()).digest()
        self._lock = threading.RLock()
        self._render_locks: dict[str, threading.Lock] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set = set()
        self._reset_state()

    # ----------------------------------------------------------------- lifecycle
    def _reset_state(self) -> None:
        with self._lock:
            self._rng = random.Random(self.seed)
            self._ids = random.Random(f"ids:{self.seed}")
            self._tasks: dict[str, _Task] = {}
            self._requests: list[dict] = []
            self._submissions: list[dict] = []
            self._policies: dict[str, dict] = {}   # upload_dir -> policy record
            self._objects: dict[str, dict] = {}    # oss key -> object record
            self._submit_windows: dict[str, _Window] = {}
            self._query_window = _Window()
            self._list_window = _Window()
            self._poll_faults_used = 0
            vdir = os.path.join(self.workdir, "videos") if self.workdir else ""
            if vdir and os.path.isdir(vdir):
                shutil.rmtree(vdir, ignore_errors=True)

    def reset(self) -> None:
        """Forget tasks, requests, uploads and rendered videos; faults back to off; re-seed."""
        with self._lock:
            self._reset_state()
            self.faults.update(Faults().to_dict())  # in place: callers may hold the object

    def start(self) -> "Emulator":
        if self._server is not None:
            return self
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="wanflow-emulator-")
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"wanflow-emulator:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    # ----------------------------------------------------------------- inspection
    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def submissions(self) -> list[dict]:
        with self._lock:
            return [dict(s) for s in self._submissions]

    def tasks(self) -> dict[str, dict]:
        now = time.time()
        with self._lock:
            return {tid: self._task_state(t, now) for tid, t in self._tasks.items()}

    def _task_state(self, task: _Task, now: float) -> dict:
        state = {
            "task_id": task.task_id, "model": task.model, "status": task.status(now),
            "submit_time": task.t_submit, "scheduled_time": task.t_sched, "end_time": task.t_end,
            "canceled_at": task.canceled_at, "outcome": task.outcome, "code": task.fail_code,
            "message": task.fail_message, "expired_url": task.expired_url,
            "width": task.width, "height": task.height, "duration": task.duration,
            "fps": task.fps, "resolution": task.tier, "ratio": task.ratio, "prompt": task.prompt,
            "actual_prompt": task.actual_prompt, "usage": dict(task.usage), "body": task.body,
            "expired": now - task.t_submit > self.task_ttl,
        }
        return state

    # ----------------------------------------------------------------- helpers
    def _new_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _limit(self, option, model: str, canonical: str, default):
        if option is None:
            return default
        if isinstance(option, dict):
            if model in option:
                return option[model]
            return option.get(canonical, default)
        return option

    def _sign(self, text: str) -> str:
        mac = hmac.new(self._secret, text.encode(), hashlib.sha1).digest()
        return base64.b64encode(mac).decode()

    def _take(self, name: str) -> bool:
        """Consume one unit of a counting fault."""
        with self._lock:
            value = getattr(self.faults, name)
            if value > 0:
                setattr(self.faults, name, value - 1)
                return True
            return False

    def _throttled(self, code: str, message: str) -> ApiError:
        return ApiError(429, code, message, self._throttle_headers())

    def _throttle_headers(self) -> dict:
        ra = self.faults.retry_after
        if ra is None:
            return {}
        return {"Retry-After": f"{ra:g}"}

    def _check_auth(self, headers) -> str:
        auth = headers.get("Authorization") or ""
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.api_keys:
            raise ApiError(401, "InvalidApiKey", "Invalid API-key provided.")
        return key

    # ----------------------------------------------------------------- submit
    def _submit(self, path: str, headers, body_bytes: bytes, host_url: str) -> tuple[str, dict]:
        """Validate and create a task. Returns ("ok"|"reset"|"error_after_create", payload)."""
        key = self._check_auth(headers)
        if (headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
            raise ApiError(403, "AccessDenied",
                           "current user api does not support synchronous calls")
        try:
            body = json.loads(body_bytes.decode("utf-8")) if body_bytes else None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _invalid(f"The request body is not valid JSON: {err}") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object with model, input, parameters.")
        model = body.get("model")
        if not model or not isinstance(model, str):
            raise ApiError(400, "BadRequest.EmptyModel",
                           "Required parameter(model) missing or empty.")
        info = models.lookup(model)
        if info is None:
            raise ApiError(404, "ModelNotFound", f"Model not found ({model})!")
        wanted = "/" + info.endpoint
        if path != wanted:
            raise ApiError(400, "InvalidURL", URL_ERROR)
        inp = body.get("input")
        if not isinstance(inp, dict) or not inp:
            raise ApiError(400, "BadRequest.EmptyInput", "Required input can't be empty.")
        params = body.get("parameters")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("parameters must be a JSON object.")
        spec = self._validate(model, info, inp, params, headers)

        # Faults that hit valid submits.
        if self._take("submit_reset"):
            return "reset", {}
        if self._take("submit_429"):
            raise self._throttled("Throttling.RateQuota", THROTTLE_MESSAGE)
        if self._take("submit_5xx"):
            raise ApiError(500, "InternalError", INTERNAL_MESSAGE)

        now = time.time()
        with self._lock:
            limit = self._limit(self.concurrency, model, info.name, info.concurrency)
            inflight = sum(1 for t in self._tasks.values()
                           if t.canonical == info.name and t.status(now) in ("PENDING", "RUNNING"))
            if limit is not None and inflight >= limit:
                raise self._throttled("Throttling.RateQuota", THROTTLE_MESSAGE)
            rps = self._limit(self.submit_rps, model, info.name, info.submit_rps)
            window = self._submit_windows.setdefault(info.name, _Window())
            if not window.allow(rps, now):
                raise self._throttled("Throttling.RateQuota", THROTTLE_MESSAGE)
            task = self._create(model, info, body, spec, key, now)
        if self._take("submit_5xx_after_create"):
            return "error_after_create", {"task_id": task.task_id}
        return "ok", {"output": {"task_id": task.task_id, "task_status": "PENDING"}}

    def _create(self, model: str, info: models.Model, body: dict, spec: dict, key: str,
                now: float) -> _Task:
        lo, hi = self.latency
        sim = self._rng.uniform(lo, hi)
        total = sim / self.time_scale
        pending = total * 0.1
        prompt = spec["prompt"]
        outcome, code, message = "SUCCEEDED", None, None
        faults = self.faults
        if any(s and s in prompt for s in faults.fail_prompts):
            outcome, code, message = ("FAILED", "DataInspectionFailed",
                                      "Input data may contain inappropriate content.")
        elif self._take("inspection_fail"):
            outcome, code, message = ("FAILED", "DataInspectionFailed",
                                      "Output data may contain inappropriate content.")
        elif self._take("fail_tasks"):
            outcome, code, message = ("FAILED", "InternalError",
                                      "An internal error has occured during execution, please try "
                                      "again later or contact service support.")
        expired = outcome == "SUCCEEDED" and self._take("expired_urls")
        task = _Task(task_id=self._new_id(), model=model, canonical=info.name, body=body,
                     api_key=key, t_submit=now, t_sched=now + pending, t_end=now + total,
                     outcome=outcome, fail_code=code, fail_message=message, expired_url=expired,
                     width=spec["width"], height=spec["height"], duration=spec["duration"],
                     fps=info.fps, tier=spec["tier"], ratio=spec["ratio"], prompt=prompt,
                     prompt_extend=spec["prompt_extend"], audible=spec["audible"])
        if task.prompt_extend:
            base = prompt.strip().rstrip(".")
            task.actual_prompt = (base + "." + DEFAULT_ACTUAL_SUFFIX) if base else \
                DEFAULT_ACTUAL_SUFFIX.strip()
        task.usage = self._usage(info, spec)
        self._tasks[task.task_id] = task
        self._submissions.append({"task_id": task.task_id, "model": model, "body": body,
                                  "time": now})
        return task

    def _usage(self, info: models.Model, spec: dict) -> dict:
        gen = _generation(info.name)
        dur = spec["duration"]
        sr = int(spec["tier"].rstrip("P"))
        if gen == "2.1":
            return {"video_duration": dur, "video_ratio": f"{spec['width']}*{spec['height']}",
                    "video_count": 1}
        if gen == "2.2":
            return {"video_duration": dur, "video_count": 1, "SR": sr}
        return {"duration": dur, "input_video_duration": 0, "output_video_duration": dur,
                "video_count": 1, "SR": sr, "ratio": spec["ratio"]}

    # ----------------------------------------------------------------- validation
    def _validate(self, model: str, info: models.Model, inp: dict, params: dict, headers) -> dict:
        """Check a submit against the model's capabilities; return what the task needs."""
        resolve = (headers.get("X-DashScope-OssResourceResolve") or "").strip().lower() == "enable"

        # prompt
        prompt = inp.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise _invalid("input.prompt must be a string.")
        prompt = (prompt or "")[: info.prompt_limit]
        if info.kind in ("t2v", "r2v") and not prompt.strip() and not inp.get("template"):
            raise _invalid(f"input.prompt is required for model {model}.")
        neg = inp.get("negative_prompt")
        if neg is not None and not isinstance(neg, str):
            raise _invalid("input.negative_prompt must be a string.")

        def check_url(where: str, value) -> None:
            if not isinstance(value, str) or not value:
                raise _invalid(f"{where} must be a non-empty URL string.")
            if value.startswith(("http://", "https://")):
                return
            if value.startswith("data:"):
                if not re.match(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", value):
                    raise _invalid(f"{where} is not a valid data URI "
                                   "(expected data:<mime>;base64,<data>).")
                return
            if value.startswith("oss://"):
                if not resolve:
                    raise _invalid(f"{where}: oss:// URLs need the header "
                                   "X-DashScope-OssResourceResolve: enable.")
                obj = self._objects.get(value[len("oss://"):])
                if obj is None or time.time() - obj["time"] > self.upload_ttl:
                    raise _invalid(f"{where}: the file {value} does not exist or has expired.")
                if obj["model"] != model:
                    raise _invalid(f"{where}: the file {value} was uploaded for model "
                                   f"{obj['model']}, not {model}.")
                return
            raise _invalid(f"{where} must be an http(s)://, oss:// or data: URL, "
                           f"got {value[:60]!r}.")

        # audio
        if inp.get("audio_url") is not None:
            if not info.audio_input or info.protocol == "media":
                raise _invalid(f"input.audio_url is not supported by model {model}.")
            check_url("input.audio_url", inp["audio_url"])

        # inputs by protocol
        media_types: list[str] = []
        if info.protocol == "img_url":
            if inp.get("img_url") is None:
                raise _invalid(f"input.img_url is required for model {model}.")
            check_url("input.img_url", inp["img_url"])
        elif info.protocol == "frames":
            if inp.get("first_frame_url") is None:
                raise _invalid(f"input.first_frame_url is required for model {model}.")
            check_url("input.first_frame_url", inp["first_frame_url"])
            if inp.get("last_frame_url") is None:
                if not inp.get("template"):
                    raise _invalid(f"input.last_frame_url is required for model {model} "
                                   "(unless input.template is set).")
            else:
                check_url("input.last_frame_url", inp["last_frame_url"])
        elif info.protocol == "references":
            refs = inp.get("reference_urls")
            field_name = "input.reference_urls"
            if refs is None and inp.get("reference_video_urls") is not None:
                refs, field_name = inp.get("reference_video_urls"), "input.reference_video_urls"
            if not isinstance(refs, list) or not refs:
                raise _invalid(f"input.reference_urls is required for model {model}: "
                               f"a list of 1..{info.max_references} URLs.")
            if len(refs) > info.max_references:
                raise _invalid(f"{field_name} has {len(refs)} items; model {model} accepts "
                               f"1..{info.max_references}.")
            for i, ref in enumerate(refs):
                check_url(f"{field_name}[{i}]", ref)
            videos = sum(1 for ref in refs if _looks_like_video(ref))
            if videos > info.max_reference_videos:
                raise _invalid(f"{field_name} has {videos} videos; model {model} accepts at most "
                               f"{info.max_reference_videos} reference videos.")
        elif info.protocol == "media":
            media = inp.get("media")
            if not isinstance(media, list) or not media:
                raise _invalid(f"input.media is required for model {model}: a list of "
                               "{type, url} items.")
            for i, item in enumerate(media):
                if not isinstance(item, dict):
                    raise _invalid(f"input.media[{i}] must be an object with type and url.")
                mtype = item.get("type")
                if mtype not in models.MEDIA_TYPES:
                    raise _invalid(f"input.media[{i}].type {mtype!r} is not valid; allowed: "
                                   + ", ".join(models.MEDIA_TYPES) + ".")
                media_types.append(mtype)
                if mtype != "link":
                    check_url(f"input.media[{i}].url", item.get("url"))
                if item.get("reference_voice") is not None:
                    check_url(f"input.media[{i}].reference_voice", item["reference_voice"])
            if info.kind == "i2v":
                combo = frozenset(media_types)
                if len(combo) != len(media_types) or combo not in models.I2V_MEDIA_COMBOS:
                    allowed = "; ".join("+".join(sorted(c)) for c in models.I2V_MEDIA_COMBOS)
                    raise _invalid(f"input.media types {'+'.join(media_types)} are not a valid "
                                   f"combination for model {model}; allowed: {allowed}.")
            elif info.kind == "r2v":
                allowed_types = ("reference_image", "reference_video", "first_frame")
                for i, mtype in enumerate(media_types):
                    if mtype not in allowed_types:
                        raise _invalid(f"input.media[{i}].type {mtype!r} is not supported by "
                                       f"model {model}; allowed: {', '.join(allowed_types)}.")
                if media_types.count("first_frame") > 1:
                    raise _invalid("input.media: at most one first_frame item is allowed.")
                refs = [t for t in media_types if t != "first_frame"]
                if not 1 <= len(refs) <= info.max_references:
                    raise _invalid(f"input.media needs 1..{info.max_references} reference items "
                                   f"for model {model}, got {len(refs)}.")

        # geometry
        size = params.get("size")
        resolution = params.get("resolution")
        ratio = params.get("ratio")
        if info.geometry == "size":
            allowed = info.allowed_sizes()
            if resolution is not None:
                raise _invalid(f"parameters.resolution is not supported by model {model}; "
                               f"use parameters.size, one of: {', '.join(allowed)}.")
            if ratio is not None:
                raise _invalid(f"parameters.ratio is not supported by model {model}; "
                               f"use parameters.size, one of: {', '.join(allowed)}.")
            if size is None:
                size = models.size_of(info.default_resolution, "16:9")
            if size not in allowed:
                raise _invalid(f"parameters.size {size!r} is not supported by model {model}; "
                               f"allowed: {', '.join(allowed)}.")
            tier, ratio_out = models.SIZE_TIER[size], models.SIZE_RATIO[size]
        else:
            if size is not None:
                raise _invalid(f"parameters.size is not supported by model {model}; use "
                               f"parameters.resolution, one of: {', '.join(info.resolutions)}.")
            tier = info.default_resolution if resolution is None else resolution
            if tier not in info.resolutions:
                raise _invalid(f"parameters.resolution {tier!r} is not supported by model "
                               f"{model}; allowed: {', '.join(info.resolutions)}.")
            if info.geometry == "resolution+ratio":
                ratio_out = "16:9" if ratio is None else ratio
                if ratio_out not in models.RATIOS:
                    raise _invalid(f"parameters.ratio {ratio_out!r} is not supported by model "
                                   f"{model}; allowed: {', '.join(models.RATIOS)}.")
                if "first_frame" in media_types:
                    ratio_out = "16:9"  # ratio is ignored when a first frame leads
            else:
                if ratio is not None:
                    raise _invalid(f"parameters.ratio is not supported by model {model}; its "
                                   "aspect ratio follows the input image.")
                ratio_out = "16:9"
            size = models.size_of(tier, ratio_out) or models.size_of(tier, "16:9")
        width, height = models.dimensions(size)

        # duration
        duration = params.get("duration")
        allowed_d = info.durations
        if duration is None:
            duration = info.default_duration
        if isinstance(duration, bool) or not isinstance(duration, int) or duration not in allowed_d:
            raise _invalid(f"parameters.duration {duration!r} is not supported by model {model}; "
                           f"allowed: {_ranges(allowed_d)} (integer seconds).")
        if (info.max_duration_with_video and "reference_video" in media_types
                and duration > info.max_duration_with_video):
            raise _invalid(f"parameters.duration {duration} is too long for model {model} with a "
                           f"reference_video; allowed: 2-{info.max_duration_with_video}.")

        # flags
        for name in ("prompt_extend", "watermark", "audio"):
            if params.get(name) is not None and not isinstance(params[name], bool):
                raise _invalid(f"parameters.{name} must be true or false.")
        prompt_extend = params.get("prompt_extend", True) is not False
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not 0 <= seed <= models.SEED_MAX):
            raise _invalid(f"parameters.seed must be an integer in [0, {models.SEED_MAX}].")
        shot_type = params.get("shot_type")
        if shot_type is not None:
            if not info.shot_type:
                raise _invalid(f"parameters.shot_type is not supported by model {model}.")
            if shot_type not in ("single", "multi"):
                raise _invalid(f"parameters.shot_type {shot_type!r} is not valid; allowed: "
                               "single, multi.")
            if shot_type == "multi" and info.kind in ("t2v", "i2v") and not prompt_extend:
                raise _invalid("parameters.shot_type 'multi' requires parameters.prompt_extend "
                               "to be true.")
        audible = (not info.silent) and params.get("audio") is not False
        return {"audible": audible, "prompt": prompt, "width": width, "height": height,
                "duration": duration,
                "tier": tier, "ratio": ratio_out, "prompt_extend": prompt_extend}

    # ----------------------------------------------------------------- tasks
    def _task_output(self, task: _Task, now: float, host_url: str) -> dict:
        status = task.status(now)
        out = {"task_id": task.task_id, "task_status": status,
               "submit_time": _fmt_time(task.t_submit)}
        if status == "CANCELED":
            out["end_time"] = _fmt_time(task.canceled_at)
            return out
        if status == "PENDING":
            return out
        out["scheduled_time"] = _fmt_time(task.t_sched)
        if status == "RUNNING":
            return out
        out["end_time"] = _fmt_time(task.t_end)
        if status == "FAILED":
            out["code"] = task.fail_code
            out["message"] = task.fail_message
            return out
        if task.prompt_extend:
            out["orig_prompt"] = task.prompt
            out["actual_prompt"] = task.actual_prompt
        out["video_url"] = self._video_url(task, host_url)
        return out

    def _video_url(self, task: _Task, host_url: str) -> str:
        if task.expired_url:
            expires = int(task.t_end) - 3600
        else:
            expires = int(task.t_end + self.url_ttl)
        sig = self._sign(f"{task.task_id}:{expires}")
        return (f"{host_url}/videos/{task.task_id}.mp4?Expires={expires}"
                f"&OSSAccessKeyId={OSS_ACCESS_KEY_ID}&Signature={quote(sig, safe='')}")

    def _get_task(self, task_id: str, headers, host_url: str) -> dict:
        self._check_auth(headers)
        if self._take("poll_429"):
            raise ApiError(429, "Throttling", "Requests throttling triggered.",
                           self._throttle_headers())
        with self._lock:
            inject_5xx = self.faults.poll_5xx > 0
            if inject_5xx:
                self.faults.poll_5xx -= 1
                n = self._poll_faults_used
                self._poll_faults_used += 1
        if inject_5xx:
            if n % 2 == 0:
                raise ApiError(503, "ServiceUnavailable",
                               "The service is temporarily unavailable, please try again later.")
            raise ApiError(500, "InternalError", INTERNAL_MESSAGE)
        now = time.time()
        with self._lock:
            if not self._query_window.allow(self.query_qps, now):
                raise ApiError(429, "Throttling", "Requests throttling triggered.",
                               self._throttle_headers())
            task = self._tasks.get(task_id)
            if task is None or now - task.t_submit > self.task_ttl:
                return {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            out = {"output": self._task_output(task, now, host_url)}
            if out["output"]["task_status"] == "SUCCEEDED":
                out["usage"] = dict(task.usage)
            return out

    def _cancel(self, task_id: str, headers) -> dict:
        self._check_auth(headers)
        now = time.time()
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or now - task.t_submit > self.task_ttl:
                raise ApiError(400, "UnsupportedOperation",
                               f"Failed to cancel the task {task_id}: task does not exist.")
            status = task.status(now)
            if status != "PENDING":
                raise ApiError(400, "UnsupportedOperation",
                               f"Failed to cancel the task {task_id}: only PENDING tasks can be "
                               f"canceled, the task is {status}.")
            task.canceled_at = now
        return {}

    def _list(self, query: dict, headers) -> dict:
        self._check_auth(headers)
        now = time.time()

        def intq(name, default, lo, hi):
            value = query.get(name)
            if value in (None, ""):
                return default
            try:
                number = int(value)
            except ValueError:
                raise _invalid(f"{name} must be an integer.") from None
            if not lo <= number <= hi:
                raise _invalid(f"{name} must be in [{lo}, {hi}].")
            return number

        page_no = intq("page_no", 1, 1, 10**6)
        page_size = intq("page_size", 10, 1, 100)
        status = query.get("status") or None
        if status and status not in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"):
            raise _invalid("status must be one of PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED.")
        bounds = []
        for name in ("start_time", "end_time"):
            value = query.get(name)
            if value:
                try:
                    bounds.append(_parse_list_time(value))
                except ValueError:
                    raise _invalid(f"{name} must be formatted YYYYMMDDhhmmss.") from None
            else:
                bounds.append(None)
        model_name = query.get("model_name") or None
        with self._lock:
            if not self._list_window.allow(self.query_qps, now):
                raise ApiError(429, "Throttling", "Requests throttling triggered.",
                               self._throttle_headers())
            rows = []
            for task in sorted(self._tasks.values(), key=lambda t: t.t_submit, reverse=True):
                if now - task.t_submit > self.task_ttl:
                    continue
                st = task.status(now)
                if status and st != status:
                    continue
                if model_name and task.model != model_name:
                    continue
                if bounds[0] is not None and task.t_submit < bounds[0]:
                    continue
                if bounds[1] is not None and task.t_submit > bounds[1]:
                    continue
                row = {"task_id": task.task_id, "task_status": st, "model_name": task.model,
                       "region": _region_id(self.region),
                       "api_key_id": hashlib.sha256(task.api_key.encode()).hexdigest()[:16],
                       "submit_time": _fmt_time(task.t_submit)}
                if st not in ("PENDING", "CANCELED"):
                    row["scheduled_time"] = _fmt_time(task.t_sched)
                if st in ("SUCCEEDED", "FAILED"):
                    row["end_time"] = _fmt_time(task.t_end)
                elif st == "CANCELED":
                    row["end_time"] = _fmt_time(task.canceled_at)
                rows.append(row)
        total = len(rows)
        start = (page_no - 1) * page_size
        return {"data": rows[start:start + page_size], "total": total,
                "total_page": math.ceil(total / page_size) if total else 0,
                "page_no": page_no, "page_size": page_size}

    # ----------------------------------------------------------------- uploads
    def _get_policy(self, query: dict, headers, host_url: str) -> dict:
        self._check_auth(headers)
        if query.get("action") != "getPolicy":
            raise _invalid("action must be getPolicy.")
        model = query.get("model")
        if not model:
            raise _invalid("Missing required query parameter: model.")
        if self.region not in models.UPLOAD_REGIONS:
            raise ApiError(403, "AccessDenied",
                           "Temporary file storage (getPolicy) is only available in the China "
                           f"(Beijing) region; it is unavailable in region {self.region}.")
        now = time.time()
        day = datetime.fromtimestamp(now, TZ).strftime("%Y-%m-%d")
        with self._lock:
            upload_dir = f"{OSS_BUCKET}/{self._ids.getrandbits(128):032x}/{day}/{self._new_id()}"
        expires = now + POLICY_TTL
        policy_doc = {
            "expiration": datetime.fromtimestamp(expires, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [["content-length-range", 0, MAX_UPLOAD_MB * 1024 * 1024],
                           ["starts-with", "$key", upload_dir], {"bucket": OSS_BUCKET},
                           {"x-oss-object-acl": "private"}, {"x-oss-forbid-overwrite": "true"}],
        }
        policy = base64.b64encode(json.dumps(policy_doc).encode()).decode()
        signature = self._sign(policy)
        with self._lock:
            self._policies[upload_dir] = {"model": model, "policy": policy,
                                          "signature": signature, "expires": expires}
        return {"data": {
            "policy": policy, "signature": signature, "upload_dir": upload_dir,
            "upload_host": f"{host_url}/oss", "oss_access_key_id": OSS_ACCESS_KEY_ID,
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true",
            "expire_in_seconds": POLICY_TTL, "max_file_size_mb": MAX_UPLOAD_MB,
            "capacity_limit_mb": 999999999,
        }}

    def _oss_upload(self, headers, body: bytes) -> tuple[int, bytes]:
        """Handle the OSS PostObject form. Returns (status, xml-or-empty body)."""
        ctype = headers.get("Content-Type") or ""
        if not ctype.lower().startswith("multipart/form-data"):
            return 400, _oss_error("InvalidArgument", "The request must be multipart/form-data.")
        fields, files = _parse_multipart(ctype, body)
        if fields is None:
            return 400, _oss_error("MalformedPOSTRequest",
                                   "The body of your POST request is not well-formed "
                                   "multipart/form-data.")
        policy = fields.get("policy")
        key = fields.get("key")
        if not policy or fields.get("OSSAccessKeyId") != OSS_ACCESS_KEY_ID:
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: missing or "
                                   "invalid OSSAccessKeyId/policy.")
        if fields.get("Signature") != self._sign(policy):
            return 403, _oss_error("SignatureDoesNotMatch", "The request signature we calculated "
                                   "does not match the signature you provided.")
        with self._lock:
            record = next((r for d, r in self._policies.items() if r["policy"] == policy), None)
            upload_dir = next((d for d, r in self._policies.items() if r["policy"] == policy), None)
        if record is None:
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: unknown policy.")
        if time.time() > record["expires"]:
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: Policy expired.")
        if not key or not key.startswith(upload_dir + "/") or len(key) <= len(upload_dir) + 1:
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: Policy "
                                   "Condition failed: [\"starts-with\", \"$key\", "
                                   f"\"{upload_dir}\"]")
        if fields.get("x-oss-object-acl") != "private":
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: Policy "
                                   "Condition failed: {\"x-oss-object-acl\": \"private\"}")
        if fields.get("x-oss-forbid-overwrite") != "true":
            return 403, _oss_error("AccessDenied", "Invalid according to Policy: Policy "
                                   "Condition failed: {\"x-oss-forbid-overwrite\": \"true\"}")
        if "file" not in files:
            return 400, _oss_error("InvalidArgument", "The file part is missing.")
        data = files["file"]
        if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
            return 400, _oss_error("EntityTooLarge", "Your proposed upload exceeds the maximum "
                                   "allowed size.")
        with self._lock:
            if key in self._objects:
                return 409, _oss_error("FileAlreadyExists", "The object you specified already "
                                       "exists and can not be overwritten.")
            self._objects[key] = {"model": record["model"], "data": data, "time": time.time(),
                                  "content_type": fields.get("x-oss-content-type")}
        status = fields.get("success_action_status") or "204"
        status_code = int(status) if status in ("200", "201", "204") else 204
        return status_code, b""

    def objects(self) -> dict[str, dict]:
        """The fake OSS: key -> {"model", "size", "time", "content_type"}."""
        with self._lock:
            return {k: {"model": o["model"], "size": len(o["data"]), "time": o["time"],
                        "content_type": o["content_type"]} for k, o in self._objects.items()}

    # ----------------------------------------------------------------- videos
    def _video_for(self, task_id: str, query: dict) -> tuple[int, bytes | str, dict]:
        """Check a download URL; returns (status, path-or-xml, headers)."""
        expires = query.get("Expires")
        signature = query.get("Signature")
        if not expires or not signature:
            return 403, _oss_error("AccessDenied", "Missing Expires or Signature."), {}
        if not hmac.compare_digest(signature, self._sign(f"{task_id}:{expires}")):
            return 403, _oss_error("SignatureDoesNotMatch", "The request signature we calculated "
                                   "does not match the signature you provided."), {}
        try:
            exp = int(expires)
        except ValueError:
            return 403, _oss_error("AccessDenied", "Invalid Expires."), {}
        now = time.time()
        if now > exp:
            return 403, _oss_error("AccessDenied", "Request has expired.", extra={
                "Expires": _iso_utc(exp), "ServerTime": _iso_utc(now),
            }), {}
        with self._lock:
            task = self._tasks.get(task_id)
            ok = task is not None and task.status(now) == "SUCCEEDED"
        if not ok:
            return 404, _oss_error("NoSuchKey", "The specified key does not exist."), {}
        return 200, self._render(task), {}

    def _tone(self, seconds: int) -> str:
        """A soft beeping WAV standing in for generated audio (stdlib only)."""
        adir = os.path.join(self.workdir, "audio")
        path = os.path.join(adir, f"tone-{seconds}s.wav")
        with self._lock:
            if os.path.exists(path):
                return path
            os.makedirs(adir, exist_ok=True)
            rate = 16000
            frames = bytearray()
            for i in range(int(rate * seconds)):
                t = i / rate
                on = (t % 1.0) < 0.25
                value = int(6000 * math.sin(2 * math.pi * 440 * t)) if on else 0
                frames += value.to_bytes(2, "little", signed=True)
            tmp = path + ".part"
            with wave.open(tmp, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(bytes(frames))
            os.replace(tmp, path)
            return path

    def _render(self, task: _Task) -> str:
        vdir = os.path.join(self.workdir, "videos")
        dest = os.path.join(vdir, f"{task.task_id}.mp4")
        with self._lock:
            lock = self._render_locks.setdefault(task.task_id, threading.Lock())
        with lock:
            if os.path.exists(dest):
                return dest
            os.makedirs(vdir, exist_ok=True)
            from ... import media  # lazy: av is heavy and only needed for downloads

            width = max(16, int(task.width * self.render_scale) // 2 * 2)
            height = max(16, int(task.height * self.render_scale) // 2 * 2)
            card = media.PreviewCard(
                "emulator", task.task_id[:8], 1, task.prompt or "(no prompt)", float(task.duration),
                width, height, task.fps, model=task.model, label="EMULATOR")
            audio = self._tone(task.duration) if task.audible else None
            media.render_preview(card, dest, audio=audio)
            return dest

    # ----------------------------------------------------------------- control
    def _control(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        name = path[len(CONTROL_PREFIX):].strip("/")
        if method == "GET" and name == "requests":
            return 200, self.requests()
        if method == "GET" and name == "submissions":
            return 200, self.submissions()
        if method == "GET" and name == "tasks":
            return 200, self.tasks()
        if method == "GET" and name == "faults":
            return 200, self.faults.to_dict()
        if method == "POST" and name == "faults":
            try:
                values = json.loads(body or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("expected a JSON object")
                with self._lock:
                    self.faults.update(values)
            except KeyError as err:
                return 400, {"error": f"unknown fault {err.args[0]!r}",
                             "valid": [f.name for f in dataclasses.fields(Faults)]}
            except (ValueError, TypeError) as err:
                return 400, {"error": str(err)}
            return 200, self.faults.to_dict()
        if method == "POST" and name == "reset":
            self.reset()
            return 200, {"ok": True}
        return 404, {"error": f"unknown control endpoint {method} {path}"}


def _looks_like_video(url: str) -> bool:
    if url.startswith("data:"):
        return url.startswith("data:video/")
    return urlsplit(url).path.lower().endswith((".mp4", ".mov", ".webm", ".mkv", ".avi"))


def _iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _ranges(values) -> str:
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


def _region_id(region: str) -> str:
    return {"beijing": "cn-beijing", "singapore": "ap-southeast-1",
            "virginia": "us-east-1"}.get(region, region)


def _oss_error(code: str, message: str, extra: dict | None = None) -> bytes:
    from xml.sax.saxutils import escape
    rid = uuid.uuid4().hex[:24].upper()
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<Error>", f"  <Code>{escape(code)}</Code>",
             f"  <Message>{escape(message)}</Message>", f"  <RequestId>{rid}</RequestId>",
             "  <HostId>dashscope-result.oss-emulator.local</HostId>"]
    for k, v in (extra or {}).items():
        parts.append(f"  <{k}>{escape(str(v))}</{k}>")
    parts.append("</Error>")
    return ("\n".join(parts) + "\n").encode()


def _parse_multipart(content_type: str, body: bytes):
    """(fields, files) from a multipart/form-data body, or (None, None) if malformed."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    try:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except Exception:  # noqa: BLE001 - any parse failure is a malformed form
        return None, None
    if not msg.is_multipart():
        return None, None
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_param("filename", header="content-disposition") is not None or name == "file":
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wanflow-emulator"
    sys_version = ""
    timeout = 60

    @property
    def emu(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def setup(self):
        super().setup()
        with self.emu._lock:
            self.emu._conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.emu._lock:
                self.emu._conns.discard(self.connection)

    # --- plumbing
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _host_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.emu.url

    def _record(self, method, path, query, body) -> dict:
        headers = {}
        for k, v in self.headers.items():
            headers[k] = "Bearer ***" if k.lower() == "authorization" else v
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = None
        rec = {"method": method, "path": path, "query": query, "headers": headers,
               "json": parsed, "time": time.time(), "status": None}
        with self.emu._lock:
            self.emu._requests.append(rec)
        return rec

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None,
              rec: dict | None = None, head_only: bool = False) -> None:
        if rec is not None:
            rec["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _json(self, status: int, payload: dict, rec: dict | None, headers: dict | None = None,
              request_id: str | None = None) -> None:
        if request_id is not None:
            payload = {"request_id": request_id, **payload}
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._send(status, body, "application/json", headers, rec)

    def _error(self, err: ApiError, rec: dict | None) -> None:
        rid = self.emu._new_id()
        self._json(err.status, {"request_id": rid, "code": err.code, "message": err.message},
                   rec, headers=err.headers)

    def _drop(self, rec: dict | None) -> None:
        """Close the connection without answering."""
        if rec is not None:
            rec["status"] = None
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- verbs
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body() if method in ("POST", "PUT") else b""
        emu = self.emu

        if path.startswith(CONTROL_PREFIX):
            status, payload = emu._control(method, path, body)
            data = json.dumps(payload, ensure_ascii=False, default=str).encode()
            self._send(status, data, "application/json")
            return

        rec = self._record(method, path, query, body if not path.startswith("/oss") else b"")
        slow = emu.faults.slow_ms
        if slow:
            time.sleep(slow / 1000.0)

        if path.startswith("/videos/"):
            self._download(method, path, query, rec)
            return
        if path.rstrip("/") == "/oss" and method == "POST":
            status, xml = emu._oss_upload(self.headers, body)
            self._send(status, xml, "application/xml" if xml else "text/plain",
                       {"x-oss-request-id": uuid.uuid4().hex[:24].upper()}, rec)
            return

        host_url = self._host_url()
        try:
            if not path.startswith(API_PREFIX + "/"):
                raise ApiError(404, "NotFound", URL_ERROR)
            sub = path[len(API_PREFIX):]
            if method == "POST" and sub.startswith("/services/"):
                kind, payload = emu._submit(sub, self.headers, body, host_url)
                if kind == "reset":
                    self._drop(rec)
                    return
                if kind == "error_after_create":
                    raise ApiError(500, "InternalError",
                                   "An internal error has occured, please try again later or "
                                   "contact service support.")
                self._json(200, payload, rec, request_id=emu._new_id())
                return
            m = re.fullmatch(r"/tasks/([^/]+)", sub)
            if m and method == "GET":
                self._json(200, emu._get_task(m.group(1), self.headers, host_url), rec,
                           request_id=emu._new_id())
                return
            m = re.fullmatch(r"/tasks/([^/]+)/cancel", sub)
            if m and method == "POST":
                self._json(200, emu._cancel(m.group(1), self.headers), rec,
                           request_id=emu._new_id())
                return
            if sub.rstrip("/") == "/tasks" and method == "GET":
                self._json(200, emu._list(query, self.headers), rec, request_id=emu._new_id())
                return
            if sub.rstrip("/") == "/uploads" and method == "GET":
                self._json(200, emu._get_policy(query, self.headers, host_url), rec,
                           request_id=emu._new_id())
                return
            raise ApiError(400, "InvalidURL", URL_ERROR)
        except ApiError as err:
            self._error(err, rec)

    def _download(self, method: str, path: str, query: dict, rec: dict) -> None:
        emu = self.emu
        m = re.fullmatch(r"/videos/([0-9a-fA-F-]+)\.mp4", path)
        if not m or method not in ("GET", "HEAD"):
            self._send(404, _oss_error("NoSuchKey", "The specified key does not exist."),
                       "application/xml", rec=rec)
            return
        try:
            status, result, _ = emu._video_for(m.group(1), query)
        except Exception as err:  # noqa: BLE001 - a render failure must still answer
            self._send(500, _oss_error("InternalError", f"rendering failed: {err}"),
                       "application/xml", rec=rec)
            return
        if status != 200:
            self._send(status, result, "application/xml",
                       {"x-oss-request-id": uuid.uuid4().hex[:24].upper()}, rec)
            return
        if method == "GET" and emu._take("download_reset"):
            self._drop(rec)
            return
        with open(result, "rb") as fh:
            data = fh.read()
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{hashlib.md5(data).hexdigest().upper()}"',
                   "x-oss-request-id": uuid.uuid4().hex[:24].upper()}
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            parsed = _parse_range(rng, size)
            if parsed is None:
                self._send(416, _oss_error("InvalidRange", "The requested range is not "
                                           "satisfiable."), "application/xml",
                           {"Content-Range": f"bytes */{size}"}, rec)
                return
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        part = data[start:end + 1]
        if method == "GET" and emu._take("truncated_downloads"):
            rec["status"] = status
            self.send_response(status)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(part)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(part[: len(part) // 2])
            self._drop(None)
            rec["status"] = status
            return
        self._send(status, part, "video/mp4", headers, rec, head_only=(method == "HEAD"))


def _parse_range(header: str, size: int):
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            return None
        start, end = max(0, size - suffix), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return None
    return start, end


def serve(host: str = "127.0.0.1", port: int = 8765, **options) -> None:
    """Run an emulator in the foreground until SIGINT/SIGTERM (for `wanflow emulator`)."""
    stop = threading.Event()
    emu = Emulator(host, port, **options).start()
    previous = {}

    def handle(signum, frame):  # noqa: ARG001
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)
    print(f"wanflow emulator listening on {emu.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
