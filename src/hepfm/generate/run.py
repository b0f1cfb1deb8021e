"""``generate_samples``: chunks of events made by workers (local or Dask), written as parts.

Every (process, chunk) is an independent task with its own seeds (``chunk_seeds``), so files
do not depend on the number of workers, the executor or the shard that made them. Workers run
Pythia and the detector; the main process writes the chunks in order into part files
(:mod:`hepfm.generate.parts`), each renamed into place when complete. Parts already complete
with the same settings and checksum are kept, so a killed run loses at most the part it was
writing; several runs (hosts, array tasks) can share a directory without locks. When every part
of a sample is there, ``<process>.summary.json`` records it (:mod:`hepfm.generate.check`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import awkward as ak

from hepfm.errors import HepfmError
from hepfm.generate.check import write_summary
from hepfm.generate.detector import DETECTOR_VERSION, DetectorConfig
from hepfm.generate.executors import check_executor, results
from hepfm.generate.objects import ParticleTable
from hepfm.generate.parts import (
    PART_CHUNKS,
    Part,
    SamplePlan,
    conflict_error,
    foreign_files,
    judge,
    parse_shard,
    placement_diff,
    plan_sample,
    settings_diff,
    shard_parts,
    sweep_stale_temps,
)
from hepfm.generate.pythia import chunk_seeds, generate_events, pythia_settings
from hepfm.generate.reconstruct import reconstruct
from hepfm.generate.truth import truth_record
from hepfm.generate.writer import SampleWriter, read_metadata
from hepfm.processes import DEFAULT_SHOWER, check_shower, get_process, resolve_processes

log = logging.getLogger("hepfm.generate")


class GenerateArgumentError(HepfmError, ValueError):
    """An argument of ``generate_samples`` that cannot be used."""


class OutputDirError(HepfmError, OSError):
    """An output directory that cannot be created or written to."""


@dataclass(frozen=True)
class PartRef:
    """The part file a chunk goes into: a worker skips the chunk if another run made it."""

    path: str
    first_chunk: int
    n_events: int
    chunk_size: int
    skip_if_made: bool = True


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one process: everything a worker needs."""

    process: str
    chunk: int
    n_events: int
    seed: int
    mpi: bool
    detector: DetectorConfig
    part: PartRef | None = None
    shower: str = DEFAULT_SHOWER


@dataclass
class ChunkResult:
    """The Delphes collections of one chunk, the seconds spent per stage and the CPU seconds
    (empty collections and ``skipped`` when its part was already made by another run)."""

    task: ChunkTask
    collections: dict[str, ak.Array]
    timings: dict[str, float] = field(default_factory=dict)
    cpu: float = 0.0
    skipped: bool = False


def _part_done(task: ChunkTask) -> bool:
    """Whether the chunk's part file is already complete with the same settings and chunks."""
    ref = task.part
    if ref is None or not ref.skip_if_made:
        return False
    found = read_metadata(ref.path)
    if found is None:
        return False
    expected = file_metadata(task.process, ref.n_events, task.seed, task.mpi, ref.chunk_size,
                             task.detector, ref.first_chunk, shower=task.shower)
    return not settings_diff(found, expected) and not placement_diff(found, expected)


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Generate, reconstruct and make the truth record of one chunk (runs in a worker)."""
    if _part_done(task):
        return ChunkResult(task, {}, skipped=True)
    cpu = time.process_time()
    process = get_process(task.process)
    seeds = chunk_seeds(task.seed, process.label_id, task.chunk)
    t0 = time.perf_counter()
    prt = generate_events(process, task.n_events, seeds.pythia, task.mpi, task.shower)
    timings = {"pythia": time.perf_counter() - t0}
    t1 = time.perf_counter()
    table = ParticleTable.from_pythia(prt, task.detector)  # once: detector and truth use it
    timings["objects"] = time.perf_counter() - t1
    collections = reconstruct(table, task.detector, seeds.rng(), timings)
    t1 = time.perf_counter()
    collections["Truth"] = truth_record(table)
    timings["objects"] += time.perf_counter() - t1
    return ChunkResult(task, collections, timings, time.process_time() - cpu)


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def file_metadata(process: str, events: int, seed: int, mpi: bool, chunk_size: int,
                  detector: DetectorConfig, first_chunk: int = 0, *,
                  shower: str = DEFAULT_SHOWER) -> dict[str, Any]:
    """The metadata a sample file carries (and must match to be reused).

    ``first_chunk`` and ``n_chunks`` say which chunks of the (process, seed) stream the file
    holds: with ``seed``, ``chunk_size`` and the Pythia settings (MPI, shower) they identify
    its events exactly (:mod:`hepfm.provenance`). ``shower`` and ``detector_version`` are
    settings: a sample never mixes showers or detector versions.
    """
    from hepfm import __version__

    p = get_process(process)
    return {
        "process": p.name, "label_id": p.label_id, "n_events": events, "seed": seed,
        "mpi": mpi, "chunk_size": chunk_size, "first_chunk": first_chunk,
        "n_chunks": math.ceil(events / chunk_size),
        "shower": shower, "pythia_settings": pythia_settings(p, None, mpi, shower),
        "seed_scheme": "hepfm.generate.pythia.chunk_seeds(seed, label_id, chunk)",
        "detector_version": DETECTOR_VERSION, "detector": detector.to_dict(),
        "layout": "delphes",
        "hepfm_version": __version__, "pythia_version": _package_version("pythia8mc"),
        "fastjet_version": _package_version("fastjet"),
    }


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


def _validate(events: int, seed: int, workers: int, chunk_size: int, first_chunk: int,
              part_chunks: int) -> None:
    checks = [("events", events, 1), ("seed", seed, 0), ("workers", workers, 1),
              ("chunk_size", chunk_size, 1), ("first_chunk", first_chunk, 0),
              ("part_chunks", part_chunks, 1)]
    for name, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GenerateArgumentError(f"{name} must be an integer >= {low}, got {value!r}")


def generate_samples(processes: str | Iterable[str], events: int, out_dir: str | os.PathLike[str],
                     seed: int = 1, workers: int = 1, mpi: bool = True, chunk_size: int = 500,
                     detector: DetectorConfig | None = None, progress: bool = True,
                     first_chunk: int = 0, *, part_chunks: int = PART_CHUNKS,
                     shard: str | tuple[int, int] | None = None, executor: str = "local",
                     scheduler: str | None = None, force: bool = False,
                     shower: str = DEFAULT_SHOWER) -> list[Path]:
    """Generate `events` events of each process into part files in `out_dir`.

    `processes` is ``"all"``, ``"ttH,tt"`` or a list of names. A sample of at most
    `part_chunks` chunks is one file ``<process>.root``; a larger one is split into
    ``<process>_<first chunk>.root`` parts. Returns the paths of the parts this call is
    responsible for (all, or its `shard` ``"K/N"``), in process order; parts already complete
    with the same settings and checksum are kept, not remade. `first_chunk` offsets the chunk
    indices (and so the seeds): samples of the same `seed` with disjoint chunk ranges hold
    disjoint events. `executor` ``"dask"`` runs the chunks on the Dask cluster at `scheduler`
    (or a ``LocalCluster`` of `workers` processes). Files hepfm did not write, or wrote with
    other settings, are a :class:`~hepfm.generate.parts.SampleConflictError` unless `force`.
    `shower` is Pythia's parton shower (``simple``, ``vincia`` or ``dire``), a setting of the
    sample like the detector.
    """
    names = resolve_processes(processes)
    check_shower(shower)
    _validate(events, seed, workers, chunk_size, first_chunk, part_chunks)
    shard_kn = parse_shard(shard)
    check_executor(executor, scheduler)
    out = Path(out_dir)
    _check_output_dir(out)
    detector = detector or DetectorConfig()

    plans = [plan_sample(n, events, out, chunk_size, first_chunk, part_chunks) for n in names]
    plan_of = {p.path: plan for plan in plans for p in plan.parts}
    expected = {p.path: file_metadata(p.process, p.n_events, seed, mpi, chunk_size, detector,
                                      p.first_chunk, shower=shower)
                for plan in plans for p in plan.parts}
    mine = shard_parts(plans, shard_kn)
    todo, conflicts = _resolve_existing(plans, mine, expected, force)
    if conflicts:
        path, reason = conflicts[0]
        raise conflict_error(path, reason, len(conflicts) - 1)
    tasks = [ChunkTask(p.process, c, min(chunk_size, events - (c - first_chunk) * chunk_size),
                       seed, mpi, detector, PartRef(str(p.path), p.first_chunk, p.n_events,
                                                    chunk_size, not p.path.exists()),
                       shower)
             for p in todo for c in range(p.first_chunk, p.first_chunk + p.n_chunks)]
    if tasks:
        _write_parts(tasks, todo, {p.path: {**expected[p.path], "sample": plan_of[p.path].record()}
                                   for p in todo},
                     workers, executor, scheduler, progress)
    for plan in plans:
        _summarise(plan, expected)
    return [p.path for p in mine]


def _resolve_existing(plans: list[SamplePlan], mine: list[Part],
                      expected: dict[Path, dict[str, Any]], force: bool
                      ) -> tuple[list[Part], list[tuple[Path, str]]]:
    """The parts of `mine` to make, and the files hepfm must not touch (empty with `force`,
    which removes the process's files that are not parts of the sample)."""
    conflicts, todo = [], []
    for plan in plans:
        for f in foreign_files(plan):
            if force:
                log.warning("removing %s (not part of this sample; force)", f)
                f.unlink(missing_ok=True)
            else:
                conflicts.append((f, f"is another file of {plan.process}, not part of this "
                                     "sample (the reader would mix the two)"))
    for part in mine:
        sweep_stale_temps(part.path)
        verdict, reason = judge(part.path, expected[part.path])
        if verdict == "reuse":
            log.info("%s is complete (settings and checksum verified), kept", part.path)
            continue
        if verdict == "remake":
            log.warning("%s %s: made again", part.path, reason)
        elif verdict == "conflict" and force:
            log.warning("%s %s: replaced (force)", part.path, reason)
        elif verdict == "conflict":
            conflicts.append((part.path, reason))
        todo.append(part)
    return todo, conflicts


def _write_parts(tasks: list[ChunkTask], todo: list[Part], metadata: dict[Path, dict[str, Any]],
                 workers: int, executor: str, scheduler: str | None, progress: bool) -> None:
    """Run the chunk tasks and write each part as its chunks arrive (in order)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from hepfm.progress import progress_bar

    part_of = {p.path: p for p in todo}
    writers: dict[Path, SampleWriter] = {}
    skipped: set[Path] = set()
    stage = {"pythia": 0.0, "objects": 0.0, "jets": 0.0, "write": 0.0}
    cpu = dict.fromkeys(part_of, 0.0)
    wall = time.perf_counter()
    bar = progress_bar(sum(t.n_events for t in tasks), "generate", disable=not progress)
    try:
        with logging_redirect_tqdm():
            for result in results(run_chunk, tasks, workers, executor, scheduler):
                task = result.task
                path = Path(task.part.path)
                part = part_of[path]
                bar.update(task.n_events)
                if result.skipped or path in skipped:
                    if path not in skipped:
                        log.info("%s was made by another run meanwhile; not made again", path)
                        skipped.add(path)
                        if path in writers:
                            writers.pop(path).abort()
                    continue
                t0 = time.perf_counter()
                if path not in writers:
                    writers[path] = SampleWriter(path, metadata[path])
                writers[path].write(result.collections)
                if task.chunk == part.first_chunk + part.n_chunks - 1:
                    _close(writers.pop(path))
                    log.info("%s: %d events (chunks %d-%d), %.0f CPU-s, %.0f events per "
                             "core-hour", path.name, part.n_events, part.first_chunk,
                             task.chunk, cpu[path] + result.cpu,
                             3600 * part.n_events / max(cpu[path] + result.cpu, 1e-9))
                for key, value in result.timings.items():
                    stage[key] += value
                stage["write"] += time.perf_counter() - t0
                cpu[path] += result.cpu
                bar.set_postfix_str(part.process)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - wall
    n_done = sum(t.n_events for t in tasks)
    log.info("%d events in %.1f s wall with %d worker(s) (%s): %.0f ev/s", n_done, wall,
             min(workers, len(tasks)), executor, n_done / wall)
    total = sum(stage.values()) or 1.0
    log.info("time shares: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in stage.items()))


def _close(writer: SampleWriter) -> None:
    """Close a part; if its temporary vanished (swept as stale after a very long pause), say
    so: the part is missing and the next run makes it."""
    try:
        writer.close()
    except FileNotFoundError:
        log.warning("the temporary of %s was removed by another run; this part was not "
                    "written (run again to make it)", writer.path)


def _summarise(plan: SamplePlan, expected: dict[Path, dict[str, Any]]) -> None:
    """Write the summary of `plan`'s sample if all its parts are in place (made by this run or
    others); otherwise say how many are."""
    metas = []
    for part in plan.parts:
        meta = read_metadata(part.path)
        if meta is None or settings_diff(meta, expected[part.path]) \
                or placement_diff(meta, expected[part.path]):
            break
        metas.append(meta)
    if len(metas) == len(plan.parts):
        path = write_summary(plan, metas)
        log.info("%s: complete, %d events in %d part(s); summary %s", plan.process,
                 plan.events, len(plan.parts), path.name)
    else:
        present = sum(read_metadata(p.path) is not None for p in plan.parts)
        log.info("%s: %d of %d parts present (the run that makes the last one writes the "
                 "summary)", plan.process, present, len(plan.parts))
