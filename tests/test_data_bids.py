"""Reading a BIDS-like folder: every bad input of DESIGN.md section 9 gets an error naming the file or argument."""

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurohash_lite.data.bids import load_volume, read_participants, scan_layout

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])


def _nifti(path: Path, data=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32) if data is None else data
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), AFFINE), path)
    return path


def _participants(root: Path, rows, columns=("participant_id", "diagnosis", "age")):
    root.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)] + ["\t".join(str(v) for v in row) for row in rows]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")


def _folder(root: Path, subjects) -> Path:
    """subjects: (id, diagnosis, has_mri, has_pet)."""
    _participants(root, [(s, d, 70) for s, d, _, _ in subjects])
    for sub, _, mri, pet in subjects:
        if mri:
            _nifti(root / sub / "anat" / f"{sub}_T1w.nii.gz")
        if pet:
            _nifti(root / sub / "pet" / f"{sub}_pet.nii.gz")
    return root


# ---------------------------------------------------------------- load_volume
def test_load_volume_reads_a_good_image(tmp_path):
    data = np.arange(6 * 7 * 5, dtype=np.float32).reshape(6, 7, 5)
    got, affine = load_volume(_nifti(tmp_path / "a.nii.gz", data))
    np.testing.assert_array_equal(got, data)
    np.testing.assert_array_equal(affine, AFFINE)


def test_not_a_nifti_file(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.nii.gz.*not a readable NIfTI"):
        load_volume(path)


def test_other_image_format_is_not_nifti(tmp_path):
    path = tmp_path / "scan.mgz"
    nib.save(nib.MGHImage(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    with pytest.raises(ValueError, match="scan.mgz.*not a NIfTI"):
        load_volume(path)


def test_truncated_gz(tmp_path):
    path = _nifti(tmp_path / "cut.nii.gz", np.random.default_rng(1).random((20, 20, 20)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.nii.gz.*(corrupt or truncated|not a readable)"):
        load_volume(path)


def test_truncated_uncompressed_nii(tmp_path):
    path = _nifti(tmp_path / "cut.nii", np.random.default_rng(1).random((20, 20, 20)))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cut.nii"):
        load_volume(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_voxels(tmp_path, bad):
    data = np.ones((6, 7, 5), np.float32)
    data[2, 3, 1] = bad
    with pytest.raises(ValueError, match="bad.nii.gz: 1 voxel.*NaN or infinite"):
        load_volume(_nifti(tmp_path / "bad.nii.gz", data))


def test_4d_with_several_frames_suggests_averaging(tmp_path):
    with pytest.raises(ValueError, match="dyn.nii.gz.*4 frames.*mean_img"):
        load_volume(_nifti(tmp_path / "dyn.nii.gz", np.ones((6, 7, 5, 4))))


def test_4d_with_one_frame_is_squeezed(tmp_path):
    data, _ = load_volume(_nifti(tmp_path / "one.nii.gz", np.ones((6, 7, 5, 1))))
    assert data.shape == (6, 7, 5)


def test_2d_image_is_refused(tmp_path):
    with pytest.raises(ValueError, match="flat.nii.gz.*3D"):
        load_volume(_nifti(tmp_path / "flat.nii.gz", np.ones((6, 7))))


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="missing.nii.gz: file not found"):
        load_volume(tmp_path / "missing.nii.gz")


# ---------------------------------------------------------------- participants.tsv
def test_missing_participants_file(tmp_path):
    with pytest.raises(ValueError, match="participants.tsv not found"):
        read_participants(tmp_path / "participants.tsv")


@pytest.mark.parametrize("missing", ["participant_id", "diagnosis"])
def test_missing_column(tmp_path, missing):
    columns = tuple(c for c in ("participant_id", "diagnosis", "age") if c != missing)
    _participants(tmp_path, [("sub-01", "NC")], columns=columns)
    with pytest.raises(ValueError, match=f"participants.tsv: column '{missing}' is missing"):
        read_participants(tmp_path / "participants.tsv")


def test_unknown_diagnosis_names_file_line_and_value(tmp_path):
    _participants(tmp_path, [("sub-01", "NC", 70), ("sub-02", "SMC", 71)])
    with pytest.raises(ValueError, match=r"participants.tsv, line 3: unknown diagnosis 'SMC' for sub-02"):
        read_participants(tmp_path / "participants.tsv")


def test_diagnosis_map_and_other_column(tmp_path):
    _participants(tmp_path, [("01", "CN", 70), ("02", "SMC", 71), ("03", "LMCI", 72), ("04", "Dementia", 73)],
                  columns=("participant_id", "diagnosis_sc", "age"))
    table = read_participants(tmp_path / "participants.tsv", "diagnosis_sc", {"SMC": 0})
    assert table.participant_ids == ["sub-01", "sub-02", "sub-03", "sub-04"]
    np.testing.assert_array_equal(table.labels, [0, 0, 1, 2])
    np.testing.assert_array_equal(table.age, [70, 71, 72, 73])
    assert np.isnan(table.severity).all()


def test_bad_diagnosis_map_value(tmp_path):
    _participants(tmp_path, [("sub-01", "NC", 70)])
    with pytest.raises(ValueError, match="diagnosis_map"):
        read_participants(tmp_path / "participants.tsv", diagnosis_map={"SMC": 5})


def test_duplicate_participant(tmp_path):
    _participants(tmp_path, [("sub-01", "NC", 70), ("sub-01", "AD", 71)])
    with pytest.raises(ValueError, match="more than once.*sub-01"):
        read_participants(tmp_path / "participants.tsv")


def test_empty_participants(tmp_path):
    _participants(tmp_path, [])
    with pytest.raises(ValueError, match="no participants"):
        read_participants(tmp_path / "participants.tsv")


# ---------------------------------------------------------------- layout
def test_layout_pairs_and_keeps_mri_only_subjects(tmp_path):
    root = _folder(tmp_path, [("sub-01", "NC", True, True), ("sub-02", "AD", True, False),
                              ("sub-03", "MCI", False, True)])
    layout = scan_layout(root)
    assert layout.participants.participant_ids == ["sub-01", "sub-02"]
    assert [p is not None for p in layout.pet_paths] == [True, False]
    assert layout.pet_only == ["sub-03"]


def test_listed_subject_without_any_image(tmp_path):
    root = _folder(tmp_path, [("sub-01", "NC", True, True), ("sub-02", "AD", False, False)])
    with pytest.raises(ValueError, match="participants.tsv: sub-02 is listed but has no T1w or pet image"):
        scan_layout(root)


def test_image_of_unlisted_subject(tmp_path):
    root = _folder(tmp_path, [("sub-01", "NC", True, True)])
    _nifti(root / "sub-07" / "anat" / "sub-07_T1w.nii.gz")
    with pytest.raises(ValueError, match="sub-07_T1w.nii.gz: image of subject sub-07, who is not listed"):
        scan_layout(root)


def test_root_that_is_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="root="):
        scan_layout(tmp_path / "nowhere")


def test_sessions_runs_and_tracers(tmp_path):
    _participants(tmp_path, [("sub-01", "AD", 70)])
    sub = tmp_path / "sub-01"
    _nifti(sub / "ses-M000" / "anat" / "sub-01_ses-M000_run-01_T1w.nii.gz")
    _nifti(sub / "ses-M000" / "anat" / "sub-01_ses-M000_run-02_T1w.nii.gz")
    _nifti(sub / "ses-M000" / "pet" / "sub-01_ses-M000_trc-18FAV45_pet.nii.gz")
    _nifti(sub / "ses-M000" / "pet" / "sub-01_ses-M000_trc-18FFDG_pet.nii.gz")
    _nifti(sub / "ses-M024" / "anat" / "sub-01_ses-M024_T1w.nii.gz")
    layout = scan_layout(tmp_path)
    assert layout.mri_paths[0].name == "sub-01_ses-M000_run-01_T1w.nii.gz"
    assert layout.pet_paths[0].name == "sub-01_ses-M000_trc-18FFDG_pet.nii.gz"
    assert any("2 sessions" in note for note in layout.notes)
    later = scan_layout(tmp_path, session="M024")
    assert later.mri_paths[0].name == "sub-01_ses-M024_T1w.nii.gz" and later.pet_paths == [None]


def test_other_modality_suffixes_from_the_description(tmp_path):
    _participants(tmp_path, [("sub-01", "NC", 70)])
    (tmp_path / "dataset_description.json").write_text(
        '{"Name": "x", "NeuroHashModalities": {"mri": "label-GM_probseg", "pet": "label-WM_probseg"}}')
    _nifti(tmp_path / "sub-01" / "anat" / "sub-01_label-GM_probseg.nii.gz")
    _nifti(tmp_path / "sub-01" / "anat" / "sub-01_label-WM_probseg.nii.gz")
    layout = scan_layout(tmp_path)
    assert layout.mri_paths[0].name.endswith("GM_probseg.nii.gz")
    assert layout.pet_paths[0].name.endswith("WM_probseg.nii.gz")
