"""ONNX export of a trained model, and the inputs it takes.

The exported graph takes one batch of events as five arrays, any numbers of events, nodes
and edges (see :func:`onnx_inputs`, which makes them from an :class:`EventTable`):

- ``x`` float32 [nodes, 13], ``edge_index`` int64 [2, edges], ``edge_attr`` float32
  [edges, 4], ``u`` float32 [events, 5], ``batch`` int64 [nodes] (each node's event);

and returns ``logits`` and ``scores`` (sigmoid of one logit or of multilabel logits, else
softmax), both float32 [events, n_outputs]. The input normalisation is inside the graph.

How: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), opset 18,
with the native aggregation path (not the torch_scatter kernels, which ONNX does not know).
Three aten ops get ONNX definitions here, for the export only: ``index_add`` (a
``ScatterElements`` add; torch's own definition lets duplicate indices overwrite each other,
which gave outputs off by up to 1e-2), ``scatter_reduce`` with ``include_self=False`` (ONNX
``ScatterElements`` reduces onto its input; the exact semantics are rebuilt with a scatter of
ones and a ``Where``) and ``bincount`` (a ``ScatterElements`` add of ones). The dynamo
exporter of torch 2.13 was tried first and fails on this model: its FX code generation
breaks on the module name ``global`` (a Python keyword) in the encoders.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepfm.atomic import atomic_path
from hepfm.data.graphs import build_batch
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError, HepfmError, MissingExtraError, OutputExistsError, naming
from hepfm.models import scatter
from hepfm.models.foundation import FoundationModel

INPUT_NAMES = ("x", "edge_index", "edge_attr", "u", "batch")
OUTPUT_NAMES = ("logits", "scores")
OPSET = 18
_DYNAMIC = {"x": {0: "nodes"}, "edge_index": {1: "edges"}, "edge_attr": {0: "edges"},
            "u": {0: "events"}, "batch": {0: "nodes"}, "logits": {0: "events"},
            "scores": {0: "events"}}


def onnx_inputs(table: EventTable) -> dict[str, np.ndarray]:
    """The exported model's inputs for all events of `table`, in table order.

    ``table`` comes from :func:`hepfm.data.read_table` (or ``iterate_tables`` for chunks)
    with the branch map and selection the model was trained with.
    """
    b = build_batch(table, keep_order=True)
    return {k: getattr(b, k).numpy() for k in INPUT_NAMES}


def example_table(n: int, seed: int = 0, max_objects: int = 8) -> EventTable:
    """`n` random events of 0 to `max_objects` objects plus MET (for tracing and checks)."""
    from hepfm.data.features import BJET, MET, PHOTON

    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_objects + 1, n) + 1
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    is_met = np.zeros(total, bool)
    is_met[offsets[1:] - 1] = True
    node_type = np.where(is_met, MET, rng.integers(0, PHOTON + 1, total)).astype(np.int8)
    f32 = np.float32
    return EventTable(
        offsets=offsets, pt=(20 + rng.exponential(50, total)).astype(f32),
        eta=np.where(is_met, 0, rng.normal(0, 1.5, total)).astype(f32),
        phi=rng.uniform(-np.pi, np.pi, total).astype(f32),
        mass=np.where(node_type <= BJET, rng.uniform(2, 20, total), 0).astype(f32),
        charge=rng.integers(-1, 2, total).astype(np.int8),
        btag=(node_type == BJET).astype(f32), node_type=node_type,
        y=np.zeros(n, np.int64), process=np.zeros(n, np.int16))


class _Graph:
    """The attributes of a batch that the backbone reads."""

    def __init__(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u: Tensor,
                 batch: Tensor):
        self.x, self.edge_index, self.edge_attr, self.u, self.batch = \
            x, edge_index, edge_attr, u, batch


class ExportWrapper(nn.Module):
    """`model`'s head `head` as a function of plain tensors: (logits, scores)."""

    def __init__(self, model: FoundationModel, head: str):
        super().__init__()
        if head not in model.heads:
            raise HepfmError(f"model has no head '{head}'; heads: {', '.join(model.heads)}")
        self.model, self.head = model, head
        self.sigmoid = model.heads[head].out.out_features == 1 or head == "multilabel"

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u: Tensor,
                batch: Tensor) -> tuple[Tensor, Tensor]:
        rep = self.model.embed(_Graph(x, edge_index, edge_attr, u, batch))
        logits = self.model.heads[self.head](rep)
        return logits, torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, -1)


# --- ONNX definitions of three aten ops (TorchScript exporter symbolics) --------------------
def _scatter_reduce(g: Any, self: Any, dim: int, index: Any, src: Any, reduce: str,
                    include_self: bool) -> Any:
    """``self.scatter_reduce(dim, index, src, reduce, include_self)`` for float32 tensors."""
    ops = {"sum": "add", "mean": "add", "amax": "max", "amin": "min"}
    if reduce not in ops:
        raise HepfmError(f"ONNX export: scatter_reduce '{reduce}' is not supported")
    if include_self and reduce != "mean":
        return g.op("ScatterElements", self, index, src, axis_i=dim, reduction_s=ops[reduce])

    def const(shape_of: Any, value: float) -> Any:
        return g.op("ConstantOfShape", g.op("Shape", shape_of),
                    value_t=torch.tensor([value], dtype=torch.float32))

    zeros = const(self, 0.0)
    count = g.op("ScatterElements", zeros, index, const(src, 1.0), axis_i=dim,
                 reduction_s="add")
    if reduce in ("sum", "mean"):
        out = g.op("ScatterElements", zeros, index, src, axis_i=dim, reduction_s="add")
        if include_self:  # mean counting `self` as one more member
            out = g.op("Add", out, self)
            count = g.op("Add", count, const(self, 1.0))
        if reduce == "mean":
            out = g.op("Div", out, g.op("Max", count, const(self, 1.0)))
    else:  # start every group from one of its own members, then reduce
        start = g.op("ScatterElements", zeros, index, src, axis_i=dim)
        out = g.op("ScatterElements", start, index, src, axis_i=dim, reduction_s=ops[reduce])
    # targets that no index hits keep `self`, as torch does without include_self
    return g.op("Where", g.op("Greater", count, zeros), out, self)


def _index_add(g: Any, self: Any, dim: int, index: Any, source: Any, alpha: Any = None
               ) -> Any:
    """``self.index_add(dim, index, source)`` as a ScatterElements with reduction ``add``
    (torch's own symbolic writes duplicate indices over each other instead of adding)."""
    from torch.onnx import symbolic_helper as sh

    if dim != 0:
        raise HepfmError(f"ONNX export: index_add along dim {dim} is not supported")
    rank = sh._get_tensor_rank(source)
    if rank is None:
        raise HepfmError("ONNX export: index_add of a tensor of unknown rank")
    idx = index
    if rank > 1:
        idx = g.op("Unsqueeze", index,
                   g.op("Constant", value_t=torch.tensor(list(range(1, rank)))))
        idx = g.op("Expand", idx, g.op("Shape", source))
    return g.op("ScatterElements", self, idx, source, axis_i=0, reduction_s="add")


def _bincount(g: Any, index: Any, weights: Any, minlength: Any) -> Any:
    if not weights.node().mustBeNone():
        raise HepfmError("ONNX export: bincount with weights is not supported")
    n = g.op("Max", g.op("Reshape", minlength, g.op("Constant", value_t=torch.tensor([1]))),
             g.op("Add", g.op("ReduceMax", index, keepdims_i=1),
                  g.op("Constant", value_t=torch.tensor([1]))))
    zeros = g.op("ConstantOfShape", n, value_t=torch.tensor([0], dtype=torch.int64))
    ones = g.op("Expand", g.op("Constant", value_t=torch.tensor(1, dtype=torch.int64)),
                g.op("Shape", index))
    return g.op("ScatterElements", zeros, index, ones, axis_i=0, reduction_s="add")


@contextlib.contextmanager
def _export_ops() -> Iterator[None]:
    """Native scatter backend and the symbolics above, for the duration of an export."""
    from torch.onnx import symbolic_helper as sh

    sym = {"aten::scatter_reduce": sh.parse_args("v", "i", "v", "v", "s", "b")(_scatter_reduce),
           "aten::index_add": sh.parse_args("v", "i", "v", "v", "v")(_index_add),
           "aten::bincount": _bincount}
    backend = scatter.get_backend()
    scatter.set_backend("torch")
    for name, fn in sym.items():
        torch.onnx.register_custom_op_symbolic(name, fn, OPSET)
    try:
        yield
    finally:
        for name in sym:
            torch.onnx.unregister_custom_op_symbolic(name, OPSET)
        scatter.set_backend(backend)


def export_onnx(model: FoundationModel, path: str | os.PathLike, head: str,
                example: EventTable, force: bool = False) -> Path:
    """Write head `head` of `model` as an ONNX file (dynamic events, nodes and edges).

    `example` is a few events to trace with (any; two or more with objects are best).
    """
    import warnings

    model = model.cpu().eval()
    wrapper = ExportWrapper(model, head).eval()
    args = tuple(torch.from_numpy(a) for a in onnx_inputs(example).values())
    path = _check_output(path, force)
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise MissingExtraError("onnx", "onnx", "ONNX export") from None
    with atomic_path(path, overwrite=force) as tmp, _export_ops(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, args, str(tmp), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=_DYNAMIC,
                          opset_version=OPSET, dynamo=False)
    return path


def _check_output(path: str | os.PathLike, force: bool) -> Path:
    path = Path(path)
    if path.exists() and not force:
        raise naming(OutputExistsError, f"output exists: '{path}'; pass {{setting}} to "
                     "replace it", "force")
    return path


#: Export formats of :func:`export`.
FORMATS = ("onnx",)


def export(model: FoundationModel | str | os.PathLike, out: str | os.PathLike,
           head: str | None = None, fmt: str = "onnx", check: bool = True,
           force: bool = False) -> tuple[Path, str, list[tuple[int, float]]]:
    """Export `model` (a model, a model directory or a shipped name) to `out` in format
    `fmt` (ONNX: dynamic numbers of events, nodes and edges). `head` defaults to the task
    head of a fine-tuned model. With `check`, ONNX Runtime is compared with PyTorch on 1, 7
    and 1000 events. Returns (path, head, [(events, max abs difference), ...])."""
    from hepfm.hub import load_pretrained
    from hepfm.inference import default_head

    if fmt not in FORMATS:
        raise ArgumentError(f"export format '{fmt}': not one of {', '.join(FORMATS)}")
    _check_output(out, force)
    m = model if isinstance(model, FoundationModel) else load_pretrained(model)
    head = head or default_head(m)
    if head not in m.heads:
        raise ArgumentError(f"the model has no head '{head}'; heads: {', '.join(m.heads)}")
    path = export_onnx(m, out, head, example_table(16, seed=0), force=force)
    rows: list[tuple[int, float]] = []
    if check:
        try:
            rows = check_onnx(m, path, head, [example_table(n, seed=n) for n in (1, 7, 1000)])
        except ImportError:
            raise MissingExtraError("onnxruntime", "onnx", "the ONNX check") from None
    return path, head, rows


def check_onnx(model: FoundationModel, path: str | os.PathLike, head: str,
               tables: list[EventTable]) -> list[tuple[int, float]]:
    """(events, max |ONNX Runtime - PyTorch| over the scores) for each table."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(model.cpu().eval(), head).eval()
    out = []
    for t in tables:
        feed = onnx_inputs(t)
        with torch.no_grad():
            ref = wrapper(*(torch.from_numpy(a) for a in feed.values()))[1].numpy()
        got = session.run(["scores"], feed)[0]
        out.append((len(t), float(np.abs(got - ref).max()) if got.size else 0.0))
    return out
