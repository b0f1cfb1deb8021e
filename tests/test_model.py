"""The foundation model: shapes, invariances, heads, representations, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from hepfm.errors import CheckpointError, UnknownNameError
from hepfm.hub import load_pretrained, save_pretrained
from hepfm.models import FoundationModel, ModelConfig
from tests.synthetic_graphs import N_LABELS, make_batch, permute_event_objects

LABELS = tuple(f"label_{i}" for i in range(N_LABELS))


def tiny(**kw) -> FoundationModel:
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=16, blocks=2, head_hidden=8, labels=LABELS, **kw)
    return FoundationModel(cfg).eval()


def test_output_shapes_and_default_size() -> None:
    batch = make_batch(8)
    model = tiny()
    out = model(batch)
    assert out["multiclass"].shape == (8, 12)
    assert out["multilabel"].shape == (8, N_LABELS)
    assert model.embed(batch).shape == (8, 16)
    assert model.node_embeddings(batch).shape == (batch.num_nodes, 16)
    default = FoundationModel(ModelConfig(labels=LABELS))
    assert 4 * default.n_parameters() < 5_000_000  # a few MB of float32 weights


def test_permutation_invariance() -> None:
    batch = make_batch(10, seed=3)
    model = tiny()
    a, b = model(batch), model(permute_event_objects(batch))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-5)
    ra, rb = model.representations(batch), model.representations(permute_event_objects(batch))
    for name in ra:
        torch.testing.assert_close(ra[name], rb[name], atol=1e-5, rtol=1e-5)


def test_events_do_not_interact() -> None:
    batch = make_batch(6, seed=4)
    model = tiny()
    alone = make_batch(1, seed=4, n_objects=[batch[0].num_nodes - 1])
    full = model(batch)["multiclass"][0]
    single = model(alone)["multiclass"][0]
    assert full.shape == single.shape  # and the rest of the batch cannot change event 0:
    other = make_batch(6, seed=9)
    mixed = type(batch).from_data_list([batch[0], *other.to_data_list()[1:]])
    torch.testing.assert_close(model(mixed)["multiclass"][0], full, atol=1e-5, rtol=1e-5)


def test_zero_object_events() -> None:
    batch = make_batch(4, n_objects=[0, 0, 3, 0])  # MET-only events have no edges
    model = tiny()
    out = model(batch)
    assert torch.isfinite(out["multiclass"]).all()
    only_met = make_batch(3, n_objects=[0, 0, 0])
    assert only_met.edge_index.shape[1] == 0
    assert torch.isfinite(model(only_met)["multilabel"]).all()


def test_with_head_and_parameter_groups() -> None:
    model = tiny()
    assert model.with_head("task", 2, hidden=4) is model
    assert model(make_batch(3))["task"].shape == (3, 2)
    backbone = {id(p) for p in model.backbone_parameters()}
    head = {id(p) for p in model.head_parameters("task")}
    assert backbone and head and not backbone & head
    assert len(list(model.head_parameters())) > len(head)
    with pytest.raises(KeyError, match="no head"):
        model.head_parameters("nope")


def test_representations_names_and_shapes() -> None:
    model = tiny().with_head("task", 2)
    reps = model.representations(make_batch(5))
    assert list(reps) == ["encoder", "block_1", "block_2", "readout", "head_input:multiclass",
                          "head_input:multilabel", "head_input:task"]
    assert reps["encoder"].shape == (5, 32) and reps["block_2"].shape == (5, 32)
    assert reps["readout"].shape == (5, 16)
    assert reps["head_input:multiclass"].shape == (5, 8)  # head hidden layer
    assert reps["head_input:task"].shape == (5, 16)  # no hidden layer: the readout


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = tiny().with_head("task", 3)
    with torch.no_grad():
        model.backbone.normalizer.node_mean.fill_(0.5)
    batch = make_batch(6)
    expected = model(batch)
    model.save_pretrained(tmp_path / "run", seed=7, processes=["ttH", "tt"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.yaml", "model.safetensors"]
    loaded = load_pretrained(tmp_path / "run")
    assert not loaded.training
    got = loaded(batch)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=0, rtol=0)
    assert loaded.run_config["seed"] == 7
    assert loaded.config == model.config


def _saved(tmp_path: Path) -> Path:
    return save_pretrained(tiny(), tmp_path / "m")


def _edit_config(path: Path, edit) -> None:
    cfg = yaml.safe_load((path / "config.yaml").read_text())
    edit(cfg)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_incompatible_version(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _edit_config(path, lambda c: c.update(hepfm_version="7.0.0"))
    with pytest.raises(CheckpointError, match=r"hepfm 7\.0\.0.*major"):
        load_pretrained(path)


def test_incompatible_features(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _edit_config(path, lambda c: c["model"]["features"]["edge"].append("delta_pt"))
    with pytest.raises(CheckpointError, match=r"edge features.*delta_pt"):
        load_pretrained(path)


def test_incompatible_architecture(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _edit_config(path, lambda c: c["model"].update(hidden=32))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_pretrained(path)
    _edit_config(path, lambda c: c["model"].update(hidden=16, blocks=3))
    with pytest.raises(CheckpointError, match=r"missing weights.*blocks\.2"):
        load_pretrained(path)
    _edit_config(path, lambda c: c["model"].update(blocks=2, wings=4))
    with pytest.raises(CheckpointError, match="wings"):
        load_pretrained(path)


def test_extra_weights(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    state = load_file(str(path / "model.safetensors"))
    state["rogue.weight"] = torch.zeros(2)
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected weights \['rogue.weight'\]"):
        load_pretrained(path)


def test_unknown_name_lists_shipped(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"pretrained model 'nosuch'.*Known"):
        load_pretrained("nosuch")
    with pytest.raises(CheckpointError, match=r"no config\.yaml"):
        load_pretrained(tmp_path)


def test_shipped_model_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hepfm.hub as hub
    import hepfm.pretrained
    from hepfm.models.release import stamp_release

    monkeypatch.setattr(hepfm.pretrained, "PRETRAINED_DIR", tmp_path)
    monkeypatch.setattr(hepfm.pretrained, "RELEASES_FILE", tmp_path / "releases.yaml")
    model = tiny()
    save_pretrained(model, tmp_path / "hepfm-tiny")
    assert hub.available_models() == ["hepfm-tiny"]
    with pytest.raises(CheckpointError, match="must record name 'hepfm-tiny', version"):
        load_pretrained("hepfm-tiny")  # a shipped model without a release
    stamp_release(tmp_path / "hepfm-tiny", "hepfm-tiny", "0.1.0",
                  releases_file=tmp_path / "releases.yaml")
    batch = make_batch(4)
    torch.testing.assert_close(load_pretrained("hepfm-tiny")(batch)["multiclass"],
                               model(batch)["multiclass"])
    with pytest.raises(UnknownNameError, match="hepfm-tiny"):
        load_pretrained("hepfm-tin")


# -- Hugging Face-style persistence ---------------------------------------------------------
def test_from_pretrained_builds_through_cls_and_top_level(tmp_path: Path) -> None:
    import hepfm

    class Tagged(FoundationModel):
        pass

    model = tiny()
    model.save_pretrained(tmp_path / "m")
    loaded = Tagged.from_pretrained(tmp_path / "m")
    assert type(loaded) is Tagged and not loaded.training
    assert hepfm.FoundationModel is FoundationModel
    batch = make_batch(3)
    torch.testing.assert_close(loaded(batch)["multiclass"], model(batch)["multiclass"],
                               atol=0, rtol=0)
    assert type(hepfm.load_pretrained(tmp_path / "m")) is FoundationModel


def test_normalisation_has_one_home(tmp_path: Path) -> None:
    model = tiny()
    with torch.no_grad():
        model.backbone.normalizer.edge_std.fill_(2.5)
        model.backbone.normalizer.node_mean[1] = -0.75
    assert model.stats.edge_std.tolist() == [2.5] * 4  # read from the buffers
    assert model.stats.node_mean[1] == -0.75
    model.save_pretrained(tmp_path / "m")
    saved = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["normalisation"]
    assert saved == model.stats.to_dict()
    assert saved["edge_std"] == [2.5] * 4 and saved["edge_features"][0] == "delta_eta"
    # setting the stats writes the buffers: the one source of truth
    other = tiny()
    other.stats = model.stats
    assert torch.equal(other.backbone.normalizer.node_mean, model.backbone.normalizer.node_mean)


@pytest.mark.parametrize("old", ["buffer_names", "absent", "garbage"])
def test_old_run_directories_still_load(tmp_path: Path, old: str) -> None:
    """Earlier hepfm wrote the normaliser's own dict, or nothing; the weights decide."""
    model = tiny()
    with torch.no_grad():
        model.backbone.normalizer.global_mean.fill_(0.25)
    path = save_pretrained(model, tmp_path / "m")
    edits = {"buffer_names": lambda c: c.update(normalisation=model.backbone.normalizer.to_dict()),
             "absent": lambda c: c.pop("normalisation"),
             "garbage": lambda c: c.update(normalisation={"node_mean": "?"})}
    _edit_config(path, edits[old])
    loaded = FoundationModel.from_pretrained(path)
    assert loaded.stats.global_mean.tolist() == [0.25] * 5
    batch = make_batch(2)
    torch.testing.assert_close(loaded(batch)["multiclass"], model(batch)["multiclass"])


def test_shipped_model_loads_by_name_with_its_normalisation() -> None:
    from hepfm.pretrained import PRETRAINED_DIR

    model = FoundationModel.from_pretrained("hepfm-small")
    saved = yaml.safe_load((PRETRAINED_DIR / "hepfm-small" / "config.yaml").read_text())
    for key in ("node_mean", "node_std", "edge_mean", "global_std"):
        np_saved = torch.tensor(saved["normalisation"][key], dtype=torch.float32)
        torch.testing.assert_close(getattr(model.backbone.normalizer, key), np_saved)
    assert model.run_config["model"]["hidden"] == model.config.hidden == 64


# -- PyG-style network modules ---------------------------------------------------------------
def test_graph_network_forward_and_run_agree() -> None:
    model = tiny()
    batch = make_batch(4)
    x, u, stages = model.backbone(batch, collect=True)
    x2, u2, stages2 = model.backbone(batch, collect=True)
    assert torch.equal(x, x2) and torch.equal(u, u2) and list(stages) == list(stages2)
    assert torch.equal(model.embed(batch), u)


def test_reset_parameters_redraws_like_a_fresh_build() -> None:
    from hepfm.models import GraphNetBlock, GraphNetwork
    from hepfm.models.config import default_features

    torch.manual_seed(0)
    fresh = GraphNetwork(default_features(), hidden=8, blocks=2, masking=True)
    torch.manual_seed(1)
    net = GraphNetwork(default_features(), hidden=8, blocks=2, masking=True)
    with torch.no_grad():
        net.normalizer.node_mean.fill_(3.0)
    assert not torch.equal(net.blocks[1].edge_mlp[0].weight, fresh.blocks[1].edge_mlp[0].weight)
    torch.manual_seed(0)
    net.reset_parameters()
    for (name, a), b in zip(fresh.named_parameters(), net.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert torch.all(net.normalizer.node_mean == 3.0)  # data, not parameters: kept
    torch.manual_seed(0)
    block = GraphNetBlock(8)
    torch.manual_seed(2)
    other = GraphNetBlock(8)
    torch.manual_seed(0)
    other.reset_parameters()
    for a, b in zip(block.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_reprs_show_channels() -> None:
    from hepfm.models import GraphNetBlock

    text = repr(GraphNetBlock(16, mlp_layers=2, dropout=0.1))
    assert text.startswith("GraphNetBlock(16, mlp_layers=2, dropout=0.1")
    assert "edge_model=MLP[e, x_src, x_dst, u](64 -> 16 -> 16)" in text
    assert "global_model=MLP[u, mean_x, mean_e](48 -> 16 -> 16)" in text
    net = repr(tiny().backbone)
    assert "in_channels=(node=13, edge=4, global=5), hidden=16, blocks=2" in net
    assert "Normalizer(node=13, edge=4, global=5)" in net
