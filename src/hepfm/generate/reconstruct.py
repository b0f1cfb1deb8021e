"""The detector response of a batch: Pythia's particles to Delphes collections.

Composes the parts: isolated electrons, muons and photons (:mod:`hepfm.generate.objects`),
anti-kt jets with b-tagging (:mod:`hepfm.generate.jets`) and the missing transverse momentum,
all configured by one :class:`~hepfm.generate.detector.DetectorConfig`.
"""

from __future__ import annotations

import time

import awkward as ak
import numpy as np

from hepfm.generate.detector import DetectorConfig
from hepfm.generate.jets import reconstruct_jets
from hepfm.generate.objects import ParticleTable, missing_et, reconstruct_leptons_photons


def reconstruct(table: ParticleTable, config: DetectorConfig, rng: np.random.Generator,
                timings: dict[str, float] | None = None) -> dict[str, ak.Array]:
    """Reconstructed objects of the events of `table`, by Delphes collection name.

    Returns ``Electron``, ``Muon``, ``Photon``, ``Jet`` and ``MissingET`` (one entry per
    event) as jagged records with Delphes field names (``PT``, ``Eta``, ...), float32/int32.
    `timings`, when given, receives the seconds spent in ``objects`` and ``jets``.
    """
    t0 = time.perf_counter()
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
