"""A pretraining objective by name: supervised heads and/or masked particle modeling.

Names join parts with ``+`` and may weight each with ``:w``: ``multiclass``, ``both``,
``mpm``, ``mpm+multiclass``, ``mpm:0.5+both``. The total loss is the weighted sum, computed
by :meth:`PretrainObjective.total` (which holds every weight, the MPM one included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hepfm.errors import ArgumentError
from hepfm.objectives.mpm import MaskedParticleObjective, parse_objective, supervised_name
from hepfm.objectives.supervised import SupervisedObjective


@dataclass(frozen=True)
class PretrainObjective:
    """The supervised part (``None`` for MPM alone) and the MPM part (``None`` without)."""

    name: str
    supervised: SupervisedObjective | None
    mpm: MaskedParticleObjective | None = None
    mpm_weight: float = 1.0

    @classmethod
    def from_name(cls, name: str, multiclass_weight: float = 1.0,
                  multilabel_weight: float = 1.0, mpm_weight: float = 1.0,
                  mpm: MaskedParticleObjective | None = None) -> PretrainObjective:
        """Parse `name`; weights written in the name (``mpm:0.5``) override the arguments."""
        parts = parse_objective(name)

        def weight(key: str, default: float) -> float:
            given = parts.get(key)
            return default if given is None else given

        sup = supervised_name(list(parts))
        supervised = None if sup is None else SupervisedObjective(
            sup, weight("multiclass", multiclass_weight), weight("multilabel", multilabel_weight))
        m = (mpm or MaskedParticleObjective()) if "mpm" in parts else None
        mpm_weight = weight("mpm", mpm_weight)
        return cls(name, supervised, m, mpm_weight)

    @property
    def heads(self) -> tuple[str, ...]:
        """The event-level model heads this objective trains (the MPM head is separate)."""
        return () if self.supervised is None else self.supervised.heads

    def __call__(self, outputs: dict[str, Tensor], batch: Any
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        """The supervised loss and its parts (see :class:`SupervisedObjective`)."""
        if self.supervised is None:
            raise ArgumentError(f"objective '{self.name}' has no supervised part")
        return self.supervised(outputs, batch)

    def total(self, model: Any, outputs: dict[str, Tensor], batch: Any,
              generator: torch.Generator | None = None
              ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """The weighted sum of every part: ``(loss, parts, mpm statistics)``.

        `outputs` are the logits of :attr:`heads`; masked particle modeling (when the
        objective has it) masks `batch` with `generator` and runs `model` itself. The
        statistics (``masked`` and accuracies) are empty without MPM.
        """
        loss, parts = self(outputs, batch) if self.supervised is not None else (None, {})
        stats: dict[str, Tensor] = {}
        if self.mpm is not None:
            mpm_loss, mpm_parts, stats = self.mpm(model, batch, generator)
            mpm_loss = self.mpm_weight * mpm_loss
            loss = mpm_loss if loss is None else loss + mpm_loss
            parts = {**parts, **mpm_parts}
        if loss is None:
            raise ArgumentError(f"objective '{self.name}' has no part to train")
        return loss, parts, stats
