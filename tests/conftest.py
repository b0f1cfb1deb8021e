"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Events per process in the shared generated sample (``generated_dir``).
GENERATED_EVENTS = 200
GENERATED_SEED = 1


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``<process>.root`` (200 events, MPI off, seed 1) for every process.

    Made once per test session with ``hepfm.generate.generate_samples`` (about 10-15 s on
    one core); other test files reuse it. Skipped when pythia8mc or fastjet is missing.
    """
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from hepfm.generate import generate_samples
    from hepfm.processes import PROCESSES

    out = tmp_path_factory.mktemp("generated")
    generate_samples(list(PROCESSES), GENERATED_EVENTS, out, seed=GENERATED_SEED, workers=1,
                     mpi=False, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_pretrained(generated_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model (width 16, one block) with real normalisation statistics, saved as a run
    directory."""
    import torch

    from hepfm.data import FeatureStats, load_events
    from hepfm.models.foundation import FoundationModel, ModelConfig

    torch.manual_seed(0)
    stats = FeatureStats.from_table(load_events(generated_dir, ["tt", "ttH"]))
    model = FoundationModel(ModelConfig(hidden=16, blocks=1, head_hidden=16), stats)
    path = tmp_path_factory.mktemp("pretrained")
    model.save_pretrained(path)
    return path
