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


@app.command()
def generate(
    processes: str = typer.Option("all", help="'all', 'everything' or NAME,NAME,..."),
    events: int = typer.Option(..., help="Events per process."),
    out: str = typer.Option(..., help="Output directory (one <process>.root per process)."),
    seed: int = typer.Option(1, help="Random seed; the same seed gives identical files."),
    workers: int = typer.Option(1, help="Worker processes running in parallel."),
    mpi: bool = typer.Option(True, "--mpi/--no-mpi", help="Multi-parton interactions."),
    chunk_size: int = typer.Option(500, help="Events per chunk (one seed per chunk)."),
) -> None:
    """Generate events with Pythia 8 + a parametric detector into Delphes-layout ROOT files."""
    import logging

    from hepfm.generate import generate_samples

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = generate_samples(processes, events, out, seed=seed, workers=workers, mpi=mpi,
                                 chunk_size=chunk_size)
    except (HepfmError, ValueError) as err:
        fail(err)
    for path in paths:
        console.print(f"{path}")


def main() -> None:
    try:
        app()
    except HepfmError as err:
        fail(err)


if __name__ == "__main__":
    main()
