"""LightningDataModule over hepfm.data: make missing samples, load events once (or stream
them), split, batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from hepfm.data import EventBatches, EventTable, FeatureStats, StreamingEvents, load_events
from hepfm.data.datasets import _rank_world, _worker, resolve_sources
from hepfm.data.reading import open_file
from hepfm.samples import default_data_dir, ensure_samples

#: (train, validation, test) fractions of every process.
DEFAULT_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: Streaming: training events (all processes together) used for the normalisation statistics.
STATS_EVENTS = 100_000
#: Streaming: at most this many validation (and test) events per process are held in memory.
EVAL_EVENTS = 10_000
#: Events per process generated for a missing sample when `events_per_process` is not given.
SAMPLE_EVENTS = 2000

Range = tuple[int, int]


def entry_ranges(n_entries: int, split: Sequence[float]) -> tuple[Range, Range, Range]:
    """(train, validation, test) entry ranges of a file of `n_entries`: consecutive blocks."""
    total = sum(split)
    a = round(n_entries * split[0] / total)
    b = round(n_entries * (split[0] + split[1]) / total)
    return (0, a), (a, b), (b, n_entries)


class RangedStreamingEvents(StreamingEvents):
    """:class:`StreamingEvents` over one entry range per file, with a known length.

    Every rank yields the same number of batches (``len(self)``, for Lightning and DDP):
    a rank whose share is a few events larger drops its last partial batch.
    """

    def __init__(self, source: dict[str, list[str]], ranges: dict[str, Range],
                 num_workers: int = 0, **kwargs: object):
        super().__init__(source, split_files=True, **kwargs)  # type: ignore[arg-type]
        self.ranges, self.num_workers = ranges, num_workers

    def _entry_range(self, path: str) -> tuple[int, int]:
        return self.ranges[path]

    def _batches(self, shard: int, n_shards: int) -> int:
        n = sum(b - a for _, a, b, _ in self.work_units(shard, n_shards, 0))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _worker_cap(self, worker: int, n_workers: int, world: int) -> int:
        """Batches of `worker` on every rank: the fewest any rank's same worker has."""
        return min(self._batches(r * n_workers + worker, world * n_workers)
                   for r in range(world))

    def __len__(self) -> int:
        _, world = _rank_world()
        nw = max(1, self.num_workers)
        return sum(self._worker_cap(w, nw, world) for w in range(nw))

    def __iter__(self):  # type: ignore[override]
        wid, nw = _worker()
        cap = self._worker_cap(wid, nw, _rank_world()[1])
        for k, batch in enumerate(super().__iter__()):
            if k >= cap:
                break
            yield batch


class EventDataModule(L.LightningDataModule):
    """Events of `processes` from `data_dir`, split per process with `seed`.

    :meth:`prepare_data` makes missing samples (Lightning calls it on one process per node;
    under torchrun or SLURM only rank 0 generates and the other ranks wait): with `generate`,
    or when `data_dir` is None (then :func:`~hepfm.samples.default_data_dir`), else missing
    files are an error naming the ``hepfm generate`` command. `seed` is also the generation
    seed. When the model depends on the data (its normalisation), call ``prepare_data()`` and
    ``setup("fit")`` before building it, as Lightning's documentation shows.

    The table is read once (and cached as ``.npz`` in `cache_dir`); the normalisation
    statistics are computed on the training part. Loaders yield ready ``Batch`` objects
    (:class:`hepfm.data.EventBatches`), shared out over distributed ranks.

    With `streaming`, nothing is loaded whole: every file (its first `events_per_process`
    entries, if given) is split into consecutive entry blocks (first 80% training, next 10%
    validation, last 10% test), so the split is fixed by the files, not by `seed`. Training
    batches are streamed (:class:`RangedStreamingEvents`, sharded over ranks and workers);
    validation and test keep at most `eval_events` events per process in memory
    (``self.val``, ``self.test``); the statistics come from ``self.sample``, the first
    `stats_events` training events (shared over processes). ``self.train`` stays ``None``.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None, processes: Sequence[str],
                 events_per_process: int | None = None, batch_size: int = 256, seed: int = 0,
                 split: Sequence[float] = DEFAULT_SPLIT, num_workers: int = 0,
                 cache_dir: str | os.PathLike[str] | None = None, streaming: bool = False,
                 stats_events: int = STATS_EVENTS, eval_events: int = EVAL_EVENTS, *,
                 generate: bool = False, sample_events: int | None = None,
                 generate_workers: int | None = None, verbose: bool = True,
                 on_invalid: str = "error"):
        super().__init__()
        self.on_invalid = on_invalid
        self.generate = generate or data_dir is None
        self.data_dir = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
        self.sample_events = sample_events or events_per_process or SAMPLE_EVENTS
        self.generate_workers, self.verbose = generate_workers, verbose
        self.processes = list(processes)
        self.events_per_process = events_per_process
        self.batch_size, self.seed, self.split = batch_size, seed, tuple(split)
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.train: EventTable | None = None
        self.val: EventTable | None = None
        self.test: EventTable | None = None
        self.stats: FeatureStats | None = None
        self.streaming, self.stats_events, self.eval_events = streaming, stats_events, eval_events
        self.sample: EventTable | None = None
        self.sources: dict[str, list[str]] = {}
        self.ranges: dict[str, tuple[Range, Range, Range]] = {}

    def prepare_data(self) -> None:
        """Make the missing samples (`sample_events` per process), or name the command."""
        ensure_samples(self.processes, self.data_dir, self.sample_events, self.seed,
                       self.generate, workers=self.generate_workers, verbose=self.verbose)

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None or self.sample is not None:
            return
        if self.streaming:
            self._setup_streaming()
            return
        table = load_events(self.data_dir, self.processes, self.events_per_process,
                            cache_dir=self.cache_dir, on_invalid=self.on_invalid)
        self.train, self.val, self.test = table.split(self.split, seed=self.seed)
        self.stats = FeatureStats.from_table(self.train)

    def _read(self, part: int, max_events: int | None) -> EventTable:
        """The first `max_events` events of split `part` (0 train, 1 val, 2 test) per process."""
        return load_events(self.sources, None, max_events, on_invalid=self.on_invalid,
                           entry_ranges={f: r[part] for f, r in self.ranges.items()})

    def _setup_streaming(self) -> None:
        self.sources = resolve_sources(self.data_dir, self.processes)
        for files in self.sources.values():
            for f in files:
                n = open_file(f, allow_empty=True).num_entries
                if self.events_per_process is not None:
                    n = min(n, self.events_per_process)
                self.ranges[f] = entry_ranges(n, self.split)
        self.val = self._read(1, self.eval_events)
        self.test = self._read(2, self.eval_events)
        self.sample = self._read(0, max(1, self.stats_events // len(self.sources)))
        self.stats = FeatureStats.from_table(self.sample)

    def entries(self, part: int = 0) -> dict[str, int]:
        """Streaming: entries of split `part` (0 train, 1 val, 2 test) per process."""
        return {p: sum(self.ranges[f][part][1] - self.ranges[f][part][0] for f in fs)
                for p, fs in self.sources.items()}

    @property
    def train_sample(self) -> EventTable | None:
        """The training events in memory: all of them, or when streaming the statistics
        sample (``self.sample``)."""
        return self.sample if self.streaming else self.train

    def train_events(self) -> int:
        """Number of training events (all processes)."""
        if self.streaming:
            return sum(self.entries(0).values())
        return 0 if self.train is None else len(self.train)

    def process_counts(self) -> dict[str, int]:
        """Events per process over training, validation and test."""
        if self.streaming:
            return {p: sum(self.entries(k)[p] for k in range(3)) for p in self.processes}
        tables = [t for t in (self.train, self.val, self.test) if t is not None]
        return {p: sum(t.process_counts().get(p, 0) for t in tables) for p in self.processes}

    @property
    def has_multilabels(self) -> bool:
        self.setup()
        table = self.train_sample
        return table is not None and table.y_multi is not None

    def _loader(self, table: EventTable | None, shuffle: bool, shard: bool = True
                ) -> DataLoader:
        assert table is not None, "call setup() first"
        ds = EventBatches(table, self.batch_size, shuffle=shuffle, seed=self.seed, shard=shard)
        return DataLoader(ds, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        if self.streaming:
            ds = RangedStreamingEvents(
                self.sources, {f: r[0] for f, r in self.ranges.items()},
                num_workers=self.num_workers, batch_size=self.batch_size, seed=self.seed,
                on_invalid=self.on_invalid)
            return DataLoader(ds, batch_size=None, num_workers=self.num_workers,
                              persistent_workers=False)
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, shuffle=False)
