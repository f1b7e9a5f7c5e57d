import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WANFLOW = [sys.executable, "-m", "wanflow"]
# Emulated tasks take about a second: poll on that scale, not the real API's minutes.
FAST_POLLING = {"WANFLOW_POLL_FIRST": "0.2", "WANFLOW_POLL_MAX": "0.4"}


def run_cli(args, cwd=None, env=None, timeout=300, check=None):
    """Run the wanflow CLI in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(FAST_POLLING)
    full_env.update(env or {})
    proc = subprocess.run(WANFLOW + list(args), cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def project(tmp_path):
    """An empty project directory (a git-like root) for specs written by a test."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def copy_example(name: str, dest: Path) -> Path:
    src = ROOT / "examples"
    shutil.copytree(src, dest / "examples")
    return dest / "examples" / name


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Small preview clips shared (read-only) by the media tests: see media_helpers."""
    from media_helpers import make_clips  # PyAV loads only when a test uses the clips
    return make_clips(tmp_path_factory.mktemp("clips"))
