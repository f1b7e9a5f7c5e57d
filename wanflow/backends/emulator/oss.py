"""The object storage side: temporary uploads (reference §7) and signed result URLs (§8).

`getPolicy` hands out a signed PostObject policy for one upload folder; the fake OSS target
accepts the multipart form the SDK sends and enforces what the bucket policy enforces
(signature, key under the folder, `x-oss-object-acl=private`, `x-oss-forbid-overwrite=true`).
An uploaded file is usable as `oss://<key>` by the model it was uploaded for, for `ttl`
seconds. Result videos are served at URLs signed with the same secret and an `Expires`.
OSS answers errors in XML, not in DashScope's JSON envelope.
"""
from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from . import rules
from .errors import ApiError, invalid
from .ids import Ids

ACCESS_KEY_ID = "LTAI5tWanflowEmulator"
BUCKET = "dashscope-instant"
POLICY_TTL = 300          # seconds a getPolicy answer stays valid
MAX_UPLOAD_MB = 100
CAPACITY_LIMIT_MB = 999999999


def sign(secret: bytes, text: str) -> str:
    """OSS-style signature: base64 of HMAC-SHA1."""
    return base64.b64encode(hmac.new(secret, text.encode(), hashlib.sha1).digest()).decode()


def request_id() -> str:
    """An `x-oss-request-id` (random: OSS ids are not part of a replayable session)."""
    return uuid.uuid4().hex[:24].upper()


def oss_error(code: str, message: str, extra: dict | None = None) -> bytes:
    """An OSS XML error document."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<Error>", f"  <Code>{escape(code)}</Code>",
             f"  <Message>{escape(message)}</Message>", f"  <RequestId>{request_id()}</RequestId>",
             "  <HostId>dashscope-result.oss-emulator.local</HostId>"]
    for key, value in (extra or {}).items():
        parts.append(f"  <{key}>{escape(str(value))}</{key}>")
    parts.append("</Error>")
    return ("\n".join(parts) + "\n").encode()


def _iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _denied(condition: str) -> tuple[int, bytes]:
    return 403, oss_error("AccessDenied", f"Invalid according to Policy: {condition}")


@dataclass(frozen=True)
class _Policy:
    upload_dir: str
    model: str
    expires: float


@dataclass(frozen=True)
class Upload:
    """A file in temporary storage."""

    model: str            # the model it was uploaded for; only that model may use it
    data: bytes
    time: float
    content_type: str | None


class TempStorage:
    """getPolicy plus the OSS form-POST target, and the files uploaded through them."""

    def __init__(self, secret: bytes, ids: Ids, ttl: float = rules.UPLOAD_TTL_SECONDS):
        self.secret = secret
        self.ids = ids
        self.ttl = ttl
        self._lock = threading.Lock()
        self._policies: dict[str, _Policy] = {}   # base64 policy document -> what it allows
        self._uploads: dict[str, Upload] = {}     # object key -> file

    def issue_policy(self, query: dict, region: str, host_url: str, now: float) -> dict:
        """The `data` of a `GET /uploads?action=getPolicy&model=M` answer."""
        if query.get("action") != "getPolicy":
            raise invalid("action must be getPolicy.")
        model = query.get("model")
        if not model:
            raise invalid("Missing required query parameter: model.")
        if region not in rules.UPLOAD_REGIONS:
            raise ApiError(403, "AccessDenied",
                           "Temporary file storage (getPolicy) is only available in the China "
                           f"(Beijing) region; it is unavailable in region {region}.")
        day = datetime.fromtimestamp(now, rules.PROVIDER_TZ).strftime("%Y-%m-%d")
        upload_dir = f"{BUCKET}/{self.ids.token()}/{day}/{self.ids.uuid()}"
        expires = now + POLICY_TTL
        document = {
            "expiration": _iso_utc(expires),
            "conditions": [["content-length-range", 0, MAX_UPLOAD_MB * 1024 * 1024],
                           ["starts-with", "$key", upload_dir], {"bucket": BUCKET},
                           {"x-oss-object-acl": "private"}, {"x-oss-forbid-overwrite": "true"}],
        }
        policy = base64.b64encode(json.dumps(document).encode()).decode()
        with self._lock:
            self._policies[policy] = _Policy(upload_dir, model, expires)
        return {
            "policy": policy, "signature": sign(self.secret, policy), "upload_dir": upload_dir,
            "upload_host": f"{host_url}/oss", "oss_access_key_id": ACCESS_KEY_ID,
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true",
            "expire_in_seconds": POLICY_TTL, "max_file_size_mb": MAX_UPLOAD_MB,
            "capacity_limit_mb": CAPACITY_LIMIT_MB,
        }

    def receive(self, content_type: str, body: bytes, now: float) -> tuple[int, bytes]:
        """Handle a PostObject form; (status, XML error or empty body)."""
        if not content_type.lower().startswith("multipart/form-data"):
            return 400, oss_error("InvalidArgument", "The request must be multipart/form-data.")
        fields, files = parse_multipart(content_type, body)
        if fields is None:
            return 400, oss_error("MalformedPOSTRequest", "The body of your POST request is not "
                                  "well-formed multipart/form-data.")
        policy, key = fields.get("policy"), fields.get("key")
        if not policy or fields.get("OSSAccessKeyId") != ACCESS_KEY_ID:
            return _denied("missing or invalid OSSAccessKeyId/policy.")
        if fields.get("Signature") != sign(self.secret, policy):
            return 403, oss_error("SignatureDoesNotMatch", "The request signature we calculated "
                                  "does not match the signature you provided.")
        with self._lock:
            grant = self._policies.get(policy)
        if grant is None:
            return _denied("unknown policy.")
        if now > grant.expires:
            return _denied("Policy expired.")
        folder = grant.upload_dir
        if not key or not key.startswith(folder + "/") or len(key) <= len(folder) + 1:
            return _denied(f'Policy Condition failed: ["starts-with", "$key", "{folder}"]')
        for name in ("x-oss-object-acl", "x-oss-forbid-overwrite"):
            wanted = "private" if name == "x-oss-object-acl" else "true"
            if fields.get(name) != wanted:
                return _denied(f'Policy Condition failed: {{"{name}": "{wanted}"}}')
        if "file" not in files:
            return 400, oss_error("InvalidArgument", "The file part is missing.")
        data = files["file"]
        if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
            return 400, oss_error("EntityTooLarge", "Your proposed upload exceeds the maximum "
                                  "allowed size.")
        with self._lock:
            if key in self._uploads:
                return 409, oss_error("FileAlreadyExists", "The object you specified already "
                                      "exists and can not be overwritten.")
            self._uploads[key] = Upload(grant.model, data, now, fields.get("x-oss-content-type"))
        status = fields.get("success_action_status") or "204"
        return (int(status) if status in ("200", "201", "204") else 204), b""

    def owner(self, key: str, now: float) -> str | None:
        """The model `oss://<key>` was uploaded for; None if it does not exist or has expired."""
        with self._lock:
            upload = self._uploads.get(key)
        if upload is None or now - upload.time > self.ttl:
            return None
        return upload.model

    def uploads(self) -> dict[str, Upload]:
        with self._lock:
            return dict(self._uploads)


def parse_multipart(content_type: str, body: bytes):
    """(fields, files) from a multipart/form-data body, or (None, None) if malformed."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except Exception:  # noqa: BLE001 - any parse failure is a malformed form
        return None, None
    # The HTTP policy makes EmailMessage objects (older typeshed says Message).
    if not isinstance(message, email.message.EmailMessage) or not message.is_multipart():
        return None, None
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        if part.get_param("filename", header="content-disposition") is not None or name == "file":
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


# --------------------------------------------------------------------------- result URLs

def result_url(secret: bytes, host_url: str, task_id: str, expires: int) -> str:
    """The signed, expiring URL of a task's video."""
    signature = quote(sign(secret, f"{task_id}:{expires}"), safe="")
    return (f"{host_url}/videos/{task_id}.mp4?Expires={expires}"
            f"&OSSAccessKeyId={ACCESS_KEY_ID}&Signature={signature}")


def refuse_result_url(secret: bytes, task_id: str, query: dict, now: float) -> bytes | None:
    """The 403 XML error for a bad or expired result URL; None if the URL is valid."""
    expires, signature = query.get("Expires"), query.get("Signature")
    if not expires or not signature:
        return oss_error("AccessDenied", "Missing Expires or Signature.")
    if not hmac.compare_digest(signature, sign(secret, f"{task_id}:{expires}")):
        return oss_error("SignatureDoesNotMatch", "The request signature we calculated does "
                         "not match the signature you provided.")
    try:
        deadline = int(expires)
    except ValueError:
        return oss_error("AccessDenied", "Invalid Expires.")
    if now > deadline:
        return oss_error("AccessDenied", "Request has expired.",
                         extra={"Expires": _iso_utc(deadline), "ServerTime": _iso_utc(now)})
    return None
