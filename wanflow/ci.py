"""GitHub Actions integration: error annotations and the job's step summary.

Active when `GITHUB_ACTIONS=true` (`Settings.github_actions`); elsewhere `append_summary`
does nothing, so the CLI can call it unconditionally.
"""
from __future__ import annotations

from .review.markdown import REPORT_ARTIFACT
from .settings import Settings
from .text import shown


def _escape(text: str, prop: bool = False) -> str:
    # Line breaks in the workflow-command encoding; every other control character escaped,
    # so a spec cannot forge another annotation or command in the log.
    text = "\n".join(shown(line) for line in str(text).split("\n"))
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def annotation(diag) -> str:
    """`::error file=…,line=…,col=…::message` for a spec diagnostic."""
    w = diag.where
    kind = "warning" if diag.severity == "warning" else "error"
    props = [f"file={_escape(w.file, True)}"]
    if w.line:
        props.append(f"line={w.line}")
    if w.col:
        props.append(f"col={w.col}")
    return f"::{kind} {','.join(props)}::{_escape(f'{diag.message} [at {w.path}]')}"


def append_summary(settings: Settings, markdown: str) -> None:
    """Append to `$GITHUB_STEP_SUMMARY` (a file the runner renders on the job page)."""
    if not settings.github_actions or not settings.step_summary:
        return
    with open(settings.step_summary, "a", encoding="utf-8") as f:
        f.write(markdown.rstrip() + "\n\n")


def _cell(text: object) -> str:
    """A markdown table cell: one line, no control characters, no column breaks."""
    return shown(text).replace("|", "\\|").replace("`", "'")


def plan_markdown(report: dict) -> str:
    t = report["totals"]
    rows = [f"| `{_cell(x['task'])}` | {x['status']} | {_cell(x['reason'])} | "
            f"{'unknown' if x['cost'] is None else format(x['cost'], '.2f')} |"
            for x in report["tasks"] if x["status"] != "cached"][:200]
    unknown = f", {t['unpriced']} with no known price" if t.get("unpriced") else ""
    lines = [f"### wanflow plan: {_cell(report['spec'])} ({_cell(report['backend'])})", "",
             f"{t['tasks']} tasks: **{t['cached']} cached**, **{t['to_run']} to run**, "
             f"{t['in_flight']} in flight; {t['billed_seconds']:.1f} billed s, estimated "
             f"cost **{t['cost']:.2f} {report['currency']}**{unknown} "
             f"({_cell(report['price_basis'])})"]
    if rows:
        lines += ["", "| task | status | reason | cost |", "|---|---|---|---:|", *rows]
    return "\n".join(lines)


def run_markdown(spec: str, backend: str, summary, regenerated: list[str] | tuple = (),
                 run_url: str | None = None) -> str:
    lines = [f"### wanflow run: {_cell(spec)} ({_cell(backend)})", "",
             "| regenerated | cached | failed | skipped | billed s | cost |",
             "|---:|---:|---:|---:|---:|---:|",
             f"| {summary.generated} | {summary.cached} | {summary.failed} | "
             f"{summary.skipped} | {summary.billed_seconds:.1f} | {summary.cost:.2f} |"]
    if regenerated:
        lines += ["", "Shots regenerated:", ""]
        lines += [f"- `{_cell(task.split(':', 1)[1])}`" for task in regenerated[:200]]
        if len(regenerated) > 200:
            lines.append(f"- … and {len(regenerated) - 200} more")
    if summary.failures:
        lines += ["", "Failures:", ""]
        lines += [f"- `{_cell(task)}`: {_cell(message)}" for task, message in summary.failures[:50]]
    if run_url:
        lines += ["", f"Review page: the `{REPORT_ARTIFACT}` artifact of [this run]({run_url})."]
    return "\n".join(lines)
