"""Energy units of input files: hepfm works in GeV; a branch map says what its file holds.

Reading multiplies every energy, momentum and mass branch by :func:`scale` once. Since a
file in MeV read as GeV (or the reverse) gives jets a thousand times too hard (or too soft)
without any error, :func:`check_jet_pt` warns when the median jet pT, in GeV after the
conversion, lies outside :data:`PLAUSIBLE_JET_PT`.
"""

from __future__ import annotations

import warnings

import numpy as np

from hepfm.errors import ArgumentError

#: Energy units a branch map may declare, and their size in GeV.
UNITS: dict[str, float] = {"GeV": 1.0, "MeV": 1e-3}
#: Median jet pT (GeV) that a file in the declared unit can have; outside it, a warning.
PLAUSIBLE_JET_PT: tuple[float, float] = (1.0, 3000.0)


class UnitWarning(UserWarning):
    """The values of a file look like another energy unit than its branch map declares."""


def scale(unit: str) -> float:
    """Factor from `unit` to GeV."""
    try:
        return UNITS[unit]
    except KeyError:
        raise ArgumentError(f"energy unit must be one of {', '.join(UNITS)}, "
                            f"got '{unit}'") from None


def check_jet_pt(pt_gev: np.ndarray, unit: str, where: str) -> str | None:
    """Warn (and return the message) when the median of `pt_gev`, jet pT already converted
    from `unit` to GeV, looks like the other unit; `where` names the file and branch."""
    if not len(pt_gev):
        return None
    median = float(np.median(pt_gev))
    lo, hi = PLAUSIBLE_JET_PT
    if lo <= median <= hi or not np.isfinite(median):
        return None
    other = "MeV" if median > hi else "GeV"
    if other == unit:
        return None
    as_other = median * UNITS[other] / UNITS[unit]
    message = (f"{where}: the median jet pT is {median:.4g} GeV when read as {unit}; the "
               f"file looks like {other} ({as_other:.4g} GeV): use a branch map with "
               f"energy_unit: {other}")
    warnings.warn(message, UnitWarning, stacklevel=3)
    return message
