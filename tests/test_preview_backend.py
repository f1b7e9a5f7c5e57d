"""The preview backend's scale: the size rule, the identity, and the setting."""
import math

import pytest

from wanflow import backends
from wanflow.backends.preview import PreviewBackend, scaled
from wanflow.errors import ConfigError
from wanflow.settings import Settings


@pytest.mark.parametrize("size,scale,expected", [
    ((1280, 720), 1.0, (1280, 720)),
    ((1280, 720), 0.25, (320, 180)),
    ((832, 480), 0.25, (208, 120)),
    ((1920, 1080), 0.3, (576, 324)),
    ((1080, 1920), 0.1, (108, 192)),
    ((720, 720), 0.001, (2, 2)),
])
def test_scaled_sizes_are_even_and_keep_the_aspect(size, scale, expected):
    width, height = scaled(*size, scale)
    assert (width, height) == expected
    assert width % 2 == 0 and height % 2 == 0
    if min(expected) > 2:
        assert math.isclose(width / height, size[0] / size[1], rel_tol=0.02)


def test_a_scaled_backend_has_its_own_identity():
    assert PreviewBackend().identity == "preview/2"
    assert PreviewBackend(scale=1.0).identity == "preview/2"
    assert PreviewBackend(scale=0.25).identity == "preview/2@0.25"


def test_pull_names_outputs_at_the_scale_the_run_made_them():
    """`wanflow pull` plans with a naming-only backend: at the run's scale, its keys are
    the ones the scaled run stored."""
    settings = Settings(backend="preview", preview_scale=0.25)
    choice = backends.select("preview", None, False)
    assert backends.naming_only(choice, settings).identity == backends.make(
        choice, settings).identity == "preview/2@0.25"


def test_the_setting_comes_from_the_environment():
    assert Settings.resolve({}).preview_scale == 1.0
    assert Settings.resolve({"WANFLOW_PREVIEW_SCALE": "0.5"}).preview_scale == 0.5
    for bad in ("0", "-0.5", "1.5", "nan", "inf", "half"):
        with pytest.raises(ConfigError, match="WANFLOW_PREVIEW_SCALE"):
            Settings.resolve({"WANFLOW_PREVIEW_SCALE": bad})
