"""Two CPU processes, gloo DDP through Lightning: identical weights, disjoint events."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

PROCESSES = ["ttH", "tt", "Z_jets", "QCD_multijet"]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    """One DDP rank, as torchrun would start it (rank and world from the environment)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank), NODE_RANK="0")
    torch.set_num_threads(1)
    import lightning as L
    from torch.utils.data import DataLoader

    from hepfm.data import StreamingEvents
    from hepfm.models import FoundationModel, ModelConfig
    from hepfm.training.module import PretrainModule

    class Record(L.Callback):
        """Fingerprints (MET, HT, counts) of every training event this rank saw."""

        def __init__(self) -> None:
            self.seen: list[torch.Tensor] = []

        def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 batch: Any, batch_idx: int) -> None:
            self.seen.append(batch.u.detach().cpu().clone())

    L.seed_everything(5, verbose=False)
    model = FoundationModel(ModelConfig(hidden=16, blocks=1, head_hidden=None, dropout=0.0))
    module = PretrainModule(model, "multiclass", lr=1e-2, schedule="constant")
    stream = StreamingEvents(data, PROCESSES, batch_size=40, seed=5, buffer_events=200)
    record = Record()
    trainer = L.Trainer(accelerator="cpu", devices=world, strategy="ddp", max_epochs=1,
                        limit_train_batches=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[record])
    trainer.fit(module, train_dataloaders=DataLoader(stream, batch_size=None))
    torch.save({"state": module.model.state_dict(), "seen": torch.cat(record.seen),
                "world": trainer.world_size}, Path(out) / f"rank{rank}.pt")


def test_ddp_two_cpu_ranks(generated_dir: Path, tmp_path: Path) -> None:
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(generated_dir), str(tmp_path)),
             nprocs=world, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    assert all(r["world"] == world for r in results)
    a, b = (r["state"] for r in results)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    # each rank saw 4 batches of 40 events and no event was seen by both ranks
    seen = [{tuple(row) for row in r["seen"].tolist()} for r in results]
    assert all(len(s) == 160 for s in seen)
    assert not seen[0] & seen[1]
