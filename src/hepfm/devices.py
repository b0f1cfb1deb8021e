"""Which device a run uses: the one place where ``auto``, ``gpu`` and friends are resolved.

``--device`` (and every ``device=`` argument) takes :data:`DEVICES`: ``auto`` is cuda when
torch sees a GPU, else cpu; ``gpu`` is cuda. :func:`resolve_device` gives the torch device
(and refuses one that torch does not see); :func:`accelerator` the Lightning accelerator.
"""

from __future__ import annotations

from hepfm.errors import ArgumentError

DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")


def resolve_device(device: str, option: str = "--device") -> str:
    """The torch device that `device` names (see the module docstring); a device that torch
    does not see is an :class:`ArgumentError` naming `option`."""
    import torch

    if device not in DEVICES:
        raise ArgumentError(f"{option} {device}: not one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device in ("cuda", "gpu") and not torch.cuda.is_available():
        raise ArgumentError(f"{option} {device}: torch sees no CUDA GPU (use {option} cpu or "
                            "auto)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError(f"{option} mps: torch sees no Apple GPU (use {option} cpu or auto)")
    return "cuda" if device == "gpu" else device


def accelerator(device: str) -> str:
    """The Lightning accelerator of `device` (``auto`` stays Lightning's ``auto``)."""
    return {"cuda": "gpu", "gpu": "gpu"}.get(device, device)
