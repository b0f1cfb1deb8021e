"""The process catalog: every physics process hepfm can generate, with its Pythia 8 settings.

Each process has a short name, a human label, the Pythia 8 settings that produce it in
13 TeV proton-proton collisions, and a stable integer label. The 12 pretraining processes
(``PRETRAINING``) keep labels 0-11 forever: a model's multiclass logits are indexed by them.
Downstream-only processes (``ttA``, ``Zprime_tt``) are never shown in pretraining.

All processes use Pythia's built-in hard processes. Decays follow the Standard Model unless
a process says otherwise; Z bosons produced with jets or a Higgs decay to charged leptons and
W bosons produced with jets decay leptonically, as in the analyses that select them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hepfm.errors import UnknownNameError

#: Settings shared by every process (beam, output verbosity).
COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "Print:quiet = on",
    "Next:numberCount = 0",
)

# SM Higgs branching ratios at 125 GeV (LHC Higgs WG, YR4).
_SM_HIGGS_DECAYS: tuple[tuple[float, str], ...] = (
    (0.5824, "5 -5"),
    (0.2137, "24 -24"),
    (0.0819, "21 21"),
    (0.0627, "15 -15"),
    (0.0289, "4 -4"),
    (0.0262, "23 23"),
    (0.00227, "22 22"),
    (0.00153, "22 23"),
    (0.000218, "13 -13"),
)
# A CP-odd scalar has no tree-level coupling to W or Z pairs: the decays of the A in `ttA` are
# the SM Higgs ones without WW and ZZ, renormalised. This matters: Pythia's g g -> A t tbar
# (Sigma3gg2HQQbar) uses the scalar matrix element for the A too (only the coupling
# differs), so the decays are the one difference between ttA and ttH that Pythia can model.
# meMode = 100 keeps these ratios as given (Pythia would otherwise rescale by fermion mass).
_VV = {"24 -24", "23 23"}
_A_NORM = sum(br for br, ch in _SM_HIGGS_DECAYS if ch not in _VV)
_CP_ODD_DECAYS = tuple((round(br / _A_NORM, 6), ch) for br, ch in _SM_HIGGS_DECAYS
                       if ch not in _VV)


def _forced_decays(pdg_id: int, channels: Iterable[tuple[float, str]]) -> tuple[str, ...]:
    """Pythia settings replacing all decays of `pdg_id` with `channels` (BR, products)."""
    lines = []
    for i, (br, products) in enumerate(channels):
        verb = "oneChannel" if i == 0 else "addChannel"
        lines.append(f"{pdg_id}:{verb} = 1 {br} 100 {products}")
    return tuple(lines)


_Z_TO_LEPTONS = ("23:onMode = off", "23:onIfAny = 11 13 15")
_W_TO_LEPTONS = ("24:onMode = off", "24:onIfAny = 11 13 15")


@dataclass(frozen=True)
class Process:
    """One physics process: how to make it with Pythia 8 and how to label it."""

    name: str
    label: str
    settings: tuple[str, ...]
    label_id: int
    pretraining: bool = True
    cuts: dict[str, float] = field(default_factory=dict)
    description: str = ""

    def pythia_settings(self) -> tuple[str, ...]:
        """All settings for this process, common ones first."""
        return COMMON_SETTINGS + self.settings


_CATALOG: tuple[Process, ...] = (
    Process(
        "ggF_H", "gg → H", ("HiggsSM:gg2H = on",), 0,
        description="Gluon-fusion Higgs production, SM decays.",
    ),
    Process(
        "VBF_H", "qq → qqH (VBF)",
        ("HiggsSM:ff2Hff(t:WW) = on", "HiggsSM:ff2Hff(t:ZZ) = on"), 1,
        description="Vector-boson-fusion Higgs production, SM decays.",
    ),
    Process(
        "WH", "qq̄ → WH", ("HiggsSM:ffbar2HW = on",), 2,
        description="Higgs-strahlung with a W, SM decays.",
    ),
    Process(
        "ZH", "qq̄ → ZH, Z → ℓℓ", ("HiggsSM:ffbar2HZ = on", *_Z_TO_LEPTONS), 3,
        description="Higgs-strahlung with a Z decaying to charged leptons, SM Higgs decays.",
    ),
    Process(
        "ttH", "tt̄H", ("HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on"), 4,
        description="Higgs production with a top pair, SM decays.",
    ),
    Process(
        "tt", "tt̄", ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"), 5,
        description="Top-pair production, all decays.",
    ),
    Process(
        "single_top_t", "single top (t-channel)", ("Top:qq2tq(t:W) = on",), 6,
        description="t-channel single-top production.",
    ),
    Process(
        "single_top_s", "single top (s-channel)", ("Top:ffbar2tqbar(s:W) = on",), 7,
        description="s-channel single-top production.",
    ),
    Process(
        "W_jets", "W + jet, W → ℓν",
        ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
         "PhaseSpace:pTHatMin = 20.", *_W_TO_LEPTONS),
        8, cuts={"pTHatMin": 20.0},
        description="W boson with a hard parton, leptonic W decays.",
    ),
    Process(
        "Z_jets", "Z + jet, Z → ℓℓ",
        ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
         "WeakZ0:gmZmode = 2", "PhaseSpace:pTHatMin = 20.", *_Z_TO_LEPTONS),
        9, cuts={"pTHatMin": 20.0},
        description="Z boson (no photon interference) with a hard parton, Z → charged leptons.",
    ),
    Process(
        "diboson", "WW, WZ, ZZ", ("WeakDoubleBoson:all = on",), 10,
        description="Weak-boson pair production, all decays.",
    ),
    Process(
        "QCD_multijet", "QCD multijet", ("HardQCD:all = on", "PhaseSpace:pTHatMin = 50."), 11,
        cuts={"pTHatMin": 50.0},
        description="2 → 2 QCD scattering with pT-hat above 50 GeV.",
    ),
    # Downstream-only processes: never used in pretraining.
    Process(
        "ttA", "tt̄A (CP-odd, 125 GeV)",
        ("Higgs:useBSM = on", "HiggsBSM:gg2A3ttbar = on", "HiggsBSM:qqbar2A3ttbar = on",
         "36:m0 = 125.", "36:mWidth = 0.00407", *_forced_decays(36, _CP_ODD_DECAYS)),
        100, pretraining=False,
        description="A CP-odd scalar of 125 GeV with a top pair; SM-Higgs-like decays but no "
        "WW or ZZ (no tree-level coupling).",
    ),
    Process(
        "Zprime_tt", "Z' (1 TeV) → tt̄",
        ("NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 1000.",
         "32:onMode = off", "32:onIfAny = 6", "PhaseSpace:mHatMin = 500."),
        101, pretraining=False, cuts={"mHatMin": 500.0},
        description="A sequential-SM-like Z' of 1 TeV decaying to top pairs.",
    ),
)

PROCESSES: dict[str, Process] = {p.name: p for p in _CATALOG}
#: The 12 pretraining processes in label order; index == label_id.
PRETRAINING: tuple[str, ...] = tuple(p.name for p in _CATALOG if p.pretraining)
DOWNSTREAM_ONLY: tuple[str, ...] = tuple(p.name for p in _CATALOG if not p.pretraining)

assert [PROCESSES[n].label_id for n in PRETRAINING] == list(range(len(PRETRAINING)))


def get_process(name: str) -> Process:
    """The process called `name`; a clear error listing the known names otherwise."""
    try:
        return PROCESSES[name]
    except KeyError:
        raise UnknownNameError("process", name, list(PROCESSES)) from None


def resolve_processes(spec: str | Iterable[str]) -> list[str]:
    """Turn ``"all"``, ``"everything"``, ``"ttH,tt"`` or a list of names into process names.

    ``all`` means the 12 pretraining processes; ``everything`` adds the downstream-only ones.
    """
    if isinstance(spec, str):
        if spec.strip() == "all":
            return list(PRETRAINING)
        if spec.strip() == "everything":
            return list(PROCESSES)
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    names = list(dict.fromkeys(spec))
    if not names:
        raise ValueError("no process given: use 'all' or a comma-separated list of names")
    for name in names:
        get_process(name)
    return names
