"""``hepfm finetune`` and ``hepfm scan`` on the user's own files (see :mod:`.userdata`).

The run directory is that of :func:`hepfm.training.task_run.finetune_task` plus
``data.json``: for the train, validation and test events, every file (path, SHA-256 of its
content, entry count) and the entry ranges used. With a weight branch, the training loss uses
the weights rescaled per class (:func:`~hepfm.training.userdata.class_balanced`) and the test
metrics (AUC, ROC, accuracy, rejections) the raw weights; ``auc_unweighted`` is kept too.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hepfm.analysis.metrics import binary_metrics
from hepfm.analysis.plots import plot_roc
from hepfm.analysis.significance import Yields
from hepfm.atomic import write_text
from hepfm.data.branches import BranchMap
from hepfm.data.btag import btag_mismatch
from hepfm.data.variations import Variation, parse_variation
from hepfm.training.assess import Assessment, assess
from hepfm.training.finetune import (
    FinetuneConfig,
    FinetuneResult,
    finetune,
    predict_proba,
    prepare_model,
)
from hepfm.training.scan import MODEL_FREE_MODES, digest, scan_splits, table_identity
from hepfm.training.task_run import (
    DEFAULT_MODEL,
    _json_safe,
    resolve_model,
    scan_models,
    summarise_with_costs,
)
from hepfm.training.userdata import (
    LabelledEvents,
    UserInputs,
    UserSplits,
    class_balanced,
    split_user_events,
)


def check_not_pretrained_on(model: Any, source: str | None, parts: list[LabelledEvents],
                            allow_overlap: bool = False) -> list[str]:
    """Refuse (or with `allow_overlap` list) events of `parts` that `model` was pretrained
    on (:func:`hepfm.provenance.check_disjoint`; files made by ``hepfm generate`` are
    matched by their Pythia seed stream, any other file by its content hash)."""
    from hepfm.provenance import check_disjoint, describe_file, pretraining_events

    records = [describe_file(f["path"], "own", a, b) for ev in parts
               for f in ev.provenance() for a, b in f["entries"]]
    seen = pretraining_events(getattr(model, "run_config", None))
    return check_disjoint(seen, records, str(source or DEFAULT_MODEL), allow_overlap)


def warn_if_read_otherwise(model: Any, branch_map: BranchMap, source: str | None) -> None:
    """Warn when `model` records another b-tagging rule than `branch_map` reads with."""
    recorded = ((getattr(model, "run_config", None) or {}).get("inputs") or {}).get("btag")
    differs = btag_mismatch(recorded, branch_map.btag)
    if differs:
        warnings.warn(f"model '{source or DEFAULT_MODEL}': {differs} (--btag)", stacklevel=2)


def _train(pretrained: Any, splits: UserSplits, mode: str, seed: int, config: FinetuneConfig,
           **assess_kw: Any) -> tuple[FinetuneResult, Assessment]:
    """Fine-tune on the splits (weighted when they carry weights) and score the test set
    (:func:`~hepfm.training.assess.assess` with `assess_kw`)."""
    model = prepare_model(pretrained, "task", mode, seed=seed)
    tr, va, te = splits.train, splits.val, splits.test
    res = finetune(model, tr.table, va.table, "task", replace(config, mode=mode, seed=seed),
                   sample_weight=class_balanced(tr.weight, tr.table.y),
                   val_sample_weight=class_balanced(va.weight, va.table.y))
    result = assess(res.model, "task", te.table, val=va.table, test_weight=te.weight,
                    val_weight=va.weight, **assess_kw)
    if te.weight is not None:
        scores = predict_proba(res.model, te.table, "task")
        result.metrics["auc_unweighted"] = binary_metrics(te.table.y, scores)["auc"]
    return res, result


def finetune_files(inputs: UserInputs, name: str = "custom", source: str | None = None,
                   mode: str = "full", train_size: int | None = None, epochs: int = 30,
                   seed: int = 0, out: str | Path | None = None, progress: bool = True,
                   allow_overlap: bool = False, device: str = "auto",
                   yields: Yields | None = None, calibrate: bool = False,
                   variations: Sequence[str | Variation] = ()) -> dict[str, Any]:
    """Fine-tune on the user's files (on `device`, a Lightning accelerator), evaluate on
    their test set, write the run directory. Significance (`yields`), calibration and
    `variations` as in :func:`hepfm.training.task_run.finetune_task`.

    The test and validation events must not be events the model was pretrained on."""
    pretrained = resolve_model(source)
    warn_if_read_otherwise(pretrained, inputs.branch_map, source)
    events, test = inputs.load()
    splits = split_user_events(events, test, train_size, seed)
    overlap = check_not_pretrained_on(pretrained, source, [splits.test, splits.val],
                                      allow_overlap)
    chosen = [parse_variation(v) for v in variations]
    varied = {}
    for v in chosen:  # the same split of the same events, read with the variation
        ev, te = replace(inputs, variation=v).load()
        varied[v.label] = split_user_events(ev, te, train_size, seed).test.table
    res, result = _train(pretrained, splits, mode, seed,
                         FinetuneConfig(epochs=epochs, progress_bar=progress,
                                        accelerator=device),
                         yields=yields, calibrate_on_val=calibrate, varied=varied)
    metrics, roc = result.metrics, result.roc
    out_dir = Path(out or Path("runs") / f"finetune-{name}-{mode}-{seed}")
    out_dir.mkdir(parents=True, exist_ok=True)
    result.write(out_dir, name)
    res.model.save_pretrained(out_dir, task=name, mode=mode, source=str(source),
                              train_size=len(splits.train), seed=seed,
                              base_model=pretrained.identity,
                              inputs={**inputs.branch_map.record(),
                                      "label_branch": inputs.label_branch,
                                      "weight_branch": inputs.weight_branch})
    summary = {"task": name, "mode": mode, "from": source or DEFAULT_MODEL,
               "from_model": pretrained.identity,
               "train_events": len(splits.train), "val_events": len(splits.val),
               "test_events": len(splits.test), "explicit_test_set": test is not None,
               "weighted": splits.test.weight is not None,
               "inputs": inputs.branch_map.record(), **metrics,
               "train_seconds": res.train_seconds, "epochs_to_best": res.best_epoch,
               "epochs_run": res.epochs_run, "seed": seed, "history": res.history,
               **({"pretraining_overlap": overlap} if overlap else {}),
               "variation_settings": {v.label: v.to_dict() for v in chosen}}
    write_text(out_dir / "metrics.json", json.dumps(_json_safe(summary), indent=2))
    write_text(out_dir / "roc.csv", roc.to_csv(index=False))
    write_text(out_dir / "data.json", json.dumps(
        {k: getattr(splits, k).provenance() for k in ("train", "val", "test")}, indent=1))
    plot_roc({f"{mode} (AUC {metrics['auc']:.3f})": roc}, out_dir / "roc.png", title=name)
    summary["out_dir"] = str(out_dir)
    return summary


def scan_files(inputs: UserInputs, models: dict[str, str | None], sizes: list[int],
               modes: list[str], seeds: int, out: str | Path, name: str = "custom",
               epochs: int = 30, progress: bool = True, allow_overlap: bool = False,
               n_boot: int = 1000, device: str = "auto", yields: Yields | None = None,
               variations: Sequence[str | Variation] = ()) -> Path:
    """Learning curves on the user's files, as ``hepfm scan`` makes them for built-in tasks
    (:func:`hepfm.training.scan.scan_splits`: the BDT baseline, one stored run per file,
    resumable, bootstrap intervals of the test events in ``summary.csv`` and
    ``differences.csv``). Splits are those of :func:`finetune_files`; with a weight branch,
    training uses the weights rescaled per class and the test metrics the raw weights. Networks
    train on `device` (a Lightning accelerator). Significance for `yields`; every trained
    model is also scored on the test events read with each of `variations`."""
    loaded = scan_models(models, modes)
    for label, model in loaded.items():
        warn_if_read_otherwise(model, inputs.branch_map, models[label])
    events, test = inputs.load()
    if any(m not in MODEL_FREE_MODES for m in modes):  # pretrained weights are used
        for label, model in loaded.items():  # test and validation come from these events
            check_not_pretrained_on(model, models[label],
                                    [events] + ([test] if test is not None else []),
                                    allow_overlap)

    def splitter(events: LabelledEvents, test: LabelledEvents | None) -> Any:
        def split(size: int, seed: int
                  ) -> tuple[LabelledEvents, LabelledEvents, LabelledEvents]:
            s = split_user_events(events, test, size, seed)
            return s.train, s.val, s.test
        return split

    split = splitter(events, test)
    varied = {v.label: splitter(*replace(inputs, variation=v).load())
              for v in map(parse_variation, variations)}

    parts = [ev for ev in (events, test) if ev is not None]
    data_key = {"data_id": digest([table_identity(ev.table) for ev in parts] + [
                    np.ascontiguousarray(ev.weight).tobytes() for ev in parts
                    if ev.weight is not None]),
                "split": {"test": "explicit" if test is not None else "fraction 0.25"}}
    files = sorted({f["path"] for ev in parts for f in ev.provenance()})
    frame = scan_splits(name, split, data_key, loaded, sizes, modes, seeds, out,
                        FinetuneConfig(epochs=epochs, accelerator=device), progress,
                        info={"data": files, "inputs": inputs.branch_map.record()},
                        variations=varied)
    out_dir = Path(out)
    summarise_with_costs(out_dir, models, bool(loaded), n_boot, fallback=frame, yields=yields)
    return out_dir
