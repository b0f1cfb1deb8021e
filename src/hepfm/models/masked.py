"""Model parts of masked particle modeling (MPM): mask embeddings and the per-node MPM head.

:class:`MaskEmbeddings` lives in the backbone (``GraphNetwork.mask_embeddings``) and replaces,
after the encoders, whatever could carry a masked node's features:

- the encoded features of a masked node -> a learned node mask embedding;
- the encoded features of every edge touching a masked node (sender or receiver) -> a learned
  masked-edge embedding (edge features are pairwise differences of node kinematics);
- the encoded global vector of an event with a masked node -> a learned global mask embedding
  (MET, HT and the object counts summarise all objects, the masked ones included).

:class:`MPMHead` maps final node states to the MPM predictions and holds the k-means codebook
of the token target as a buffer, so that it is saved in ``model.safetensors`` with the rest.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepfm.data.features import NODE_TYPES
from hepfm.models.blocks import mlp

#: Object types an MPM head predicts: ``NODE_TYPES`` without ``met`` (never masked).
N_OBJECT_TYPES = len(NODE_TYPES) - 1
#: Regression outputs: normalised log_pt, eta, log_e, charge, btag, then a (sin, cos) pair
#: for phi (compared through the angle, so the wrap at +-pi costs nothing).
N_REGRESSION = 7


class MaskEmbeddings(nn.Module):
    """Learned replacements (``[hidden]`` each) for masked nodes, their edges and globals."""

    def __init__(self, hidden: int):
        super().__init__()
        self.node = nn.Parameter(torch.zeros(hidden))
        self.edge = nn.Parameter(torch.zeros(hidden))
        self.glob = nn.Parameter(torch.zeros(hidden))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.node, self.edge, self.glob):
            nn.init.normal_(p, std=0.02)

    def extra_repr(self) -> str:
        return f"{self.node.numel()}"

    def forward(self, x: Tensor, e: Tensor, u: Tensor, edge_index: Tensor, batch: Tensor,
                node_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoded ``(x [N,H], e [E,H], u [B,H])`` with masked positions replaced."""
        node_mask = node_mask.to(device=x.device, dtype=torch.bool)
        edge_mask = node_mask[edge_index[0]] | node_mask[edge_index[1]]
        event_mask = torch.zeros(u.shape[0], dtype=torch.bool, device=u.device)
        event_mask[batch[node_mask]] = True
        x = torch.where(node_mask[:, None], self.node.to(x.dtype), x)
        e = torch.where(edge_mask[:, None], self.edge.to(e.dtype), e)
        u = torch.where(event_mask[:, None], self.glob.to(u.dtype), u)
        return x, e, u


#: Default number of k-means tokens in the MPM codebook.
CODEBOOK_SIZE = 128


class MPMHead(nn.Module):
    """MLP on final node states -> object-type logits, regression values and token logits.

    ``codebook`` (``[codebook_size, n_features]``) holds the k-means centroids of normalised
    node features; it is all zeros until :func:`hepfm.objectives.mpm.fit_codebook` fills it.
    """

    def __init__(self, n_in: int, codebook_size: int = CODEBOOK_SIZE, hidden: int | None = 64,
                 n_features: int = 13, layers: int = 2):
        super().__init__()
        self.codebook_size = int(codebook_size)
        n_out = N_OBJECT_TYPES + N_REGRESSION + self.codebook_size
        self.net = mlp(n_in, hidden or n_in, n_out, layers)
        self.register_buffer("codebook", torch.zeros(self.codebook_size, n_features))

    @property
    def has_codebook(self) -> bool:
        """Whether the codebook has been fitted (a fresh one is all zeros)."""
        return bool(self.codebook.abs().sum() > 0)

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        """``{"type": [M,5], "regression": [M,7], "tokens": [M,K]}`` for node states ``h``."""
        out = self.net(h)
        a, b = N_OBJECT_TYPES, N_OBJECT_TYPES + N_REGRESSION
        return {"type": out[:, :a], "regression": out[:, a:b], "tokens": out[:, b:]}

    def tokens(self, features: Tensor) -> Tensor:
        """Token id (nearest centroid, Euclidean) of each row of normalised node features."""
        return torch.cdist(features.float(), self.codebook.float(),
                           compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
