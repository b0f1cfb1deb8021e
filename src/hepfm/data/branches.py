"""Branch maps: which branches of a TTree hold jets, leptons, photons, MET and truth.

Built in (:data:`BRANCH_MAPS`, exact branch names in ``data/README.md``):

- ``delphes``: the layout written by Delphes and by ``hepfm generate`` (``Jet.PT``, ...);
  ``Jet.BTag`` is a bit mask (bit 0: the card's first working point).
- ``flat``: a common flat-ntuple layout (``jet_pt``, ``el_pt``, ``met_met``, ...), GeV,
  ``jet_btag`` a 0/1 flag.
- ``nanoaod``: CMS NanoAOD (tree ``Events``, ``Jet_pt``, ..., scalar ``MET_pt``), GeV, the
  DeepJet score ``Jet_btagDeepFlavB`` at a working point.
- ``atlas-opendata``: the ATLAS 13 TeV Open Data ntuples (tree ``mini``), MeV, jets with an
  energy ``jet_E`` instead of a mass, electrons and muons in one collection ``lep_*`` split
  by ``lep_type`` (11 or 13), the MV2c10 score ``jet_MV2c10`` at a working point.

A map declares its energy unit (:mod:`hepfm.data.units`) and its b-tagging rule
(:class:`~hepfm.data.btag.BTagRule`); a user with other names builds a :class:`BranchMap` of
their own, in Python or from YAML (:meth:`BranchMap.from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hepfm.data.btag import BTagRule
from hepfm.data.units import UNITS
from hepfm.errors import ArgumentError

#: Fields of each collection, in hepfm's own (lower-case) names.
COLLECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "jet": ("pt", "eta", "phi", "mass", "btag"),
    "electron": ("pt", "eta", "phi", "charge"),
    "muon": ("pt", "eta", "phi", "charge"),
    "photon": ("pt", "eta", "phi"),
    "met": ("met", "phi"),
    "truth": ("pid", "pt", "eta", "phi", "m1"),
}
#: A jet collection may give its energy (``energy``) instead of its ``mass``.
JET_ENERGY = "energy"
#: Fields in energy units (converted to GeV when read).
ENERGY_FIELDS: frozenset[str] = frozenset({"pt", "mass", JET_ENERGY, "met"})


@dataclass(frozen=True)
class BranchMap:
    """Maps (collection, field) to a branch name; ``tree`` is the TTree's name.

    `energy_unit` is that of the file's pT, energy, mass and MET branches (``GeV`` or
    ``MeV``); `btag` says how the jet b-tag branch makes a b-jet; `split` takes a collection
    from a combined one: ``{"electron": ("lep_type", 11)}`` keeps the objects whose
    ``|lep_type|`` is 11 (the collection's fields name the combined branches).
    """

    name: str
    tree: str
    branches: dict[str, dict[str, str]] = field(default_factory=dict)
    optional: tuple[str, ...] = ("truth", "photon")
    energy_unit: str = "GeV"
    btag: BTagRule = field(default_factory=BTagRule)
    split: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.energy_unit not in UNITS:
            raise ArgumentError(f"branch map '{self.name}': energy_unit must be one of "
                                f"{', '.join(UNITS)}, got '{self.energy_unit}'")
        for coll, flds in self.branches.items():
            want = set(COLLECTION_FIELDS.get(coll, ()))
            have = set(flds) if coll != "jet" or JET_ENERGY not in flds else \
                (set(flds) - {JET_ENERGY}) | {"mass"}
            if not want or have != want or (coll == "jet" and {"mass", JET_ENERGY} <= set(flds)):
                alt = " (or energy for mass)" if coll == "jet" else ""
                raise ArgumentError(
                    f"branch map '{self.name}': collection '{coll}' needs fields "
                    f"{list(COLLECTION_FIELDS.get(coll, ()))}{alt} (collections: "
                    f"{', '.join(COLLECTION_FIELDS)}), got {list(flds)}")
        for coll in self.split:
            if coll not in self.branches:
                raise ArgumentError(f"branch map '{self.name}': split names '{coll}', which "
                                    "is not one of its collections")

    def branch(self, collection: str, fld: str) -> str:
        return self.branches[collection][fld]

    def collection_branches(self, collection: str) -> list[str]:
        """Branches read for `collection`: its fields, and its type branch when split."""
        names = list(self.branches[collection].values())
        if collection in self.split:
            names.append(self.split[collection][0])
        return names

    def all_branches(self, collections: tuple[str, ...] | None = None) -> list[str]:
        cols = collections or tuple(self.branches)
        return list(dict.fromkeys(b for c in cols for b in self.collection_branches(c)))

    def with_btag(self, spec: str | float | None) -> BranchMap:
        """This map with the b-tag working point `spec` (see :meth:`BTagRule.choose`)."""
        if spec is None or "jet" not in self.branches:
            return self
        return replace(self, btag=self.btag.choose(spec, self.branch("jet", "btag")))

    def record(self) -> dict[str, Any]:
        """What run records and model configs keep about how the files were read."""
        return {"branch_map": self.name, "energy_unit": self.energy_unit,
                "btag": self.btag.record()}

    def to_dict(self) -> dict[str, Any]:
        """Everything that decides what is read (for cache keys); :meth:`from_dict` inverts
        it up to the b-tag working points listed."""
        return {"name": self.name, "tree": self.tree, "branches": self.branches,
                "optional": list(self.optional), "energy_unit": self.energy_unit,
                "btag": {**self.btag.record(), "working_points": dict(self.btag.working_points)},
                "split": {c: list(v) for c, v in self.split.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BranchMap:
        """From YAML-like data: ``name``, ``tree``, ``branches`` (required), ``energy_unit``,
        ``btag`` (see :meth:`BTagRule.from_dict`), ``split`` (``{electron: [lep_type,
        11]}``), ``optional`` (collections that may be absent)."""
        unknown = set(d) - {"name", "tree", "branches", "optional", "energy_unit", "btag",
                            "split"}
        if unknown:
            raise ArgumentError(f"unknown key(s) {', '.join(sorted(unknown))}")
        branches = {str(c): {str(f): str(b) for f, b in fl.items()}
                    for c, fl in d["branches"].items()}
        split = {str(c): (str(v[0]), int(v[1])) for c, v in (d.get("split") or {}).items()}
        kw: dict[str, Any] = {}
        if "optional" in d:
            kw["optional"] = tuple(str(c) for c in d["optional"] or ())
        return cls(str(d.get("name", "custom")), str(d["tree"]), branches,
                   energy_unit=str(d.get("energy_unit", "GeV")),
                   btag=BTagRule.from_dict(d.get("btag") or "flag"), split=split, **kw)


def _delphes_names() -> dict[str, dict[str, str]]:
    upper = {"pt": "PT", "eta": "Eta", "phi": "Phi", "mass": "Mass", "btag": "BTag",
             "charge": "Charge", "met": "MET", "pid": "PID", "m1": "M1"}
    prefix = {"jet": "Jet", "electron": "Electron", "muon": "Muon", "photon": "Photon",
              "met": "MissingET", "truth": "Truth"}
    return {c: {f: f"{prefix[c]}.{upper[f]}" for f in fs} for c, fs in COLLECTION_FIELDS.items()}


#: Delphes writes ``BTag`` as a bit mask: bit N is the card's (N+1)-th working point.
DELPHES = BranchMap("delphes", "Delphes", _delphes_names(), btag=BTagRule("bits", bit=0))

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

#: DeepJet (``Jet_btagDeepFlavB``) working points of CMS Run 2 UL 2018 (BTV POG).
NANOAOD_WORKING_POINTS: dict[str, float] = {"loose": 0.0490, "medium": 0.2783, "tight": 0.7100}

NANOAOD = BranchMap(
    "nanoaod",
    "Events",
    {
        "jet": {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi", "mass": "Jet_mass",
                "btag": "Jet_btagDeepFlavB"},
        "electron": {"pt": "Electron_pt", "eta": "Electron_eta", "phi": "Electron_phi",
                     "charge": "Electron_charge"},
        "muon": {"pt": "Muon_pt", "eta": "Muon_eta", "phi": "Muon_phi", "charge": "Muon_charge"},
        "photon": {"pt": "Photon_pt", "eta": "Photon_eta", "phi": "Photon_phi"},
        "met": {"met": "MET_pt", "phi": "MET_phi"},
    },
    btag=BTagRule("score", cut=NANOAOD_WORKING_POINTS["medium"], working_point="medium",
                  working_points=NANOAOD_WORKING_POINTS),
)

#: MV2c10 (``jet_MV2c10``) fixed-cut working points (b-jet efficiency in per cent) of the
#: ATLAS 13 TeV Open Data release; its analyses use 70.
ATLAS_WORKING_POINTS: dict[str, float] = {"85": 0.1758475, "77": 0.645925, "70": 0.8244273,
                                          "60": 0.934906}

_LEPTON = {"pt": "lep_pt", "eta": "lep_eta", "phi": "lep_phi", "charge": "lep_charge"}
ATLAS_OPENDATA = BranchMap(
    "atlas-opendata",
    "mini",
    {
        "jet": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", JET_ENERGY: "jet_E",
                "btag": "jet_MV2c10"},
        "electron": dict(_LEPTON),
        "muon": dict(_LEPTON),
        "photon": {"pt": "photon_pt", "eta": "photon_eta", "phi": "photon_phi"},
        "met": {"met": "met_et", "phi": "met_phi"},
    },
    energy_unit="MeV",
    btag=BTagRule("score", cut=ATLAS_WORKING_POINTS["70"], working_point="70",
                  working_points=ATLAS_WORKING_POINTS),
    split={"electron": ("lep_type", 11), "muon": ("lep_type", 13)},
)

BRANCH_MAPS: dict[str, BranchMap] = {"delphes": DELPHES, "flat": FLAT, "nanoaod": NANOAOD,
                                     "atlas-opendata": ATLAS_OPENDATA}
