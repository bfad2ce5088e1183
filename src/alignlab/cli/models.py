"""``alignlab models list|pull``: the embedded models."""

from __future__ import annotations

import typer

from alignlab.cli.common import console, out, quiet_hf, user_errors

app = typer.Typer(help="Embedded models: list and convert.", no_args_is_help=True)


@app.command("list")
def models_list() -> None:
    """Show the embedded models, whether their package is installed and whether they are pulled."""
    from rich.table import Column, Table

    from alignlab.models import embedded

    t = Table(Column("name", no_wrap=True), "kind", "package installed", "pulled", "path / how to get it")
    for m in embedded.listing():
        how = m["path"] if m["pulled"] else embedded.get(str(m["name"])).install
        t.add_row(str(m["name"]), str(m["kind"]), "yes" if m["installed"] else "no",
                  "yes" if m["pulled"] else "no", str(how))
    out.print(t)


@app.command("pull")
def models_pull(name: str, force: bool = typer.Option(False, help="Convert again even if present.")) -> None:
    """Convert an embedded model's packaged GGUF into a plain HF directory in the cache (once)."""
    quiet_hf()
    from alignlab.models import embedded

    with user_errors(KeyError, RuntimeError):  # unknown name; a failed conversion
        m = embedded.get(name)
        if not m.package_installed:
            raise embedded.ModelNotInstalled(name)
        path = embedded.pull(name, force=force, log=lambda s: console.print(s))
    out.print(str(path))
