"""The `wanflow` command line: thin click commands over the library.

The edge: `Settings` are built here from flags and the environment, and only this module
turns errors into exit codes and messages (DESIGN §5).
"""
from __future__ import annotations

import functools
import json
import os
import sys

import click

from . import __version__, ci, models
from .errors import SpecError, UsageError, WanflowError
from .settings import Settings, read_config
from .text import terminal

BACKENDS = ("auto", "preview", "dashscope")


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


def _settings(**flags: object) -> Settings:
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


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def validate(files, as_json):
    """Check spec FILES against the schema and the model rules; spend nothing."""
    from .spec import load, summary, summary_line

    settings = _settings()
    failed = False
    for name in files:
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
def schema():
    """Print the JSON Schema of the spec language."""
    from .spec import schema_text

    click.echo(schema_text(), nl=False)


# -- commands over a spec's plan ----------------------------------------------------------

def _spec_options(f):
    f = click.option("--cache", default=None, metavar="DIR",
                     help="Cache directory (default: .wanflow beside the spec).")(f)
    f = click.option("--backend", type=click.Choice(BACKENDS), default=None,
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
    return click.argument("spec_file", type=click.Path(dir_okay=True))(f)


def _session(spec_file, cache, backend, base_url, region, only, as_json, prices_file,
             **more):
    from .run.session import Session

    workspace = click.get_current_context().meta.get("workspace")
    settings = _settings(cache=cache, backend=backend, base_url=base_url, region=region,
                         workspace=workspace, prices_file=prices_file, **more)
    session = Session.open(spec_file, settings, only=tuple(only), notice=_notice(as_json))
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
    from .run import session as sessions

    with _session(spec_file, cache, backend, base_url, region, only, as_json, prices_file,
                  limits=tuple(limits)) as session:
        summary = sessions.run(session, as_json=as_json, jobs=jobs, max_cost=max_cost,
                               no_spend=no_spend, resubmit=tuple(resubmit),
                               resubmit_uncertain=resubmit_uncertain)
        ci.append_summary(session.settings, ci.run_markdown(
            session.project.spec.name, session.backend.identity, summary))
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


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
@_guarded
def report(spec_file, cache, backend, base_url, region, only, prices_file, as_json, out):
    """Write a review page: every take's thumbnail, prompts, cost, freshness."""
    from . import report as reports

    with _session(spec_file, cache, backend, base_url, region, only, as_json,
                  prices_file) as session:
        data = reports.collect(session)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        out = out or os.path.join(session.project.spec_dir, "renders", "report")
        _echo(reports.write(session, data, out))


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=True))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid")
@click.option("--only", "only", multiple=True, metavar="TARGET")
@_guarded
def graph(spec_file, fmt, only):
    """Print the task graph as Mermaid or Graphviz dot."""
    from .plan import planner
    from .run import project, views

    settings = _settings()
    proj = project.open_project(spec_file, settings.cache, settings.state_dir)
    _echo(views.graph_text(planner.build(proj.spec, "graph", tuple(only)), fmt))


@main.group()
def cache():
    """Inspect and tidy the content-addressed cache."""


@cache.command("verify")
@click.argument("spec_file", type=click.Path(dir_okay=True))
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def cache_verify(spec_file, cache_dir, as_json):
    """Re-hash every object; remove the corrupt ones and what was made from them."""
    from .run import session as sessions

    report = sessions.cache_verify(spec_file, _settings(cache=cache_dir))
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"checked {report['checked']} objects, {len(report['corrupt'])} corrupt "
                   f"(removed {report['removed']})")
    sys.exit(1 if report["corrupt"] else 0)


@cache.command("gc")
@click.argument("spec_files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@click.option("--apply", is_flag=True, help="Delete for real (default: dry run).")
@click.option("--json", "as_json", is_flag=True)
@_guarded
def cache_gc(spec_files, cache_dir, apply, as_json):
    """Delete objects no lock file pins (dry run unless --apply)."""
    from .run import session as sessions

    report = sessions.cache_gc(spec_files, _settings(cache=cache_dir), apply=apply)
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
@click.option("--time-scale", type=float, default=None,
              help="Divide every simulated time by this (100: a 200 s task takes 2 s).")
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
def emulator(host, port, latency, time_scale, faults, api_keys, concurrency, submit_rps, region,
             render_scale, seed):
    """Serve a local DashScope emulator (task protocol, uploads, faults) for tests."""
    from .backends import emulator as emu

    try:
        options = emu.options_from_cli(latency=latency, time_scale=time_scale, faults=faults,
                                       api_keys=api_keys, concurrency=concurrency,
                                       submit_rps=submit_rps, region=region,
                                       render_scale=render_scale, seed=seed)
    except (ValueError, TypeError) as err:
        _fail(UsageError(f"bad emulator option: {err}"))
    emu.serve(host, port, **options)


if __name__ == "__main__":  # pragma: no cover
    main()
