"""The hepfm foundation model: graph network backbone plus named heads (contracts.md §4).

Persistence follows Hugging Face's ``PyTorchModelHubMixin``: ``model.save_pretrained(dir)``
writes a model directory (:mod:`hepfm.models.model_dir`) and
``FoundationModel.from_pretrained(name_or_dir)`` builds ``cls(config)`` and loads it back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hepfm.data.normalization import FeatureStats
from hepfm.devices import resolve_device
from hepfm.errors import ArgumentError
from hepfm.models import model_dir
from hepfm.models.config import ModelConfig
from hepfm.models.heads import Head
from hepfm.models.masked import MPMHead
from hepfm.models.network import GraphNetwork
from hepfm.pretrained import resolve_model_dir


class FoundationModel(nn.Module):
    """Encode-process-decode graph network with named heads on the event representation.

    ``forward(batch)`` returns ``{head name: logits}``; ``embed`` the event representation
    ``[B, hidden]``; ``representations`` every stage (see :mod:`hepfm.models.network`).
    """

    def __init__(self, config: ModelConfig | None = None, stats: FeatureStats | None = None):
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
        #: config.yaml of the directory this model was loaded from (set by from_pretrained).
        self.run_config: dict[str, Any] | None = None
        #: name, version and weights SHA-256 of that directory (set by from_pretrained;
        #: :func:`hepfm.models.model_dir.model_identity`), what runs starting from it record.
        self.identity: dict[str, Any] | None = None
        if stats is not None:
            self.stats = stats

    @property
    def stats(self) -> FeatureStats:
        """The input normalisation, read from the normaliser buffers (its one home)."""
        return self.backbone.normalizer.to_stats()

    @stats.setter
    def stats(self, stats: FeatureStats | dict[str, Any] | None) -> None:
        if stats is not None:
            self.backbone.normalizer.load_stats(stats)

    # -- inference -------------------------------------------------------------------------
    def embed(self, batch: Any) -> Tensor:
        """Event representation: the final global vector, ``[B, hidden]``."""
        return self.backbone(batch)[1]

    def node_embeddings(self, batch: Any, node_mask: Tensor | None = None) -> Tensor:
        """Final node states ``[N, hidden]`` (with masked nodes hidden, given `node_mask`)."""
        return self.backbone(batch, node_mask=node_mask)[0]

    def representations(self, batch: Any) -> dict[str, Tensor]:
        """Named per-event vectors of every stage, in order, ending with each head's input."""
        _, u, stages = self.backbone(batch, collect=True)
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
                raise ArgumentError(f"head '{name}' is built in; choose another name")
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
    def save_pretrained(self, directory: str | os.PathLike[str], **extra: Any) -> Path:
        """Write ``config.yaml`` and ``model.safetensors`` to `directory` (atomically).

        Keyword arguments (``seed=...``, ``processes=...``) are provenance for config.yaml.
        """
        return model_dir.write_model_dir(directory, self, self.config, self.stats.to_dict(),
                                         extra)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike[str],
                        device: str | torch.device = "cpu") -> FoundationModel:
        """A model directory, or a model shipped with hepfm by name, in eval mode on `device`
        (``"auto"``: a GPU when there is one).

        A shipped name may be pinned: ``"hepfm-base@2.0.0"`` (a version) or
        ``"hepfm-base@f8a795c3"`` (the start of the weights' SHA-256). Raises
        :class:`~hepfm.errors.CheckpointError` naming what differs when the directory comes
        from another hepfm major version, architecture or feature set, when its weights are
        not the file its ``config.yaml`` records (SHA-256) or a pin does not match, and
        :class:`~hepfm.errors.UnknownNameError` listing the shipped models for an unknown name.
        """
        directory = resolve_model_dir(name_or_dir)
        config = model_dir.read_config(directory)
        model = cls(model_dir.model_config(config, directory))
        model_dir.load_weights(model, directory / model_dir.WEIGHTS_NAME)  # names a mismatch
        sha256 = model_dir.verify_weights(directory, config)
        model.run_config = config
        model.identity = model_dir.model_identity(config, name_or_dir, sha256)
        if isinstance(device, str):
            device = resolve_device(device)
        return model.to(device).eval()
