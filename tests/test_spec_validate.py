"""`wanflow validate` on invalid and hostile specs: exit 2, one clear line per problem, the
right `file:line:col` and key path, no traceback, bounded output."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from wanflow.cli import main

HERE = Path(__file__).resolve().parent
INVALID = HERE / "specs" / "invalid"
CORPUS = sorted(INVALID.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<lc>\d+:\d+) (?P<path>\$.*?) \| (?P<sub>.+)$")


def validate(*args: str):
    """Run `wanflow validate ARGS` in-process; return (exit code, output, seconds)."""
    runner = CliRunner()
    start = time.perf_counter()
    result = runner.invoke(main, ["validate", *args], catch_exceptions=False)
    return result.exit_code, result.output, time.perf_counter() - start


def expectation(path: Path) -> tuple[str, str, str]:
    first = path.read_text("utf-8").splitlines()[0] if path.stat().st_size else ""
    m = EXPECT.match(first)
    assert m, f"{path.name}: first line must be `# expect: L:C $.path | substring`"
    return m["lc"], m["path"], m["sub"]


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 40
    kinds = {p.name.split("-")[0] for p in CORPUS}
    assert kinds == {"schema", "sem", "hostile"}


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.stem)
def test_invalid_spec(spec):
    lc, path, sub = expectation(spec)
    code, out, _ = validate(str(spec))
    assert code == 2, out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if f":{lc}: error: " in line]
    matching = [line for line in lines if f"[at {path}]" in line and sub in line]
    assert matching, f"expected {lc} {path} | {sub!r} in:\n{out}"


def test_every_line_is_a_diagnostic():
    code, out, _ = validate(str(INVALID / "sem-cycle.yaml"))
    assert code == 2
    for line in out.splitlines():
        assert re.match(r"^\S+:\d+:\d+: (error|warning): .+ \[at \$\S*\]$", line), line


def test_every_error_is_reported_not_just_the_first(tmp_path):
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "wanflow: 1\n"
        "name: many\n"
        "scenes:\n"
        "  - id: a\n"
        "    shots:\n"
        "      - id: x\n"
        "        model: wan2.6-t2v\n"
        "        prompt: p\n"
        "        resolution: 480P\n"        # tier not offered
        "        durtion: 5\n"              # misspelled key
        "        takes: 2\n"
        "        pick: 4\n"                 # pick > takes
        "      - id: y\n"
        "        model: wan2.7-t2vv\n"      # unknown model
        "        prompt: q\n"
        "films:\n"
        "  - {id: f, path: renders/f.mp4, scenes: [b]}\n")  # unknown scene
    code, out, _ = validate(str(spec))
    assert code == 2
    errors = [line for line in out.splitlines() if ": error: " in line]
    assert len(errors) == 5, out
    positions = [tuple(map(int, re.search(r":(\d+):(\d+): error", e).groups())) for e in errors]
    assert positions == sorted(positions)
    assert "did you mean 'duration'?" in out and "did you mean 'wan2.7-t2v'?" in out
    assert "does not offer 480P" in out and "pick 4 is out of range" in out
    assert "unknown scene 'b'" in out


def test_json_output_lists_diagnostics():
    code, out, _ = validate("--json", str(INVALID / "sem-unknown-asset.yaml"))
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False
    diag = doc["diagnostics"][0]
    assert diag["severity"] == "error" and diag["path"] == "$.scenes[0].shots[0].audio"
    assert diag["line"] == 13 and diag["col"] == 16


# --------------------------------------------------------------------------- warnings

def test_prompt_over_the_limit_is_a_warning_not_an_error(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text(
        "wanflow: 1\nname: long\nsettings: {accept_status: [legacy]}\n"
        "scenes:\n  - id: a\n    shots:\n"
        "      - id: x\n        model: wan2.6-t2v\n        size: '1280*720'\n"
        f"        prompt: {'word ' * 320}\n"
        f"        negative_prompt: {'blur ' * 120}\n")
    code, out, _ = validate(str(spec))
    assert code == 0, out
    assert "warning: prompt is 1599 characters; the API silently truncates prompts over 1500 " \
           "characters for wan2.6-t2v" in out
    assert "warning: negative_prompt is 599 characters" in out
    assert "ok: 1 scene, 1 shot, 0 films, 5 s of video, 2 warnings" in out


def test_ratio_on_image_led_model_is_a_warning(tmp_path):
    (tmp_path / ".git").mkdir()
    media = HERE / "specs" / "media"
    (tmp_path / "still.png").write_bytes((media / "still.png").read_bytes())
    spec = tmp_path / "i2v.yaml"
    spec.write_text(
        "wanflow: 1\nname: i2v\nassets: {still: still.png}\nscenes:\n  - id: a\n    shots:\n"
        "      - id: x\n        model: wan2.6-i2v\n        first_frame: still\n"
        "        ratio: '9:16'\n        resolution: 720P\n")
    code, out, _ = validate(str(spec))
    assert code == 0, out
    assert ("i2v.yaml:10:16: warning: wan2.6-i2v ignores ratio: "
            "the aspect follows the first frame") in out


# --------------------------------------------------------------------------- hostile input

def _hostile(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, "utf-8")
    else:
        path.write_bytes(data)
    return path


def billion_laughs() -> str:
    lines = ["wanflow: 1", "name: lol", "a0: &a0 [" + ",".join(['"lol"'] * 10) + "]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("scenes: *a9")
    return "\n".join(lines) + "\n"


def var_bomb() -> str:
    lines = ["wanflow: 1", "name: bomb", "vars:", "  v0: lollollollol"]
    for i in range(1, 40):
        lines.append(f"  v{i}: ${{v{i - 1}}}${{v{i - 1}}}")
    lines += ["scenes:", "  - id: a", "    shots:",
              "      - {id: x, model: wan2.7-t2v, prompt: '${v39}'}"]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias-bomb": (billion_laughs, "aliases expand to more than 100000 YAML nodes"),
    "node-flood": (lambda: "wanflow: 1\nname: x\nvars: [" + "0," * 150_000 + "0]\n",
                   "more than 100000 YAML nodes"),
    "deep-flow": (lambda: "wanflow: 1\nname: x\nvars: " + "[" * 200_000 + "]" * 200_000 + "\n",
                  "nest"),
    "deep-block": (lambda: "wanflow: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(400)),
                   "nested too deeply (more than 100 levels)"),
    "oversize": (lambda: "wanflow: 1\nname: x\ndescription: " + "x" * (3 * 1024 * 1024) + "\n",
                 "spec file is too large: 3145761 bytes (the limit is 2 MiB)"),
    "binary-junk": (lambda: random.Random(7).randbytes(4096) + b"\x00",
                    "binary data, not a YAML spec (NUL byte at byte offset"),
    "not-utf8": (lambda: b"wanflow: 1\nname: caf\xe9\n",
                 "not UTF-8 text: invalid byte 0xe9 at byte offset 20"),
    "utf16": (lambda: "wanflow: 1\n".encode("utf-16"), "UTF-16"),
    "python-tag": (lambda: "wanflow: 1\nname: !!python/object/apply:os.system ['touch PWNED']\n",
                   "unsupported YAML tag !!python/object/apply:os.system"),
    "python-name-tag": (lambda: "wanflow: 1\nname: !!python/name:os.system\n",
                        "unsupported YAML tag !!python/name:os.system"),
    "binary-tag": (lambda: "wanflow: 1\nname: !!binary aGVsbG8=\n",
                   "unsupported YAML tag !!binary"),
    "tagged-mapping": (lambda: "wanflow: 1\nname: t\nvars: !!python/object:os.Foo {a: 1}\n",
                       "unsupported YAML tag !!python/object:os.Foo"),
    "empty": (lambda: "", "empty spec"),
    "only-comments": (lambda: "# nothing here\n\n", "empty spec"),
    "scalar-top": (lambda: "just a string\n", "top level of a spec must be a mapping"),
    "self-alias": (lambda: "wanflow: 1\nname: &n [*n]\n", "alias *n refers to no anchor"),
    "huge-int": (lambda: "wanflow: 1\nname: t\nseed: " + "9" * 5000 + "\n", None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input(tmp_path, name, monkeypatch):
    make, message = HOSTILE[name]
    monkeypatch.chdir(tmp_path)
    path = _hostile(tmp_path, f"{name}.yaml", make())
    code, out, _ = validate(path.name)
    assert code == 2, out
    assert "Traceback" not in out
    assert not (tmp_path / "PWNED").exists()
    if message is not None:
        lines = out.strip().splitlines()
        assert len(lines) == 1, out          # one clear line
        assert message in lines[0], out
        assert lines[0].startswith(f"{name}.yaml:")


def test_var_expansion_is_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _hostile(tmp_path, "varbomb.yaml", var_bomb())
    code, out, _ = validate(path.name)
    assert code == 2
    assert "interpolated text is longer than 100000 characters" in out
    assert len(out) < 20_000


def test_directory_and_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    code, out, _ = validate("adir")
    assert code == 2
    assert out.strip() == "adir:0:0: error: adir is a directory, not a spec file [at $]"
    code, out, _ = validate("nothere.yaml")
    assert code == 2 and out.strip() == "nothere.yaml:0:0: error: no such file: nothere.yaml [at $]"


def test_large_valid_spec_is_fast(tmp_path):
    """A spec just under the size limit, full of shots, still validates (its speed is
    measured in bench/, not here)."""
    shots = "".join(f"      - {{id: s{i}, prompt: 'shot number {i} of a long film'}}\n"
                    for i in range(3000))
    spec = tmp_path / "big.yaml"
    spec.write_text("wanflow: 1\nname: big\ndefaults: {model: wan2.7-t2v, duration: 2}\n"
                    "scenes:\n  - id: a\n    shots:\n" + shots)
    code, out, _ = validate(str(spec))
    assert code == 0, out[:2000]
    assert "3000 shots" in out


def test_console_script_on_hostile_input(tmp_path):
    """The installed `wanflow` command: exit 2, no traceback, nothing executed."""
    exe = Path(sys.executable).with_name("wanflow")
    if not exe.exists():
        pytest.skip("console script not installed next to the interpreter")
    _hostile(tmp_path, "evil.yaml",
             "wanflow: 1\nname: !!python/object/apply:os.system ['touch PWNED']\n")
    proc = subprocess.run([str(exe), "validate", "evil.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                          check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.startswith("evil.yaml:2:7: error: unsupported YAML tag")
    assert not (tmp_path / "PWNED").exists()


def test_messages_escape_control_characters_from_the_spec(tmp_path, monkeypatch):
    """Quoted values, key names and included file names cannot drive the terminal."""
    monkeypatch.chdir(tmp_path)
    _hostile(tmp_path, "ctl.yaml", 'wanflow: 1\nname: "a\\x07b\\e[2J\\u202e"\n'
             '"k\\x1b]0;t\\x07": 1\ninclude: ["x\\x1b[31m.yaml"]\nscenes: []\n')
    code, out, _ = validate("ctl.yaml")
    assert code == 2
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", out), repr(out)
    assert "name 'a\\x07b\\x1b[2J\\u202e' is not valid" in out
    assert "unknown key 'k\\x1b]0;t\\x07'" in out
    assert "x\\x1b[31m.yaml" in out
