"""The decay-plane angle Phi of H -> Z Z* -> 4 leptons, the variable that tells CP-even from
CP-odd (docs/tasks.md).

Phi is the angle between the decay planes of the two Z bosons in the four-lepton rest frame,
signed by the orientation of the planes along the Z1 direction (Z1: the opposite-sign,
same-flavour pair closest to the Z mass). A CP-even scalar gives dN/dPhi ~ 1 + a cos(Phi) +
b cos(2 Phi) with b > 0; a CP-odd one ~ 1 - c cos(2 Phi): the mean of cos(2 Phi) separates
them. Leptons are taken as massless; events without exactly two opposite-sign same-flavour
pairs get NaN.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

Z_MASS = 91.1876


def _four_vectors(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Massless (E, px, py, pz) of shape (..., 4) from pT, eta, phi."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([np.sqrt(px**2 + py**2 + pz**2), px, py, pz], axis=-1)


def _mass(p: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1), 0.0, None))


def _boost(p: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """`p` (..., k, 4) seen in the rest frame of `frame` (..., 4)."""
    beta = frame[..., 1:] / frame[..., :1]
    b2 = np.sum(beta**2, axis=-1, keepdims=True)
    gamma = 1.0 / np.sqrt(np.clip(1.0 - b2, 1e-12, None))
    beta, gamma, b2 = beta[..., None, :], gamma[..., None, :], b2[..., None, :]
    bp = np.sum(beta * p[..., 1:], axis=-1, keepdims=True)
    energy = gamma * (p[..., :1] - bp)
    coef = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0)
    return np.concatenate([energy, p[..., 1:] + coef * beta - gamma * p[..., :1] * beta], -1)


def decay_plane_angle(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray,
                      flavour: np.ndarray) -> np.ndarray:
    """Phi in [-pi, pi] for events of exactly four leptons, arrays of shape (n, 4).

    `flavour` is 11 or 13 per lepton, `charge` +-1. Returns NaN where no pairing into two
    opposite-sign same-flavour pairs exists.
    """
    p = _four_vectors(pt, eta, phi)
    n = len(pt)
    best = np.full(n, np.inf)
    pairs = np.zeros((n, 4), dtype=np.int64)  # Z1 (minus, plus), Z2 (minus, plus)
    for a, b, c, d in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
        ok = ((flavour[:, a] == flavour[:, b]) & (charge[:, a] == -charge[:, b])
              & (flavour[:, c] == flavour[:, d]) & (charge[:, c] == -charge[:, d]))
        for (i, j), (k, m) in (((a, b), (c, d)), ((c, d), (a, b))):
            dist = np.abs(_mass(p[:, i] + p[:, j]) - Z_MASS)
            better = ok & (dist < best)
            best = np.where(better, dist, best)
            first_minus = charge[:, i] < 0
            z1 = np.where(first_minus[:, None], [[i, j]], [[j, i]])
            second_minus = charge[:, k] < 0
            z2 = np.where(second_minus[:, None], [[k, m]], [[m, k]])
            pairs = np.where(better[:, None], np.concatenate([z1, z2], axis=1), pairs)
    leptons = np.take_along_axis(p, pairs[:, :, None], axis=1)
    rest = _boost(leptons, leptons.sum(axis=1))[..., 1:]
    n1, n2 = np.cross(rest[:, 0], rest[:, 1]), np.cross(rest[:, 2], rest[:, 3])
    with np.errstate(invalid="ignore", divide="ignore"):  # unpaired events: NaN below
        n1 /= np.linalg.norm(n1, axis=-1, keepdims=True)
        n2 /= np.linalg.norm(n2, axis=-1, keepdims=True)
    z1_dir = rest[:, 0] + rest[:, 1]
    sign = np.sign(np.sum(z1_dir * np.cross(n1, n2), axis=-1))
    angle = sign * np.arccos(np.clip(np.sum(n1 * n2, axis=-1), -1.0, 1.0))
    return np.where(np.isfinite(best), angle, np.nan)


def decay_plane_angle_of_events(arrays: ak.Array) -> np.ndarray:
    """Phi of every event of Delphes-layout arrays (``Electron.*``, ``Muon.*`` branches) with
    exactly four charged leptons; one value per such event (NaN where no pairing)."""
    fields = {}
    for flav, coll in ((11, "Electron"), (13, "Muon")):
        fields[flav] = ak.zip({"pt": arrays[f"{coll}.PT"], "eta": arrays[f"{coll}.Eta"],
                               "phi": arrays[f"{coll}.Phi"], "charge": arrays[f"{coll}.Charge"],
                               "flavour": ak.ones_like(arrays[f"{coll}.PT"]) * flav})
    leptons = ak.concatenate([fields[11], fields[13]], axis=1)
    leptons = leptons[ak.num(leptons, axis=1) == 4]
    cols = {k: ak.to_numpy(ak.flatten(leptons[k])).reshape(-1, 4).astype(np.float64)
            for k in ("pt", "eta", "phi", "charge", "flavour")}
    return decay_plane_angle(cols["pt"], cols["eta"], cols["phi"], cols["charge"],
                             cols["flavour"].astype(np.int64))
