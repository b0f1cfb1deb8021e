"""``hepfm finetune`` and ``hepfm scan``: a task end to end, from its events to saved results.

One pipeline for every task, built-in or of the user's own files (a
:class:`~hepfm.taskdata.TaskData`): read the events, check them against the model's
pretraining events (:func:`~hepfm.taskdata.check_overlap`), split them
(:func:`~hepfm.taskdata.split_task`), train, evaluate, write the run record.

A fine-tuning run directory holds ``config.yaml`` + ``model.safetensors`` (the fine-tuned
model with its ``task`` head, loadable with ``hepfm.load_pretrained``), ``metrics.json``,
``data.json`` (for the train, validation and test events: every file, the SHA-256 of its
content, its entry count and the entry ranges used), ``roc.csv`` and ``roc.png``. With a
weight branch, the training loss uses the weights rescaled per class
(:func:`~hepfm.taskdata.class_balanced`) and the test metrics the raw weights
(``auc_unweighted`` is kept too). A scan directory holds ``scan.csv`` (one row per run),
``summary.csv``, ``learning_curve_<task>.png`` and ``compute.csv``
(:mod:`hepfm.training.scan`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepfm import defaults
from hepfm.analysis.metrics import binary_metrics
from hepfm.analysis.plots import plot_roc
from hepfm.atomic import refuse_existing, write_json, write_text
from hepfm.data.labelled import LabelledEvents
from hepfm.hub import load_model, parse_models, resolve_model_dir
from hepfm.models.foundation import FoundationModel
from hepfm.pretrained import DEFAULT_MODEL
from hepfm.taskdata import SPLIT, Splits, TaskData, check_overlap, class_balanced, split_task
from hepfm.tasks import Task
from hepfm.training.finetune import (
    FinetuneConfig,
    FinetuneResult,
    evaluate,
    finetune,
    predict_proba,
    prepare_model,
)
from hepfm.training.scan import (
    MODEL_FREE_MODES,
    ScanStore,
    check_modes,
    digest,
    scan_splits,
    summarise_scan,
    table_identity,
)


def _task_data(task: TaskData | Task | str) -> TaskData:
    return task if isinstance(task, TaskData) else TaskData.from_task(task)


def finetune_task(task: TaskData | Task | str, model: str | None = None, mode: str = "full",
                  train_size: int | None = None, epochs: int = defaults.EPOCHS,
                  seed: int = defaults.SEED, out: str | Path | None = None, *,
                  force: bool = False, allow_overlap: bool = False, device: str = "auto",
                  progress: bool = True) -> dict[str, Any]:
    """Fine-tune `model` (a model directory or shipped name; default
    :data:`~hepfm.pretrained.DEFAULT_MODEL`) on a task, evaluate it on the task's test set
    and write the run directory `out` (default ``runs/finetune-<task>-<mode>-<seed>``);
    returns the run record (``metrics.json``) with ``out_dir``.

    `task` is a :class:`~hepfm.taskdata.TaskData`, or a task of processes (a built-in
    task's name) read from the default task samples. `train_size` training events
    (class-balanced; all but the validation share when None). An `out` that holds files is
    refused unless `force`. The task's events must not be events the model was pretrained
    on; with `allow_overlap` the overlap is recorded in ``metrics.json`` instead. Training
    runs on `device` (a Lightning accelerator: auto, cpu, cuda, gpu or mps).
    """
    FinetuneConfig(mode=mode)  # an unknown mode fails before anything is read
    data = _task_data(task)
    out_dir = refuse_existing(out or Path("runs") / f"finetune-{data.name}-{mode}-{seed}",
                              force)
    pretrained = load_model(model)
    events, test = data.load()
    overlap = [] if mode in MODEL_FREE_MODES else check_overlap(
        [ev for ev in (events, test) if ev is not None], {model or DEFAULT_MODEL: pretrained},
        allow_overlap)
    splits = split_task(events, train_size, seed, test=test)
    res, metrics, roc = _train(pretrained, splits, FinetuneConfig(
        mode=mode, epochs=epochs, seed=seed, progress_bar=progress, accelerator=device))
    record = {"task": data.name, "mode": mode, "from": model or DEFAULT_MODEL,
              "train_events": len(splits.train), "val_events": len(splits.val),
              "test_events": len(splits.test), "explicit_test_set": test is not None,
              "weighted": splits.test.weight is not None, **metrics,
              "train_seconds": res.train_seconds, "epochs_to_best": res.best_epoch,
              "epochs_run": res.epochs_run, "seed": seed, "history": res.history,
              "pretraining_overlap": overlap}
    out_dir.mkdir(parents=True, exist_ok=True)
    res.model.save_pretrained(out_dir, task=data.name, mode=mode, source=str(model),
                              train_size=len(splits.train), seed=seed,
                              inputs={"branch_map": data.branch_map.name,
                                      "label_branch": data.label_branch,
                                      "weight_branch": data.weight_branch})
    write_json(out_dir / "metrics.json", record)
    write_json(out_dir / "data.json", {k: getattr(splits, k).provenance()
                                       for k in ("train", "val", "test")}, indent=1)
    write_text(out_dir / "roc.csv", roc.to_csv(index=False))
    plot_roc({f"{mode} (AUC {metrics['auc']:.3f})": roc}, out_dir / "roc.png", title=data.name)
    return {**record, "out_dir": str(out_dir)}


def _train(pretrained: FoundationModel, splits: Splits[LabelledEvents], config: FinetuneConfig
           ) -> tuple[FinetuneResult, dict[str, float], pd.DataFrame]:
    """Fine-tune on the splits (weighted when they carry weights) and score the test set."""
    model = prepare_model(pretrained, "task", config.mode, seed=config.seed)
    tr, va, te = splits.train, splits.val, splits.test
    res = finetune(model, tr.table, va.table, "task", config,
                   sample_weight=class_balanced(tr.weight, tr.y),
                   val_sample_weight=class_balanced(va.weight, va.y))
    metrics, roc = evaluate(res.model, te.table, "task", sample_weight=te.weight)
    if te.weight is not None:
        scores = predict_proba(res.model, te.table, "task")
        metrics["auc_unweighted"] = binary_metrics(te.y, scores)["auc"]
    return res, metrics, roc


def scan_tasks(tasks: Sequence[TaskData | Task | str],
               models: str | Mapping[str, str | None] | None = None,
               sizes: Sequence[int] = defaults.SCAN_SIZES,
               modes: Sequence[str] = defaults.SCAN_MODES,
               seeds: int | Sequence[int] = defaults.SCAN_SEEDS,
               out: str | Path = "runs/scan", epochs: int = defaults.EPOCHS, *,
               resume: bool = False, pretrain_seconds: float | None = None,
               allow_overlap: bool = False, n_boot: int = defaults.N_BOOT,
               device: str = "auto", progress: bool = True) -> Path:
    """Learning curves for every task (modes of :data:`~hepfm.training.scan.SCAN_MODES`),
    each run stored in the scan directory `out` (see :mod:`hepfm.training.scan`), then the
    summary, plots and compute tables of the directory (with `n_boot` test-set resamples).

    `models` are the pretrained models to compare (:func:`hepfm.hub.parse_models`:
    ``NAME_OR_DIR``, ``label=DIR,...`` or a mapping; default the default model); `seeds`
    a list of seeds (an int n: seeds 0..n-1). A scan directory that holds files is refused
    unless `resume` (finished runs with identical settings are then reused, and several
    scans may write to one directory at once). Networks train on `device`.
    """
    check_modes(modes)
    models = parse_models(models)
    out_dir = Path(out)
    if not resume:
        refuse_existing(out_dir, False, resume="--resume")
    loaded = scan_models(models, modes)
    frames = [scan_task(_task_data(t), loaded, sizes, modes, seeds, out_dir, epochs,
                        allow_overlap=allow_overlap, device=device, progress=progress,
                        sources=models)
              for t in tasks]
    summarise_with_costs(out_dir, models, bool(loaded), n_boot, pretrain_seconds,
                         fallback=pd.concat(frames, ignore_index=True))
    return out_dir


def scan_task(data: TaskData, models: Mapping[str, FoundationModel], sizes: Sequence[int],
              modes: Sequence[str], seeds: int | Sequence[int], out: str | Path,
              epochs: int = defaults.EPOCHS, *, allow_overlap: bool = False,
              device: str = "auto", progress: bool = True,
              sources: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """The runs of one task in the scan directory `out` (:func:`~hepfm.training.scan.
    scan_splits` with the splits of :func:`~hepfm.taskdata.split_task`); returns their rows.
    `models` are loaded models ({label: model}); `sources` their names, for messages."""
    events, test = data.load()
    parts = [ev for ev in (events, test) if ev is not None]
    if any(m not in MODEL_FREE_MODES for m in modes):  # pretrained weights are used
        check_overlap(parts, {str((sources or {}).get(label) or DEFAULT_MODEL): model
                              for label, model in models.items()}, allow_overlap)

    def split(size: int, seed: int) -> tuple[LabelledEvents, LabelledEvents, LabelledEvents]:
        s = split_task(events, size, seed, test=test)
        return s.train, s.val, s.test

    data_key = {"data_id": digest([table_identity(ev.table) for ev in parts] + [
                    np.ascontiguousarray(ev.weight).tobytes() for ev in parts
                    if ev.weight is not None]),
                "split": {**SPLIT, "test": "explicit" if test is not None else "fraction"}}
    files = sorted({f["path"] for ev in parts for f in ev.provenance()})
    return scan_splits(data.name, split, data_key, models, sizes, modes, seeds, out,
                       FinetuneConfig(epochs=epochs, accelerator=device), progress,
                       info={"data": files})


def scan_models(models: Mapping[str, str | None], modes: Sequence[str]
                ) -> dict[str, FoundationModel]:
    """The pretrained models ({label: model}) of a scan in `modes`: none for ``bdt`` alone
    (``scratch`` takes its architecture and normalisation from the first one)."""
    if all(m == "bdt" for m in modes):
        return {}
    return {label: load_model(src) for label, src in models.items()}


def summarise_with_costs(out_dir: Path, models: Mapping[str, str | None], used_models: bool,
                         n_boot: int, pretrain_seconds: float | None = None,
                         fallback: pd.DataFrame | None = None) -> None:
    """Summarise the scan directory (:func:`~hepfm.training.scan.summarise_scan`) with the
    pretraining time of each model (`pretrain_seconds`, else what its directory records;
    kept in ``pretrain_seconds.json`` for ``--summarise-only`` when `used_models`)."""
    costs: float | dict[str, float] = pretrain_seconds if pretrain_seconds is not None else {
        label: _pretrain_seconds(src) or float("nan") for label, src in models.items()}
    if isinstance(costs, dict) and used_models:
        path = ScanStore(out_dir).directory / "pretrain_seconds.json"
        known = json.loads(path.read_text()) if path.is_file() else {}
        write_text(path, json.dumps({**known, **costs}, indent=1))  # NaN: unknown
    # the whole directory (other scans may have added tasks), or the `fallback` rows if it
    # holds runs with other settings
    summarise_scan(out_dir, None, costs, n_boot=n_boot, fallback=fallback)


def _pretrain_seconds(source: str | None) -> float | None:
    """Pretraining wall time recorded in the model directory's metrics.json, if any."""
    metrics = resolve_model_dir(source or DEFAULT_MODEL) / "metrics.json"
    if not metrics.is_file():
        return None
    return json.loads(metrics.read_text()).get("train_time_s")


__all__ = ["finetune_task", "scan_models", "scan_task", "scan_tasks", "summarise_with_costs"]
