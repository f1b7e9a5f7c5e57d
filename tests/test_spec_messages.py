"""The wording helpers of diagnostics."""
from __future__ import annotations

from wanflow.spec import messages


def test_message_helpers():
    assert messages.format_numbers(range(2, 16)) == "2–15"
    assert messages.format_numbers([5, 10]) == "5, 10"
    assert messages.format_numbers([3, 4, 5, 8]) == "3–5, 8"
    assert messages.did_you_mean("durtion", ["duration", "ratio"]) == "; did you mean 'duration'?"
    assert messages.did_you_mean("zzz", ["duration"]) == ""
