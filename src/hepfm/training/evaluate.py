"""Predictions of a trained model on an EventTable, and the evaluation written to a run dir."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepfm.atomic import write_text
from hepfm.data import EventBatches, EventTable
from hepfm.models.foundation import FoundationModel
from hepfm.processes import get_process


@torch.no_grad()
def predict(model: FoundationModel, table: EventTable, batch_size: int = 1024,
            device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Logits of every head for all events of `table`, in table order (eval mode, fp32)."""
    device = torch.device(device) if device is not None else model.device
    was_training = model.training
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {}
    for batch in EventBatches(table, batch_size, shuffle=False, shard=False):
        for name, logits in model(batch.to(device)).items():
            chunks.setdefault(name, []).append(logits.float().cpu())
    model.train(was_training)
    return {k: torch.cat(v).numpy() for k, v in chunks.items()}


def class_scores(logits: np.ndarray, y: np.ndarray, processes: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Restrict multiclass logits to the columns of `processes`; labels become positions."""
    ids = np.array([get_process(p).label_id for p in processes])
    position = {int(label): k for k, label in enumerate(ids)}
    return logits[:, ids], np.array([position[int(t)] for t in y], dtype=np.int64)


def evaluate_split(model: FoundationModel, table: EventTable, processes: Sequence[str],
                   objective_heads: Sequence[str], batch_size: int = 1024,
                   mpm: Any = None, logits: dict[str, np.ndarray] | None = None,
                   n_boot: int = 1000) -> dict[str, Any]:
    """Accuracy, per-class accuracy and macro AUC (multiclass; with the 68% intervals of
    accuracy and macro AUC over `n_boot` resamples of the events, ``accuracy_lo68`` ...),
    per-label AUC (multilabel), masked-object accuracies and regression loss (`mpm`, a
    MaskedParticleObjective). `logits`: the model's predictions on `table`, when already
    computed."""
    from hepfm.analysis.metrics import (
        CONFIDENCE,
        bootstrap_multiclass,
        multiclass_metrics,
        multilabel_aucs,
        percentile_interval,
    )

    if logits is None:
        logits = predict(model, table, batch_size) if objective_heads else {}
    out: dict[str, Any] = {"events": len(table)}
    if mpm is not None:
        from hepfm.objectives.mpm import evaluate_mpm

        out.update(evaluate_mpm(model, table, mpm, batch_size=batch_size))
    if "multiclass" in objective_heads:
        scores, y = class_scores(logits["multiclass"], table.y, processes)
        out.update(multiclass_metrics(y, scores, list(processes)))
        if n_boot and np.unique(y).size > 1:
            tag = round(100 * CONFIDENCE)
            for name, values in bootstrap_multiclass(y, scores, n_boot).items():
                lo, hi = percentile_interval(values)
                out[f"{name}_lo{tag}"], out[f"{name}_hi{tag}"] = float(lo), float(hi)
    if "multilabel" in objective_heads and table.y_multi is not None:
        aucs = multilabel_aucs(table.y_multi, logits["multilabel"], model.config.labels)
        out["multilabel_auc"] = aucs
        out["multilabel_macro_auc"] = float(np.mean(list(aucs.values()))) if aucs else None
    return out


def write_evaluation(run_dir: str | os.PathLike[str], model: FoundationModel,
                     tables: dict[str, EventTable], processes: Sequence[str],
                     objective_heads: Sequence[str], extra: dict[str, Any] | None = None,
                     mpm: Any = None) -> dict[str, Any]:
    """Evaluate on each table (``val``, ``test``), write ``metrics.json`` and, for multiclass,
    the test confusion matrix as ``confusion_matrix.csv`` and ``confusion_matrix.png``."""
    from hepfm.analysis.metrics import confusion_frame
    from hepfm.analysis.plots import plot_confusion

    run_dir = Path(run_dir)
    metrics: dict[str, Any] = dict(extra or {})
    logits = {name: predict(model, table) if objective_heads else {}
              for name, table in tables.items()}
    for name, table in tables.items():
        metrics[name] = evaluate_split(model, table, processes, objective_heads, mpm=mpm,
                                       logits=logits[name])
    if "multiclass" in objective_heads and "test" in tables and len(processes) > 1:
        scores, y = class_scores(logits["test"]["multiclass"], tables["test"].y, processes)
        cm = confusion_frame(y, scores, list(processes))
        write_text(run_dir / "confusion_matrix.csv", cm.to_csv(float_format="%.4f"))
        plot_confusion(cm, run_dir / "confusion_matrix.png",
                       title=f"test events: accuracy {metrics['test']['accuracy']:.3f}, "
                             f"macro AUC {metrics['test']['macro_auc']:.3f}")
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2, default=float) + "\n")
    return metrics
