"""Atomic writes: an interrupted write leaves the old file and no temporary file."""

from __future__ import annotations

import os
import stat

import pytest

from hepfm.atomic import atomic_path, write_text


def test_write_replaces_and_has_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    write_text(target, "old")
    old_mask = os.umask(0o022)
    try:
        write_text(target, "new")
    finally:
        os.umask(old_mask)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    write_text(target, "complete")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("killed")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
