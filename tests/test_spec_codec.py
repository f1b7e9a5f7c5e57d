"""The spec codec: every spec value survives JSON, and anything else read back is refused."""
from __future__ import annotations

import json

import pytest
from spec_files import ROOT

from wanflow.spec import codec, load
from wanflow.spec.nodes import (
    Asset,
    AudioBed,
    Diagnostic,
    Film,
    Input,
    ModelLimit,
    Scene,
    Shot,
    ShotRef,
    Spec,
    SpecSettings,
    Transition,
    Where,
)

W = Where("s.yaml", 3, 5, "$.scenes[0]")


def full_spec() -> Spec:
    shot = Shot("a", "x", "wan2.7-r2v", W, prompt="p", negative_prompt="", duration=2,
                resolution="720P", ratio="16:9", seed=0, prompt_extend=False, watermark=True,
                generate_audio=False, enable_thinking=True, takes=3, pick=2,
                inputs=(Input("reference_image", asset="still", voice="v", description="d"),
                        Input("first_frame", ref=ShotRef("a.y", "last"))),
                needs=("a.y",), path="renders/x.mp4", template="t")
    scene = Scene("a", W, shots=(shot,), transition=Transition("crossfade", 0.5),
                  audio=AudioBed("v", volume=0.8, duck=0.25), path="renders/a.mp4")
    return Spec(file="/p/s.yaml", root="/p", name="s",
                assets={"still": Asset("still", W, path="still.png", file="/p/still.png"),
                        "v": Asset("v", W, url="http://cdn.example.com/v.wav")},
                scenes=(scene,), films=(Film("f", "renders/f.mp4", W, scenes=("a", "a"),
                                             resolution="1080P"),),
                settings=SpecSettings(backend="preview", region="beijing", cache=".c",
                                      max_cost=1.5, limits=(ModelLimit("wan2.7-r2v", 2, 0.5),)),
                files=("/p/s.yaml",), warnings=(Diagnostic(W, "w\x07", "warning"),))


def test_every_value_survives_the_round_trip():
    spec = full_spec()
    assert codec.loads(codec.dumps(spec)) == spec
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        if path.parent.name in ("guide", "film"):
            spec = load(path)
            assert codec.loads(codec.dumps(spec)) == spec


def _mutated(change) -> str:
    record = json.loads(codec.dumps(full_spec()))
    change(record)
    return json.dumps(record)


@pytest.mark.parametrize("change", [
    lambda r: r.update(format=2),
    lambda r: r.update(extra=1),
    lambda r: r["spec"].update(version=True),                          # a bool is not an int
    lambda r: r["spec"].update(version=1.0),                           # nor is a float
    lambda r: r["spec"]["scenes"][0]["shots"][0].update(takes="3"),
    lambda r: r["spec"]["scenes"][0]["shots"][0].update(shell="rm -rf /"),
    lambda r: r["spec"]["scenes"][0]["shots"][0].pop("id"),
    lambda r: r["spec"]["scenes"][0]["shots"][0].update(where=["s.yaml", 1, 1]),
    lambda r: r["spec"]["scenes"][0]["shots"][0].update(inputs={"role": "x"}),
    lambda r: r["spec"]["settings"].update(max_cost=10),              # a float field
    lambda r: r["spec"]["assets"]["still"].update(file=["/etc/passwd"]),
    lambda r: r["spec"].update(scenes=[[]]),
])
def test_anything_else_is_refused(change):
    with pytest.raises(codec.CodecError):
        codec.loads(_mutated(change))


@pytest.mark.parametrize("text", ["", "{", "[]", "NaN", '{"format": 1, "spec": NaN}',
                                  "[" * 50_000, b"\x80\x04\x95garbage"])
def test_what_is_not_a_record_is_refused(text):
    with pytest.raises(codec.CodecError):
        codec.loads(text)
