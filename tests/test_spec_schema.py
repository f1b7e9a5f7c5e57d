"""The JSON Schema: the committed file is what the package ships, it describes and closes
every object, its model lists are generated from the model table, and it accepts every
example on its own."""
from __future__ import annotations

import json

import jsonschema
from spec_files import ROOT

from wanflow import models
from wanflow.spec import build
from wanflow.spec import schema as spec_schema
from wanflow.spec import yaml as spec_yaml


def test_schema_text_is_the_committed_schema():
    text = spec_schema.schema_text()
    assert text == (ROOT / "schemas" / "wanflow.schema.json").read_text("utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_committed_schema_is_generated_from_the_model_table():
    """Fails when models.py changed and `python -m wanflow.spec.schema --write` was not run."""
    committed = (ROOT / "schemas" / "wanflow.schema.json").read_text("utf-8")
    assert spec_schema.render(spec_schema.generate()) == committed
    assert spec_schema.main(["--check"]) == 0


def test_generate_reads_the_model_table_and_write_rewrites_the_file(monkeypatch, tmp_path):
    copy = tmp_path / "wanflow.schema.json"
    copy.write_text((ROOT / "schemas" / "wanflow.schema.json").read_text("utf-8"), "utf-8")
    monkeypatch.setattr(spec_schema, "committed_path", lambda: str(copy))
    monkeypatch.setattr(models, "RATIOS", models.RATIOS + ("21:9",))
    monkeypatch.setattr(models, "SEED_MAX", 99)
    defs = spec_schema.generate()["$defs"]
    assert defs["ratio"]["enum"][-1] == "21:9" and defs["seed"]["maximum"] == 99
    assert spec_schema.main(["--check"]) == 1
    assert spec_schema.main(["--write"]) == 0
    assert json.loads(copy.read_text("utf-8"))["$defs"]["ratio"]["enum"][-1] == "21:9"
    assert spec_schema.main(["--check"]) == 0


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_schema_describes_every_property_and_closes_objects():
    schema = spec_schema.schema()
    for path, node in _walk(schema):
        props = node.get("properties")
        if isinstance(props, dict) and not path.endswith(".properties"):
            for name, sub in props.items():
                assert sub.get("description"), f"{path}.properties.{name} has no description"
            assert node.get("additionalProperties") is False, f"{path} is open"


def test_schema_enums_match_the_model_table():
    defs = spec_schema.schema()["$defs"]
    assert set(defs["model"]["anyOf"][0]["enum"]) == set(models.model_names())
    tiers, lowercase = defs["resolution"]["anyOf"]
    assert tiers["enum"] == list(models.RESOLUTIONS)
    assert lowercase["enum"] == [r.lower() for r in models.RESOLUTIONS]
    assert defs["ratio"]["enum"] == list(models.RATIOS)
    assert defs["size"]["enum"] == list(models.SIZES.values())
    assert defs["seed"]["maximum"] == models.SEED_MAX
    durations = {d for m in models.MODELS.values() for d in m.durations}
    duration = defs["duration"]
    assert (duration["minimum"], duration["maximum"]) == (min(durations), max(durations))
    regions = spec_schema.schema()["$defs"]["settings"]["properties"]["region"]["enum"]
    assert regions == list(models.REGIONS)
    shot_keys = set(defs["shot"]["properties"])
    assert set(build.SHOT_FIELDS) <= shot_keys
    assert set(defs["template"]["properties"]) - shot_keys == {"params"}


def test_schema_alone_accepts_every_example():
    validator = jsonschema.Draft202012Validator(spec_schema.schema())
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        doc = spec_yaml.read(str(path), str(path), library=True)
        if "scenes" in doc.data:
            assert not list(validator.iter_errors(doc.data)), path
