"""Deprecated: task events moved to :mod:`hepfm.taskdata` (``hepfm.load_task_events``)."""

import warnings

from hepfm.taskdata import (  # noqa: F401
    TEST_SEED,
    TaskSplits,
    lepton_counts,
    load_task_events,
    split_indices,
    split_task,
)

warnings.warn("hepfm.training.taskdata moved to hepfm.taskdata (hepfm.load_task_events, "
              "hepfm.split_task)", DeprecationWarning, stacklevel=2)
