"""The DashScope backend: Alibaba's Wan task protocol over async HTTP (reference §1–§7).

submit → (the caller journals the task id) → wait → download, plus cancel and list.

* `client` — DashScopeBackend: region and base URL, submit (never retried blindly), cancel,
  list; the public class.
* `uploads` — local inputs as oss:// temporary uploads (cached 47 h of their 48 h) or inline
  data URIs.
* `polling` — when to poll a task, paced under the account's query limit, and what its
  status means.
* `download` — the result video, streamed, hashed, resumed with Range, expiry told apart.
* `errors` — error answers mapped to wanflow's error classes; what is safe to retry.
* `transport` — the only module that imports httpx. The key is only put into requests to
  the DashScope host, never shown by a repr, and scrubbed from every message.
"""
from .client import DashScopeBackend
from .polling import default_poll_first, estimate_seconds
from .uploads import UPLOAD_CACHE_FILE, UPLOAD_REUSE_SECONDS

__all__ = ["UPLOAD_CACHE_FILE", "UPLOAD_REUSE_SECONDS", "DashScopeBackend", "default_poll_first",
           "estimate_seconds"]
