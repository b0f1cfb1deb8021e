"""Branch maps: which branches of a TTree hold jets, leptons, photons, MET and truth.

``DELPHES`` is the layout written by Delphes and by ``hepfm generate`` (``Jet.PT``, ...).
``FLAT`` is a common flat-ntuple layout (``jet_pt``, ``el_pt``, ``met_met``, ...).
A user with other names builds a :class:`BranchMap` of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Fields of each collection, in hepfm's own (lower-case) names.
COLLECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "jet": ("pt", "eta", "phi", "mass", "btag"),
    "electron": ("pt", "eta", "phi", "charge"),
    "muon": ("pt", "eta", "phi", "charge"),
    "photon": ("pt", "eta", "phi"),
    "met": ("met", "phi"),
    "truth": ("pid", "pt", "eta", "phi", "m1"),
}


@dataclass(frozen=True)
class BranchMap:
    """Maps (collection, field) to a branch name; ``tree`` is the TTree's name."""

    name: str
    tree: str
    branches: dict[str, dict[str, str]] = field(default_factory=dict)
    optional: tuple[str, ...] = ("truth", "photon")

    def branch(self, collection: str, fld: str) -> str:
        return self.branches[collection][fld]

    def all_branches(self, collections: tuple[str, ...] | None = None) -> list[str]:
        cols = collections or tuple(self.branches)
        return [b for c in cols for b in self.branches[c].values()]


def _delphes_names() -> dict[str, dict[str, str]]:
    upper = {"pt": "PT", "eta": "Eta", "phi": "Phi", "mass": "Mass", "btag": "BTag",
             "charge": "Charge", "met": "MET", "pid": "PID", "m1": "M1"}
    prefix = {"jet": "Jet", "electron": "Electron", "muon": "Muon", "photon": "Photon",
              "met": "MissingET", "truth": "Truth"}
    return {c: {f: f"{prefix[c]}.{upper[f]}" for f in fs} for c, fs in COLLECTION_FIELDS.items()}


DELPHES = BranchMap("delphes", "Delphes", _delphes_names())

FLAT = BranchMap(
    "flat",
    "ntuple",
    {
        "jet": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "mass": "jet_m",
                "btag": "jet_btag"},
        "electron": {"pt": "el_pt", "eta": "el_eta", "phi": "el_phi", "charge": "el_charge"},
        "muon": {"pt": "mu_pt", "eta": "mu_eta", "phi": "mu_phi", "charge": "mu_charge"},
        "photon": {"pt": "ph_pt", "eta": "ph_eta", "phi": "ph_phi"},
        "met": {"met": "met_met", "phi": "met_phi"},
        "truth": {"pid": "truth_pid", "pt": "truth_pt", "eta": "truth_eta", "phi": "truth_phi",
                  "m1": "truth_m1"},
    },
)

BRANCH_MAPS: dict[str, BranchMap] = {"delphes": DELPHES, "flat": FLAT}
