"""Learning curves (AUC against training size, per mode) and the compute accounting.

``run_scan`` fine-tunes every (pretrained model, mode, training size, seed) on a task and
appends one tidy row per run to ``scan.csv`` as soon as it finishes, so an interrupted scan
resumes where it stopped. ``compute_accounting`` reads those rows and answers: how much
training time does fine-tuning need to match the best from-scratch AUC, and after how many
tasks does the one-off pretraining cost pay for itself?
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from hepfm.atomic import write_text
from hepfm.errors import UnknownNameError
from hepfm.models.foundation import FoundationModel
from hepfm.tasks import Task
from hepfm.training.finetune import (
    MODES,
    FinetuneConfig,
    evaluate,
    finetune,
    prepare_model,
)
from hepfm.training.taskdata import load_task_events, split_task

COLUMNS = ("task", "model", "mode", "train_size", "seed", "auc", "accuracy", "rejection_50",
           "rejection_70", "train_seconds", "epochs", "best_epoch")
KEY = ("task", "model", "mode", "train_size", "seed")


def run_scan(task: Task, data: str | Path, models: Mapping[str, FoundationModel],
             sizes: Sequence[int], modes: Sequence[str], seeds: int | Sequence[int],
             out_csv: str | Path, config: FinetuneConfig | None = None,
             events_per_process: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Fine-tune each model of `models` ({label: model}) in each mode, size and seed.

    ``scratch`` runs once per (size, seed), whatever the number of models (its model label
    is ``none``). Rows already in `out_csv` are kept and not run again.
    """
    for m in modes:
        if m not in MODES:
            raise UnknownNameError("fine-tuning mode", m, list(MODES))
    if not models:
        raise ValueError("run_scan needs at least one pretrained model")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    done = pd.read_csv(out_csv) if out_csv.is_file() else pd.DataFrame(columns=COLUMNS)
    have = {tuple(r) for r in done[list(KEY)].astype(str).itertuples(index=False)}
    runs = [(label, mode, size, seed) for size in sizes for seed in seed_list for mode in modes
            for label in (["none"] if mode == "scratch" else list(models))]
    runs = [r for r in runs if (task.name, *map(str, r)) not in have]
    if not runs:
        return done
    table = load_task_events(task, data, events_per_process,
                             cache_dir=Path(data) / ".cache")
    base = config or FinetuneConfig()
    rows = done.to_dict("records")
    for label, mode, size, seed in tqdm(runs, desc=f"scan {task.name}", disable=not progress):
        splits = split_task(table, size, seed)
        source = models[label] if label != "none" else next(iter(models.values()))
        cfg = replace(base, mode=mode, seed=seed)
        model = prepare_model(source, "task", mode, seed=seed)
        res = finetune(model, splits.train, splits.val, "task", cfg)
        metrics, _ = evaluate(res.model, splits.test, "task")
        rows.append({"task": task.name, "model": label, "mode": mode, "train_size": size,
                     "seed": seed, **{k: metrics[k] for k in COLUMNS[5:9]},
                     "train_seconds": res.train_seconds, "epochs": res.epochs_run,
                     "best_epoch": res.best_epoch})
        write_text(out_csv, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
    return pd.DataFrame(rows, columns=COLUMNS)


def curve_label(frame: pd.DataFrame) -> pd.Series:
    """``scratch`` or ``<mode> (<model>)``: one learning curve each."""
    many = frame.loc[frame["mode"] != "scratch", "model"].nunique() > 1
    return frame.apply(lambda r: r["mode"] if r["mode"] == "scratch" or not many
                       else f"{r['mode']} ({r['model']})", axis=1)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of AUC and train time over seeds, per curve and size."""
    f = frame.assign(curve=curve_label(frame))
    g = f.groupby(["task", "curve", "train_size"])
    out = g.agg(auc_mean=("auc", "mean"), auc_std=("auc", "std"), seeds=("seed", "count"),
                seconds_mean=("train_seconds", "mean"), epochs_mean=("best_epoch", "mean"))
    return out.reset_index()


def compute_accounting(frame: pd.DataFrame, pretrain_seconds: float | Mapping[str, float]
                       ) -> tuple[pd.DataFrame, dict[str, int | None]]:
    """Training time for scratch to reach its best mean AUC and for each fine-tuned curve
    to match it, per task and summed; and, per curve, the number of tasks after which the
    one-off pretraining time (one number, or one per model label) is paid back by the time
    saved (None: never)."""
    s = summarise(frame)
    model_of = dict(zip(curve_label(frame), frame["model"], strict=True))
    rows = []
    for (task, curve), tuned in s[s["curve"] != "scratch"].groupby(["task", "curve"]):
        scratch = s[(s["task"] == task) & (s["curve"] == "scratch")]
        if scratch.empty:
            continue
        best = scratch.loc[scratch["auc_mean"].idxmax()]
        reach = tuned.sort_values("train_size")
        reach = reach[reach["auc_mean"] >= best["auc_mean"]]
        hit = reach.iloc[0] if len(reach) else None
        rows.append({
            "task": task, "curve": curve, "scratch_best_auc": best["auc_mean"],
            "scratch_size": int(best["train_size"]), "scratch_seconds": best["seconds_mean"],
            "finetune_size": None if hit is None else int(hit["train_size"]),
            "finetune_auc": None if hit is None else hit["auc_mean"],
            "finetune_seconds": None if hit is None else hit["seconds_mean"],
            "saved_seconds": None if hit is None else best["seconds_mean"] - hit["seconds_mean"],
        })
    table = pd.DataFrame(rows)
    breakeven: dict[str, int | None] = {}
    if table.empty:
        return table, breakeven
    totals = []
    for curve, t in table.groupby("curve", sort=False):
        saved = t["saved_seconds"].dropna()
        per_task = saved.mean() if len(saved) else float("nan")
        cost = pretrain_seconds if not isinstance(pretrain_seconds, Mapping) \
            else pretrain_seconds.get(model_of[curve], float("nan"))
        breakeven[curve] = math.ceil(cost / per_task) if per_task > 0 and cost == cost else None
        reached = t[t["finetune_size"].notna()]  # sums over the tasks where it caught up
        totals.append({"task": f"total ({len(reached)}/{len(t)} tasks reached)",
                       "curve": curve, "pretrain_seconds": cost, **{
                           k: reached[k].sum() for k in ("scratch_seconds", "finetune_seconds",
                                                         "saved_seconds")}})
    table = pd.concat([table, pd.DataFrame(totals)], ignore_index=True)
    return table, breakeven
