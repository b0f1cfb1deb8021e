"""The process catalog, the task registry and the list commands of the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hepfm.cli import app
from hepfm.errors import UnknownNameError
from hepfm.processes import (
    DOWNSTREAM_ONLY,
    PRETRAINING,
    PROCESSES,
    get_process,
    resolve_processes,
)
from hepfm.tasks import TASKS, get_task, make_task


def test_twelve_pretraining_processes_with_stable_labels():
    assert len(PRETRAINING) == 12
    assert [PROCESSES[n].label_id for n in PRETRAINING] == list(range(12))
    assert set(DOWNSTREAM_ONLY) == {"Zprime_tt", "tt_highmass", "H4l_CPeven", "H4l_CPodd"}
    assert not any(PROCESSES[n].pretraining for n in DOWNSTREAM_ONLY)
    labels = [p.label_id for p in PROCESSES.values()]
    assert len(labels) == len(set(labels))


def test_settings_are_13_tev_and_specific():
    for p in PROCESSES.values():
        s = p.pythia_settings()
        assert "Beams:eCM = 13000." in s
        assert len(p.settings) >= 1, p.name


def test_resolve_processes():
    assert resolve_processes("all") == list(PRETRAINING)
    assert resolve_processes("everything") == list(PROCESSES)
    assert resolve_processes("ttH, tt,ttH") == ["ttH", "tt"]
    with pytest.raises(UnknownNameError, match="Did you mean 'ttH'"):
        resolve_processes("tth")
    with pytest.raises(ValueError, match="no process"):
        resolve_processes(" , ")


def test_unknown_process_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        get_process("ttbar_jets")
    assert "QCD_multijet" in str(err.value) and "Zprime_tt" in str(err.value)


def test_five_tasks():
    assert set(TASKS) == {"ttH_vs_tt", "VBF_vs_ggF", "ZH_vs_Z_jets", "H4l_CPodd_vs_CPeven",
                          "Zprime_vs_tt"}
    task = get_task("H4l_CPodd_vs_CPeven")
    assert task.label_of("H4l_CPodd") == 1 and task.label_of("H4l_CPeven") == 0
    assert task.processes == ("H4l_CPodd", "H4l_CPeven")
    with pytest.raises(UnknownNameError):
        task.label_of("tt")
    # the unseen-signal tasks never use a pretraining process
    for name in ("H4l_CPodd_vs_CPeven", "Zprime_vs_tt"):
        assert not any(PROCESSES[p].pretraining for p in get_task(name).processes)
    with pytest.raises(UnknownNameError, match="ttH_vs_tt"):
        get_task("ttH_vs_ttbar")


def test_make_task_validates():
    with pytest.raises(UnknownNameError):
        make_task("x", ["nope"], ["tt"])
    with pytest.raises(ValueError, match="at least one"):
        make_task("x", ["ttH"], [])
    with pytest.raises(ValueError, match="cannot be signal and background"):
        make_task("x", ["tt"], ["tt", "ttH"])


def test_cli_lists_processes_and_tasks():
    runner = CliRunner()
    out = runner.invoke(app, ["processes"])
    assert out.exit_code == 0
    for name in PROCESSES:
        assert name in out.output
    out = runner.invoke(app, ["tasks"])
    assert out.exit_code == 0 and "Zprime_vs_tt" in out.output


def test_cp_samples_differ_only_in_parity_and_zprime_shares_the_tt_mass_window():
    even, odd = (set(PROCESSES[n].settings) for n in ("H4l_CPeven", "H4l_CPodd"))
    assert even ^ odd == {"HiggsH1:parity = 1", "HiggsH1:parity = 2"}
    window = {s for s in PROCESSES["tt_highmass"].settings if s.startswith("PhaseSpace")}
    assert window == {"PhaseSpace:mHatMin = 800.", "PhaseSpace:mHatMax = 1200."}
    assert window <= set(PROCESSES["Zprime_tt"].settings)
