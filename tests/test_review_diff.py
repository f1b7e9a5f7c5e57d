"""`wanflow diff`: the spec and lock at a git ref against the working ones, by request."""
import json

import git_repo
from conftest import run_cli
from test_engine import write_spec


def _repo(tmp_path):
    root = git_repo.init(tmp_path)
    spec = write_spec(root)
    (root / ".gitignore").write_text(".wanflow/\nrenders/\n")
    git_repo.commit(root, "the demo spec")
    return root, spec


def _diff(spec, *args, env=None, check=0):
    proc = run_cli(["diff", str(spec), "--json", *args], env=env, check=check)
    return json.loads(proc.stdout)


def test_changed_added_removed_and_upstream_shots_with_how(tmp_path):
    _, spec = _repo(tmp_path)
    text = spec.read_text()
    text = text.replace("Extreme long shot over the grassland.", "A lone tree at dusk.")
    text = text.replace("""      - id: hero
        model: wan2.6-i2v
        first_frame: hero
        prompt: "The hero turns to camera."
        duration: 2
        needs: [wide]
""", """      - id: dust
        prompt: "Dust settles."
        duration: 3
""")
    text = text.replace("transition: {type: crossfade, seconds: 0.5}",
                        "transition: {type: crossfade, seconds: 0.25}")
    spec.write_text(text)
    data = _diff(spec, "--base", "HEAD")
    assert data["base"]["ref"] == "HEAD" and not data["new_spec"]
    shots = {s["id"]: s for s in data["shots"]}
    assert shots["chase.wide"]["change"] == "changed"
    assert shots["chase.wide"]["fields"] == ["input.prompt"]
    assert shots["chase.pounce"]["change"] == "upstream changed"      # starts on wide's frame
    assert "chase.wide" in shots["chase.pounce"]["how"]
    assert shots["chase.dust"]["change"] == "added"
    assert shots["chase.hero"]["change"] == "removed"
    scene = next(a for a in data["assemblies"] if a["id"] == "scene:chase")
    assert "transition.seconds" in scene["fields"] and "chase.dust" in scene["how"]
    # The cost of the change: wide, pounce and dust are generated again (wan2.7 at the
    # default region's list prices where known).
    assert data["cost"]["generations"] == 3
    assert data["cost"]["billed_seconds"] == 7.0
    text_out = run_cli(["diff", str(spec), "--base", "HEAD"], check=0).stdout
    assert "chase.wide  changed: input.prompt" in text_out
    assert "cost of the change:" in text_out


def test_a_preview_lock_and_a_paid_lock_of_one_spec_show_no_change(tmp_path):
    root, spec = _repo(tmp_path)
    run_cli(["run", str(spec), "--backend", "preview"], check=0)
    lock = root / "demo.preview.lock"
    (root / "demo.lock").write_text(lock.read_text())   # as if paid work had made them
    git_repo.commit(root, "locks")
    lock.unlink()
    for backend, env in (("preview", None), ("dashscope", {"DASHSCOPE_API_KEY": "sk-test"})):
        data = _diff(spec, "--base", "HEAD", "--backend", backend, env=env)
        assert data["shots"] == [] and data["assemblies"] == [], data
        assert data["cost"]["generations"] == 0


def test_default_base_is_the_merge_base_with_the_default_branch(tmp_path):
    root, spec = _repo(tmp_path)
    git_repo.git(root, "checkout", "-q", "-b", "feature")
    spec.write_text(spec.read_text().replace("The cheetah leaps.", "The cheetah pounces."))
    git_repo.commit(root, "a new prompt")
    data = _diff(spec)
    assert data["base"]["ref"] == "main"
    assert data["base"]["commit"] == git_repo.git(root, "rev-parse", "main")
    assert "merge base of HEAD and main" in data["base"]["how"]
    assert [s["id"] for s in data["shots"]] == ["chase.pounce"]


def test_markdown_for_a_pull_request_links_the_report_artifact(tmp_path):
    _, spec = _repo(tmp_path)
    spec.write_text(spec.read_text().replace("The cheetah leaps.", "The cheetah | pounces."))
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/film",
           "GITHUB_RUN_ID": "42"}
    out = run_cli(["diff", str(spec), "--base", "HEAD", "--format", "markdown"], env=env,
                  check=0).stdout
    assert out.startswith("### wanflow diff: demo")
    assert "| `chase.pounce` | changed | changed: input.prompt |" in out
    assert "https://github.com/acme/film/actions/runs/42" in out and "wanflow-report" in out


def test_a_spec_that_is_new_at_the_base_is_all_added_and_bad_refs_are_usage_errors(tmp_path):
    root = git_repo.init(tmp_path)
    git_repo.commit(root, "empty")
    spec = write_spec(root)
    data = _diff(spec, "--base", "HEAD")
    assert data["new_spec"] and {s["change"] for s in data["shots"]} == {"added"}
    proc = run_cli(["diff", str(spec), "--base", "no-such-ref"], check=2)
    assert "no-such-ref" in proc.stderr and "Traceback" not in proc.stderr
