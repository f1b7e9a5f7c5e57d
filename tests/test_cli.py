"""The command line's shared conventions: ./wanflow.yaml is the spec when none is named."""
from __future__ import annotations

import json

import pytest
from conftest import run_cli

# Every command over a spec, with the options that keep it quick and quiet.
COMMANDS = [["validate"], ["plan"], ["status"], ["graph"], ["report", "--json"],
            ["cache", "verify"], ["cache", "gc"], ["run", "--json"]]


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    folder = tmp_path_factory.mktemp("started")
    run_cli(["init", str(folder)], check=0)
    return folder


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_commands_default_to_wanflow_yaml_here(started, command):
    proc = run_cli(command, cwd=started)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    named = run_cli([*command, "wanflow.yaml"], cwd=started)
    assert named.returncode == 0, named.stdout + named.stderr


def test_plan_without_a_spec_reads_the_one_here(started):
    plan = json.loads(run_cli(["plan", "--json"], cwd=started, check=0).stdout)
    assert plan["spec"] == started.name and len(plan["tasks"]) == 6


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_spec_and_no_wanflow_yaml_is_a_usage_error(tmp_path, command):
    proc = run_cli(command, cwd=tmp_path, check=2)
    assert "no spec file named and no wanflow.yaml in this folder" in proc.stderr
    assert "wanflow init" in proc.stderr and "Traceback" not in proc.stderr
