"""Defaults shared by the Python API and the ``hepfm`` command, each stated once.

A leaf module without heavy imports, so that ``hepfm --help`` shows them without torch.
"""

from __future__ import annotations

#: Fine-tuning (:class:`hepfm.training.finetune.FinetuneConfig`, :class:`hepfm.FineTuner`,
#: ``hepfm finetune`` and ``hepfm scan``).
EPOCHS = 30
BATCH_SIZE = 256
LR = 2e-3
BACKBONE_LR_FACTOR = 0.1
WEIGHT_DECAY = 1e-4
PATIENCE = 5
SEED = 0
#: Test-set bootstrap resamples of a scan's intervals.
N_BOOT = 1000
#: Training sizes, modes and seeds of a scan.
SCAN_SIZES = (1000, 3000, 10000)
SCAN_MODES = ("scratch", "full", "frozen")
SCAN_SEEDS = (0, 1, 2)
#: What can happen to an event with a bad value as files are read (`on_invalid`).
ON_INVALID = ("error", "drop")
