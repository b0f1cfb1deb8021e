"""The graph-network block: edge, node and global updates with residuals and LayerNorm."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import reset

from hepfm.models import scatter


def mlp(n_in: int, hidden: int, n_out: int, layers: int = 2) -> nn.Sequential:
    """A plain MLP: ``layers`` Linear layers with SiLU between them."""
    mods: list[nn.Module] = []
    dims = [n_in] + [hidden] * (layers - 1) + [n_out]
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        mods.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            mods.append(nn.SiLU())
    return nn.Sequential(*mods)


class GraphNetBlock(MessagePassing):
    """One processor step of an encode-process-decode graph network (Battaglia et al. 2018).

    1. edges:   ``e' = LN(e + MLP_e[e, x_sender, x_receiver, u])``
    2. nodes:   ``x' = LN(x + MLP_x[x, sum_in(e'), mean_in(e'), u])`` over incoming edges
    3. globals: ``u' = LN(u + MLP_u[u, mean(x'), mean(e')])`` pooled over the event

    All states have width ``hidden``; dropout acts on each update before the residual sum.
    Events are complete graphs, so edges outnumber nodes several times: the first layer of
    ``MLP_e`` is evaluated in factorised form, ``W_e e + (W_s x)[sender] + (W_r x + W_u u)
    [receiver]``, which is the same function with the same weights as the concatenation but
    moves three quarters of its multiply-adds from edges to nodes. Reductions go through
    :mod:`hepfm.models.scatter`; every step is invariant under permuting an event's objects.
    """

    def __init__(self, hidden: int, mlp_layers: int = 2, dropout: float = 0.0):
        super().__init__(aggr=None, flow="source_to_target", node_dim=0)
        self.hidden = hidden
        self.mlp_layers = mlp_layers
        self.edge_mlp = mlp(4 * hidden, hidden, hidden, mlp_layers)
        self.node_mlp = mlp(4 * hidden, hidden, hidden, mlp_layers)
        self.global_mlp = mlp(3 * hidden, hidden, hidden, mlp_layers)
        self.edge_norm = nn.LayerNorm(hidden)
        self.node_norm = nn.LayerNorm(hidden)
        self.global_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """Re-draw every weight as a freshly built block would (PyG's convention)."""
        super().reset_parameters()
        for part in (self.edge_mlp, self.node_mlp, self.global_mlp,
                     self.edge_norm, self.node_norm, self.global_norm):
            reset(part)

    def __repr__(self) -> str:
        def widths(m: nn.Sequential) -> str:
            lin = [layer for layer in m if isinstance(layer, nn.Linear)]
            return " -> ".join(str(w) for w in [lin[0].in_features,
                                                *(layer.out_features for layer in lin)])

        return (f"{type(self).__name__}({self.hidden}, mlp_layers={self.mlp_layers}, "
                f"dropout={self.dropout.p},\n"
                f"  edge_model=MLP[e, x_src, x_dst, u]({widths(self.edge_mlp)}) + LayerNorm,\n"
                f"  node_model=MLP[x, sum_e, mean_e, u]({widths(self.node_mlp)}) + LayerNorm,\n"
                f"  global_model=MLP[u, mean_x, mean_e]({widths(self.global_mlp)}) + LayerNorm\n"
                ")")

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u: Tensor,
                batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Update ``(x [N,H], edge_attr [E,H], u [B,H])``; ``batch`` maps nodes to events."""
        n_nodes, n_events = x.shape[0], u.shape[0]
        size = (n_nodes, n_nodes)
        w_e, w_s, w_r, w_u = self.edge_mlp[0].weight.split(self.hidden, dim=1)
        send = x @ w_s.t()
        # an edge's event is its receiver's event; the bias is added once per node
        recv = torch.addmm((u @ w_u.t() + self.edge_mlp[0].bias)[batch], x, w_r.t())
        e = self.edge_updater(edge_index, send=send, recv=recv, edge_attr=edge_attr,
                              w_e=w_e, size=size)
        x = self.propagate(edge_index, x=x, edge_attr=e, u_node=u[batch], size=size)
        edge_batch = batch[edge_index[1]]
        pooled = [scatter.scatter_mean(x, batch, n_events),
                  scatter.scatter_mean(e, edge_batch, n_events)]
        delta = self.global_mlp(torch.cat([u, *pooled], dim=-1))
        return x, e, self.global_norm(u + self.dropout(delta))

    def edge_update(self, send_j: Tensor, recv_i: Tensor, edge_attr: Tensor,
                    w_e: Tensor) -> Tensor:
        # send_j is gathered at the sender (row 0), recv_i at the receiver (row 1)
        h = torch.addmm(send_j + recv_i, edge_attr, w_e.t())
        delta = self.edge_mlp[1:](h)
        return self.edge_norm(edge_attr + self.dropout(delta))

    def message(self, edge_attr: Tensor) -> Tensor:
        return edge_attr

    def aggregate(self, inputs: Tensor, index: Tensor, dim_size: int | None = None) -> Tensor:
        assert dim_size is not None  # forward always passes `size`
        total = scatter.scatter_sum(inputs, index, dim_size)
        degree = torch.bincount(index, minlength=dim_size).clamp_(min=1).unsqueeze(-1)
        return torch.cat([total, total / degree.to(total.dtype)], dim=-1)

    def update(self, aggr_out: Tensor, x: Tensor, u_node: Tensor) -> Tensor:
        delta = self.node_mlp(torch.cat([x, aggr_out, u_node], dim=-1))
        return self.node_norm(x + self.dropout(delta))
