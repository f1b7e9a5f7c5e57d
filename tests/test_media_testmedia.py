"""write_tone and write_card_image: deterministic generated media."""
from __future__ import annotations

import pytest
from media_helpers import md5

from wanflow import media
from wanflow.errors import MediaError


def test_write_tone_is_deterministic(tmp_path):
    for fmt in ("wav", "mp3"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        media.write_tone(a, 1.0, fmt=fmt)
        media.write_tone(b, 1.0, fmt=fmt)
        assert md5(a) == md5(b)
        assert media.media_duration(a) == pytest.approx(1.0, abs=0.03)
    with pytest.raises(MediaError):
        media.write_tone(tmp_path / "x.ogg", 1.0, fmt="ogg")
