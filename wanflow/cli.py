"""The `wanflow` command line: thin click commands over the library.

Only this module turns errors into exit codes and messages (DESIGN §5).
"""
from __future__ import annotations

import json
import os
import sys

import click

from . import __version__, ci
from .errors import SpecError, UsageError, WanflowError


def _fail(err: WanflowError) -> None:
    """Print a user-facing error without a traceback and exit with its code."""
    if isinstance(err, SpecError):
        for diag in err.diagnostics:
            click.echo(str(diag), err=True)
            if ci.active():
                click.echo(ci.annotation(diag))
    else:
        click.echo(f"wanflow: error: {err}", err=True)
    sys.exit(err.exit_code)


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
                    click.echo(str(diag))
                    if ci.active():
                        click.echo(ci.annotation(diag))
            continue
        if as_json:
            click.echo(json.dumps({"file": name, "ok": True, "summary": summary(spec),
                                   "diagnostics": [_diag_json(d) for d in spec.warnings]}))
        else:
            for diag in spec.warnings:
                click.echo(str(diag))
            click.echo(f"{name}: ok: {summary_line(spec)}")
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
    f = click.option("--backend", type=click.Choice(["auto", "preview", "dashscope"]),
                     default=None, help="Where to generate (default: the spec's, else auto).")(f)
    f = click.option("--base-url", default=None, metavar="URL",
                     help="DashScope API base URL (e.g. an emulator's).")(f)
    f = click.option("--region", default=None,
                     type=click.Choice(["beijing", "singapore", "virginia"]),
                     help="DashScope region.")(f)
    f = click.option("--only", "only", multiple=True, metavar="TARGET",
                     help="Restrict to SCENE, SCENE.SHOT or FILM (and what it needs).")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)
    return click.argument("spec_file", type=click.Path(dir_okay=True))(f)


def _session(spec_file, cache, backend, base_url, region, only, notice):
    from .run import session as engine

    return engine.Session.open(spec_file, cache=cache, backend=backend, base_url=base_url,
                               region=region, only=only, notice=notice)


def _notice(as_json):
    # Always on stderr: stdout stays one parseable document (or JSON lines) under --json.
    def say(message):
        if as_json:
            click.echo(json.dumps({"event": "notice", "message": message}), err=True)
        else:
            click.echo(f"wanflow: {message}", err=True)
    return say


@main.command()
@_spec_options
@click.option("--explain", is_flag=True, help="Show why each task runs, with keys.")
@click.option("--max-cost", type=float, default=None, help="Exit 3 if the run would cost more.")
@click.option("--no-spend", is_flag=True, help="Exit 3 if anything would be paid for.")
def plan(spec_file, cache, backend, base_url, region, only, as_json, explain, max_cost,
         no_spend):
    """Show what a run would do, why, and what it would cost; spend nothing."""
    from .run import session as engine

    try:
        with _session(spec_file, cache, backend, base_url, region, only,
                      _notice(as_json)) as session:
            states = session.assess()
            report = engine.plan_report(session, states)
            if as_json:
                click.echo(json.dumps(report, indent=2))
            else:
                click.echo(engine.plan_table(session, states, explain=explain))
            ci.append_summary(ci.plan_markdown(report))
            engine.check_budget(session, states, max_cost=max_cost, no_spend=no_spend)
    except WanflowError as err:
        _fail(err)


@main.command()
@_spec_options
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
              help="Generations in flight at once, all models together.")
@click.option("--limit", "limits", multiple=True, metavar="MODEL=N[:RPS]",
              help="Per-model concurrent tasks and submissions per second.")
@click.option("--max-cost", type=float, default=None, help="Stop before spending more.")
@click.option("--no-spend", is_flag=True, help="Stop if anything would be paid for.")
@click.option("--resubmit-uncertain", is_flag=True,
              help="Submit again tasks whose earlier submit had an unknown outcome.")
def run(spec_file, cache, backend, base_url, region, only, as_json, jobs, limits, max_cost,
        no_spend, resubmit_uncertain):
    """Generate what changed, reuse the rest, assemble scenes and films."""
    from .run import session as engine

    try:
        with _session(spec_file, cache, backend, base_url, region, only,
                      _notice(as_json)) as session:
            summary = engine.run(session, as_json=as_json, jobs=jobs, limits=limits,
                                 max_cost=max_cost, no_spend=no_spend,
                                 resubmit_uncertain=resubmit_uncertain)
            ci.append_summary(ci.run_markdown(session.project.spec.name,
                                              session.backend.identity, summary))
    except WanflowError as err:
        _fail(err)
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


@main.command()
@_spec_options
def status(spec_file, cache, backend, base_url, region, only, as_json):
    """What is up to date, what is stale, what is in flight."""
    from .run import session as engine

    try:
        with _session(spec_file, cache, backend, base_url, region, only,
                      _notice(as_json)) as session:
            report = engine.status_report(session)
    except WanflowError as err:
        _fail(err)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(engine.status_text(report))


@main.command()
@_spec_options
@click.option("--out", default=None, metavar="DIR",
              help="Where to write the page (default: renders/report beside the spec).")
def report(spec_file, cache, backend, base_url, region, only, as_json, out):
    """Write a review page: every take's thumbnail, prompts, cost, freshness."""
    from . import report as reports

    try:
        with _session(spec_file, cache, backend, base_url, region, only,
                      _notice(as_json)) as session:
            data = reports.collect(session, session.assess())
            if as_json:
                click.echo(json.dumps(data, indent=2))
                return
            out = out or os.path.join(session.project.spec_dir, "renders", "report")
            click.echo(reports.write(session, data, out))
    except WanflowError as err:
        _fail(err)


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=True))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid")
@click.option("--only", "only", multiple=True, metavar="TARGET")
def graph(spec_file, fmt, only):
    """Print the task graph as Mermaid or Graphviz dot."""
    from .run import session as engine

    try:
        click.echo(engine.graph_text(spec_file, fmt, only))
    except WanflowError as err:
        _fail(err)


@main.group()
def cache():
    """Inspect and tidy the content-addressed cache."""


@cache.command("verify")
@click.argument("spec_file", type=click.Path(dir_okay=True))
@click.option("--cache", "cache_dir", default=None, metavar="DIR")
@click.option("--json", "as_json", is_flag=True)
def cache_verify(spec_file, cache_dir, as_json):
    """Re-hash every object; remove the corrupt ones."""
    from .run import session as engine

    try:
        report = engine.cache_verify(spec_file, cache_dir)
    except WanflowError as err:
        _fail(err)
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
def cache_gc(spec_files, cache_dir, apply, as_json):
    """Delete objects no lock file pins (dry run unless --apply)."""
    from .run import session as engine

    try:
        report = engine.cache_gc(spec_files, cache_dir, apply=apply)
    except WanflowError as err:
        _fail(err)
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
@click.option("--region", default=None, type=click.Choice(["beijing", "singapore", "virginia"]),
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
