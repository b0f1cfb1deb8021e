"""Anti-kt jets with FastJet's multi-event interface, calorimeter smearing and ghost b-tagging.

All events of a batch are clustered in one call. Weakly decaying B and charm hadrons are added
as ghosts (momenta scaled by ``ghost_scale``); a jet holding a B ghost is a b jet, else one
holding a charm ghost is a c jet, else light. The tag is then drawn with the flavour's
efficiency.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from types import ModuleType

import awkward as ak
import numpy as np

from hepfm.generate.detector import DetectorConfig
from hepfm.generate.objects import ParticleTable, by_pt, jagged, pt_eta_phi, smear_factor

log = logging.getLogger(__name__)


@functools.cache
def quiet_fastjet() -> ModuleType:
    """The ``fastjet`` module, its banner (printed by the C++ library to standard output, once
    per process) sent to the debug log instead: FastJet prints it on the first call only."""
    import fastjet
    from fastjet import _swig

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            _swig.ClusterSequence.print_banner()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        log.debug("%s", sink.read().decode(errors="replace"))
    return fastjet

#: Weakly decaying hadrons (|PDG id|) used as ghosts.
WEAK_B_HADRONS = np.array([511, 521, 531, 541, 5122, 5132, 5232, 5332])
WEAK_C_HADRONS = np.array([411, 421, 431, 4122, 4132, 4232, 4332])
LIGHT, CHARM, BOTTOM = 0, 1, 2
#: Jets are clustered down to this fraction of ``jet_pt_min`` so smearing can move them up.
_CLUSTER_PT_FRACTION = 0.6


@dataclass
class Jets:
    """The Delphes ``Jet`` collection plus per-event sums that MET needs, and the true
    flavour of each jet (0 light, 1 c, 2 b; flat, in the collection's order; not written)."""

    collection: ak.Array
    dpx: np.ndarray
    dpy: np.ndarray
    true_pt_sum: np.ndarray
    flavour: np.ndarray


def weak_hadrons(table: ParticleTable, ids: np.ndarray) -> np.ndarray:
    """Rows of hadrons with |id| in `ids` whose first daughter is not one (mixing copies)."""
    abs_id = np.abs(table.id)
    rows = np.nonzero(np.isin(abs_id, ids))[0]
    return rows[~np.isin(abs_id[table.daughter1[rows]], ids)]


def cluster(table: ParticleTable, rows: np.ndarray, scale: np.ndarray, config: DetectorConfig,
            min_pt: float) -> tuple[ak.Array, ak.Array, np.ndarray]:
    """Cluster `rows` (momenta times `scale`) per event; jets, constituent indices, row order."""
    fastjet = quiet_fastjet()
    order = np.argsort(table.event[rows], kind="stable")
    rows, scale = rows[order], scale[order]
    t = table
    inputs = jagged(t.event[rows], t.n_events, px=t.px[rows] * scale, py=t.py[rows] * scale,
                    pz=t.pz[rows] * scale, E=t.e[rows] * scale)
    inputs = ak.with_name(inputs, "Momentum4D")
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, config.jet_r)
    seq = fastjet.ClusterSequence(inputs, jetdef)
    return seq.inclusive_jets(min_pt), seq.constituent_index(min_pt), order


def reconstruct_jets(table: ParticleTable, used: np.ndarray, config: DetectorConfig,
                     rng: np.random.Generator) -> Jets:
    """Jets from visible particles not used as e/mu/gamma, smeared, cut, b-tagged, pT-ordered."""
    t, n = table, table.n_events
    real = np.nonzero(t.visible & ~used)[0]
    ghost_b, ghost_c = weak_hadrons(t, WEAK_B_HADRONS), weak_hadrons(t, WEAK_C_HADRONS)
    rows = np.concatenate([real, ghost_b, ghost_c])
    flavour = np.repeat(np.array([LIGHT, BOTTOM, CHARM], dtype=np.int8),
                        [len(real), len(ghost_b), len(ghost_c)])
    scale = np.where(flavour == LIGHT, 1.0, config.ghost_scale)
    jets, constituents, order = cluster(t, rows, scale, config,
                                        _CLUSTER_PT_FRACTION * config.jet_pt_min)
    flavour = flavour[order]

    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    jet_event = np.repeat(np.arange(n), n_jets)
    flat = ak.flatten(jets, axis=1)
    px, py, pz, e = (ak.to_numpy(flat[c]).astype(np.float64) for c in ("px", "py", "pz", "E"))

    # flavour of each jet: the highest flavour among its constituents (ghosts included)
    n_const = ak.to_numpy(ak.flatten(ak.num(constituents, axis=2), axis=None))
    local = ak.to_numpy(ak.flatten(constituents, axis=None)).astype(np.int64)
    input_offsets = np.concatenate([[0], np.cumsum(np.bincount(t.event[rows], minlength=n))])
    const_event = np.repeat(jet_event, n_const)
    const_flavour = flavour[local + input_offsets[const_event]]
    starts = np.concatenate([[0], np.cumsum(n_const)[:-1]])
    jet_flavour = (np.maximum.reduceat(const_flavour, starts) if len(starts)
                   else np.zeros(0, dtype=np.int8))

    # calorimeter response by HCAL region; b-tagging by flavour, pT and |eta|
    pt_true, eta, phi = pt_eta_phi(px, py, pz)
    factor = smear_factor(config.jet_resolution(e, eta), rng)
    pt = pt_true * factor
    mass = factor * np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))
    btag = rng.random(len(pt)) < config.btag_efficiency(pt, eta, jet_flavour)

    keep = (pt > config.jet_pt_min) & (np.abs(eta) < config.jet_eta_max)
    ev = jet_event[keep]
    dpt = (pt - pt_true)[keep]
    order = by_pt(ev, pt[keep])
    collection = jagged(ev, n, order, PT=pt[keep].astype(np.float32),
                        Eta=eta[keep].astype(np.float32), Phi=phi[keep].astype(np.float32),
                        Mass=mass[keep].astype(np.float32), BTag=btag[keep].astype(np.int32))
    return Jets(collection,
                np.bincount(ev, dpt * np.cos(phi[keep]), minlength=n),
                np.bincount(ev, dpt * np.sin(phi[keep]), minlength=n),
                np.bincount(ev, pt_true[keep], minlength=n), jet_flavour[keep][order])
