"""``pretrain(streaming=True)``: training streamed from files, split by entry ranges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from hepfm.data import EventTable
from hepfm.data.graphs import build_batch
from hepfm.hub import load_pretrained
from hepfm.training.datamodule import EventDataModule, entry_ranges
from hepfm.training.module import PretrainModule
from hepfm.training.pretrain import PretrainConfig, pretrain

PROCESSES = "ttH,tt,Z_jets,QCD_multijet"
TINY = {"hidden": 16, "blocks": 1, "head_hidden": 16, "dropout": 0.0}
pytestmark = pytest.mark.slow


def _run(data: Path, out: Path, epochs: int = 1, resume: bool = False) -> Any:
    return pretrain(PretrainConfig(PROCESSES, "multiclass", data), out, epochs=epochs,
                    batch_size=64, device="cpu", seed=3, resume=resume, streaming=True,
                    model_config=None if resume else TINY, progress=False, verbose=False)


def _keys(u: torch.Tensor) -> list[tuple[float, ...]]:
    """Event fingerprints (MET, HT, object counts), sorted."""
    return sorted(tuple(row) for row in u.tolist())


def _u(table: EventTable) -> torch.Tensor:
    return build_batch(table, list(range(len(table))), keep_order=True).u


def test_entry_ranges_are_consecutive_blocks() -> None:
    assert entry_ranges(200, (0.8, 0.1, 0.1)) == ((0, 160), (160, 180), (180, 200))
    assert entry_ranges(0, (0.8, 0.1, 0.1)) == ((0, 0), (0, 0), (0, 0))


def test_streaming_run(generated_dir: Path, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[torch.Tensor] = []
    step = PretrainModule.training_step

    def record(self: PretrainModule, batch: Any, batch_idx: int) -> torch.Tensor:
        seen.append(batch.u.detach().cpu().clone())
        return step(self, batch, batch_idx)

    monkeypatch.setattr(PretrainModule, "training_step", record)
    result = _run(generated_dir, tmp_path / "a")
    monkeypatch.undo()

    # one epoch trains on exactly the training entry ranges, never on val/test events
    dm = EventDataModule(generated_dir, PROCESSES.split(","), streaming=True)
    dm.setup()
    train = dm._read(0, None)
    assert dm.val is not None and dm.test is not None
    assert _keys(torch.cat(seen)) == _keys(_u(train))
    assert len(train) == 4 * 160 and len(dm.val) == len(dm.test) == 4 * 20
    held_out = set(_keys(_u(dm.val))) | set(_keys(_u(dm.test)))
    assert not held_out & set(_keys(torch.cat(seen)))
    assert result.metrics["events"] == {"train": 640, "val": 80, "test": 80}

    # the run directory loads, and the same seed gives the same weights
    model = load_pretrained(tmp_path / "a")
    assert model.run_config["streaming"] is True
    _run(generated_dir, tmp_path / "b")
    a, b = (load_file(tmp_path / r / "model.safetensors") for r in "ab")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)

    # --resume continues the streaming run
    _run(generated_dir, tmp_path / "a", epochs=2, resume=True)
    settings = yaml.safe_load((tmp_path / "a" / "run.yaml").read_text())
    assert settings["streaming"] is True and "events_per_process" not in settings
    assert (tmp_path / "a" / "logs" / "version_1" / "metrics.csv").is_file()


@pytest.mark.parametrize("world,workers", [(3, 0), (2, 2)])
def test_ranks_yield_equal_batch_counts(generated_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        world: int, workers: int) -> None:
    dm = EventDataModule(generated_dir, PROCESSES.split(","), batch_size=50, streaming=True,
                         num_workers=workers, stats_events=100)
    dm.setup()
    counts, seen = [], []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        loader = dm.train_dataloader()
        batches = list(loader)
        assert len(batches) == len(loader.dataset)  # type: ignore[arg-type]
        counts.append(len(batches))
        seen.extend(_keys(torch.cat([b.u for b in batches])))
    assert len(set(counts)) == 1
    assert len(seen) == len(set(seen)) > 0.9 * 640  # disjoint; at most a partial batch dropped
