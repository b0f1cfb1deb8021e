"""``hepfm generate``: Delphes layout, physics sanity, reproducibility, errors, atomic files."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepfm.data.branches import DELPHES
from hepfm.errors import UnknownNameError
from hepfm.generate import (
    SCHEMA,
    DetectorConfig,
    GenerateArgumentError,
    OutputDirError,
    generate_samples,
    read_metadata,
)
from hepfm.generate.parts import SampleConflictError
from hepfm.generate.pythia import PYTHIA_SEED_MAX, chunk_seeds
from hepfm.generate.writer import SampleWriter, temp_path
from hepfm.processes import PROCESSES, get_process

N = 200  # events per process in the generated_dir fixture (tests/conftest.py)


def arrays(path: Path) -> ak.Array:
    with uproot.open(path) as f:
        return f["Delphes"].arrays(library="ak")


def same_arrays(a: ak.Array, b: ak.Array) -> bool:
    return a.fields == b.fields and all(ak.array_equal(a[k], b[k]) for k in a.fields)


# ---------------------------------------------------------------- layout and metadata


def test_every_process_round_trips_in_the_delphes_layout(generated_dir: Path):
    expected = set(DELPHES.all_branches()) | {f"{c}_size" for c in SCHEMA}
    for name, process in PROCESSES.items():
        path = generated_dir / f"{name}.root"
        with uproot.open(path) as f:
            assert f.classnames()["Delphes;1"] == "TTree"
            tree = f["Delphes"]
            assert set(tree.keys()) == expected
            assert tree.num_entries == N
            types = tree.typenames()
            for branch in DELPHES.all_branches():
                base = ("int32_t" if branch.split(".")[1] in ("BTag", "Charge", "PID", "M1")
                        else "float")
                assert types[branch] == f"{base}[]", branch
            assert ak.all(tree["MissingET_size"].array() == 1)
            assert ak.all(tree["Jet_size"].array() == ak.num(tree["Jet.PT"].array()))
            meta = json.loads(str(f["hepfm_metadata"]))
        for key in ("process", "label_id", "n_events", "seed", "mpi", "pythia_settings",
                    "detector", "hepfm_version"):
            assert key in meta
        assert (meta["process"], meta["label_id"], meta["n_events"]) == (name, process.label_id, N)
        assert meta["seed"] == 1 and meta["mpi"] is False
        assert DetectorConfig.from_dict(meta["detector"]) == DetectorConfig()
        assert "PartonLevel:MPI = off" in meta["pythia_settings"]


def test_no_temporary_files_left(generated_dir: Path):
    assert sorted(p.name for p in generated_dir.iterdir()) == sorted(
        [f"{n}.root" for n in PROCESSES] + [f"{n}.summary.json" for n in PROCESSES])


# ---------------------------------------------------------------- physics sanity


def mean_btags(generated_dir: Path, name: str) -> float:
    return float(ak.mean(ak.sum(arrays(generated_dir / f"{name}.root")["Jet.BTag"], axis=1)))


def test_top_and_higgs_events_have_more_b_tags_than_w_jets(generated_dir: Path):
    w_jets = mean_btags(generated_dir, "W_jets")
    assert w_jets < 0.3
    for name in ("tt", "ttH"):
        assert mean_btags(generated_dir, name) > max(0.8, 3 * w_jets), name
    assert mean_btags(generated_dir, "ttH") > mean_btags(generated_dir, "QCD_multijet")


def test_z_jets_has_opposite_sign_same_flavour_pairs_at_the_z_mass(generated_dir: Path):
    a = arrays(generated_dir / "Z_jets.root")
    masses = []
    for lep in ("Electron", "Muon"):
        objs = ak.zip({k: a[f"{lep}.{k}"] for k in ("PT", "Eta", "Phi", "Charge")})
        x, y = ak.unzip(ak.combinations(objs, 2))
        m2 = 2 * x.PT * y.PT * (np.cosh(x.Eta - y.Eta) - np.cos(x.Phi - y.Phi))
        masses.append(ak.to_numpy(ak.flatten(np.sqrt(m2[x.Charge * y.Charge < 0]))))
    m = np.concatenate(masses)
    # Z -> ee, mumu (2/3 of decays) x acceptance (~0.55) x pair efficiency (identification and
    # tracking, ~0.8): about 0.29 of the events
    assert len(m) > 0.2 * N
    assert 86 < np.median(m) < 96
    assert np.mean((m > 76) & (m < 106)) > 0.7


def test_met_in_w_jets_is_well_above_qcd(generated_dir: Path):
    met = {n: float(ak.mean(arrays(generated_dir / f"{n}.root")["MissingET.MET"]))
           for n in ("W_jets", "QCD_multijet")}
    assert met["W_jets"] > 2.5 * met["QCD_multijet"]
    assert 15 < met["W_jets"] < 80


def test_objects_respect_thresholds_and_are_pt_ordered(generated_dir: Path):
    cfg = DetectorConfig()
    for name in ("tt", "QCD_multijet", "Z_jets"):
        a = arrays(generated_dir / f"{name}.root")
        pt, eta = ak.flatten(a["Jet.PT"]), ak.flatten(a["Jet.Eta"])
        assert ak.all(pt > cfg.jet_pt_min) and ak.all(abs(eta) < cfg.jet_eta_max)
        assert ak.all(a["Jet.PT"][:, :-1] >= a["Jet.PT"][:, 1:])
        assert ak.all(ak.flatten(a["Jet.Mass"]) >= 0)
        assert set(np.unique(ak.flatten(a["Jet.BTag"]))) <= {0, 1}
        for lep, eta_max in (("Electron", cfg.electron_eta_max), ("Muon", cfg.muon_eta_max)):
            assert set(np.unique(ak.flatten(a[f"{lep}.Charge"]))) <= {-1, 1}
            assert ak.all(abs(ak.flatten(a[f"{lep}.Eta"])) < eta_max)
    assert float(ak.mean(ak.num(arrays(generated_dir / "QCD_multijet.root")["Jet.PT"]))) > 1.3


def test_truth_record_holds_the_hard_process(generated_dir: Path):
    def pids(name: str) -> ak.Array:
        return abs(arrays(generated_dir / f"{name}.root")["Truth.PID"])

    assert ak.all(ak.sum(pids("ttH") == 6, axis=1) == 2)
    assert ak.all(ak.any(pids("ttH") == 25, axis=1))
    assert ak.all(ak.any(pids("Z_jets") == 23, axis=1))
    assert ak.all(ak.any(pids("Zprime_tt") == 32, axis=1))
    assert not ak.any(pids("QCD_multijet") >= 6)
    higgs_pt = ak.flatten(arrays(generated_dir / "ggF_H.root")["Truth.PT"][pids("ggF_H") == 25])
    assert float(ak.mean(higgs_pt)) > 1.0  # the last copy, with recoil from radiation


# ---------------------------------------------------------------- seeds and workers


def test_chunk_seeds_are_distinct_and_in_range():
    seeds = {chunk_seeds(1, label, k).pythia for label in range(128) for k in range(200)}
    assert len(seeds) == 128 * 200
    assert min(seeds) >= 1 and max(seeds) <= PYTHIA_SEED_MAX
    assert chunk_seeds(1, 5, 0).pythia != chunk_seeds(2, 5, 0).pythia


def test_same_seed_reproduces_and_other_seed_differs(generated_dir: Path, tmp_path: Path):
    again, = generate_samples("W_jets", N, tmp_path / "a", seed=1, mpi=False, progress=False)
    assert same_arrays(arrays(again), arrays(generated_dir / "W_jets.root"))
    other, = generate_samples("W_jets", N, tmp_path / "b", seed=2, mpi=False, progress=False)
    assert not ak.array_equal(arrays(other)["MissingET.MET"], arrays(again)["MissingET.MET"])


def test_workers_do_not_change_the_files(tmp_path: Path):
    kwargs = {"events": 60, "seed": 3, "mpi": False, "chunk_size": 30, "progress": False}
    one = generate_samples("tt,Z_jets", out_dir=tmp_path / "one", workers=1, **kwargs)
    two = generate_samples("tt,Z_jets", out_dir=tmp_path / "two", workers=2, **kwargs)
    for a, b in zip(one, two, strict=True):
        assert same_arrays(arrays(a), arrays(b))
        assert arrays(a)["Jet_size"].tolist() == arrays(b)["Jet_size"].tolist()


# ---------------------------------------------------------------- errors and atomic files


def test_bad_arguments_give_clear_errors(tmp_path: Path):
    with pytest.raises(UnknownNameError, match=r"unknown process 'ttbarr'.*Did you mean 'tt"):
        generate_samples("ttbarr", 10, tmp_path)
    for events in (0, -5):
        with pytest.raises(GenerateArgumentError, match="events must be an integer >= 1"):
            generate_samples("tt", events, tmp_path)
    with pytest.raises(GenerateArgumentError, match="workers"):
        generate_samples("tt", 10, tmp_path, workers=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputDirError, match=str(blocker / "out")):
        generate_samples("tt", 10, blocker / "out")
    assert list(tmp_path.iterdir()) == [blocker]


def test_cli_reports_errors_in_one_line(tmp_path: Path):
    from typer.testing import CliRunner

    from hepfm.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--processes", "nope", "--events-per-process", "5",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown process 'nope'" in result.output
    result = runner.invoke(app, ["generate", "--processes", "tt", "--events-per-process", "0",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2 and "'--events-per-process': must be at least 1" in result.output


def test_unfinished_and_truncated_files_are_not_taken_as_complete(generated_dir: Path,
                                                                  tmp_path: Path):
    path = tmp_path / "tt.root"
    writer = SampleWriter(path, {"process": "tt"})
    writer.write(_chunk_of(arrays(generated_dir / "tt.root")))
    assert not path.exists() and writer.tmp.exists()
    assert read_metadata(path) is None and read_metadata(writer.tmp) is None
    writer.abort()
    assert not writer.tmp.exists()

    good = generated_dir / "tt.root"
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a truncated copy: not hepfm's to replace
    leftover = temp_path(path)
    leftover.write_bytes(data)  # a temporary of a run killed a day ago (on whatever host)
    os.utime(leftover, (time.time() - 86400, time.time() - 86400))
    assert read_metadata(path) is None
    with pytest.raises(SampleConflictError, match=r"tt\.root' cannot be read.*force=True"):
        generate_samples("tt", N, tmp_path, seed=1, mpi=False, progress=False)
    out, = generate_samples("tt", N, tmp_path, seed=1, mpi=False, progress=False, force=True)
    assert read_metadata(out) is not None and not leftover.exists()
    assert same_arrays(arrays(out), arrays(good))


def test_complete_files_are_skipped(generated_dir: Path, tmp_path: Path):
    src = generated_dir / "diboson.root"
    shutil.copy(src, tmp_path / "diboson.root")
    before = (tmp_path / "diboson.root").stat().st_mtime_ns
    generate_samples("diboson", N, tmp_path, seed=1, mpi=False, progress=False)
    assert (tmp_path / "diboson.root").stat().st_mtime_ns == before
    meta = read_metadata(tmp_path / "diboson.root")
    assert meta is not None and meta["n_events_written"] == N


def test_writer_buffers_chunks_into_big_baskets(generated_dir: Path, tmp_path: Path):
    """Chunks are written in baskets of at least `basket_events` events; same content."""
    src = arrays(generated_dir / "tt.root")
    with SampleWriter(tmp_path / "tt.root", {"process": "tt"}, basket_events=7) as writer:
        for a in range(0, len(src), 3):  # chunks of 3 events
            writer.write(_chunk_of(src[a:a + 3]))
    out = tmp_path / "tt.root"
    assert same_arrays(arrays(out), src)
    branch = uproot.open(out)["Delphes"]["Jet.PT"]
    sizes = [int(stop - start) for start, stop in
             (branch.basket_entry_start_stop(i) for i in range(branch.num_baskets))]
    assert sum(sizes) == len(src) and all(k == 9 for k in sizes[:-1]), sizes
    assert read_metadata(out)["n_events_written"] == len(src)


def _chunk_of(a: ak.Array) -> dict[str, ak.Array]:
    """Delphes collections (as the writer takes them) from arrays read back."""
    return {c: ak.zip({f: a[f"{c}.{f}"] for f in fields}) for c, fields in SCHEMA.items()}


def test_detector_file_changes_parameters_and_names_bad_files(tmp_path):
    from typer.testing import CliRunner

    from hepfm.cli import app
    from hepfm.generate.detector import load_detector
    from hepfm.generate.writer import read_metadata

    good = tmp_path / "det.yaml"
    good.write_text("btag_b_norm: 0.77\njet_pt_min: 30\n")
    det = load_detector(good)
    assert det.btag_b_norm == 0.77 and det.jet_pt_min == 30.0 and det.muon_eff_barrel == 0.95
    bad = tmp_path / "bad.yaml"
    bad.write_text("btag_b_nrom: 0.77\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*btag_b_nrom"):
        load_detector(bad)
    out = tmp_path / "gen"
    result = CliRunner().invoke(app, ["generate", "--processes", "tt", "--events-per-process", "50",
                                      "--out", str(out), "--no-mpi", "--detector", str(good)])
    assert result.exit_code == 0, result.output
    meta = read_metadata(out / "tt.root")
    assert meta["detector"]["btag_b_norm"] == 0.77 and meta["detector"]["jet_pt_min"] == 30.0
    with uproot.open(out / "tt.root") as f:
        assert ak.all(f["Delphes"]["Jet.PT"].array() > 30.0)


def test_truth_mother_links_follow_the_decay_chain(generated_dir: Path):
    a = arrays(generated_dir / "ttH.root")
    counts = ak.to_numpy(a["Truth_size"]).astype(np.int64)
    pid, m1 = (ak.to_numpy(ak.flatten(a[f"Truth.{f}"])) for f in ("PID", "M1"))
    event = np.repeat(np.arange(len(counts)), counts)
    assert ((m1 >= -1) & (m1 < counts[event])).all()
    start = np.repeat(np.cumsum(counts) - counts, counts)
    mother = np.where(m1 >= 0, pid[start + np.maximum(m1, 0)], 0)

    def per_event(mask: np.ndarray) -> np.ndarray:
        return np.bincount(event[mask], minlength=len(counts))

    # every top decays to a b and a W of its own sign, both linked to it
    for sign in (1, -1):
        assert (per_event((pid == 5 * sign) & (mother == 6 * sign)) == 1).all()
        assert (per_event((pid == 24 * sign) & (mother == 6 * sign)) == 1).all()
    # every charged lepton comes from a W, a Z, a tau or the Higgs (none from nowhere)
    lepton = np.isin(abs(pid), [11, 13, 15])
    assert lepton.sum() > 50 and (mother[lepton] != 0).all()
    assert (m1[abs(pid) == 25] == -1).all()  # the Higgs is made in the hard scatter


def test_truth_mother_index_by_hand():
    from hepfm.generate.objects import ParticleTable
    from hepfm.generate.truth import truth_record

    # event 0: system, H (first copy, status -22) -> H copy (-44) -> b bbar (23)
    # event 1: system, W (-22) -> W (-51, after radiating) + photon -> mu nu
    ids = [90, 25, 25, 5, -5, 90, 24, 24, 22, -13, 14]
    status = [-11, -22, -44, 23, 23, -11, -22, -51, 51, 23, 23]
    mother1 = [0, 0, 1, 2, 2, 0, 0, 1, 1, 2, 2]
    d1 = [0, 2, 3, 0, 0, 0, 2, 4, 0, 0, 0]
    d2 = [0, 2, 4, 0, 0, 0, 3, 5, 0, 0, 0]
    event = np.array([0] * 5 + [1] * 6)
    offsets = np.array([0, 5, 11])
    n = len(ids)
    pt = np.arange(1.0, n + 1)
    table = ParticleTable(2, offsets, event, np.array(ids), np.array(status),
                          np.array(mother1) + offsets[event], np.array(d1) + offsets[event],
                          np.array(d2) + offsets[event], pt, np.zeros(n), np.zeros(n), pt, pt,
                          np.zeros(n), np.zeros(n), np.ones(n, dtype=bool))
    record = truth_record(table)
    assert record.PID.tolist() == [[25, 5, -5], [24, -13]]
    assert record.M1.tolist() == [[-1, 0, 0], [-1, 0]]
    assert record.PT.tolist() == [[3.0, 4.0, 5.0], [8.0, 10.0]]  # resonances: decaying copy


def test_shower_setting_reaches_pythia_and_changes_events():
    from hepfm.generate.pythia import generate_events, make_pythia

    process = get_process("Z_jets")
    for name, model in (("simple", 1), ("vincia", 2)):
        pythia = make_pythia(process, 11, mpi=False, shower=name)
        assert pythia.settings.mode("PartonShowers:model") == model
    simple = generate_events(process, 3, 11, mpi=False)
    vincia = generate_events(process, 3, 11, mpi=False, shower="vincia")
    assert ak.num(simple).tolist() != ak.num(vincia).tolist()
    with pytest.raises(UnknownNameError, match="vincai"):
        generate_samples("tt", 10, ".", shower="vincai")


def test_fastjet_banner_stays_off_standard_output(tmp_path: Path):
    """Generation prints no FastJet banner on stdout (it goes to the debug log)."""
    import subprocess
    import sys

    code = ("from hepfm.generate import generate_samples; "
            f"generate_samples('tt', 10, r'{tmp_path}', seed=3, mpi=False, progress=False)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "FastJet" not in out.stdout and "fastjet" not in out.stdout.lower()
