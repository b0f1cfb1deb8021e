"""Validation outputs of every event, gathered across ranks by torchmetrics.

Both Lightning modules score an epoch from all of its events: :class:`EventOutputs` keeps
the logits of the heads and the labels as torchmetrics "cat" states, so under DDP
``compute()`` sees every rank's events (an AUC of all events, not a mean of per-rank AUCs),
and the scores are then computed once, by :mod:`hepfm.analysis.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class EventOutputs(Metric):
    """Logits of `heads`, labels ``y`` and (with `multilabel`) ``y_multi`` of an epoch."""

    full_state_update = False

    def __init__(self, heads: Sequence[str], multilabel: bool = False):
        super().__init__()
        self.heads = tuple(heads)
        self.multilabel = multilabel
        for head in self.heads:
            self.add_state(f"logits_{head}", default=[], dist_reduce_fx="cat")
        self.add_state("y", default=[], dist_reduce_fx="cat")
        if multilabel:
            self.add_state("y_multi", default=[], dist_reduce_fx="cat")

    def update(self, logits: dict[str, Tensor], y: Tensor, y_multi: Tensor | None = None
               ) -> None:
        for head in self.heads:
            getattr(self, f"logits_{head}").append(logits[head].detach().float())
        self.y.append(y.detach())
        if self.multilabel:
            if y_multi is None:
                msg = "EventOutputs(multilabel=True) needs y_multi"
                raise ValueError(msg)  # programming error: hepfm's loops pass y_multi
            self.y_multi.append(y_multi.detach().float())

    def compute(self) -> dict[str, np.ndarray]:
        """``{head: logits, "y": labels[, "y_multi": targets]}`` of all events, as numpy."""
        out = {head: dim_zero_cat(getattr(self, f"logits_{head}")).cpu().numpy()
               for head in self.heads}
        out["y"] = dim_zero_cat(self.y).cpu().numpy()
        if self.multilabel:
            out["y_multi"] = dim_zero_cat(self.y_multi).cpu().numpy()
        return out
