"""Progress bars (tqdm) that print their final state once.

A plain tqdm bar prints its final state again and again when, after the update that
completes it, a postfix is set, a log line is written through
``tqdm.contrib.logging.logging_redirect_tqdm`` (the bar is redrawn under it) and the bar is
closed: on a terminal the copies overwrite each other, in a log file (a batch job's stderr)
they stand one after another. :class:`ProgressBar` leaves the final state to ``close()``, and
a new postfix (the file or process at work) waits for the next update instead of drawing a
line of its own.
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


class ProgressBar(tqdm):  # type: ignore[misc]
    """A tqdm bar whose complete state is printed once, by :meth:`close`."""

    _closing = False

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is None and not self._closing and self.total and self.n >= self.total:
            return True  # complete: close() prints it, with the overall rate
        return bool(super().display(msg, pos))

    def set_postfix_str(self, s: str = "", refresh: bool = False) -> None:
        super().set_postfix_str(s, refresh=refresh)

    def close(self) -> None:
        self._closing = True
        super().close()


def progress_bar(total: int, desc: str, *, unit: str = "ev", disable: bool = False,
                 **kwargs: Any) -> ProgressBar:
    """A :class:`ProgressBar` of `total` `unit` named `desc` (tqdm keyword `kwargs`)."""
    return ProgressBar(total=total, desc=desc, unit=unit, disable=disable, **kwargs)
