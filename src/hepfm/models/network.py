"""Encode-process-decode graph network over event graphs (contracts.md sections 2-4).

Stages, and the per-event vector each exposes in :meth:`GraphNetwork.forward` (for CKA):

- ``encoder``: after the input normaliser and the node/edge/global encoder MLPs;
- ``block_1`` ... ``block_K``: after each :class:`~hepfm.models.blocks.GraphNetBlock`;
- ``readout``: the final global vector, the event representation ``[B, H]``.

A stage with per-node states is pooled to one vector per event as
``concat(mean over the event's nodes of x, u)`` which has width ``2H``; ``readout`` is ``u``
alone (width ``H``). Every event has at least its MET node, so the mean is always defined;
for safety, an event with no node at all pools to zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn.inits import reset

from hepfm.data.normalization import FeatureStats
from hepfm.errors import ArgumentError
from hepfm.models import scatter
from hepfm.models.blocks import GraphNetBlock, mlp
from hepfm.models.config import default_features
from hepfm.models.masked import MaskEmbeddings

__all__ = ["GraphNetwork", "Normalizer", "default_features", "stats_arrays"]

_KINDS = ("node", "edge", "global")


def stats_arrays(stats: Any) -> dict[str, list[float]]:
    """``{node_mean, node_std, edge_mean, ...}`` from a FeatureStats (or its ``to_dict()``)."""
    if stats is None:
        return {}
    d = stats if isinstance(stats, dict) else stats.to_dict()
    out: dict[str, list[float]] = {}
    for kind in _KINDS:
        for what in ("mean", "std"):
            key = f"{kind}_{what}"
            if key in d:
                val = d[key]
            elif kind in d and isinstance(d[kind], dict) and what in d[kind]:
                val = d[kind][what]
            else:
                val = getattr(stats, key)
            out[key] = [float(v) for v in torch.as_tensor(val).flatten().tolist()]
    return out


class Normalizer(nn.Module):
    """Standardises node, edge and global inputs with buffers saved in every checkpoint."""

    def __init__(self, dims: dict[str, int]):
        super().__init__()
        for kind in _KINDS:
            self.register_buffer(f"{kind}_mean", torch.zeros(dims[kind]))
            self.register_buffer(f"{kind}_std", torch.ones(dims[kind]))

    def load_stats(self, stats: Any) -> None:
        """Copy means and standard deviations from a FeatureStats (zero std becomes 1)."""
        for key, val in stats_arrays(stats).items():
            buf = getattr(self, key)
            t = torch.tensor(val, dtype=buf.dtype)
            if t.shape != buf.shape:
                raise ArgumentError(f"normalisation '{key}' has {t.numel()} values, "
                                    f"the model expects {buf.numel()}")
            if key.endswith("std"):
                t = torch.where(t > 0, t, torch.ones_like(t))
            buf.copy_(t)

    def to_dict(self) -> dict[str, list[float]]:
        return {k: [float(v) for v in b.tolist()] for k, b in self.named_buffers()}

    def to_stats(self) -> FeatureStats:
        """The buffers as a :class:`~hepfm.data.normalization.FeatureStats`."""
        return FeatureStats(**{k: b.detach().cpu().double().numpy()
                               for k, b in self.named_buffers()})

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, f'{k}_mean').numel()}" for k in _KINDS)

    def forward(self, kind: str, t: Tensor) -> Tensor:
        return (t - getattr(self, f"{kind}_mean")) / getattr(self, f"{kind}_std")


class GraphNetwork(nn.Module):
    """Normaliser, encoders, ``blocks`` processor steps; the readout is the global vector."""

    def __init__(self, features: dict[str, Sequence[str]], hidden: int = 64, blocks: int = 3,
                 mlp_layers: int = 2, dropout: float = 0.0, masking: bool = False):
        super().__init__()
        dims = {k: len(features[k]) for k in _KINDS}
        self.in_channels = dims
        self.hidden = hidden
        self.normalizer = Normalizer(dims)
        self.encoders = nn.ModuleDict({
            k: nn.Sequential(mlp(dims[k], hidden, hidden, mlp_layers), nn.LayerNorm(hidden))
            for k in _KINDS
        })
        self.blocks = nn.ModuleList(
            GraphNetBlock(hidden, mlp_layers, dropout) for _ in range(blocks)
        )
        #: learned embeddings for masked particle modeling (``run(..., node_mask=...)``)
        self.mask_embeddings = MaskEmbeddings(hidden) if masking else None

    def reset_parameters(self) -> None:
        """Re-draw encoders, blocks and mask embeddings; the normalisation is data, kept."""
        for part in (self.encoders, *self.blocks):
            reset(part)
        if self.mask_embeddings is not None:
            self.mask_embeddings.reset_parameters()

    def extra_repr(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.in_channels.items())
        return (f"in_channels=({dims}), hidden={self.hidden}, blocks={len(self.blocks)}, "
                f"masking={self.mask_embeddings is not None}")

    @staticmethod
    def _pool(x: Tensor, u: Tensor, batch: Tensor) -> Tensor:
        return torch.cat([scatter.scatter_mean(x, batch, u.shape[0]), u], dim=-1)

    def forward(self, data: Any, collect: bool = False, node_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Final node states ``[N,H]``, global vector ``[B,H]`` and (if `collect`) stages.

        `node_mask` (bool ``[N]``, masked particle modeling) replaces the encoded features of
        masked nodes, of edges touching them and of their events' globals by learned
        embeddings (:class:`~hepfm.models.masked.MaskEmbeddings`); needs ``masking=True``.
        """
        x_raw, e_raw, u_raw = data.x, data.edge_attr, data.u
        u_raw = u_raw.view(-1, u_raw.shape[-1])
        batch = data.batch if getattr(data, "batch", None) is not None else \
            torch.zeros(x_raw.shape[0], dtype=torch.long, device=x_raw.device)
        norm, enc = self.normalizer, self.encoders
        x = enc["node"](norm("node", x_raw))
        e = enc["edge"](norm("edge", e_raw))
        u = enc["global"](norm("global", u_raw))
        if node_mask is not None:
            if self.mask_embeddings is None:
                raise ArgumentError("node_mask needs a backbone built with masking=True "
                                    "(ModelConfig.mpm)")
            x, e, u = self.mask_embeddings(x, e, u, data.edge_index, batch, node_mask)
        stages: dict[str, Tensor] = {}
        if collect:
            stages["encoder"] = self._pool(x, u, batch)
        for k, block in enumerate(self.blocks, start=1):
            x, e, u = block(x, data.edge_index, e, u, batch)
            if collect:
                stages[f"block_{k}"] = self._pool(x, u, batch)
        if collect:
            stages["readout"] = u
        return x, u, stages
