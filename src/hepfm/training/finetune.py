"""Fine-tuning a pretrained model on a downstream task, and the from-scratch baseline.

Modes (arXiv:2412.10665 compares the first two):

- ``scratch``: the same architecture, randomly initialised, every weight trained: the baseline.
  It keeps the pretrained input normalisation so that only the weights differ.
- ``full``: every weight trained from the pretrained ones; the backbone learns at
  ``backbone_lr_factor`` times the head's learning rate.
- ``frozen``: backbone fixed (and in eval mode), an MLP head trained on the representation.
- ``linear``: backbone fixed, a linear probe on the representation.

Lightning runs the loop: early stopping and best-model checkpointing on the validation loss.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from hepfm import defaults
from hepfm.analysis.metrics import (
    CONFIDENCE,
    binary_metrics,
    bootstrap_auc,
    multiclass_metrics,
    percentile_interval,
    roc_curve_frame,
)
from hepfm.analysis.significance import Yields, significance_report
from hepfm.data.datasets import EventBatches
from hepfm.data.graphs import build_batch
from hepfm.data.table import EventTable
from hepfm.errors import ArgumentError, UnknownNameError
from hepfm.models.foundation import FoundationModel
from hepfm.pretrained import DEFAULT_MODEL
from hepfm.training.evaluate import predict
from hepfm.training.outputs import EventOutputs
from hepfm.training.quiet import quiet_lightning

MODES = ("scratch", "full", "frozen", "linear")


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (defaults suit 10^3-10^5 events on a CPU)."""

    mode: str = "full"
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    lr: float = defaults.LR
    backbone_lr_factor: float = defaults.BACKBONE_LR_FACTOR
    weight_decay: float = defaults.WEIGHT_DECAY
    patience: int = defaults.PATIENCE
    seed: int = defaults.SEED
    accelerator: str = "auto"
    precision: str = "32-true"
    progress_bar: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UnknownNameError("fine-tuning mode", self.mode, list(MODES))


@dataclass
class FinetuneResult:
    """The trained model and what it cost."""

    model: FoundationModel
    head: str
    train_seconds: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)


def prepare_model(pretrained: FoundationModel, head: str, mode: str, n_outputs: int = 1,
                  seed: int = 0) -> FoundationModel:
    """A copy of `pretrained` (or, for ``scratch``, a fresh one) with a new head `head`."""
    if mode not in MODES:
        raise UnknownNameError("fine-tuning mode", mode, list(MODES))
    torch.manual_seed(seed)
    if mode == "scratch":
        model = FoundationModel(copy.deepcopy(pretrained.config))
        model.backbone.normalizer.load_state_dict(pretrained.backbone.normalizer.state_dict())
    else:
        model = copy.deepcopy(pretrained).cpu()
    hidden = None if mode == "linear" else model.config.head_hidden
    return model.with_head(head, n_outputs, hidden=hidden)


def _loss(logits: Tensor, y: Tensor, sample_weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy; with `sample_weight`, ``sum(w * loss) / sum(w)`` over the batch."""
    if logits.shape[-1] == 1:
        per_event = nn.functional.binary_cross_entropy_with_logits(
            logits[:, 0], y.float(), reduction="none")
    else:
        per_event = nn.functional.cross_entropy(logits, y, reduction="none")
    if sample_weight is None:
        return per_event.mean()
    w = sample_weight.to(per_event.dtype)
    return (w * per_event).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


def check_sample_weight(sample_weight: Any, n: int, what: str = "sample_weight"
                        ) -> np.ndarray | None:
    """`sample_weight` as float64 [n], checked: finite, >= 0, not all zero (None stays None)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ArgumentError(f"{what} has shape {w.shape}, expected ({n},): one weight per event")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ArgumentError(f"{what} must be finite and >= 0 with a positive sum for training "
                            f"(min {w.min():g}, sum {w.sum():g})")
    return w


class TaskModule(L.LightningModule):
    """Trains head `head` of `model` (and the backbone unless the mode freezes it).

    Logs ``train/loss``, ``val/loss`` and, for a binary head, ``val/auc`` of the validation
    events of all ranks (the naming of :class:`~hepfm.training.module.PretrainModule`).
    """

    def __init__(self, model: FoundationModel, head: str, config: FinetuneConfig):
        super().__init__()
        self.model, self.head, self.cfg = model, head, config
        self.save_hyperparameters({"head": head, **asdict(config)})
        self.frozen = config.mode in ("frozen", "linear")
        for p in self.model.parameters():
            p.requires_grad_(False)
        trainable = self.model.head_parameters(head) if self.frozen else \
            [*self.model.backbone_parameters(), *self.model.head_parameters(head)]
        for p in trainable:
            p.requires_grad_(True)
        self.on_train_epoch_start()
        self.history: list[dict[str, float]] = []
        #: validation logits and labels of every event, gathered across ranks
        self.val_outputs = EventOutputs([head])

    def on_train_epoch_start(self) -> None:
        """Train mode for what is trained (a loaded model arrives in eval mode)."""
        self.model.train()
        if self.frozen:
            self.model.backbone.eval()

    def forward(self, batch: Any) -> Tensor:
        if self.frozen:
            with torch.no_grad():
                u = self.model.embed(batch)
        else:
            u = self.model.embed(batch)
        return self.model.heads[self.head](u)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = _loss(self(batch), batch.y, getattr(batch, "weight", None))
        self.log("train/loss", loss, batch_size=batch.num_graphs, on_epoch=True,
                 on_step=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits = self(batch)
        self.log("val/loss", _loss(logits, batch.y, getattr(batch, "weight", None)),
                 batch_size=batch.num_graphs, on_epoch=True, prog_bar=True, sync_dist=True)
        self.val_outputs.update({self.head: logits}, batch.y)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.val_outputs.update_count == 0:
            self.val_outputs.reset()
            return
        seen = self.val_outputs.compute()  # every rank's events
        self.val_outputs.reset()
        logits, y = seen[self.head], seen["y"]
        row = {"epoch": float(self.current_epoch),
               "val/loss": float(self.trainer.callback_metrics["val/loss"])}
        if logits.shape[-1] == 1 and len(np.unique(y)) == 2:
            row["val/auc"] = binary_metrics(y, logits[:, 0], 0.0)["auc"]
            self.log("val/auc", row["val/auc"], prog_bar=True)
        self.history.append(row)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": list(self.model.head_parameters(self.head)), "lr": self.cfg.lr}]
        if not self.frozen:
            groups.append({"params": list(self.model.backbone_parameters()),
                           "lr": self.cfg.lr * (1.0 if self.cfg.mode == "scratch"
                                                else self.cfg.backbone_lr_factor)})
        return torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)


class _WeightedBatches(EventBatches):
    """EventBatches whose batches carry ``weight``, each event's sample weight."""

    def __init__(self, table: EventTable, sample_weight: np.ndarray, **kwargs: Any):
        super().__init__(table, **kwargs)
        self.sample_weight = torch.as_tensor(sample_weight, dtype=torch.float32)

    def __iter__(self) -> Iterator[Batch]:
        for idx in self._my_batches(self._next_epoch()):
            batch = build_batch(self.table, idx, keep_order=True)  # rows follow idx
            batch.weight = self.sample_weight[torch.from_numpy(idx)]
            yield batch


def _loader(table: EventTable, batch_size: int, shuffle: bool, seed: int,
            sample_weight: np.ndarray | None = None) -> DataLoader:
    kw = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, shard=False)
    ds = EventBatches(table, **kw) if sample_weight is None else \
        _WeightedBatches(table, sample_weight, **kw)
    return DataLoader(ds, batch_size=None)


def finetune(model: FoundationModel, train: EventTable, val: EventTable, head: str = "task",
             config: FinetuneConfig | None = None, *, sample_weight: Any = None,
             val_sample_weight: Any = None, **overrides: Any) -> FinetuneResult:
    """Train head `head` of `model` on `train`, stopping on `val` loss; returns the best model.

    `model` must already have the head (see :func:`prepare_model`); the mode in `config`
    (or ``mode=...`` among `overrides`) decides what is trained. `sample_weight` and
    `val_sample_weight` (one per event, >= 0) weight each event's loss, as in scikit-learn.
    """
    cfg = replace(config or FinetuneConfig(), **overrides)
    sample_weight = check_sample_weight(sample_weight, len(train))
    val_sample_weight = check_sample_weight(val_sample_weight, len(val), "val_sample_weight")
    if head not in model.heads:
        raise KeyError(f"model has no head '{head}'; add it with model.with_head('{head}', 1)")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = TaskModule(model, head, cfg)
    with tempfile.TemporaryDirectory(prefix="hepfm-ft-") as tmp:
        ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp, monitor="val/loss",
                                                   save_top_k=1, save_weights_only=True)
        stop = L.pytorch.callbacks.EarlyStopping("val/loss", patience=cfg.patience)
        trainer = L.Trainer(
            max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=1,
            precision=cfg.precision, callbacks=[ckpt, stop], logger=False,
            enable_progress_bar=cfg.progress_bar, enable_model_summary=False,
            num_sanity_val_steps=0, deterministic=False)
        start = time.perf_counter()
        with quiet_lightning():
            trainer.fit(module, _loader(train, cfg.batch_size, True, cfg.seed, sample_weight),
                        _loader(val, 4096, False, cfg.seed, val_sample_weight))
        seconds = time.perf_counter() - start
        best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])
    best_epoch = int(best["epoch"]) + 1
    model = module.model.cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return FinetuneResult(model, head, seconds, best_epoch, trainer.current_epoch,
                          module.history)


def class_probabilities(model: FoundationModel, table: EventTable, head: str = "task",
                        batch_size: int = 4096) -> np.ndarray:
    """Class probabilities ``(n_events, n_classes)`` of head `head`: ``[1 - p, p]`` for a
    one-logit (binary) head, the softmax of an n-logit head."""
    logits = torch.from_numpy(predict(model, table, batch_size)[head])
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits[:, 0]).numpy()
        return np.stack([1.0 - p, p], axis=1)
    return torch.softmax(logits, -1).numpy()


def task_metrics(model: FoundationModel, table: EventTable, head: str = "task",
                 class_names: Sequence[str] | None = None, sample_weight: Any = None,
                 n_boot: int = 1000, yields: Yields | None = None,
                 proba: np.ndarray | None = None) -> tuple[dict[str, float], Any]:
    """Metrics of head `head` on the labelled events of `table`, and the ROC curve.

    Two classes: AUC with its 68% test-bootstrap interval (``auc_lo68``, ``auc_hi68``;
    `n_boot` resamples of the events), accuracy, background rejection at 50% and 70% signal
    efficiency, the significance metrics of :func:`~hepfm.analysis.significance.
    significance_metrics` for `yields` (default :class:`~hepfm.analysis.significance.Yields`)
    with their intervals, and the ROC as a DataFrame, weighted by `sample_weight` (one weight
    per event) when given (then the significance metrics unweighted too, ``..._unweighted``).
    More classes: accuracy, macro AUC and per-class accuracy; no ROC (None). `proba`: the
    class probabilities of `table`, when already computed.
    """
    if proba is None:
        proba = class_probabilities(model, table, head)
    if proba.shape[1] == 2:
        metrics = binary_metrics(table.y, proba[:, 1], sample_weight=sample_weight)
        if n_boot:
            tag = round(100 * CONFIDENCE)
            lo, hi = percentile_interval(bootstrap_auc(table.y, proba[:, 1], sample_weight,
                                                       n_boot=n_boot)[:, 0])
            metrics[f"auc_lo{tag}"], metrics[f"auc_hi{tag}"] = float(lo), float(hi)
        metrics.update(significance_report(table.y, proba[:, 1], sample_weight, yields,
                                           n_boot))
        return metrics, roc_curve_frame(table.y, proba[:, 1], sample_weight)
    return multiclass_metrics(table.y, proba, class_names), None


def predict_proba(model: FoundationModel, table: EventTable, head: str = "task",
                  batch_size: int = 4096) -> np.ndarray:
    """Signal probability per event (1-D) for a binary head, else :func:`class_probabilities`.

    Kept for existing callers; :meth:`FineTuner.predict_proba` is always 2-D.
    """
    proba = class_probabilities(model, table, head, batch_size)
    return proba[:, 1] if proba.shape[1] == 2 else proba


def evaluate(model: FoundationModel, table: EventTable, head: str = "task",
             sample_weight: Any = None) -> tuple[dict[str, float], Any]:
    """Former name of :func:`task_metrics` (kept so that existing callers keep working)."""
    return task_metrics(model, table, head, sample_weight=sample_weight)


def _check_labels(y: np.ndarray, what: str) -> np.ndarray:
    classes = np.unique(y)
    if len(classes) < 2 or not np.array_equal(classes, np.arange(len(classes))):
        raise ArgumentError(f"FineTuner: the {what} events must carry labels 0..K-1 with K >= 2 "
                            f"(every class present), got labels {classes.tolist()}")
    return classes


def _hold_out(table: EventTable, fraction: float, seed: int) -> tuple[EventTable, EventTable]:
    """Split `table` into training and validation events, stratified by label."""
    if not 0 < fraction < 1:
        raise ArgumentError(f"FineTuner: validation_fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng([seed, 2])
    val = [rng.permutation(np.flatnonzero(table.y == c))[:max(1, round(fraction * n))]
           for c, n in zip(*np.unique(table.y, return_counts=True), strict=True)]
    is_val = np.zeros(len(table), dtype=bool)
    is_val[np.concatenate(val)] = True
    return table.subset(np.flatnonzero(~is_val)), table.subset(np.flatnonzero(is_val))


class FineTuner(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier that fine-tunes a pretrained model on labelled events.

    ``FineTuner("hepfm-base", mode="full").fit(train, val)``, then ``predict_proba(test)``
    ``(n_events, n_classes)``, ``predict``, ``score`` (accuracy, as for every scikit-learn
    classifier) and ``evaluate`` (the dict of task metrics: AUC, rejections...). Events are
    :class:`~hepfm.data.table.EventTable` objects whose ``y`` holds labels 0..K-1 (two
    classes: a one-logit head; more: a K-logit softmax head).

    `pretrained` is a :class:`~hepfm.models.FoundationModel`, a shipped model name or a run
    directory; it is never modified: every :meth:`fit` starts again from it. The other
    parameters are those of :class:`FinetuneConfig`; `validation_fraction` of the training
    events (stratified) stop the training when ``fit`` gets no validation events.
    Fitted attributes: ``model_`` (the fine-tuned model), ``result_``
    (:class:`FinetuneResult`), ``classes_``.
    """

    def __init__(self, pretrained: FoundationModel | str | os.PathLike[str] = DEFAULT_MODEL,
                 *, mode: str = "full", head: str = "task", epochs: int = defaults.EPOCHS,
                 batch_size: int = defaults.BATCH_SIZE, lr: float = defaults.LR,
                 backbone_lr_factor: float = defaults.BACKBONE_LR_FACTOR,
                 weight_decay: float = defaults.WEIGHT_DECAY, patience: int = defaults.PATIENCE,
                 validation_fraction: float = 0.2, seed: int = defaults.SEED,
                 accelerator: str = "auto",
                 precision: str = "32-true", progress_bar: bool = False):
        self.pretrained = pretrained
        self.mode = mode
        self.head = head
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.backbone_lr_factor = backbone_lr_factor
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.accelerator = accelerator
        self.precision = precision
        self.progress_bar = progress_bar

    def _config(self) -> FinetuneConfig:
        names = {f.name for f in fields(FinetuneConfig)}
        return FinetuneConfig(**{k: v for k, v in self.get_params().items() if k in names})

    def fit(self, X: EventTable, val: EventTable | None = None) -> FineTuner:
        """Add a head to a copy of the pretrained model and train it on `X`, stopping on the
        validation loss of `val` (or of `validation_fraction` of `X`)."""
        config = self._config()  # checks the mode before any work
        classes = _check_labels(X.y, "training")
        if val is None:
            X, val = _hold_out(X, self.validation_fraction, self.seed)
        if np.setdiff1d(np.unique(val.y), classes).size:
            raise ArgumentError(f"FineTuner: validation labels {np.unique(val.y).tolist()} are "
                                f"not all among the training labels {classes.tolist()}")
        pretrained = self.pretrained
        if not isinstance(pretrained, FoundationModel):
            pretrained = FoundationModel.from_pretrained(pretrained)
        n_outputs = 1 if len(classes) == 2 else len(classes)
        model = prepare_model(pretrained, self.head, self.mode, n_outputs, self.seed)
        self.result_ = finetune(model, X, val, self.head, config)
        self.model_ = self.result_.model
        self.classes_ = classes
        return self

    def predict_proba(self, X: EventTable) -> np.ndarray:
        """Class probabilities, ``(n_events, n_classes)``, columns in ``classes_`` order."""
        check_is_fitted(self)
        return class_probabilities(self.model_, X, self.head)

    def predict(self, X: EventTable) -> np.ndarray:
        """The most probable class of each event."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X: EventTable, y: np.ndarray | None = None,
              sample_weight: np.ndarray | None = None) -> float:
        """Accuracy on `X` (labels `y`, by default ``X.y``), as for any scikit-learn classifier."""
        y = X.y if y is None else np.asarray(y)
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def evaluate(self, X: EventTable) -> dict[str, float]:
        """The task metrics on `X` (see :func:`task_metrics`)."""
        check_is_fitted(self)
        return task_metrics(self.model_, X, self.head)[0]
