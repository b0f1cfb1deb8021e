"""The architecture of a foundation model, as saved in ``config.yaml`` (``model:``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hepfm.data.features import EDGE_FEATURES, GLOBAL_FEATURES, NODE_FEATURES
from hepfm.data.labels import MULTILABELS
from hepfm.errors import ArgumentError
from hepfm.processes import PRETRAINING


def default_features() -> dict[str, tuple[str, ...]]:
    """Node, edge and global feature names that hepfm.data builds (contracts.md section 2)."""
    return {"node": NODE_FEATURES, "edge": EDGE_FEATURES, "global": GLOBAL_FEATURES}


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
            raise ArgumentError(f"unknown architecture fields {unknown}")
        return cls(**d)

    def head_specs(self) -> dict[str, dict[str, Any]]:
        """All heads in order: multiclass, multilabel (if labels), then extra heads."""
        specs: dict[str, dict[str, Any]] = {
            "multiclass": {"n_outputs": len(self.classes), "hidden": self.head_hidden}}
        if self.labels:
            specs["multilabel"] = {"n_outputs": len(self.labels), "hidden": self.head_hidden}
        specs.update(self.heads)
        return specs

