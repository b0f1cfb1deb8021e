"""Collect the named stage representations of a model over a stream of event batches.

The model does the pooling: ``model.representations(batch)`` returns one ``[B, D]`` tensor
per stage (``encoder``, ``block_1`` ... ``block_K``, ``readout``, ``head_input:<name>``);
per-node stages are pooled by the mean over each event's nodes concatenated with the global
vector (see ``hepfm.models``). Here we only run it in eval mode without gradients and stack
the stages over batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import Tensor

from hepfm.errors import ArgumentError, HepfmError


class HasRepresentations(Protocol):
    """Anything with ``representations(batch) -> dict[str, Tensor[B, D]]`` (an nn.Module)."""

    def representations(self, batch: Any) -> dict[str, Tensor]: ...


def _to(batch: Any, device: torch.device) -> Any:
    return batch.to(device) if hasattr(batch, "to") else batch


@torch.no_grad()
def extract_representations(
    model: torch.nn.Module,
    batches: Iterable[Any],
    max_events: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Run ``model.representations`` over ``batches``; return ``{stage: Tensor[n, D]}``.

    Batches are moved to ``device`` (default: the model's), outputs come back to the CPU as
    float32 in stage order. Stops after ``max_events`` events (the last batch is cut). The
    model is put in eval mode and restored to its previous mode afterwards.
    """
    if max_events is not None and max_events <= 0:
        raise ArgumentError(f"max_events must be positive, got {max_events}")
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    chunks: dict[str, list[Tensor]] = {}
    stages: list[str] | None = None
    seen = 0
    try:
        for batch in batches:
            reps = model.representations(_to(batch, device))
            if stages is None:
                stages = list(reps)
                chunks = {s: [] for s in stages}
            elif list(reps) != stages:
                raise HepfmError(f"model.representations changed its stages between batches: "
                                 f"{stages} then {list(reps)}")
            sizes = {s: int(t.shape[0]) for s, t in reps.items()}
            bad = {s: tuple(t.shape) for s, t in reps.items() if t.ndim != 2}
            if bad or len(set(sizes.values())) != 1:
                raise HepfmError(f"model.representations must give one [B, D] tensor per stage "
                                 f"with the same B; got shapes "
                                 f"{ {s: tuple(t.shape) for s, t in reps.items()} }")
            n = next(iter(sizes.values()))
            take = n if max_events is None else min(n, max_events - seen)
            for s, t in reps.items():
                chunks[s].append(t[:take].detach().to("cpu", torch.float32))
            seen += take
            if max_events is not None and seen >= max_events:
                break
    finally:
        model.train(was_training)
    if stages is None or seen == 0:
        raise HepfmError("no events: the batches given to extract_representations were empty")
    return {s: torch.cat(chunks[s]) for s in stages}
