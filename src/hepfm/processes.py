"""The process catalog: every physics process hepfm can generate, with its Pythia 8 settings,
and Pythia's parton showers by name (``SHOWERS``).

Each process has a short name, a human label, the Pythia 8 settings that produce it in
13 TeV proton-proton collisions, and a stable integer label. The 12 pretraining processes
(``PRETRAINING``) keep labels 0-11 forever: a model's multiclass logits are indexed by them.
Downstream-only processes (``Zprime_tt``, ``tt_highmass``, ``H4l_CPeven``, ``H4l_CPodd``) are
never shown in pretraining. Label ids are never reused (100 was a ttA process whose CP-odd
nature Pythia does not model in production; it was removed).

All processes use Pythia's built-in hard processes. Decays follow the Standard Model unless
a process says otherwise; Z bosons produced with jets or a Higgs decay to charged leptons and
W bosons produced with jets decay leptonically, as in the analyses that select them. Pythia's
decay settings are per particle, not per production mode: in ZH the Z bosons of H → ZZ*
decay to charged leptons too, and Pythia weights each decay channel by the open fraction of
its daughters, so H → ZZ* is 0.02 % of ZH events (4 in 20,000) against 2.6 % in ggF_H.
VBF uses dipole recoil for initial-state radiation (``SpaceShower:dipoleRecoil = on``), the
setting recommended for VBF (arXiv:2003.12435): the default global recoil puts too much
radiation between the tagging jets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hepfm.errors import ArgumentError, UnknownNameError

#: Settings shared by every process (beam, output verbosity).
COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    "Print:quiet = on",
    "Next:numberCount = 0",
)

_Z_TO_LEPTONS = ("23:onMode = off", "23:onIfAny = 11 13 15")
_W_TO_LEPTONS = ("24:onMode = off", "24:onIfAny = 11 13 15")
_TT_MASS_WINDOW = ("PhaseSpace:mHatMin = 800.", "PhaseSpace:mHatMax = 1200.")
# H -> Z Z* -> 4 charged leptons (e, mu): the decay in which Pythia applies HiggsH1:parity.
_H_TO_4L = ("25:onMode = off", "25:onIfMatch = 23 23", "23:onMode = off", "23:onIfAny = 11 13")


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
        ("HiggsSM:ff2Hff(t:WW) = on", "HiggsSM:ff2Hff(t:ZZ) = on",
         "SpaceShower:dipoleRecoil = on"), 1,
        description="Vector-boson-fusion Higgs production, SM decays; initial-state radiation "
        "with dipole recoil, as recommended for VBF (arXiv:2003.12435).",
    ),
    Process(
        "WH", "qq̄ → WH", ("HiggsSM:ffbar2HW = on",), 2,
        description="Higgs-strahlung with a W, SM decays.",
    ),
    Process(
        "ZH", "qq̄ → ZH, Z → ℓℓ", ("HiggsSM:ffbar2HZ = on", *_Z_TO_LEPTONS), 3,
        description="Higgs-strahlung with a Z decaying to charged leptons, SM Higgs decays "
        "(the Z decay setting also holds for H → ZZ*, which it makes rare: 0.02 %).",
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
        "Zprime_tt", "Z' (1 TeV) → tt̄, 800 < m̂ < 1200 GeV",
        ("NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 1000.",
         "32:onMode = off", "32:onIfAny = 6", *_TT_MASS_WINDOW),
        101, pretraining=False, cuts={"mHatMin": 800.0, "mHatMax": 1200.0},
        description="A sequential-SM-like Z' of 1 TeV decaying to top pairs (qq̄ → Z' only, "
        "no SM interference), in the m̂ window of tt_highmass.",
    ),
    Process(
        "tt_highmass", "tt̄, 800 < m_tt < 1200 GeV",
        ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_TT_MASS_WINDOW),
        102, pretraining=False, cuts={"mHatMin": 800.0, "mHatMax": 1200.0},
        description="SM top pairs in the Z' mass window: the background of Zprime_vs_tt.",
    ),
    Process(
        "H4l_CPeven", "gg → H → ZZ* → 4ℓ (CP-even)",
        ("Higgs:useBSM = on", "HiggsBSM:gg2H1 = on", "HiggsH1:parity = 1", *_H_TO_4L), 103,
        pretraining=False,
        description="Gluon-fusion 125 GeV scalar, H → ZZ* → 4ℓ (ℓ = e, μ), CP-even decay "
        "correlations.",
    ),
    Process(
        "H4l_CPodd", "gg → A → ZZ* → 4ℓ (CP-odd)",
        ("Higgs:useBSM = on", "HiggsBSM:gg2H1 = on", "HiggsH1:parity = 2", *_H_TO_4L), 104,
        pretraining=False,
        description="The same production and decay with pure CP-odd ZZ* correlations "
        "(Pythia applies HiggsH1:parity in H → ZZ* → 4 fermions).",
    ),
)

#: Pythia 8's own parton showers by name (``PartonShowers:model``); "simple" is the default.
#: Dire, once model 3, is no longer part of Pythia 8.317 (the setting's range is 1-2).
SHOWERS: dict[str, int] = {"simple": 1, "vincia": 2}
DEFAULT_SHOWER = "simple"


def check_shower(shower: str) -> str:
    """`shower` if it names one of :data:`SHOWERS`; a clear error otherwise."""
    if shower not in SHOWERS:
        raise UnknownNameError("parton shower", shower, list(SHOWERS))
    return shower


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
        raise ArgumentError("no process given: use 'all' or a comma-separated list of names")
    for name in names:
        get_process(name)
    return names
