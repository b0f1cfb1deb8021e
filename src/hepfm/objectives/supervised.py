"""Supervised pretraining objectives: which process (multiclass), which particles (multilabel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

Objective = Literal["multiclass", "multilabel", "both"]
OBJECTIVES: tuple[str, ...] = ("multiclass", "multilabel", "both")


def multiclass_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of class logits ``[B, C]`` against integer labels ``[B]``."""
    return F.cross_entropy(logits.float(), y)


def multilabel_loss(logits: Tensor, y_multi: Tensor) -> Tensor:
    """Mean binary cross-entropy of label logits ``[B, L]`` against 0/1 targets ``[B, L]``."""
    return F.binary_cross_entropy_with_logits(logits.float(), y_multi.float())


@dataclass(frozen=True)
class SupervisedObjective:
    """``multiclass``, ``multilabel`` or ``both`` (weighted sum of the two losses)."""

    name: Objective = "multiclass"
    multiclass_weight: float = 1.0
    multilabel_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            from hepfm.errors import UnknownNameError

            raise UnknownNameError("objective", self.name, OBJECTIVES)

    @property
    def heads(self) -> tuple[str, ...]:
        """The model heads this objective trains."""
        return ("multiclass", "multilabel") if self.name == "both" else (self.name,)

    def __call__(self, outputs: dict[str, Tensor], batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its parts ``{"multiclass": ..., "multilabel": ...}``."""
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        if "multiclass" in self.heads:
            parts["multiclass"] = multiclass_loss(outputs["multiclass"], batch.y)
            total = self.multiclass_weight * parts["multiclass"]
        if "multilabel" in self.heads:
            if getattr(batch, "y_multi", None) is None:
                from hepfm.errors import InputDataError

                raise InputDataError("objective needs multilabel targets (y_multi) but the "
                                     "input files have no Truth branches")
            parts["multilabel"] = multilabel_loss(outputs["multilabel"], batch.y_multi)
            loss = self.multilabel_weight * parts["multilabel"]
            total = loss if total is None else total + loss
        assert total is not None
        return total, parts
