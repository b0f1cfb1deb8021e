"""Output heads that sit on the event representation."""

from __future__ import annotations

from torch import Tensor, nn


class Head(nn.Module):
    """``Linear`` on the representation, or ``Linear -> SiLU -> Dropout -> Linear`` with `hidden`.

    :meth:`features` returns the input of the final ``Linear`` (the representation itself when
    there is no hidden layer); ``representations`` reports it as ``head_input:<name>``.
    """

    def __init__(self, n_in: int, n_outputs: int, hidden: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.n_outputs = n_outputs
        self.hidden = hidden
        self.body: nn.Module = (
            nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Dropout(dropout))
            if hidden else nn.Identity()
        )
        self.out = nn.Linear(hidden or n_in, n_outputs)

    def features(self, h: Tensor) -> Tensor:
        return self.body(h)

    def forward(self, h: Tensor) -> Tensor:
        return self.out(self.body(h))
