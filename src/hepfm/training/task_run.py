"""``hepfm finetune`` and ``hepfm scan``: tasks end to end, from samples to saved results.

A fine-tuning run directory holds ``config.yaml`` + ``model.safetensors`` (the fine-tuned
model with its ``task`` head, loadable with ``hepfm.load_pretrained``), ``metrics.json``,
``roc.csv`` and ``roc.png``. A scan directory holds ``scan.csv`` (one row per run),
``summary.csv``, ``label_efficiency.csv``, ``learning_curve_<task>.png``, ``compute.csv`` and
``models.json`` (name, version and weights SHA-256 of each pretrained model label).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hepfm.analysis.plots import plot_roc
from hepfm.analysis.significance import Yields
from hepfm.atomic import write_text
from hepfm.data.variations import Variation, parse_variation
from hepfm.errors import HepfmError, UnknownNameError
from hepfm.hub import available_models, load_pretrained, resolve_model_dir
from hepfm.models.foundation import FoundationModel
from hepfm.models.model_dir import identity_of
from hepfm.pretrained import DEFAULT_MODEL
from hepfm.samples import ensure_task_samples
from hepfm.taskdata import (
    DEFAULT_EVENTS_PER_PROCESS,
    check_task_events,
    load_task_events,
    split_task,
)
from hepfm.tasks import Task
from hepfm.training.assess import assess
from hepfm.training.finetune import FinetuneConfig, finetune, prepare_model
from hepfm.training.scan import MODEL_FREE_MODES, SCAN_MODES, run_scan, summarise_scan

DEFAULT_TRAIN_SIZE = 2000


def resolve_model(source: str | None) -> FoundationModel:
    """The pretrained model to start from: a run directory, a shipped name, or the default."""
    if source is None:
        if DEFAULT_MODEL not in available_models():
            raise HepfmError(
                f"no shipped model '{DEFAULT_MODEL}' in this installation; pretrain one with "
                "'hepfm pretrain --processes all --out runs/pretrain' and pass "
                "--from runs/pretrain")
        source = DEFAULT_MODEL
    return load_pretrained(source)


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, float) and not abs(v) < float("inf") else v)
            for k, v in d.items()}


def finetune_task(task: Task, source: str | None = None, mode: str = "full",
                  train_size: int | None = DEFAULT_TRAIN_SIZE, epochs: int = 30, seed: int = 0,
                  out: str | Path | None = None, data: str | Path | None = None,
                  events_per_process: int = DEFAULT_EVENTS_PER_PROCESS,
                  generate: bool = False, progress: bool = True,
                  allow_overlap: bool = False, device: str = "auto",
                  yields: Yields | None = None, calibrate: bool = False,
                  variations: Sequence[str | Variation] = ()) -> dict[str, Any]:
    """Fine-tune on one task, evaluate on its fixed test set, write the run directory.
    Training runs on `device` (a Lightning accelerator: auto, cpu, cuda, gpu or mps).
    The evaluation (:func:`~hepfm.training.assess.assess`) adds significance for `yields`,
    calibration (temperature scaling on the validation events with `calibrate`) and the
    shifts on each of `variations` (names of :mod:`hepfm.data.variations`).

    The task's events must not be events the model was pretrained on
    (:func:`hepfm.provenance.check_disjoint`); with `allow_overlap` the overlap is recorded
    in ``metrics.json`` instead.
    """
    pretrained = resolve_model(source)
    path = ensure_task_samples(task.processes, data, events_per_process, generate)
    overlap = ([] if mode in MODEL_FREE_MODES else
               check_task_events(task, path, events_per_process,
                                 {source or DEFAULT_MODEL: pretrained},
                                 allow_overlap))
    table = load_task_events(task, path, events_per_process, cache_dir=path / ".cache")
    splits = split_task(table, train_size, seed)
    model = prepare_model(pretrained, "task", mode, seed=seed)
    res = finetune(model, splits.train, splits.val, "task",
                   FinetuneConfig(mode=mode, epochs=epochs, seed=seed, progress_bar=progress,
                                  accelerator=device))
    chosen = [parse_variation(v) for v in variations]
    varied = {v.label: split_task(load_task_events(task, path, events_per_process,
                                                   cache_dir=path / ".cache", variation=v),
                                  train_size, seed).test for v in chosen}
    result = assess(res.model, "task", splits.test, val=splits.val, yields=yields,
                    calibrate_on_val=calibrate, varied=varied)
    metrics, roc = result.metrics, result.roc
    out_dir = Path(out or Path("runs") / f"finetune-{task.name}-{mode}-{seed}")
    out_dir.mkdir(parents=True, exist_ok=True)
    result.write(out_dir, task.name)
    res.model.save_pretrained(out_dir, task=task.name, mode=mode, source=str(source),
                              train_size=len(splits.train), seed=seed,
                              base_model=pretrained.identity)
    summary = {"task": task.name, "mode": mode, "from": source or DEFAULT_MODEL,
               "from_model": pretrained.identity,
               "train_events": len(splits.train), "val_events": len(splits.val),
               "test_events": len(splits.test), **metrics,
               "train_seconds": res.train_seconds, "epochs_to_best": res.best_epoch,
               "epochs_run": res.epochs_run, "seed": seed, "history": res.history,
               "data": str(path), "pretraining_overlap": overlap,
               "variation_settings": {v.label: v.to_dict() for v in chosen}}
    write_text(out_dir / "metrics.json", json.dumps(_json_safe(summary), indent=2))
    write_text(out_dir / "roc.csv", roc.to_csv(index=False))
    plot_roc({f"{mode} (AUC {metrics['auc']:.3f})": roc}, out_dir / "roc.png", title=task.name)
    summary["out_dir"] = str(out_dir)
    return summary


def scan_tasks(tasks: list[Task], models: dict[str, str | None], sizes: list[int],
               modes: list[str], seeds: int, out: str | Path, data: str | Path | None = None,
               epochs: int = 30, events_per_process: int | None = None,
               generate: bool = False, pretrain_seconds: float | None = None,
               allow_overlap: bool = False, n_boot: int = 1000, device: str = "auto",
               yields: Yields | None = None, variations: Sequence[str | Variation] = ()
               ) -> Path:
    """Learning curves for every task (modes of :data:`~hepfm.training.scan.SCAN_MODES`);
    stores every run in `out` (see :mod:`hepfm.training.scan`), then writes the summary,
    plots and compute tables of the directory (with `n_boot` test-set resamples; the
    significance for `yields`; ``variations.csv``: the shifts on each of `variations`, every
    trained model scored on the varied test events). Networks train on `device` (as in
    :func:`finetune_task`)."""
    chosen = [parse_variation(v) for v in variations]
    for m in modes:
        if m not in SCAN_MODES:
            raise UnknownNameError("scan mode", m, list(SCAN_MODES))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = scan_models(models, modes)
    need = max(sizes) * 2 + 400
    frames = []
    for task in tasks:
        path = ensure_task_samples(task.processes, data, events_per_process or need, generate)
        if any(m not in MODEL_FREE_MODES for m in modes):
            check_task_events(task, path, events_per_process,
                              {models[label] or DEFAULT_MODEL: model
                               for label, model in loaded.items()},
                              allow_overlap)
        frames.append(run_scan(task, path, loaded, sizes, modes, seeds, out_dir,
                               FinetuneConfig(epochs=epochs, accelerator=device),
                               events_per_process, variations=chosen))
    summarise_with_costs(out_dir, models, bool(loaded), n_boot, pretrain_seconds,
                         fallback=pd.concat(frames, ignore_index=True), yields=yields)
    return out_dir


def scan_models(models: dict[str, str | None], modes: list[str]) -> dict[str, FoundationModel]:
    """The pretrained models ({label: model}) of a scan in `modes`: none for ``bdt`` alone
    (``scratch`` takes its architecture and normalisation from the first one)."""
    if all(m == "bdt" for m in modes):
        return {}
    return {label: resolve_model(src) for label, src in models.items()}


def summarise_with_costs(out_dir: Path, models: dict[str, str | None], used_models: bool,
                         n_boot: int, pretrain_seconds: float | None = None,
                         fallback: pd.DataFrame | None = None,
                         yields: Yields | None = None) -> None:
    """Summarise the scan directory (:func:`~hepfm.training.scan.summarise_scan`) with the
    pretraining time of each model (`pretrain_seconds`, else what its directory records;
    kept in ``pretrain_seconds.json`` for ``--summarise-only`` when `used_models`, as the
    models' identities are in ``models.json``)."""
    costs: float | dict[str, float] = pretrain_seconds if pretrain_seconds is not None else {
        label: _pretrain_seconds(src) or float("nan") for label, src in models.items()}
    if isinstance(costs, dict) and used_models:
        path = out_dir / "pretrain_seconds.json"
        known = json.loads(path.read_text()) if path.is_file() else {}
        write_text(path, json.dumps({**known, **costs}, indent=1))
    if used_models:
        record_models(out_dir, models)
    # the whole directory (other scans may have added tasks), or the `fallback` rows if it
    # holds runs with other settings
    summarise_scan(out_dir, None, costs, n_boot=n_boot, fallback=fallback, yields=yields)


def record_models(out_dir: Path, models: dict[str, str | None]) -> None:
    """Add the name, version and weights SHA-256 of each model label to ``models.json``."""
    path = out_dir / "models.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    known.update({label: identity_of(src or DEFAULT_MODEL) for label, src in models.items()})
    write_text(path, json.dumps(known, indent=1))


def _pretrain_seconds(source: str | None) -> float | None:
    """Pretraining wall time recorded in the model directory's metrics.json, if any."""
    metrics = resolve_model_dir(source or DEFAULT_MODEL) / "metrics.json"
    if not metrics.is_file():
        return None
    return json.loads(metrics.read_text()).get("train_time_s")
