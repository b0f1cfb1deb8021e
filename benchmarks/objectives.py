"""Pretraining objectives compared at one budget: which objective transfers best?

One network (the default architecture), one set of pretraining events (the first N events
per process of one sample, default 12 x 40k), one recipe (10 epochs, early stopping on the
validation loss, seed 0), five objectives:

- ``multiclass``: which of the 12 processes;
- ``multilabel``: the truth targets of ``hepfm.data.labels`` (Higgs decay mode, hadronic
  tops, W/Z decays, b quarks, leading resonance pT; most vary event by event);
- ``both``: multiclass + multilabel;
- ``mpm``: masked particle modeling alone (self-supervised, no labels);
- ``mpm+multiclass``.

Each model is fine-tuned (``full`` and ``frozen``) on three tasks at 300 and 1,000 training
events with three seeds, beside the same network from scratch and the BDT, on task samples
from the task seed stream (no model saw them). Scratch and the BDT also run at 3,000 and
10,000 events: the label efficiency of each model reads off that curve.

    python benchmarks/objectives.py pretrain --data samples/pretrain --out runs/objectives
    python benchmarks/objectives.py scan baselines --data samples/tasks --only multiclass
    python benchmarks/objectives.py scan models --data samples/tasks
    python benchmarks/objectives.py scan models --data samples/tasks --only "" --shipped hepfm-base
    python benchmarks/objectives.py scan reference --data samples/tasks --only multiclass
    python benchmarks/objectives.py report runs/objectives

A second study on more pretraining events reuses the first one's BDT, scratch and model runs
(``copy-runs``; the earlier models relabelled) and is compared with a shipped model:

    python benchmarks/objectives.py pretrain --data samples/pretrain --out runs/objectives80k \
        --events-per-process 80000 --only both
    python benchmarks/objectives.py copy-runs runs/objectives --out runs/objectives80k \
        --labels both=both@20k,multiclass=multiclass@20k,hepfm-base=hepfm-base
    python benchmarks/objectives.py scan models --out runs/objectives80k --data samples/tasks \
        --only both
    python benchmarks/objectives.py report runs/objectives80k \
        --results benchmarks/results/objectives/80k --versus hepfm-base

Every step resumes: finished pretrainings (``metrics.json`` present) and stored scan runs are
kept, so several processes can share the work (``pretrain --only mpm``). ``report`` writes
``benchmarks/results/objectives/``: ``runs.csv`` (objective, task, size, mode, seed, AUC and
its 68 % test-bootstrap interval), ``summary.csv`` (mean over seeds, with the paired
difference to scratch and to ``multiclass``), ``label_efficiency.csv`` (the scratch training
events each fine-tuned AUC matches), ``finetuned_1000_vs_scratch_10000.csv`` (paired),
``pretraining.csv`` (cost of each objective on this host), ``scaling.csv`` (each fine-tuned
AUC against the number of pretraining events), ``objectives.png`` and ``host.txt``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hepfm.processes import PRETRAINING

OBJECTIVES = ("multiclass", "multilabel", "both", "mpm", "mpm+multiclass")
EVENTS_PER_PROCESS = 40000
TASKS = ("ttH_vs_tt", "ZH_vs_Z_jets", "Zprime_vs_tt")
TRAIN_SIZES = (300, 1000)
REFERENCE_SIZES = (3000, 10000)  # scratch and BDT only: the curve label efficiency reads
SEEDS = 3
EPOCHS = 10


def _run(out: Path, objective: str) -> Path:
    return out / f"pre-{objective.replace('+', '-')}"


def pretrain_all(data: str, out: Path, objectives: tuple[str, ...], events: int,
                 threads: int) -> None:
    from hepfm.training.pretrain import PretrainConfig, pretrain

    for objective in objectives:
        run = _run(out, objective)
        if (run / "metrics.json").is_file():  # written last: the run is complete
            print(f"{run}: done")
            continue
        resume = (run / "checkpoints" / "last.ckpt").is_file()
        config = PretrainConfig("all", objective, data, events, EPOCHS, seed=0)
        pretrain(config, run, device="cpu", threads=threads, resume=resume, progress=False)


def scan_all(out: Path, data: str, objectives: tuple[str, ...], tasks: tuple[str, ...],
             part: str, shipped: tuple[str, ...] = ()) -> None:
    """One part of the scan: ``models`` (full and frozen of `objectives`, and of the
    `shipped` models by name), ``baselines`` (scratch and BDT at the compared sizes) or
    ``reference`` (scratch at 3,000 and 10,000 events). Parts may run at once in several
    processes: they share the scan directory."""
    from hepfm.taskdata import TaskData
    from hepfm.training.task_run import scan_tasks

    task_list = [TaskData.from_task(t, data) for t in tasks]
    models = {o: str(_run(out, o)) for o in objectives} | {name: name for name in shipped}
    sizes, modes = {"models": (TRAIN_SIZES, ["full", "frozen"]),
                    "baselines": (TRAIN_SIZES, ["bdt", "scratch"]),
                    "reference": (REFERENCE_SIZES, ["scratch"])}[part]
    scan_tasks(task_list, models, list(sizes), modes, SEEDS, out / "scan", resume=True)


def copy_runs(source: Path, out: Path, labels: dict[str, str]) -> int:
    """Copy the stored scan runs of `source` that need no new training into the scan of
    `out`: the BDT and scratch runs, and those of the models in `labels` ({label: new
    label}, e.g. ``both`` -> ``both@20k``, so that models of two studies can sit side by
    side). Returns the number of runs copied."""
    import shutil

    from hepfm.atomic import write_json, write_text

    src, dst = source / "scan", out / "scan"
    (dst / "runs").mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted((src / "runs").glob("*.json")):
        record = json.loads(f.read_text())
        label = record["key"]["model"]
        if label != "none" and label not in labels:
            continue
        record["key"]["model"] = record["row"]["model"] = labels.get(label, label)
        task = record["row"]["task"]
        (dst / "scores" / task).mkdir(parents=True, exist_ok=True)
        for scores in (src / "scores" / task).glob(f"{f.stem}*.npy"):
            shutil.copyfile(scores, dst / "scores" / task / scores.name)
        write_json(dst / "runs" / f.name, record, indent=1)
        n += 1
    for test in (src / "scores").glob("*/test-*.npz"):
        shutil.copyfile(test, dst / "scores" / test.parent.name / test.name)
    seconds = json.loads((src / "pretrain_seconds.json").read_text())
    write_text(dst / "pretrain_seconds.json", json.dumps(
        {labels[k]: v for k, v in seconds.items() if k in labels}, indent=1))
    return n


def scaling_table(summary: pd.DataFrame, events: dict[str, int]) -> pd.DataFrame:
    """Rows of the scaling curve of detector version 2 from a report's ``summary.csv``: every
    fine-tuned curve of a model pretrained on a known number of events per process
    (`events`: {model label: events}; ``<objective>@<N>k`` labels name theirs), with its AUC
    and its gain over scratch (68 % intervals)."""
    tuned = summary[summary["curve"].str.contains(r"\(")].copy()
    tuned["mode"] = tuned["curve"].str.split(" ").str[0]
    tuned["model"] = tuned["curve"].str.extract(r"\((.*)\)")[0]
    known = {**{m: int(m.rsplit("@", 1)[1].removesuffix("k")) * 1000
                for m in tuned["model"] if m.endswith("k") and "@" in m}, **events}
    tuned = tuned[tuned["model"].isin(known)]
    return pd.DataFrame({
        "task": tuned["task"], "train_size": tuned["train_size"], "mode": tuned["mode"],
        "objective": tuned["model"].str.split("@").str[0], "detector_version": 2,
        "pretrain_events_per_process": tuned["model"].map(known),
        "pretrain_events": (tuned["model"].map(known) * len(PRETRAINING) * 0.8).astype(int),
        **{c: tuned[c] for c in ("auc_mean", "auc_lo68", "auc_hi68", "vs_scratch_mean",
                                 "vs_scratch_lo68", "vs_scratch_hi68")}}).sort_values(
        ["task", "train_size", "mode", "objective", "pretrain_events"])


def runs_table(frame: pd.DataFrame, boot: pd.DataFrame) -> pd.DataFrame:
    """One row per run: objective (or scratch/bdt), task, size, mode, seed, AUC and its
    68 % test-bootstrap interval."""
    from hepfm.analysis.metrics import percentile_interval

    rows = []
    for r in frame.itertuples(index=False):
        lo, hi = (percentile_interval(boot[r.run_id].to_numpy(), 0.68)
                  if r.run_id in boot else (np.nan, np.nan))
        rows.append({"objective": r.model if r.mode in ("full", "frozen") else r.mode,
                     "task": r.task, "train_size": r.train_size, "mode": r.mode,
                     "seed": r.seed, "auc": r.auc, "auc_lo68": lo, "auc_hi68": hi})
    return pd.DataFrame(rows).sort_values(["task", "train_size", "mode", "objective", "seed"])


def summary_table(frame: pd.DataFrame, boot: pd.DataFrame, versus: str = "multiclass"
                  ) -> pd.DataFrame:
    """Mean AUC over seeds per (task, size, curve), with the paired test-bootstrap
    difference to scratch and to the model `versus` in the same mode."""
    from hepfm.training.scan import differences, summarise

    summary = summarise(frame, boot)
    refs = ("scratch", f"full ({versus})", f"frozen ({versus})")
    diffs = differences(frame, boot, references=refs)
    cols = ["diff_mean", "diff_lo68", "diff_hi68"]
    for ref, tag in (("scratch", "vs_scratch"), (None, f"vs_{versus}")):
        if ref is None:  # each mode against `versus` in the same mode
            d = diffs[diffs["reference"] == diffs["curve"].str.split(" ").str[0]
                      + f" ({versus})"]
        else:
            d = diffs[diffs["reference"] == ref]
        d = d[["task", "train_size", "curve", *cols]].rename(
            columns={c: f"{tag}_{c.removeprefix('diff_')}" for c in cols})
        summary = summary.merge(d, on=["task", "train_size", "curve"], how="left")
    return summary.sort_values(["task", "train_size", "curve"])


def against_more_scratch(frame: pd.DataFrame, boot: pd.DataFrame, size: int = 1000,
                         reference: int = REFERENCE_SIZES[-1]) -> pd.DataFrame:
    """Every fine-tuned curve at `size` events minus scratch at `reference` events, per task:
    mean over seeds, with the paired 68 % test-bootstrap interval (same resamples)."""
    from hepfm.training.scan import curve_label

    f = frame.assign(curve=curve_label(frame))
    rows = []
    for task, g in f.groupby("task"):
        ref = g[(g["curve"] == "scratch") & (g["train_size"] == reference)]
        if ref.empty:
            continue
        ref_boot = boot[list(ref["run_id"])].to_numpy().mean(axis=1)
        for curve, c in g[(g["train_size"] == size) & g["curve"].str.contains(r"\(")].groupby(
                "curve"):
            diff = boot[list(c["run_id"])].to_numpy().mean(axis=1) - ref_boot
            rows.append({"task": task, "curve": curve, "train_size": size,
                         "scratch_size": reference,
                         "diff_mean": c["auc"].mean() - ref["auc"].mean(),
                         "diff_lo68": np.percentile(diff, 16),
                         "diff_hi68": np.percentile(diff, 84)})
    return pd.DataFrame(rows)


def pretraining_table(out: Path) -> pd.DataFrame:
    """Per objective: the model's weights SHA-256, its pretraining events and cost on this
    host, and its own 12-process test scores with their 68 % test-bootstrap intervals."""
    from hepfm.atomic import file_sha256

    rows = []
    for objective in OBJECTIVES:
        metrics = _run(out, objective) / "metrics.json"
        if not metrics.is_file():
            continue
        m = json.loads(metrics.read_text())
        epochs = int(pd.read_csv(metrics.parent / "metrics.csv")["epoch"].max()) + 1
        test = m.get("test", {})
        rows.append({"objective": objective,
                     "weights_sha256": file_sha256(metrics.parent / "model.safetensors"),
                     "pretrain_events": m["events"]["train"],
                     "epochs": epochs, "best_epoch": m.get("best_epoch"),
                     "seconds": round(m["train_time_s"]),
                     "events_per_second": round(m["events"]["train"] * epochs
                                                / m["train_time_s"]),
                     **{k: test.get(k) for k in ("accuracy", "accuracy_lo68", "accuracy_hi68",
                                                 "macro_auc", "macro_auc_lo68",
                                                 "macro_auc_hi68")}})
    return pd.DataFrame(rows)


def report(out: Path, results: Path, versus: str = "multiclass") -> pd.DataFrame:
    from hepfm.training.scan import ScanStore, bootstrap_runs, label_efficiencies, load_scan

    results.mkdir(parents=True, exist_ok=True)
    frame = load_scan(out / "scan")
    boot = bootstrap_runs(frame, ScanStore(out / "scan"), 1000, 0)
    runs_table(frame, boot).to_csv(results / "runs.csv", index=False, float_format="%.4f")
    summary = summary_table(frame, boot, versus)
    summary.to_csv(results / "summary.csv", index=False, float_format="%.4f")
    label_efficiencies(frame, boot).to_csv(results / "label_efficiency.csv", index=False,
                                           float_format="%.4f")
    against_more_scratch(frame, boot).to_csv(results / "finetuned_1000_vs_scratch_10000.csv",
                                             index=False, float_format="%.4f")
    pretraining_table(out).to_csv(results / "pretraining.csv", index=False,
                                  float_format="%.4f")
    _plot(summary, results / "objectives.png")
    events = {o: yaml.safe_load((_run(out, o) / "run.yaml").read_text())["events_per_process"]
              for o in OBJECTIVES if (_run(out, o) / "run.yaml").is_file()}
    scaling_table(summary, events).to_csv(results / "scaling.csv", index=False,
                                          float_format="%.4f")
    (results / "host.txt").write_text(f"{platform.processor() or platform.machine()}, "
                                      f"{platform.platform()}\n")
    return summary


def _plot(summary: pd.DataFrame, path: Path) -> None:
    """Per task and size: the gain over scratch of each objective, full and frozen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tuned = summary[summary["curve"].str.contains(r"\(")].copy()
    tuned["mode"] = tuned["curve"].str.split(" ").str[0]
    tuned["objective"] = tuned["curve"].str.extract(r"\((.*)\)")[0]
    panels = list(tuned.groupby(["task", "train_size"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.8), sharey=True,
                             squeeze=False)
    present = set(tuned["objective"])
    labels = [o for o in OBJECTIVES if o in present] + sorted(present - set(OBJECTIVES))
    x = np.arange(len(labels))
    for ax, ((task, size), g) in zip(axes[0], panels, strict=True):
        for k, mode in enumerate(("full", "frozen")):
            m = g[g["mode"] == mode].set_index("objective").reindex(labels)
            mean = m["vs_scratch_mean"].to_numpy()
            err = [mean - m["vs_scratch_lo68"].to_numpy(), m["vs_scratch_hi68"].to_numpy() - mean]
            ax.errorbar(x + (k - 0.5) * 0.25, mean, yerr=err, fmt="o", capsize=3, label=mode)
        bdt = summary[(summary["task"] == task) & (summary["train_size"] == size)
                      & (summary["curve"] == "bdt")]["vs_scratch_mean"]
        if len(bdt):
            ax.axhline(float(bdt.iloc[0]), color="k", ls="--", lw=1, label="BDT")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{task}, {size} events", fontsize=9)
    axes[0, 0].set_ylabel("AUC minus scratch (paired, 68 % bootstrap)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pretrain")
    p.add_argument("--data", required=True, help="pretraining sample directory")
    p.add_argument("--out", type=Path, default=Path("runs/objectives"))
    p.add_argument("--only", default=",".join(OBJECTIVES))
    p.add_argument("--events-per-process", type=int, default=EVENTS_PER_PROCESS)
    p.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("scan")
    s.add_argument("part", choices=("models", "baselines", "reference"))
    s.add_argument("--data", required=True, help="task sample directory (task seed stream)")
    s.add_argument("--out", type=Path, default=Path("runs/objectives"))
    s.add_argument("--only", default=",".join(OBJECTIVES),
                   help="objectives whose models to fine-tune (baselines: the architecture)")
    s.add_argument("--tasks", default=",".join(TASKS))
    s.add_argument("--shipped", default="", help="shipped models to fine-tune beside them")
    c = sub.add_parser("copy-runs", help="seed the scan of --out with the BDT, scratch and "
                       "relabelled model runs of another study's scan")
    c.add_argument("source", type=Path, help="the other study's --out")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--labels", required=True, help="label=new,label=new (e.g. both=both@20k)")
    r = sub.add_parser("report")
    r.add_argument("out", type=Path)
    r.add_argument("--results", type=Path, default=Path("benchmarks/results/objectives"))
    r.add_argument("--versus", default="multiclass",
                   help="the model every curve is also compared with, mode by mode")
    args = parser.parse_args()
    if args.step == "pretrain":
        pretrain_all(args.data, args.out, tuple(args.only.split(",")), args.events_per_process,
                     args.threads)
    elif args.step == "copy-runs":
        labels = dict(item.split("=", 1) for item in args.labels.split(","))
        print(f"{copy_runs(args.source, args.out, labels)} runs copied")
    elif args.step == "scan":
        scan_all(args.out, args.data, tuple(o for o in args.only.split(",") if o),
                 tuple(args.tasks.split(",")), args.part,
                 tuple(n for n in args.shipped.split(",") if n))
    else:
        print(report(args.out, args.results, args.versus).to_string(index=False))


if __name__ == "__main__":
    main()
