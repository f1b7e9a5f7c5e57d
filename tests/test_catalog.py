"""`wanflow models`: the capability table the validator uses, priced like plan prices."""
from __future__ import annotations

import json

from conftest import run_cli

from wanflow import catalog, models
from wanflow.plan.cost import Pricing


def test_rows_are_the_model_table_itself():
    rows = catalog.rows(Pricing.for_region("singapore"))
    assert [r["model"] for r in rows] == list(models.MODELS)
    for row in rows:
        m = models.MODELS[row["model"]]
        assert row["kind"] == m.kind and row["durations"] == list(m.durations)
        assert row["resolutions"] == list(m.resolutions)
        assert row["audio"] == {"input": m.audio_input, "generates": m.auto_audio,
                                "switch": m.audio_switch}
        if m.geometry == "size":
            assert row["sizes"] == list(m.allowed_sizes()) and row["sizes"]
    by = {r["model"]: r for r in rows}
    assert by["wan2.6-t2v"]["multi_shot"] == "shot_type"
    assert by["wan2.7-t2v"]["multi_shot"] == "prompt"
    assert by["wan2.2-t2v-plus"]["multi_shot"] is None
    assert by["wan2.2-kf2v-flash"]["fixed_duration"] == 5
    assert by["wan2.6-i2v-flash"]["price_per_second"] == {
        "720P": 0.05, "720P/silent": 0.025, "1080P": 0.075, "1080P/silent": 0.0375}
    assert any("first clip + last frame" in i for i in by["wan2.7-i2v"]["inputs"])


def test_prices_follow_the_region_and_the_teams_own():
    beijing = {r["model"]: r for r in catalog.rows(Pricing.for_region("beijing"))}
    assert beijing["wan2.7-t2v"]["price_per_second"] == {"720P": None, "1080P": None}
    assert beijing["wan2.2-i2v-flash"]["currency"] == "CNY"
    own = Pricing.for_region("beijing", {"beijing": {"wan2.7-t2v": {"720P": 0.7}}})
    mine = {r["model"]: r for r in catalog.rows(own)}
    assert mine["wan2.7-t2v"]["price_per_second"]["720P"] == 0.7


def test_models_command_table_and_json(tmp_path):
    text = run_cli(["models", "--region", "singapore"], check=0).stdout
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["model", "kind", "seconds"]
    assert "price/s (USD, singapore)" in lines[0]
    row = next(line for line in lines if line.startswith("wan2.6-t2v "))
    assert "2-15" in row and "size or resolution+ratio" in row and "shot_type" in row
    assert row.endswith("720P 0.1, 1080P 0.15")
    kf2v = lines[lines.index(next(x for x in lines if x.startswith("wan2.2-kf2v-flash"))) + 1]
    assert kf2v.startswith("  inputs: first frame + last frame")
    assert "unknown" in next(x for x in lines if x.startswith("wan2.2-t2v-plus"))

    prices = tmp_path / "prices.toml"
    prices.write_text('[prices.beijing."wan2.7-t2v"]\n"720P" = 0.5\n')
    data = json.loads(run_cli(["models", "--json", "--prices", str(prices)], check=0).stdout)
    t2v = next(r for r in data if r["model"] == "wan2.7-t2v")
    assert t2v["region"] == "beijing" and t2v["price_per_second"]["720P"] == 0.5
