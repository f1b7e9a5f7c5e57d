"""The emulator's HTTP side: read a request, route it to the `Emulator`, write the answer.

Answers are DashScope's JSON envelope (with the time-scale header), OSS XML for uploads and
result URLs, video bytes with ranges, or — for the faults that ask for it — a connection
closed without an answer. Control calls under `/_emulator` are answered and not recorded.
"""
from __future__ import annotations

import json
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from . import errors, oss
from .errors import ApiError
from .videos import answer_range

if TYPE_CHECKING:
    from .server import Emulator

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_emulator"
TIME_SCALE_HEADER = "X-Wanflow-Time-Scale"


class EmulatorServer(ThreadingHTTPServer):
    """The HTTP server of one `Emulator`: a thread per connection, each with a `Handler`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, Handler)
        self.emulator = emulator


class Handler(BaseHTTPRequestHandler):
    """One connection to the emulator: each request is routed to its `Emulator`."""

    protocol_version = "HTTP/1.1"
    server_version = "wanflow-emulator"
    sys_version = ""
    timeout = 60

    server: EmulatorServer

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def log_message(self, fmt, *args):  # silence the default stderr log
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
        headers = {k: "Bearer ***" if k.lower() == "authorization" else v
                   for k, v in self.headers.items()}
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

    def _send_head(self, status: int, length: int, content_type: str, headers: dict | None,
                   rec: dict | None) -> None:
        if rec is not None:
            rec["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None,
              rec: dict | None = None, head_only: bool = False) -> None:
        self._send_head(status, len(body), content_type, headers, rec)
        if not head_only:
            self.wfile.write(body)

    def _json(self, status: int, payload: dict, rec: dict | None, headers: dict | None = None,
              request_id: str | None = None) -> None:
        if request_id is not None:
            payload = {"request_id": request_id, **payload}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {TIME_SCALE_HEADER: f"{self.emu.time_scale:g}", **(headers or {})}
        self._send(status, body, "application/json", headers, rec)

    def _error(self, err: ApiError, rec: dict | None) -> None:
        envelope = {"request_id": self.emu._new_id(), "code": err.code, "message": err.message}
        self._json(err.status, envelope, rec, headers=err.headers)

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
        if emu.faults.slow_ms:
            time.sleep(emu.faults.slow_ms / 1000.0)

        if path.startswith("/videos/"):
            self._download(method, path, query, rec)
            return
        if path.rstrip("/") == "/oss" and method == "POST":
            status, xml = emu._oss_upload(self.headers, body)
            self._send(status, xml, "application/xml" if xml else "text/plain",
                       {"x-oss-request-id": oss.request_id()}, rec)
            return
        try:
            self._api(method, path, query, body, rec)
        except ApiError as err:
            self._error(err, rec)

    def _api(self, method: str, path: str, query: dict, body: bytes, rec: dict) -> None:
        emu = self.emu
        host_url = self._host_url()
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, "NotFound", errors.URL_ERROR)
        sub = path[len(API_PREFIX):]
        if method == "POST" and sub.startswith("/services/"):
            kind, payload = emu._submit(sub, self.headers, body)
            if kind == "reset":
                self._drop(rec)
                return
            if kind == "error_after_create":
                raise ApiError(500, "InternalError", errors.INTERNAL_MESSAGE)
            self._json(200, payload, rec, request_id=emu._new_id())
            return
        m = re.fullmatch(r"/tasks/([^/]+)", sub)
        if m and method == "GET":
            answer = emu._get_task(m.group(1), self.headers, host_url)
        elif (m := re.fullmatch(r"/tasks/([^/]+)/cancel", sub)) and method == "POST":
            answer = emu._cancel(m.group(1), self.headers)
        elif sub.rstrip("/") == "/tasks" and method == "GET":
            answer = emu._list(query, self.headers)
        elif sub.rstrip("/") == "/uploads" and method == "GET":
            answer = emu._get_policy(query, self.headers, host_url)
        else:
            raise ApiError(400, "InvalidURL", errors.URL_ERROR)
        self._json(200, answer, rec, request_id=emu._new_id())

    def _download(self, method: str, path: str, query: dict, rec: dict) -> None:
        emu = self.emu
        m = re.fullmatch(r"/videos/([0-9a-fA-F-]+)\.mp4", path)
        if not m or method not in ("GET", "HEAD"):
            self._send(404, oss.oss_error("NoSuchKey", "The specified key does not exist."),
                       "application/xml", rec=rec)
            return
        try:
            result = emu._video_for(m.group(1), query)
        except Exception as err:  # noqa: BLE001 - a render failure must still answer
            self._send(500, oss.oss_error("InternalError", f"rendering failed: {err}"),
                       "application/xml", rec=rec)
            return
        if isinstance(result, tuple):
            status, xml = result
            self._send(status, xml, "application/xml", {"x-oss-request-id": oss.request_id()},
                       rec)
            return
        if method == "GET" and emu._take("download_reset"):
            self._drop(rec)
            return
        with open(result, "rb") as fh:
            data = fh.read()
        status, part, headers = answer_range(data, self.headers.get("Range"))
        if status == 416:
            self._send(416, oss.oss_error("InvalidRange", "The requested range is not "
                                          "satisfiable."), "application/xml", headers, rec)
            return
        headers["x-oss-request-id"] = oss.request_id()
        if method == "GET" and emu._take("truncated_downloads"):
            # The full Content-Length, then half the bytes and a closed connection.
            self._send_head(status, len(part), "video/mp4", headers, rec)
            self.wfile.write(part[: len(part) // 2])
            self._drop(None)
            return
        self._send(status, part, "video/mp4", headers, rec, head_only=(method == "HEAD"))
