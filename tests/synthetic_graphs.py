"""Small random event graphs that follow contracts.md section 2 (for model tests)."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

N_LABELS = 6


def make_event(n_objects: int, gen: torch.Generator, label: int = 0) -> Data:
    """One event: `n_objects` random objects plus the MET node, all ordered pairs as edges."""
    n = n_objects + 1
    node_type = torch.cat([torch.randint(0, 5, (n_objects,), generator=gen),
                           torch.tensor([5])])
    kin = torch.randn(n, 7, generator=gen)
    x = torch.cat([kin, torch.nn.functional.one_hot(node_type, 6).float()], dim=1)
    src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])
    edge_attr = torch.randn(edge_index.shape[1], 4, generator=gen)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr,
                u=torch.randn(1, 5, generator=gen), node_type=node_type,
                y=torch.tensor([label]), y_multi=(torch.rand(1, N_LABELS, generator=gen) > 0.5)
                .float(), num_nodes=n)


def make_batch(n_events: int = 8, seed: int = 0, max_objects: int = 8,
               n_objects: list[int] | None = None) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    counts = n_objects or torch.randint(0, max_objects + 1, (n_events,), generator=gen).tolist()
    events = [make_event(c, gen, label=i % 12) for i, c in enumerate(counts)]
    return Batch.from_data_list(events)


def permute_event_objects(batch: Batch, seed: int = 1) -> Batch:
    """The same events with the objects inside each event shuffled (edges relabelled)."""
    gen = torch.Generator().manual_seed(seed)
    events = []
    for data in batch.to_data_list():
        n = data.num_nodes
        perm = torch.randperm(n, generator=gen)          # new position i holds old node perm[i]
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(n)
        e_perm = torch.randperm(data.edge_index.shape[1], generator=gen)
        events.append(Data(x=data.x[perm], edge_index=inv[data.edge_index][:, e_perm],
                           edge_attr=data.edge_attr[e_perm], u=data.u,
                           node_type=data.node_type[perm], y=data.y, y_multi=data.y_multi,
                           num_nodes=n))
    return Batch.from_data_list(events)
