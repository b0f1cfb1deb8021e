"""The analyser's baseline: a boosted decision tree on event-level features.

:func:`event_features` turns an :class:`~hepfm.data.table.EventTable` into one row of
physics features per event (columnar numpy, no event loop); :class:`BDTBaseline` is a
scikit-learn estimator that fits a ``HistGradientBoostingClassifier`` on them with early
stopping on given validation events. ``hepfm scan --modes bdt,...`` trains it on exactly the
training and validation events of the other modes and scores it on the same fixed test set.

Features (GeV for momenta and masses; "jets" are all jets, b-tagged or not; "leptons" are
electrons and muons; a feature whose objects are missing is NaN in :func:`event_features`
and :data:`MISSING` for the trees, which split it off like any other value):

==================  ==================================================================
``n_jets``          number of jets (b-tagged ones included)
``n_bjets``         number of b-tagged jets
``n_electrons``     number of electrons
``n_muons``         number of muons
``n_leptons``       electrons + muons
``n_photons``       number of photons
``ht``              scalar sum of jet pT
``met``             missing transverse momentum
``lep_charge_sum``  sum of lepton charges
``jet{k}_pt/eta``   pT and eta of the k-th leading jet, k = 1..4
``bjet1_pt/eta``    leading b-tagged jet
``lep{k}_pt/eta``   k-th leading lepton, k = 1, 2
``photon1_pt/eta``  leading photon
``m_jj``            invariant mass of the two leading jets
``deta_jj``         |eta_j1 - eta_j2|
``m_bb``            invariant mass of the two leading b-tagged jets
``m_ll``            invariant mass of the two leading leptons
``m_4l``            invariant mass of the four leading leptons
``m_aa``            invariant mass of the two leading photons
``mt_lep_met``      transverse mass of the leading lepton and the MET
``m_visible``       invariant mass of all reconstructed objects (MET excluded)
``min_dphi_jet_met``  smallest |delta phi| between MET and one of the four leading jets
==================  ==================================================================

Hyper-parameters (fixed, chosen once, not tuned per task): learning rate 0.1, at most 500
trees of at most 31 leaves, 20 events per leaf at least, no L2 penalty, early stopping when
the validation log-loss has not improved by 1e-7 for 20 trees; the random state is the run
seed.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from hepfm.data.features import BJET, ELECTRON, JET, MET, MUON, PHOTON
from hepfm.data.table import EventTable

#: Version of the feature definitions below (part of a scan's resume key).
FEATURE_VERSION = 1

#: Value given to the trees for a feature whose objects are missing (NaN would do, but a
#: feature missing in every training event makes scikit-learn's binning fail).
MISSING = -999.0

#: Column names of :func:`event_features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "n_jets", "n_bjets", "n_electrons", "n_muons", "n_leptons", "n_photons", "ht", "met",
    "lep_charge_sum",
    *(f"jet{k}_{v}" for k in range(1, 5) for v in ("pt", "eta")),
    "bjet1_pt", "bjet1_eta", "lep1_pt", "lep1_eta", "lep2_pt", "lep2_eta",
    "photon1_pt", "photon1_eta",
    "m_jj", "deta_jj", "m_bb", "m_ll", "m_4l", "m_aa", "mt_lep_met", "m_visible",
    "min_dphi_jet_met",
)


def _event_index(table: EventTable) -> np.ndarray:
    return np.repeat(np.arange(len(table), dtype=np.int64), table.counts)


def _leading(table: EventTable, ev: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Node indices [B, k] of the k highest-pT nodes selected by `mask` (-1 where absent)."""
    nodes = np.flatnonzero(mask)
    order = nodes[np.lexsort((-table.pt[nodes].astype(np.float64), ev[nodes]))]
    e = ev[order]
    first = np.searchsorted(e, e, side="left")
    rank = np.arange(len(order)) - first
    out = np.full((len(table), k), -1, dtype=np.int64)
    keep = rank < k
    out[e[keep], rank[keep]] = order[keep]
    return out


class _Vectors:
    """Four-momenta (px, py, pz, E) of every node."""

    def __init__(self, table: EventTable):
        pt, eta, phi = (np.asarray(getattr(table, a), np.float64) for a in ("pt", "eta", "phi"))
        m = np.asarray(table.mass, np.float64)
        self.p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)
        self.e = np.sqrt((self.p ** 2).sum(1) + m ** 2)

    def mass(self, idx: np.ndarray) -> np.ndarray:
        """Invariant mass of the nodes idx [B, k] of each event (NaN if any is missing)."""
        ok = (idx >= 0).all(1)
        safe = np.where(idx >= 0, idx, 0)
        e, p = self.e[safe].sum(1), self.p[safe].sum(1)
        m2 = e ** 2 - (p ** 2).sum(1)
        return np.where(ok, np.sqrt(np.clip(m2, 0.0, None)), np.nan)


def event_features(table: EventTable) -> pd.DataFrame:
    """One row per event, the columns of :data:`FEATURE_NAMES` (float64; NaN: no object)."""
    ev = _event_index(table)
    t = np.asarray(table.node_type)
    jet, bjet = (t == JET) | (t == BJET), t == BJET
    lep = (t == ELECTRON) | (t == MUON)
    pt = np.asarray(table.pt, np.float64)
    n = len(table)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(ev[mask], minlength=n).astype(np.float64)

    def total(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(ev[mask], weights=values[mask], minlength=n)

    def take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, np.asarray(a, np.float64)[np.where(idx >= 0, idx, 0)], np.nan)

    vec = _Vectors(table)
    jets, bjets = _leading(table, ev, jet, 4), _leading(table, ev, bjet, 2)
    leps, photons = _leading(table, ev, lep, 4), _leading(table, ev, t == PHOTON, 2)
    met_idx = _leading(table, ev, t == MET, 1)[:, 0]
    met = np.where(met_idx >= 0, pt[np.where(met_idx >= 0, met_idx, 0)], 0.0)
    met_phi = take(table.phi, met_idx)

    f: dict[str, np.ndarray] = {
        "n_jets": count(jet), "n_bjets": count(bjet), "n_electrons": count(t == ELECTRON),
        "n_muons": count(t == MUON), "n_leptons": count(lep), "n_photons": count(t == PHOTON),
        "ht": total(pt, jet), "met": met,
        "lep_charge_sum": total(np.asarray(table.charge, np.float64), lep),
    }
    for k in range(4):
        f[f"jet{k + 1}_pt"] = take(pt, jets[:, k])
        f[f"jet{k + 1}_eta"] = take(table.eta, jets[:, k])
    f["bjet1_pt"], f["bjet1_eta"] = take(pt, bjets[:, 0]), take(table.eta, bjets[:, 0])
    for k in range(2):
        f[f"lep{k + 1}_pt"] = take(pt, leps[:, k])
        f[f"lep{k + 1}_eta"] = take(table.eta, leps[:, k])
    f["photon1_pt"], f["photon1_eta"] = take(pt, photons[:, 0]), take(table.eta, photons[:, 0])
    f["m_jj"] = vec.mass(jets[:, :2])
    f["deta_jj"] = np.abs(f["jet1_eta"] - f["jet2_eta"])
    f["m_bb"], f["m_ll"] = vec.mass(bjets), vec.mass(leps[:, :2])
    f["m_4l"], f["m_aa"] = vec.mass(leps), vec.mass(photons)
    lep_phi = take(table.phi, leps[:, 0])
    f["mt_lep_met"] = np.sqrt(np.clip(2 * f["lep1_pt"] * met * (1 - np.cos(lep_phi - met_phi)),
                                      0.0, None))
    visible = t != MET
    e_vis = total(vec.e, visible)
    p_vis = np.stack([total(vec.p[:, i], visible) for i in range(3)], axis=1)
    f["m_visible"] = np.sqrt(np.clip(e_vis ** 2 - (p_vis ** 2).sum(1), 0.0, None))
    jet_phi = take(table.phi, jets)
    dphi = np.abs(np.angle(np.exp(1j * (jet_phi - met_phi[:, None]))))
    with np.errstate(all="ignore"):
        f["min_dphi_jet_met"] = np.where(np.isnan(dphi).all(1), np.nan,
                                         np.fmin.reduce(dphi, axis=1))
    return pd.DataFrame({k: f[k] for k in FEATURE_NAMES}, index=pd.RangeIndex(n))


def _tree_inputs(table: EventTable) -> np.ndarray:
    return event_features(table).fillna(MISSING).to_numpy()


class BDTBaseline(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (``HistGradientBoostingClassifier``) on :func:`event_features`.

    ``fit(train, val)`` takes EventTables (labels in ``table.y``); with `val`, early stopping
    watches the log-loss on exactly those events, otherwise on an internal 10% split.
    Fitted attributes: ``classifier_``, ``n_iter_``, ``feature_names_in_``, ``classes_`` and
    ``fit_seconds_``.
    """

    def __init__(self, learning_rate: float = 0.1, max_iter: int = 500,
                 max_leaf_nodes: int = 31, min_samples_leaf: int = 20,
                 l2_regularization: float = 0.0, n_iter_no_change: int = 20,
                 tol: float = 1e-7, random_state: int | None = 0):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state

    def fit(self, train: EventTable, val: EventTable | None = None,
            sample_weight: np.ndarray | None = None,
            sample_weight_val: np.ndarray | None = None) -> BDTBaseline:
        """Fit on `train`, stopping early on `val` (same event-level features)."""
        clf = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, early_stopping=True, scoring="loss",
            validation_fraction=None if val is not None else 0.1,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
            random_state=self.random_state)
        x = _tree_inputs(train)
        start = time.perf_counter()
        if val is None:
            clf.fit(x, train.y, sample_weight=sample_weight)
        else:
            clf.fit(x, train.y, sample_weight=sample_weight, X_val=_tree_inputs(val),
                    y_val=val.y, sample_weight_val=sample_weight_val)
        self.fit_seconds_ = time.perf_counter() - start
        self.classifier_ = clf
        self.n_iter_ = int(clf.n_iter_)
        self.classes_ = clf.classes_
        self.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
        return self

    def predict_proba(self, table: EventTable) -> np.ndarray:
        """Class probabilities, shape (n_events, n_classes)."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict_proba(_tree_inputs(table))

    def predict(self, table: EventTable) -> np.ndarray:
        """The most probable class of each event."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.predict(_tree_inputs(table))

    def signal_score(self, table: EventTable) -> np.ndarray:
        """Probability of class 1 (signal) per event."""
        proba = self.predict_proba(table)
        return proba[:, list(self.classes_).index(1)]
