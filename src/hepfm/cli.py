"""The ``hepfm`` command. Each sub-command is a thin layer over a function of the package.

Every option value is checked when it is parsed (the ``callback=`` validators below), before
anything is loaded or generated. All errors leave through :meth:`HepfmGroup.main`: one line
``error: ...`` on stderr and exit status 2 for bad input (bad option values, hepfm errors, a
missing optional package); an unexpected exception (a bug) is one line and status 1, with
the traceback under ``--debug`` (or ``HEPFM_DEBUG=1``). SIGTERM exits with status 143 after
removing the temporaries of unfinished writes (during training, Lightning handles it and a
checkpoint is saved first).
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from hepfm import defaults
from hepfm.devices import DEVICES, resolve_device
from hepfm.errors import EXTRAS, ArgumentError, HepfmError, MissingExtraError, missing_extra
from hepfm.pretrained import DEFAULT_MODEL
from hepfm.processes import DEFAULT_SHOWER, SHOWERS, check_shower
from hepfm.training.pretrain import DEFAULTS as PRETRAIN_DEFAULTS
from hepfm.training.pretrain import PRECISIONS

console = Console()
EXIT_USAGE = 2
EXIT_BUG = 1


def _error(message: str, status: int = EXIT_USAGE) -> None:
    """Print ``error: message`` as one line on stderr and exit with `status`."""
    message = " ".join(message.split())
    typer.echo(typer.style("error:", fg="red", bold=True) + f" {message}", err=True)
    raise SystemExit(status)


def fail(err: Exception) -> None:
    """Print a hepfm error as one clear line (its command-line wording when it has one) and
    exit with status 2."""
    _error(getattr(err, "cli_message", None) or str(err))


#: Click's UsageError (BadParameter, NoSuchOption, ...), from the click that typer uses.
_USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Terminated(SystemExit):
    """Raised by the CLI's SIGTERM handler so that unfinished atomic writes clean up."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated(128 + signum)


#: Optional modules each command needs, checked before the command starts.
REQUIRES: dict[str, tuple[str, ...]] = {"generate": ("pythia8mc", "fastjet")}


def _check_requirements(args: list[str]) -> None:
    """Raise :class:`MissingExtraError` when the command in `args` needs an optional module
    that is not installed (``--help`` always works)."""
    import importlib.util

    command = next((a for a in args if not a.startswith("-")), "")
    if "--help" in args:
        return
    for module in REQUIRES.get(command, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(module, EXTRAS[module], f"hepfm {command}")


def _debug(args: list[str]) -> tuple[list[str], bool]:
    """`args` without ``--debug`` (accepted anywhere), and whether it was given."""
    debug = "--debug" in args or os.environ.get("HEPFM_DEBUG", "") not in ("", "0")
    return [a for a in args if a != "--debug"], debug


class HepfmGroup(TyperGroup):
    """The ``hepfm`` group: one error path for every command (see the module docstring)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv, debug = _debug(list(sys.argv[1:] if args is None else args))
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
        try:
            _check_requirements(argv)
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _Terminated as err:
            typer.echo("error: stopped by SIGTERM", err=True)
            raise SystemExit(err.code) from None
        except _USAGE_ERRORS as err:  # bad option values, unknown options
            where = err.ctx.command_path if err.ctx is not None else "hepfm"
            _error(f"{where}: {err.format_message()} (see '{where} --help')".replace("\n", " "))
        except typer.Abort:
            _error("aborted", 130)
        except HepfmError as err:
            fail(err)
        except ImportError as err:
            command = next((a for a in argv if not a.startswith("-")), "")
            missing = missing_extra(err, f"hepfm {command}".strip())
            if missing is None:
                if debug:
                    raise
                _error(f"internal error: {type(err).__name__}: {err} (rerun with --debug "
                       "for the traceback and report it)", EXIT_BUG)
            fail(missing)
        except Exception as err:
            if debug:
                raise
            first = str(err).strip().split("\n")[0]
            _error(f"internal error: {type(err).__name__}: {first} (rerun with --debug for "
                   "the traceback and report it)", EXIT_BUG)
        finally:
            if in_main and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if not standalone_mode:
            return rv
        raise SystemExit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=HepfmGroup,
    help="hepfm: pretrained graph networks for collider event classification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "[hepfm-base]" is a default, not a tag
)


@app.callback()
def _options(debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an unexpected error (for bug reports); "
        "accepted anywhere on the command line.")) -> None:
    """hepfm: pretrained graph networks for collider event classification."""


# ------------------------------------------------------------------------- validators
# Each returns a ``callback=`` for typer.Option that checks the value when it is parsed.
Validator = Callable[[Any], Any]


def at_least(low: int | float) -> Validator:
    """Numbers >= `low` (None passes: the default applies)."""
    def check(value: Any) -> Any:
        if value is not None and value < low:
            raise typer.BadParameter(f"must be at least {low}, got {value}")
        return value
    return check


def between(low: float, high: float) -> Validator:
    """Numbers strictly between `low` and `high` (None passes)."""
    def check(value: Any) -> Any:
        if value is not None and not low < value < high:
            raise typer.BadParameter(f"must be between {low} and {high}, got {value}")
        return value
    return check


def one_of(choices: Sequence[str], separator: str | None = None) -> Validator:
    """A value in `choices` (each item of a `separator`-separated list, when given)."""
    def check(value: Any) -> Any:
        if value is None:
            return value
        items = [v.strip() for v in value.split(separator)] if separator else [value]
        for item in items:
            if item not in choices:
                listing = ", ".join(choices[:-1]) + f" or {choices[-1]}"
                raise typer.BadParameter(f"'{item}' is not one of {listing}")
        return value
    return check


def checked_by(function: Callable[[Any], Any]) -> Validator:
    """A value that `function` accepts (a hepfm error, in its command-line wording, or a
    ValueError becomes the message)."""
    def check(value: Any) -> Any:
        if value is not None:
            try:
                function(value)
            except (HepfmError, ValueError, KeyError) as err:
                message = getattr(err, "cli_message", None) or str(err).strip("'\"")
                raise typer.BadParameter(message) from None
        return value
    return check


def writable_dir(value: Any) -> Any:
    """A directory that exists and is writable, or can be created."""
    if value is None:
        return value
    path = Path(value).expanduser().absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise typer.BadParameter(f"'{probe}' is a file, so '{path}' cannot be a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write in '{probe}' (permission denied)")
    return value


def _processes(value: str) -> None:
    from hepfm.processes import resolve_processes

    resolve_processes(value)


def _objective(value: str) -> None:
    from hepfm.objectives.mpm import parse_objective

    parse_objective(value)


def _model(value: str) -> None:
    from hepfm.hub import parse_models

    parse_models(value)


def _int_list(value: str, low: int, example: str) -> list[int]:
    try:
        items = [int(n) for n in value.split(",")]
    except ValueError:
        raise typer.BadParameter(f"must be integers like {example}, got '{value}'") from None
    if min(items) < low:
        raise typer.BadParameter(f"must be at least {low} each, got '{value}'")
    return items


def _sizes(value: str) -> str:
    """Comma-separated training sizes, each at least 2 events."""
    _int_list(value, 2, "300,1000")
    return value


def _seeds(value: str) -> str:
    """Comma-separated seeds, each at least 0."""
    _int_list(value, 0, "0,1,2")
    return value


def _devices(value: int) -> int:
    if value != -1 and value < 1:
        raise typer.BadParameter(f"must be at least 1 (or -1: all), got {value}")
    return value


DEVICE_CHOICES = DEVICES
PRECISION_CHOICES = tuple(PRECISIONS)
# Constants of modules that import torch (or, for generate, heavy modules), restated here so
# that ``import hepfm.cli`` and ``hepfm --help`` stay light; tests/test_cli_vocabulary.py
# checks every one against the code that uses it.
#: hepfm.training.finetune.MODES.
MODE_CHOICES = ("scratch", "full", "frozen", "linear")
SCAN_MODE_CHOICES = ("bdt", *MODE_CHOICES)
#: hepfm.objectives.mpm.MPM_DEFAULTS (MASK_FRACTION, CODEBOOK_SIZE) that pretrain uses.
MPM_DEFAULTS: dict[str, Any] = {"fraction": 0.3, "codebook_size": 128}
#: hepfm.inference.predict_files' step_size and batch_size.
PREDICT_DEFAULTS: dict[str, int] = {"step_size": 100_000, "batch_size": 4096}
#: hepfm.analysis.cka_report.cka_report's events and hepfm.analysis.cka.DEFAULT_RBF_BATCH.
CKA_DEFAULTS: dict[str, int] = {"events": 10_000, "rbf_batch": 1024}
#: hepfm.generate.generate_samples' chunk_size and part_chunks (hepfm.generate.parts).
GENERATE_DEFAULTS: dict[str, int] = {"chunk_size": 500, "part_chunks": 20}
#: hepfm.taskdata.DEFAULT_EVENTS_PER_PROCESS: task samples generated when missing.
TASK_SAMPLE_EVENTS = 2500

# ------------------------------------------------------------------ shared options
# One meaning per option name: an option that several commands take is defined once here
# (the table in README.md "One vocabulary" lists them).

#: Every random seed of the CLI defaults to this (hepfm.defaults.SEED).
SEED = defaults.SEED
#: --device default: cuda when torch sees a GPU, else cpu (see hepfm.devices).
DEVICE = typer.Option("auto", help="auto (cuda when torch sees a GPU, else cpu), "
                      + ", ".join(DEVICE_CHOICES[1:-1]) + f" or {DEVICE_CHOICES[-1]}.",
                      callback=one_of(DEVICE_CHOICES))
#: --model: one model, a shipped name or a model directory.
MODEL_HELP = "Model: a shipped name (see 'hepfm models') or a model directory"
FORCE = typer.Option(False, "--force", help="Replace what --out holds (default: refuse).")
#: --on-invalid (hepfm.defaults.ON_INVALID), for every command that reads event files.
ON_INVALID = typer.Option("error", "--on-invalid", help="An event with a NaN, infinite, "
                          "out-of-range or negative value: error (stop, naming file, branch "
                          "and entry) or drop (leave it out; one warning per file says how "
                          "many and why).", callback=one_of(defaults.ON_INVALID))
VERBOSE = typer.Option(False, "--verbose", help="Show progress bars and what third-party "
                       "libraries print (Lightning tips, device lines).")


def model_option(help: str = MODEL_HELP + ".", default: Any = ...) -> Any:
    """``--model`` with a command's own description; checked when parsed."""
    return typer.Option(default, "--model", help=help, callback=checked_by(_model))


def seed_option(help: str) -> Any:
    """``--seed`` (default :data:`SEED`) with a command's own description."""
    return typer.Option(SEED, help=help)


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
def models() -> None:
    """List the shipped pretrained models: version, weights, architecture, pretraining data,
    test scores."""
    from hepfm.pretrained import SHORT_SHA, describe_models

    def num(value: Any, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    table = Table("name\nobjective", "version", "SHA-256", "width", "pretraining\nevents",
                  "test\nacc.", "test\nAUC")
    for m in describe_models():
        per = m["events_per_process"]
        events = f"{m['processes']} x {num(per, ',')}" if per else "all"
        table.add_row(m["name"] + ("*" if m["default"] else "") + f"\n{m['objective']}",
                      m["version"],
                      (m["weights_sha256"] or "")[:SHORT_SHA],
                      f"{m['width']} x {m['blocks']}", events, num(m["accuracy"], ".3f"),
                      num(m["macro_auc"], ".3f"))
    console.print(table)
    console.print("* the default. Scores on the model's own test split (12-process "
                  "classification, macro AUC). Load one with hepfm.load_pretrained(name) or "
                  "--model NAME; pin the exact weights with NAME@VERSION.", highlight=False)


def _detector(value: str) -> None:
    from hepfm.generate.detector import load_detector

    load_detector(value)


@app.command()
def generate(
    processes: str = typer.Option("all", help="'all', 'everything' or NAME,NAME,...",
                                  callback=checked_by(_processes)),
    events_per_process: int = typer.Option(None, help="Events per process (required).",
                                           callback=at_least(1)),
    out: str = typer.Option(..., help="Output directory (<process>.root, or parts "
                            "<process>_<chunk>.root for samples of more than one part)."),
    seed: int = typer.Option(SEED, help="Random seed; the same seed gives identical files.",
                             callback=at_least(0)),
    workers: int = typer.Option(1, help="Worker processes running in parallel.",
                                callback=at_least(1)),
    mpi: bool = typer.Option(True, "--mpi/--no-mpi", help="Multi-parton interactions."),
    shower: str = typer.Option(DEFAULT_SHOWER, help="Pythia's parton shower: "
                               + ", ".join(SHOWERS) + " (a setting of the sample).",
                               callback=checked_by(check_shower)),
    chunk_size: int = typer.Option(GENERATE_DEFAULTS["chunk_size"], help="Events per chunk "
                                   "(one seed per chunk).", callback=at_least(1)),
    first_chunk: int = typer.Option(0, help="Index of the first chunk: samples of one seed "
                                    "with disjoint chunk ranges hold disjoint events.",
                                    callback=at_least(0)),
    detector: str = typer.Option(None, help="YAML file of detector parameters to change, "
                                 "e.g. 'btag_b_norm: 0.77' (names: hepfm.generate."
                                 "DetectorConfig).", callback=checked_by(_detector)),
    part_chunks: int = typer.Option(GENERATE_DEFAULTS["part_chunks"], help="Chunks per part "
                                    "file: a killed run loses at most one part; a sample of "
                                    "one part is <process>.root.", callback=at_least(1)),
    shard: str = typer.Option(None, help="K/N: make only every N-th part from the K-th (0 <= K "
                              "< N), e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT."),
    executor: str = typer.Option("local", help="local (worker processes here) or dask."),
    scheduler: str = typer.Option(None, help="Dask scheduler tcp://HOST:PORT [a LocalCluster "
                                  "of --workers processes]."),
    force: bool = typer.Option(False, "--force", help="Replace files hepfm did not write or "
                               "wrote with other settings (default: refuse)."),
) -> None:
    """Generate events with Pythia 8 + a parametric detector into Delphes-layout ROOT files."""
    import logging
    import signal

    from hepfm.generate import generate_samples
    from hepfm.generate.detector import load_detector

    if events_per_process is None:
        raise ArgumentError("hepfm generate needs --events-per-process N")
    n = events_per_process
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # SIGTERM (a time limit) unwinds like Ctrl-C: the part being written is removed, finished
    # parts stay, and the same command resumes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    paths = generate_samples(processes, n, out, seed=seed, workers=workers, mpi=mpi,
                             chunk_size=chunk_size, first_chunk=first_chunk,
                             detector=load_detector(detector) if detector else None,
                             part_chunks=part_chunks, shard=shard, executor=executor,
                             scheduler=scheduler, force=force, shower=shower)
    for path in paths:
        console.print(f"{path}")


@app.command()
def check(
    directory: str = typer.Argument(..., help="Sample directory to check."),
    processes: str = typer.Option(None, help="NAME,NAME,... or 'all' [every process there].",
                                  callback=checked_by(_processes)),
    checksums: bool = typer.Option(True, "--checksums/--no-checksums", help="Read every part "
                                   "and compare its events with its events_sha256."),
) -> None:
    """Check that a sample directory is complete and consistent (exit status 1 if not)."""
    from hepfm.generate.check import check_directory
    from hepfm.processes import resolve_processes

    names = resolve_processes(processes) if processes else None
    reports = check_directory(directory, names, checksums)
    table = Table("process", "files", "events", "chunks", "status")
    for r in reports:
        table.add_row(r.process, str(len(r.files)), str(r.events), str(r.chunks),
                      "ok" if r.ok else f"{len(r.problems)} problem(s)")
    console.print(table)
    for r in reports:
        for note in r.notes:
            console.print(f"{r.process}: {note}", highlight=False)
        for problem in r.problems:
            Console(stderr=True).print(f"[bold red]{r.process}:[/] {problem}", highlight=False)
    if not all(r.ok for r in reports):
        raise SystemExit(1)



@app.command()
def cka(
    model: list[str] = typer.Option(None, "--model", metavar="NAME|DIR",
                                    help=MODEL_HELP + "; give it twice "
                                    "(models A and B).", callback=checked_by(
                                        lambda v: [_model(m) for m in v])),
    group_a: str = typer.Option(None, help="Group mode: MODEL,MODEL,... (e.g. scratch "
                                "seeds)."),
    group_b: str = typer.Option(None, help="Group mode: MODEL,MODEL,... (e.g. fine-tuned "
                                "seeds)."),
    labels: str = typer.Option("A,B", help="Group mode: names of the two groups, e.g. "
                               "scratch,finetuned."),
    task: str = typer.Option(None, help="Compare on the events of this task's processes."),
    data: str = typer.Option(None, help="Sample directory (<process>.root) [$HEPFM_DATA or "
                             "~/.cache/hepfm/data]."),
    processes: str = typer.Option(None, help="Instead of --task: 'all' or NAME,NAME,...",
                                  callback=checked_by(_processes)),
    events: int = typer.Option(CKA_DEFAULTS["events"], help="Events to compare on in all "
                               "(shared by all models).", callback=at_least(4)),
    kernel: str = typer.Option("linear", help="CKA kernel: linear or rbf.",
                               callback=one_of(("linear", "rbf"))),
    batch_size: int = typer.Option(None, help="Minibatch CKA batch size [default: exact "
                                   f"for linear, {CKA_DEFAULTS['rbf_batch']} for rbf].",
                                   callback=at_least(4)),
    out: str = typer.Option("cka", help="Output directory for CSV and PNG files.",
                            callback=writable_dir),
    force: bool = FORCE,
    on_invalid: str = ON_INVALID,
    device: str = DEVICE,
    seed: int = seed_option("Seed of the event sample and minibatches."),
) -> None:
    """Layer-by-layer CKA between two models (or two groups of models) on the same events."""
    models = list(model or [])
    if group_a or group_b:
        if models or not (group_a and group_b):
            raise ArgumentError("group mode takes --group-a and --group-b (not --model)")
        names = [n.strip() for n in labels.split(",")]
        if len(names) != 2 or not all(names):
            raise ArgumentError(f"--labels takes two names like scratch,finetuned; got "
                                f"'{labels}'")
    elif len(models) != 2:
        raise ArgumentError("give two models: --model A --model B (or --group-a/--group-b)")
    from hepfm.analysis.cka_report import cka_group_report, cka_report

    common = dict(task=task, data=data, processes=processes, events=events, kernel=kernel,
                  batch_size=batch_size, out=out, device=resolve_device(device), seed=seed,
                  force=force, on_invalid=on_invalid)
    if group_a and group_b:
        summary = cka_group_report(group_a.split(","), group_b.split(","),
                                   labels=(names[0], names[1]), **common)
        table = Table("comparison", "stage", "mean", "std", "min", "max", "pairs")
        for r in summary.itertuples(index=False):
            table.add_row(r.comparison, r.stage, f"{r.mean:.3f}", f"{r.std:.3f}",
                          f"{r.min:.3f}", f"{r.max:.3f}", str(r.n_pairs))
        console.print(table)
        console.print(f"wrote {out}/cka_groups.csv, cka_pairs.csv, cka_groups.png")
        return
    from hepfm.analysis.cka import cka_diagonal

    diag = cka_diagonal(cka_report(models[0], models[1], **common))
    table = Table("stage", f"{kernel} CKA, A vs B")
    for stage, value in diag.items():
        table.add_row(stage, f"{value:.3f}")
    console.print(table)
    console.print(f"wrote {out}/cka.csv (all stage pairs), cka.png, cka_diagonal.png")


@app.command()
def pretrain(
    processes: str = typer.Option(None, help="'all' or NAME,NAME,... "
                                  f"[{PRETRAIN_DEFAULTS['processes']}].",
                                  callback=checked_by(_processes)),
    objective: str = typer.Option(None, help="multiclass, multilabel, both, mpm (masked "
                                  "particle modeling) or a sum like mpm+multiclass (weights: "
                                  f"mpm:0.5+multiclass) [{PRETRAIN_DEFAULTS['objective']}].",
                                  callback=checked_by(_objective)),
    mask_fraction: float = typer.Option(None, help="MPM: fraction of objects masked "
                                        f"[{MPM_DEFAULTS['fraction']}].",
                                        callback=between(0, 1)),
    codebook_size: int = typer.Option(None, help="MPM: k-means token codebook size "
                                      f"[{MPM_DEFAULTS['codebook_size']}].",
                                      callback=at_least(2)),
    data: str = typer.Option(None, help="Sample directory (<process>.root); default "
                             "$HEPFM_DATA or ~/.cache/hepfm/data, generated if missing."),
    out: str = typer.Option(None, help="Run directory (default runs/pretrain-<time>).",
                            callback=writable_dir),
    force: bool = FORCE,
    events_per_process: int = typer.Option(None, help="Events read per process "
                                           f"[{PRETRAIN_DEFAULTS['events_per_process']}].",
                                           callback=at_least(1)),
    epochs: int = typer.Option(None, help="Maximum epochs (early stopping on val loss) "
                               f"[{PRETRAIN_DEFAULTS['epochs']}].", callback=at_least(1)),
    batch_size: int = typer.Option(None, help="Events per batch "
                                   f"[{PRETRAIN_DEFAULTS['batch_size']}].",
                                   callback=at_least(1)),
    device: str = DEVICE,
    precision: str = typer.Option("32", help="32 or bf16-mixed.",
                                  callback=one_of(PRECISION_CHOICES)),
    devices: int = typer.Option(1, help="Devices per node (DDP when > 1; -1: all).",
                                callback=_devices),
    num_nodes: int = typer.Option(1, help="Nodes (DDP under torchrun or SLURM when > 1).",
                                  callback=at_least(1)),
    seed: int = typer.Option(None, help="Seed of split, initialisation and batches "
                             f"[{PRETRAIN_DEFAULTS['seed']}]; a resumed run keeps its own."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its "
                                "last checkpoint."),
    gen: bool = typer.Option(False, "--generate", help="Generate missing sample files."),
    threads: int = typer.Option(None, help="CPU training: torch threads [half the cores, "
                                "at most 4].", callback=at_least(1)),
    streaming: bool = typer.Option(False, "--streaming", help="Stream training events from "
                                   "the files instead of loading them (split by entry ranges "
                                   "per file; --events-per-process then caps each file)."),
    num_workers: int = typer.Option(0, help="DataLoader worker processes.",
                                    callback=at_least(0)),
    on_invalid: str = ON_INVALID,
    verbose: bool = VERBOSE,
) -> None:
    """Pretrain the foundation model (multiclass, multilabel and/or MPM) with Lightning."""
    from hepfm.training.pretrain import ComputeConfig, PretrainConfig
    from hepfm.training.pretrain import pretrain as run_pretrain
    from hepfm.training.quiet import quiet_chatter

    quiet_chatter(not verbose)
    mpm = {k: v for k, v in (("fraction", mask_fraction), ("codebook_size", codebook_size))
           if v is not None}
    config = PretrainConfig(processes, objective, data, events_per_process, epochs, batch_size,
                            seed, mpm=mpm or None, streaming=streaming, on_invalid=on_invalid)
    compute = ComputeConfig(resolve_device(device), precision, devices, num_nodes, threads,
                            num_workers)
    result = run_pretrain(config, out, compute=compute, resume=resume, force=force,
                          generate=gen, verbose=verbose)
    if result.metrics:  # the rank that saved the model
        console.print(result.summary(), highlight=False, soft_wrap=True)


# --- the events of a task (hepfm.taskdata.task_data) --------------------------------------
_SOURCES = ("process names NAME,NAME (events in --data), or ROOT files: paths, quoted globs, "
            "directories")
TASK_SOURCES: dict[str, Any] = {
    "signal": typer.Option(None, help=f"Signal: {_SOURCES}."),
    "background": typer.Option(None, help=f"Background: {_SOURCES}."),
    "mixed": typer.Option(None, help="Files of mixed events, labelled per event by "
                          "--label-branch (instead of --signal/--background)."),
    "test_signal": typer.Option(None, help="Explicit test set, signal files (never trained "
                                "on)."),
    "test_background": typer.Option(None, help="Explicit test set, background files."),
    "test_mixed": typer.Option(None, help="Explicit test set, mixed files labelled by "
                               "--label-branch."),
    "label_branch": typer.Option(None, help="Branch holding 1 (signal) or 0 (background) per "
                                 "event."),
    "weight_branch": typer.Option(None, help="Branch of event weights: used in the training "
                                  "loss (rescaled per class) and in the test AUC and ROC."),
    "branch_map": typer.Option(None, help="Branch names and units of your files: delphes "
                               "(default), flat, nanoaod, atlas-opendata, or a YAML file (see "
                               "README)."),
    "btag": typer.Option(None, help="b-tag working point, instead of the branch map's: a "
                         "score cut (0.2783), a working point the map names (nanoaod: loose, "
                         "medium, tight; atlas-opendata: 85, 77, 70, 60), bitN (bit N of a bit "
                         "mask) or flag."),
    "data": typer.Option(None, help="Sample directory of the tasks' processes; default "
                         "$HEPFM_DATA/tasks or ~/.cache/hepfm/data/tasks, generated if missing "
                         "(never the pretraining events)."),
}
BRANCH_MAP = TASK_SOURCES["branch_map"]
BTAG = TASK_SOURCES["btag"]
YIELDS = typer.Option(None, help="Expected signal,background events before the score cut for "
                      "the significance [100,10000]; 'weights': the sums of the test "
                      "events' weights.")
LUMINOSITY = typer.Option(None, help="Integrated luminosity (fb^-1) for the yields, with "
                          "--xsec.", callback=at_least(0))
XSEC = typer.Option(None, help="Cross-sections SIG,BKG (fb) of the selected events, with "
                    "--luminosity.")
VARIATION = typer.Option(None, help="Also evaluate on systematically varied test events: "
                         "jes_up, jes_down, jer, les_up, les_down, btag_up, btag_down (NAME or "
                         "NAME:SIZE; comma-separated or repeated).", metavar="NAME[:SIZE]")


def _variations(values: list[str] | None) -> list[Any]:
    """Variations of --variation (comma-separated or repeated), checked."""
    from hepfm.data.variations import parse_variation

    return [parse_variation(v) for value in values or [] for v in value.split(",") if v]


def _print_trust(r: dict[str, Any], table: Any) -> None:
    """Add the significance and calibration rows of a fine-tuning result `r` to `table`."""
    for key in ("z_asimov", "z_binned", "sic", "z_asimov_unweighted", "z_binned_unweighted",
                "sic_unweighted", "brier", "temperature"):
        if key in r and r[key] == r[key]:
            interval = (f" [{r[f'{key}_lo68']:.4g}, {r[f'{key}_hi68']:.4g}] (68% bootstrap)"
                        if f"{key}_lo68" in r else "")
            table.add_row(key, f"{r[key]:.4g}{interval}")


def task_source_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with the options of :data:`TASK_SOURCES` right after its ``--task``, which
    it receives as one dict, its keyword argument ``sources`` (typer has no option groups;
    typer reads the signature and the type hints made here, which agree)."""
    params = [p for p in inspect.signature(command, eval_str=True).parameters.values()
              if p.name != "sources"]
    at = [p.name for p in params].index("task") + 1
    added = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option,
                               annotation=str) for name, option in TASK_SOURCES.items()]

    @functools.wraps(command)
    def with_sources(**given: Any) -> None:
        sources = {name: given.pop(name) for name in TASK_SOURCES}
        command(**given, sources=sources)

    signature = inspect.Signature([*params[:at], *added, *params[at:]], return_annotation=None)
    with_sources.__signature__ = signature  # type: ignore[attr-defined]
    with_sources.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return with_sources


@app.command()
@task_source_options
def finetune(
    task: str = typer.Option(None, help="Task name (see 'hepfm tasks'); with --signal and "
                             "--background, the name of your task."),
    model: str = model_option(f"{MODEL_HELP} to start from [{DEFAULT_MODEL}].", None),
    mode: str = typer.Option("full", help="scratch, full, frozen or linear.",
                             callback=one_of(MODE_CHOICES)),
    train_size: int = typer.Option(None, help="Training events, balanced signal/background "
                                   "[all outside the test set but the validation share].",
                                   callback=at_least(2)),
    epochs: int = typer.Option(defaults.EPOCHS, help="Maximum epochs (early stopping on val "
                               "loss).", callback=at_least(1)),
    seed: int = seed_option("Seed of the training sample and the training."),
    out: str = typer.Option(None, help="Run directory [runs/finetune-<task>-<mode>-<seed>].",
                            callback=writable_dir),
    force: bool = FORCE,
    events_per_process: int = typer.Option(None, help="Events read per process [all in the "
                                           f"files; {TASK_SAMPLE_EVENTS} generated when "
                                           "missing].", callback=at_least(1)),
    gen: bool = typer.Option(False, "--generate", help="Generate missing sample files."),
    allow_overlap: bool = typer.Option(False, help="Go on when the task's events were "
                                       "pretraining events of the model (the overlap is "
                                       "written into metrics.json)."),
    yields: str = YIELDS,
    luminosity: float = LUMINOSITY,
    xsec: str = XSEC,
    calibrate: bool = typer.Option(False, "--calibrate", help="Temperature-scale the scores "
                                   "on the validation events (saved in the model)."),
    variation: list[str] = VARIATION,
    on_invalid: str = ON_INVALID,
    device: str = DEVICE,
    verbose: bool = VERBOSE,
    *,
    sources: dict[str, str | None],
) -> None:
    """Fine-tune a pretrained model on a task; print AUC, significance, calibration and
    systematic shifts."""
    from hepfm.analysis.significance import yields_from_options
    from hepfm.taskdata import task_data
    from hepfm.training.quiet import quiet_chatter
    from hepfm.training.task_run import finetune_task

    quiet_chatter(not verbose)
    inputs = task_data(task, **sources, events_per_process=events_per_process,
                       generate=gen, on_invalid=on_invalid)
    r = finetune_task(inputs, model, mode, train_size, epochs, seed, out, force=force,
                      allow_overlap=allow_overlap, device=resolve_device(device),
                      progress=verbose, yields=yields_from_options(yields, luminosity, xsec),
                      calibrate=calibrate, variations=_variations(variation))
    _print_finetune(r)


def _print_finetune(r: dict[str, Any]) -> None:
    """The metrics of a fine-tuning result `r`, its systematic shifts and where it is."""
    title = "weighted, " if r.get("weighted") else ""
    table = Table("metric", "value", title=f"{r['task']} ({title}{r['mode']}, "
                  f"{r['train_events']} training events, {r['test_events']} test events)")
    for key in ("auc", "auc_unweighted", "accuracy", "rejection_50", "rejection_70"):
        if key in r:
            interval = (f" [{r[f'{key}_lo68']:.4g}, {r[f'{key}_hi68']:.4g}] (68% bootstrap)"
                        if f"{key}_lo68" in r else "")
            table.add_row(key, f"{r[key]:.4g}{interval}")
    _print_trust(r, table)
    table.add_row("train seconds", f"{r['train_seconds']:.1f}")
    table.add_row("epochs to best val loss", str(r["epochs_to_best"]))
    console.print(table)
    if "signal_yield" in r:
        console.print(f"significance for {r['signal_yield']:.4g} signal and "
                      f"{r['background_yield']:.4g} background events before the cut")
    if r.get("variations"):
        shifts = Table("variation", "AUC shift", "z_asimov shift", "sic shift",
                       title="shift from nominal, test events (68% paired bootstrap)")
        for name, v in r["variations"].items():
            shifts.add_row(name, *(f"{v[f'{k}_shift']:+.4f} [{v[f'{k}_shift_lo68']:+.4f}, "
                                   f"{v[f'{k}_shift_hi68']:+.4f}]"
                                   for k in ("auc", "z_asimov", "sic")))
        console.print(shifts)
    console.print(f"model, metrics.json, data.json, roc.csv, roc.png and reliability.png in "
                  f"{r['out_dir']}")


@app.command()
@task_source_options
def scan(
    task: str = typer.Option(None, help="Task names NAME,NAME or 'all' (the built-in "
                             "tasks); with --signal and --background, the name of your task."),
    sizes: str = typer.Option(",".join(map(str, defaults.SCAN_SIZES)), help="Training sizes.",
                              callback=_sizes),
    modes: str = typer.Option(",".join(defaults.SCAN_MODES), help="Modes to compare: bdt "
                              "(boosted trees on event-level features), scratch, full, "
                              "frozen, linear.", callback=one_of(SCAN_MODE_CHOICES, ",")),
    seeds: str = typer.Option(",".join(map(str, defaults.SCAN_SEEDS)), help="Seeds per "
                              "(mode, size).", callback=_seeds),
    model: str = model_option(f"{MODEL_HELP}, or label=DIR,label=DIR to compare several "
                              f"[{DEFAULT_MODEL}].", None),
    epochs: int = typer.Option(defaults.EPOCHS, help="Maximum epochs per run (early "
                               "stopping on val loss).", callback=at_least(1)),
    out: str = typer.Option("runs/scan", help="Scan directory: one file per run in runs/, "
                            "test scores in scores/.", callback=writable_dir),
    resume: bool = typer.Option(False, "--resume", help="Add to the scan in --out: runs with "
                                "identical settings are reused (several scans may write to "
                                "one directory at once)."),
    events_per_process: int = typer.Option(None, help="Events read per process [all in the "
                                           "files; 2 x the largest size + 400 generated when "
                                           "missing].", callback=at_least(1)),
    gen: bool = typer.Option(False, "--generate", help="Generate missing sample files."),
    allow_overlap: bool = typer.Option(False, help="Go on when the task's events were "
                                       "pretraining events of a model."),
    summarise_only: bool = typer.Option(False, "--summarise-only", help="Train nothing: "
                                        "remake summary.csv, differences.csv, plots and "
                                        "compute tables of --out from its stored runs and "
                                        "test scores."),
    bootstrap: int = typer.Option(defaults.N_BOOT, help="Resamples of the test events for "
                                  "the 68% intervals of summary.csv and differences.csv (0: "
                                  "none).", callback=at_least(0)),
    yields: str = YIELDS,
    luminosity: float = LUMINOSITY,
    xsec: str = XSEC,
    variation: list[str] = typer.Option(None, help="Also score every trained model on "
                                        "systematically varied test events (NAME or "
                                        "NAME:SIZE, comma-separated or repeated; see "
                                        "'hepfm finetune --help'): variations.csv holds the "
                                        "AUC and significance shifts.",
                                        metavar="NAME[:SIZE]"),
    on_invalid: str = ON_INVALID,
    test_sample: list[str] = typer.Option(None, help="Also score every trained model on all "
                                          "events of another sample of the task's "
                                          "processes, NAME=DIR (a task sample directory, "
                                          "e.g. made with 'hepfm generate --shower "
                                          "vincia'; repeated for several): "
                                          "test_samples.csv holds the shifts.",
                                          metavar="NAME=DIR"),
    device: str = DEVICE,
    verbose: bool = VERBOSE,
    *,
    sources: dict[str, str | None],
) -> None:
    """Learning curves: AUC and significance against training size for each mode, with seed
    spread and test-bootstrap intervals; shifts under systematic variations and on other
    test samples."""
    from hepfm.analysis.significance import yields_from_options
    from hepfm.taskdata import task_data_list

    chosen_yields = yields_from_options(yields, luminosity, xsec)
    variations = _variations(variation)
    if summarise_only:
        _summarise_scan(out, bootstrap, chosen_yields)
        return
    size_list = [int(n) for n in sizes.split(",")]
    inputs = task_data_list(task, **sources, events_per_process=events_per_process,
                            generate=gen, sample_events=max(size_list) * 2 + 400,
                            on_invalid=on_invalid)
    _train_scan(inputs, model, size_list, modes, seeds, verbose, out=out, epochs=epochs,
                resume=resume, allow_overlap=allow_overlap, n_boot=bootstrap,
                device=resolve_device(device), yields=chosen_yields, variations=variations,
                test_samples=_test_samples(test_sample))


def _summarise_scan(out: str, n_boot: int, yields: Any) -> None:
    """``hepfm scan --summarise-only``: the summary of the stored runs of `out`, remade."""
    from hepfm.training.scan import summarise_scan

    out_dir = summarise_scan(out, n_boot=n_boot, yields=yields)
    console.print(f"wrote summary.csv, learning curves and compute.csv in {out_dir}")
    _print_scan_summary(out_dir)


def _train_scan(inputs: list[Any], model: str | None, sizes: list[int], modes: str, seeds: str,
                verbose: bool, **settings: Any) -> None:
    """``hepfm scan``: the learning curves of the tasks `inputs`
    (:func:`hepfm.training.task_run.scan_tasks` with `settings`), then their summary."""
    from hepfm.training.quiet import quiet_chatter
    from hepfm.training.task_run import scan_tasks

    quiet_chatter(not verbose)
    out_dir = scan_tasks(inputs, model, sizes, [m.strip() for m in modes.split(",")],
                         [int(n) for n in seeds.split(",")], progress=verbose, **settings)
    console.print(f"wrote scan.csv, summary.csv, learning curves and compute.csv in {out_dir}")
    _print_scan_summary(out_dir)
    console.print((out_dir / "compute.txt").read_text())
    console.print((out_dir / "label_efficiency.txt").read_text(), highlight=False)


def _test_samples(values: list[str] | None) -> dict[str, str]:
    """{name: directory} of --test-sample NAME=DIR (repeated)."""
    samples: dict[str, str] = {}
    for value in values or []:
        name, sep, directory = value.partition("=")
        if not (sep and name.strip() and directory.strip()):
            raise typer.BadParameter(f"'{value}': give NAME=DIR", param_hint="--test-sample")
        if name.strip() in samples:
            raise typer.BadParameter(f"'{name}' given twice", param_hint="--test-sample")
        samples[name.strip()] = directory.strip()
    return samples


def _print_scan_summary(out_dir: Any) -> None:
    """AUC and Asimov significance per curve and size (summary.csv), and the systematic
    shifts (variations.csv) when there are any."""
    import pandas as pd

    def cell(row: Any, name: str, fmt: str) -> str:
        value = row.get(name, float("nan"))
        lo, hi = row.get(f"{name.removesuffix('_mean')}_lo68"), \
            row.get(f"{name.removesuffix('_mean')}_hi68")
        if value != value:
            return "-"
        return f"{value:{fmt}}" + (f" [{lo:{fmt}}, {hi:{fmt}}]" if lo == lo and hi == hi
                                   and lo is not None else "")

    summary = pd.read_csv(out_dir / "summary.csv")
    table = Table("task", "curve", "size", "AUC [68%]", "z_asimov [68%]", "SIC [68%]",
                  title="test events: mean over seeds, test-bootstrap intervals")
    for _, r in summary.iterrows():
        table.add_row(str(r["task"]), str(r["curve"]), str(r["train_size"]),
                      cell(r, "auc_mean", ".4f"), cell(r, "z_asimov_mean", ".3f"),
                      cell(r, "sic_mean", ".3f"))
    console.print(table)
    path = out_dir / "variations.csv"
    if path.is_file():
        shifts = pd.read_csv(path)
        table = Table("task", "curve", "size", "variation", "AUC shift [68%]",
                      "z_asimov shift [68%]", title="shift from nominal (paired bootstrap)")
        for _, r in shifts.iterrows():
            table.add_row(str(r["task"]), str(r["curve"]), str(r["train_size"]),
                          str(r["variation"]), cell(r, "auc_shift_mean", "+.4f"),
                          cell(r, "z_asimov_shift_mean", "+.3f"))
        console.print(table)
    path = out_dir / "test_samples.csv"
    if path.is_file():
        shifts = pd.read_csv(path)
        table = Table("task", "curve", "size", "sample", "AUC", "AUC shift [68%]",
                      "z_asimov shift [68%]", title="other test samples: shift from the "
                      "task's test events")
        for _, r in shifts.iterrows():
            table.add_row(str(r["task"]), str(r["curve"]), str(r["train_size"]),
                          str(r["sample"]), cell(r, "auc_sample_mean", ".4f"),
                          cell(r, "auc_shift_mean", "+.4f"),
                          cell(r, "z_asimov_shift_mean", "+.3f"))
        console.print(table)


@app.command(context_settings={"allow_extra_args": True})
def predict(
    ctx: typer.Context,
    model: str = model_option(MODEL_HELP + " (a fine-tuned run directory scores its task)."),
    input: list[str] = typer.Option(..., "--input", metavar="FILES", help="Input ROOT "
                                    "files: paths, quoted globs, folders, comma-separated or "
                                    "repeated (unquoted globs work too)."),
    out: str = typer.Option(..., help="Output folder: one <input>_hepfm.root per input, in "
                            "the inputs' folder structure."),
    head: str = typer.Option(None, help="Head to score [the task head]."),
    branch_map: str = BRANCH_MAP,
    btag: str = BTAG,
    fmt: str = typer.Option("root", "--format", help="root (a friend tree 'hepfm') or "
                            "parquet.", callback=one_of(("root", "parquet"))),
    step_size: int = typer.Option(PREDICT_DEFAULTS["step_size"], help="Entries read per "
                                  "chunk.", callback=at_least(1)),
    batch_size: int = typer.Option(PREDICT_DEFAULTS["batch_size"], help="Events per forward "
                                   "pass.", callback=at_least(1)),
    force: bool = typer.Option(False, "--force", help="Replace existing outputs."),
    threads: int = typer.Option(None, help="torch threads [torch's default].",
                                callback=at_least(1)),
    variation: str = typer.Option(None, help="Score systematically varied events (jes_up, "
                                  "jes_down, jer, les_up, les_down, btag_up, btag_down; NAME "
                                  "or NAME:SIZE): outputs <input>_hepfm_<name>.root."),
    on_invalid: str = typer.Option("error", "--on-invalid", help="An event with a NaN, "
                                   "infinite, out-of-range or negative value: error (stop, "
                                   "naming file, branch and entry) or drop (score it NaN, so "
                                   "that the output still matches the input entry by entry; "
                                   "one warning per file).", callback=one_of(defaults.ON_INVALID)),
    device: str = DEVICE,
) -> None:
    """Score every event of ROOT files; write the scores as friend trees next to the data."""
    from hepfm.data.labelled import expand_files, load_branch_map
    from hepfm.inference import TREE_NAME, predict_files

    files = expand_files([*input, *ctx.args], "input")
    if threads:
        import torch

        torch.set_num_threads(threads)
    outs = predict_files(model, files, out, head, load_branch_map(branch_map, btag), fmt=fmt,
                         step_size=step_size, batch_size=batch_size, force=force,
                         device=resolve_device(device),
                         variation=_variations([variation])[0] if variation else None,
                         on_invalid=on_invalid)
    for f, o in zip(files, outs, strict=True):
        console.print(f"{f} -> {o}", highlight=False)
    if fmt == "root":
        console.print(f"each output holds the friend tree '{TREE_NAME}' (same entries, same "
                      f"order): tree.AddFriend(\"{TREE_NAME}\", \"{outs[0]}\")",
                      highlight=False, soft_wrap=True)


@app.command()
def export(
    model: str = model_option(MODEL_HELP + "."),
    fmt: str = typer.Option("onnx", "--format", help="onnx.", callback=one_of(("onnx",))),
    out: str = typer.Option(..., help="Output file, e.g. model.onnx."),
    head: str = typer.Option(None, help="Head to export [the task head]."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare ONNX Runtime with "
                               "PyTorch on 1, 7 and 1000 events."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Export a trained model to ONNX (dynamic numbers of events, nodes and edges)."""
    from hepfm.exporting import export as run_export

    path, head, rows = run_export(model, out, head, fmt, check, force)
    console.print(f"wrote {path} (head '{head}'; inputs x, edge_index, edge_attr, u, "
                  "batch: hepfm.exporting.onnx_inputs(table))", highlight=False)
    for n, diff in rows:
        console.print(f"{n} events: max |onnxruntime - pytorch| = {diff:.2e}")


def main() -> None:
    """The ``hepfm`` console script (errors are handled by :class:`HepfmGroup`)."""
    from hepfm.training.quiet import ignore_irrelevant_warnings

    ignore_irrelevant_warnings()
    app()


if __name__ == "__main__":
    main()
