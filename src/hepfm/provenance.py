"""Which events a model was pretrained on, and the check that a task's events are others.

An event's identity does not depend on where its file lies:

- in a file written by ``hepfm generate``, event ``i`` of chunk ``k`` is the ``i``-th event
  Pythia makes from that chunk's seed (``chunk_seeds(seed, label_id, k)``) with the file's
  Pythia settings; the same seed and settings give the same event in any file, on any host,
  whatever the detector;
- in any other file (a user's Delphes file or ntuple), it is entry ``i`` of the file with
  that content (sha256).

:func:`describe_files` records the entry ranges a run read (``pretraining_events`` in a
pretrained model's ``config.yaml``); :func:`find_overlap` lists the events two such records
share; :func:`check_disjoint` refuses a task whose events were pretraining events.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hepfm.atomic import file_sha256
from hepfm.errors import HepfmError, naming

log = logging.getLogger(__name__)

#: Task samples that ``hepfm finetune``/``scan`` generate start at this chunk index, so they
#: never share a Pythia seed with pretraining samples of the same seed (which start at 0).
TASK_FIRST_CHUNK = 1_000_000


class DataLeakError(HepfmError, ValueError):
    """A task's events (from which test and validation are drawn) were pretraining events."""


def _settings_id(settings: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(settings).encode()).hexdigest()[:16]


def describe_file(path: str | os.PathLike[str], process: str, start: int, stop: int
                  ) -> dict[str, Any]:
    """The record of entries [start, stop) of one file: its event stream or content hash."""
    from hepfm.generate.writer import read_metadata

    record: dict[str, Any] = {"file": str(path), "process": process, "entries": [start, stop]}
    meta = read_metadata(path)
    keys = ("seed", "label_id", "chunk_size", "pythia_settings")
    if meta is not None and all(k in meta for k in keys):
        record["stream"] = {"seed": meta["seed"], "label_id": meta["label_id"],
                            "chunk_size": meta["chunk_size"],
                            "first_chunk": meta.get("first_chunk", 0),
                            "settings": _settings_id(meta["pythia_settings"])}
    else:
        record["sha256"] = file_sha256(path)
    return record


def describe_files(sources: Mapping[str, Sequence[str]], events_per_process: int | None
                   ) -> list[dict[str, Any]]:
    """Records of what reading the first `events_per_process` entries of each process's files
    (in order, as :func:`hepfm.data.load_events` does; all when None) touches."""
    import uproot

    from hepfm.generate.writer import TREE

    records = []
    for process, files in sources.items():
        left = math.inf if events_per_process is None else events_per_process
        for path in files:
            if left <= 0:
                break
            with uproot.open(path) as f:
                trees = [k.split(";")[0] for k, c in f.classnames().items() if c == "TTree"]
                n = f[TREE if TREE in trees else trees[0]].num_entries if trees else 0
            stop = int(min(n, left))
            if stop > 0:
                records.append(describe_file(path, process, 0, stop))
            left -= stop
    return records


def _intervals(record: Mapping[str, Any]) -> Iterable[tuple[Any, int, int]]:
    """(identity key, first, last + 1) intervals of events, one per Pythia chunk or file."""
    start, stop = record["entries"]
    stream = record.get("stream")
    if stream is None:
        yield ("sha256", record["sha256"]), start, stop
        return
    from hepfm.generate.pythia import chunk_seeds

    size = stream["chunk_size"]
    for k in range(start // size, (stop - 1) // size + 1):
        lo, hi = max(start, k * size) - k * size, min(stop, (k + 1) * size) - k * size
        seed = chunk_seeds(stream["seed"], stream["label_id"], stream["first_chunk"] + k).pythia
        yield ("pythia", stream["settings"], seed), lo, hi


def find_overlap(seen: Sequence[Mapping[str, Any]], candidates: Sequence[Mapping[str, Any]]
                 ) -> list[tuple[Mapping[str, Any], Mapping[str, Any], int]]:
    """(seen record, candidate record, number of shared events) for every overlapping pair."""
    index: dict[Any, list[tuple[int, int, int]]] = {}
    for i, rec in enumerate(seen):
        for key, lo, hi in _intervals(rec):
            index.setdefault(key, []).append((lo, hi, i))
    shared: dict[tuple[int, int], int] = {}
    for j, rec in enumerate(candidates):
        for key, lo, hi in _intervals(rec):
            for a, b, i in index.get(key, ()):
                n = min(hi, b) - max(lo, a)
                if n > 0:
                    shared[i, j] = shared.get((i, j), 0) + n
    return [(seen[i], candidates[j], n) for (i, j), n in sorted(shared.items())]


def describe_overlap(overlap: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], int]]
                     ) -> list[str]:
    """One line per overlapping pair: which entries of which file were pretraining events."""
    lines = []
    for old, new, n in overlap:
        a, b = new["entries"]
        c, d = old["entries"]
        lines.append(f"{n} events of {new['file']} (entries {a}-{b}) were pretraining events "
                     f"({old['file']}, entries {c}-{d})")
    return lines


def pretraining_events(config: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The ``pretraining_events`` record of a model's config.yaml (None when not recorded)."""
    if not config:
        return None
    return config.get("pretraining_events")


def check_disjoint(seen: Sequence[Mapping[str, Any]] | None,
                   candidates: Sequence[Mapping[str, Any]], model: str,
                   allow_overlap: bool = False) -> list[str]:
    """Refuse `candidates` (the task's events) that share events with `seen` (pretraining).

    Returns the overlap lines (empty when disjoint; with `allow_overlap` the overlap is
    returned, and logged, instead of raised). A model without a record gives a warning.
    """
    if seen is None:
        log.warning("model %s records no pretraining events: cannot check that the task's "
                    "test events were not seen in pretraining", model)
        return []
    lines = describe_overlap(find_overlap(seen, candidates))
    if lines and not allow_overlap:
        more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
        raise naming(
            DataLeakError, f"the task's events (test and validation are drawn from them) "
            f"include events that {model} was pretrained on: " + "; ".join(lines[:3]) + more
            + ". Use task samples made with another seed stream, e.g. 'hepfm generate ... "
            f"--first-chunk {TASK_FIRST_CHUNK}' into another --out (hepfm finetune/scan do "
            "this when they generate), or pass {allow_overlap=True} to go on and have the "
            "overlap written into the results", "allow_overlap")
    for line in lines:
        log.warning("overlap with pretraining: %s", line)
    return lines
