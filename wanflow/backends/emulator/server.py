"""The emulator: `Emulator` (its state, the lifecycle of its HTTP server, and what answers
each request) and `serve()`. `handler` reads the requests and writes the answers.

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
Throttling.RateQuota.

Times: `latency` (and `latency_spread`) and `time_scale` describe simulated generation (see
`tasks`). Every other duration (task_ttl, url_ttl, upload_ttl, policy expiry, rate windows)
is in real seconds. Every API answer carries `X-Wanflow-Time-Scale: <time_scale>`, so that
wanflow's client on this machine can pace its polls to the emulator's clock.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from typing import Self

from . import errors, oss, rules
from .errors import ApiError
from .faults import Faults, fault_names
from .handler import API_PREFIX, CONTROL_PREFIX, EmulatorServer
from .ids import Ids
from .quotas import Quotas
from .tasks import Failure, ListQuery, Task, TaskBoard
from .validation import Measured, check_submit
from .videos import Measurer, Renderer

EXPIRED_URL_AGE = 3600  # an `expired_urls` fault dates the URL's Expires an hour before the end


class Emulator:
    """A DashScope Wan video-task server on loopback. See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_keys=("sk-test",),
                 latency=(2.0, 4.0), time_scale: float = 1.0, concurrency=None, submit_rps=None,
                 task_ttl: float = rules.TASK_TTL_SECONDS,
                 url_ttl: float = rules.TASK_TTL_SECONDS, faults: Faults | None = None,
                 seed: int = 0, workdir=None, region: str = "beijing", render_scale: float = 1.0,
                 query_qps: float = rules.QUERY_QPS,
                 upload_ttl: float = rules.UPLOAD_TTL_SECONDS,
                 latency_spread: float | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if latency_spread is not None and not 0 <= latency_spread < 1:
            raise ValueError("latency_spread must be in [0, 1)")
        if not 0 < render_scale <= 1:
            raise ValueError("render_scale must be in (0, 1]")
        self.host = host
        self.port = port
        self.api_keys = tuple(api_keys)
        self.latency = (float(latency[0]), float(latency[1]))
        self.latency_spread = latency_spread
        self.time_scale = float(time_scale)
        self.concurrency = concurrency
        self.submit_rps = submit_rps
        self.task_ttl = float(task_ttl)
        self.url_ttl = float(url_ttl)
        self.upload_ttl = float(upload_ttl)
        self.query_qps = query_qps
        self.faults = faults if faults is not None else Faults()
        self.seed = seed
        self.region = rules.REGION_ALIASES.get(region, region)
        self.render_scale = float(render_scale)
        self._own_workdir = workdir is None
        self.workdir = None if workdir is None else os.fspath(workdir)  # tempdir made on start()
        self._secret = hashlib.sha256(f"wanflow-emulator:{seed}".encode()).digest()
        self._lock = threading.RLock()
        self._renderer = Renderer()
        self._measurer = Measurer()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set = set()
        self._reset_state()

    # ----------------------------------------------------------------- lifecycle
    def _reset_state(self) -> None:
        with self._lock:
            self._ids = Ids(self.seed)
            self._board = TaskBoard(seed=self.seed, latency=self.latency,
                                    time_scale=self.time_scale, ttl=self.task_ttl,
                                    spread=self.latency_spread)
            self._quotas = Quotas(concurrency=self.concurrency, submit_rps=self.submit_rps,
                                  query_qps=self.query_qps)
            self._storage = oss.TempStorage(self._secret, self._ids, self.upload_ttl)
            self._requests: list[dict] = []
            self._submissions: list[dict] = []
            self._poll_faults_used = 0
            videos = os.path.join(self.workdir, "videos") if self.workdir else ""
            if videos and os.path.isdir(videos):
                shutil.rmtree(videos, ignore_errors=True)

    def reset(self) -> None:
        """Forget tasks, requests, uploads and rendered videos; faults back to off; re-seed."""
        with self._lock:
            self._reset_state()
            self.faults.update(Faults().to_dict())  # in place: callers may hold the object

    def start(self) -> Self:
        if self._server is not None:
            return self
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="wanflow-emulator-")
        server = EmulatorServer((self.host, self.port), self)
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
        for conn in conns:  # keep-alive connections would otherwise outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Self:
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
            return {t.task_id: t.inspect(now, self._board.ttl) for t in self._board.all()}

    def objects(self) -> dict[str, dict]:
        """The fake OSS: key -> {"model", "size", "time", "content_type"}."""
        return {key: {"model": u.model, "size": len(u.data), "time": u.time,
                      "content_type": u.content_type}
                for key, u in self._storage.uploads().items()}

    # ----------------------------------------------------------------- helpers
    def _new_id(self) -> str:
        return self._ids.uuid()

    def _take(self, name: str) -> bool:
        """Consume one unit of a counting fault."""
        with self._lock:
            value = getattr(self.faults, name)
            if value > 0:
                setattr(self.faults, name, value - 1)
                return True
            return False

    def _throttled(self, code: str, message: str) -> ApiError:
        retry_after = self.faults.retry_after
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return ApiError(429, code, message, headers)

    def _check_auth(self, headers) -> str:
        scheme, _, key = (headers.get("Authorization") or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.api_keys:
            raise ApiError(401, "InvalidApiKey", "Invalid API-key provided.")
        return key

    # ----------------------------------------------------------------- task API
    def _submit(self, path: str, headers, body_bytes: bytes) -> tuple[str, dict]:
        """Validate and create a task. Returns ("ok"|"reset"|"error_after_create", payload)."""
        key = self._check_auth(headers)
        submission = check_submit(path, headers, body_bytes,
                                  lambda k: self._storage.owner(k, time.time()), self._measure)
        # Faults that hit valid submits.
        if self._take("submit_reset"):
            return "reset", {}
        if self._take("submit_429"):
            raise self._throttled("Throttling.RateQuota", errors.THROTTLE_MESSAGE)
        if self._take("submit_5xx"):
            raise ApiError(500, "InternalError", errors.INTERNAL_MESSAGE)
        now = time.time()
        rule = submission.rule
        with self._lock:
            in_flight = self._board.in_flight(rule.name, now)
            if not self._quotas.admit_submit(submission.model, rule, in_flight, now):
                raise self._throttled("Throttling.RateQuota", errors.THROTTLE_MESSAGE)
            failure = self._failure_for(submission.prompt)
            task = self._board.create(self._new_id(), submission, key, now, failure=failure,
                                      expired_url=failure is None and self._take("expired_urls"))
            self._submissions.append({"task_id": task.task_id, "model": task.model,
                                      "body": submission.body, "time": now})
        if self._take("submit_5xx_after_create"):
            return "error_after_create", {"task_id": task.task_id}
        return "ok", {"output": {"task_id": task.task_id, "task_status": "PENDING"}}

    def _failure_for(self, prompt: str) -> Failure | None:
        """The injected failure a new task will end with, if any."""
        if any(s and s in prompt for s in self.faults.fail_prompts):
            return Failure("DataInspectionFailed", "Input data may contain inappropriate content.")
        if self._take("inspection_fail"):
            return Failure("DataInspectionFailed",
                           "Output data may contain inappropriate content.")
        if self._take("fail_tasks"):
            return Failure("InternalError", "An internal error has occured during execution, "
                           "please try again later or contact service support.")
        return None

    def _get_task(self, task_id: str, headers, host_url: str) -> dict:
        self._check_auth(headers)
        if self._take("poll_429"):
            raise self._throttled("Throttling", errors.QUERY_THROTTLE_MESSAGE)
        with self._lock:
            inject_5xx = self._take("poll_5xx")
            if inject_5xx:
                nth = self._poll_faults_used
                self._poll_faults_used += 1
        if inject_5xx:
            if nth % 2 == 0:
                raise ApiError(503, "ServiceUnavailable", errors.UNAVAILABLE_MESSAGE)
            raise ApiError(500, "InternalError", errors.INTERNAL_MESSAGE)
        now = time.time()
        with self._lock:
            if not self._quotas.allow_query(now):
                raise self._throttled("Throttling", errors.QUERY_THROTTLE_MESSAGE)
            task = self._board.get(task_id, now)
            if task is None:
                return {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            if task.status(now) != "SUCCEEDED":
                return {"output": task.output(now, None)}
            return {"output": task.output(now, self._video_url(task, host_url)),
                    "usage": task.usage}

    def _cancel(self, task_id: str, headers) -> dict:
        self._check_auth(headers)
        with self._lock:
            self._board.cancel(task_id, time.time())
        return {}

    def _list(self, query: dict, headers) -> dict:
        self._check_auth(headers)
        now = time.time()
        wanted = ListQuery.parse(query)
        with self._lock:
            if not self._quotas.allow_list(now):
                raise self._throttled("Throttling", errors.QUERY_THROTTLE_MESSAGE)
            return self._board.page(wanted, now, self.region)

    # ----------------------------------------------------------------- storage and videos
    def _measure(self, url: str) -> Measured | None:
        """The length and size of an uploaded medium (what the emulator holds); None for
        anything else, or what does not decode."""
        if not url.startswith("oss://") or self.workdir is None:
            return None
        upload = self._storage.uploads().get(url[len("oss://"):])
        if upload is None:
            return None
        return self._measurer.measure(upload.data, self.workdir)

    def _get_policy(self, query: dict, headers, host_url: str) -> dict:
        self._check_auth(headers)
        return {"data": self._storage.issue_policy(query, self.region, host_url, time.time())}

    def _oss_upload(self, headers, body: bytes) -> tuple[int, bytes]:
        """Handle the OSS PostObject form. Returns (status, xml-or-empty body)."""
        return self._storage.receive(headers.get("Content-Type") or "", body, time.time())

    def _video_url(self, task: Task, host_url: str) -> str:
        if task.expired_url:
            expires = int(task.ends) - EXPIRED_URL_AGE
        else:
            expires = int(task.ends + self.url_ttl)
        return oss.result_url(self._secret, host_url, task.task_id, expires)

    def _video_for(self, task_id: str, query: dict) -> str | tuple[int, bytes]:
        """Check a download URL: the path of the video, or (status, XML error)."""
        now = time.time()
        refusal = oss.refuse_result_url(self._secret, task_id, query, now)
        if refusal is not None:
            return 403, refusal
        with self._lock:
            task = self._board.stored(task_id)
        if task is None or task.status(now) != "SUCCEEDED" or self.workdir is None:
            return 404, oss.oss_error("NoSuchKey", "The specified key does not exist.")
        return self._renderer.video(task, self.workdir, self.render_scale)

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
                    raise TypeError("expected a JSON object")
                with self._lock:
                    self.faults.update(values)
            except KeyError as err:
                return 400, {"error": f"unknown fault {err.args[0]!r}", "valid": fault_names()}
            except (ValueError, TypeError) as err:
                return 400, {"error": str(err)}
            return 200, self.faults.to_dict()
        if method == "POST" and name == "reset":
            self.reset()
            return 200, {"ok": True}
        return 404, {"error": f"unknown control endpoint {method} {path}"}


def serve(host: str = "127.0.0.1", port: int = 8765, **options) -> None:
    """Run an emulator in the foreground until SIGINT/SIGTERM (for `wanflow emulator`)."""
    stop = threading.Event()
    emu = Emulator(host, port, **options).start()
    previous = {}

    def handle(signum, frame):
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
