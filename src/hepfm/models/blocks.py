"""The graph-network block: edge, node and global updates with residuals and LayerNorm."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from hepfm.models import scatter


def mlp(n_in: int, hidden: int, n_out: int, layers: int = 2, dropout: float = 0.0) -> nn.Sequential:
    """A plain MLP: ``layers`` Linear layers with SiLU (and dropout) between them."""
    mods: list[nn.Module] = []
    dims = [n_in] + [hidden] * (layers - 1) + [n_out]
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        mods.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            mods.append(nn.SiLU())
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
    return nn.Sequential(*mods)


class GraphNetBlock(MessagePassing):
    """One processor step of an encode-process-decode graph network (Battaglia et al. 2018).

    1. edges:   ``e' = LN(e + MLP[e, x_sender, x_receiver, u])``
    2. nodes:   ``x' = LN(x + MLP[x, sum_in(e'), mean_in(e'), u])`` over incoming edges
    3. globals: ``u' = LN(u + MLP[u, mean(x'), mean(e')])`` pooled over the event

    All states have the same width ``hidden``. Reductions go through :mod:`hepfm.models.scatter`
    so that every step is invariant under permutations of the objects in an event.
    """

    def __init__(self, hidden: int, mlp_layers: int = 2, dropout: float = 0.0):
        super().__init__(aggr=None, flow="source_to_target", node_dim=0)
        self.edge_mlp = mlp(4 * hidden, hidden, hidden, mlp_layers, dropout)
        self.node_mlp = mlp(4 * hidden, hidden, hidden, mlp_layers, dropout)
        self.global_mlp = mlp(3 * hidden, hidden, hidden, mlp_layers, dropout)
        self.edge_norm = nn.LayerNorm(hidden)
        self.node_norm = nn.LayerNorm(hidden)
        self.global_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u: Tensor,
                batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Update ``(x [N,H], edge_attr [E,H], u [B,H])``; ``batch`` maps nodes to events."""
        n_events = u.shape[0]
        edge_batch = batch[edge_index[1]]
        size = (x.shape[0], x.shape[0])
        e = self.edge_updater(edge_index, x=x, edge_attr=edge_attr, u_edge=u[edge_batch],
                              size=size)
        x = self.propagate(edge_index, x=x, edge_attr=e, u_node=u[batch], size=size)
        pooled = [scatter.scatter_mean(x, batch, n_events),
                  scatter.scatter_mean(e, edge_batch, n_events)]
        u = self.global_norm(u + self.dropout(self.global_mlp(torch.cat([u, *pooled], dim=-1))))
        return x, e, u

    def edge_update(self, x_i: Tensor, x_j: Tensor, edge_attr: Tensor, u_edge: Tensor) -> Tensor:
        # x_j: sender (row 0), x_i: receiver (row 1)
        delta = self.edge_mlp(torch.cat([edge_attr, x_j, x_i, u_edge], dim=-1))
        return self.edge_norm(edge_attr + self.dropout(delta))

    def message(self, edge_attr: Tensor) -> Tensor:
        return edge_attr

    def aggregate(self, inputs: Tensor, index: Tensor, dim_size: int | None = None) -> Tensor:
        assert dim_size is not None  # forward always passes `size`
        n = int(dim_size)
        return torch.cat([scatter.scatter_sum(inputs, index, n),
                          scatter.scatter_mean(inputs, index, n)], dim=-1)

    def update(self, aggr_out: Tensor, x: Tensor, u_node: Tensor) -> Tensor:
        delta = self.node_mlp(torch.cat([x, aggr_out, u_node], dim=-1))
        return self.node_norm(x + self.dropout(delta))
