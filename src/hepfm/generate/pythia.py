"""Pythia 8 for one process and chunk: seeds, settings, and a batch of events as awkward arrays.

Every chunk of events gets its own Pythia instance and seed, so that a file's content depends
only on (user seed, process, chunk index, chunk size) and never on the number of workers or on
which worker made which chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepfm.errors import ArgumentError
from hepfm.processes import DEFAULT_SHOWER, SHOWERS, Process, check_shower

#: Pythia's seeds are 1 ... 900 000 000.
PYTHIA_SEED_MAX = 900_000_000
#: Label ids below this get disjoint blocks of Pythia seeds (the catalog uses 0-11 and 101-104).
MAX_LABEL_ID = 128
_SEEDS_PER_LABEL = PYTHIA_SEED_MAX // MAX_LABEL_ID


@dataclass(frozen=True)
class ChunkSeeds:
    """The two seeds of one (process, chunk): Pythia's and the detector's numpy generator's."""

    pythia: int
    numpy: np.random.SeedSequence

    def rng(self) -> np.random.Generator:
        """A fresh numpy generator for the detector response of this chunk."""
        return np.random.default_rng(self.numpy)


def chunk_seeds(seed: int, label_id: int, chunk: int) -> ChunkSeeds:
    """Seeds for chunk `chunk` of the process with `label_id`, derived from the user `seed`.

    The detector seed is ``SeedSequence(seed, spawn_key=(label_id, chunk))`` (128 bits, no
    collisions in practice). The Pythia seed is an offset drawn from ``SeedSequence(seed)``
    plus ``label_id * 7_031_250 + chunk`` modulo 900 000 000 (plus one): within one run every
    (process, chunk) gets a different Pythia seed, for up to 7 million chunks per process.
    """
    if seed < 0:
        raise ArgumentError(f"seed must be >= 0, got {seed}")
    if not 0 <= label_id < MAX_LABEL_ID:
        msg = f"label_id must be in [0, {MAX_LABEL_ID}), got {label_id}"
        raise ValueError(msg)  # programming error: label ids come from the process catalog
    if not 0 <= chunk < _SEEDS_PER_LABEL:
        raise ArgumentError(f"chunk index must be in [0, {_SEEDS_PER_LABEL}), got {chunk}")
    offset = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] % PYTHIA_SEED_MAX)
    pythia_seed = 1 + (offset + label_id * _SEEDS_PER_LABEL + chunk) % PYTHIA_SEED_MAX
    return ChunkSeeds(pythia_seed, np.random.SeedSequence(seed, spawn_key=(label_id, chunk)))


def pythia_settings(process: Process, pythia_seed: int | None = None, mpi: bool = True,
                    shower: str = DEFAULT_SHOWER) -> list[str]:
    """All Pythia settings for `process`: the catalog's, MPI on/off, the shower and the seed.

    The default shower adds no setting, so default-shower samples keep the settings (and so
    the event-stream identity, :mod:`hepfm.provenance`) they always had; another shower is
    ``PartonShowers:model = N`` and makes another stream.
    """
    settings = [*process.pythia_settings(), f"PartonLevel:MPI = {'on' if mpi else 'off'}"]
    if check_shower(shower) != DEFAULT_SHOWER:
        settings.append(f"PartonShowers:model = {SHOWERS[shower]}")
    if pythia_seed is not None:
        settings += ["Random:setSeed = on", f"Random:seed = {pythia_seed}"]
    return settings


def make_pythia(process: Process, pythia_seed: int, mpi: bool = True,
                shower: str = DEFAULT_SHOWER):
    """An initialised ``pythia8mc.Pythia`` for `process` (about 0.2-0.6 s)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(process, pythia_seed, mpi, shower):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting '{line}' of process {process.name}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise process {process.name}")
    return pythia


def generate_events(process: Process, n_events: int, pythia_seed: int, mpi: bool = True,
                    shower: str = DEFAULT_SHOWER) -> ak.Array:
    """`n_events` events of `process` as Pythia's awkward particle records (``prt`` per event).

    Uses ``Pythia.nextBatch``; events Pythia fails on are skipped and replaced, so exactly
    `n_events` come back.
    """
    pythia = make_pythia(process, pythia_seed, mpi, shower)
    batches, have = [], 0
    for _ in range(100):
        if have >= n_events:
            break
        batch = pythia.nextBatch(n_events - have)
        batches.append(batch.prt)
        have += len(batch)
    if have < n_events:
        raise RuntimeError(f"Pythia produced only {have} of {n_events} events of {process.name}")
    return batches[0] if len(batches) == 1 else ak.concatenate(batches)
