"""Which device a run uses: the one place where ``auto``, ``gpu`` and friends are resolved.

``--device`` (and every ``device=`` argument) takes :data:`DEVICES`: ``auto`` is cuda when
torch sees a GPU, else cpu; ``gpu`` is cuda. :func:`resolve_device` gives the torch device
(and refuses one that torch does not see); :func:`accelerator` the Lightning accelerator.
"""

from __future__ import annotations

from hepfm.errors import ArgumentError, naming

DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")


def resolve_device(device: str) -> str:
    """The torch device that `device` names (see the module docstring); a device that torch
    does not see is an :class:`ArgumentError` naming it (``device='cuda'`` in Python,
    ``--device cuda`` on the command line)."""
    import torch

    if device not in DEVICES:
        raise naming(ArgumentError, f"{{device='{device}'}}: not one of {', '.join(DEVICES)}",
                     "device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device in ("cuda", "gpu") and not torch.cuda.is_available():
        raise naming(ArgumentError, f"{{device='{device}'}}: torch sees no CUDA GPU (use "
                     "{device='cpu'} or auto)", "device")
    if device == "mps" and not torch.backends.mps.is_available():
        raise naming(ArgumentError, "{device='mps'}: torch sees no Apple GPU (use "
                     "{device='cpu'} or auto)", "device")
    return "cuda" if device == "gpu" else device


def accelerator(device: str) -> str:
    """The Lightning accelerator of `device` (``auto`` stays Lightning's ``auto``)."""
    return {"cuda": "gpu", "gpu": "gpu"}.get(device, device)
