"""``generate_samples``: chunks of events made in parallel workers and written per process.

Every (process, chunk) is an independent task with its own seeds (``chunk_seeds``), so files
do not depend on the number of workers. Workers run Pythia and the detector; the main process
writes the chunks in order, one file per process, atomically. A file that is already complete
with the same metadata is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import awkward as ak

from hepfm.errors import HepfmError
from hepfm.generate.detector import DetectorConfig, reconstruct
from hepfm.generate.objects import ParticleTable
from hepfm.generate.pythia import chunk_seeds, generate_events, pythia_settings
from hepfm.generate.truth import truth_record
from hepfm.generate.writer import SampleWriter, read_metadata
from hepfm.processes import get_process, resolve_processes

log = logging.getLogger("hepfm.generate")


class GenerateArgumentError(HepfmError, ValueError):
    """An argument of ``generate_samples`` that cannot be used."""


class OutputDirError(HepfmError, OSError):
    """An output directory that cannot be created or written to."""


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one process: everything a worker needs."""

    process: str
    chunk: int
    n_events: int
    seed: int
    mpi: bool
    detector: DetectorConfig


@dataclass
class ChunkResult:
    """The Delphes collections of one chunk and the seconds spent per stage."""

    task: ChunkTask
    collections: dict[str, ak.Array]
    timings: dict[str, float] = field(default_factory=dict)


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Generate, reconstruct and make the truth record of one chunk (runs in a worker)."""
    process = get_process(task.process)
    seeds = chunk_seeds(task.seed, process.label_id, task.chunk)
    t0 = time.perf_counter()
    prt = generate_events(process, task.n_events, seeds.pythia, task.mpi)
    timings = {"pythia": time.perf_counter() - t0}
    collections = reconstruct(prt, task.detector, seeds.rng(), timings)
    t1 = time.perf_counter()
    collections["Truth"] = truth_record(ParticleTable.from_pythia(prt, task.detector))
    timings["objects"] += time.perf_counter() - t1
    return ChunkResult(task, collections, timings)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def file_metadata(process: str, events: int, seed: int, mpi: bool, chunk_size: int,
                  detector: DetectorConfig, first_chunk: int = 0) -> dict[str, Any]:
    """The metadata a sample file carries (and must match to be reused).

    ``first_chunk`` and ``n_chunks`` say which chunks of the (process, seed) stream the file
    holds: with ``seed``, ``chunk_size`` and ``mpi`` they identify its events exactly
    (:mod:`hepfm.provenance`).
    """
    from hepfm import __version__

    p = get_process(process)
    return {
        "process": p.name, "label_id": p.label_id, "n_events": events, "seed": seed,
        "mpi": mpi, "chunk_size": chunk_size, "first_chunk": first_chunk,
        "n_chunks": math.ceil(events / chunk_size),
        "pythia_settings": pythia_settings(p, None, mpi),
        "seed_scheme": "hepfm.generate.pythia.chunk_seeds(seed, label_id, chunk)",
        "detector": detector.to_dict(), "layout": "delphes",
        "hepfm_version": __version__, "pythia_version": _package_version("pythia8mc"),
        "fastjet_version": _package_version("fastjet"),
    }


def _is_reusable(path: Path, expected: dict[str, Any]) -> bool:
    found = read_metadata(path)
    return found is not None and all(found.get(k) == v for k, v in expected.items())


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files of `path` left by runs that no longer exist."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
            log.info("removed leftover temporary file %s", tmp)
        except PermissionError:
            pass


def _check_output_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputDirError(f"cannot create output directory '{out}': {err}") from None
    probe = out / f".hepfm-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputDirError(f"output directory '{out}' is not writable: {err}") from None


def _validate(events: int, seed: int, workers: int, chunk_size: int) -> None:
    checks = [("events", events, 1), ("seed", seed, 0), ("workers", workers, 1),
              ("chunk_size", chunk_size, 1)]
    for name, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GenerateArgumentError(f"{name} must be an integer >= {low}, got {value!r}")


def _results(tasks: list[ChunkTask], workers: int) -> Iterator[ChunkResult]:
    """Chunk results in task order, from a spawn-safe pool when workers > 1."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(run_chunk, tasks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(run_chunk, tasks)


def generate_samples(processes: str | Iterable[str], events: int, out_dir: str | os.PathLike[str],
                     seed: int = 1, workers: int = 1, mpi: bool = True, chunk_size: int = 500,
                     detector: DetectorConfig | None = None, progress: bool = True,
                     first_chunk: int = 0) -> list[Path]:
    """Generate `events` events of each process into ``out_dir/<process>.root``.

    `processes` is ``"all"``, ``"ttH,tt"`` or a list of names. Returns the file paths in
    process order (files already complete with the same metadata are kept, not remade).
    `first_chunk` offsets the chunk indices (and so the seeds): samples of the same `seed`
    with disjoint chunk ranges hold disjoint events.
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    names = resolve_processes(processes)
    _validate(events, seed, workers, chunk_size)
    if isinstance(first_chunk, bool) or not isinstance(first_chunk, int) or first_chunk < 0:
        raise GenerateArgumentError(f"first_chunk must be an integer >= 0, got {first_chunk!r}")
    out = Path(out_dir)
    _check_output_dir(out)
    detector = detector or DetectorConfig()

    paths, todo, tasks = [], {}, []
    for name in names:
        path = out / f"{name}.root"
        paths.append(path)
        meta = file_metadata(name, events, seed, mpi, chunk_size, detector, first_chunk)
        if _is_reusable(path, meta):
            log.info("%s: %s is complete, skipped", name, path)
            continue
        _remove_stale_temps(path)
        n_chunks = math.ceil(events / chunk_size)
        todo[name] = (path, meta, n_chunks)
        tasks += [ChunkTask(name, first_chunk + k, min(chunk_size, events - k * chunk_size),
                            seed, mpi, detector) for k in range(n_chunks)]
    if not tasks:
        return paths

    writers: dict[str, SampleWriter] = {}
    stage = {"pythia": 0.0, "objects": 0.0, "jets": 0.0, "write": 0.0}
    busy = dict.fromkeys(todo, 0.0)
    wall = time.perf_counter()
    bar = tqdm(total=sum(t.n_events for t in tasks), unit="ev",
               disable=not progress, desc="generate")
    try:
        with logging_redirect_tqdm(loggers=[log]):
            for result in _results(tasks, workers):
                name, task = result.task.process, result.task
                path, meta, n_chunks = todo[name]
                t0 = time.perf_counter()
                if name not in writers:
                    writers[name] = SampleWriter(path, meta)
                writers[name].write(result.collections)
                last = task.chunk == first_chunk + n_chunks - 1
                if last:
                    writers.pop(name).close()
                for key, value in result.timings.items():
                    stage[key] += value
                stage["write"] += time.perf_counter() - t0
                busy[name] += sum(result.timings.values()) + time.perf_counter() - t0
                if last:
                    log.info("%s: %d events, %.1f s of worker time (%.0f ev/s per core) -> %s",
                             name, events, busy[name], events / busy[name], path)
                bar.set_postfix_str(name)
                bar.update(task.n_events)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - wall
    n_done = sum(t.n_events for t in tasks)
    log.info("%d events in %.1f s wall with %d worker(s): %.0f ev/s", n_done, wall,
             min(workers, len(tasks)), n_done / wall)
    total = sum(stage.values()) or 1.0
    log.info("time shares: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in stage.items()))
    return paths
