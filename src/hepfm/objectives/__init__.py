"""Training objectives: supervised multiclass / multilabel and masked particle modeling."""

from hepfm.objectives.combined import PretrainObjective
from hepfm.objectives.masking import mask_nodes
from hepfm.objectives.mpm import MaskedParticleObjective, evaluate_mpm, fit_codebook
from hepfm.objectives.supervised import (
    OBJECTIVES,
    SupervisedObjective,
    multiclass_loss,
    multilabel_loss,
)

__all__ = ["OBJECTIVES", "MaskedParticleObjective", "PretrainObjective", "SupervisedObjective",
           "evaluate_mpm", "fit_codebook", "mask_nodes", "multiclass_loss", "multilabel_loss"]
