"""Generation in parts: shards, Dask, never overwriting, resuming, checksums, ``hepfm check``,
several runs in one directory and rank 0 generating under DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepfm.cli import app
from hepfm.errors import HepfmError
from hepfm.generate import generate_samples, read_metadata
from hepfm.generate import run as run_module
from hepfm.generate.check import SampleWaitError, check_directory
from hepfm.generate.parts import SampleConflictError, parse_shard, plan_sample, sweep_stale_temps
from hepfm.generate.writer import EventsDigest, SampleWriter, events_digest, temp_path

#: A small two-process sample in 3 parts per process (chunks of 10, 2 chunks per part).
KW = {"events": 50, "seed": 4, "mpi": False, "chunk_size": 10, "part_chunks": 2,
      "progress": False}
PROCS = "tt,W_jets"
PARTS = ["tt_0.root", "tt_2.root", "tt_4.root", "W_jets_0.root", "W_jets_2.root",
         "W_jets_4.root"]
runner = CliRunner()


def arrays(path: Path) -> ak.Array:
    with uproot.open(path) as f:
        return f["Delphes"].arrays(library="ak")


def same_events(a: Path, b: Path) -> bool:
    x, y = arrays(a), arrays(b)
    return x.fields == y.fields and all(ak.array_equal(x[k], y[k]) for k in x.fields)


def root_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.root"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One unsharded local run of `PROCS` with `KW`."""
    out = tmp_path_factory.mktemp("reference")
    generate_samples(PROCS, out_dir=out, **KW)
    return out


def test_parts_layout_metadata_and_summary(reference: Path):
    assert root_files(reference) == sorted(PARTS)
    for name, (a, n, events) in {"tt_0.root": (0, 2, 20), "tt_4.root": (4, 1, 10)}.items():
        meta = read_metadata(reference / name)
        assert (meta["first_chunk"], meta["n_chunks"], meta["n_events_written"]) == (a, n, events)
        assert meta["sample"] == {"n_events": 50, "first_chunk": 0, "n_chunks": 5,
                                  "part_chunks": 2, "n_parts": 3}
        assert meta["events_sha256"] == events_digest(reference / name)
    summary = json.loads((reference / "tt.summary.json").read_text())
    assert summary["n_events"] == 50 and summary["n_chunks"] == 5
    assert [p["file"] for p in summary["parts"]] == ["tt_0.root", "tt_2.root", "tt_4.root"]
    assert summary["parts"][0]["events_sha256"] == read_metadata(reference / "tt_0.root")[
        "events_sha256"]
    assert len({s for p in summary["parts"] for s in p["pythia_seeds"]}) == 5
    assert all(r.ok for r in check_directory(reference))
    # one part: the file keeps the plain name
    assert [p.path.name for p in plan_sample("tt", 20, reference, 10, 0, 2).parts] == ["tt.root"]


def test_digest_does_not_depend_on_chunking(reference: Path):
    a = arrays(reference / "tt_0.root")
    one, two = EventsDigest(), EventsDigest()
    chunk = _collections(a)
    one.update(chunk)
    two.update(_collections(a[:7]))
    two.update(_collections(a[7:]))
    assert one.hexdigest() == two.hexdigest() == read_metadata(reference / "tt_0.root")[
        "events_sha256"]
    three = EventsDigest()
    three.update(_collections(a[::-1]))
    assert three.hexdigest() != one.hexdigest()


def _collections(a: ak.Array) -> dict[str, ak.Array]:
    from hepfm.generate.writer import SCHEMA

    return {c: ak.zip({f: a[f"{c}.{f}"] for f in fs}, depth_limit=2) for c, fs in SCHEMA.items()}


# ---------------------------------------------------------------- shards and Dask


def test_shards_together_give_exactly_the_unsharded_events(reference: Path, tmp_path: Path):
    made = []
    for k in range(4):
        made += generate_samples(PROCS, out_dir=tmp_path, shard=f"{k}/4", **KW)
        if k < 3:  # the summary appears only when the last part of a sample is there
            assert not (tmp_path / "W_jets.summary.json").exists()
    assert sorted(p.name for p in made) == sorted(PARTS)  # each part made by one shard
    assert root_files(tmp_path) == root_files(reference)
    for name in PARTS:
        assert same_events(tmp_path / name, reference / name), name
    for process in ("tt", "W_jets"):
        a = json.loads((tmp_path / f"{process}.summary.json").read_text())
        b = json.loads((reference / f"{process}.summary.json").read_text())
        assert a == b
    assert all(r.ok for r in check_directory(tmp_path))


def test_shard_spec_errors():
    assert parse_shard("2/5") == (2, 5) and parse_shard(None) is None
    for bad in ("5/5", "1-4", "-1/3", "1/0"):
        with pytest.raises(HepfmError, match=r"^shard") as err:
            parse_shard(bad)
        assert err.value.cli_message.startswith("--shard")
    res = runner.invoke(app, ["generate", "--processes", "tt", "--events-per-process", "10",
                              "--out", "/nonexistent/x", "--shard", "3/3"])
    assert res.exit_code == 2 and "--shard K/N needs 0 <= K < N" in res.output


def test_dask_local_cluster_gives_the_same_files(reference: Path, tmp_path: Path):
    pytest.importorskip("distributed")
    generate_samples(PROCS, out_dir=tmp_path, workers=2, executor="dask", **KW)
    assert root_files(tmp_path) == root_files(reference)
    for name in PARTS:
        assert same_events(tmp_path / name, reference / name), name
        a, b = read_metadata(tmp_path / name), read_metadata(reference / name)
        assert a == b  # settings, placement, versions and checksum
    assert all(r.ok for r in check_directory(tmp_path))


def test_executor_errors_before_any_work(tmp_path: Path):
    out = tmp_path / "x"
    res = runner.invoke(app, ["generate", "--processes", "tt", "--events-per-process", "10",
                              "--out", str(out), "--scheduler", "tcp://h:1"])
    assert res.exit_code == 2 and "--scheduler needs --executor dask" in res.output
    res = runner.invoke(app, ["generate", "--processes", "tt", "--events-per-process", "10",
                              "--out", str(out), "--executor", "spark"])
    assert res.exit_code == 2 and "--executor must be one of local, dask" in res.output
    assert not out.exists()


# ---------------------------------------------------------------- never overwrite


def _user_file(path: Path, n: int = 7) -> bytes:
    """A user's ROOT file without hepfm metadata (as Delphes or any ntuple would be)."""
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {"MissingET.MET": np.float32})
        f["Delphes"].extend({"MissingET.MET": np.arange(n, dtype=np.float32)})
    return path.read_bytes()


def test_a_users_file_is_never_overwritten(tmp_path: Path):
    user = _user_file(tmp_path / "tt.root")
    with pytest.raises(SampleConflictError,
                       match=r"tt\.root' has no hepfm metadata.*force=True"):
        generate_samples("tt", 20, tmp_path, seed=1, mpi=False, chunk_size=10, progress=False)
    assert (tmp_path / "tt.root").read_bytes() == user
    res = runner.invoke(app, ["generate", "--processes", "tt", "--events-per-process", "20",
                              "--out", str(tmp_path), "--no-mpi", "--chunk-size", "10"])
    assert res.exit_code == 2 and "no hepfm metadata" in res.output
    assert "Traceback" not in res.output and (tmp_path / "tt.root").read_bytes() == user
    # a user's part next to where a multi-part sample would go is not mixed in either
    (tmp_path / "tt.root").unlink()
    user = _user_file(tmp_path / "tt_7.root")
    with pytest.raises(SampleConflictError, match=r"tt_7\.root' is another file of tt"):
        generate_samples("tt", 40, tmp_path, seed=1, mpi=False, chunk_size=10, part_chunks=2,
                         progress=False)
    assert root_files(tmp_path) == ["tt_7.root"] and (tmp_path / "tt_7.root").read_bytes() == user
    out = generate_samples("tt", 40, tmp_path, seed=1, mpi=False, chunk_size=10, part_chunks=2,
                           progress=False, force=True)
    assert [p.name for p in out] == root_files(tmp_path) == ["tt_0.root", "tt_2.root"]


def test_files_with_other_settings_are_not_replaced(reference: Path, tmp_path: Path):
    shutil.copy(reference / "tt_0.root", tmp_path / "tt_0.root")
    before = (tmp_path / "tt_0.root").read_bytes()
    with pytest.raises(SampleConflictError, match=r"tt_0\.root' was written with other "
                                                  r"settings: seed 4 instead of 5"):
        generate_samples("tt", out_dir=tmp_path, **{**KW, "seed": 5})
    with pytest.raises(SampleConflictError, match=r"holds other chunks.*n_chunks 2 instead of 3"):
        generate_samples("tt", out_dir=tmp_path, **{**KW, "part_chunks": 3})
    assert (tmp_path / "tt_0.root").read_bytes() == before


# ---------------------------------------------------------------- kills, checksums, reruns


def test_a_killed_run_resumes_losing_at_most_one_part(reference: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    real, calls = run_module.run_chunk, []

    def dies_at_the_fourth_chunk(task):
        calls.append(task.chunk)
        if len(calls) == 4:  # killed while writing the second part
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(run_module, "run_chunk", dies_at_the_fourth_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate_samples("tt", out_dir=tmp_path, **KW)
    assert root_files(tmp_path) == ["tt_0.root"]  # the finished part, no half part
    assert not list(tmp_path.glob(".*.tmp"))
    kept = (tmp_path / "tt_0.root").stat().st_mtime_ns
    calls.clear()
    generate_samples("tt", out_dir=tmp_path, **KW)
    assert calls == [2, 3, 4]  # only the chunks of the lost part and the one never started
    assert (tmp_path / "tt_0.root").stat().st_mtime_ns == kept
    for name in ("tt_0.root", "tt_2.root", "tt_4.root"):
        assert same_events(tmp_path / name, reference / name)


def test_a_damaged_part_fails_its_checksum_and_is_made_again(reference: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    for name in ("tt_0.root", "tt_2.root", "tt_4.root", "tt.summary.json"):
        shutil.copy(reference / name, tmp_path / name)
    meta = read_metadata(reference / "tt_2.root")
    events = arrays(reference / "tt_2.root")
    monkeypatch.setattr(EventsDigest, "hexdigest", lambda self: meta["events_sha256"])
    with SampleWriter(tmp_path / "tt_2.root", meta) as w:  # other events, same metadata
        w.write(_collections(events[::-1]))
    monkeypatch.undo()
    assert read_metadata(tmp_path / "tt_2.root")["events_sha256"] == meta["events_sha256"]
    report, = check_directory(tmp_path)
    assert report.problems == ["tt_2.root: its events do not match its events_sha256"]
    kept = (tmp_path / "tt_0.root").stat().st_mtime_ns
    generate_samples("tt", out_dir=tmp_path, **KW)
    assert same_events(tmp_path / "tt_2.root", reference / "tt_2.root")
    assert (tmp_path / "tt_0.root").stat().st_mtime_ns == kept
    assert all(r.ok for r in check_directory(tmp_path))


def test_check_fails_on_a_missing_or_duplicated_chunk(reference: Path, tmp_path: Path):
    d = tmp_path / "d"
    shutil.copytree(reference, d)
    res = runner.invoke(app, ["check", str(d)])
    assert res.exit_code == 0, res.output
    (d / "W_jets_2.root").unlink()
    shutil.copy(d / "tt_2.root", d / "tt_6.root")
    res = runner.invoke(app, ["check", str(d)])
    assert res.exit_code == 1
    assert "W_jets: missing chunk(s) 2-3 of chunks 0-4" in res.output
    assert "tt: duplicated chunk(s) 2-3: in tt_2.root, tt_6.root" in res.output
    # the same without a summary: the parts say which sample they belong to
    for f in d.glob("*.summary.json"):
        f.unlink()
    reports = {r.process: r for r in check_directory(d, checksums=False)}
    assert any("missing chunk(s) 2-3" in p for p in reports["W_jets"].problems)
    assert any("duplicated chunk(s) 2-3" in p for p in reports["tt"].problems)
    # waiting ranks and ensure_samples wait only for missing chunks, not for duplicates
    assert reports["W_jets"].incomplete and not reports["tt"].incomplete
    # a sample with its last part missing (no summary yet): incomplete, not ok
    (d / "tt_6.root").unlink()
    (d / "tt_4.root").unlink()
    report, = check_directory(d, ["tt"], checksums=False)
    assert report.problems == ["missing chunk(s) 4 of chunks 0-4"] and report.incomplete
    res = runner.invoke(app, ["check", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "is not a directory" in " ".join(res.output.split())


def test_check_passes_user_files_and_the_single_file_layout(generated_dir: Path, tmp_path: Path):
    assert all(r.ok for r in check_directory(generated_dir, checksums=False))
    _user_file(tmp_path / "tt.root")
    report, = check_directory(tmp_path)
    assert report.ok and report.notes == ["1 file(s) without hepfm metadata, not checked"]


# ---------------------------------------------------------------- several runs at once


def test_temporaries_are_unique_and_only_stale_ones_are_swept(tmp_path: Path):
    path = tmp_path / "tt_0.root"
    a, b = temp_path(path), temp_path(path)
    assert a != b and a.name.startswith(".tt_0.root.") and a.suffix == ".tmp"
    live = path.with_name(".tt_0.root.otherhost.1.0badcafe.tmp")  # PID 1 on another host
    dead = path.with_name(".tt_0.root.otherhost.999999999.deadbeef.tmp")
    for f in (live, dead):
        f.write_bytes(b"x")
    os.utime(dead, (time.time() - 7 * 3600, time.time() - 7 * 3600))
    sweep_stale_temps(path)
    assert live.exists() and not dead.exists()


def test_two_concurrent_runs_end_with_the_same_complete_files(reference: Path, tmp_path: Path):
    """Two processes (as if on two hosts: no shared PID namespace is assumed) on one directory
    both succeed, and the directory holds exactly the files of one run."""
    cmd = [sys.executable, "-m", "hepfm.cli", "generate", "--processes", PROCS,
           "--events-per-process", "50", "--seed", "4", "--no-mpi", "--chunk-size", "10",
           "--part-chunks", "2",
           "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*PARTS, "tt.summary.json", "W_jets.summary.json"])
    for name in PARTS:
        assert same_events(tmp_path / name, reference / name), name
    assert all(r.ok for r in check_directory(tmp_path))


# ---------------------------------------------------------------- ranks under DDP


def test_other_ranks_wait_for_rank_0_and_never_generate(reference: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    from hepfm.generate import check
    from hepfm.samples import ensure_samples

    monkeypatch.setattr(check, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(run_module, "generate_samples", None)  # a rank > 0 must not call it
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("HEPFM_SAMPLE_WAIT", "0.5")
    with pytest.raises(SampleWaitError, match=r"rank 1: no complete sample of tt in .* after "
                                              r"\d+ s without progress"):
        ensure_samples(["tt"], tmp_path, 50, 4, generate=True, verbose=False)
    assert list(tmp_path.iterdir()) == []

    # rank 0 is half-way: ranks wait until the sample is complete, then go on
    shutil.copy(reference / "tt_0.root", tmp_path / "tt_0.root")

    def rank_0_finishes():
        time.sleep(0.3)
        for name in ("tt_2.root", "tt_4.root"):
            shutil.copy(reference / name, tmp_path / f".{name}.tmp")
            os.replace(tmp_path / f".{name}.tmp", tmp_path / name)

    thread = threading.Thread(target=rank_0_finishes)
    thread.start()
    t0 = time.monotonic()
    assert ensure_samples(["tt"], tmp_path, 50, 4, generate=True, verbose=False) == tmp_path
    thread.join()
    assert time.monotonic() - t0 >= 0.25 and (tmp_path / "tt_4.root").exists()


def test_sigterm_removes_the_unfinished_part_and_keeps_the_finished_ones(reference: Path,
                                                                         tmp_path: Path):
    cmd = [sys.executable, "-m", "hepfm.cli", "generate", "--processes", "tt",
           "--events-per-process", "50", "--seed", "4", "--no-mpi", "--chunk-size", "10",
           "--part-chunks", "2",
           "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (tmp_path / "tt_0.root").exists() and run.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run.terminate()  # SIGTERM, as at a SLURM time limit
    assert run.wait(timeout=60) in (0, 143)
    assert not list(tmp_path.glob(".*.tmp"))  # the unfinished part's temporary is gone
    assert (tmp_path / "tt_0.root").exists()
    report, = check_directory(tmp_path, ["tt"])
    assert report.ok == (run.returncode == 0)  # unless it finished before the signal
    generate_samples("tt", out_dir=tmp_path, **KW)
    for name in ("tt_0.root", "tt_2.root", "tt_4.root"):
        assert same_events(tmp_path / name, reference / name)


def test_growing_a_sample_keeps_its_full_parts(reference: Path, tmp_path: Path):
    small = {**KW, "events": 30}  # parts tt_0 (chunks 0-1) and tt_2 (chunk 2 only)
    generate_samples("tt", out_dir=tmp_path, **small)
    kept = (tmp_path / "tt_0.root").stat().st_mtime_ns
    with pytest.raises(SampleConflictError, match=r"tt_2\.root' holds other chunks"):
        generate_samples("tt", out_dir=tmp_path, **KW)
    generate_samples("tt", out_dir=tmp_path, **KW, force=True)
    assert (tmp_path / "tt_0.root").stat().st_mtime_ns == kept
    for name in ("tt_0.root", "tt_2.root", "tt_4.root"):
        assert same_events(tmp_path / name, reference / name)
    assert all(r.ok for r in check_directory(tmp_path))


def test_a_part_without_a_checksum_is_not_trusted(reference: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    for name in ("tt_0.root", "tt_2.root", "tt_4.root", "tt.summary.json"):
        shutil.copy(reference / name, tmp_path / name)
    meta = read_metadata(reference / "tt_2.root")
    monkeypatch.setattr(EventsDigest, "hexdigest", lambda self: None)
    with SampleWriter(tmp_path / "tt_2.root", meta) as w:  # the same events, no checksum
        w.write(_collections(arrays(reference / "tt_2.root")))
    monkeypatch.undo()
    assert read_metadata(tmp_path / "tt_2.root").get("events_sha256") is None
    report, = check_directory(tmp_path)
    assert "tt_2.root: records no events_sha256 checksum" in report.problems
    generate_samples("tt", out_dir=tmp_path, **KW)
    assert read_metadata(tmp_path / "tt_2.root")["events_sha256"] == meta["events_sha256"]
    assert all(r.ok for r in check_directory(tmp_path))
