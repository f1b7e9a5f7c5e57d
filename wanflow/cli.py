"""The `wanflow` command line: thin click commands over the library.

Only this module turns errors into exit codes and messages (DESIGN §5).
"""
from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import SpecError, WanflowError


def _fail(err: WanflowError) -> None:
    """Print a user-facing error without a traceback and exit with its code."""
    if isinstance(err, SpecError):
        for diag in err.diagnostics:
            click.echo(str(diag), err=True)
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
    from . import loader

    failed = False
    for name in files:
        try:
            spec = loader.load(name)
        except SpecError as err:
            failed = True
            if as_json:
                click.echo(json.dumps({"file": name, "ok": False, "diagnostics": [
                    _diag_json(d) for d in err.diagnostics]}))
            else:
                for diag in err.diagnostics:
                    click.echo(str(diag))
            continue
        if as_json:
            click.echo(json.dumps({"file": name, "ok": True, "summary": loader.summary(spec),
                                   "diagnostics": [_diag_json(d) for d in spec.warnings]}))
        else:
            for diag in spec.warnings:
                click.echo(str(diag))
            click.echo(f"{name}: ok: {loader.summary_line(spec)}")
    sys.exit(2 if failed else 0)


def _diag_json(diag) -> dict:
    w = diag.where
    return {"file": w.file, "line": w.line, "col": w.col, "path": w.path,
            "severity": diag.severity, "message": diag.message}


@main.command()
def schema():
    """Print the JSON Schema of the spec language."""
    from . import loader

    click.echo(loader.schema_text(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
