"""`wanflow emulator`: a local HTTP server that speaks DashScope's Wan video task protocol.

It accepts the same submits, polls, cancels, task lists, upload policies and OSS form uploads
as the real service (reference §1-§7), validates each request against its own statement of
the protocol's rules (`rules`, independent of the client's table in `wanflow.models`),
simulates PENDING -> RUNNING -> SUCCEEDED/FAILED on a scaled clock, serves a preview MP4
(rendered lazily by `wanflow.media`) at a signed, expiring URL, enforces per-model quotas,
and injects faults on request. The official `dashscope` SDK works against it.

Standard library only (http.server + threads); the only other wanflow import is `media`,
lazily, when a video is first downloaded or an uploaded medium is measured (Wan 3.0 and
wan2.7-videoedit limit the length of their inputs).

  server      the `Emulator`: its state, lifecycle and answers; `serve()`
  handler     the HTTP side: reading requests, routing them, writing answers
  rules       the per-model table and protocol constants, from the reference
  validation  submit checks per model family (Wan 3.0 and videoedit included) -> `Submission`
  tasks       the task state machine, times, usage, the task list
  quotas      in-flight caps and rate windows (429s)
  oss         getPolicy, the OSS form-POST target, signed result URLs
  videos      preview rendering and byte ranges of result videos; uploads measured
  faults      `Faults` and the CLI option parsing
"""
from .errors import ApiError
from .faults import Faults, options_from_cli, parse_faults, parse_latency
from .server import Emulator, serve

__all__ = ["ApiError", "Emulator", "Faults", "options_from_cli", "parse_faults",
           "parse_latency", "serve"]
