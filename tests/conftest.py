"""Shared by the tests: the CLI run as a user runs it (in process, or as a process of its
own where that is the point), an empty project, the shared media clips, and the
reliability figures gathered at the end of the session."""
import contextlib
import faulthandler
import logging
import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Emulated tasks take about a second: poll on that scale, not the real API's minutes.
FAST_POLLING = {"WANFLOW_POLL_FIRST": "0.2", "WANFLOW_POLL_MAX": "0.4"}
# Preview animatics at a quarter of the model's size: the same timing at a sixteenth of the
# encoding work (and keys of their own). A test that checks real sizes sets it back to "1".
SMALL_PREVIEWS = {"WANFLOW_PREVIEW_SCALE": "0.25"}
# The terminal's stderr, kept before pytest captures the tests' output: where the stacks of
# a hung CLI call are written, so that they are seen even though the worker dies.
STDERR_FD = 2


def pytest_configure(config):
    global STDERR_FD
    STDERR_FD = os.dup(2)
    # pytest-xdist first hands each worker a block of consecutive tests: with the long trials
    # sorted first, one worker would get them all and run them one after another. Handed
    # out one at a time, they start together on every worker (unless asked otherwise).
    if getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 1


def cli_env(env=None) -> dict:
    """The environment a CLI run gets: the test's own, without any wanflow or DashScope
    setting (no key unless the test gives one), with fast polling and small previews."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WANFLOW_", "DASHSCOPE_"))}
    return {**full, **FAST_POLLING, **SMALL_PREVIEWS, **(env or {})}


class LastResort(logging.Handler):
    """What Python does with a warning logged when no handler is configured, as in the
    `wanflow` command: the message on stderr (pytest's own handlers would swallow it)."""

    def emit(self, record):
        sys.stderr.write(self.format(record) + "\n")


def run_cli(args, cwd=None, env=None, timeout=300, check=None):
    """Run `wanflow ARGS` as a user would from a shell, but in this process (click's test
    runner): stdout and stderr apart, the exit code, logged warnings and an uncaught
    exception's traceback on stderr as the interpreter would print them. A run still going
    after `timeout` seconds dumps every thread's stack and ends the test process (a hang
    must not stall the suite). Only what needs a process of its own (signals, killing a
    run, a second process contending for the cache) starts `wanflow` as a subprocess (see
    `start_cli`)."""
    from click.testing import CliRunner

    from wanflow.cli import main

    wanted = cli_env(env)
    overrides = {**{k: None for k in os.environ if k not in wanted}, **wanted}
    warnings = LastResort(logging.WARNING)
    logging.getLogger().addHandler(warnings)
    faulthandler.dump_traceback_later(timeout, exit=True, file=STDERR_FD)
    try:
        with contextlib.chdir(cwd or os.getcwd()):
            result = CliRunner().invoke(main, [str(a) for a in args], env=overrides,
                                        prog_name="wanflow")
    finally:
        faulthandler.cancel_dump_traceback_later()
        logging.getLogger().removeHandler(warnings)
    stderr = result.stderr
    if result.exc_info is not None and not isinstance(result.exc_info[1], SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    proc = subprocess.CompletedProcess(["wanflow", *map(str, args)], result.exit_code,
                                       result.stdout, stderr)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def wanflow_command() -> list[str]:
    """The installed `wanflow` console script (`python -m wanflow` where there is none)."""
    exe = Path(sys.executable).with_name("wanflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wanflow"]


def start_cli(args, env=None) -> subprocess.Popen:
    """`wanflow ARGS` in a process of its own, with `cli_env`: for a run that is to be
    signalled or killed, or that must hold the cache while another run tries it."""
    return subprocess.Popen(wanflow_command() + [str(a) for a in args], env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_process(args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """`wanflow ARGS` in a process of its own, to the end: the end-to-end runs."""
    return subprocess.run(wanflow_command() + [str(a) for a in args], env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def pytest_collection_modifyitems(items):
    """The long trials first: with several workers, the short tests then fill the gaps
    instead of one worker finishing a long trial alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# -- the reliability figures ---------------------------------------------------------------
# Each reliability suite prints a line starting "RELIABILITY:". They are gathered from every
# worker's captured output and repeated at the end of the session, so CI logs show them
# without -s, with the fault scenarios summed into one fault-matrix line.

FIGURES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        FIGURES.extend(line for line in report.capstdout.splitlines()
                       if line.startswith("RELIABILITY: "))


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("reliability")
    for line in sorted(FIGURES):
        terminalreporter.write_line(line)
    faults = [dict(re.findall(r"(\w+)=(\d+)", line)) for line in FIGURES
              if line.split()[1].startswith("fault:")]
    if faults:
        sums = {k: sum(int(f.get(k, 0)) for f in faults) for k in ("faults", "lost",
                                                                     "duplicates")}
        terminalreporter.write_line(f"RELIABILITY: fault-matrix trials={len(faults)} " + " ".join(
            f"{k}={v}" for k, v in sums.items()))


@pytest.fixture
def project(tmp_path):
    """An empty project directory (a git-like root) for specs written by a test."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def copy_example(name: str, dest: Path) -> Path:
    """The examples folder copied under `dest` (a run writes next to its spec); the path of
    the spec `name` in it."""
    shutil.copytree(ROOT / "examples", dest / "examples")
    return dest / "examples" / name


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Small preview clips shared (read-only) by the media tests: see media_helpers."""
    from media_helpers import make_clips  # PyAV loads only when a test uses the clips
    return make_clips(tmp_path_factory.mktemp("clips"))
