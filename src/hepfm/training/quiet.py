"""Silence Lightning warnings that do not apply to hepfm's datasets and fine-tuning modes."""

from __future__ import annotations

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


def ignore_irrelevant_warnings() -> None:
    """Filter the :data:`IRRELEVANT` warnings for the rest of the process (the CLI)."""
    for message in IRRELEVANT:
        warnings.filterwarnings("ignore", message=message)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Filter the :data:`IRRELEVANT` warnings inside a ``with`` block only."""
    with warnings.catch_warnings():
        ignore_irrelevant_warnings()
        yield
