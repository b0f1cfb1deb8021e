"""Events read from ROOT files with 0/1 labels, optional weights and their identity.

Every event keeps its identity: the file it was read from (path and SHA-256 of the file's
content) and its entry number there. Files are named by comma-separated paths, globs and
directories (:func:`expand_files`); branch names by a branch map (:func:`load_branch_map`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepfm.data.branches import BRANCH_MAPS, BranchMap
from hepfm.data.features import DEFAULT_SELECTION, Selection
from hepfm.data.reading import OnInvalid, open_file, read_table
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.errors import HepfmError, InputDataError, naming

#: Process names of the classes of a user task (``EventTable.processes``; process == y).
CLASSES = ("background", "signal")


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def split_list(spec: str | Sequence[str] | None) -> list[str]:
    """``'a.root,b/*.root'`` (or a list of such strings) -> its non-empty items."""
    if spec is None:
        return []
    parts = [spec] if isinstance(spec, str) else list(spec)
    return [s.strip() for p in parts for s in str(p).split(",") if s.strip()]


def expand_files(spec: str | Sequence[str], setting: str = "files") -> list[str]:
    """ROOT files named by comma-separated paths, globs (``**`` too) and directories
    (their ``*.root`` files), in order, each once; a clear error for anything missing,
    naming the argument `setting` (its option ``--setting`` on the command line)."""
    out: list[str] = []
    items = split_list(spec)
    if not items:
        raise naming(InputDataError, "{setting}: no files given", setting)
    for item in items:
        path = os.path.expanduser(item)
        if glob.has_magic(path):
            found = [f for f in glob.glob(path, recursive=True) if os.path.isfile(f)]
            if not found:
                raise naming(InputDataError, f"{{setting}}: '{item}' matches no file", setting)
        elif os.path.isdir(path):
            found = [str(f) for f in Path(path).glob("*.root")]
            if not found:
                raise naming(InputDataError, f"{{setting}}: directory '{item}' has no .root "
                             "files", setting)
        elif os.path.isfile(path):
            found = [path]
        else:
            raise naming(InputDataError, f"{{setting}}: no such file '{item}'", setting)
        out += sorted(found, key=_natural_key)
    return list(dict.fromkeys(out))


def load_branch_map(spec: str | BranchMap | None, btag: str | None = None) -> BranchMap:
    """A built-in map by name (:data:`~hepfm.data.branches.BRANCH_MAPS`) or a YAML file
    (:meth:`~hepfm.data.branches.BranchMap.from_dict`), with the b-tag working point `btag`
    when given (:meth:`~hepfm.data.btag.BTagRule.choose`)."""
    if spec is None:
        spec = BRANCH_MAPS["delphes"]
    if isinstance(spec, BranchMap):
        return spec.with_btag(btag)
    if spec in BRANCH_MAPS:
        return BRANCH_MAPS[spec].with_btag(btag)
    if not os.path.isfile(spec):
        raise naming(InputDataError, f"{{branch_map}}: '{spec}' is neither "
                     f"{', '.join(BRANCH_MAPS)} nor a YAML file", "branch_map")
    try:
        d = yaml.safe_load(Path(spec).read_text())
        bm = BranchMap.from_dict({"name": Path(spec).stem, **d})
    except (yaml.YAMLError, KeyError, AttributeError, TypeError, ValueError) as err:
        detail = str(err) if isinstance(err, HepfmError) else f"{type(err).__name__}: {err}"
        raise naming(InputDataError, f"{{branch_map}}: '{spec}' is not a branch map (YAML "
                     f"with 'tree' and 'branches'; {detail})", "branch_map") from None
    return bm.with_btag(btag)


@dataclass
class SourceFile:
    """An input file: its path, entry count and (computed once, on demand) content hash."""

    path: str
    n_entries: int
    _sha256: str | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes: the file's identity wherever it is copied."""
        if self._sha256 is None:
            h = hashlib.sha256()
            with open(self.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            self._sha256 = h.hexdigest()
        return self._sha256


@dataclass
class LabelledEvents:
    """Events with 0/1 labels, optional weights, and each event's file and entry number."""

    table: EventTable
    file_index: np.ndarray  # int32 [B]: index into `files`
    entry: np.ndarray  # int64 [B]: entry number in that file
    files: list[SourceFile]
    weight: np.ndarray | None = None  # float64 [B]

    def __len__(self) -> int:
        return len(self.table)

    @property
    def y(self) -> np.ndarray:
        """The 0/1 label of every event (``table.y``)."""
        return self.table.y

    def subset(self, idx: np.ndarray) -> LabelledEvents:
        """Events `idx`, in that order."""
        return LabelledEvents(self.table.subset(idx), self.file_index[idx], self.entry[idx],
                              self.files, None if self.weight is None else self.weight[idx])

    def identities(self) -> set[tuple[str, int]]:
        """``(file content SHA-256, entry)`` of every event."""
        shas = np.array([f.sha256 for f in self.files])
        return set(zip(shas[self.file_index].tolist(), self.entry.tolist(), strict=True))

    def provenance(self) -> list[dict[str, Any]]:
        """Per file: path, SHA-256, entries in the file and the [start, stop) ranges used."""
        out = []
        for k, f in enumerate(self.files):
            e = np.sort(self.entry[self.file_index == k])
            if not len(e):
                continue
            cut = np.flatnonzero(np.diff(e) != 1) + 1
            ranges = [[int(r[0]), int(r[-1]) + 1] for r in np.split(e, cut)]
            out.append({"path": os.path.abspath(f.path), "sha256": f.sha256,
                        "n_entries": f.n_entries, "entries": ranges})
        return out

    @staticmethod
    def concat(parts: Sequence[LabelledEvents]) -> LabelledEvents:
        """Events of all `parts`, one after another (weights: all or none)."""
        files: list[SourceFile] = []
        index = []
        for p in parts:
            index.append(np.asarray(p.file_index) + len(files))
            files += p.files
        has_w = [p.weight is not None for p in parts]
        if any(has_w) and not all(has_w):
            msg = "cannot concatenate weighted and unweighted events"
            raise ValueError(msg)  # programming error: one weight branch reads all parts
        return LabelledEvents(
            EventTable.concat([p.table for p in parts]), np.concatenate(index).astype(np.int32),
            np.concatenate([p.entry for p in parts]), files,
            np.concatenate([p.weight for p in parts]) if all(has_w) else None)


def _branch(info: Any, name: str, setting: str) -> np.ndarray:
    """A flat numeric branch of the file's tree, read whole, with a clear error if absent
    (naming the `setting` that asked for it)."""
    keys = info.tree.keys(recursive=True)
    if name not in keys:
        raise naming(InputDataError, f"'{info.path}', tree '{info.tree.name}': no branch "
                     f"'{name}' ({{setting}}). Branches: {', '.join(sorted(keys)[:40])}",
                     setting)
    arr = info.tree[name].array(library="np")
    if arr.dtype == object or arr.ndim != 1 or arr.dtype.kind not in "biuf":
        raise naming(InputDataError, f"'{info.path}', branch '{name}' ({{setting}}) must hold "
                     f"one number per event, got {arr.dtype}", setting)
    return arr


def read_labelled(files: Sequence[str], branch_map: BranchMap, label: int | None = None,
                  label_branch: str | None = None, weight_branch: str | None = None,
                  selection: Selection = DEFAULT_SELECTION,
                  max_events: int | None = None, process: str | None = None,
                  variation: Variation | None = None,
                  on_invalid: OnInvalid = "error") -> LabelledEvents:
    """All events of `files` (those of the first `max_events` entries, in order, when given)
    with label `label`, or per event from `label_branch` (0/1). The table's process is
    `process` when named, else its class (:data:`CLASSES`); `variation` shifts the events as
    they are read (:mod:`hepfm.data.variations`); `on_invalid` (``"error"`` or ``"drop"``)
    says what happens to events with bad values (:func:`~hepfm.data.reading.iterate_tables`)."""
    if (label is None) == (label_branch is None):
        msg = "give exactly one of label and label_branch"
        raise ValueError(msg)  # programming error: callers choose one, not user input
    parts = []
    left = max_events
    for path in files:
        if left is not None and left <= 0:
            break
        info = open_file(path, branch_map)
        table = read_table(path, branch_map, selection, max_events=left,
                           processes=CLASSES if process is None else (process,),
                           variation=variation, on_invalid=on_invalid)
        n = len(table)
        entry = np.arange(n, dtype=np.int64) if table.entry is None else table.entry
        if left is not None:
            left -= min(info.num_entries, left)
        if label_branch is not None:
            raw = _branch(info, label_branch, "label_branch")[entry]
            bad = ~np.isin(raw, (0, 1))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise naming(InputDataError, f"'{path}', branch '{label_branch}' ({{setting}}) "
                             f"must be 0 (background) or 1 (signal); entry {entry[k]} is "
                             f"{raw[k]!r}", "label_branch")
            y = raw.astype(np.int64)
        else:
            y = np.full(n, label, np.int64)
        w = None
        if weight_branch is not None:
            w = _branch(info, weight_branch, "weight_branch")[entry].astype(np.float64)
            if not np.all(np.isfinite(w)):
                k = int(np.flatnonzero(~np.isfinite(w))[0])
                raise naming(InputDataError, f"'{path}', branch '{weight_branch}' ({{setting}}): "
                             f"entry {entry[k]} is {w[k]}", "weight_branch")
        table = table.with_labels(y)
        if process is None:
            table.process = y.astype(np.int16)
        parts.append(LabelledEvents(table, np.zeros(n, np.int32), entry.copy(),
                                    [SourceFile(path, info.num_entries)], w))
    return LabelledEvents.concat(parts)
