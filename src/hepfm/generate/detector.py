"""The parametric detector: every parameter with its value, and the reconstruction entry point.

``DetectorConfig`` holds every number the detector response uses. The defaults describe a
generic ATLAS-like detector at 13 TeV (CMS-like where said), with the sources below:

=========================  =====================  ==========================================
parameter                  default                why
=========================  =====================  ==========================================
calo_eta_max               4.9                    ATLAS calorimeter coverage (FCal to 4.9)
electron_pt_min / eta_max  10 GeV / 2.47          ATLAS inner detector + EM calo precision
electron_efficiency        0.90                   ATLAS medium ID, flat in pT
muon_pt_min / eta_max      10 GeV / 2.5           ATLAS inner detector (combined muons)
muon_efficiency            0.95                   ATLAS medium muons
photon_pt_min / eta_max    10 GeV / 2.37          ATLAS EM calorimeter precision region
photon_efficiency          0.85                   ATLAS tight photon ID at tens of GeV
em_stochastic / constant   0.10 / 0.007           ATLAS EM calo: 10%/sqrt(E) (+) 0.7%
muon_resolution_a / _b     0.02 / 1e-4 per GeV    ATLAS combined: 2% low pT, ~10% at 1 TeV
iso_cone / iso_pt_min      0.3 / 0.5 GeV          Delta R = 0.3 cone; particles above the
                                                  ATLAS track threshold
*_iso_max (e, mu, gamma)   0.15 / 0.15 / 0.15     relative isolation sum pT / pT (CMS-like)
jet_r                      0.4                    anti-kt R = 0.4 (ATLAS and CMS), FastJet
jet_pt_min / jet_eta_max   25 GeV / 2.5           analysis jets inside the tracker (b-tag)
jet_stochastic / constant  0.50 / 0.03            ATLAS hadronic calo: 50%/sqrt(E) (+) 3%
btag_eff_b / _c / _light   0.70 / 0.15 / 0.01     CMS DeepCSV-medium-like working point
ghost_scale                1e-18                  ghosts leave jet kinematics unchanged
met_soft_resolution        0.5 sqrt(GeV)          ATLAS-like sigma(MET_x,y) = 0.5 sqrt(sum
                                                  ET) of the soft (unclustered) energy
=========================  =====================  ==========================================

Jet flavour comes from ghost-matched weakly decaying B hadrons (b), else charm hadrons (c),
else light. (+) means added in quadrature.

Energies are in GeV. Resolutions are applied as Gaussian factors on pT (the direction is kept),
clipped at zero; jets are smeared after clustering, as a calorimeter would, and MET gets the
mismeasurement of every reconstructed object plus the soft-term resolution.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import yaml


@dataclass(frozen=True)
class DetectorConfig:
    """Every parameter of the parametric detector (see the module docstring for the table)."""

    calo_eta_max: float = 4.9
    electron_pt_min: float = 10.0
    electron_eta_max: float = 2.47
    electron_efficiency: float = 0.90
    muon_pt_min: float = 10.0
    muon_eta_max: float = 2.5
    muon_efficiency: float = 0.95
    photon_pt_min: float = 10.0
    photon_eta_max: float = 2.37
    photon_efficiency: float = 0.85
    em_stochastic: float = 0.10
    em_constant: float = 0.007
    muon_resolution_a: float = 0.02
    muon_resolution_b: float = 1e-4
    iso_cone: float = 0.3
    iso_pt_min: float = 0.5
    electron_iso_max: float = 0.15
    muon_iso_max: float = 0.15
    photon_iso_max: float = 0.15
    jet_r: float = 0.4
    jet_pt_min: float = 25.0
    jet_eta_max: float = 2.5
    jet_stochastic: float = 0.50
    jet_constant: float = 0.03
    btag_eff_b: float = 0.70
    btag_eff_c: float = 0.15
    btag_eff_light: float = 0.01
    ghost_scale: float = 1e-18
    met_soft_resolution: float = 0.5

    def to_dict(self) -> dict[str, float]:
        """Plain dict (for the file metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown detector parameters: {sorted(unknown)}")
        return cls(**values)


def load_detector(path: str | os.PathLike[str]) -> DetectorConfig:
    """The default detector with the parameters of a YAML file changed; errors name the file."""
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read detector file '{path}': {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"detector file '{path}' must hold 'name: value' lines")
    try:
        return DetectorConfig.from_dict({**DetectorConfig().to_dict(),
                                         **{k: float(v) for k, v in values.items()}})
    except (TypeError, ValueError) as err:
        raise ValueError(f"detector file '{path}': {err}") from None


def reconstruct(prt: ak.Array, config: DetectorConfig, rng: np.random.Generator,
                timings: dict[str, float] | None = None) -> dict[str, ak.Array]:
    """Reconstructed objects of a batch of Pythia events, by Delphes collection name.

    Returns ``Electron``, ``Muon``, ``Photon``, ``Jet`` and ``MissingET`` (one entry per
    event) as jagged records with Delphes field names (``PT``, ``Eta``, ...), float32/int32.
    `timings`, when given, receives the seconds spent in ``objects`` and ``jets``.
    """
    from hepfm.generate.jets import reconstruct_jets
    from hepfm.generate.objects import ParticleTable, missing_et, reconstruct_leptons_photons

    t0 = time.perf_counter()
    table = ParticleTable.from_pythia(prt, config)
    leptons = reconstruct_leptons_photons(table, config, rng)
    t1 = time.perf_counter()
    jets = reconstruct_jets(table, leptons.used, config, rng)
    t2 = time.perf_counter()
    met = missing_et(table, leptons, jets, config, rng)
    t3 = time.perf_counter()
    if timings is not None:
        timings["objects"] = timings.get("objects", 0.0) + (t1 - t0) + (t3 - t2)
        timings["jets"] = timings.get("jets", 0.0) + (t2 - t1)
    return {**leptons.collections, "Jet": jets.collection, "MissingET": met}
