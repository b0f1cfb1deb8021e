"""The ``hepfm`` command. Each sub-command is a thin layer over a function of the package."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from hepfm.errors import HepfmError

app = typer.Typer(
    help="hepfm: pretrained graph networks for collider event classification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def fail(err: Exception) -> None:
    """Print a hepfm error as one clear line and exit with status 2."""
    console.print(f"[bold red]error:[/] {err}")
    raise typer.Exit(2)


@app.command()
def processes() -> None:
    """List the physics processes hepfm can generate."""
    from hepfm.processes import PROCESSES

    table = Table("name", "label id", "process", "pretraining", "description")
    for p in PROCESSES.values():
        table.add_row(p.name, str(p.label_id), p.label, "yes" if p.pretraining else "no",
                      p.description)
    console.print(table)


@app.command()
def tasks() -> None:
    """List the built-in downstream tasks."""
    from hepfm.tasks import TASKS

    table = Table("task", "signal", "background", "description")
    for t in TASKS.values():
        table.add_row(t.name, ",".join(t.signal), ",".join(t.background), t.description)
    console.print(table)


def main() -> None:
    try:
        app()
    except HepfmError as err:
        fail(err)


if __name__ == "__main__":
    main()
