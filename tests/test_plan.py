"""The planner is pure: specs in, tasks and keys out, no I/O."""
import pytest

from wanflow.errors import UsageError
from wanflow.plan import cost, keys, planner
from wanflow.plan.cost import Pricing
from wanflow.plan.tasks import Output
from wanflow.spec.nodes import (
    Asset,
    AudioBed,
    Film,
    Input,
    Scene,
    Shot,
    ShotRef,
    Spec,
    Transition,
    Where,
)

W = Where("t.yaml")
CUT = Transition()


def make_spec(prompt_b="the cheetah leaps", takes=1, pick=1, transition=CUT):
    assets = {"hero": Asset("hero", W, path="hero.png", file="/x/hero.png"),
              "score": Asset("score", W, path="score.wav", file="/x/score.wav")}
    a = Shot("chase", "a", "wan2.7-t2v", W, prompt="wide grassland", duration=5,
             resolution="720P", ratio="16:9")
    b = Shot("chase", "b", "wan2.7-i2v", W, prompt=prompt_b, duration=4, resolution="720P",
             inputs=(Input("first_frame", ref=ShotRef("chase.a", "last")),), takes=takes,
             pick=pick)
    c = Shot("chase", "c", "wan2.6-i2v", W, prompt="hero turns", duration=5,
             inputs=(Input("first_frame", asset="hero"),), needs=("chase.a",))
    scene = Scene("chase", W, shots=(a, b, c), transition=transition,
                  audio=AudioBed("score", volume=0.8, duck=0.3))
    film = Film("main", "renders/main.mp4", W, scenes=("chase",))
    return Spec(file="/x/t.yaml", root="/x", name="t", assets=assets, scenes=(scene,),
                films=(film,))


def run_keys(plan, asset_digests):
    """Keys of every task when each output digest is derived from its key (deterministic)."""
    outputs, out_keys = {}, {}
    for tid, task in plan.tasks.items():
        if task.kind == "asset":
            outputs[tid] = Output(asset_digests[task.asset.name], task.output_mime)
        prepared = plan.prepare(task, outputs)
        assert prepared is not None, tid
        key = prepared.key
        out_keys[tid] = key
        if tid not in outputs:
            outputs[tid] = Output(keys.key_of({"out": key}), task.output_mime)
    return out_keys


DIGESTS = {"hero": "1" * 64, "score": "2" * 64}


def test_tasks_and_edges():
    plan = planner.build(make_spec(takes=3, pick=2), "preview/1")
    kinds = sorted(t.kind for t in plan.tasks.values())
    assert kinds.count("gen") == 5  # a, b x3, c
    assert "frame:chase.a#1:last" in plan.tasks
    assert plan.graph.has_edge("gen:chase.a#1", "frame:chase.a#1:last")
    assert plan.graph.has_edge("frame:chase.a#1:last", "gen:chase.b#2")
    assert plan.graph.has_edge("gen:chase.a#1", "gen:chase.c#1")      # needs
    assert plan.graph.has_edge("asset:hero", "gen:chase.c#1")
    scene = plan.tasks["scene:chase"]
    assert scene.inputs == ("gen:chase.a#1", "gen:chase.b#2", "gen:chase.c#1", "asset:score")
    assert plan.graph.has_edge("scene:chase", "film:main")
    order = list(plan.tasks)
    for a, b in plan.graph.edges:
        assert order.index(a) < order.index(b)


def test_takes_get_distinct_seeds_and_keys():
    plan = planner.build(make_spec(takes=3), "preview/1")
    k = run_keys(plan, DIGESTS)
    assert len({k["gen:chase.b#1"], k["gen:chase.b#2"], k["gen:chase.b#3"]}) == 3


def test_prompt_edit_changes_only_that_shot_and_dependents():
    before = run_keys(planner.build(make_spec(), "preview/1"), DIGESTS)
    after = run_keys(planner.build(make_spec(prompt_b="the cheetah stumbles"), "preview/1"),
                     DIGESTS)
    changed = {t for t in before if before[t] != after[t]}
    assert changed == {"gen:chase.b#1", "scene:chase", "film:main"}


def test_transition_change_reruns_only_assembly():
    before = run_keys(planner.build(make_spec(), "preview/1"), DIGESTS)
    after = run_keys(planner.build(make_spec(transition=Transition("crossfade", 0.5)),
                                   "preview/1"), DIGESTS)
    assert {t for t in before if before[t] != after[t]} == {"scene:chase", "film:main"}


def test_asset_content_not_path_makes_the_key():
    spec = make_spec()
    renamed = Spec(**{**spec.__dict__, "assets": {
        **spec.assets, "hero": Asset("hero", W, path="renamed.png", file="/y/renamed.png")}})
    assert run_keys(planner.build(spec, "p"), DIGESTS) == run_keys(planner.build(renamed, "p"),
                                                                   DIGESTS)
    other = run_keys(planner.build(spec, "p"), {**DIGESTS, "hero": "3" * 64})
    assert other["gen:chase.c#1"] != run_keys(planner.build(spec, "p"), DIGESTS)["gen:chase.c#1"]


def test_backend_identity_keys_preview_apart_from_real():
    a = run_keys(planner.build(make_spec(), "preview/1"), DIGESTS)
    b = run_keys(planner.build(make_spec(), "dashscope"), DIGESTS)
    assert a["gen:chase.a#1"] != b["gen:chase.a#1"]


def test_key_unknown_until_upstream_output_known():
    plan = planner.build(make_spec(), "preview/1")
    assert plan.prepare(plan.tasks["gen:chase.b#1"], {}) is None
    assert plan.prepare(plan.tasks["gen:chase.a#1"], {}) is not None


def test_only_restricts_to_target_and_ancestors():
    plan = planner.build(make_spec(), "preview/1", only=("chase.b",))
    assert set(plan.tasks) == {"gen:chase.a#1", "frame:chase.a#1:last", "gen:chase.b#1"}
    with pytest.raises(UsageError, match="did you mean"):
        planner.build(make_spec(), "preview/1", only=("chase.bb",))


def test_cost_estimate_uses_price_table():
    plan = planner.build(make_spec(), "dashscope")
    task = plan.tasks["gen:chase.a#1"]
    assert cost.billed_seconds(task, {}, plan.picks, {}) == 5
    price = Pricing.for_region("singapore").per_second(task.shot.model, *cost.tier_of(task))
    assert price == pytest.approx(0.10)
    # Where the table has no entry for the region, the price is unknown, never a guess.
    assert Pricing.for_region("beijing").per_second(task.shot.model, "720P") is None


def test_film_takes_size_and_fps_from_the_film_or_says_what_it_uses():
    import dataclasses

    spec = make_spec()   # shot c is 1080P while a and b are 720P: a scene of mixed clips
    plan = planner.build(spec, "preview/2")
    film = plan.tasks["film:main"]
    assert (film.width, film.height, film.fps) == (1280, 720, 30)
    assert any(n.startswith("scene chase joins clips of 1280x720 at 30 fps and 1920x1080 at "
                            "30 fps; it is assembled at 1280x720 at 30 fps") for n in plan.notes)
    film_spec = dataclasses.replace(spec.films[0], size="1920*1080", fps=24)
    plan = planner.build(dataclasses.replace(spec, films=(film_spec,)), "preview/2")
    film = plan.tasks["film:main"]
    assert (film.width, film.height, film.fps) == (1920, 1080, 24)
    assert any(n.startswith("film main it is made at 1920x1080 at 24 fps: its size as the film "
                            "says, its frame rate as the film says") for n in plan.notes)
