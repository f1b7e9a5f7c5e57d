"""The suite tests what a user installs. `.ci/run` installs the package (not editable) and
sets WANFLOW_TEST_INSTALLED=1; a wanflow imported from the source tree there would test
code that no user runs (missing package data, an unlisted module)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

import wanflow

pytestmark = pytest.mark.skipif(os.environ.get("WANFLOW_TEST_INSTALLED") != "1",
                                reason="only .ci/run installs the package before testing")


def installed(path: str) -> bool:
    where = Path(path).resolve()
    return "site-packages" in where.parts and ROOT / "wanflow" not in where.parents


def test_the_tests_import_the_installed_package():
    assert installed(wanflow.__file__), wanflow.__file__


def test_the_cli_processes_import_it_too():
    proc = subprocess.run([sys.executable, "-c", "import wanflow; print(wanflow.__file__)"],
                          env=cli_env(), capture_output=True, text=True, check=True)
    assert installed(proc.stdout.strip()), proc.stdout
