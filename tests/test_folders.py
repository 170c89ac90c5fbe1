"""new_folder: a folder is written whole under its name, or not at all."""

from __future__ import annotations

import stat

import pytest

from neurohash_lite.folders import new_folder


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_finished_block_renames_the_folder_into_place(tmp_path):
    out = tmp_path / "deep" / "out"
    with new_folder(out) as tmp:
        assert tmp.parent == out.parent and not out.exists()
        (tmp / "sub-01").mkdir()
        (tmp / "sub-01" / "scan.txt").write_text("x")
    assert (out / "sub-01" / "scan.txt").read_text() == "x"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert leftovers(out.parent) == []


def test_an_existing_folder_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists"):
        with new_folder(out):
            pytest.fail("the block must not run")
    assert (out / "keep.txt").read_text() == "mine" and leftovers(tmp_path) == []


def test_an_error_in_the_block_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="half-way"):
        with new_folder(out) as tmp:
            (tmp / "part.txt").write_text("half")
            raise RuntimeError("half-way")
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_folder_that_appears_meanwhile_is_not_overwritten(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="exists"):
        with new_folder(out) as tmp:
            (tmp / "new.txt").write_text("new")
            out.mkdir()
            (out / "other.txt").write_text("theirs")
    assert sorted(p.name for p in out.iterdir()) == ["other.txt"] and leftovers(tmp_path) == []
