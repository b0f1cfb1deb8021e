"""Which nodes masked particle modeling hides: a random, order-free choice per event.

For an event with ``n`` object nodes (every node but MET), ``k = round(fraction * n)`` of them
are masked, clipped to ``1 <= k <= max(n - 1, 1)``: at least one object, and at least one
object left visible when there are two or more. An event with a single object has it masked
(its MET node, never masked, stays visible). An event with no objects gets no mask and
contributes nothing to the MPM loss. Which objects are masked depends only on independent
uniform draws per node, never on node positions, so the choice is permutation-free.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hepfm.data.features import MET
from hepfm.errors import ArgumentError

#: Default fraction of each event's objects that masked particle modeling hides.
MASK_FRACTION = 0.3


def mask_counts(n_objects: Tensor, fraction: float = MASK_FRACTION) -> Tensor:
    """Number of masked objects per event (int64 ``[B]``) for object counts `n_objects`."""
    if not 0.0 < fraction <= 1.0:
        raise ArgumentError(f"mask fraction must be in (0, 1], got {fraction}")
    k = torch.floor(fraction * n_objects.double() + 0.5).long()
    k = torch.minimum(k.clamp(min=1), (n_objects - 1).clamp(min=1))
    return torch.where(n_objects > 0, k, torch.zeros_like(k))


def mask_nodes(batch: Tensor, node_type: Tensor, fraction: float = MASK_FRACTION,
               generator: torch.Generator | None = None, n_events: int | None = None) -> Tensor:
    """Boolean mask ``[N]`` of the nodes to hide (see the module docstring for the rule).

    `batch` maps nodes to events (any node order), `node_type` indexes ``NODE_TYPES``.
    Random scores come from `generator` (on its device, CPU by default), so a seeded
    generator reproduces the mask. Vectorised: one sort over all nodes of the batch.
    """
    n = node_type.numel()
    device = batch.device
    if n_events is None:
        n_events = int(batch.max()) + 1 if n else 0
    is_object = node_type != MET
    n_obj = torch.bincount(batch[is_object], minlength=n_events)
    k = mask_counts(n_obj, fraction)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    scores = torch.rand(n, generator=generator, device=gen_device).to(device)
    scores = torch.where(is_object, scores, torch.full_like(scores, 2.0))  # MET sorts last
    order = torch.argsort(scores)
    order = order[torch.argsort(batch[order], stable=True)]  # by event, then by score
    counts = torch.bincount(batch, minlength=n_events)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long, device=device)
    rank[order] = torch.arange(n, device=device) - start[batch[order]]
    return rank < k[batch]
