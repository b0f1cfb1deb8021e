"""Datasets: loading many files, splits, sampling, cache, streaming shards, normalisation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hepfm.data import (
    EventBatches,
    EventTable,
    FeatureStats,
    StreamingEvents,
    build_batch,
    load_events,
)
from hepfm.data.features import ONE_HOT_COLUMNS
from hepfm.errors import InputDataError
from tests._data_helpers import random_events, write_delphes


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    """tt.root (60 events, ids 1000-1059), ttH_0/1.root (40 + 30 events, ids 2000-2069)."""
    d = tmp_path_factory.mktemp("samples")
    write_delphes(d / "tt.root", random_events(60, seed=1, met_start=1000))
    evs = random_events(70, seed=2, met_start=2000)
    write_delphes(d / "ttH_0.root", evs[:40])
    write_delphes(d / "ttH_1.root", evs[40:])
    return d


def met_ids(batch) -> list[int]:
    """Event ids stored in the MET (see random_events)."""
    met = batch.x[batch.node_type == 5, 0]
    return torch.expm1(met.double()).round().long().tolist()


def test_load_events_labels_and_limits(sample_dir):
    t = load_events(sample_dir)
    assert t.processes == ("ttH", "tt")  # catalog order
    assert t.process_counts() == {"ttH": 70, "tt": 60}
    assert set(t.y[t.process == 0]) == {4} and set(t.y[t.process == 1]) == {5}
    t2 = load_events(sample_dir, ["tt", "ttH"], events_per_process=50, label_of={"tt": 0,
                                                                                  "ttH": 1})
    assert t2.process_counts() == {"tt": 50, "ttH": 50}
    assert sorted(met_ids(build_batch(t2)))[-1] == 2049  # crosses into ttH_1.root
    assert set(t2.y[t2.process == 0]) == {0}
    with pytest.raises(InputDataError, match="no file for process"):
        load_events(sample_dir, ["ZH"])


def test_split_subset_concat(sample_dir):
    t = load_events(sample_dir)
    parts = t.split((0.6, 0.2, 0.2), seed=3)
    assert [len(p) for p in parts] == [78, 26, 26]
    ids = [sorted(met_ids(build_batch(p))) for p in parts]
    allids = sorted(i for part in ids for i in part)
    assert allids == sorted(met_ids(build_batch(t)))  # disjoint and complete
    assert parts[1].process_counts() == {"ttH": 14, "tt": 12}  # stratified
    assert load_events(sample_dir).split(seed=3)[0].pt.tolist() == t.split(seed=3)[0].pt.tolist()
    back = EventTable.concat([t[:50], t[50:]])
    assert np.array_equal(back.pt, t.pt) and np.array_equal(back.offsets, t.offsets)
    idx = np.array([5, 2, 9])
    assert met_ids(build_batch(t.subset(idx))) == [met_ids(build_batch(t))[i] for i in idx]


def test_event_batches_epochs_and_sampling(sample_dir):
    t = load_events(sample_dir)
    ds = EventBatches(t, batch_size=32, seed=1)
    e0 = [i for b in ds for i in met_ids(b)]
    e1 = [i for b in ds for i in met_ids(b)]
    assert sorted(e0) == sorted(e1) == sorted(met_ids(build_batch(t))) and e0 != e1
    assert len(ds) == 5
    bal = EventBatches(t, batch_size=1000, sampling="balanced")
    b = next(iter(bal))
    assert np.bincount(b.y.numpy(), minlength=6)[[4, 5]].tolist() == [60, 60]
    w = EventBatches(t, batch_size=1000, sampling="weighted", weights={"tt": 1.0, "ttH": 0.0})
    assert set(next(iter(w)).y.tolist()) == {5}
    loader = DataLoader(EventBatches(t, batch_size=16), batch_size=None, num_workers=2)
    seen = [i for b in loader for i in met_ids(b)]
    assert sorted(seen) == sorted(met_ids(build_batch(t)))


def test_cache_round_trip(sample_dir, tmp_path):
    cache = tmp_path / "cache"
    t1 = load_events(sample_dir, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))
    t2 = load_events(sample_dir, cache_dir=cache)
    for k in ("offsets", "pt", "eta", "phi", "mass", "charge", "btag", "node_type", "y",
              "process", "y_multi"):
        assert np.array_equal(getattr(t1, k), getattr(t2, k)), k
    assert t2.processes == t1.processes
    load_events(sample_dir, events_per_process=10, cache_dir=cache)  # other config: new key
    st = os.stat(sample_dir / "tt.root")
    os.utime(sample_dir / "tt.root", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_events(sample_dir, cache_dir=cache)  # file changed: new key
    assert len(list(cache.glob("*.npz"))) == 3


@pytest.mark.parametrize("split_files", [None, False])
def test_streaming_2_workers_x_2_ranks(sample_dir, monkeypatch, split_files):
    # 3 files < 4 shards: entry ranges (auto); split_files=False: whole files per shard
    expected = sorted(list(range(1000, 1060)) + list(range(2000, 2070)))
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        ds = StreamingEvents(sample_dir, batch_size=8, step_size=9, buffer_events=20,
                             seed=4, split_files=split_files)
        loader = DataLoader(ds, batch_size=None, num_workers=2)
        seen += [i for b in loader for i in met_ids(b)]
    assert sorted(seen) == expected


def test_streaming_mixes_processes(sample_dir):
    ds = StreamingEvents(sample_dir, batch_size=16, step_size=10, buffer_events=40, seed=0)
    first = next(iter(ds))
    assert set(first.y.tolist()) == {4, 5}


def test_feature_stats_round_trip(sample_dir):
    t = load_events(sample_dir)
    stats = FeatureStats.from_table(t, batch_size=50)
    b = build_batch(t)
    x = b.x.double().numpy()
    np.testing.assert_allclose(stats.node_mean[:7], x[:, :7].mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats.edge_std, b.edge_attr.double().numpy().std(0), rtol=1e-5)
    np.testing.assert_allclose(stats.global_mean, b.u.double().numpy().mean(0), rtol=1e-6)
    hot = list(ONE_HOT_COLUMNS)
    assert (stats.node_mean[hot] == 0).all() and (stats.node_std[hot] == 1).all()
    d = json.loads(json.dumps(stats.to_dict()))
    back = FeatureStats.from_dict(d)
    for k in ("node_mean", "node_std", "edge_mean", "edge_std", "global_mean", "global_std"):
        assert np.array_equal(getattr(back, k), getattr(stats, k))
    n = stats.normalize(b)
    assert abs(float(n.u.mean())) < 1e-4 and n.x.shape == b.x.shape
