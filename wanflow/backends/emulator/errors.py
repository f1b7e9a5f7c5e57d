"""Error answers of the emulated API: an HTTP status with DashScope's code/message envelope."""
from __future__ import annotations

# Messages as the service words them (reference §1.2, §5).
URL_ERROR = "url error, please check url!"
THROTTLE_MESSAGE = "Requests rate limit exceeded, please try again later."
QUERY_THROTTLE_MESSAGE = "Requests throttling triggered."
INTERNAL_MESSAGE = ("An internal error has occured, please try again later or contact service "
                    "support.")
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable, please try again later."


class ApiError(Exception):
    """An error answer: HTTP status + DashScope `code`/`message` envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    """400 InvalidParameter, the answer to any request the model does not accept."""
    return ApiError(400, "InvalidParameter", message)
