"""Particle table, isolated electrons, muons and photons, and missing transverse momentum.

Everything works on flat numpy arrays of all particles of a batch (with an event index) and
turns into jagged awkward arrays only at the end: no Python loop over events or particles.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from hepfm.generate.detector import DetectorConfig

#: Invisible final-state particles: neutrinos and the lightest neutralino / gravitino.
INVISIBLE_IDS = np.array([12, 14, 16, 1000022, 1000039])


def pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity (±20 along the beam) and azimuth."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 20.0)
    return pt, eta, np.arctan2(py, px)


def smear_factor(sigma_rel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian response factors ``1 + sigma * N(0, 1)``, clipped at zero."""
    return np.clip(1.0 + sigma_rel * rng.standard_normal(len(sigma_rel)), 0.0, None)


def jagged(event: np.ndarray, n_events: int, order: np.ndarray | None = None,
           **columns: np.ndarray) -> ak.Array:
    """Jagged records (one list per event) from flat columns whose rows are sorted by `event`.

    `order`, if given, reorders the rows first (it must keep them grouped by event).
    """
    if order is not None:
        event = event[order]
        columns = {k: v[order] for k, v in columns.items()}
    counts = np.bincount(event, minlength=n_events)
    return ak.unflatten(ak.zip(columns, depth_limit=1), counts)


def by_pt(event: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Row order grouping by event with pT descending inside each event."""
    return np.lexsort((-pt, event))


@dataclass
class ParticleTable:
    """All particles of a batch as flat arrays; ``visible``: calorimeter-visible final state."""

    n_events: int
    offsets: np.ndarray
    event: np.ndarray
    id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    visible: np.ndarray

    @classmethod
    def from_pythia(cls, prt: ak.Array, config: DetectorConfig) -> ParticleTable:
        """Flatten Pythia's ``prt`` records; mother and daughter indices become global row
        indices."""
        counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        event = np.repeat(np.arange(len(counts)), counts)
        flat = ak.flatten(prt, axis=1)
        col = {name: ak.to_numpy(flat[name])
               for name in ("id", "status", "mother1", "daughter1", "daughter2")}
        px, py, pz, e = (ak.to_numpy(flat.p[c]) for c in ("px", "py", "pz", "e"))
        pt, eta, phi = pt_eta_phi(px, py, pz)
        final = col["status"] > 0
        visible = (final & ~np.isin(np.abs(col["id"]), INVISIBLE_IDS) & (pt > 0)
                   & (np.abs(eta) < config.calo_eta_max))
        m1, d1, d2 = (col[k].astype(np.int64) + offsets[event]
                      for k in ("mother1", "daughter1", "daughter2"))
        return cls(len(counts), offsets, event, col["id"], col["status"], m1, d1, d2,
                   px, py, pz, e, pt, eta, phi, visible)


def relative_isolation(table: ParticleTable, rows: np.ndarray, config: DetectorConfig
                       ) -> np.ndarray:
    """Sum pT of visible particles (pT > iso_pt_min) within iso_cone of each row, over its pT.

    Electrons and muons are left out of the sum, as the card's ``EFlowFilter`` removes them
    from the isolation input: two close leptons do not spoil each other's isolation.
    """
    if len(rows) == 0:
        return np.zeros(0)
    others = np.nonzero(table.visible & (table.pt > config.iso_pt_min)
                        & ~np.isin(np.abs(table.id), (11, 13)))[0]
    t = table
    cand = jagged(t.event[rows], t.n_events, eta=t.eta[rows], phi=t.phi[rows], row=rows)
    part = jagged(t.event[others], t.n_events, eta=t.eta[others], phi=t.phi[others],
                  pt=t.pt[others], row=others)
    c, p = ak.unzip(ak.cartesian([cand, part], axis=1, nested=True))
    dphi = (c.phi - p.phi + np.pi) % (2 * np.pi) - np.pi
    inside = ((c.eta - p.eta) ** 2 + dphi**2 < config.iso_cone**2) & (c.row != p.row)
    sums = ak.to_numpy(ak.flatten(ak.sum(ak.where(inside, p.pt, 0.0), axis=-1), axis=1))
    return sums / table.pt[rows]


@dataclass
class SelectedObjects:
    """Isolated electrons, muons and photons: Delphes collections plus what MET needs."""

    collections: dict[str, ak.Array]
    used: np.ndarray
    dpx: np.ndarray
    dpy: np.ndarray
    true_pt_sum: np.ndarray


def reconstruct_leptons_photons(table: ParticleTable, config: DetectorConfig,
                                rng: np.random.Generator) -> SelectedObjects:
    """Electrons, muons and photons: acceptance, isolation, efficiency, resolution.

    Electrons and muons need a track: their efficiency is the tracking efficiency times the
    identification efficiency (zero beyond ``tracker_eta_max``).
    """
    t, n = table, table.n_events
    spec = {
        "Electron": (11, config.electron_pt_min, config.electron_eta_max,
                     config.electron_iso_max, (config.electron_eff_barrel,
                                               config.electron_eff_endcap)),
        "Muon": (13, config.muon_pt_min, config.muon_eta_max, config.muon_iso_max,
                 (config.muon_eff_barrel, config.muon_eff_endcap)),
        "Photon": (22, config.photon_pt_min, config.photon_eta_max, config.photon_iso_max,
                   (config.photon_eff_barrel, config.photon_eff_endcap)),
    }
    used = np.zeros(len(t.id), dtype=bool)
    dpx, dpy, true_pt = np.zeros(n), np.zeros(n), np.zeros(n)
    collections = {}
    for name, (pdg, pt_min, eta_max, iso_max, eff) in spec.items():
        cand = np.nonzero(t.visible & (np.abs(t.id) == pdg) & (t.pt > pt_min)
                          & (np.abs(t.eta) < eta_max))[0]
        eff_eta = config.lepton_efficiency(*eff, t.eta[cand])
        if pdg != 22:
            eff_eta = eff_eta * config.tracking_efficiency(pdg, t.pt[cand], t.eta[cand])
        keep = (relative_isolation(t, cand, config) < iso_max) & (rng.random(len(cand)) < eff_eta)
        rows = cand[keep]
        pt = t.pt[rows]
        if pdg == 13:
            sigma = np.hypot(config.muon_resolution_a, config.muon_resolution_b * pt)
        else:
            energy = np.maximum(t.e[rows], 1e-3)
            sigma = np.hypot(config.em_stochastic / np.sqrt(energy), config.em_constant)
        pt_reco = pt * smear_factor(sigma, rng)
        used[rows] = True
        ev = t.event[rows]
        dpx += np.bincount(ev, (pt_reco - pt) * np.cos(t.phi[rows]), minlength=n)
        dpy += np.bincount(ev, (pt_reco - pt) * np.sin(t.phi[rows]), minlength=n)
        true_pt += np.bincount(ev, pt, minlength=n)
        cols = {"PT": pt_reco.astype(np.float32), "Eta": t.eta[rows].astype(np.float32),
                "Phi": t.phi[rows].astype(np.float32)}
        if pdg != 22:
            cols["Charge"] = (-np.sign(t.id[rows])).astype(np.int32)
        collections[name] = jagged(ev, n, by_pt(ev, pt_reco), **cols)
    return SelectedObjects(collections, used, dpx, dpy, true_pt)


def missing_et(table: ParticleTable, objects: SelectedObjects, jets, config: DetectorConfig,
               rng: np.random.Generator) -> ak.Array:
    """MET from the visible sum, corrected for object mismeasurement, with soft-term resolution.

    ``MET_xy = -(sum of visible p_xy) - sum(reco - true p_xy of e, mu, gamma, jets)`` plus a
    Gaussian of width ``met_soft_resolution * sqrt(soft sum ET)`` per component.
    """
    t, n = table, table.n_events
    vis = t.visible
    ev = t.event[vis]
    sum_x = np.bincount(ev, t.px[vis], minlength=n)
    sum_y = np.bincount(ev, t.py[vis], minlength=n)
    sum_et = np.bincount(ev, t.pt[vis], minlength=n)
    soft = np.clip(sum_et - objects.true_pt_sum - jets.true_pt_sum, 0.0, None)
    sigma = config.met_soft_resolution * np.sqrt(soft)
    met_x = -(sum_x + objects.dpx + jets.dpx) + sigma * rng.standard_normal(n)
    met_y = -(sum_y + objects.dpy + jets.dpy) + sigma * rng.standard_normal(n)
    met = ak.zip({"MET": np.hypot(met_x, met_y).astype(np.float32),
                  "Phi": np.arctan2(met_y, met_x).astype(np.float32)})
    return ak.unflatten(met, np.ones(n, dtype=np.int64))
