"""One exception tree for wanflow. Each user-facing error carries the exit code the CLI uses.

Exit codes (DESIGN §5): 0 ok, 1 some tasks failed, 2 invalid spec or usage, 3 budget or
no-spend stop, 4 backend/auth/config error, 130 interrupted. Only the CLI turns these into
exit codes and messages; everything else raises.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec.nodes import Diagnostic


class WanflowError(Exception):
    """Base of every error wanflow raises on purpose."""

    exit_code = 1


class SpecError(WanflowError):
    """The spec is invalid. Carries every diagnostic, not just the first."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class UsageError(WanflowError):
    """Bad command-line usage (unknown target, bad option value)."""

    exit_code = 2


class BudgetError(WanflowError):
    """A `--max-cost` or `--no-spend` limit stopped the run before spending."""

    exit_code = 3


class ConfigError(WanflowError):
    """Missing key, bad region, unusable cache directory and the like."""

    exit_code = 4


class StoreError(WanflowError):
    """The cache directory cannot be used (unwritable, full, locked by another run)."""

    exit_code = 4


class RemoteError(StoreError):
    """The team's remote store cannot be used (unreachable, credentials refused, or it
    does not keep the promises claims rely on)."""


class MediaError(WanflowError):
    """A media file is missing, truncated, undecodable or outside the API's limits."""

    exit_code = 1


class BackendError(WanflowError):
    """A backend (DashScope, preview) failed.

    `code`/`message` are the provider's when it gave them; `retryable` says whether the same
    request may be sent again without risk of paying twice.
    """

    exit_code = 4

    def __init__(self, message, *, code=None, request_id=None, status=None, retryable=False,
                 retry_after=None):
        self.code = code
        self.provider_message = message
        self.request_id = request_id
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        text = f"{code}: {message}" if code else str(message)
        if request_id:
            text += f" (request {request_id})"
        super().__init__(text)


class AuthError(BackendError):
    """Invalid or missing API key, or a key of another region."""


class RateLimited(BackendError):
    """HTTP 429: slow down and try again."""


class TaskFailed(BackendError):
    """The provider ran the task and it FAILED (or was CANCELED / UNKNOWN)."""

    exit_code = 1


class SubmitUncertain(BackendError):
    """A submit was sent but its outcome is unknown (timeout after sending).

    Never retried blindly: resubmitting could pay twice.
    """

    exit_code = 4


class DownloadError(BackendError):
    """Fetching a finished video failed; retried apart from generation."""


class Interrupted(WanflowError):
    exit_code = 130
