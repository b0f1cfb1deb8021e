"""The hepfm foundation model: graph network backbone plus named heads (contracts.md §4)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hepfm.data.labels import MULTILABELS
from hepfm.models.heads import Head
from hepfm.models.masked import MPMHead
from hepfm.models.network import GraphNetwork, default_features
from hepfm.processes import PRETRAINING


@dataclass
class ModelConfig:
    """Architecture of a :class:`FoundationModel`; saved verbatim in ``config.yaml``.

    ``classes`` names the multiclass logits (index == process label id) and ``labels`` the
    multilabel logits; an empty ``labels`` means no multilabel head. ``dropout`` (default 0:
    pretraining sets are large) acts on every block update and in the heads. ``heads`` holds
    the extra heads added with :meth:`FoundationModel.with_head` as ``{name: {n_outputs, hidden}}``.
    ``mpm`` (``{codebook_size, hidden}``), when set, adds masked particle modeling: mask
    embeddings in the backbone and a per-node :class:`~hepfm.models.masked.MPMHead`.
    """

    hidden: int = 64
    blocks: int = 3
    mlp_layers: int = 2
    dropout: float = 0.0
    head_hidden: int | None = 64
    classes: tuple[str, ...] = PRETRAINING
    labels: tuple[str, ...] = MULTILABELS
    features: dict[str, tuple[str, ...]] = field(default_factory=default_features)
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    mpm: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        self.labels = tuple(self.labels)
        self.features = {k: tuple(v) for k, v in self.features.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-friendly types (lists, not tuples)."""
        d = asdict(self)
        d["classes"], d["labels"] = list(self.classes), list(self.labels)
        d["features"] = {k: list(v) for k, v in self.features.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown architecture fields {unknown}")
        return cls(**d)

    def head_specs(self) -> dict[str, dict[str, Any]]:
        """All heads in order: multiclass, multilabel (if labels), then extra heads."""
        specs: dict[str, dict[str, Any]] = {
            "multiclass": {"n_outputs": len(self.classes), "hidden": self.head_hidden}}
        if self.labels:
            specs["multilabel"] = {"n_outputs": len(self.labels), "hidden": self.head_hidden}
        specs.update(self.heads)
        return specs


class FoundationModel(nn.Module):
    """Encode-process-decode graph network with named heads on the event representation.

    ``forward(batch)`` returns ``{head name: logits}``; ``embed`` the event representation
    ``[B, hidden]``; ``representations`` every stage (see :mod:`hepfm.models.network`).
    """

    def __init__(self, config: ModelConfig | None = None, stats: Any = None):
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.backbone = GraphNetwork(c.features, c.hidden, c.blocks, c.mlp_layers, c.dropout,
                                     masking=c.mpm is not None)
        self.heads = nn.ModuleDict()
        for name, spec in c.head_specs().items():
            self.heads[name] = Head(c.hidden, spec["n_outputs"], spec.get("hidden"), c.dropout)
        #: per-node masked particle modeling head (None unless ``config.mpm``)
        self.mpm = None if c.mpm is None else MPMHead(
            c.hidden, n_features=len(c.features["node"]), **c.mpm)
        self.stats = stats
        #: config.yaml of the directory this model was loaded from (set by load_pretrained).
        self.run_config: dict[str, Any] | None = None
        if stats is not None:
            self.backbone.normalizer.load_stats(stats)

    # -- inference -------------------------------------------------------------------------
    def embed(self, batch: Any) -> Tensor:
        """Event representation: the final global vector, ``[B, hidden]``."""
        return self.backbone.run(batch)[1]

    def node_embeddings(self, batch: Any, node_mask: Tensor | None = None) -> Tensor:
        """Final node states ``[N, hidden]`` (with masked nodes hidden, given `node_mask`)."""
        return self.backbone.run(batch, node_mask=node_mask)[0]

    def representations(self, batch: Any) -> dict[str, Tensor]:
        """Named per-event vectors of every stage, in order, ending with each head's input."""
        _, u, stages = self.backbone.run(batch, collect=True)
        for name, head in self.heads.items():
            stages[f"head_input:{name}"] = head.features(u)
        return stages

    def forward(self, batch: Any) -> dict[str, Tensor]:
        """Logits of every head, by head name."""
        u = self.embed(batch)
        return {name: head(u) for name, head in self.heads.items()}

    # -- heads and parameter groups ----------------------------------------------------------
    def with_head(self, name: str, n_outputs: int, hidden: int | None = None) -> FoundationModel:
        """Add (or replace) a head called `name` with `n_outputs` logits; returns self."""
        spec = {"n_outputs": int(n_outputs), "hidden": hidden}
        if name in ("multiclass", "multilabel") and name in self.config.head_specs():
            if self.config.head_specs()[name] != spec:
                raise ValueError(f"head '{name}' is built in; choose another name")
            return self
        self.config.heads[name] = spec
        self.heads[name] = Head(self.config.hidden, n_outputs, hidden,
                                self.config.dropout).to(self.device)
        return self

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the normaliser, encoders and processor blocks."""
        return self.backbone.parameters()

    def head_parameters(self, name: str | None = None) -> Iterator[nn.Parameter]:
        """Parameters of head `name` (all heads when None)."""
        if name is None:
            return self.heads.parameters()
        if name not in self.heads:
            raise KeyError(f"no head '{name}'; heads: {', '.join(self.heads)}")
        return self.heads[name].parameters()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- persistence -----------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, **extra: Any) -> Path:
        """Write ``config.yaml`` and ``model.safetensors`` to `directory` (atomically)."""
        from hepfm.hub import save_pretrained

        return save_pretrained(self, directory, extra=extra or None)
