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


@app.command()
def cka(
    a: str = typer.Option(None, "--a", help="Run directory (or shipped model name) A."),
    b: str = typer.Option(None, "--b", help="Run directory (or shipped model name) B."),
    group_a: str = typer.Option(None, help="Group mode: RUN,RUN,... (e.g. scratch seeds)."),
    group_b: str = typer.Option(None, help="Group mode: RUN,RUN,... (e.g. fine-tuned seeds)."),
    task: str = typer.Option(None, help="Compare on the events of this task's processes."),
    data: str = typer.Option(None, help="Directory of <process>.root files "
                             "[default: $HEPFM_DATA or ~/.cache/hepfm/data]."),
    processes: str = typer.Option(None, help="Instead of --task: 'all' or NAME,NAME,..."),
    events: int = typer.Option(10_000, help="Events to compare on (shared by all models)."),
    kernel: str = typer.Option("linear", help="CKA kernel: linear or rbf."),
    batch_size: int = typer.Option(None, help="Minibatch CKA batch size [default: exact "
                                   "for linear, 1024 for rbf]."),
    out: str = typer.Option("cka", help="Output directory for CSV and PNG files."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    seed: int = typer.Option(0, help="Seed of the event sample and minibatches."),
) -> None:
    """Layer-by-layer CKA between two runs (or two groups of runs) on the same events."""
    from hepfm.analysis.cka_report import cka_group_report, cka_report

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    common = dict(task=task, data=data, processes=processes, events=events, kernel=kernel,
                  batch_size=batch_size, out=out, device=device, seed=seed)
    try:
        if kernel not in ("linear", "rbf"):
            raise HepfmError(f"--kernel must be linear or rbf, got '{kernel}'")
        if group_a or group_b:
            if a or b or not (group_a and group_b):
                raise HepfmError("group mode takes --group-a and --group-b (not --a/--b)")
            summary = cka_group_report(group_a.split(","), group_b.split(","), **common)
            console.print(summary.to_string(index=False, float_format="%.3f"))
            console.print(f"wrote {out}/cka_groups.csv, cka_pairs.csv, cka_groups.png")
        else:
            if not (a and b):
                raise HepfmError("give two runs with --a and --b (or --group-a/--group-b)")
            matrix = cka_report(a, b, **common)
            console.print(matrix.to_string(float_format="%.3f"))
            console.print(f"wrote {out}/cka.csv, cka.png, cka_diagonal.png")
    except (HepfmError, ValueError) as err:
        fail(err)


def main() -> None:
    try:
        app()
    except HepfmError as err:
        fail(err)


if __name__ == "__main__":
    main()
