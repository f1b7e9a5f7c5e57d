"""A real git repository for the tests of `wanflow diff`, the review page and CI."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
       "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
       "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], env=ENV, capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def init(root: Path) -> Path:
    git(root, "init", "-q", "-b", "main")
    return root


def commit(root: Path, message: str = "change") -> str:
    git(root, "add", "-A", ".")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")
