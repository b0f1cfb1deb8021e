"""b-tagging rules: how a jet's b-tag branch makes a ``bjet`` node.

A branch holds one of three things, and its branch map says which (:class:`BTagRule`):

- ``flag``: 0 or 1 per jet (tagged at the working point the file was made with);
- ``bits``: a bit mask, bit N set when the jet passes the (N+1)-th working point (Delphes
  writes ``BTag`` so when its card defines several); a jet is tagged when bit `bit` is set;
- ``score``: a continuous discriminant; a jet is tagged when its score is above `cut`,
  given as a number or as a named working point that the map lists.

Values that do not fit the kind (a score where a flag or a bit mask is expected) are an
error naming the file, branch and entry, never a silent guess. :meth:`BTagRule.choose`
applies a working point (the ``btag`` argument, ``--btag`` on the command line);
:meth:`BTagRule.record` is what run records and model configs keep, and
:func:`btag_mismatch` compares a recorded rule with the one in use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from hepfm.errors import ArgumentError, naming

Kind = Literal["flag", "bits", "score"]
KINDS: tuple[str, ...] = ("flag", "bits", "score")
_BIT = re.compile(r"bit\s*(\d+)$")


@dataclass(frozen=True)
class BTagRule:
    """Which jets are b-jets: `kind` of branch, and the bit or score cut used.

    `working_points` are the named working points the map lists: score cuts for a score
    branch, bit numbers for a bit mask; `working_point` is the name of the chosen one.
    """

    kind: Kind = "flag"
    bit: int = 0
    cut: float | None = None
    working_point: str | None = None
    working_points: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ArgumentError(f"b-tag kind must be one of {', '.join(KINDS)}, "
                                f"got '{self.kind}'")
        if self.kind == "score" and self.cut is None:
            raise ArgumentError("a b-tag score needs a working point (a cut or a named one)")
        if self.kind == "bits" and not 0 <= self.bit < 64:
            raise ArgumentError(f"b-tag bit must be 0..63, got {self.bit}")

    def describe(self) -> str:
        """``flag``, ``bit 0`` or ``score > 0.2783 (medium)``."""
        name = f" ({self.working_point})" if self.working_point else ""
        if self.kind == "bits":
            return f"bit {self.bit}{name}"
        if self.kind == "score":
            return f"score > {self.cut:.10g}{name}"
        return "flag"

    def record(self) -> dict[str, Any]:
        """What run records and model configs keep (plain types)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "bits":
            out["bit"] = self.bit
        if self.kind == "score":
            out["cut"] = float(self.cut)  # type: ignore[arg-type]
        if self.working_point:
            out["working_point"] = self.working_point
        return out

    def choose(self, spec: str | float | None, branch: str = "btag") -> BTagRule:
        """This rule with the working point `spec` (the ``btag`` argument, ``--btag`` on the
        command line): a name the map lists, a number (a score cut), ``bitN`` (bit N of a
        bit mask) or ``flag``."""
        if spec is None:
            return self
        text = str(spec).strip()
        if text in self.working_points:
            value = self.working_points[text]
            if self.kind == "bits":
                return replace(self, bit=int(value), working_point=text)
            return replace(self, kind="score", cut=float(value), working_point=text)
        if text == "flag":
            return replace(self, kind="flag", cut=None, working_point=None)
        bit = _BIT.match(text)
        if bit:
            return replace(self, kind="bits", bit=int(bit.group(1)), cut=None,
                           working_point=None)
        try:
            cut = float(text)
        except ValueError:
            named = f"a working point of the map ({', '.join(self.working_points)}), " \
                if self.working_points else ""
            raise naming(ArgumentError, f"{{btag}}: '{text}' is not {named}a score cut (a "
                         "number), bitN or flag", "btag") from None
        if self.kind == "bits":
            raise naming(
                ArgumentError, f"{{btag='{text}'}}: branch '{branch}' is a bit mask, not a "
                "score; give bitN (bit0 is the first working point)"
                + (f" or one of {', '.join(self.working_points)}" if self.working_points
                   else ""), "btag")
        if not np.isfinite(cut):
            raise naming(ArgumentError, f"{{btag}}: the score cut must be finite, got {text}",
                         "btag")
        return replace(self, kind="score", cut=cut, working_point=None)

    def problem(self, values: np.ndarray) -> tuple[np.ndarray, str]:
        """Mask of values that this kind cannot hold, and what they look like."""
        v = np.asarray(values)
        if self.kind == "score":
            return np.zeros(len(v), dtype=bool), ""
        if v.dtype.kind in "biu":
            integral = np.ones(len(v), dtype=bool)
        else:
            integral = np.isfinite(v) & (v == np.round(v))
        if self.kind == "flag":
            bad = ~(integral & ((v == 0) | (v == 1)))
            return bad, "not a 0/1 flag"
        bad = ~(integral & (v >= 0))
        return bad, "not a bit mask (a non-negative integer)"

    def tagged(self, values: np.ndarray) -> np.ndarray:
        """Boolean b-tag of each value (values already checked with :meth:`problem`)."""
        v = np.asarray(values)
        if self.kind == "score":
            return v > self.cut
        if self.kind == "bits":
            return (v.astype(np.int64) >> self.bit) & 1 == 1
        return v != 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str) -> BTagRule:
        """From a branch map's YAML: ``flag``, or ``{kind, bit, cut, working_point,
        working_points}`` (a named `working_point` is looked up in `working_points`)."""
        if isinstance(d, str):
            return cls(kind=d)  # type: ignore[arg-type]
        unknown = set(d) - {"kind", "bit", "cut", "working_point", "working_points"}
        if unknown:
            raise ArgumentError(f"b-tag: unknown key(s) {', '.join(sorted(unknown))}")
        wps = {str(k): float(v) for k, v in (d.get("working_points") or {}).items()}
        kind = str(d.get("kind", "score" if ("cut" in d or wps) else "flag"))
        wp = d.get("working_point")
        if kind == "score":
            if wp is None and d.get("cut") is None:
                raise ArgumentError("b-tag: a score needs 'cut' or 'working_point'")
            rule = cls(kind="score", cut=0.0, working_points=wps)
            return rule.choose(str(wp) if wp is not None else d["cut"])
        if kind == "bits":
            rule = cls(kind="bits", bit=int(d.get("bit", 0)), working_points=wps)
            return rule.choose(str(wp)) if wp is not None else rule
        return cls(kind=kind, working_points=wps)  # type: ignore[arg-type]

#: How to choose another working point, for warnings that one differs from a model's.
SET_BTAG = "the working point is btag= in Python, --btag on the command line"


def btag_mismatch(recorded: Mapping[str, Any] | None, used: BTagRule) -> str | None:
    """How `used` differs from the rule a model `recorded` (None when alike or unknown)."""
    if not recorded:
        return None
    mine = used.record()
    keys = ("kind", "bit", "cut")
    if all(recorded.get(k) == mine.get(k) for k in keys):
        return None
    then = BTagRule(kind=recorded.get("kind", "flag"), bit=int(recorded.get("bit", 0)),
                    cut=recorded.get("cut"), working_point=recorded.get("working_point"))
    return f"b-jets are '{used.describe()}' here but were '{then.describe()}' in training"
