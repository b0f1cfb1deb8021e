"""Reading never lets a value through that the model cannot take.

Values are checked as float32 (the model's dtype) and on what the features compute from them;
negative pT and MET are bad input; a read-only sample directory still loads (cache elsewhere).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

import hepfm.atomic
from hepfm.data import build_batch, load_events, read_table
from hepfm.data.reading import E_MAX
from hepfm.errors import InputDataError
from tests._data_helpers import delphes_arrays, random_events, write_delphes


def _write(path: Path, arrays: dict[str, ak.Array]) -> Path:
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {k: v.type.content for k, v in arrays.items()},
                 field_name=lambda o, i: f"{o}.{i}", counter_name=lambda c: f"{c}_size"
                 ).extend(arrays)
    return path


def _raises(path: Path, match: str) -> str:
    with pytest.raises(InputDataError, match=match) as e:
        read_table(path)
    assert str(path) in str(e.value)
    return str(e.value)


def test_met_stored_as_double_beyond_float32(tmp_path: Path, caplog) -> None:
    d = delphes_arrays(random_events(6))
    met = np.array([100.0, 200.0, 1e300, 50.0, 60.0, 70.0])  # finite as double, inf as float32
    with np.errstate(over="ignore"):
        assert np.isfinite(met).all() and not np.isfinite(met.astype(np.float32)).all()
    d["MissingET"] = ak.zip({"MET": ak.unflatten(met, np.ones(6, np.int64)),
                             "Phi": ak.unflatten(np.zeros(6), np.ones(6, np.int64))})
    path = _write(tmp_path / "met.root", d)
    msg = _raises(path, r"'MissingET\.MET' \(beyond the float32 range, first at entry 2\)")
    assert "on_invalid='drop'" in msg
    with caplog.at_level(logging.WARNING):
        table = read_table(path, on_invalid="drop")
    assert len(table) == 5 and "dropped 1 of " in caplog.text
    assert sorted(table.pt[table.node_type == 5].tolist()) == [50, 60, 70, 100, 200]


def test_pt_whose_features_overflow_float32(tmp_path: Path, caplog) -> None:
    evs = random_events(5)
    evs[3]["jets"] = [(1e30, 0.5, 0.0, 10.0, 0), (40.0, 0.1, 1.0, 5.0, 0)]
    path = write_delphes(tmp_path / "pt.root", evs)
    assert np.float32(1e30) < np.finfo(np.float32).max  # passes a float32 finiteness check
    _raises(path, r"'Jet\.PT' \(energy 1\.13e\+30 GeV above 9\.22e\+18.*first at entry 3\)")
    with caplog.at_level(logging.WARNING):
        table = read_table(path, on_invalid="drop")
    assert len(table) == 4 and "dropped 1 of " in caplog.text
    # the bound is what the features need: at E_MAX every built feature is finite, while
    # the 1e30 event (read without the check) gives non-finite pair masses
    evs[3]["jets"] = [(E_MAX * 0.999, 0.0, 0.0, 0.0, 0), (E_MAX * 0.999, 0.0, 3.0, 0.0, 0)]
    batch = build_batch(read_table(write_delphes(tmp_path / "edge.root", evs)))
    for t in (batch.x, batch.edge_attr, batch.u):
        assert torch.isfinite(t).all()
    two_jets = [{"jets": [(40.0, 0.0, 0.0, 5.0, 0), (30.0, 0.5, 1.0, 5.0, 0)],
                 "met": (10.0, 0.0)}]
    table = read_table(write_delphes(tmp_path / "two.root", two_jets))
    table.pt[:2] = np.float32(1e30)
    with np.errstate(over="ignore", invalid="ignore"):
        assert not torch.isfinite(build_batch(table).edge_attr).all()


def test_negative_pt_and_met_are_bad_input(tmp_path: Path, caplog) -> None:
    evs = random_events(8)
    evs[2]["jets"] = [(-35.0, 0.3, 0.1, 5.0, 0)]  # before: silently "below threshold"
    evs[5]["muons"] = [(30.0, 0.2, 0.0, 1)]
    evs[6]["met"] = (-20.0, 0.0)
    path = write_delphes(tmp_path / "neg.root", evs)
    msg = _raises(path, r"'Jet\.PT' \(negative, first at entry 2\)")
    assert "'MissingET.MET' (negative, first at entry 6)" in msg and "2 event(s)" in msg
    with caplog.at_level(logging.WARNING):
        table = read_table(path, on_invalid="drop")
    assert len(table) == 6 and "dropped 2 of " in caplog.text


def test_read_only_sample_directory_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog) -> None:
    samples = tmp_path / "shared" / "samples"
    samples.mkdir(parents=True)
    for i, p in enumerate(("ttH", "tt")):
        write_delphes(samples / f"{p}.root", random_events(20, seed=i))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    if os.geteuid() == 0:  # root writes through chmod: refuse writes there as the OS would
        real = hepfm.atomic.tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).is_relative_to(samples):
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(hepfm.atomic.tempfile, "mkstemp", mkstemp)
        (samples / ".cache").mkdir()
    else:
        samples.chmod(0o555)
    try:
        with caplog.at_level(logging.INFO):
            table = load_events(samples, ["ttH", "tt"], cache_dir=samples / ".cache")
        assert len(table) == 40
        fallback = tmp_path / "home-cache" / "hepfm" / "events"
        assert "cannot write the event cache" in caplog.text and str(fallback) in caplog.text
        cached = list(fallback.glob("events-*.npz"))
        assert len(cached) == 1
        caplog.clear()
        with caplog.at_level(logging.INFO):
            again = load_events(samples, ["ttH", "tt"], cache_dir=samples / ".cache")
        assert f"loading cached events from {cached[0]}" in caplog.text
        np.testing.assert_array_equal(again.pt, table.pt)
        assert sorted(p.name for p in samples.iterdir() if p.name != ".cache") == [
            "tt.root", "ttH.root"]
        assert not list((samples / ".cache").glob("*")) if (samples / ".cache").exists() \
            else True
    finally:
        samples.chmod(0o755)
