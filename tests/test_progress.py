"""Progress bars print their final state once, also into a log file (a non-terminal stream)."""

from __future__ import annotations

import io

import pytest
from tqdm.auto import tqdm

from hepfm.progress import progress_bar


def _generate_like(make_bar) -> str:
    """What ``hepfm generate`` does with its bar: chunks arrive, each updates the bar, names
    its process and may log a line (redrawn under the bar); then the bar is closed."""
    stream = io.StringIO()
    bar = make_bar(stream)
    for chunk in range(3):
        bar.update(2)
        if chunk == 2:  # the part is complete: one log line (logging_redirect_tqdm)
            tqdm.write("ttH.root: 6 events", file=stream)
        bar.set_postfix_str("ttH")
    bar.close()
    return stream.getvalue()


def _final_states(output: str) -> int:
    return sum("6/6" in state for state in output.replace("\n", "\r").split("\r"))


def test_a_plain_tqdm_bar_repeats_its_final_state():
    # the reason for ProgressBar: tqdm redraws the complete bar for the postfix, the log
    # line and close()
    out = _generate_like(lambda s: tqdm(total=6, desc="generate", file=s, mininterval=0))
    assert _final_states(out) > 1


@pytest.mark.parametrize("disable", [False, True])
def test_the_final_state_is_printed_once(disable):
    out = _generate_like(lambda s: progress_bar(6, "generate", file=s, mininterval=0,
                                                disable=disable))
    assert _final_states(out) == (0 if disable else 1)
    assert out.count("ttH.root: 6 events") == 1
    if not disable:
        assert out.rstrip("\n").replace("\r", "\n").splitlines()[-1].startswith(
            "generate: 100%")  # the last line is the complete bar, with the postfix
        assert out.rstrip("\n").endswith("ttH]")
        assert "4/6" in out  # intermediate states are still shown


def test_a_new_postfix_draws_no_line_of_its_own():
    stream = io.StringIO()
    bar = progress_bar(6, "hepfm predict", file=stream, mininterval=0)
    for name in ("a.root", "b.root", "c.root"):
        bar.set_postfix_str(name)
        bar.update(2)
    bar.close()
    states = [s for s in stream.getvalue().replace("\n", "\r").split("\r") if s.strip()]
    assert len(states) == 4  # the empty bar, 2/6, 4/6 and the final state
    assert [s.rstrip().rsplit(" ", 1)[-1] for s in states[1:]] == ["a.root]", "b.root]",
                                                                   "c.root]"]
