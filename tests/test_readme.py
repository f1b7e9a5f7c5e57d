"""The README's specs validate: every ```yaml block that is a spec, written beside the film
example (whose relative includes and media it names) in a copy of the examples."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from conftest import ROOT, copy_example

from wanflow import models
from wanflow.cli import main

BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_specs() -> list[str]:
    specs = []
    for block in BLOCK.findall((ROOT / "README.md").read_text("utf-8")):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines[:1] == ["wanflow: 1"] or (
                lines[:1] and lines[0].startswith("# yaml-language-server:")
                and lines[1:2] == ["wanflow: 1"]):
            specs.append(block)
    return specs


def test_the_readme_has_a_headline_spec():
    assert readme_specs(), "no ```yaml block of README.md is a spec"


@pytest.mark.parametrize("index", range(len(readme_specs())))
def test_readme_spec_validates(tmp_path, index):
    (tmp_path / ".git").mkdir()
    film_dir = copy_example("film", tmp_path)
    spec = film_dir / f"readme-{index}.yaml"
    spec.write_text(readme_specs()[index], "utf-8")
    result = CliRunner().invoke(main, ["validate", str(spec)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ": ok: " in result.output and "warning" not in result.output


# --------------------------------------------------------------------------- the model table
# The README's model table is rendered from wanflow/models.py here, the one table the
# validator, the planner and the backends read (`python tests/test_readme.py` rewrites it).

TABLE_START = "<!-- model table: rendered from wanflow/models.py by tests/test_readme.py -->"
TABLE_END = "<!-- end of model table -->"


def _seconds(m) -> str:
    if m.fixed_duration is not None:
        return f"{m.fixed_duration} (fixed)"
    d = list(m.durations)
    text = f"{d[0]}–{d[-1]}" if len(d) > 2 and d == list(range(d[0], d[-1] + 1)) else \
        ", ".join(map(str, d))
    return " or ".join([text, *m.duration_words()])


def _geometry(m) -> str:
    if m.geometry == "size":
        return "`size` (or resolution + ratio)"
    if m.geometry == "resolution":
        return "resolution (the image's aspect)"
    return "resolution + ratio" + (" (incl. adaptive)" if "adaptive" in m.ratios else "")


def _audio(m) -> str:
    words = [w for w, on in (("input", m.audio_input), ("generates", m.auto_audio),
                             ("switch", m.audio_switch), ("audio_setting", m.audio_setting))
             if on]
    return ", ".join(words) or "silent"


def model_table() -> str:
    rows = [("| model | kind | status | seconds | resolutions | geometry | audio "
             "| snapshots in use | retires |"), "|---|---|---|---|---|---|---|---|---|"]
    for m in models.MODELS.values():
        ends = models.retirement(m.name)
        rows.append(f"| `{m.name}` | {m.kind} | {m.status} | {_seconds(m)} | "
                    f"{', '.join(m.resolutions)} | {_geometry(m)} | {_audio(m)} | "
                    f"{', '.join(f'`{s}`' for s in m.snapshots) or '—'} | "
                    f"{ends.isoformat() if ends else '—'} |")
    return "\n".join(rows)


def _readme_with_table(text: str) -> str:
    head, _, rest = text.partition(TABLE_START + "\n")
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{model_table()}\n{TABLE_END}{tail}"


def test_readme_model_table_is_the_model_table():
    text = (ROOT / "README.md").read_text("utf-8")
    assert TABLE_START in text and TABLE_END in text
    assert text == _readme_with_table(text), "run: python tests/test_readme.py"


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(_readme_with_table(readme.read_text("utf-8")), "utf-8")
