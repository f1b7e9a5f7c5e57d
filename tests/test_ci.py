"""GitHub Actions: the step summary of a run lists what was regenerated, the cost and where
the review page is."""
from conftest import run_cli
from test_engine import write_spec

from wanflow.settings import Settings

ACTIONS = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "acme/film", "GITHUB_RUN_ID": "4242"}


def test_run_url_comes_from_the_environment_at_the_edge():
    assert Settings.resolve(ACTIONS).run_url == "https://github.com/acme/film/actions/runs/4242"
    assert Settings.resolve({**ACTIONS, "GITHUB_RUN_ID": "4x"}).run_url is None
    assert Settings.resolve({**ACTIONS, "GITHUB_SERVER_URL": "http://x"}).run_url is None


def test_step_summary_lists_regenerated_shots_cost_and_the_report_link(project):
    spec = write_spec(project)
    summary = project / "summary.md"
    env = {**ACTIONS, "GITHUB_STEP_SUMMARY": str(summary)}
    run_cli(["run", str(spec), "--backend", "preview"], env=env, check=0)
    text = summary.read_text()
    assert "### wanflow run: demo (preview/2@0.25)" in text   # the tests' small previews
    assert "Shots regenerated:" in text
    for shot in ("chase.wide#1", "chase.pounce#1", "chase.hero#1"):
        assert f"- `{shot}`" in text
    assert "| 3 |" in text and "0.00 |" in text       # regenerated count, cost
    assert "`wanflow-report` artifact of [this run](https://github.com/acme/film/actions/" \
           "runs/4242)" in text
    summary.unlink()
    run_cli(["run", str(spec), "--backend", "preview"], env=env, check=0)
    assert "Shots regenerated:" not in summary.read_text()   # nothing was, the second time


def test_example_workflow_comments_the_diff_and_uploads_the_report():
    import yaml
    from conftest import ROOT

    from wanflow.review.markdown import REPORT_ARTIFACT

    flow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    review = flow["jobs"]["review"]["steps"]
    runs = "\n".join(step.get("run", "") for step in review)
    assert "wanflow diff" in runs and "--format markdown" in runs and "gh pr comment" in runs
    assert "--backend dashscope" not in runs     # a pull request never pays
    for job in ("render", "review"):
        uploads = [s for s in flow["jobs"][job]["steps"]
                   if s.get("uses", "").startswith("actions/upload-artifact")]
        assert REPORT_ARTIFACT in [s["with"]["name"] for s in uploads]
