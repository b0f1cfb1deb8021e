"""Exceptions raised by hepfm. Every message names the file, branch or argument at fault."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class HepfmError(Exception):
    """Base class of all hepfm errors."""


class UnknownNameError(HepfmError, KeyError):
    """A process, task, objective or model name that hepfm does not know."""

    def __init__(self, kind: str, name: str, known: Sequence[str]):
        lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
        hint = f" Did you mean '{lower[close[0]]}'?" if close else ""
        plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
        self.message = f"unknown {kind} '{name}'.{hint} Known {plural}: {', '.join(known)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InputDataError(HepfmError, ValueError):
    """A ROOT file, tree or branch that cannot be used (missing, corrupt, inconsistent)."""


class CheckpointError(HepfmError, ValueError):
    """A model directory or checkpoint from another version or architecture."""
