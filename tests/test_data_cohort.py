"""load_cohort: shapes, pairing, normalisation, the cache, and load_tier_cohort."""

import os

import numpy as np
import pytest

from neurohash_lite.data import load_cohort, load_tier_cohort, make_synthetic_cohort
from neurohash_lite.data.anatomy import default_slice_levels
from neurohash_lite.data.preprocess import brain_mask_on_grid, from_model_layout, to_model_layout, working_grids
from neurohash_lite.runtime import resolve_tier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("cohorts") / "tiny", "tiny", seed=0, voxel_size_mm=8.0)


def test_2d_shapes_pairing_and_counts(tiny, tmp_path):
    cohort = load_cohort(tiny, spatial_dims=2, image_size=32, n_slices=3, cache_dir=tmp_path)
    assert cohort.mri.shape == (36, 3, 32, 32) and cohort.mri.dtype == np.float32
    assert cohort.pet.shape == (30, 3, 32, 32) and cohort.pet.dtype == np.float32
    assert cohort.n_subjects == 36 and cohort.n_paired == 30 and cohort.n_mri_only == 6
    np.testing.assert_array_equal(cohort.paired_index, np.flatnonzero(cohort.has_pet))
    assert len(cohort.paired_labels) == len(cohort.pet) == len(cohort.paired_mri)
    assert cohort.class_counts()["PET"] == {"NC": 10, "MCI": 10, "AD": 10}
    assert cohort.class_counts()["MRI only"] == {"NC": 2, "MCI": 2, "AD": 2}
    assert cohort.slice_levels_mm == default_slice_levels(3) == (-18.0, 6.0, 30.0)
    assert set(np.unique(cohort.labels)) == {0, 1, 2}
    for sub in cohort.paired_subject_ids:
        assert (tiny / sub / "pet" / f"{sub}_pet.nii.gz").is_file()
    assert "MRI only" in cohort.summary()


def test_3d_shapes(tiny, tmp_path):
    cohort = load_cohort(tiny, spatial_dims=3, voxel_size_mm=8.0, cache_dir=tmp_path)
    assert cohort.mri.shape == (36, 1, 21, 24, 21)  # (n, 1, z, y, x) at 8 mm
    assert cohort.pet.shape == (30, 1, 21, 24, 21)


def test_images_are_z_scored_inside_the_brain_mask(tiny):
    cohort = load_cohort(tiny, spatial_dims=2, image_size=32, n_slices=3, cache_dir=False)
    grids = working_grids(2, 32, cohort.slice_levels_mm, 0.0)
    mask = to_model_layout(np.concatenate([brain_mask_on_grid(g) for g in grids], axis=2))
    for image in (cohort.mri[0], cohort.pet[0]):
        assert image[mask].mean() == pytest.approx(0.0, abs=1e-4)
        assert image[mask].std() == pytest.approx(1.0, abs=1e-3)
        assert np.all(image[~mask] == 0)


def test_layout_is_anterior_up_and_left_on_the_left():
    xyz = np.zeros((4, 5, 2))
    xyz[0, 4, 1] = 1.0  # leftmost x, most anterior y, upper slice
    zyx = to_model_layout(xyz)
    assert zyx.shape == (2, 5, 4) and zyx[1, 0, 0] == 1.0
    np.testing.assert_array_equal(from_model_layout(zyx), xyz)


def test_to_nifti_round_trips_onto_the_cohorts_grid(tiny):
    import nibabel as nib

    cohort = load_cohort(tiny, spatial_dims=3, voxel_size_mm=8.0, cache_dir=False)
    image = cohort.to_nifti(cohort.mri[0])
    assert isinstance(image, nib.Nifti1Image) and nib.aff2axcodes(image.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(to_model_layout(image.get_fdata(dtype=np.float32)), cohort.mri[0, 0])
    with pytest.raises(ValueError, match="shape"):
        cohort.to_nifti(np.zeros((3, 3, 3)))


def test_cache_is_reused_and_keyed_by_every_parameter(tiny, tmp_path):
    first = load_cohort(tiny, spatial_dims=2, image_size=32, cache_dir=tmp_path)
    entries = sorted(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    again = load_cohort(tiny, spatial_dims=2, image_size=32, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.mri, again.mri)
    np.testing.assert_array_equal(first.pet, again.pet)
    assert sorted(tmp_path.glob("*.npz")) == entries  # nothing new written
    load_cohort(tiny, spatial_dims=2, image_size=48, cache_dir=tmp_path)
    load_cohort(tiny, spatial_dims=2, image_size=32, n_slices=2, cache_dir=tmp_path)
    load_cohort(tiny, spatial_dims=2, image_size=32, slice_levels_mm=(-10, 0, 10), cache_dir=tmp_path)
    load_cohort(tiny, spatial_dims=3, voxel_size_mm=8.0, cache_dir=tmp_path)
    load_cohort(tiny, spatial_dims=3, voxel_size_mm=12.0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 6
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_ignores_parameters_that_do_not_change_the_arrays(tiny, tmp_path):
    load_cohort(tiny, spatial_dims=3, voxel_size_mm=8.0, image_size=32, cache_dir=tmp_path)
    load_cohort(tiny, spatial_dims=3, voxel_size_mm=8.0, image_size=64, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_changed_file_invalidates_the_cache(tiny, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("copy") / "tiny"
    shutil.copytree(tiny, root)
    cache = tmp_path_factory.mktemp("cache")
    before = load_cohort(root, spatial_dims=2, image_size=32, cache_dir=cache)
    first_image = root / before.subject_ids[0] / "anat" / f"{before.subject_ids[0]}_T1w.nii.gz"
    other_image = root / before.subject_ids[1] / "anat" / f"{before.subject_ids[1]}_T1w.nii.gz"
    shutil.copyfile(other_image, first_image)
    after = load_cohort(root, spatial_dims=2, image_size=32, cache_dir=cache)
    np.testing.assert_array_equal(after.mri[0], before.mri[1])
    assert len(list(cache.glob("*.npz"))) == 2


def test_corrupt_cache_entry_is_recomputed(tiny, tmp_path):
    first = load_cohort(tiny, spatial_dims=2, image_size=32, cache_dir=tmp_path)
    entry = next(tmp_path.glob("*.npz"))
    entry.write_bytes(b"garbage")
    again = load_cohort(tiny, spatial_dims=2, image_size=32, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.mri, again.mri)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"image_size": 8}, "image_size"),
        ({"image_size": 32.5}, "image_size"),
        ({"n_slices": 0}, "n_slices"),
        ({"n_slices": 2, "slice_levels_mm": (0.0,)}, "slice_levels_mm"),
        ({"slice_levels_mm": (0.0, 10.0, 300.0)}, "slice_levels_mm"),
        ({"spatial_dims": 3, "voxel_size_mm": 0.1}, "voxel_size_mm"),
    ],
)
def test_bad_parameters(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_cohort(tiny, cache_dir=False, **kwargs)


def test_bad_image_in_the_folder_is_named(tiny, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("bad") / "tiny"
    shutil.copytree(tiny, root)
    victim = sorted(root.rglob("*_pet.nii.gz"))[3]
    victim.write_bytes(victim.read_bytes()[:400])
    with pytest.raises(ValueError, match=victim.name):
        load_cohort(root, cache_dir=False)


def test_load_tier_cohort_generates_once_then_reuses(tmp_path):
    tier = resolve_tier("smoke")
    cohort = load_tier_cohort(tier, seed=0, data_dir=tmp_path)
    assert cohort.mri.shape == (36, tier.n_slices, tier.image_size, tier.image_size)
    assert (tmp_path / "cohorts").is_dir() and len(list((tmp_path / "cache").glob("*.npz"))) == 1
    stamp = (cohort.root / "participants.tsv").stat().st_mtime_ns
    again = load_tier_cohort("smoke", seed=0, data_dir=tmp_path)
    assert (again.root / "participants.tsv").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(cohort.pet, again.pet)


def test_load_tier_cohort_uses_the_environment_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHASH_DATA", os.fspath(tmp_path))
    cohort = load_tier_cohort("smoke", seed=1)
    assert tmp_path in cohort.root.parents
