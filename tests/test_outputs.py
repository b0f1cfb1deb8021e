"""Validation metrics of both Lightning modules come from all events of all ranks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from sklearn.metrics import roc_auc_score

from hepfm.training.outputs import EventOutputs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_data(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(rank)
    y = torch.randint(0, 2, (50 + 30 * rank,), generator=g)
    logits = (y.float() * (1.0 + rank) + torch.randn(len(y), generator=g)).unsqueeze(1)
    return logits, y


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    metric = EventOutputs(["task"])
    logits, y = _rank_data(rank)
    for a in range(0, len(y), 20):  # several validation batches
        metric.update({"task": logits[a:a + 20]}, y[a:a + 20])
    seen = metric.compute()
    np.savez(Path(out) / f"rank{rank}.npz", **seen)
    dist.destroy_process_group()


@pytest.mark.slow
def test_outputs_are_gathered_across_ranks(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    parts = [_rank_data(r) for r in range(2)]
    logits = torch.cat([p[0] for p in parts]).numpy()
    y = torch.cat([p[1] for p in parts]).numpy()
    for rank in range(2):
        seen = np.load(tmp_path / f"rank{rank}.npz")
        assert sorted(seen["y"].tolist()) == sorted(y.tolist())
        auc = roc_auc_score(seen["y"], seen["task"][:, 0])
        # the AUC of all events, which differs from the mean of the two per-rank AUCs
        assert auc == pytest.approx(roc_auc_score(y, logits[:, 0]))
        per_rank = np.mean([roc_auc_score(p[1], p[0][:, 0]) for p in parts])
        assert abs(auc - per_rank) > 1e-3


def test_single_process_outputs_and_reset() -> None:
    metric = EventOutputs(["multiclass", "multilabel"], multilabel=True)
    metric.update({"multiclass": torch.ones(3, 4), "multilabel": torch.zeros(3, 2)},
                  torch.tensor([0, 1, 3]), torch.ones(3, 2))
    metric.update({"multiclass": torch.zeros(1, 4), "multilabel": torch.ones(1, 2)},
                  torch.tensor([2]), torch.zeros(1, 2))
    seen = metric.compute()
    assert seen["multiclass"].shape == (4, 4) and seen["y"].tolist() == [0, 1, 3, 2]
    assert seen["y_multi"].shape == (4, 2) and seen["multilabel"][3].tolist() == [1, 1]
    metric.reset()
    assert metric.update_count == 0
    with pytest.raises(ValueError, match="needs y_multi"):
        metric.update({"multiclass": torch.ones(1, 4), "multilabel": torch.ones(1, 2)},
                      torch.tensor([0]))
