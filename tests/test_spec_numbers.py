"""Numbers mean what they say: a whole-valued float is the integer it spells everywhere (the
request and its key included); NaN and infinities are refused with their position. The
invalid corpus (`specs/invalid/schema-number-*.yaml`) covers each numeric field."""
from __future__ import annotations

from spec_files import errors_of, write

from wanflow.plan import planner
from wanflow.spec import load

SPEC = """\
wanflow: {version}
name: numbers
vars: {{secs: {secs}}}
defaults: {{model: wan2.7-t2v, resolution: 720P, ratio: "16:9"}}
templates:
  tpl: {{prompt: from a template, seed: {seed}}}
settings:
  max_cost: {cost}
  limits: {{wan2.7-t2v: {{concurrency: {conc}, submit_rps: {rps}}}}}
scenes:
  - id: a
    shots:
      - {{id: x, prompt: p, duration: {duration}, seed: {seed}, takes: {takes}, pick: {pick}}}
      - {{id: y, prompt: q, duration: "${{secs}}"}}
      - {{id: z, use: tpl}}
"""
WHOLE_FLOATS = {"version": "1.0", "secs": "3.0", "seed": "7.0", "cost": "2.0", "conc": "2.0",
                "rps": "1.0", "duration": "2.0", "takes": "2.0", "pick": "2.0"}
INTEGERS = {k: v.removesuffix(".0") for k, v in WHOLE_FLOATS.items()}


def _requests(spec):
    plan = planner.build(spec, "preview/1")
    out = {}
    for task in plan.gen_tasks():
        prepared = plan.prepare(task, {})
        out[task.id] = (prepared.key, prepared.request)
    return out


def test_whole_floats_are_the_integers_they_spell(project):
    floats = load(write(project / "floats.yaml", SPEC.format(**WHOLE_FLOATS)))
    ints = load(write(project / "ints.yaml", SPEC.format(**INTEGERS)))
    x, y, z = floats.shots()
    assert (x.duration, x.seed, x.takes, x.pick, y.duration, z.seed) == (2, 7, 2, 2, 3, 7)
    for value in (x.duration, x.seed, x.takes, x.pick, y.duration, z.seed,
                  floats.settings.limits[0].concurrency, floats.version):
        assert type(value) is int
    assert floats.settings.limits == ints.settings.limits
    assert floats.settings.max_cost == 2.0
    assert _requests(floats) == _requests(ints)      # same request, same key, same plan
    gen = _requests(floats)["gen:a.x#1"][1]
    assert gen.body["parameters"]["duration"] == 2 and gen.body["parameters"]["seed"] == 7


def test_non_finite_numbers_are_refused_wherever_they_are(project):
    spec = write(project / "s.yaml", SPEC.format(**{**INTEGERS, "cost": ".inf", "rps": ".nan",
                                                    "secs": "-.inf"}))
    found = {(d.where.path, d.message) for d in errors_of(spec)}
    assert ("$.settings.max_cost", "max_cost: .inf is not allowed; write a finite number") in found
    assert ('$.settings.limits["wan2.7-t2v"].submit_rps',
            "submit_rps: .nan is not allowed; write a finite number") in found
    assert ("$.vars.secs", "secs: -.inf is not allowed; write a finite number") in found
    # the variable's use is refused where it is used, once
    uses = [d for d in errors_of(spec) if d.where.path == "$.scenes[0].shots[1].duration"]
    assert len(uses) == 1 and "-.inf is not allowed" in uses[0].message


def test_a_fraction_where_an_integer_belongs_is_an_error_at_its_position(project):
    spec = write(project / "s.yaml", SPEC.format(**{**INTEGERS, "seed": "7.5"}))
    found = [(str(d.where), d.where.path, d.message) for d in errors_of(spec)]
    assert (f"{spec}:6:40", "$.templates.tpl.seed",
            "seed: expected an integer, got a number 7.5") in found
