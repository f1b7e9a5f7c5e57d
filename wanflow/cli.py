"""The `wanflow` command line: thin click commands over the library.

The edge: `Settings` are built here from flags and the environment, and only this module
turns errors into exit codes and messages (DESIGN §5).
"""
from __future__ import annotations

import functools
import gc
import json
import os
import sys
from typing import Any

import click

from . import __version__, backends, ci, models
from .errors import SpecError, UsageError, WanflowError
from .settings import Settings, read_config
from .text import terminal

DEFAULT_SPEC = "wanflow.yaml"


def resolve_spec(given: str | None) -> str:
    """The spec a command works on: the one named, else `./wanflow.yaml` (as Snakemake and
    DVC default to their files). Every command that takes a spec resolves it here."""
    if given:
        return given
    if os.path.isfile(DEFAULT_SPEC):
        return DEFAULT_SPEC
    raise UsageError(f"no spec file named and no {DEFAULT_SPEC} in this folder; name one "
                     "(e.g. wanflow run film.yaml) or start a project with wanflow init")


def resolve_specs(given: tuple[str, ...]) -> tuple[str, ...]:
    """`resolve_spec` for commands that take several specs."""
    return given or (resolve_spec(None),)


def spec_argument(name: str = "spec_file", *, many: bool = False):
    """The optional SPEC (or SPEC...) argument; resolve it with `resolve_spec(s)` inside the
    command, where a missing ./wanflow.yaml becomes a usage error (exit 2)."""
    if many:
        return click.argument(name, nargs=-1, metavar="[SPEC]...",
                              type=click.Path(dir_okay=True))
    return click.argument(name, required=False, default=None, metavar="[SPEC]",
                          type=click.Path(dir_okay=True))


def _echo(text: object, *, err: bool = False, nl: bool = True) -> None:
    """Print for a person: every control character from input escaped (see wanflow.text)."""
    click.echo(terminal(text), err=err, nl=nl)


def _fail(err: WanflowError, settings: Settings | None = None) -> None:
    """Print a user-facing error without a traceback and exit with its code."""
    if isinstance(err, SpecError):
        for diag in err.diagnostics:
            _echo(diag, err=True)
            if settings is not None and settings.github_actions:
                click.echo(ci.annotation(diag))
    else:
        _echo(f"wanflow: error: {err}", err=True)
    sys.exit(err.exit_code)


def _settings(**flags: Any) -> Settings:
    try:
        return Settings.resolve(os.environ, config=read_config(os.environ), **flags)
    except WanflowError as err:
        _fail(err)
        raise  # unreachable: _fail exits


class MoneyType(click.ParamType):
    """`5`, `5USD`, `30CNY`: never NaN, never infinite, never negative."""

    name = "AMOUNT[CUR]"

    def convert(self, value, param, ctx):
        from .run.budget import Money, parse_money

        if isinstance(value, Money):
            return value
        try:
            return parse_money(value)
        except UsageError as err:
            self.fail(str(err), param, ctx)


def _guarded(command):
    """Run a command body; a WanflowError becomes its message and exit code."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except WanflowError as err:
            _fail(err, _settings())
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wanflow")
def main() -> None:
    """Declarative, cached, concurrent pipelines for Wan video generation."""
    # A plan is tens of thousands of small objects with no cycles among them; at the default
    # thresholds the cycle collector scans them all again and again while they are built
    # (a third of a 10,000-shot no-op run). Collections still run, far less often.
    gc.set_threshold(50_000, 20, 20)


@main.command()
@spec_argument("files", many=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@_guarded
def validate(files, as_json):
    """Check SPEC files (default: ./wanflow.yaml) against the schema and the model rules;
    spend nothing. A library file (templates, assets; no scenes) is checked on its own."""
    from .spec import load, summary, summary_line

    settings = _settings()
    failed = False
    for name in resolve_specs(files):
        try:
            spec = load(name)
        except SpecError as err:
            failed = True
            if as_json:
                click.echo(json.dumps({"file": name, "ok": False, "diagnostics": [
                    _diag_json(d) for d in err.diagnostics]}))
            else:
                for diag in err.diagnostics:
                    _echo(diag)
                    if settings.github_actions:
                        click.echo(ci.annotation(diag))
            continue
        if as_json:
            click.echo(json.dumps({"file": name, "ok": True, "summary": summary(spec),
                                   "diagnostics": [_diag_json(d) for d in spec.warnings]}))
        else:
            for diag in spec.warnings:
                _echo(diag)
                if settings.github_actions:
                    click.echo(ci.annotation(diag))
            _echo(f"{name}: ok: {summary_line(spec)}")
    sys.exit(2 if failed else 0)


def _diag_json(diag) -> dict:
    w = diag.where
    return {"file": w.file, "line": w.line, "col": w.col, "path": w.path,
            "severity": diag.severity, "message": diag.message}


@main.command()
@click.argument("directory", required=False, default=".", metavar="[DIR]",
                type=click.Path(file_okay=False))
@_guarded
def init(directory):
    """Start a project in DIR (default: here): a working spec, its score, the schema for
    editors and a .gitignore. Never overwrites a file."""
    from . import starter

    try:
        started = starter.start(directory)
    except starter.AlreadyThere as err:
        raise UsageError(f"{directory} already has {err}; wanflow init never overwrites "
                         "a file (move them aside, or init another folder)") from None
    except OSError as err:
        raise UsageError(f"cannot write the project into {directory}: "
                         f"{err.strerror or err}") from None
    _echo(f"wrote {', '.join(started.written)} in {directory}")
    if started.ignore_added:
        _echo(f"added {', '.join(started.ignore_added)} to {directory}/.gitignore")
    where = "" if os.path.abspath(directory) == os.getcwd() else f"cd {directory} && "
    _echo(f"next: {where}wanflow run    (an offline preview: no key, no cost)")


@main.command("models")
@click.option("--region", default=None, type=click.Choice(sorted(models.REGIONS)),
              help="Price in this region (default: the configured one, else beijing).")
@click.option("--prices", "prices_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=False), help="Your own prices (TOML, as for plan).")
@click.option("--json", "as_json", is_flag=True, help="One JSON list of models.")
@_guarded
def models_command(region, prices_file, as_json):
    """The capability table the validator uses: inputs, durations, resolutions or sizes,
    audio, multi-shot and the price per second, for every model."""
    from . import catalog
    from .plan.cost import Pricing

    settings = _settings(region=region, prices_file=prices_file)
    data = catalog.rows(Pricing.for_region(settings.region, settings.prices))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _echo(catalog.table(data))


@main.command()
def schema():
    """Print the JSON Schema of the spec language."""
    from .spec import schema_text

    click.echo(schema_text(), nl=False)


# -- commands over a spec's plan ----------------------------------------------------------

def _stash(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """Keep a remote option for `_session` (saves every command repeating them)."""
    ctx.meta.setdefault("wanflow.remote", {})[param.name] = value


def _remote_options(f):
    f = click.option("--no-remote-claims", "remote_claims", flag_value=False, default=None,
                     expose_value=False, callback=_stash,
                     help="Do not claim paid work on the remote (each runner pays for "
                          "what it generates).")(f)
    f = click.option("--remote-endpoint", default=None, metavar="URL", expose_value=False,
                     callback=_stash,
                     help="S3-compatible endpoint of the remote (Alibaba OSS, MinIO, R2); "
                          "also WANFLOW_REMOTE_ENDPOINT.")(f)
    return click.option("--remote", default=None, metavar="URL", expose_value=False,
                        callback=_stash,
                        help="The team's remote store: s3://, gs://, az:// or file:// "
                             "(also WANFLOW_REMOTE or the user config file).")(f)


def _remote_flags() -> dict:
    return dict(click.get_current_context().meta.get("wanflow.remote", {}))


def _spec_options(f):
    f = _remote_options(f)
    f = click.option("--cache", default=None, metavar="DIR",
                     help="Cache directory (default: .wanflow beside the spec).")(f)
    f = click.option("--backend", type=click.Choice(backends.NAMES), default=None,
                     help="Where to generate (default: the spec's, else auto).")(f)
    f = click.option("--base-url", default=None, metavar="URL",
                     help="DashScope API base URL (e.g. an emulator's).")(f)
    f = click.option("--region", default=None, type=click.Choice(sorted(models.REGIONS)),
                     help="DashScope region.")(f)
    # Read by _session from the context, so that the commands need not pass it along.
    f = click.option("--workspace", default=None, metavar="ID", expose_value=False,
                     callback=lambda ctx, _param, value: ctx.meta.update(workspace=value),
                     help="Model Studio workspace: use its host (REGION's "
                          "https://ID.REGION-ID.maas.aliyuncs.com); Wan 3.0 needs one.")(f)
    f = click.option("--only", "only", multiple=True, metavar="TARGET",
                     help="Restrict to SCENE, SCENE.SHOT or FILM (and what it needs).")(f)
    f = click.option("--prices", "prices_file", default=None, metavar="FILE",
                     type=click.Path(dir_okay=False),
                     help="Your own prices per billed second (TOML, as in the user config "
                          "file's [prices] tables).")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)
    return spec_argument()(f)


def _session(spec, cache, backend, base_url, region, only, as_json, prices_file, **more):
    from .run.session import Session

    generate, fetch = more.pop("generate", False), more.pop("fetch", False)
    workspace = click.get_current_context().meta.get("workspace")
    settings = _settings(cache=cache, backend=backend, base_url=base_url, region=region,
                         workspace=workspace, prices_file=prices_file, **_remote_flags(),
                         **more)
    session = Session.open(resolve_spec(spec), settings, only=tuple(only),
                           notice=_notice(as_json), generate=generate, fetch=fetch)
    for diag in session.project.spec.warnings:   # what validate warns about, every time
        _echo(diag, err=True)
        if settings.github_actions:
            click.echo(ci.annotation(diag))
    return session


def _notice(as_json):
    # Always on stderr: stdout stays one parseable document (or JSON lines) under --json.
    def say(message):
        if as_json:
            click.echo(json.dumps({"event": "notice", "message": message}), err=True)
        else:
            _echo(f"wanflow: {message}", err=True)
    return say


@main.command()
@_spec_options
@click.option("--explain", is_flag=True, help="Show why each task runs, with keys.")
@click.option("--max-cost", type=MoneyType(), default=None,
              help="Exit 3 if the run would cost more (e.g. 5, 5USD, 30CNY).")
@click.option("--no-spend", is_flag=True, help="Exit 3 if anything would be paid for.")
@_guarded
def plan(spec_file, cache, backend, base_url, region, only, prices_file, as_json, explain,
         max_cost, no_spend):
    """Show what a run would do, why, and what it would cost; spend nothing."""
    from .run import session as sessions
    from .run import views

    with _session(spec_file, cache, backend, base_url, region, only, as_json,
                  prices_file) as session:
        report = sessions.plan_report(session)
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            _echo(views.plan_table(session, explain=explain))
        ci.append_summary(session.settings, ci.plan_markdown(report))
        sessions.check_budget(session, max_cost=max_cost, no_spend=no_spend)


@main.command()
@_spec_options
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
              help="Generations in flight at once, all models together.")
@click.option("--limit", "limits", multiple=True, metavar="MODEL=N[:RPS]",
              help="Per-model concurrent tasks and submissions per second.")
@click.option("--max-cost", type=MoneyType(), default=None,
              help="Stop before spending more (e.g. 5, 5USD, 30CNY).")
@click.option("--no-spend", is_flag=True, help="Stop if anything would be paid for.")
@click.option("--resubmit", "resubmit", multiple=True, metavar="SCENE.SHOT[#TAKE]",
              help="Generate these again (paid) even though the journal holds a task for "
                   "them whose outcome is unknown or whose video expired.")
@click.option("--resubmit-uncertain", is_flag=True,
              help="Submit again every task whose earlier submit had an unknown outcome.")
@_guarded
def run(spec_file, cache, backend, base_url, region, only, prices_file, as_json, jobs, limits,
        max_cost, no_spend, resubmit, resubmit_uncertain):
    """Generate what changed, reuse the rest, assemble scenes and films."""
    from .run import events, reporters
    from .run import session as sessions

    with _session(spec_file, cache, backend, base_url, region, only, as_json, prices_file,
                  limits=tuple(limits), generate=True) as session:
        for note in session.plan.notes:
            _notice(as_json)(f"note: {note}")
        tally = events.Tally(reporters.make(as_json))
        summary = sessions.run(session, as_json=as_json, jobs=jobs, max_cost=max_cost,
                               no_spend=no_spend, resubmit=tuple(resubmit),
                               resubmit_uncertain=resubmit_uncertain, reporter=tally)
        ci.append_summary(session.settings, ci.run_markdown(
            session.project.spec.name, session.backend.identity, summary,
            regenerated=tally.generated, run_url=session.settings.run_url))
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


@main.command()
@_spec_options
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
              help="Local tasks (frames, assembly) at once.")
@_guarded
def pull(spec_file, cache, backend, base_url, region, only, prices_file, as_json, jobs):
    """Download the plan's results from the remote and write the renders; generate
    nothing. Exits 1, naming them, if the remote lacks some (`--backend dashscope`
    pulls the paid renders and needs no key)."""
    from .run import session as sessions

    with _session(spec_file, cache, backend, base_url, region, only, as_json, prices_file,
                  fetch=True) as session:
        summary = sessions.pull(session, as_json=as_json, jobs=jobs)
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


@main.command()
@spec_argument()
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@_remote_options
@click.option("--json", "as_json", is_flag=True)
@_guarded
def push(spec_file, cache_dir, as_json):
    """Upload to the remote what the spec's lock files (paid and preview) pin: outputs and
    result records. Exits 1, naming them, if some are not in the local cache."""
    from .run import session as sessions

    report = sessions.push(resolve_spec(spec_file),
                           _settings(cache=cache_dir, **_remote_flags()))
    if as_json:
        click.echo(json.dumps(report))
    else:
        _echo(f"pushed {report['entries'] - len(report['missing'])} of {report['entries']} "
              f"pinned results: {report['uploaded']} objects uploaded, {report['present']} "
              "already there")
        for item in report["missing"]:
            _echo(f"  not pushed  {item['task']} ({item['lock']}): {item['why']}")
    sys.exit(1 if report["missing"] else 0)


@main.command()
@_spec_options
@click.option("--check", is_flag=True, help="Exit 1 when anything is stale (for CI).")
@_guarded
def status(spec_file, cache, backend, base_url, region, only, prices_file, as_json, check):
    """What is up to date, what is stale, what is in flight, and who made each render."""
    from .run import session as sessions
    from .run import views

    with _session(spec_file, cache, backend, base_url, region, only, as_json,
                  prices_file) as session:
        report = sessions.status_report(session)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _echo(views.status_text(report))
    stale = report["stale"] or any(not o["up_to_date"] for o in report["outputs"])
    if check and stale:
        sys.exit(1)


@main.command()
@_spec_options
@click.option("--out", default=None, metavar="DIR",
              help="Where to write the page (default: renders/report beside the spec).")
@click.option("--base", default=None, metavar="REF",
              help="Also show what changed since git REF, with before/after frames.")
@_guarded
def report(spec_file, cache, backend, base_url, region, only, prices_file, as_json, out,
           base):
    """Write a review page: every take playable with its frames, inputs, prompts and cost."""
    from .review import collect, page
    from .review import diff as diffs

    with _session(spec_file, cache, backend, base_url, region, only, as_json,
                  prices_file) as session:
        data = collect.collect(session)
        changes = diffs.diff(session, base) if base else None
        if as_json:
            click.echo(json.dumps({**data, "diff": changes} if changes else data, indent=2))
            return
        out = out or os.path.join(session.project.spec_dir, "renders", "report")
        _echo(page.write(session, data, out, changes))


@main.command()
@_spec_options
@click.option("--base", default=None, metavar="REF",
              help="Git ref to compare with (default: the merge base with the default "
                   "branch: origin/HEAD, else main, else master).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default=None, help="text (default), json, or markdown for a PR comment.")
@_guarded
def diff(spec_file, cache, backend, base_url, region, only, prices_file, as_json, base, fmt):
    """What changed since a git ref: shots added, removed and changed (request fields),
    and what the change costs."""
    from .review import diff as diffs
    from .review import markdown

    fmt = fmt or ("json" if as_json else "text")
    with _session(spec_file, cache, backend, base_url, region, only, fmt == "json",
                  prices_file) as session:
        changes = diffs.diff(session, base)
        run_url = session.settings.run_url
    if fmt == "json":
        click.echo(json.dumps(changes, indent=2))
    elif fmt == "markdown":
        click.echo(markdown.diff_markdown(changes, run_url))
    else:
        _echo(diffs.diff_text(changes))


@main.command()
@click.argument("target", metavar="SCENE.SHOT")
@click.argument("take", type=click.IntRange(1))
@spec_argument()
@_guarded
def pick(target, take, spec_file):
    """Make TAKE the take of SCENE.SHOT that goes into the cut, editing `pick:` in place."""
    from .review.pick import pick as pick_take

    _echo(pick_take(resolve_spec(spec_file), target, take))


@main.command()
@spec_argument()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid")
@click.option("--only", "only", multiple=True, metavar="TARGET")
@_guarded
def graph(spec_file, fmt, only):
    """Print the task graph as Mermaid or Graphviz dot."""
    from .plan import planner
    from .run import project, views

    settings = _settings()
    proj = project.open_project(resolve_spec(spec_file), settings.cache, settings.state_dir)
    _echo(views.graph_text(planner.build(proj.spec, "graph", tuple(only)), fmt))


@main.group()
def cache():
    """Inspect and tidy the content-addressed cache."""


@cache.command("verify")
@spec_argument()
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def cache_verify(spec_file, cache_dir, as_json):
    """Re-hash every object; remove the corrupt ones and what was made from them."""
    from .run import session as sessions

    report = sessions.cache_verify(resolve_spec(spec_file), _settings(cache=cache_dir))
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"checked {report['checked']} objects, {len(report['corrupt'])} corrupt "
                   f"(removed {report['removed']})")
    sys.exit(1 if report["corrupt"] else 0)


@cache.command("gc")
@spec_argument("specs", many=True)
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@click.option("--apply", is_flag=True, help="Delete for real (default: dry run).")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def cache_gc(specs, cache_dir, apply, as_json):
    """Delete objects no lock file pins (dry run unless --apply)."""
    from .run import session as sessions

    report = sessions.cache_gc(resolve_specs(specs), _settings(cache=cache_dir), apply=apply)
    if as_json:
        click.echo(json.dumps(report))
    else:
        verb = "deleted" if apply else "would delete"
        click.echo(f"{verb} {report['count']} objects ({report['bytes']} bytes); "
                   f"kept {report['kept']} pinned by lock files")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--latency", default=None, metavar="MIN:MAX",
              help="Simulated generation time in seconds (before --time-scale).")
@click.option("--latency-spread", type=float, default=None, metavar="F",
              help="Give each kind of task (model, resolution, duration) its own mean "
                   "latency within --latency, and vary each task by ±F around it (0.2).")
@click.option("--time-scale", type=float, default=None,
              help="Divide every simulated time by this (100: a 200 s task takes 2 s); "
                   "wanflow on this machine paces its polls to match.")
@click.option("--fault", "faults", multiple=True, metavar="NAME=VALUE",
              help="Inject faults, e.g. submit_429=5, poll_5xx=3, fail_tasks=1, "
                   "expired_urls=1, truncated_downloads=2, slow_ms=500.")
@click.option("--api-key", "api_keys", multiple=True, help="Accepted keys (default sk-test).")
@click.option("--concurrency", default=None, metavar="N|MODEL=N,...",
              help="In-flight task cap per model.")
@click.option("--submit-rps", default=None, metavar="R|MODEL=R,...",
              help="Submissions per second per model.")
@click.option("--region", default=None, type=click.Choice(sorted(models.REGIONS)),
              help="Only beijing offers temporary uploads (getPolicy).")
@click.option("--render-scale", type=float, default=None,
              help="Render served videos at this fraction of the requested size.")
@click.option("--seed", type=int, default=None)
def emulator(host, port, latency, latency_spread, time_scale, faults, api_keys, concurrency,
             submit_rps, region, render_scale, seed):
    """Serve a local DashScope emulator (task protocol, uploads, faults) for tests."""
    from .backends import emulator as emu

    try:
        options = emu.options_from_cli(latency=latency, time_scale=time_scale, faults=faults,
                                       api_keys=api_keys, concurrency=concurrency,
                                       submit_rps=submit_rps, region=region,
                                       render_scale=render_scale, seed=seed,
                                       latency_spread=latency_spread)
    except (ValueError, TypeError) as err:
        _fail(UsageError(f"bad emulator option: {err}"))
    emu.serve(host, port, **options)


if __name__ == "__main__":  # pragma: no cover
    main()
