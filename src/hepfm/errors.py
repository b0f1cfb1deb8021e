"""Exceptions raised by hepfm. Every message names the file, branch or argument at fault."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar


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


E = TypeVar("E", bound=HepfmError)


def option(setting: str) -> str:
    """The command-line option of the Python argument `setting` (``label_branch`` is
    ``--label-branch``)."""
    return "--" + setting.replace("_", "-")


def naming(cls: type[E], template: str, *settings: str,
           options: Mapping[str, str] | None = None) -> E:
    """A `cls` error whose message `template` names each of `settings` (Python argument
    names) where it says ``{name}`` (``{setting}``: the first): as the Python argument
    (``label_branch``) and, printed by the ``hepfm`` command, as its option
    (``--label-branch``; `options` maps an argument to an option of another name).
    ``{name=value}`` is ``name=value`` in Python and ``--name value`` on the command line
    (``{on_invalid='drop'}``: ``--on-invalid drop``; ``{force=True}``: ``--force``)."""
    names = {"setting": settings[0], **{s: s for s in settings}}
    field = re.compile(r"\{(" + "|".join(map(re.escape, names)) + r")(?:=([^{}]*))?\}")

    def render(cli: bool) -> str:
        def one(m: re.Match[str]) -> str:
            name, value = names[m.group(1)], m.group(2)
            if not cli:
                return name if value is None else f"{name}={value}"
            flag = (options or {}).get(name) or option(name)
            return flag if value in (None, "True") else f"{flag} " + value.strip("'\"")
        return field.sub(one, template)

    err = cls(render(False))
    err.cli_message = render(True)
    return err


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
