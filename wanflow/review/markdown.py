"""The diff as a pull-request comment: text and a link to the review page.

GitHub shows no local images in a comment, so the comment says what changed and what it
costs, and links to the run whose artifact holds the page with the frames.
"""
from __future__ import annotations

from ..text import shown

REPORT_ARTIFACT = "wanflow-report"   # the artifact name examples/ci/github-actions.yml uses


def cell(text: object) -> str:
    """A markdown table cell: one line, no control characters, no column breaks."""
    return shown(text).replace("|", "\\|").replace("`", "'")


def change_summary(data: dict) -> str:
    """One sentence: how many shots changed, and what the change costs."""
    counts: dict[str, int] = {}
    for item in data["shots"]:
        counts[item["change"]] = counts.get(item["change"], 0) + 1
    said = ", ".join(f"{n} {change}" for change, n in counts.items()) or "no shot changed"
    c = data["cost"]
    unknown = f", {c['unpriced']} with no known price" if c["unpriced"] else ""
    return (f"Shots: {said}. Cost of the change: {c['amount']:.2f} {c['currency']} for "
            f"{c['generations']} generation(s), {c['billed_seconds']:.1f} billed s{unknown}.")


def diff_markdown(data: dict, run_url: str | None = None) -> str:
    base = data["base"]
    lines = [f"### wanflow diff: {cell(data['spec'])}", "",
             f"Compared with `{cell(base['ref'])}` ({cell(base['how'])}).", "",
             cell(change_summary(data))]
    rows = [f"| `{cell(item['id'])}` | {cell(item['change'])} | {cell(item['how'])} | "
            + ("price unknown" if item.get("cost") is None and "cost" in item
               else f"{item['cost']:.2f}" if item.get("cost") else "") + " |"
            for item in data["shots"] + data["assemblies"]][:200]
    if rows:
        lines += ["", "| what | change | how | cost |", "|---|---|---|---:|", *rows]
    lines += ["", f"Prices: {cell(data['cost']['basis'])}."]
    if run_url:
        lines += ["", (f"Review page (frames, takes, pick commands): the "
                       f"`{REPORT_ARTIFACT}` artifact of [this run]({run_url}).")]
    return "\n".join(lines)
