"""Training objectives: supervised multiclass / multilabel (and later masked particles)."""

from hepfm.objectives.supervised import (
    OBJECTIVES,
    SupervisedObjective,
    multiclass_loss,
    multilabel_loss,
)

__all__ = ["OBJECTIVES", "SupervisedObjective", "multiclass_loss", "multilabel_loss"]
