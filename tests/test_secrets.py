"""The API key never reaches a log line, lock file, cache record, report or error message."""
import json

from conftest import run_cli
from test_engine import write_spec

from wanflow.backends.emulator import Emulator, Faults

KEY = "sk-secret-0123456789abcdef0123456789abcdef"
QUICK_RETRIES = {"WANFLOW_RETRY_BACKOFF": "0.05"}   # the emulator answers at once


def all_bytes_under(root):
    for path in root.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def test_key_never_written_or_printed(project):
    spec = write_spec(project)
    outputs = []
    faults = Faults(submit_429=2, poll_5xx=2, fail_prompts=("hero turns",), retry_after=0.1)
    with Emulator(api_keys=(KEY,), latency=(0.2, 0.4), render_scale=0.25, faults=faults) as emu:
        base = ["--backend", "dashscope", "--base-url", emu.base_url]
        for args in (["plan", str(spec)], ["run", str(spec)], ["run", str(spec), "--json"],
                     ["status", str(spec), "--json"]):
            proc = run_cli(args + base, env={"DASHSCOPE_API_KEY": KEY, **QUICK_RETRIES})
            outputs.append(proc.stdout + proc.stderr)
        assert any("DataInspectionFailed" in o for o in outputs), "a failure was reported"
        # A wrong key: the error names the problem, not the key.
        proc = run_cli(["run", str(spec)] + base,
                       env={"DASHSCOPE_API_KEY": KEY + "x", **QUICK_RETRIES})
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode != 0 and "InvalidApiKey" in proc.stdout + proc.stderr
        outputs.append(json.dumps(emu.requests()))
    for text in outputs:
        assert KEY not in text
    for path, data in all_bytes_under(project):
        assert KEY.encode() not in data, path
