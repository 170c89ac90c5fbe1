"""The data scripts: make_cohort, check_bids, and fetch_oasis_vbm (offline and with a stand-in fetcher)."""

import importlib.util
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurohash_lite.data import load_cohort, make_synthetic_cohort

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("cohorts") / "tiny", "tiny", seed=0, voxel_size_mm=8.0)


def test_make_cohort_cli(tmp_path, capsys):
    make_cohort = _script("make_cohort")
    assert make_cohort.main([str(tmp_path / "c"), "--preset", "tiny", "--voxel-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "ready" in out and "MRI only" in out
    assert make_cohort.main([str(tmp_path / "c"), "--preset", "tiny", "--voxel-size", "8", "--seed", "2"]) == 2
    assert "different synthetic cohort" in capsys.readouterr().err


def test_check_bids_counts_a_good_folder(tiny, capsys):
    assert _script("check_bids").main([str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "T1w (all)" in out and "OK" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("pet (paired)"))
    assert line.split()[-4:] == ["10", "10", "10", "30"]


def test_check_bids_reports_every_bad_image(tiny, tmp_path, capsys):
    import shutil

    root = tmp_path / "tiny"
    shutil.copytree(tiny, root)
    images = sorted(root.rglob("*.nii.gz"))
    images[0].write_bytes(images[0].read_bytes()[:500])
    images[5].write_text("not an image")
    assert _script("check_bids").main([str(root)]) == 1
    err = capsys.readouterr().err
    assert images[0].name in err and images[5].name in err and "2 problem(s)" in err


def test_check_bids_reports_a_bad_participants_file(tmp_path, capsys):
    (tmp_path / "participants.tsv").write_text("participant_id\tgroup\nsub-01\tNC\n")
    assert _script("check_bids").main([str(tmp_path)]) == 1
    assert "column 'diagnosis' is missing" in capsys.readouterr().err


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (the test is offline)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_fetch_oasis_offline_fails_clearly_and_writes_nothing(tmp_path, offline, capsys):
    fetch = _script("fetch_oasis_vbm")
    target = tmp_path / "cohorts" / "oasis1"
    with pytest.raises(ConnectionError, match="could not download the OASIS-1 VBM maps.*internet.*Nothing was written"):
        fetch.fetch_oasis_vbm_cohort(target, n_subjects=2, nilearn_data_dir=tmp_path / "nilearn")
    assert not target.exists()
    assert not (tmp_path / "cohorts").exists() or list((tmp_path / "cohorts").iterdir()) == []
    assert fetch.main([str(target), "--n-subjects", "2", "--nilearn-data-dir", str(tmp_path / "nilearn")]) == 1
    assert "could not download" in capsys.readouterr().err


def test_fetch_oasis_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        _script("fetch_oasis_vbm").fetch_oasis_vbm_cohort(tmp_path)


@pytest.mark.parametrize("cdr, expected", [(0, "NC"), (0.5, "MCI"), (1, "AD"), (2, "AD"), (float("nan"), None),
                                           (None, None)])
def test_cdr_to_diagnosis(cdr, expected):
    assert _script("fetch_oasis_vbm").cdr_to_diagnosis(cdr) == expected


def test_fetch_oasis_writes_a_cohort_the_loader_reads(tmp_path, monkeypatch):
    """With nilearn's fetcher replaced by local files of the same form."""
    from nilearn import datasets
    from sklearn.utils import Bunch

    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-90, -126, -72)
    gm, wm, ids = [], [], []
    for i in range(7):
        ids.append(f"OAS1_{i + 1:04d}_MR1")
        for kind, paths in (("c1", gm), ("c2", wm)):
            path = tmp_path / "download" / f"mwr{kind}{ids[-1]}.nii.gz"
            path.parent.mkdir(exist_ok=True)
            nib.save(nib.Nifti1Image(rng.random((91, 109, 91)).astype(np.float32), affine), path)
            paths.append(str(path))
    ext_vars = pd.DataFrame({"id": ids, "age": [20, 70, 71, 72, 73, 74, 75],
                             "cdr": [np.nan, 0, 0, 0.5, 0.5, 1, 2], "mmse": [np.nan, 30, 29, 27, 26, 20, 15]})

    def fake_fetch(n_subjects=None, data_dir=None, verbose=1, **kwargs):
        return Bunch(gray_matter_maps=gm, white_matter_maps=wm, ext_vars=ext_vars)

    monkeypatch.setattr(datasets, "fetch_oasis_vbm", fake_fetch)
    root = _script("fetch_oasis_vbm").fetch_oasis_vbm_cohort(tmp_path / "oasis1")
    cohort = load_cohort(root, spatial_dims=2, image_size=32, cache_dir=False)
    assert list(cohort.subject_ids) == [f"sub-OAS1000{i}MR1" for i in range(2, 8)]  # the unrated one left out
    np.testing.assert_array_equal(cohort.labels, [0, 0, 1, 1, 2, 2])
    assert cohort.n_paired == 6 and cohort.pet.shape == (6, 3, 32, 32)
    assert not list(tmp_path.glob(".oasis1.partial-*"))
