"""Pretraining scaling study: fine-tuned AUC against pretraining events, per network width.

Pretraining sets are nested: the first N events per process of one sample (one seed stream),
so the largest generation serves every size. Every model is pretrained with one recipe
(multiclass, 10 epochs, early stopping on the validation loss, seed 0), then fine-tuned
(``full``) on two tasks at two training sizes with three seeds, beside the same network
trained from scratch and the BDT, on task samples that no model saw (task seed stream).

    python benchmarks/scaling.py pretrain --data samples/scale --out runs/scaling
    python benchmarks/scaling.py scan --out runs/scaling --data samples/tasks
    python benchmarks/scaling.py ship --out runs/scaling --data samples/tasks
    python benchmarks/scaling.py report runs/scaling     # -> results/scaling-<date>/

Each step resumes: finished pretrainings (model directories) and stored scan runs are kept.
``report`` writes into a new dated folder ``benchmarks/results/scaling-<date>``
(``--results``; a folder holding files is written into only with ``--force``):
``scaling.csv`` (AUC and gain over scratch with 68% test-bootstrap intervals, per task,
training size, width and pretraining size), ``scaling.png`` and ``pretraining.csv`` (each
model's cost on this host and its 12-process test scores), ``steps.csv`` (each pretraining
size minus the next smaller one, paired) and,
when ``runs/scaling/scan-ship`` holds a paired scan of the 32k models beside the shipped
``hepfm-small`` (``full`` mode, same tasks and sizes), ``candidates.csv``: each model's AUC
minus hepfm-small's with paired bootstrap intervals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
from pathlib import Path

import pandas as pd

from _results import RESULTS, dated, refuse_existing

SIZES = (2000, 8000, 32000)
WIDTHS = (64, 128)
TASKS = ("ttH_vs_tt", "Zprime_vs_tt")  # processes seen in pretraining; an unseen signal
TRAIN_SIZES = (300, 1000)
EPOCHS = 10


def _label(width: int, size: int) -> str:
    return f"w{width}-n{size}"


def pretrain_all(data: str, out: Path, sizes: tuple[int, ...], widths: tuple[int, ...],
                 threads: int) -> None:
    from hepfm.training.pretrain import PretrainConfig, pretrain

    for width in widths:
        for size in sizes:
            run = out / f"pre-{_label(width, size)}"
            if (run / "metrics.json").is_file():  # written last: the run is complete
                print(f"{run}: done")
                continue
            resume = (run / "checkpoints" / "last.ckpt").is_file()
            config = PretrainConfig("all", "multiclass", data, size, EPOCHS, seed=0,
                                    model_config={"hidden": width, "head_hidden": width})
            pretrain(config, run, device="cpu", threads=threads, resume=resume, progress=False)


def scan_all(out: Path, data: str, sizes: tuple[int, ...], widths: tuple[int, ...]) -> None:
    from hepfm.taskdata import TaskData
    from hepfm.training.task_run import scan_tasks

    tasks = [TaskData.from_task(t, data) for t in TASKS]
    for width in widths:  # one scan per width: its scratch runs have its architecture
        models = {f"n{size}": str(out / f"pre-{_label(width, size)}") for size in sizes}
        scan_tasks(tasks, models, list(TRAIN_SIZES), ["bdt", "scratch", "full"], 3,
                   out / f"scan-w{width}", resume=True)


def scan_candidates(out: Path, data: str, widths: tuple[int, ...], size: int) -> None:
    """The models pretrained on `size` events per process beside the shipped hepfm-small,
    fine-tuned (``full``) on the same tasks, sizes and seeds: the paired comparison that
    decides which model ships."""
    from hepfm.taskdata import TaskData
    from hepfm.training.task_run import scan_tasks

    models = {"hepfm-small": "hepfm-small"}
    models.update({_label(w, size): str(out / f"pre-{_label(w, size)}") for w in widths})
    scan_tasks([TaskData.from_task(t, data) for t in TASKS], models, list(TRAIN_SIZES),
               ["full"], 3, out / "scan-ship", resume=True)


def _events(run: Path) -> int:
    """Pretraining events (train split, all processes) recorded in the run's metrics."""
    return int(json.loads((run / "metrics.json").read_text())["events"]["train"])


def pretraining_table(out: Path) -> pd.DataFrame:
    """Per pretrained model: its data, cost (epochs, seconds, events per second on this
    host) and its own 12-process test scores."""
    rows = []
    for run in sorted(out.glob("pre-w*-n*")):
        if not (run / "metrics.json").is_file():
            continue
        m = json.loads((run / "metrics.json").read_text())
        epochs = int(pd.read_csv(run / "metrics.csv")["epoch"].max()) + 1
        width, size = (int(v) for v in run.name.removeprefix("pre-w").split("-n"))
        rows.append({"width": width, "pretrain_events_per_process": size,
                     "pretrain_events": m["events"]["train"], "epochs": epochs,
                     "best_epoch": m["best_epoch"], "seconds": round(m["train_time_s"]),
                     "events_per_second": round(m["events"]["train"] * epochs
                                                / m["train_time_s"]),
                     "test_accuracy": m["test"]["accuracy"],
                     "test_macro_auc": m["test"]["macro_auc"]})
    return pd.DataFrame(rows).sort_values(["width", "pretrain_events_per_process"])


def report(out: Path, results: Path) -> pd.DataFrame:
    rows = []
    for scan in sorted(out.glob("scan-w*")):
        width = int(scan.name.removeprefix("scan-w"))
        summary = pd.read_csv(scan / "summary.csv", dtype={"curve": str})
        diffs = pd.read_csv(scan / "differences.csv", dtype={"curve": str, "reference": str})
        for r in summary[summary["curve"].str.startswith("full")].itertuples(index=False):
            size = int(r.curve.split("(n")[1].rstrip(")"))
            d = diffs[(diffs["task"] == r.task) & (diffs["train_size"] == r.train_size)
                      & (diffs["curve"] == r.curve) & (diffs["reference"] == "scratch")]
            base = summary[(summary["task"] == r.task) & (summary["train_size"] == r.train_size)]
            ref = {c: base[base["curve"] == c].iloc[0] for c in ("scratch", "bdt")
                   if (base["curve"] == c).any()}
            rows.append({
                "task": r.task, "train_size": r.train_size, "width": width,
                "pretrain_events_per_process": size,
                "pretrain_events": _events(out / f"pre-{_label(width, size)}"),
                "auc": r.auc_mean, "auc_lo68": r.auc_lo68, "auc_hi68": r.auc_hi68,
                "gain": d["diff_mean"].iloc[0], "gain_lo68": d["diff_lo68"].iloc[0],
                "gain_hi68": d["diff_hi68"].iloc[0],
                "scratch_auc": ref["scratch"].auc_mean, "bdt_auc": ref["bdt"].auc_mean})
    frame = pd.DataFrame(rows).sort_values(["task", "train_size", "width",
                                            "pretrain_events_per_process"])
    results.mkdir(parents=True, exist_ok=True)
    frame.to_csv(results / "scaling.csv", index=False, float_format="%.4f")
    pretraining_table(out).to_csv(results / "pretraining.csv", index=False,
                                  float_format="%.4f")
    steps(out).to_csv(results / "steps.csv", index=False, float_format="%.4f")
    if (out / "scan-ship").is_dir():
        candidates(out).to_csv(results / "candidates.csv", index=False, float_format="%.4f")
    _plot(frame, results / "scaling.png")
    (results / "host.txt").write_text(f"{platform.processor() or platform.machine()}, "
                                      f"{platform.platform()}\n")
    return frame


def steps(out: Path) -> pd.DataFrame:
    """Fine-tuned AUC of each pretraining size minus the next smaller one (same width),
    paired by seed and test resample."""
    from hepfm.training.scan import ScanStore, bootstrap_runs, differences, load_scan

    frames = []
    for scan in sorted(out.glob("scan-w*")):
        frame = load_scan(scan)
        sizes = sorted(int(m[1:]) for m in frame["model"].unique() if m[1:].isdigit())
        boot = bootstrap_runs(frame, ScanStore(scan), 1000, 0)
        d = differences(frame, boot, references=tuple(f"full (n{n})" for n in sizes[:-1]))
        pairs = {(f"full (n{b})", f"full (n{a})") for a, b in itertools.pairwise(sizes)}
        keep = [(c, r) in pairs for c, r in zip(d["curve"], d["reference"], strict=True)]
        frames.append(d[keep].assign(width=int(scan.name.removeprefix("scan-w"))))
    return pd.concat(frames, ignore_index=True)


def candidates(out: Path, reference: str = "hepfm-small") -> pd.DataFrame:
    """Fine-tuned AUC of each candidate model minus the shipped `reference`, paired by seed
    and test resample (scan ``scan-ship``: ``full`` mode only, same tasks and sizes)."""
    from hepfm.training.scan import ScanStore, bootstrap_runs, differences, load_scan

    directory = out / "scan-ship"
    frame = load_scan(directory)
    boot = bootstrap_runs(frame, ScanStore(directory), 1000, 0)
    return differences(frame, boot, references=(f"full ({reference})",))


def _plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    panels = list(frame.groupby(["task", "train_size"], sort=True))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7), sharex=True,
                             squeeze=False)
    for k, ((task, n), g) in enumerate(panels):
        top, bottom = axes[0, k], axes[1, k]
        for width, w in g.groupby("width"):
            x = w["pretrain_events"]
            top.errorbar(x, w["auc"], yerr=[w["auc"] - w["auc_lo68"], w["auc_hi68"] - w["auc"]],
                         marker="o", capsize=3, label=f"fine-tuned, width {width}")
            bottom.errorbar(x, w["gain"], yerr=[w["gain"] - w["gain_lo68"],
                                                w["gain_hi68"] - w["gain"]],
                            marker="o", capsize=3, label=f"width {width}")
            top.axhline(w["scratch_auc"].iloc[0], ls=":", lw=1,
                        color=top.lines[-1].get_color(), label=f"scratch, width {width}")
        top.axhline(g["bdt_auc"].iloc[0], color="k", ls="--", lw=1, label="BDT")
        bottom.axhline(0, color="k", lw=0.8)
        top.set_title(f"{task}, {n} training events", fontsize=10)
        bottom.set_xscale("log")
        ticks = sorted(g["pretrain_events"].unique())
        bottom.xaxis.set_major_locator(FixedLocator(ticks))
        bottom.xaxis.set_major_formatter(FixedFormatter([f"{t / 1000:.0f}k" for t in ticks]))
        bottom.xaxis.set_minor_formatter(NullFormatter())
        bottom.set_xlabel("pretraining events (training split, 12 processes)")
        if k == 0:
            top.set_ylabel("test AUC (mean of 3 seeds, 68% bootstrap)")
            bottom.set_ylabel("AUC gain over scratch (paired)")
            top.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pretrain")
    p.add_argument("--data", required=True)
    p.add_argument("--out", type=Path, default=Path("runs/scaling"))
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("scan")
    s.add_argument("--out", type=Path, default=Path("runs/scaling"))
    s.add_argument("--data", required=True, help="task sample directory (task seed stream)")
    s.add_argument("--sizes", default=",".join(map(str, SIZES)))
    s.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    c = sub.add_parser("ship")
    c.add_argument("--out", type=Path, default=Path("runs/scaling"))
    c.add_argument("--data", required=True, help="task sample directory (task seed stream)")
    c.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    c.add_argument("--size", type=int, default=max(SIZES))
    r = sub.add_parser("report")
    r.add_argument("out", type=Path)
    r.add_argument("--results", type=Path, default=None,
                   help="result folder [benchmarks/results/scaling-<today>]")
    r.add_argument("--force", action="store_true",
                   help="write into a result folder that holds files (default: refuse)")
    args = parser.parse_args()

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split(","))

    if args.step == "pretrain":
        pretrain_all(args.data, args.out, ints(args.sizes), ints(args.widths), args.threads)
    elif args.step == "scan":
        scan_all(args.out, args.data, ints(args.sizes), ints(args.widths))
    elif args.step == "ship":
        scan_candidates(args.out, args.data, ints(args.widths), args.size)
    else:
        results = refuse_existing(args.results or RESULTS / dated("scaling", ""), args.force)
        print(report(args.out, results).to_string(index=False))


if __name__ == "__main__":
    main()
