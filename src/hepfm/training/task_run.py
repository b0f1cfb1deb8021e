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
(``auc_unweighted`` is kept too). The evaluation (:func:`~hepfm.training.assess.assess`)
adds significance for given yields, calibration and the shifts on systematic variations
(:mod:`hepfm.data.variations`). A scan directory holds ``scan.csv`` (one row per run),
``summary.csv``, ``label_efficiency.csv``, ``learning_curve_<task>.png``, ``compute.csv``
and ``models.json`` (name, version and weights SHA-256 of each pretrained model label;
:mod:`hepfm.training.scan`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepfm import defaults
from hepfm.analysis.metrics import binary_metrics
from hepfm.analysis.plots import plot_roc
from hepfm.analysis.significance import Yields
from hepfm.atomic import refuse_existing, write_json, write_text
from hepfm.data.branches import BranchMap
from hepfm.data.btag import SET_BTAG, btag_mismatch
from hepfm.data.labelled import LabelledEvents
from hepfm.data.variations import Variation, parse_variation
from hepfm.errors import ArgumentError, InputDataError
from hepfm.hub import load_model, parse_models, resolve_model_dir
from hepfm.models.foundation import FoundationModel
from hepfm.models.model_dir import identity_of
from hepfm.pretrained import DEFAULT_MODEL
from hepfm.taskdata import (
    SPLIT,
    Splits,
    TaskData,
    check_overlap,
    class_balanced,
    same_content,
    split_task,
)
from hepfm.tasks import Task
from hepfm.training.assess import Assessment, assess
from hepfm.training.finetune import (
    FinetuneConfig,
    FinetuneResult,
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
                  progress: bool = True, yields: Yields | None = None,
                  calibrate: bool = False, variations: Sequence[str | Variation] = ()
                  ) -> dict[str, Any]:
    """Fine-tune `model` (a model directory or shipped name; default
    :data:`~hepfm.pretrained.DEFAULT_MODEL`) on a task, evaluate it on the task's test set
    and write the run directory `out` (default ``runs/finetune-<task>-<mode>-<seed>``);
    returns the run record (``metrics.json``) with ``out_dir``.

    `task` is a :class:`~hepfm.taskdata.TaskData`, or a task of processes (a built-in
    task's name) read from the default task samples. `train_size` training events
    (class-balanced; all but the validation share when None). An `out` that holds files is
    refused unless `force`. The task's events must not be events the model was pretrained
    on; with `allow_overlap` the overlap is recorded in ``metrics.json`` instead. Training
    runs on `device` (a Lightning accelerator: auto, cpu, cuda, gpu or mps). The evaluation
    (:func:`~hepfm.training.assess.assess`) adds significance for `yields`, calibration
    (temperature scaling on the validation events with `calibrate`) and the shifts on each
    of `variations` (names of :mod:`hepfm.data.variations`: the same split of the same
    events, read with the variation).
    """
    FinetuneConfig(mode=mode)  # an unknown mode fails before anything is read
    data = _task_data(task)
    out_dir = refuse_existing(out or Path("runs") / f"finetune-{data.name}-{mode}-{seed}",
                              force)
    chosen = [parse_variation(v) for v in variations]
    pretrained = load_model(model)
    warn_if_read_otherwise(pretrained, data.branch_map, model)
    data = data.resolved()
    events, test = data.load()
    overlap = [] if mode in MODEL_FREE_MODES else check_overlap(
        [ev for ev in (events, test) if ev is not None], {model or DEFAULT_MODEL: pretrained},
        allow_overlap)
    splits = split_task(events, train_size, seed, test=test)
    varied = {}
    for v in chosen:  # the same split of the same events, read with the variation
        ev, te = replace(data, variation=v).load()
        varied[v.label] = split_task(ev, train_size, seed, test=te).test.table
    res, result = _train(pretrained, splits, FinetuneConfig(
        mode=mode, epochs=epochs, seed=seed, progress_bar=progress, accelerator=device),
        yields=yields, calibrate_on_val=calibrate, varied=varied)
    metrics, roc = result.metrics, result.roc
    record = {"task": data.name, "mode": mode, "from": model or DEFAULT_MODEL,
              "from_model": pretrained.identity,
              "train_events": len(splits.train), "val_events": len(splits.val),
              "test_events": len(splits.test), "explicit_test_set": test is not None,
              "weighted": splits.test.weight is not None,
              "inputs": {**data.branch_map.record(), "on_invalid": data.on_invalid},
              **metrics,
              "train_seconds": res.train_seconds, "epochs_to_best": res.best_epoch,
              "epochs_run": res.epochs_run, "seed": seed, "history": res.history,
              "pretraining_overlap": overlap,
              "variation_settings": {v.label: v.to_dict() for v in chosen}}
    out_dir.mkdir(parents=True, exist_ok=True)
    result.write(out_dir, data.name)
    res.model.save_pretrained(out_dir, task=data.name, mode=mode, source=str(model),
                              train_size=len(splits.train), seed=seed,
                              base_model=pretrained.identity,
                              inputs={**data.branch_map.record(),
                                      "on_invalid": data.on_invalid,
                                      "label_branch": data.label_branch,
                                      "weight_branch": data.weight_branch})
    write_json(out_dir / "metrics.json", record)
    write_json(out_dir / "data.json", {k: getattr(splits, k).provenance()
                                       for k in ("train", "val", "test")}, indent=1)
    write_text(out_dir / "roc.csv", roc.to_csv(index=False))
    plot_roc({f"{mode} (AUC {metrics['auc']:.3f})": roc}, out_dir / "roc.png", title=data.name)
    return {**record, "out_dir": str(out_dir)}


def _train(pretrained: FoundationModel, splits: Splits[LabelledEvents], config: FinetuneConfig,
           **assess_kw: Any) -> tuple[FinetuneResult, Assessment]:
    """Fine-tune on the splits (weighted when they carry weights) and score the test set
    (:func:`~hepfm.training.assess.assess` with `assess_kw`)."""
    model = prepare_model(pretrained, "task", config.mode, seed=config.seed)
    tr, va, te = splits.train, splits.val, splits.test
    res = finetune(model, tr.table, va.table, "task", config,
                   sample_weight=class_balanced(tr.weight, tr.y),
                   val_sample_weight=class_balanced(va.weight, va.y))
    result = assess(res.model, "task", te.table, val=va.table, test_weight=te.weight,
                    val_weight=va.weight, **assess_kw)
    if te.weight is not None:
        scores = predict_proba(res.model, te.table, "task")
        result.metrics["auc_unweighted"] = binary_metrics(te.y, scores)["auc"]
    return res, result


def warn_if_read_otherwise(model: Any, branch_map: BranchMap, source: str | None) -> None:
    """Warn when `model` records another b-tagging rule than `branch_map` reads with."""
    recorded = ((getattr(model, "run_config", None) or {}).get("inputs") or {}).get("btag")
    differs = btag_mismatch(recorded, branch_map.btag)
    if differs:
        warnings.warn(f"model '{source or DEFAULT_MODEL}': {differs} ({SET_BTAG})", stacklevel=2)


def scan_tasks(tasks: Sequence[TaskData | Task | str],
               models: str | Mapping[str, str | None] | None = None,
               sizes: Sequence[int] = defaults.SCAN_SIZES,
               modes: Sequence[str] = defaults.SCAN_MODES,
               seeds: int | Sequence[int] = defaults.SCAN_SEEDS,
               out: str | Path = "runs/scan", epochs: int = defaults.EPOCHS, *,
               resume: bool = False, pretrain_seconds: float | None = None,
               allow_overlap: bool = False, n_boot: int = defaults.N_BOOT,
               device: str = "auto", progress: bool = True, yields: Yields | None = None,
               variations: Sequence[str | Variation] = (),
               test_samples: Mapping[str, str | os.PathLike[str]] | None = None) -> Path:
    """Learning curves for every task (modes of :data:`~hepfm.training.scan.SCAN_MODES`),
    each run stored in the scan directory `out` (see :mod:`hepfm.training.scan`), then the
    summary, plots and compute tables of the directory (with `n_boot` test-set resamples).

    `models` are the pretrained models to compare (:func:`hepfm.hub.parse_models`:
    ``NAME_OR_DIR``, ``label=DIR,...`` or a mapping; default the default model); `seeds`
    a list of seeds (an int n: seeds 0..n-1). A scan directory that holds files is refused
    unless `resume` (finished runs with identical settings are then reused, and several
    scans may write to one directory at once). Networks train on `device`. Significance for
    `yields`; every trained model is also scored on the test events read with each of
    `variations` (``variations.csv``), and on the events of each of `test_samples` ({name:
    task sample directory}: the same processes made otherwise, for example with another
    parton shower; ``test_samples.csv``).
    """
    check_modes(modes)
    chosen = [parse_variation(v) for v in variations]
    models = parse_models(models)
    out_dir = Path(out)
    if not resume:
        refuse_existing(out_dir, None, resume="resume")
    loaded = scan_models(models, modes)
    frames = [scan_task(_task_data(t), loaded, sizes, modes, seeds, out_dir, epochs,
                        allow_overlap=allow_overlap, device=device, progress=progress,
                        sources=models, variations=chosen, test_samples=test_samples)
              for t in tasks]
    summarise_with_costs(out_dir, models, bool(loaded), n_boot, pretrain_seconds,
                         fallback=pd.concat(frames, ignore_index=True), yields=yields)
    return out_dir


def scan_task(data: TaskData, models: Mapping[str, FoundationModel], sizes: Sequence[int],
              modes: Sequence[str], seeds: int | Sequence[int], out: str | Path,
              epochs: int = defaults.EPOCHS, *, allow_overlap: bool = False,
              device: str = "auto", progress: bool = True,
              sources: Mapping[str, str | None] | None = None,
              variations: Sequence[Variation] = (),
              test_samples: Mapping[str, str | os.PathLike[str]] | None = None
              ) -> pd.DataFrame:
    """The runs of one task in the scan directory `out` (:func:`~hepfm.training.scan.
    scan_splits` with the splits of :func:`~hepfm.taskdata.split_task`); returns their rows.
    `models` are loaded models ({label: model}); `sources` their names, for messages; every
    trained model is also scored on the test events read with each of `variations`, and on
    all events of each of `test_samples` (:func:`other_test_samples`)."""
    for label, model in models.items():
        warn_if_read_otherwise(model, data.branch_map, (sources or {}).get(label))
    others = other_test_samples(data, test_samples or {})
    data = data.resolved()
    events, test = data.load()
    parts = [ev for ev in (events, test) if ev is not None]
    check_disjoint_files(parts, others)
    parts_checked = parts + list(others.values())
    if any(m not in MODEL_FREE_MODES for m in modes):  # pretrained weights are used
        check_overlap(parts_checked, {str((sources or {}).get(label) or DEFAULT_MODEL): model
                                      for label, model in models.items()}, allow_overlap)

    def splitter(events: LabelledEvents, test: LabelledEvents | None) -> Any:
        def split(size: int, seed: int
                  ) -> tuple[LabelledEvents, LabelledEvents, LabelledEvents]:
            s = split_task(events, size, seed, test=test)
            return s.train, s.val, s.test
        return split

    split = splitter(events, test)
    varied = {v.label: splitter(*replace(data, variation=v).load()) for v in variations}

    data_key = {"data_id": digest([table_identity(ev.table) for ev in parts] + [
                    np.ascontiguousarray(ev.weight).tobytes() for ev in parts
                    if ev.weight is not None]),
                "split": {**SPLIT, "test": "explicit" if test is not None else "fraction"}}
    files = sorted({f["path"] for ev in parts for f in ev.provenance()})
    return scan_splits(data.name, split, data_key, models, sizes, modes, seeds, out,
                       FinetuneConfig(epochs=epochs, accelerator=device), progress,
                       info={"data": files, "inputs": {**data.branch_map.record(),
                                                       "on_invalid": data.on_invalid},
                             "test_sample_data": {name: sorted({f["path"] for f in
                                                                ev.provenance()})
                                                  for name, ev in others.items()}},
                       variations=varied, test_samples=others)


def other_test_samples(data: TaskData, samples: Mapping[str, str | os.PathLike[str]]
                       ) -> dict[str, LabelledEvents]:
    """All events of the task's processes in each directory of `samples` ({name: task
    sample directory}), read as the task's own events are; only a task of processes has
    them."""
    task = data.samples.task if data.samples is not None else None
    if samples and task is None:
        found = f"task '{data.name}': other test samples"
        raise ArgumentError(f"{found} (test_samples) need a task of processes (a built-in "
                            "task, or process names as signal and background), not files"
                            ).for_cli(f"{found} (--test-sample) need a task of processes "
                                      "(--task, or process names as --signal and "
                                      "--background), not files")
    out = {}
    for name, directory in samples.items():
        if not Path(directory).is_dir():
            raise InputDataError(f"test sample '{name}': '{directory}' is not a directory")
        other = replace(TaskData.from_task(task, directory),  # type: ignore[arg-type]
                        branch_map=data.branch_map, on_invalid=data.on_invalid)
        out[name] = other.load()[0]
    return out


def check_disjoint_files(parts: Sequence[LabelledEvents],
                         others: Mapping[str, LabelledEvents]) -> None:
    """Refuse another test sample that holds a file of the task's own events."""
    for name, ev in others.items():
        if shared := same_content(parts, [ev]):
            path, own = shared[0]
            raise InputDataError(f"test sample '{name}': file '{path}' has the content of "
                                 f"the task's file '{own}'")


def scan_models(models: Mapping[str, str | None], modes: Sequence[str]
                ) -> dict[str, FoundationModel]:
    """The pretrained models ({label: model}) of a scan in `modes`: none for ``bdt`` alone
    (``scratch`` takes its architecture and normalisation from the first one)."""
    if all(m == "bdt" for m in modes):
        return {}
    return {label: load_model(src) for label, src in models.items()}


def summarise_with_costs(out_dir: Path, models: Mapping[str, str | None], used_models: bool,
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
        path = ScanStore(out_dir).directory / "pretrain_seconds.json"
        known = json.loads(path.read_text()) if path.is_file() else {}
        write_text(path, json.dumps({**known, **costs}, indent=1))  # NaN: unknown
    if used_models:
        record_models(out_dir, models)
    # the whole directory (other scans may have added tasks), or the `fallback` rows if it
    # holds runs with other settings
    summarise_scan(out_dir, None, costs, n_boot=n_boot, fallback=fallback, yields=yields)


def record_models(out_dir: Path, models: Mapping[str, str | None]) -> None:
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


__all__ = ["finetune_task", "scan_models", "scan_task", "scan_tasks", "summarise_with_costs"]
