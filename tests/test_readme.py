"""The README's specs validate: every ```yaml block that is a spec, written beside the film
example (whose relative includes and media it names) in a copy of the examples."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from conftest import ROOT, copy_example

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
