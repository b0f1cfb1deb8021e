"""Batched graph building against a slow per-event reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepfm.data import EventTable, build_batch, read_table
from hepfm.data.edge_kernel import HAVE_NUMBA
from tests._data_helpers import random_events, write_delphes

#: graph backends to test: numba (hepfm[fast], installed in CI) and the numpy fallback
BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not HAVE_NUMBA, reason="numba not installed (pip install hepfm[fast])"))]


def reference_event(t: EventTable, i: int) -> dict[str, np.ndarray]:
    """Graph of event i with plain Python loops (the definition of the features)."""
    a, b = int(t.offsets[i]), int(t.offsets[i + 1])
    nodes = []
    for k in range(a, b):
        pt, eta, phi, m = (float(v[k]) for v in (t.pt, t.eta, t.phi, t.mass))
        px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
        e = math.sqrt(px * px + py * py + pz * pz + m * m)
        onehot = [0.0] * 6
        onehot[int(t.node_type[k])] = 1.0
        nodes.append(((math.log1p(pt), eta, math.sin(phi), math.cos(phi), math.log1p(e),
                       float(t.charge[k]), float(t.btag[k]), *onehot), (eta, phi, e, px, py, pz)))
    senders, receivers, attrs = [], [], []
    for s in range(len(nodes)):
        for r in range(len(nodes)):
            if s == r:
                continue
            es, ps, er, pr = *nodes[s][1][:2], *nodes[r][1][:2]
            deta = es - er
            dphi = (ps - pr + math.pi) % (2 * math.pi) - math.pi
            q = [nodes[s][1][k] + nodes[r][1][k] for k in range(2, 6)]
            m2 = max(q[0] ** 2 - q[1] ** 2 - q[2] ** 2 - q[3] ** 2, 0.0)
            senders.append(s)
            receivers.append(r)
            attrs.append((deta, dphi, math.hypot(deta, dphi), math.log(math.sqrt(m2) + 1)))
    types = [int(v) for v in t.node_type[a:b]]
    ht = sum(float(t.pt[k]) for k in range(a, b) if t.node_type[k] <= 1)
    u = (math.log1p(float(t.pt[b - 1])), math.log1p(ht), sum(x <= 1 for x in types),
         types.count(1), types.count(2) + types.count(3))
    return {"x": np.array([n[0] for n in nodes]), "edge_index": np.array([senders, receivers]),
            "edge_attr": np.array(attrs).reshape(-1, 4), "u": np.array(u)}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> EventTable:
    evs = random_events(300, seed=3)
    evs[5] = {"met": (12.0, 1.0)}  # no objects at all: the MET node alone
    evs[6] = {"jets": [(30.0, 0.1, 0.2, 1.0, 0)], "met": (12.0, 1.0)}
    return read_table(write_delphes(tmp_path_factory.mktemp("g") / "tt.root", evs))


def test_contract_attributes(table):
    b = build_batch(table)
    n, e, nb = table.n_nodes, int((table.counts * (table.counts - 1)).sum()), len(table)
    assert b.x.dtype == torch.float32 and b.x.shape == (n, 13)
    assert b.edge_index.dtype == torch.int64 and b.edge_index.shape == (2, e)
    assert b.edge_attr.dtype == torch.float32 and b.edge_attr.shape == (e, 4)
    assert b.u.dtype == torch.float32 and b.u.shape == (nb, 5)
    assert b.batch.dtype == torch.int64 and b.batch.shape == (n,)
    assert b.ptr.tolist() == table.offsets.tolist()
    assert b.node_type.dtype == torch.int64 and b.y.shape == (nb,) and b.y.dtype == torch.int64
    assert b.y_multi.dtype == torch.float32 and b.y_multi.shape[0] == nb
    assert b.num_graphs == nb


def test_edge_count_is_n_times_n_minus_1(table):
    b = build_batch(table)
    n = table.counts
    per_event = np.bincount(b.batch[b.edge_index[0]].numpy(), minlength=len(table))
    assert np.array_equal(per_event, n * (n - 1))
    assert n[5] == 1 and per_event[5] == 0  # empty event: one MET node, no edge
    # edges never cross events and never loop
    ei = b.edge_index.numpy()
    assert np.array_equal(b.batch.numpy()[ei[0]], b.batch.numpy()[ei[1]])
    assert np.all(ei[0] != ei[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("keep_order", [True, False])
def test_batch_equals_slow_reference(table, keep_order, backend):
    idx = np.random.default_rng(0).permutation(len(table))[:120]
    b = build_batch(table, idx, keep_order=keep_order, backend=backend)
    sub = table.subset(idx)
    # only the numpy backend reorders (by node count) when allowed to
    sort = not keep_order and backend == "numpy"
    order = np.argsort(sub.counts, kind="stable") if sort else np.arange(len(idx))
    assert np.array_equal(b.y.numpy(), sub.y[order])
    for j in range(len(idx)):
        g = b.get_example(j)
        ref = reference_event(sub, int(order[j]))
        np.testing.assert_allclose(g.x.numpy(), ref["x"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(g.edge_index.numpy(), ref["edge_index"])
        np.testing.assert_allclose(g.edge_attr.numpy(), ref["edge_attr"], rtol=1e-4, atol=2e-4)
        np.testing.assert_allclose(g.u.numpy()[0], ref["u"], rtol=1e-5)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (pip install hepfm[fast])")
def test_backends_agree(table):
    """The compiled edge loop and the numpy blocks: the same batch, bit for bit, for events
    in any order, including delta phi exactly at -pi and pi."""
    one = table[:40]
    phi = one.phi.copy()
    phi[one.offsets[3]:one.offsets[3] + 2] = [np.float32(np.pi) / 2, -np.float32(np.pi) / 2]
    phi[one.offsets[4]:one.offsets[4] + 2] = [np.float32(-np.pi), np.float32(0)]
    one.phi = phi
    shuffled = table.subset(np.random.default_rng(2).permutation(len(table)))
    for t in (one, shuffled):
        a = build_batch(t, backend="numpy")
        b = build_batch(t, backend="numba")
        assert a.keys() == b.keys()
        for k in a.keys():  # noqa: SIM118 (Batch.keys is a method)
            ta, tb = getattr(a, k), getattr(b, k)
            assert ta.dtype == tb.dtype and ta.shape == tb.shape, k
            assert torch.equal(ta, tb), k
        assert a._slice_dict.keys() == b._slice_dict.keys()
        assert all(torch.equal(a._slice_dict[k], b._slice_dict[k]) for k in a._slice_dict)
        dphi = b.edge_attr[:, 1]
        assert bool((dphi >= -math.pi).all()) and bool((dphi < np.float32(math.pi)).all())
    with pytest.raises(ValueError, match="unknown graph backend 'cuda'"):
        build_batch(one, backend="cuda")


def test_permuting_objects_permutes_nodes(table):
    rng = np.random.default_rng(1)
    i = int(np.argmax(table.counts))
    one = table[i:i + 1]
    n = one.n_nodes
    perm = rng.permutation(n)
    perm_table = EventTable(offsets=one.offsets, y=one.y, process=one.process,
                            processes=one.processes, y_multi=one.y_multi,
                            **{k: getattr(one, k)[perm] for k in
                               ("pt", "eta", "phi", "mass", "charge", "btag", "node_type")})
    b0, b1 = build_batch(one), build_batch(perm_table)
    np.testing.assert_allclose(b1.x.numpy(), b0.x.numpy()[perm])
    np.testing.assert_allclose(b1.u.numpy(), b0.u.numpy(), rtol=1e-6)
    # edge (s, r) of the permuted graph is edge (perm[s], perm[r]) of the original
    e0 = {tuple(e): a for e, a in zip(b0.edge_index.T.tolist(), b0.edge_attr.numpy(), strict=True)}
    for (s, r), a in zip(b1.edge_index.T.tolist(), b1.edge_attr.numpy(), strict=True):
        np.testing.assert_allclose(a, e0[(perm[s], perm[r])], atol=1e-5)


def test_reading_orders_objects_by_pt(tmp_path):
    jets = [(40.0, 0.1, 0.1, 1.0, 0), (90.0, 0.2, 0.2, 1.0, 1), (60.0, 0.3, 0.3, 1.0, 0)]
    ev = {"jets": jets, "muons": [(25.0, 0.0, 1.0, 1)], "met": (5.0, 0.0)}
    evp = dict(ev, jets=[jets[2], jets[0], jets[1]])
    t0 = read_table(write_delphes(tmp_path / "a.root", [ev]))
    t1 = read_table(write_delphes(tmp_path / "b.root", [evp]))
    assert t0.pt.tolist() == [90.0, 60.0, 40.0, 25.0, 5.0]
    b0, b1 = build_batch(t0), build_batch(t1)
    assert torch.equal(b0.x, b1.x) and torch.equal(b0.u, b1.u)


@pytest.mark.parametrize("backend", BACKENDS)
def test_columns_follow_the_feature_names(monkeypatch, table, backend):
    """Reordering (or dropping) names in hepfm.data.features reorders the batch columns."""
    from hepfm.data import features

    ref = build_batch(table, backend=backend)
    for attr, kind in (("x", "NODE"), ("edge_attr", "EDGE"), ("u", "GLOBAL")):
        names = getattr(features, f"{kind}_FEATURES")
        new = (names[-1], *names[1:-1])  # the last feature moves first, the first is dropped
        monkeypatch.setattr(features, f"{kind}_FEATURES", new)
        got = build_batch(table, backend=backend)[attr].numpy()
        assert got.shape[1] == len(new)
        for col, name in enumerate(new):
            assert np.array_equal(got[:, col], ref[attr].numpy()[:, names.index(name)]), name
        monkeypatch.setattr(features, f"{kind}_FEATURES", names)
    # without an is_met column, MET nodes get no one-hot entry; the other types keep theirs
    new = tuple(n for n in features.NODE_FEATURES if n != "is_met")
    monkeypatch.setattr(features, "NODE_FEATURES", new)
    x = build_batch(table, backend=backend).x.numpy()
    hot = [new.index(f"is_{t}") for t in features.NODE_TYPES if t != "met"]
    met = ref.node_type.numpy() == features.MET
    assert np.all(x[met][:, hot] == 0) and np.all(x[~met][:, hot].sum(1) == 1)


@pytest.mark.parametrize(("kind", "name"), [("NODE", "log_pT"), ("EDGE", "delta_R"),
                                            ("GLOBAL", "met")])
def test_a_renamed_feature_is_an_error_not_a_shifted_column(monkeypatch, table, kind, name):
    from hepfm.data import features

    names = getattr(features, f"{kind}_FEATURES")
    monkeypatch.setattr(features, f"{kind}_FEATURES", (*names[:-1], name))
    with pytest.raises(ValueError, match=rf"{kind}_FEATURES: unknown \['{name}'\]"):
        build_batch(table[:5])
