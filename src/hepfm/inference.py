"""``hepfm predict``: a trained model's scores for every event of ROOT files, written back as
friend trees (or parquet files) with the same entries in the same order.

Each input file is read in chunks of `step_size` entries (never whole), each chunk turned
into graphs and scored, and the scores appended to the output tree. Events that the
selection leaves without objects are scored on their MET node alone; with
``on_invalid="drop"`` an event with a bad value (NaN, infinite, out of range) gets NaN scores,
so that the output still matches the input entry by entry. The output is written to
a temporary file and renamed into place when complete; an existing output is never replaced
unless ``force=True``. Its metadata (``hepfm_info``: a JSON string object in the ROOT file,
the schema metadata in parquet) names the model (its directory, ``model_identity``: name,
version and weights SHA-256, and ``base_model``: those of the pretrained model it was
fine-tuned from), the hepfm version, the input file and ``on_invalid``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import uproot

from hepfm import __version__
from hepfm.atomic import atomic_path
from hepfm.data.branches import DELPHES, BranchMap
from hepfm.data.btag import SET_BTAG, btag_mismatch
from hepfm.data.features import DEFAULT_SELECTION, Selection
from hepfm.data.reading import OnInvalid, check_on_invalid, iterate_tables, open_file
from hepfm.data.table import EventTable
from hepfm.data.variations import Variation
from hepfm.errors import HepfmError
from hepfm.hub import load_pretrained, resolve_model_dir
from hepfm.models.foundation import FoundationModel
from hepfm.progress import progress_bar
from hepfm.training.evaluate import predict

Format = Literal["root", "parquet"]
#: Name of the friend tree and of the metadata object in an output ROOT file.
TREE_NAME = "hepfm"
INFO_NAME = "hepfm_info"


def default_head(model: FoundationModel) -> str:
    """The head a run directory was trained for: the last added head, else multiclass."""
    extra = list(model.config.heads)
    return extra[-1] if extra else "multiclass"


def output_names(model: FoundationModel, head: str, prefix: str = "hepfm_score") -> list[str]:
    """One branch per output: ``hepfm_score`` for a one-logit head, else
    ``hepfm_score_<class>`` (process names for ``multiclass``, labels for ``multilabel``)."""
    n = model.heads[head].out.out_features
    if n == 1:
        return [prefix]
    names = {"multiclass": model.config.classes, "multilabel": model.config.labels}.get(
        head, tuple(str(i) for i in range(n)))
    return [f"{prefix}_{c}" for c in names]


def scores(model: FoundationModel, table: EventTable, head: str, batch_size: int = 4096
           ) -> np.ndarray:
    """Probabilities [B, n_outputs]: sigmoid for one logit or multilabel, else softmax."""
    logits = torch.from_numpy(predict(model, table, batch_size)[head])
    if logits.shape[-1] == 1 or head == "multilabel":
        return torch.sigmoid(logits).numpy()
    return torch.softmax(logits, -1).numpy()


def output_paths(files: Sequence[str], out_dir: str | os.PathLike, fmt: Format = "root",
                 suffix: str = "_hepfm") -> list[Path]:
    """``<out_dir>/<path relative to the inputs' common folder>/<stem><suffix>.<ext>``:
    one output per input, mirroring the input folders so that equal names never collide."""
    absolute = [os.path.abspath(f) for f in files]
    common = os.path.commonpath([os.path.dirname(a) for a in absolute])
    ext = "root" if fmt == "root" else "parquet"
    return [Path(out_dir) / Path(os.path.relpath(a, common)).parent /
            f"{Path(a).stem}{suffix}.{ext}" for a in absolute]


class _RootWriter:
    """A friend tree with one float32 branch per output, extended chunk by chunk."""

    def __init__(self, path: Path, names: list[str], info: dict[str, Any]):
        self.names = names
        self.file = uproot.recreate(path)
        self.file[INFO_NAME] = json.dumps(info)
        self.tree = self.file.mktree(TREE_NAME, {n: np.float32 for n in names},
                                     title="hepfm scores")

    def write(self, s: np.ndarray) -> None:
        self.tree.extend({n: s[:, k] for k, n in enumerate(self.names)})

    def close(self) -> None:
        self.file.close()


class _ParquetWriter:
    def __init__(self, path: Path, names: list[str], info: dict[str, Any]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.names = pa, names
        schema = pa.schema([(n, pa.float32()) for n in names],
                           metadata={INFO_NAME: json.dumps(info)})
        self.writer = pq.ParquetWriter(path, schema)

    def write(self, s: np.ndarray) -> None:
        self.writer.write_table(self.pa.table(
            {n: s[:, k] for k, n in enumerate(self.names)}, schema=self.writer.schema))

    def close(self) -> None:
        self.writer.close()


def predict_file(model: FoundationModel, path: str, out: Path, head: str, info: dict[str, Any],
                 branch_map: BranchMap = DELPHES, selection: Selection = DEFAULT_SELECTION,
                 fmt: Format = "root", step_size: int = 100_000, batch_size: int = 4096,
                 force: bool = False, on_chunk: Callable[[int], None] | None = None,
                 variation: Variation | None = None, on_invalid: OnInvalid = "error") -> int:
    """Score every entry of `path` into `out` chunk by chunk (the events shifted by
    `variation` as they are read, when given; events dropped by ``on_invalid="drop"``
    scored NaN); returns the number of entries."""
    n = open_file(path, branch_map, allow_empty=True).num_entries
    names = output_names(model, head)
    writer_cls = _RootWriter if fmt == "root" else _ParquetWriter
    written = 0
    with atomic_path(out, overwrite=force) as tmp:
        writer = writer_cls(tmp, names, {**info, "input": os.path.abspath(path),
                                         "entries": n, "branches": names})
        try:
            if n:
                for table in iterate_tables(path, branch_map, selection, step_size=step_size,
                                            variation=variation, on_invalid=on_invalid):
                    if not len(table):
                        continue
                    s = scores(model, table, head, batch_size).astype(np.float32)
                    assert table.entry is not None  # reading numbers every event
                    stop = int(table.entry[-1]) + 1
                    writer.write(_aligned(s, table.entry - written, stop - written))
                    if on_chunk is not None:
                        on_chunk(stop - written)
                    written = stop
                if written < n:  # dropped events at the end of the file
                    writer.write(_aligned(np.zeros((0, len(names)), np.float32),
                                          np.zeros(0, np.int64), n - written))
                    if on_chunk is not None:
                        on_chunk(n - written)
                    written = n
        finally:
            writer.close()
        if written != n:  # programming error: every entry is written, scored or NaN
            raise HepfmError(f"'{path}': scored {written} of {n} entries")
    return n


def _aligned(s: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """`n` rows of scores: `s` at `rows`, NaN in the rows of dropped events."""
    if len(rows) == n:
        return s
    out = np.full((n, s.shape[1]), np.nan, np.float32)
    out[rows] = s
    return out


def predict_files(model_dir: str | os.PathLike, files: Sequence[str], out_dir: str | os.PathLike,
                  head: str | None = None, branch_map: BranchMap = DELPHES,
                  selection: Selection = DEFAULT_SELECTION, fmt: Format = "root",
                  step_size: int = 100_000, batch_size: int = 4096, force: bool = False,
                  progress: bool = True, device: str = "cpu",
                  variation: Variation | None = None,
                  on_invalid: OnInvalid = "error") -> list[Path]:
    """Scores of the model in `model_dir` for every event of `files`, one output per file
    (see :func:`output_paths`), computed on the torch `device`; returns the output paths.
    With a `variation` (:mod:`hepfm.data.variations`) the events are shifted as they are
    read, the outputs are named ``<stem>_hepfm_<variation name>`` and their metadata
    records the variation. An event with a bad value is an error naming file, branch and
    entry, or with ``on_invalid="drop"`` gets NaN scores (one warning per file)."""
    check_on_invalid(on_invalid)
    model = load_pretrained(model_dir, device=device)
    head = head or default_head(model)
    if head not in model.heads:
        raise HepfmError(f"model '{model_dir}' has no head '{head}'; heads: "
                         f"{', '.join(model.heads)}")
    outs = output_paths(files, out_dir, fmt,
                        "_hepfm" if variation is None else f"_hepfm_{variation.name}")
    existing = [str(o) for o in outs if o.exists()]
    if existing and not force:
        found = f"output exists: '{existing[0]}' ({len(existing)} in all); pass"
        raise HepfmError(f"{found} force=True to replace, or choose another out_dir").for_cli(
            f"{found} --force to replace, or choose another --out")
    totals = [open_file(f, branch_map, allow_empty=True).num_entries for f in files]
    differs = btag_mismatch(((model.run_config or {}).get("inputs") or {}).get("btag"),
                            branch_map.btag)
    if differs:
        warnings.warn(f"model '{model_dir}': {differs} ({SET_BTAG})", stacklevel=2)
    info = {"model": str(resolve_model_dir(model_dir).resolve()), "head": head,
            "model_identity": model.identity,
            "base_model": (model.run_config or {}).get("base_model"),
            "hepfm_version": __version__, "task": (model.run_config or {}).get("task"),
            "tree": branch_map.tree, **branch_map.record(),
            "variation": None if variation is None else variation.to_dict(),
            "on_invalid": on_invalid}
    with progress_bar(sum(totals), "hepfm predict", unit_scale=True,
                      disable=not progress) as bar:
        for path, out in zip(files, outs, strict=True):
            bar.set_postfix_str(Path(path).name)
            try:
                predict_file(model, path, out, head, info, branch_map, selection, fmt,
                             step_size, batch_size, force, on_chunk=bar.update,
                             variation=variation, on_invalid=on_invalid)
            except FileExistsError:
                raise HepfmError(f"output '{out}' appeared while writing it (another job?); "
                                 "left it alone") from None
    return outs
