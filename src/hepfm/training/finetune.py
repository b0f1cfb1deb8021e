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
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from hepfm.analysis.metrics import binary_metrics, roc_curve_frame
from hepfm.data.datasets import EventBatches
from hepfm.data.graphs import build_batch
from hepfm.data.table import EventTable
from hepfm.errors import UnknownNameError
from hepfm.models.foundation import FoundationModel
from hepfm.training.evaluate import predict
from hepfm.training.quiet import quiet_lightning

MODES = ("scratch", "full", "frozen", "linear")


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (defaults suit 10^3-10^5 events on a CPU)."""

    mode: str = "full"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    patience: int = 5
    seed: int = 0
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
        model.stats = pretrained.stats
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
        raise ValueError(f"{what} has shape {w.shape}, expected ({n},): one weight per event")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"{what} must be finite and >= 0 with a positive sum for training "
                         f"(min {w.min():g}, sum {w.sum():g})")
    return w


class TaskModule(L.LightningModule):
    """Trains head `head` of `model` (and the backbone unless the mode freezes it)."""

    def __init__(self, model: FoundationModel, head: str, config: FinetuneConfig):
        super().__init__()
        self.model, self.head, self.cfg = model, head, config
        self.frozen = config.mode in ("frozen", "linear")
        for p in self.model.parameters():
            p.requires_grad_(False)
        trainable = self.model.head_parameters(head) if self.frozen else \
            [*self.model.backbone_parameters(), *self.model.head_parameters(head)]
        for p in trainable:
            p.requires_grad_(True)
        self.on_train_epoch_start()
        self.history: list[dict[str, float]] = []
        self._val: list[tuple[Tensor, Tensor, Tensor | None]] = []

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
        self.log("train_loss", loss, batch_size=batch.num_graphs, on_epoch=True,
                 on_step=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits = self(batch)
        w = getattr(batch, "weight", None)
        self.log("val_loss", _loss(logits, batch.y, w), batch_size=batch.num_graphs,
                 on_epoch=True, prog_bar=True)
        self._val.append((logits.detach().float().cpu(), batch.y.cpu(),
                          None if w is None else w.cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val or self.trainer.sanity_checking:
            self._val.clear()
            return
        logits, y = (torch.cat(t) for t in list(zip(*self._val, strict=True))[:2])
        w = None if self._val[0][2] is None else torch.cat([v[2] for v in self._val]).numpy()
        self._val.clear()
        row = {"epoch": float(self.current_epoch),
               "val_loss": float(self.trainer.callback_metrics["val_loss"])}
        if logits.shape[-1] == 1 and len(torch.unique(y)) == 2:
            row["val_auc"] = binary_metrics(y.numpy(), logits[:, 0].numpy(), 0.0,
                                            sample_weight=w)["auc"]
            self.log("val_auc", row["val_auc"], prog_bar=True)
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
        ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp, monitor="val_loss",
                                                   save_top_k=1, save_weights_only=True)
        stop = L.pytorch.callbacks.EarlyStopping("val_loss", patience=cfg.patience)
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


def predict_proba(model: FoundationModel, table: EventTable, head: str = "task",
                  batch_size: int = 4096) -> np.ndarray:
    """Signal probability per event (softmax probabilities for an n-class head)."""
    logits = torch.from_numpy(predict(model, table, batch_size)[head])
    return (torch.sigmoid(logits[:, 0]) if logits.shape[-1] == 1
            else torch.softmax(logits, -1)).numpy()


def evaluate(model: FoundationModel, table: EventTable, head: str = "task",
             sample_weight: Any = None) -> tuple[dict[str, float], Any]:
    """AUC, accuracy, background rejection at 50% and 70% signal efficiency, and the ROC
    (all weighted by `sample_weight`, one weight per event, when given)."""
    scores = predict_proba(model, table, head)
    return (binary_metrics(table.y, scores, sample_weight=sample_weight),
            roc_curve_frame(table.y, scores, sample_weight))


class FineTuner:
    """Estimator-style fine-tuning: ``FineTuner(model, mode="full").fit(train, val)``.

    ``predict_proba(table)`` gives signal probabilities and ``evaluate(table)`` the metrics.
    """

    def __init__(self, pretrained: FoundationModel, mode: str = "full", head: str = "task",
                 n_outputs: int = 1, **config: Any):
        self.config = FinetuneConfig(mode=mode, **config)
        self.head = head
        self.model = prepare_model(pretrained, head, mode, n_outputs, self.config.seed)
        self.result: FinetuneResult | None = None

    def fit(self, train: EventTable, val: EventTable) -> FineTuner:
        self.result = finetune(self.model, train, val, self.head, self.config)
        self.model = self.result.model
        return self

    def predict_proba(self, table: EventTable) -> np.ndarray:
        return predict_proba(self.model, table, self.head)

    def evaluate(self, table: EventTable) -> dict[str, float]:
        return evaluate(self.model, table, self.head)[0]
