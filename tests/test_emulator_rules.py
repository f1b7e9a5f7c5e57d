"""The emulator's own rules: independent of the client's capability table, and agreeing with it.

The emulator states the protocol from the reference, so that a wrong fact in
`wanflow.models` fails here (and in the client's tests against the emulator) instead of
being agreed with. When the API changes, both tables change.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wanflow import models
from wanflow.backends import emulator
from wanflow.backends.emulator import rules

PACKAGE = Path(emulator.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    package = "wanflow.backends.emulator"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_emulator_does_not_read_the_client_table():
    for path in sorted(PACKAGE.glob("*.py")):
        imported = _imported_modules(path)
        assert "wanflow.models" not in imported, f"{path.name} imports wanflow.models"


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_client_table_agrees_with_the_emulator(name):
    """Every fact the client relies on about a model, as the emulator states it."""
    client, rule = models.MODELS[name], rules.rule_for(name)
    assert rule is not None, f"the emulator does not know {name}"
    assert rule.name == name
    assert (client.kind, client.protocol, client.geometry) == (rule.kind, rule.inputs,
                                                               rule.geometry)
    assert "/" + client.endpoint == rule.endpoint
    assert client.resolutions == rule.resolutions
    assert client.default_resolution == rule.default_resolution
    assert client.durations == rule.durations
    # A default may be a word (`source`); the emulator states what goes on the wire.
    assert client.wire_duration(None) == rule.default_duration
    assert (client.ratios, client.default_ratio) == (rule.ratios, rule.default_ratio)
    assert ("negative_prompt" not in client.dropped) == rule.negative_prompt
    if client.fixed_duration is not None:
        assert rule.durations == (client.fixed_duration,)
    assert client.prompt_limit == rule.prompt_limit
    assert client.fps == rule.fps
    assert (client.audio_input and client.protocol != "media") == rule.audio_url
    assert (not client.silent) == rule.soundtrack
    assert client.audio_switch == rule.audio_switch
    assert client.shot_type == rule.shot_type
    assert (client.max_references, client.max_reference_videos,
            client.max_duration_with_video) == (rule.max_references, rule.max_reference_videos,
                                                 rule.max_duration_with_video)
    assert (client.concurrency, client.submit_rps) == (rule.concurrency, rule.submit_rps)
    if client.geometry == "size":
        assert client.allowed_sizes() == rule.sizes()


def test_client_and_emulator_know_the_same_models_and_names():
    assert set(models.MODELS) == set(rules.RULES)
    for alias, name in models.ALIASES.items():
        assert rules.rule_for(alias) is rules.RULES[name]
    assert rules.rule_for("wan2.7-t2v-2026-06-12") is rules.RULES["wan2.7-t2v"]
    assert rules.rule_for("wan9-t2v") is None and models.lookup("wan9-t2v") is None


def test_client_and_emulator_share_the_protocol_constants():
    assert models.SIZES == rules.SIZES
    assert models.RATIOS == rules.RATIOS and models.DEFAULT_RATIO == rules.DEFAULT_RATIO
    assert models.MEDIA_TYPES == rules.MEDIA_TYPES
    assert set(models.I2V_MEDIA_COMBOS) == set(rules.I2V_MEDIA_COMBOS)
    assert models.SEED_MAX == rules.SEED_MAX
    assert models.QUERY_QPS == rules.QUERY_QPS
    assert models.TASK_TTL_SECONDS == rules.TASK_TTL_SECONDS
    assert models.UPLOAD_TTL_SECONDS == rules.UPLOAD_TTL_SECONDS
    assert models.UPLOAD_REGIONS == rules.UPLOAD_REGIONS
    assert models.REGION_ALIASES == rules.REGION_ALIASES
    assert set(models.REGIONS) == set(rules.REGION_IDS)
    offset = rules.PROVIDER_TZ.utcoffset(None).total_seconds()
    assert offset == models.PROVIDER_UTC_OFFSET_HOURS * 3600
