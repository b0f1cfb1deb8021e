"""Silence Lightning warnings that do not apply to hepfm's datasets and fine-tuning modes, and
Lightning's console chatter (device lines, tips) unless asked for."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Messages (regular expressions) of warnings that say nothing actionable here.
IRRELEVANT = (
    r".*IterableDataset. has .__len__. defined",  # our datasets shard before __len__
    r".*LeafSpec.* is deprecated",  # inside Lightning itself
    r"Found \d+ module\(s\) in eval mode",  # frozen backbones are in eval mode on purpose
    r".*does not have many workers",  # batches are built whole; workers are an option
    r".*Checkpoint directory.*not empty",  # --resume continues in the same directory
)


#: Starts of Lightning's informational lines that the console does not need.
CHATTER = ("GPU available", "TPU available", "HPU available", "\N{ELECTRIC LIGHT BULB} Tip",
           "LOCAL_RANK", "`Trainer.fit` stopped", "Seed set to",
           "Loading `train_dataloader` to estimate")
#: The Lightning loggers that print them.
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed",
                     "lightning.pytorch.accelerators.cuda")


class _Chatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(CHATTER)


_FILTER = _Chatter()


def quiet_chatter(quiet: bool = True) -> None:
    """Drop (or, with ``quiet=False``, show again) Lightning's :data:`CHATTER` lines."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if quiet:
            logger.addFilter(_FILTER)
        else:
            logger.removeFilter(_FILTER)


def ignore_irrelevant_warnings() -> None:
    """Filter the :data:`IRRELEVANT` warnings and Lightning's chatter for the rest of the
    process (the CLI)."""
    for message in IRRELEVANT:
        warnings.filterwarnings("ignore", message=message)
    quiet_chatter()


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Filter the :data:`IRRELEVANT` warnings inside a ``with`` block only."""
    with warnings.catch_warnings():
        ignore_irrelevant_warnings()
        yield
