"""DashScope error answers → wanflow's error classes (reference §5), and what is safe to retry.

Every text taken from a response goes through `scrub`, so a provider echoing the key never
puts it into an error message.
"""
from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from ...errors import AuthError, BackendError, RateLimited, SubmitUncertain
from .transport import Response

Scrub = Callable[[object], str]

# Internal retries (getPolicy, the OSS form, downloads): the first pause, doubling up to the cap.
RETRY_BACKOFF = 0.5
RETRY_BACKOFF_CAP = 8.0

# Task failure codes after which the same request may be submitted again (failed tasks are
# not billed). InternalError.Algo is a media-URL problem (reference §5): fix, don't retry.
RETRYABLE_TASK_CODES = ("InternalError", "ModelServiceFailed", "SystemError")
# 429 codes that are about money or quota, not speed: waiting a moment does not help.
QUOTA_429_CODES = ("Throttling.AllocationQuota", "PrepaidBillOverdue", "PostpaidBillOverdue",
                   "CommodityNotPurchased")

UNCERTAIN_ADVICE = ("the submit may have created a task that is billed; check `GET /tasks` "
                    "(wanflow status) or the Model Studio console for it, then rerun with "
                    "--resubmit-uncertain to submit again")


def task_code_retryable(code: str) -> bool:
    """Whether a FAILED task with this code may be submitted again."""
    return ((code.startswith(RETRYABLE_TASK_CODES) and code != "InternalError.Algo")
            or "timeout" in code.lower())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `Retry-After-Ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _xml_field(text: str, name: str) -> str | None:
    m = re.search(rf"<{name}>(.*?)</{name}>", text, re.DOTALL)
    return m.group(1).strip() if m else None


def parse_error(resp: Response, scrub: Scrub) -> tuple[str | None, str, str | None]:
    """(code, message, request_id) of an error response, verbatim from the provider."""
    code = message = rid = None
    try:
        data = resp.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        code = data.get("code")
        message = data.get("message") or data.get("msg")
        rid = data.get("request_id")
        err = data.get("error")
        if isinstance(err, dict):
            code = code or err.get("code") or err.get("type")
            message = message or err.get("message")
    else:
        text = resp.text.strip()
        code = _xml_field(text, "Code")  # OSS answers in XML
        message = _xml_field(text, "Message") or text[:500]
        rid = _xml_field(text, "RequestId")
    rid = rid or resp.headers.get("x-request-id")
    if not message:
        message = f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
    return (scrub(code) if code else None), scrub(message), rid


def api_error(resp: Response, *, op: str, scrub: Scrub, base_url: str) -> BackendError:
    """The exception for an HTTP error answer of the API to `op` (submit, poll, ...)."""
    status = resp.status_code
    code, message, rid = parse_error(resp, scrub)
    should_retry = resp.headers.get("x-should-retry", "").lower()
    kw = {"code": code, "request_id": rid, "status": status,
          "retry_after": retry_after(resp.headers)}
    if status == 401:
        return AuthError(f"{message} (check DASHSCOPE_API_KEY; keys only work in their own "
                         f"region — this backend talks to {base_url})", retryable=False, **kw)
    if status == 429:
        if code and code.startswith(QUOTA_429_CODES):
            return BackendError(message, retryable=False, **kw)
        return RateLimited(message, retryable=should_retry != "false", **kw)
    if status in (408, 503):  # the gateway did not take the request on
        return BackendError(message, retryable=should_retry != "false", **kw)
    if status >= 500:
        if op == "submit":
            return SubmitUncertain(f"{message} — HTTP {status} after the submit was sent: "
                                   f"{UNCERTAIN_ADVICE}", retryable=False, **kw)
        return BackendError(message, retryable=True, **kw)
    return BackendError(message, retryable=False, **kw)
