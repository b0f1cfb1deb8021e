"""The parametric detector's configuration: every parameter with its value and source.

``DetectorConfig`` holds every number the detector response uses. The defaults follow the
Delphes ATLAS card (``cards/delphes_card_ATLAS.tcl`` of delphes/delphes, "card" below) and
ATLAS publications where said; docs/detector.md has the same table with the formulas:

============================  ==================  ============================================
parameter                     default             source
============================  ==================  ============================================
calo_eta_max                  4.9                 card: calorimeter towers to |eta| 4.9
electron_pt_min / eta_max     10 GeV / 2.5        card: ElectronEfficiency
electron_eff_barrel / endcap  0.95 / 0.85         card: |eta| <= 1.5 / 1.5-2.5
muon_pt_min / eta_max         10 GeV / 2.7        card: MuonEfficiency (the tracker ends
                                                  at 2.5, so no muon beyond it survives)
muon_eff_barrel / endcap      0.95 / 0.85         card: |eta| <= 1.5 / 1.5-2.7
tracker_eta_max               2.5                 card: tracking efficiencies are 0 beyond
electron_track_eff_{barrel,   0.95 / 0.99,        card: ElectronTrackingEfficiency, |eta|
endcap}_{low,high}            0.83 / 0.90         <= 1.5 / 1.5-2.5, pT <= / > 100 GeV
electron_track_pt_split       100 GeV             card: ElectronTrackingEfficiency
muon_track_eff_barrel/endcap  0.99 / 0.98         card: MuonTrackingEfficiency (pT > 1 GeV)
photon_pt_min / eta_max       10 GeV / 2.5        card: PhotonEfficiency
photon_eff_barrel / endcap    0.95 / 0.85         card: |eta| <= 1.5 / 1.5-2.5
barrel_eta                    1.5                 card: barrel/endcap boundary of e, mu, gamma
em_stochastic / constant      0.10 / 0.007        ATLAS EM calo: 10%/sqrt(E) (+) 0.7%
muon_resolution_a / _b        0.02 / 1e-4 per GeV ATLAS combined: 2% low pT, ~10% at 1 TeV
iso_cone / iso_pt_min         0.3 / 0.5 GeV       Delta R = 0.3 cone; card: PTMin 0.5; the
                                                  isolation sum leaves out electrons and
                                                  muons (card: EFlowFilter)
*_iso_max (e, mu, gamma)      0.15 / 0.15 / 0.15  relative isolation sum pT / pT (CMS-like)
jet_r                         0.4                 anti-kt R = 0.4 (ATLAS and CMS), FastJet
jet_pt_min / jet_eta_max      25 GeV / 4.5        jets out to the forward calorimeter (card
                                                  clusters towers to 4.9; 4.5 keeps R=0.4
                                                  jets inside it)
jet_{stochastic,constant,     central |eta|<=1.7: card: HCal ResolutionFormula,
noise}_{central,endcap,       0.5205/0.0302/1.59; sigma_E = sqrt((c E)^2 + a^2 E + N^2)
forward}                      endcap 1.7-3.2:
                              0.706/0.05/0;
                              forward 3.2-4.9:
                              1.00/0.0942/0
jet_endcap_eta / forward_eta  1.7 / 3.2           card: HCal region boundaries
btag_eta_max                  2.5                 card: flavour association |eta| < 2.5
btag_b_{norm,rise,scale,fall} 0.80/0.003/30/0.086 card (ATL-PHYS-PUB-2015-022):
                                                  eff_b = norm tanh(rise pT) scale/(1+fall pT)
btag_c_{norm,rise,fall}       0.20/0.02/0.0034    card: eff_c = norm tanh(rise pT)/(1+fall pT)
btag_light_{const,slope}      0.002/7.3e-6        card: eff_light = const + slope pT
ghost_scale                   1e-18               ghosts leave jet kinematics unchanged
met_soft_resolution           0.5 sqrt(GeV)       ATLAS-like sigma(MET_x,y) = 0.5 sqrt(sum
                                                  ET) of the soft (unclustered) energy
============================  ==================  ============================================

An electron or muon is kept with probability (tracking efficiency) x (identification
efficiency), as the card chains its Efficiency modules. ``DETECTOR_VERSION`` numbers the
detector's behaviour; it is written into every generated file, so samples of different
versions never mix.

Jet flavour comes from ghost-matched weakly decaying B hadrons (b), else charm hadrons (c),
else light; outside ``btag_eta_max`` no jet is tagged. (+) means added in quadrature.

Energies are in GeV. Resolutions are applied as Gaussian factors on pT (the direction is kept),
clipped at zero; jets are smeared after clustering, as a calorimeter would, and MET gets the
mismeasurement of every reconstructed object plus the soft-term resolution.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hepfm.errors import ArgumentError, InputDataError

#: Version of the detector's behaviour (bumped whenever the response changes). Version 2:
#: electrons and muons no longer count in the isolation sums, and the card's electron and
#: muon tracking efficiencies (zero beyond |eta| 2.5) are applied.
DETECTOR_VERSION = 2


@dataclass(frozen=True)
class DetectorConfig:
    """Every parameter of the parametric detector (see the module docstring for the table)."""

    calo_eta_max: float = 4.9
    electron_pt_min: float = 10.0
    electron_eta_max: float = 2.5
    electron_eff_barrel: float = 0.95
    electron_eff_endcap: float = 0.85
    muon_pt_min: float = 10.0
    muon_eta_max: float = 2.7
    muon_eff_barrel: float = 0.95
    muon_eff_endcap: float = 0.85
    tracker_eta_max: float = 2.5
    electron_track_eff_barrel_low: float = 0.95
    electron_track_eff_barrel_high: float = 0.99
    electron_track_eff_endcap_low: float = 0.83
    electron_track_eff_endcap_high: float = 0.90
    electron_track_pt_split: float = 100.0
    muon_track_eff_barrel: float = 0.99
    muon_track_eff_endcap: float = 0.98
    photon_pt_min: float = 10.0
    photon_eta_max: float = 2.5
    photon_eff_barrel: float = 0.95
    photon_eff_endcap: float = 0.85
    barrel_eta: float = 1.5
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
    jet_eta_max: float = 4.5
    jet_stochastic_central: float = 0.5205
    jet_constant_central: float = 0.0302
    jet_noise_central: float = 1.59
    jet_stochastic_endcap: float = 0.706
    jet_constant_endcap: float = 0.05
    jet_noise_endcap: float = 0.0
    jet_stochastic_forward: float = 1.00
    jet_constant_forward: float = 0.0942
    jet_noise_forward: float = 0.0
    jet_endcap_eta: float = 1.7
    jet_forward_eta: float = 3.2
    btag_eta_max: float = 2.5
    btag_b_norm: float = 0.80
    btag_b_rise: float = 0.003
    btag_b_scale: float = 30.0
    btag_b_fall: float = 0.086
    btag_c_norm: float = 0.20
    btag_c_rise: float = 0.02
    btag_c_fall: float = 0.0034
    btag_light_const: float = 0.002
    btag_light_slope: float = 7.3e-6
    ghost_scale: float = 1e-18
    met_soft_resolution: float = 0.5

    def to_dict(self) -> dict[str, float]:
        """Plain dict (for the file metadata)."""
        return asdict(self)

    def jet_resolution(self, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative jet energy resolution sigma_E / E in the central, endcap or forward HCAL."""
        region = np.digitize(np.abs(eta), [self.jet_endcap_eta, self.jet_forward_eta])
        a, c, n = (np.array(v)[region] for v in (
            (self.jet_stochastic_central, self.jet_stochastic_endcap, self.jet_stochastic_forward),
            (self.jet_constant_central, self.jet_constant_endcap, self.jet_constant_forward),
            (self.jet_noise_central, self.jet_noise_endcap, self.jet_noise_forward)))
        e = np.maximum(energy, 1e-3)
        return np.sqrt(c**2 + a**2 / e + (n / e) ** 2)

    def btag_efficiency(self, pt: np.ndarray, eta: np.ndarray, flavour: np.ndarray
                        ) -> np.ndarray:
        """Tagging probability of jets of `flavour` (0 light, 1 c, 2 b); zero outside the
        tracker (``|eta| >= btag_eta_max``)."""
        eff_b = (self.btag_b_norm * np.tanh(self.btag_b_rise * pt) * self.btag_b_scale
                 / (1 + self.btag_b_fall * pt))
        eff_c = self.btag_c_norm * np.tanh(self.btag_c_rise * pt) / (1 + self.btag_c_fall * pt)
        eff_light = self.btag_light_const + self.btag_light_slope * pt
        eff = np.choose(flavour, [eff_light, eff_c, eff_b])
        return np.where(np.abs(eta) < self.btag_eta_max, np.clip(eff, 0.0, 1.0), 0.0)

    def lepton_efficiency(self, barrel: float, endcap: float, eta: np.ndarray) -> np.ndarray:
        """Barrel or endcap identification efficiency by |eta| (boundary ``barrel_eta``)."""
        return np.where(np.abs(eta) <= self.barrel_eta, barrel, endcap)

    def tracking_efficiency(self, pdg: int, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """The card's tracking efficiency of electrons (11) or muons (13) above 1 GeV: by
        barrel/endcap (``barrel_eta``), for electrons also by pT, zero outside the tracker."""
        barrel = np.abs(eta) <= self.barrel_eta
        if pdg == 11:
            high = pt > self.electron_track_pt_split
            eff = np.where(barrel,
                           np.where(high, self.electron_track_eff_barrel_high,
                                    self.electron_track_eff_barrel_low),
                           np.where(high, self.electron_track_eff_endcap_high,
                                    self.electron_track_eff_endcap_low))
        elif pdg == 13:
            eff = np.where(barrel, self.muon_track_eff_barrel, self.muon_track_eff_endcap)
        else:
            msg = f"tracking efficiency is defined for 11 and 13, not {pdg}"
            raise ValueError(msg)  # programming error: only lepton pdg ids are passed
        return np.where(np.abs(eta) <= self.tracker_eta_max, eff, 0.0)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ArgumentError(f"unknown detector parameters: {sorted(unknown)}")
        return cls(**values)


def load_detector(path: str | os.PathLike[str]) -> DetectorConfig:
    """The default detector with the parameters of a YAML file changed; errors name the file."""
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputDataError(f"cannot read detector file '{path}': {err}") from None
    if not isinstance(values, dict):
        raise InputDataError(f"detector file '{path}' must hold 'name: value' lines")
    try:
        return DetectorConfig.from_dict({**DetectorConfig().to_dict(),
                                         **{k: float(v) for k, v in values.items()}})
    except (TypeError, ValueError) as err:
        raise InputDataError(f"detector file '{path}': {err}") from None
