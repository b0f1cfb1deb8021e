"""Systematic variations at read time, each against a hand computation on a few events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepfm.data import NODE_TYPES, ObjectCut, Selection, read_table
from hepfm.data.variations import VARIATIONS, Variation, parse_variation
from hepfm.errors import ArgumentError, UnknownNameError
from tests._data_helpers import random_events, write_delphes

JET, BJET, ELECTRON, MUON, PHOTON, MET = range(6)
# jets (pt, eta, phi, mass, btag): 24.5 GeV is below the 25 GeV cut and crosses it at +2.6 %;
# 25.5 GeV crosses it at -2.6 %; the |eta| = 5 jet is never selected but still moves MET
EVENTS = [
    {"jets": [(60.0, 0.5, 0.1, 5.0, 1), (24.5, -1.0, 2.0, 3.0, 0), (80.0, 5.0, -2.0, 4.0, 0)],
     "electrons": [(30.0, 0.1, 1.0, -1)], "muons": [(25.0, 0.2, -1.0, 1)],
     "photons": [(15.0, 0.3, 0.5)], "met": (40.0, 2.5)},
    {"jets": [(25.5, 1.0, -0.5, 2.0, 0)], "muons": [(12.0, 0.0, 3.0, -1)], "met": (10.0, 0.0)},
]


def _nodes(table, event):
    a, b = table.offsets[event], table.offsets[event + 1]
    return [(NODE_TYPES[k], float(p), float(e), float(f), float(m)) for k, p, e, f, m in zip(
        table.node_type[a:b], table.pt[a:b], table.eta[a:b], table.phi[a:b], table.mass[a:b],
        strict=True)]


def _met_after(met, phi, shifts):
    """Hand computation: the MET vector minus the vector sum of the pT shifts."""
    mx = met * math.cos(phi) - sum(d * math.cos(f) for d, f in shifts)
    my = met * math.sin(phi) - sum(d * math.sin(f) for d, f in shifts)
    return math.hypot(mx, my), math.atan2(my, mx)


@pytest.fixture
def path(tmp_path):
    return write_delphes(tmp_path / "ev.root", EVENTS, truth=False)


def test_jes_up_scales_jets_and_moves_met_by_their_shifts(path):
    nominal, up = read_table(path), read_table(path, variation=Variation("jes_up"))
    f = 1.026
    # event 0: the 24.5 GeV jet now passes the 25 GeV cut
    assert [n[0] for n in _nodes(nominal, 0)] == ["bjet", "electron", "muon", "photon", "met"]
    got = _nodes(up, 0)
    assert [n[0] for n in got] == ["bjet", "jet", "electron", "muon", "photon", "met"]
    assert got[0][1:] == pytest.approx((60 * f, 0.5, 0.1, 5 * f), rel=1e-6)
    assert got[1][1:] == pytest.approx((24.5 * f, -1.0, 2.0, 3 * f), rel=1e-6)
    assert got[2:5] == _nodes(nominal, 0)[1:4]  # leptons and photon: bit for bit the same
    met, phi = _met_after(40.0, 2.5, [(60 * (f - 1), 0.1), (24.5 * (f - 1), 2.0),
                                      (80 * (f - 1), -2.0)])
    assert got[5][1] == pytest.approx(met, rel=1e-6)
    assert got[5][3] == pytest.approx(phi, abs=1e-6)
    # event 1: one jet scaled, the muon untouched
    got1 = _nodes(up, 1)
    assert got1[0][1] == pytest.approx(25.5 * f, rel=1e-6) and got1[1] == _nodes(nominal, 1)[1]
    met, phi = _met_after(10.0, 0.0, [(25.5 * (f - 1), -0.5)])
    assert (got1[2][1], got1[2][3]) == pytest.approx((met, phi), rel=1e-6, abs=1e-6)
    assert np.array_equal(up.y, nominal.y) and np.array_equal(up.charge[:0], nominal.charge[:0])


def test_jes_down_jet_leaves_the_selection(path):
    down = read_table(path, variation=Variation("jes_down", 0.05))
    got = _nodes(down, 1)
    assert [n[0] for n in got] == ["muon", "met"]  # 25.5 * 0.95 < 25 GeV
    met, phi = _met_after(10.0, 0.0, [(25.5 * -0.05, -0.5)])
    assert (got[1][1], got[1][3]) == pytest.approx((met, phi), rel=1e-6, abs=1e-6)


def test_les_moves_leptons_and_met_only(path):
    nominal, up = read_table(path), read_table(path, variation=Variation("les_up"))
    got, ref = _nodes(up, 0), _nodes(nominal, 0)
    assert got[0] == ref[0] and got[3] == ref[3]  # the b-jet and the photon
    assert got[1][1] == pytest.approx(30 * 1.01, rel=1e-6)
    assert got[2][1] == pytest.approx(25 * 1.01, rel=1e-6)
    met, phi = _met_after(40.0, 2.5, [(0.3, 1.0), (0.25, -1.0)])
    assert (got[4][1], got[4][3]) == pytest.approx((met, phi), rel=1e-6, abs=1e-6)
    # 12 GeV muon * 0.99 still above 10 GeV; event 1 keeps its nodes
    assert len(_nodes(read_table(path, variation=Variation("les_down")), 1)) == 3


def test_jer_is_seeded_chunk_independent_and_of_the_stated_width(tmp_path):
    f = write_delphes(tmp_path / "r.root", random_events(400, seed=2), truth=False)
    nominal = read_table(f)
    a = read_table(f, variation=Variation("jer", 0.1, seed=1))
    b = read_table(f, variation=Variation("jer", 0.1, seed=1), step_size=7)
    c = read_table(f, variation=Variation("jer", 0.1, seed=2))
    assert np.array_equal(a.pt, b.pt) and np.array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.pt, c.pt)
    assert len(a) == len(nominal)  # no event dropped
    # with no jet pT cut every jet stays: the ratio to nominal is 1 + 0.1 z, z ~ N(0, 1)
    loose = Selection(jet=ObjectCut(0.0, 4.5, 10))
    base = read_table(f, selection=loose)
    jets = np.isin(base.node_type, (JET, BJET))
    r = (read_table(f, selection=loose, variation=Variation("jer", 0.1, seed=1)).pt[jets]
         / base.pt[jets])
    assert jets.sum() > 500
    assert abs(r.mean() - 1) < 0.015 and abs(r.std() - 0.1) < 0.015
    leptons = np.isin(nominal.node_type, (ELECTRON, MUON, PHOTON))
    assert np.array_equal(nominal.pt[leptons], a.pt[np.isin(a.node_type,
                                                           (ELECTRON, MUON, PHOTON))])


def test_btag_variations_flip_tags_only(tmp_path):
    f = write_delphes(tmp_path / "r.root", random_events(600, seed=3), truth=False)
    nominal = read_table(f)
    down = read_table(f, variation=Variation("btag_down", 0.3))
    up = read_table(f, variation=Variation("btag_up", 0.3))
    for t in (down, up):
        for k in ("offsets", "pt", "eta", "phi", "mass", "charge"):
            assert np.array_equal(getattr(t, k), getattr(nominal, k))
        assert np.array_equal(t.btag == 1, t.node_type == BJET)
    tagged = nominal.node_type == BJET
    assert not np.any((down.node_type == BJET) & ~tagged)  # down only untags
    assert 0.25 < np.mean(down.node_type[tagged] == JET) < 0.35
    assert not np.any((up.node_type == JET) & tagged)  # up only tags
    ev = np.repeat(np.arange(len(nominal)), nominal.counts)
    n_tag = np.bincount(ev, tagged, minlength=len(nominal))
    new_tags = np.bincount(ev, (up.node_type == BJET) & ~tagged, minlength=len(nominal))
    assert not new_tags[n_tag == 0].any()  # no tag added to events without one
    # expected new tags: 0.3 n_tagged per event, at most the untagged jets it has
    untagged = (nominal.node_type == JET) & (np.abs(nominal.eta) < 2.5)
    n_untag = np.bincount(ev, untagged, minlength=len(nominal))
    expected = np.minimum(n_untag, 0.3 * n_tag).sum()
    assert new_tags.sum() == pytest.approx(expected, rel=0.1)


def test_names_and_sizes():
    assert set(VARIATIONS) == {"jes_up", "jes_down", "jer", "les_up", "les_down", "btag_up",
                               "btag_down"}
    assert parse_variation("jes_up").size == 0.026
    assert parse_variation("jes_up:0.05") == Variation("jes_up", 0.05)
    assert parse_variation("jes_up:0.05").label == "jes_up:0.05"
    assert parse_variation("jer").label == "jer"
    with pytest.raises(UnknownNameError, match="jes_up"):
        parse_variation("jes_upp")
    with pytest.raises(ArgumentError, match="no number"):
        parse_variation("jes_up:big")
    with pytest.raises(ArgumentError, match="fraction"):
        Variation("jer", 1.5)


def test_a_variation_follows_the_entry_numbers_when_events_are_dropped(tmp_path):
    events = random_events(12, seed=3)
    good = write_delphes(tmp_path / "good.root", events, truth=False)
    events[4]["jets"] = [(float("nan"), 0.0, 0.0, 1.0, 0)]
    bad = write_delphes(tmp_path / "bad.root", events, truth=False)
    jer = Variation("jer", 0.1, seed=5)
    dropped = read_table(bad, variation=jer, on_invalid="drop", step_size=5)
    keep = [k for k in range(12) if k != 4]
    reference = read_table(good, variation=jer).subset(keep)  # the same events, same shifts
    assert dropped.entry.tolist() == keep
    assert np.array_equal(dropped.offsets, reference.offsets)
    assert np.array_equal(dropped.pt, reference.pt)
