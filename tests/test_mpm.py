"""Masked particle modeling: masking rules, no leaks, permutations, codebook, training, runs."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from hepfm.data.features import MET
from hepfm.data.graphs import build_batch
from hepfm.data.normalization import FeatureStats
from hepfm.errors import UnknownNameError
from hepfm.hub import load_pretrained
from hepfm.models import FoundationModel, ModelConfig
from hepfm.objectives.combined import PretrainObjective
from hepfm.objectives.masking import mask_counts, mask_nodes
from hepfm.objectives.mpm import MaskedParticleObjective, fit_codebook, mpm_targets
from hepfm.taskdata import split_task
from hepfm.training.finetune import FinetuneConfig, finetune, prepare_model
from hepfm.training.module import PretrainModule
from tests.synthetic_graphs import make_batch
from tests.test_finetune import synthetic_table

CODEBOOK = 8


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(seed: int = 0, stats: FeatureStats | None = None) -> FoundationModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(hidden=16, blocks=2, head_hidden=16, labels=(),
                      mpm={"codebook_size": CODEBOOK, "hidden": 16})
    return FoundationModel(cfg, stats).eval()


def with_codebook(model: FoundationModel, seed: int = 0) -> FoundationModel:
    model.mpm.codebook.copy_(torch.randn(CODEBOOK, 13, generator=torch.Generator()
                                         .manual_seed(seed)))
    return model


def test_mask_counts_and_rules() -> None:
    n_obj = [0, 1, 2, 3, 5, 8, 10, 1, 0]
    b = make_batch(len(n_obj), seed=2, n_objects=n_obj)
    mask = mask_nodes(b.batch, b.node_type, 0.3, torch.Generator().manual_seed(0))
    assert not mask[b.node_type == MET].any()
    per_event = torch.bincount(b.batch[mask], minlength=len(n_obj)).tolist()
    assert per_event == [0, 1, 1, 1, 2, 2, 3, 1, 0]
    assert mask_counts(torch.tensor(n_obj), 1.0).tolist() == [0, 1, 1, 2, 4, 7, 9, 1, 0]
    again = mask_nodes(b.batch, b.node_type, 0.3, torch.Generator().manual_seed(0))
    other = mask_nodes(b.batch, b.node_type, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(mask, again) and not torch.equal(mask, other)
    with pytest.raises(ValueError, match="fraction"):
        mask_nodes(b.batch, b.node_type, 0.0)


def test_mask_choice_is_uniform_over_positions() -> None:
    # 4000 copies of one event (4 objects, MET in the middle): every object equally likely
    types = torch.tensor([0, 1, MET, 2, 3])
    n_ev = 4000
    batch = torch.arange(n_ev).repeat_interleave(5)
    mask = mask_nodes(batch, types.repeat(n_ev), 0.25, torch.Generator().manual_seed(3))
    freq = mask.view(n_ev, 5).float().mean(0)
    assert freq[2] == 0
    assert torch.allclose(freq[[0, 1, 3, 4]], torch.full((4,), 0.25), atol=0.03)


def _masked_changed(b: Batch, mask: torch.Tensor, seed: int) -> Batch:
    """`b` with new random features for masked nodes, their edges and the globals."""
    g = torch.Generator().manual_seed(seed)
    out = b.clone()
    touch = mask[b.edge_index[0]] | mask[b.edge_index[1]]
    out.x[mask] = torch.randn(int(mask.sum()), b.x.shape[1], generator=g) * 5
    out.edge_attr[touch] = torch.randn(int(touch.sum()), b.edge_attr.shape[1], generator=g)
    events = torch.unique(b.batch[mask])  # events without a masked object keep their globals
    out.u[events] = torch.randn(len(events), b.u.shape[1], generator=g) * 3
    return out


def test_masked_features_cannot_be_read_back() -> None:
    model = tiny()
    b = make_batch(7, seed=5, n_objects=[1, 2, 4, 0, 6, 3, 1])
    mask = mask_nodes(b.batch, b.node_type, 0.4, torch.Generator().manual_seed(2))
    ref_x, ref_u, _ = model.backbone(b, node_mask=mask)
    x, u, _ = model.backbone(_masked_changed(b, mask, 1), node_mask=mask)
    assert torch.equal(x, ref_x) and torch.equal(u, ref_u)
    # zero everything but the masked positions: the same outputs as all-zero inputs
    only = b.clone()
    touch = mask[b.edge_index[0]] | mask[b.edge_index[1]]
    only.x[~mask] = 0
    only.edge_attr[~touch] = 0
    only.u[~torch.isin(torch.arange(len(b.u)), b.batch[mask])] = 0
    zero = only.clone()
    zero.x[:] = 0
    zero.edge_attr[:] = 0
    zero.u[:] = 0
    for a, c in zip(model.backbone(only, node_mask=mask)[:2],
                    model.backbone(zero, node_mask=mask)[:2], strict=True):
        assert torch.equal(a, c)
    # gradients: nothing flows back to the masked inputs or the globals
    xg = b.x.clone().requires_grad_(True)
    ug = b.u.clone().requires_grad_(True)
    bg = b.clone()
    bg.x, bg.u = xg, ug
    h = model.node_embeddings(bg, node_mask=mask)
    h.sum().backward()
    assert xg.grad[mask].abs().max() == 0 and ug.grad[b.batch[mask]].abs().max() == 0
    assert xg.grad[~mask].abs().max() > 0
    # without a mask the backbone is unchanged and the inputs do matter
    assert not torch.equal(model.embed(b), model.embed(_masked_changed(b, mask, 1)))


def _permuted(b: Batch, seed: int) -> tuple[Batch, torch.Tensor]:
    """Objects shuffled within each event (and edges reordered); returns (batch, perm)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.argsort(b.batch.double() * 2 + torch.rand(b.num_nodes, generator=g,
                                                           dtype=torch.float64))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    e_perm = torch.randperm(b.edge_index.shape[1], generator=g)
    out = b.clone()
    out.x, out.node_type = b.x[perm], b.node_type[perm]
    out.edge_index, out.edge_attr = inv[b.edge_index][:, e_perm], b.edge_attr[e_perm]
    return out, perm


def test_permutation_free_predictions_and_loss() -> None:
    model = with_codebook(tiny())
    b = make_batch(8, seed=7, n_objects=[3, 1, 0, 5, 2, 7, 4, 1])
    mask = mask_nodes(b.batch, b.node_type, 0.3, torch.Generator().manual_seed(4))
    pb, perm = _permuted(b, 9)
    assert not torch.equal(pb.node_type, b.node_type)
    h = model.node_embeddings(b, node_mask=mask)
    hp = model.node_embeddings(pb, node_mask=mask[perm])
    torch.testing.assert_close(hp, h[perm], atol=1e-5, rtol=1e-5)
    obj = MaskedParticleObjective()
    loss, parts, _ = obj(model, b, node_mask=mask)
    loss_p, parts_p, _ = obj(model, pb, node_mask=mask[perm])
    torch.testing.assert_close(loss_p, loss, atol=1e-5, rtol=1e-5)
    for name, part in parts.items():
        torch.testing.assert_close(parts_p[name], part, atol=1e-5, rtol=1e-5)
    assert set(parts) == {"mpm_type", "mpm_regression", "mpm_tokens"}


def test_codebook_fit_save_reload_same_tokens(tmp_path: Path) -> None:
    table = synthetic_table(400, seed=1)
    model = tiny(stats=FeatureStats.from_table(table))
    centroids = fit_codebook(model, table, seed=0)
    assert centroids.shape == (CODEBOOK, 13)
    assert torch.equal(fit_codebook(tiny(stats=FeatureStats.from_table(table)), table, seed=0),
                       centroids)
    b = build_batch(table[:50])
    mask = b.node_type != MET
    tokens = mpm_targets(model, b, mask)["tokens"]
    assert len(torch.unique(tokens)) > 1
    model.save_pretrained(tmp_path / "m")
    loaded = load_pretrained(tmp_path / "m")
    assert torch.equal(loaded.mpm.codebook, model.mpm.codebook)
    assert torch.equal(mpm_targets(loaded, b, mask)["tokens"], tokens)
    assert yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["model"]["mpm"] == \
        {"codebook_size": CODEBOOK, "hidden": 16}
    with pytest.raises(ValueError, match="not fitted"):
        mpm_targets(tiny(), b, mask)


def test_single_object_and_empty_events() -> None:
    model = with_codebook(tiny())
    obj = MaskedParticleObjective()
    empty = make_batch(3, seed=1, n_objects=[0, 0, 0])
    loss, parts, stats = obj(model, empty)
    assert loss.item() == 0.0 and parts == {} and float(stats["masked"]) == 0
    single = make_batch(4, seed=1, n_objects=[1, 1, 0, 1])
    loss, parts, stats = obj(model, single)
    assert float(stats["masked"]) == 3 and torch.isfinite(loss)


def test_loss_decreases_on_a_tiny_sample() -> None:
    table = synthetic_table(32, seed=2)
    model = tiny(stats=FeatureStats.from_table(table)).train()
    fit_codebook(model, table, seed=0)
    b = build_batch(table)
    obj = MaskedParticleObjective()
    mask = obj.mask(b, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _, _ = obj(model, b, node_mask=mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_objective_names() -> None:
    o = PretrainObjective.from_name("mpm:0.5+multiclass")
    assert o.heads == ("multiclass",) and o.mpm is not None and o.mpm_weight == 0.5
    assert PretrainObjective.from_name("mpm").heads == ()
    assert PretrainObjective.from_name("mpm+both").heads == ("multiclass", "multilabel")
    assert PretrainObjective.from_name("multiclass").mpm is None
    with pytest.raises(UnknownNameError, match="mpn"):
        PretrainObjective.from_name("mpn")
    with pytest.raises(ValueError, match="MPM head"):
        PretrainModule(FoundationModel(ModelConfig(hidden=8, blocks=1, labels=())), "mpm")


def test_mpm_plus_multiclass_trains_in_lightning() -> None:
    table = synthetic_table(96, seed=3)
    model = tiny(stats=FeatureStats.from_table(table)).train()
    fit_codebook(model, table, seed=0)
    batches = [build_batch(table[i:i + 32]) for i in range(0, 96, 32)]
    module = PretrainModule(model, "mpm+multiclass", schedule="constant")
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(batches, batch_size=None),
                DataLoader(batches[:1], batch_size=None))
    logged = trainer.callback_metrics
    assert {"val/loss", "val/mpm_type_acc", "val/mpm_token_acc", "val/loss_mpm_tokens",
            "val/loss_multiclass"} <= set(logged)


@pytest.mark.slow
def test_pretrain_mpm_end_to_end(generated_dir: Path, tmp_path: Path) -> None:
    from hepfm.training.pretrain import PretrainConfig, pretrain

    out = tmp_path / "mpm"
    config = PretrainConfig("all", "mpm", generated_dir, 200, 1, 256, seed=2,
                            model_config={"hidden": 16, "blocks": 1, "head_hidden": 16},
                            mpm={"codebook_size": 16})
    result = pretrain(config, out, device="cpu", progress=False, verbose=False)
    test = result.metrics["test"]
    assert {"mpm_type_accuracy", "mpm_token_accuracy", "mpm_regression_loss"} <= set(test)
    assert 0 <= test["mpm_token_accuracy"] <= 1 and test["mpm_masked_objects"] > 0
    assert not (out / "confusion_matrix.csv").exists()
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["objective"] == "mpm" and config["mpm"]["fraction"] == 0.3
    model = load_pretrained(out)
    assert model.mpm is not None and model.mpm.has_codebook
    assert model.mpm.codebook.shape == (16, 13)
    # fine-tuning from the MPM run uses the usual API (the multiclass head is unused)
    splits = split_task(synthetic_table(600, seed=4), train_size=120, seed=0)
    tuned = prepare_model(model, "task", mode="full")
    res = finetune(tuned, splits.train, splits.val,
                   config=FinetuneConfig(mode="full", epochs=1, batch_size=64))
    assert res.model.heads["task"].out.out_features == 1
    assert not torch.equal(res.model.backbone.encoders["node"][0][0].weight,
                           model.backbone.encoders["node"][0][0].weight)
    np.testing.assert_array_equal(model.mpm.codebook.numpy(), res.model.mpm.codebook.numpy())
