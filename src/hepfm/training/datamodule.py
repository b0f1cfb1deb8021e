"""LightningDataModule over hepfm.data: load events once, split, batch by array code."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from hepfm.data import EventBatches, EventTable, FeatureStats, load_events

#: (train, validation, test) fractions of every process.
DEFAULT_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)


class EventDataModule(L.LightningDataModule):
    """Events of `processes` from `data_dir`, split per process with `seed`.

    The table is read once (and cached as ``.npz`` in `cache_dir`); the normalisation
    statistics are computed on the training part. Loaders yield ready ``Batch`` objects
    (:class:`hepfm.data.EventBatches`), shared out over distributed ranks.
    """

    def __init__(self, data_dir: str | os.PathLike[str], processes: Sequence[str],
                 events_per_process: int | None = None, batch_size: int = 256, seed: int = 0,
                 split: Sequence[float] = DEFAULT_SPLIT, num_workers: int = 0,
                 cache_dir: str | os.PathLike[str] | None = None):
        super().__init__()
        self.data_dir = Path(data_dir)
        self.processes = list(processes)
        self.events_per_process = events_per_process
        self.batch_size, self.seed, self.split = batch_size, seed, tuple(split)
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.train: EventTable | None = None
        self.val: EventTable | None = None
        self.test: EventTable | None = None
        self.stats: FeatureStats | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        table = load_events(self.data_dir, self.processes, self.events_per_process,
                            cache_dir=self.cache_dir)
        self.train, self.val, self.test = table.split(self.split, seed=self.seed)
        self.stats = FeatureStats.from_table(self.train)

    @property
    def has_multilabels(self) -> bool:
        self.setup()
        return self.train is not None and self.train.y_multi is not None

    def _loader(self, table: EventTable | None, shuffle: bool, shard: bool = True
                ) -> DataLoader:
        assert table is not None, "call setup() first"
        ds = EventBatches(table, self.batch_size, shuffle=shuffle, seed=self.seed, shard=shard)
        return DataLoader(ds, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, shuffle=False)
