"""Robustness: does pretraining make a classifier more or less robust to what simulation gets
wrong?

Classifiers are trained on events of Pythia's default parton shower (ttH_vs_tt and
VBF_vs_ggF at 1,000 and 10,000 training events, three seeds): the BDT on event-level
features, the network from scratch, and the pretrained model fine-tuned (``full``) and with a
frozen encoder (``frozen``). Every trained classifier is then scored

- on the task's own test events (nominal),
- on the same events with the jet energy scale shifted up and down and with the jet energy
  resolution smeared (``jes_up``, ``jes_down``, ``jer``: :mod:`hepfm.data.variations`),
- on the same processes generated with the Vincia shower (``hepfm generate --shower
  vincia``, hard processes of other seeds: no event is shared with the training sample).

A shift is the change of the AUC (or of the Asimov significance) from the nominal test
events, mean over seeds, with 68 % test-bootstrap intervals (the same resampled events for
nominal and varied scores; the Vincia events resampled on their own). "More robust" compares
shifts: each curve's shift minus the shift of scratch (and of the BDT) at the same size, with
the paired interval (every curve sees the same resamples).

    python benchmarks/robustness.py run --data samples/tasks --vincia samples/tasks-vincia \\
        --out runs/robustness
    python benchmarks/robustness.py report runs/robustness

``run`` resumes (stored runs are kept; ``--modes`` splits the work between processes).
``report`` writes ``benchmarks/results/robustness/``: ``summary.csv`` (nominal AUC and
significance per task, size and curve), ``shifts.csv`` (every shift with its interval),
``shift_vs_scratch.csv`` and ``shift_vs_bdt.csv`` (the paired difference of shifts),
``robustness.png``, ``models.json`` (the pretrained model's name, version and weights
SHA-256) and ``host.txt``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("ttH_vs_tt", "VBF_vs_ggF")
SIZES = (1000, 10000)
MODES = ("bdt", "scratch", "full", "frozen")
SEEDS = (0, 1, 2)
VARIATIONS = ("jes_up", "jes_down", "jer")
SAMPLE = "vincia"
N_BOOT = 1000


def run(data: str, vincia: str, out: Path, model: str, modes: tuple[str, ...]) -> None:
    from hepfm.taskdata import TaskData
    from hepfm.training.quiet import quiet_chatter
    from hepfm.training.task_run import scan_tasks

    quiet_chatter(True)
    scan_tasks([TaskData.from_task(t, data) for t in TASKS], {"pretrained": model},
               list(SIZES), list(modes), list(SEEDS), out, resume=True,
               variations=list(VARIATIONS), test_samples={SAMPLE: vincia}, n_boot=N_BOOT)


def _test(store, task: str, test_id: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The stored test labels, and their weights unless all are 1."""
    y, w = store.load_test(task, test_id)
    return y, None if np.all(w == 1) else w


def _boot(y: np.ndarray, w: np.ndarray | None, scores: np.ndarray, seed: int
          ) -> dict[str, np.ndarray]:
    """AUC and Asimov significance of each score row on N_BOOT resamples: [N_BOOT, k]."""
    from hepfm.analysis.metrics import bootstrap_auc
    from hepfm.analysis.significance import Yields, bootstrap_significance

    return {"auc": bootstrap_auc(y, scores, w, n_boot=N_BOOT, seed=seed),
            "z_asimov": bootstrap_significance(y, scores, w, Yields(), N_BOOT, seed)[
                "z_asimov"]}


def shift_differences(directory: Path, shifts: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per task, size, source (variation or other sample) and curve: the curve's mean shift
    minus the `reference` curve's mean shift (`shifts`: :func:`shifts_table`), for the AUC
    and the Asimov significance, with the paired 68 % bootstrap interval (resamples shared
    by all curves of a task)."""
    from hepfm.training.scan import ScanStore, curve_label, load_scan
    from hepfm.training.scan_trust import SAMPLE as PREFIX

    store = ScanStore(directory)
    frame = load_scan(directory)
    frame = frame.assign(curve=curve_label(frame))
    rows = []
    for (task, size), g in frame.groupby(["task", "train_size"]):
        task = str(task)
        record = store.load_run(g["run_id"].iloc[0]) or {}
        y, w = _test(store, task, str(g["test_id"].iloc[0]))
        curves = {c: list(cg.sort_values("seed")["run_id"]) for c, cg in g.groupby("curve")}
        if reference not in curves:
            continue
        names = sorted(curves)
        nominal = _boot(y, w, np.concatenate([store.load_scores(task, curves[c]) for c in names]),
                        0)
        sources = [(v, y, w, v, 0) for v in VARIATIONS]
        for name, test_id in (record.get("test_samples") or {}).items():
            ys, ws = _test(store, task, test_id)
            sources.append((name, ys, ws, PREFIX + name, 1))
        for source, ys, ws, label, seed in sources:
            try:
                varied = _boot(ys, ws, np.concatenate([store.load_scores(task, curves[c], label)
                                                       for c in names]), seed)
            except FileNotFoundError:
                continue
            shift = {}
            start = 0
            for c in names:
                k = len(curves[c])
                shift[c] = {m: varied[m][:, start:start + k].mean(1)
                            - nominal[m][:, start:start + k].mean(1) for m in varied}
                start += k
            for c in names:
                if c == reference:
                    continue
                row = {"task": task, "train_size": size, "source": source, "curve": c,
                       "reference": reference}
                point = shifts[(shifts["task"] == task) & (shifts["train_size"] == size)
                               & (shifts["source"] == source)].set_index("curve")
                for m in ("auc", "z_asimov"):
                    d = shift[c][m] - shift[reference][m]
                    row[f"{m}_diff_mean"] = float(point.at[c, f"{m}_shift_mean"]
                                                  - point.at[reference, f"{m}_shift_mean"])
                    row[f"{m}_diff_lo68"] = float(np.percentile(d, 16))
                    row[f"{m}_diff_hi68"] = float(np.percentile(d, 84))
                rows.append(row)
    return pd.DataFrame(rows)


def shifts_table(directory: Path) -> pd.DataFrame:
    """Every shift (variations.csv and test_samples.csv of the scan) in one table."""
    parts = []
    cols = ["task", "train_size", "curve", "source", "seeds", "auc_shift_mean",
            "auc_shift_lo68", "auc_shift_hi68", "z_asimov_shift_mean", "z_asimov_shift_lo68",
            "z_asimov_shift_hi68"]
    if (directory / "variations.csv").is_file():
        parts.append(pd.read_csv(directory / "variations.csv").rename(
            columns={"variation": "source"}))
    if (directory / "test_samples.csv").is_file():
        parts.append(pd.read_csv(directory / "test_samples.csv").rename(
            columns={"sample": "source"}))
    return pd.concat(parts, ignore_index=True)[cols].sort_values(
        ["task", "train_size", "source", "curve"])


def report(directory: Path, results: Path) -> None:
    from hepfm.training.scan import summarise_scan

    results.mkdir(parents=True, exist_ok=True)
    summarise_scan(directory, n_boot=N_BOOT)
    summary = pd.read_csv(directory / "summary.csv")
    keep = [c for c in summary.columns if c.split("_")[0] in (
        "task", "curve", "train", "auc", "z", "sic", "seeds")]
    summary[keep].to_csv(results / "summary.csv", index=False, float_format="%.4f")
    shifts = shifts_table(directory)
    shifts.to_csv(results / "shifts.csv", index=False, float_format="%.4f")
    for ref, name in (("scratch", "shift_vs_scratch.csv"), ("bdt", "shift_vs_bdt.csv")):
        shift_differences(directory, shifts, ref).to_csv(results / name, index=False,
                                                 float_format="%.4f")
    shutil.copyfile(directory / "models.json", results / "models.json")
    _plot(shifts, results / "robustness.png")
    (results / "host.txt").write_text(f"{platform.processor() or platform.machine()}, "
                                      f"{platform.platform()}\n")


def _plot(shifts: pd.DataFrame, path: Path) -> None:
    """Per task and size: the AUC shift of every curve under each variation and on Vincia."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, sizes = sorted(shifts["task"].unique()), sorted(shifts["train_size"].unique())
    sources = [*VARIATIONS, SAMPLE]
    curves = sorted(shifts["curve"].unique())
    fig, axes = plt.subplots(len(tasks), len(sizes), figsize=(5 * len(sizes), 3.4 * len(tasks)),
                             squeeze=False, sharey="row")
    width = 0.8 / len(curves)
    for i, task in enumerate(tasks):
        for j, size in enumerate(sizes):
            ax = axes[i][j]
            s = shifts[(shifts["task"] == task) & (shifts["train_size"] == size)]
            for k, curve in enumerate(curves):
                c = s[s["curve"] == curve].set_index("source").reindex(sources)
                x = np.arange(len(sources)) + (k - (len(curves) - 1) / 2) * width
                err = [c["auc_shift_mean"] - c["auc_shift_lo68"],
                       c["auc_shift_hi68"] - c["auc_shift_mean"]]
                ax.bar(x, c["auc_shift_mean"], width, yerr=err, label=curve, capsize=2)
            ax.axhline(0, color="black", lw=0.6)
            ax.set_xticks(np.arange(len(sources)), sources)
            ax.set_title(f"{task}, {size} training events", fontsize=9)
            if j == 0:
                ax.set_ylabel("AUC shift from nominal")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("trained on the default shower; 68 % test-bootstrap intervals", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score every classifier (resumes)")
    r.add_argument("--data", required=True, help="task sample directory (default shower)")
    r.add_argument("--vincia", required=True, help="task sample directory (Vincia shower)")
    r.add_argument("--out", type=Path, default=Path("runs/robustness"))
    r.add_argument("--model", default="hepfm-base", help="pretrained model [hepfm-base]")
    r.add_argument("--modes", default=",".join(MODES))
    p = sub.add_parser("report", help="write benchmarks/results/robustness/")
    p.add_argument("out", type=Path)
    p.add_argument("--results", type=Path,
                   default=Path(__file__).parent / "results" / "robustness")
    args = parser.parse_args()
    if args.command == "run":
        run(args.data, args.vincia, args.out, args.model, tuple(args.modes.split(",")))
    else:
        report(args.out, args.results)
        print(json.dumps(json.loads((args.results / "models.json").read_text()), indent=1))


if __name__ == "__main__":
    main()
