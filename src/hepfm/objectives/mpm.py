"""Masked particle modeling (MPM, arXiv:2401.13537): targets, codebook, loss, evaluation.

Some object nodes of each event are masked (:mod:`hepfm.objectives.masking`), the backbone
runs with ``node_mask`` (masked nodes, their edges and their events' globals replaced by learned
embeddings, :mod:`hepfm.models.masked`) and the per-node MPM head predicts, for every masked
node, from its final state:

- its object type (cross-entropy over ``NODE_TYPES`` without ``met``), always;
- ``regression``: its normalised ``log_pt, eta, log_e, charge, btag`` (mean squared error)
  plus ``1 - cos(phi_pred - phi)`` with ``phi_pred = atan2`` of a predicted (sin, cos) pair,
  so the wrap at +-pi costs nothing;
- ``tokens``: the id of the nearest centroid of a k-means codebook fitted once on the
  normalised node features of the training objects (cross-entropy).

Masked nodes of one event start from the same embedding and see the same context, so their
predictions are equal: with several masked objects the model learns the set of them, not
which is which (the price of a fully permutation-free objective).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hepfm.data.features import MET, NODE_FEATURES, NODE_TYPES
from hepfm.errors import ArgumentError
from hepfm.models.masked import CODEBOOK_SIZE
from hepfm.objectives.masking import MASK_FRACTION, mask_nodes

#: Object types an MPM head predicts (``NODE_TYPES`` without ``met``, which is never masked).
OBJECT_TYPES: tuple[str, ...] = tuple(t for t in NODE_TYPES if t != "met")
#: Features regressed with a squared error (normalised); phi is handled through its angle.
REGRESSION_FEATURES: tuple[str, ...] = ("log_pt", "eta", "log_e", "charge", "btag")
#: Optional MPM targets (the object type is always predicted).
TARGETS: tuple[str, ...] = ("tokens", "regression")
#: Masked particle modeling options when not given: masked fraction, targets, codebook size.
MPM_DEFAULTS: dict[str, Any] = {"fraction": MASK_FRACTION, "targets": list(TARGETS),
                                "codebook_size": CODEBOOK_SIZE}

_REG = [NODE_FEATURES.index(f) for f in REGRESSION_FEATURES]
_SIN_COS = [NODE_FEATURES.index("sin_phi"), NODE_FEATURES.index("cos_phi")]


def phi_loss(pred: Tensor, sin_cos: Tensor) -> Tensor:
    """Per node ``1 - cos(phi_pred - phi)``; `pred` is an unnormalised (sin, cos) pair."""
    norm = pred.norm(dim=1).clamp_min(1e-6)
    return 1.0 - (pred * sin_cos).sum(dim=1) / norm


def _require_mpm(model: Any) -> Any:
    if getattr(model, "mpm", None) is None:
        raise ArgumentError("the model has no MPM head: build it with ModelConfig(mpm={...})")
    return model.mpm


def mpm_targets(model: Any, batch: Any, node_mask: Tensor, tokens: bool = True
                ) -> dict[str, Tensor]:
    """Targets of the masked nodes: ``type``, ``regression``, ``sin_cos`` and ``tokens``."""
    x = batch.x[node_mask].float()
    xn = model.backbone.normalizer("node", x)
    out = {"type": batch.node_type[node_mask].long(), "regression": xn[:, _REG],
           "sin_cos": x[:, _SIN_COS]}
    if tokens:
        head = _require_mpm(model)
        if not head.has_codebook:
            raise ArgumentError("the MPM codebook is not fitted: call "
                                "hepfm.objectives.mpm.fit_codebook(model, train_table) first")
        out["tokens"] = head.tokens(xn)
    return out


def masked_predictions(model: Any, batch: Any, node_mask: Tensor
                       ) -> dict[str, Tensor]:
    """MPM head outputs for the masked nodes (the backbone sees `node_mask`)."""
    h = model.node_embeddings(batch, node_mask=node_mask)
    return _require_mpm(model)(h[node_mask])


def node_losses(pred: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-masked-node losses ``type``, ``regression`` and ``tokens`` (when targeted)."""
    out = {"type": F.cross_entropy(pred["type"].float(), targets["type"], reduction="none")}
    if "regression" in targets:
        r = pred["regression"].float()
        out["regression"] = ((r[:, :len(_REG)] - targets["regression"]) ** 2).mean(dim=1) + \
            phi_loss(r[:, len(_REG):], targets["sin_cos"])
    if "tokens" in targets:
        out["tokens"] = F.cross_entropy(pred["tokens"].float(), targets["tokens"],
                                        reduction="none")
    return out


@dataclass(frozen=True)
class MaskedParticleObjective:
    """Mask `fraction` of each event's objects and predict them (type plus `targets`)."""

    fraction: float = MPM_DEFAULTS["fraction"]
    targets: tuple[str, ...] = TARGETS
    type_weight: float = 1.0
    regression_weight: float = 1.0
    token_weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown:
            from hepfm.errors import UnknownNameError

            raise UnknownNameError("MPM target", unknown[0], TARGETS)
        if not 0.0 < self.fraction <= 1.0:
            raise ArgumentError(f"mask fraction must be in (0, 1], got {self.fraction}")

    def to_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "targets": list(self.targets),
                "type_weight": self.type_weight, "regression_weight": self.regression_weight,
                "token_weight": self.token_weight}

    def mask(self, batch: Any, generator: torch.Generator | None = None) -> Tensor:
        """The node mask of `batch` (see :func:`~hepfm.objectives.masking.mask_nodes`)."""
        return mask_nodes(batch.batch, batch.node_type, self.fraction, generator,
                          int(batch.num_graphs))

    def __call__(self, model: Any, batch: Any, generator: torch.Generator | None = None,
                 node_mask: Tensor | None = None
                 ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Total MPM loss, its parts ``mpm_type/_regression/_tokens`` and accuracies."""
        if node_mask is None:
            node_mask = self.mask(batch, generator)
        pred = masked_predictions(model, batch, node_mask)
        n = int(node_mask.sum())
        if n == 0:  # only events without objects: nothing to predict
            zero = sum(v.sum() for v in pred.values()) * 0.0
            return zero, {}, {"masked": torch.tensor(0.0)}
        targets = mpm_targets(model, batch, node_mask, tokens="tokens" in self.targets)
        if "regression" not in self.targets:
            targets.pop("regression")
        losses = {k: v.mean() for k, v in node_losses(pred, targets).items()}
        weights = {"type": self.type_weight, "regression": self.regression_weight,
                   "tokens": self.token_weight}
        total = sum(weights[k] * v for k, v in losses.items())
        with torch.no_grad():
            stats = {"masked": torch.tensor(float(n)),
                     "type_acc": (pred["type"].argmax(1) == targets["type"]).float().mean()}
            if "tokens" in targets:
                stats["token_acc"] = (pred["tokens"].argmax(1) == targets["tokens"]).float().mean()
        assert isinstance(total, Tensor)
        return total, {f"mpm_{k}": v for k, v in losses.items()}, stats


def object_features(model: Any, table: Any) -> Tensor:
    """Normalised node features ``[M, F]`` of all object (non-MET) nodes of an EventTable."""
    from hepfm.data.graphs import node_features

    x, _ = node_features(table)
    a = int(table.offsets[0])
    is_object = np.asarray(table.node_type[a:a + table.n_nodes]) != MET
    x = torch.from_numpy(x[is_object])
    norm = model.backbone.normalizer
    return norm("node", x.to(norm.node_mean.device)).float().cpu()


def fit_codebook(model: Any, table: Any, size: int | None = None, seed: int = 0,
                 max_nodes: int = 100_000) -> Tensor:
    """Fit the k-means token codebook on the objects of `table` and store it in the model.

    Uses scikit-learn's ``KMeans`` on at most `max_nodes` randomly chosen object nodes
    (normalised with the model's own normalisation). `size` defaults to the head's.
    """
    from sklearn.cluster import KMeans

    head = _require_mpm(model)
    size = int(size or head.codebook_size)
    if size != head.codebook_size:
        raise ArgumentError(f"codebook size {size} differs from the model's "
                            f"ModelConfig.mpm codebook_size {head.codebook_size}")
    feats = object_features(model, table).numpy().astype(np.float64)
    if len(feats) > max_nodes:
        pick = np.random.default_rng(seed).choice(len(feats), max_nodes, replace=False)
        feats = feats[np.sort(pick)]
    if len(feats) < size:
        raise ArgumentError(f"{len(feats)} objects are too few for a codebook of {size} tokens; "
                            "use more events or a smaller codebook_size")
    km = KMeans(n_clusters=size, n_init=1, random_state=seed).fit(feats)
    centroids = torch.as_tensor(km.cluster_centers_, dtype=torch.float32)
    head.codebook.copy_(centroids.to(head.codebook.device))
    return centroids


@torch.no_grad()
def evaluate_mpm(model: Any, table: Any, objective: MaskedParticleObjective | None = None,
                 seed: int = 0, batch_size: int = 1024) -> dict[str, float]:
    """Masked-object type and token accuracy and regression loss on `table` (fixed masks).

    Also gives the accuracy of always answering the most frequent type / token of the
    masked objects (``*_majority``), a floor to compare with.
    """
    from hepfm.data import EventBatches

    objective = objective or MaskedParticleObjective()
    tokens = "tokens" in objective.targets and model.mpm.has_codebook
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    n, sums = 0, {"type": 0.0, "tokens": 0.0, "regression": 0.0, "phi": 0.0}
    type_counts = torch.zeros(len(OBJECT_TYPES))
    token_counts = torch.zeros(model.mpm.codebook_size)
    for batch in EventBatches(table, batch_size, shuffle=False, shard=False):
        batch = batch.to(model.device)
        node_mask = objective.mask(batch, gen)
        if not node_mask.any():
            continue
        pred = masked_predictions(model, batch, node_mask)
        t = mpm_targets(model, batch, node_mask, tokens=tokens)
        losses = node_losses(pred, t)
        n += int(node_mask.sum())
        sums["type"] += float((pred["type"].argmax(1) == t["type"]).sum())
        sums["regression"] += float(losses["regression"].sum())
        sums["phi"] += float(phi_loss(pred["regression"][:, len(_REG):].float(),
                                      t["sin_cos"]).sum())
        type_counts += torch.bincount(t["type"].cpu(), minlength=len(OBJECT_TYPES)).float()
        if tokens:
            sums["tokens"] += float((pred["tokens"].argmax(1) == t["tokens"]).sum())
            token_counts += torch.bincount(t["tokens"].cpu(),
                                           minlength=model.mpm.codebook_size).float()
    model.train(was_training)
    out: dict[str, float] = {"mpm_masked_objects": float(n)}
    if n:
        out.update({"mpm_type_accuracy": sums["type"] / n,
                    "mpm_type_accuracy_majority": float(type_counts.max()) / n,
                    "mpm_regression_loss": sums["regression"] / n,
                    "mpm_phi_loss": sums["phi"] / n})
        if tokens:
            out["mpm_token_accuracy"] = sums["tokens"] / n
            out["mpm_token_accuracy_majority"] = float(token_counts.max()) / n
    return out


def parse_objective(name: str) -> dict[str, float | None]:
    """``"mpm:0.5+multiclass"`` -> ``{"mpm": 0.5, "multiclass": None}`` (``both`` expands;
    None: no weight given)."""
    from hepfm.errors import UnknownNameError

    known = ("multiclass", "multilabel", "both", "mpm")
    out: dict[str, float | None] = {}
    for part in str(name).replace(" ", "").split("+"):
        key, _, weight = part.partition(":")
        if key not in known:
            raise UnknownNameError("objective", part, [*known, "mpm+multiclass", "mpm+both"])
        try:
            w = float(weight) if weight else None
        except ValueError:
            raise ArgumentError(f"objective '{name}': weight '{weight}' is not a number") from None
        for k in (("multiclass", "multilabel") if key == "both" else (key,)):
            out[k] = w
    return out


def supervised_name(parts: Sequence[str]) -> str | None:
    """The SupervisedObjective name for the supervised parts of an objective (or None)."""
    sup = [p for p in ("multiclass", "multilabel") if p in parts]
    return None if not sup else "both" if len(sup) == 2 else sup[0]
