"""The LightningModule for supervised pretraining: the step, the loss, the optimiser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from hepfm.errors import ArgumentError
from hepfm.models.foundation import FoundationModel
from hepfm.objectives.combined import PretrainObjective
from hepfm.objectives.mpm import MPM_DEFAULTS, TARGETS, MaskedParticleObjective
from hepfm.objectives.supervised import Objective, SupervisedObjective
from hepfm.training.outputs import EventOutputs

SCHEDULES = ("cosine", "onecycle", "constant")


def epoch_metrics(objective: SupervisedObjective | PretrainObjective, logits: dict[str, np.ndarray],
                  y: np.ndarray, y_multi: np.ndarray | None) -> dict[str, float]:
    """Accuracy and macro AUC (multiclass), macro AUC over labels (multilabel)."""
    from hepfm.analysis.metrics import macro_auc, multilabel_aucs

    out: dict[str, float] = {}
    if "multiclass" in objective.heads and len(y):
        s = logits["multiclass"]
        out["acc"] = float((s.argmax(1) == y).mean())
        if len(np.unique(y)) > 1:
            out["auc"] = macro_auc(y, s)
    if "multilabel" in objective.heads and y_multi is not None and len(y_multi):
        aucs = multilabel_aucs(y_multi, logits["multilabel"],
                               [str(k) for k in range(y_multi.shape[1])])
        if aucs:
            out["auc_multilabel"] = float(np.mean(list(aucs.values())))
    return out


class PretrainModule(L.LightningModule):
    """Trains a :class:`FoundationModel` with a supervised objective.

    Logs ``train/loss`` (per step and epoch), ``val/loss``, and at the end of each validation
    epoch ``val/acc`` and ``val/auc`` (macro one-vs-rest, scikit-learn) for multiclass and
    ``val/auc_multilabel`` for multilabel, computed from the validation events of all ranks
    (:class:`~hepfm.training.outputs.EventOutputs`). AdamW with a warm-up then cosine decay per step
    (``schedule="cosine"``), one-cycle (``"onecycle"``) or a constant rate.

    An objective with ``mpm`` (e.g. ``"mpm"``, ``"mpm+multiclass"``, see
    :mod:`hepfm.objectives.combined`) adds masked particle modeling with `mask_fraction` and
    `mpm_targets`, masks drawn from `seed`, and logs ``*/mpm_type_acc`` and
    ``*/mpm_token_acc`` (over masked objects); the model needs ``ModelConfig.mpm``.
    """

    def __init__(self, model: FoundationModel, objective: Objective | str = "multiclass",
                 lr: float = 2e-3, weight_decay: float = 1e-2, schedule: str = "cosine",
                 warmup_fraction: float = 0.05, multiclass_weight: float = 1.0,
                 multilabel_weight: float = 1.0, mpm_weight: float = 1.0,
                 mask_fraction: float = MPM_DEFAULTS["fraction"],
                 mpm_targets: Sequence[str] = TARGETS, seed: int = 0):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ArgumentError(f"unknown schedule '{schedule}': use one of {SCHEDULES}")
        self.model = model
        self.objective = PretrainObjective.from_name(
            objective, multiclass_weight, multilabel_weight, mpm_weight,
            MaskedParticleObjective(mask_fraction, tuple(mpm_targets)))
        if self.objective.mpm is not None and model.mpm is None:
            raise ArgumentError(f"objective '{objective}' needs an MPM head: build the model "
                                "with ModelConfig(mpm={'codebook_size': ...})")
        missing = [h for h in self.objective.heads if h not in model.heads]
        if missing:
            raise ArgumentError(f"objective '{objective}' needs head(s) {missing}; the model has "
                                f"{list(model.heads)} (a multilabel head needs ModelConfig.labels)")
        self.save_hyperparameters(ignore=["model"])
        # heads this objective does not train stay as they are (and DDP sees no unused ones)
        for name, head in model.heads.items():
            head.requires_grad_(name in self.objective.heads)
        #: validation logits and labels of every event, gathered across ranks
        self.val_outputs = EventOutputs(self.objective.heads,
                                        multilabel="multilabel" in self.objective.heads)

    def forward(self, batch: Any) -> dict[str, Tensor]:
        """Logits of the heads this objective trains."""
        u = self.model.embed(batch)
        return {name: self.model.heads[name](u) for name in self.objective.heads}

    def _mpm_generator(self, stage: str, batch_idx: int) -> torch.Generator:
        """Masks reproducible from (seed, step or validation batch, rank), also on resume."""
        step = self.global_step if stage == "train" else batch_idx
        key = ((int(self.hparams.seed) * 1_000_003 + step) * 2 + (stage != "train")) * 1009
        return torch.Generator().manual_seed((key + self.global_rank) % (2**63))

    def _step(self, batch: Any, stage: str, batch_idx: int = 0
              ) -> tuple[Tensor, dict[str, Tensor]]:
        out = self(batch) if self.objective.heads else {}
        generator = self._mpm_generator(stage, batch_idx) if self.objective.mpm else None
        loss, parts, stats = self.objective.total(self.model, out, batch, generator)
        n = int(batch.num_graphs)
        if stats:
            m = max(int(stats.pop("masked")), 1)
            for name, value in stats.items():
                self.log(f"{stage}/mpm_{name}", value, batch_size=m, on_step=False,
                         on_epoch=True, prog_bar=stage == "val", sync_dist=stage != "train")
        train = stage == "train"
        self.log(f"{stage}/loss", loss, batch_size=n, prog_bar=True, on_step=train,
                 on_epoch=True, sync_dist=not train)
        if len(parts) > 1:
            for name, part in parts.items():
                self.log(f"{stage}/loss_{name}", part, batch_size=n, on_step=False,
                         on_epoch=True, sync_dist=not train)
        return loss, out

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "train", batch_idx)[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        _, out = self._step(batch, "val", batch_idx)
        if self.objective.heads:
            self.val_outputs.update(out, batch.y, getattr(batch, "y_multi", None))

    def on_validation_epoch_start(self) -> None:
        self.val_outputs.reset()

    def on_validation_epoch_end(self) -> None:
        if not self.objective.heads or self.val_outputs.update_count == 0:
            return
        seen = self.val_outputs.compute()  # every rank's events
        self.val_outputs.reset()
        y, ym = seen.pop("y"), seen.pop("y_multi", None)
        for name, value in epoch_metrics(self.objective, seen, y, ym).items():
            # the same value on every rank: nothing left to reduce
            self.log(f"val/{name}", value, prog_bar=name == "acc", sync_dist=False)

    def on_train_epoch_start(self) -> None:
        # reshuffle deterministically per epoch (also after --resume)
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            return opt
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            total = max(1, int(self.trainer.max_epochs or 1))
        total = int(total)
        if hp.schedule == "onecycle":
            sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=hp.lr, total_steps=total, pct_start=max(hp.warmup_fraction, 0.01))
        else:
            warm = max(1, int(hp.warmup_fraction * total))
            sched = torch.optim.lr_scheduler.SequentialLR(opt, [
                torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.05, total_iters=warm),
                torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm),
                                                           eta_min=hp.lr * 0.01),
            ], milestones=[warm])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
