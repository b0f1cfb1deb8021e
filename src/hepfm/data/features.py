"""Feature definitions and object selection: one definition, used everywhere.

See ``docs/features.md`` for the physics meaning of every column. Node, edge and global
feature names and their order are part of the contract between ``hepfm.data`` and the model
(``docs/contracts.md`` section 2). Every column position is derived from these names (the
graph builder looks each name up), so reordering them reorders the batches' columns; a name
the builder does not know is an error, never a silently shifted column. Saved models record
the names and refuse to load under others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hepfm.errors import ArgumentError

#: Node types in index order (``node_type`` holds indices into this tuple).
NODE_TYPES: tuple[str, ...] = ("jet", "bjet", "electron", "muon", "photon", "met")
JET, BJET, ELECTRON, MUON, PHOTON, MET = range(6)

#: Raw node features (columns of ``batch.x``).
NODE_FEATURES: tuple[str, ...] = (
    "log_pt", "eta", "sin_phi", "cos_phi", "log_e", "charge", "btag",
    "is_jet", "is_bjet", "is_electron", "is_muon", "is_photon", "is_met",
)
#: Columns of ``x`` that are one-hot node types (normalisation keeps them as they are).
ONE_HOT_COLUMNS: tuple[int, ...] = tuple(NODE_FEATURES.index(f"is_{t}") for t in NODE_TYPES)

#: Edge features (columns of ``batch.edge_attr``), sender minus receiver for differences.
EDGE_FEATURES: tuple[str, ...] = ("delta_eta", "delta_phi", "delta_r", "log_mass")

#: Event-level features (columns of ``batch.u``); log means log(1 + x / GeV).
GLOBAL_FEATURES: tuple[str, ...] = ("log_met", "log_ht", "n_jets", "n_bjets", "n_leptons")

#: Masses (GeV) given to objects whose collection has no mass branch.
OBJECT_MASSES: dict[str, float] = {"electron": 0.000511, "muon": 0.10566, "photon": 0.0}

#: Version of the feature definitions; part of every cache key.
FEATURE_VERSION = 1


@dataclass(frozen=True)
class ObjectCut:
    """Selection of one object collection: pT and |eta| thresholds, at most `max_objects`
    objects kept, highest pT first."""

    pt_min: float
    eta_max: float
    max_objects: int

    def __post_init__(self) -> None:
        if self.max_objects < 0:
            raise ArgumentError(f"max_objects must be >= 0, got {self.max_objects}")


@dataclass(frozen=True)
class Selection:
    """Object selection applied when reading. Which jets are ``bjet`` nodes is the branch
    map's b-tagging rule (:class:`hepfm.data.btag.BTagRule`); a b-jet still counts against
    ``jet.max_objects``."""

    jet: ObjectCut = field(default_factory=lambda: ObjectCut(25.0, 4.5, 10))
    electron: ObjectCut = field(default_factory=lambda: ObjectCut(10.0, 2.5, 4))
    muon: ObjectCut = field(default_factory=lambda: ObjectCut(10.0, 2.7, 4))
    photon: ObjectCut = field(default_factory=lambda: ObjectCut(10.0, 2.5, 4))

    def cut(self, collection: str) -> ObjectCut:
        """The cut of `collection` (``jet``, ``electron``, ``muon``, ``photon``)."""
        return getattr(self, collection)

    def to_dict(self) -> dict:
        """Plain dict (for YAML and cache keys)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Selection:
        """Inverse of :meth:`to_dict`."""
        kw = {k: ObjectCut(**v) if isinstance(v, dict) else v for k, v in d.items()}
        return cls(**kw)


#: Default selection (used when none is given).
DEFAULT_SELECTION = Selection()

#: Object collections that become nodes, in the order their nodes appear in an event
#: (the MET node comes last).
OBJECT_COLLECTIONS: tuple[str, ...] = ("jet", "electron", "muon", "photon")
