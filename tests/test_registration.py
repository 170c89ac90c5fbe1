"""Registration with ANTsPy: the shipped MNI152 template moved by a known affine is recovered.

The registration tests need ANTsPy (``pip install "neurohash-lite[preprocess]"``);
without it they are skipped, saying so, and only the message a reader gets
without ANTsPy is tested.
"""

import nibabel as nib
import numpy as np
import pytest

from neurohash_lite import registration
from neurohash_lite.registration import (mni_template, move_image, register, register_folder, rigid_affine,
                                         similarity)

needs_ants = pytest.mark.skipif(not registration.ants_available(),
                                reason="ANTsPy is not installed (pip install 'neurohash-lite[preprocess]')")

#: The recovered template must correlate with the original above this; the
#: moved one, resampled without registration, lies far below (about 0.8).
RECOVERED_CORRELATION = 0.98


def test_rigid_affine_is_a_rotation_and_a_shift():
    affine = rigid_affine((10, -5, 20), (3, -4, 5))
    np.testing.assert_allclose(affine[:3, :3] @ affine[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(affine[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_array_equal(affine[:3, 3], [3, -4, 5])


def test_move_image_changes_only_the_header():
    template = mni_template(2)
    moved = move_image(template, rigid_affine((0, 0, 12), (8, -6, 5)))
    np.testing.assert_array_equal(moved.get_fdata(), template.get_fdata())
    assert similarity(template, template) == pytest.approx(1.0)
    assert similarity(moved, template) < 0.9


def test_without_ants_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(registration, "ants_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install \"neurohash-lite\[preprocess\]\""):
        register(mni_template(2))


@needs_ants
def test_register_recovers_the_moved_template():
    template = mni_template(2)
    moved = move_image(template, rigid_affine((8, -6, 12), (8, -6, 5)))
    before = similarity(moved, template)
    result = register(moved, template, transform_type="Affine", seed=0)
    after = similarity(result.image, template)
    assert before < 0.9 < RECOVERED_CORRELATION < after
    assert result.image.shape == template.shape


@needs_ants
def test_register_folder_registers_only_the_named_subjects(tmp_path):
    from neurohash_lite.data import make_synthetic_cohort

    root = make_synthetic_cohort(tmp_path / "tiny", "tiny", voxel_size_mm=8)
    subject = sorted(p.name for p in root.glob("sub-*"))[0]
    mri = next((root / subject / "anat").glob("*T1w.nii.gz"))
    image = nib.load(mri)
    moved_root = tmp_path / "moved"
    from neurohash_lite.registration import perturb_folder

    perturb_folder(root, moved_root, seed=0, max_rotation_deg=10, max_shift_mm=8)
    out = tmp_path / "registered"
    fixed = nib.Nifti1Image(np.asarray(image.get_fdata(), np.float32), image.affine)
    seconds = register_folder(moved_root, out, fixed=fixed, subjects=[subject])
    assert list(seconds) == [subject]
    registered = out / mri.relative_to(root)
    assert similarity(registered, mri) > similarity(moved_root / mri.relative_to(root), mri)
    with pytest.raises(ValueError, match="exists"):
        register_folder(moved_root, out, fixed=fixed, subjects=[subject])
