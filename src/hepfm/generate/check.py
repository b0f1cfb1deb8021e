"""Run summaries and the consistency check of a sample directory (``hepfm check DIR``).

Each finished sample gets ``<process>.summary.json``: events, chunks, seeds, settings and the
``events_sha256`` of every part. :func:`check_process` verifies a process's files against it
(or, without one, against the sample each part says it belongs to): same settings everywhere,
every chunk of the sample present exactly once, event counts, and each part's checksum.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepfm.atomic import write_text
from hepfm.errors import HepfmError, InputDataError
from hepfm.generate.parts import PLACEMENT_KEYS, SamplePlan, read_any_metadata
from hepfm.generate.writer import verify_events

log = logging.getLogger("hepfm.generate")

SUMMARY_SUFFIX = ".summary.json"
#: More chunks than this in one sample is taken for corrupt metadata (7 million per process
#: is the most :func:`hepfm.generate.pythia.chunk_seeds` allows).
MAX_CHUNKS = 10_000_000
SUMMARY_KEYS = {"settings", "first_chunk", "n_chunks", "n_events", "parts"}
#: Seconds between two looks at the directory while waiting for rank 0.
POLL_SECONDS = 5.0


class SampleWaitError(HepfmError, TimeoutError):
    """A rank waited too long for rank 0 to generate the samples."""


def summary_path(out: Path, process: str) -> Path:
    """Where the run summary of `process`'s sample in `out` lives."""
    return out / f"{process}{SUMMARY_SUFFIX}"


def settings_of(meta: dict[str, Any]) -> dict[str, Any]:
    """A part's settings: its metadata without the keys that place it in the sample."""
    return {k: v for k, v in meta.items() if k not in PLACEMENT_KEYS}


def write_summary(plan: SamplePlan, metas: Sequence[dict[str, Any]]) -> Path:
    """Write ``<process>.summary.json`` for a complete sample (`metas`: each part's metadata)."""
    from hepfm.generate.pythia import chunk_seeds

    first = metas[0]
    parts = []
    for part, meta in zip(plan.parts, metas, strict=True):
        seeds = [chunk_seeds(first["seed"], first["label_id"], k).pythia
                 for k in range(part.first_chunk, part.first_chunk + part.n_chunks)]
        parts.append({"file": part.path.name, "first_chunk": part.first_chunk,
                      "n_chunks": part.n_chunks, "n_events": meta["n_events_written"],
                      "events_sha256": meta.get("events_sha256"), "pythia_seeds": seeds})
    summary = {"process": plan.process, "n_events": plan.events, "seed": first["seed"],
               "chunk_size": plan.chunk_size, "first_chunk": plan.first_chunk,
               "n_chunks": plan.n_chunks, "part_chunks": plan.part_chunks,
               "n_parts": len(parts), "settings": settings_of(first), "parts": parts}
    path = summary_path(plan.parts[0].path.parent, plan.process)
    write_text(path, json.dumps(summary, indent=1, sort_keys=False) + "\n")
    return path


def _ranges(chunks: Iterable[int]) -> str:
    """``[2, 3, 4, 9]`` as ``"2-4, 9"``."""
    out: list[str] = []
    values = sorted(chunks)
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(out[:8]) + (f", ... ({len(out) - 8} more ranges)" if len(out) > 8 else "")


@dataclass
class ProcessReport:
    """The check of one process's files: counts, problems (the check fails) and notes;
    `incomplete` when there is no file or chunks of the sample are missing."""

    process: str
    files: list[str] = field(default_factory=list)
    events: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_summary(summary: Any) -> bool:
    return (isinstance(summary, dict) and set(summary) >= SUMMARY_KEYS
            and all(isinstance(summary[k], int) and summary[k] >= 0
                    for k in ("first_chunk", "n_chunks", "n_events"))
            and isinstance(summary["settings"], dict) and isinstance(summary["parts"], list)
            and all(isinstance(p, dict) for p in summary["parts"]))


def _placement(meta: dict[str, Any]) -> tuple[int, int]:
    """(first chunk, number of chunks) of a file; files from before first_chunk hold 0..n."""
    n = meta.get("n_chunks")
    if n is None:
        n = -(-int(meta.get("n_events", 0)) // max(1, int(meta.get("chunk_size", 1))))
    return int(meta.get("first_chunk", 0)), int(n)


def check_process(directory: str | os.PathLike[str], process: str,
                  checksums: bool = True) -> ProcessReport:
    """Check the files of `process` in `directory` (see the module docstring)."""
    from hepfm.data.datasets import process_of_file

    d = Path(directory)
    report = ProcessReport(process)
    files = sorted(f for f in d.glob("*.root") if process_of_file(f) == process)
    report.files = [f.name for f in files]
    summary_file = summary_path(d, process)
    summary = _read_summary(summary_file, report)
    temps = [t for t in d.glob(f".{process}*.root.*.tmp")
             if process_of_file(t.name[1:].split(".root.")[0] + ".root") == process]
    if temps:
        report.notes.append(f"{len(temps)} temporary file(s) of a running or killed run "
                            f"(deleted by the next run when 6 hours old): {temps[0].name}")
    if not files:
        report.problems.append(f"no file for {process}")
        report.incomplete = True
        return report
    metas, placed = _read_parts(files, report)
    if not metas:
        if not report.problems:
            report.notes.append(f"{len(files)} file(s) without hepfm metadata, not checked")
        return report
    if len(metas) < len(files):
        others = [f.name for f in files if f not in metas]
        report.problems.append(f"hepfm parts mixed with other files: {', '.join(others)}")
    _check_settings(process, metas, summary, report)
    for f, (a, _) in placed.items():  # which chunks each file holds
        if len(files) > 1 and f.name != f"{process}_{a}.root":
            report.problems.append(f"{f.name} holds chunks from {a} (its name should be "
                                   f"{process}_{a}.root)")
    first, n_chunks, events = _sample_range(metas, placed, summary, report)
    if summary is None and len(metas) > 1:
        report.notes.append(f"no {summary_file.name} (checked against the parts' own record)")
    if not _check_chunks(metas, placed, first, n_chunks, events, report):
        return report
    if summary:
        _check_listing(summary, summary_file.name, metas, report)
    if checksums:
        _check_checksums(metas, report)
    return report


def _read_summary(summary_file: Path, report: ProcessReport) -> dict[str, Any] | None:
    """The run summary, or None (absent, or unreadable: a problem of `report`)."""
    if not summary_file.exists():
        return None
    try:
        summary = json.loads(summary_file.read_text())
        if not _is_summary(summary):
            raise InputDataError("not a hepfm run summary")
    except (OSError, ValueError) as err:
        report.problems.append(f"{summary_file.name} cannot be read: {err}")
        return None
    return summary


def _read_parts(files: list[Path], report: ProcessReport
                ) -> tuple[dict[Path, dict[str, Any]], dict[Path, tuple[int, int]]]:
    """The hepfm metadata of each part and its (first chunk, number of chunks)."""
    metas: dict[Path, dict[str, Any]] = {}
    placed: dict[Path, tuple[int, int]] = {}
    for f in files:
        meta, problem = read_any_metadata(f)
        if meta is None:
            continue
        try:
            placed[f] = _placement(meta)
        except (TypeError, ValueError):
            report.problems.append(f"{f.name} has unreadable hepfm metadata")
            continue
        metas[f] = meta
        if problem:
            report.problems.append(f"{f.name} {problem}")
    return metas, placed


def _check_settings(process: str, metas: dict[Path, dict[str, Any]],
                    summary: dict[str, Any] | None, report: ProcessReport) -> None:
    """Every part holds `process` and has the sample's settings."""
    for f, meta in metas.items():
        if meta.get("process") != process:
            report.problems.append(f"{f.name} holds events of {meta.get('process')}, "
                                   f"not {process}")
    reference = summary["settings"] if summary else settings_of(next(iter(metas.values())))
    for f, meta in metas.items():
        diff = [k for k in sorted(set(reference) | set(settings_of(meta)))
                if k != "sample" and meta.get(k) != reference.get(k)]
        if diff:
            report.problems.append(f"{f.name} has other settings than the sample: "
                                   f"{', '.join(diff[:4])}")


def _sample_range(metas: dict[Path, dict[str, Any]], placed: dict[Path, tuple[int, int]],
                  summary: dict[str, Any] | None, report: ProcessReport
                  ) -> tuple[int, int, int | None]:
    """(first chunk, number of chunks, events) the sample should hold: from the summary,
    else the sample record the parts share, else the chunks the parts hold."""
    records = {json.dumps(m.get("sample"), sort_keys=True) for m in metas.values()}
    if summary:
        return summary["first_chunk"], summary["n_chunks"], summary["n_events"]
    if len(records) == 1 and next(iter(metas.values())).get("sample"):
        rec = next(iter(metas.values()))["sample"]
        return rec["first_chunk"], rec["n_chunks"], rec["n_events"]
    if len(records) > 1:
        report.problems.append("the parts belong to different samples (no summary to "
                               "say which one is meant)")
    first = min(a for a, _ in placed.values())
    return first, max(a + n for a, n in placed.values()) - first, None


def _check_chunks(metas: dict[Path, dict[str, Any]], placed: dict[Path, tuple[int, int]],
                  first: int, n_chunks: int, events: int | None, report: ProcessReport) -> bool:
    """Every chunk of the sample present exactly once, none outside it, and the event count;
    False when the metadata's chunk range is implausible (nothing more to check)."""
    lo = min([first] + [a for a, _ in placed.values()])
    hi = max([first + n_chunks] + [a + n for a, n in placed.values()])
    if hi - lo > MAX_CHUNKS:
        report.problems.append(f"implausible chunk range {lo}-{hi - 1} in the metadata")
        return False
    count = np.zeros(hi - lo, np.int64)
    for a, n in placed.values():
        count[a - lo:a - lo + n] += 1
    inside = np.zeros(hi - lo, bool)
    inside[first - lo:first - lo + n_chunks] = True
    dup = np.flatnonzero(count > 1) + lo
    if len(dup):
        holders = [f.name for f, (a, n) in placed.items() if any(a <= c < a + n for c in dup)]
        report.problems.append(f"duplicated chunk(s) {_ranges(dup)}: in {', '.join(holders)}")
    missing = np.flatnonzero(inside & (count == 0)) + lo
    if len(missing):
        report.incomplete = True
        report.problems.append(f"missing chunk(s) {_ranges(missing)} of chunks {first}-"
                               f"{first + n_chunks - 1}")
    extra = np.flatnonzero(~inside & (count > 0)) + lo
    if len(extra):
        report.problems.append(f"chunk(s) {_ranges(extra)} are outside the sample (chunks "
                               f"{first}-{first + n_chunks - 1})")
    report.events = sum(int(m.get("n_events_written", 0)) for m in metas.values())
    report.chunks = int(np.sum(count > 0))
    if events is not None and report.events != events and not (len(dup) or len(missing)):
        report.problems.append(f"{report.events} events in the files, the sample has {events}")
    return True


def _check_listing(summary: dict[str, Any], name: str, metas: dict[Path, dict[str, Any]],
                   report: ProcessReport) -> None:
    """The parts are the files the summary lists, with their events_sha256."""
    listed = {str(p.get("file")): p for p in summary["parts"]}
    for f, meta in metas.items():
        entry = listed.pop(f.name, None)
        if entry is None:
            report.problems.append(f"{f.name} is not listed in {name}")
        elif entry.get("events_sha256") != meta.get("events_sha256"):
            report.problems.append(f"{f.name} is not the file {name} lists "
                                   "(other events_sha256)")
    if listed:
        report.problems.append(f"{name} lists missing file(s) {', '.join(sorted(listed))}")


def _check_checksums(metas: dict[Path, dict[str, Any]], report: ProcessReport) -> None:
    """Each part's events against its events_sha256."""
    for f, meta in metas.items():
        if not verify_events(f, meta):
            report.problems.append(f"{f.name}: its events do not match its events_sha256"
                                   if meta.get("events_sha256") else
                                   f"{f.name}: records no events_sha256 checksum")


def check_directory(directory: str | os.PathLike[str], processes: Sequence[str] | None = None,
                    checksums: bool = True) -> list[ProcessReport]:
    """:func:`check_process` for `processes` (default: every process with files there)."""
    from hepfm.data.datasets import process_of_file

    d = Path(directory).expanduser()
    if not d.is_dir():
        raise HepfmError(f"'{d}' is not a directory")
    if processes is None:
        found = {process_of_file(f) for f in d.glob("*.root")}
        found |= {f.name[:-len(SUMMARY_SUFFIX)] for f in d.glob(f"*{SUMMARY_SUFFIX}")}
        if not found:
            raise HepfmError(f"no .root files in '{d}'")
        processes = sorted(found)
    return [check_process(d, p, checksums) for p in processes]


def incomplete_samples(directory: Path, processes: Iterable[str]) -> list[str]:
    """The processes without files in `directory`, or whose hepfm sample there misses chunks
    (a run still going, or killed). Reads metadata only: cheap enough to poll. Other
    inconsistencies (files combined by hand) are for ``hepfm check``, not a reason to wait."""
    return [p for p in processes if check_process(directory, p, checksums=False).incomplete]


def wait_for_samples(directory: Path, processes: Sequence[str], rank: int,
                     timeout: float | None = None, poll: float | None = None) -> None:
    """Block until every process has a complete sample in `directory` (made by rank 0).

    `timeout` (default ``$HEPFM_SAMPLE_WAIT`` or 3600 s) counts from the last change in the
    directory, so a long generation that keeps writing parts is waited for.
    """
    if timeout is None:
        timeout = float(os.environ.get("HEPFM_SAMPLE_WAIT", 3600))
    last_state, last_change = None, time.monotonic()
    while True:
        waiting = incomplete_samples(directory, processes)
        if not waiting:
            return
        try:
            state = sorted((f.name, f.stat().st_size) for f in directory.iterdir())
        except OSError:
            state = None
        if state != last_state:
            last_state, last_change = state, time.monotonic()
        elif time.monotonic() - last_change > timeout:
            raise SampleWaitError(
                f"rank {rank}: no complete sample of {', '.join(waiting)} in '{directory}' "
                f"after {timeout:.0f} s without progress (rank 0 generates them; did it fail? "
                "Generate first with hepfm generate, or raise HEPFM_SAMPLE_WAIT)")
        time.sleep(POLL_SECONDS if poll is None else poll)
