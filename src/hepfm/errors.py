"""Exceptions raised by hepfm. Every message names the file, branch or argument at fault."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class HepfmError(Exception):
    """Base class of all hepfm errors.

    `cli_message`, when set, is what the ``hepfm`` command prints instead of ``str(err)``:
    the same fault with its remedy named by command-line options, where the message names
    Python arguments (``on_invalid='drop'`` is ``--on-invalid drop`` on the command line).
    """

    cli_message: str | None = None

    def for_cli(self, message: str) -> HepfmError:
        """This error, printed as `message` by the ``hepfm`` command."""
        self.cli_message = message
        return self


def naming(cls: type[HepfmError], template: str, setting: str) -> HepfmError:
    """A `cls` error whose message `template` names the setting `setting` where it says
    ``{setting}``: as the Python argument (``label_branch``) and, printed by the ``hepfm``
    command, as its option (``--label-branch``)."""
    err = cls(template.replace("{setting}", setting))
    return err.for_cli(template.replace("{setting}", "--" + setting.replace("_", "-")))


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
    """A model directory or checkpoint that cannot be used: another version or architecture,
    incomplete or corrupt, or holding pickled Python objects (never unpickled)."""


class ArgumentError(HepfmError, ValueError):
    """A setting (function argument or command-line option) with a value hepfm cannot use."""


class OutputExistsError(HepfmError, FileExistsError):
    """An output (file or run directory) exists and would be replaced without ``force``."""


class MissingExtraError(HepfmError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.module, self.extra = module, extra
        super().__init__(f"{purpose} needs the Python package '{module}', which is not "
                         f"installed: pip install 'hepfm[{extra}]'")


#: Optional modules and the extra (``pip install 'hepfm[extra]'``) that installs each.
EXTRAS: dict[str, str] = {"pythia8mc": "generate", "fastjet": "generate",
                          "torch_scatter": "scatter", "numba": "fast"}


def missing_extra(err: ImportError, purpose: str = "this command") -> MissingExtraError | None:
    """A :class:`MissingExtraError` for an ImportError of an optional module, else None."""
    name = getattr(err, "name", None) or ""
    if name not in EXTRAS:  # e.g. re-raised from a worker process without ``name``
        name = next((m for m in EXTRAS if f"'{m}'" in str(err)), "")
    root = name.split(".")[0]
    return MissingExtraError(root, EXTRAS[root], purpose) if root in EXTRAS else None
