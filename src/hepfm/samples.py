"""Where samples live and how missing ones are made: one home for the CLI, the Python API,
pretraining and the task runs (under DDP only rank 0 generates; the other ranks wait).

Pretraining samples default to ``$HEPFM_DATA`` (or ``~/.cache/hepfm/data``); task samples to
its ``tasks/`` folder, from the task seed stream (chunks from
:data:`~hepfm.provenance.TASK_FIRST_CHUNK`), so that they never hold pretraining events.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from hepfm.errors import InputDataError, missing_extra, naming
from hepfm.provenance import TASK_FIRST_CHUNK


def default_data_dir() -> Path:
    """Where samples live when no --data is given: $HEPFM_DATA, else the user's cache."""
    if os.environ.get("HEPFM_DATA"):
        return Path(os.environ["HEPFM_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hepfm" / "data"


def missing_processes(data_dir: Path, processes: Iterable[str]) -> list[str]:
    """Processes without ``<process>.root`` or ``<process>_<k>.root`` in `data_dir`, or whose
    hepfm sample there is incomplete (parts of a run still going, or killed)."""
    from hepfm.generate.check import incomplete_samples

    return incomplete_samples(data_dir, processes) if data_dir.is_dir() else list(processes)


def generate_command(processes: list[str], events: int, data_dir: Path, seed: int,
                     first_chunk: int = 0) -> str:
    """The exact ``hepfm generate`` command that makes the missing files (`events` per
    process; ``--first-chunk`` when the sample starts at another chunk than 0)."""
    start = f" --first-chunk {first_chunk}" if first_chunk else ""
    return (f"hepfm generate --processes {','.join(processes)} --events-per-process {events} "
            f"--out {data_dir} --seed {seed}{start}")


def distributed_rank() -> int:
    """This process's global rank under torchrun (``RANK``) or SLURM (``SLURM_PROCID``)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 0


def ensure_samples(processes: Iterable[str], data_dir: str | os.PathLike[str] | None,
                   events: int, seed: int, generate: bool, *, workers: int | None = None,
                   verbose: bool = True, first_chunk: int = 0) -> Path:
    """The sample directory (`data_dir`, or :func:`default_data_dir` when None) holding a
    complete sample for every process. Missing ones are generated when `generate` is set or
    the directory is the default one (by rank 0 only under torchrun/SLURM: the other ranks
    wait for them); otherwise the error names them and the command to run."""
    processes = list(processes)
    data = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    missing = missing_processes(data, processes)
    if missing:
        if not (generate or data_dir is None):
            raise naming(
                InputDataError, f"no complete sample in '{data}' for {len(missing)} "
                f"process(es): {', '.join(missing)} (see: hepfm check {data}). Make them with: "
                f"{generate_command(missing, events, data, seed, first_chunk)} "
                "(or pass {generate=True})", "generate")
        try:
            import fastjet  # noqa: F401
            import pythia8mc  # noqa: F401

            from hepfm.generate.run import generate_samples  # every rank: none waits in vain
        except ImportError as err:
            raise (missing_extra(err, "generating samples") or err) from None
        rank = distributed_rank()
        if rank != 0:
            from hepfm.generate.check import wait_for_samples

            if verbose:
                print(f"rank {rank}: waiting for rank 0 to generate {', '.join(missing)} "
                      f"into {data}", file=sys.stderr)
            wait_for_samples(data, missing, rank)
            return data

        if verbose:
            print(f"generating {events} events for {', '.join(missing)} into {data}",
                  file=sys.stderr)
        generate_samples(missing, events, data, seed, workers or os.cpu_count() or 1,
                         first_chunk=first_chunk)
    return data


#: Seed of the task samples that finetune/scan generate (their chunks start at
#: TASK_FIRST_CHUNK, so they never share events with pretraining samples).
TASK_SAMPLE_SEED = 1


def ensure_task_samples(processes: tuple[str, ...], data: str | Path | None, events: int,
                        generate: bool) -> Path:
    """The task sample directory (default: ``<default data dir>/tasks``); missing files are
    generated from the task seed stream, disjoint from pretraining samples."""
    if data is None:
        data = default_data_dir() / "tasks"
        generate = True
    return ensure_samples(processes, data, events, TASK_SAMPLE_SEED, generate,
                          first_chunk=TASK_FIRST_CHUNK)
