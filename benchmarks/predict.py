"""Benchmark: ``hepfm predict`` throughput against reading alone, and ONNX Runtime against
PyTorch inference, in one run on the CPU with one thread.

    python benchmarks/predict.py [--events 50000] [--repeat 3] [--batch-size 4096]

1. Reading alone: ``uproot`` iterating over the branches hepfm needs, in the chunks
   ``hepfm predict`` reads (``--step-size``). hepfm predict: the whole command's work (read,
   select, build graphs, run the model, write the friend tree) on the same file. Events per
   second per core and the ratio.
2. The same batches of events through the PyTorch model and through its ONNX export in
   ONNX Runtime (one intra-op thread each). Events per second and the ratio.

The model is the shipped ``hepfm-small`` with a new binary head (199k parameters). The file
is written first with synthetic ttbar-like events (``benchmarks/graphs.py``). The table is
printed and saved to a new dated file ``benchmarks/results/predict-<date>.md`` (``--out``;
never over an existing file without ``--force``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import uproot

sys.path.insert(0, str(Path(__file__).parent))
from _results import add_output_options, output_path
from graphs import synthetic_file
from hepfm.data import DELPHES, open_file, read_table
from hepfm.exporting import ExportWrapper, export_onnx, onnx_inputs
from hepfm.hub import load_pretrained
from hepfm.inference import predict_files


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of `repeat` calls (the machine is shared: noise only adds)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--step-size", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=4096)
    add_output_options(ap, "predict")
    args = ap.parse_args()
    out = output_path(args, "predict")
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="hepfm-bench-predict-"))
    path = synthetic_file(tmp / "events.root", args.events, seed=0)
    model_dir = tmp / "model"
    torch.manual_seed(0)
    load_pretrained("hepfm-small").with_head("task", 1).save_pretrained(model_dir, task="bench")
    n = args.events

    info = open_file(path, DELPHES)
    names = DELPHES.all_branches(info.collections)

    def read_only() -> None:
        for _ in uproot.open(path)["Delphes"].iterate(names, step_size=args.step_size,
                                                       library="ak"):
            pass

    runs = iter(range(10**6))

    def predict() -> None:
        predict_files(model_dir, [str(path)], tmp / f"out{next(runs)}", progress=False,
                      step_size=args.step_size, batch_size=args.batch_size)

    t_read = best_of(read_only, args.repeat)
    t_pred = best_of(predict, args.repeat)

    # PyTorch vs ONNX Runtime on the same inputs
    import onnxruntime as ort

    model = load_pretrained(model_dir)
    table = read_table(path)
    feeds = [onnx_inputs(table[i:i + args.batch_size]) for i in range(0, n, args.batch_size)]
    onnx_path = export_onnx(model, tmp / "model.onnx", "task", table[:16])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(model, "task").eval()
    tensors = [tuple(torch.from_numpy(a) for a in f.values()) for f in feeds]

    @torch.no_grad()
    def run_torch() -> None:
        for t in tensors:
            wrapper(*t)

    def run_onnx() -> None:
        for f in feeds:
            session.run(["scores"], f)

    t_torch = best_of(run_torch, args.repeat)
    t_onnx = best_of(run_onnx, args.repeat)
    with torch.no_grad():
        diff = max(float(np.abs(session.run(["scores"], f)[0] - wrapper(*t)[1].numpy()).max())
                   for f, t in zip(feeds, tensors, strict=True))

    rows = [
        ("reading alone (uproot, the needed branches)", t_read, None),
        ("hepfm predict (read, graphs, model, write)", t_pred, t_pred / t_read),
        ("PyTorch inference (prebuilt batches)", t_torch, None),
        ("ONNX Runtime inference (same batches)", t_onnx, t_onnx / t_torch),
    ]
    lines = [
        "# hepfm predict and ONNX Runtime: throughput on the CPU",
        "",
        f"Command: `python benchmarks/predict.py --events {n} --repeat {args.repeat} "
        f"--batch-size {args.batch_size}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with "
        f"other jobs; load average {os.getloadavg()[0]:.1f}); 1 torch thread, 1 ONNX Runtime "
        f"thread; torch {torch.__version__}, onnxruntime {ort.__version__}, uproot "
        f"{uproot.__version__}. Best of {args.repeat}. {n} synthetic ttbar-like events, "
        f"model hepfm-small + a binary head, batches of {args.batch_size} events.",
        "",
        "| what | seconds | events/s per core | ratio |",
        "|---|---|---|---|",
    ]
    for name, t, ratio in rows:
        r = "" if ratio is None else (f"{ratio:.1f}x reading" if "predict" in name
                                      else f"{ratio:.2f}x PyTorch time")
        lines.append(f"| {name} | {t:.2f} | {n / t:,.0f} | {r} |")
    lines += ["", f"Max |ONNX Runtime - PyTorch| over all scores: {diff:.1e}.", ""]
    text = "\n".join(lines)
    print(text)
    out.write_text(text)


if __name__ == "__main__":
    main()
