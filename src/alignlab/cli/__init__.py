"""alignlab command line: thin wrappers that parse, call one public function, and print.

Plugins load before any command (see :mod:`alignlab.plugins`).

One module per command group; :mod:`alignlab.cli.common` holds what they share (consoles, the
one-line ``error: ...`` exit, the progress bar, shared options, the library's defaults). The
command modules import torch, transformers and the stage engines inside the commands, so
``alignlab --help`` stays fast.
"""

from __future__ import annotations

import typer

from alignlab.cli import evals, guard, interp, judge, lab, models, persona, redteam, runs, serve, strategy

app = typer.Typer(help="alignlab: a local-first lab for AI-assisted alignment.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _load_plugins() -> None:
    """alignlab: a local-first lab for AI-assisted alignment.

    Plugins (entry points 'alignlab.plugins', or modules named in ALIGNLAB_PLUGINS) load first, so
    their attacks, judges, suites and model backends work in every command.
    """
    from alignlab.cli.common import user_errors
    from alignlab.plugins import load_plugins

    with user_errors():
        load_plugins()


app.add_typer(models.app, name="models")
app.add_typer(judge.app, name="judge")
app.add_typer(guard.app, name="guard")
app.command()(serve.serve)
app.command()(redteam.redteam)
app.command()(runs.runs)
app.add_typer(interp.app, name="interp")
app.add_typer(evals.app, name="eval")
app.add_typer(persona.app, name="persona")
app.add_typer(strategy.app, name="strategy")
app.command("lab")(lab.lab_cmd)
app.command("report")(lab.report_cmd)


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
