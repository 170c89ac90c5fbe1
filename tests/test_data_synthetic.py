"""The synthetic cohort: deterministic per seed, the presets' counts, safe writing, sane images."""

import csv
import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurohash_lite.data import synthetic
from neurohash_lite.data.synthetic import PRESETS, GenerativeModel, draw_subjects, make_synthetic_cohort

FAST = {"voxel_size_mm": 8.0}  # a coarse grid keeps these tests quick


def _images(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): nib.load(p).get_fdata() for p in sorted(root.rglob("*.nii.gz"))}


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("cohorts") / "tiny", "tiny", seed=0, **FAST)


def test_identical_seeds_give_identical_cohorts_and_different_seeds_differ(tiny, tmp_path):
    again = make_synthetic_cohort(tmp_path / "again", "tiny", seed=0, **FAST)
    other = make_synthetic_cohort(tmp_path / "other", "tiny", seed=1, **FAST)
    first, second, third = _images(tiny), _images(again), _images(other)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert _digest(tiny) == _digest(again)  # byte for byte, participants.tsv included
    shared = sorted(set(first) & set(third))
    assert shared and all(not np.array_equal(first[n], third[n]) for n in shared)


def test_layout_participants_and_description(tiny):
    with open(tiny / "participants.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == ["participant_id", "diagnosis", "age", "severity"]
    spec = PRESETS["tiny"]
    assert len(rows) == spec.n_subjects
    for row in rows:
        sub = row["participant_id"]
        assert (tiny / sub / "anat" / f"{sub}_T1w.nii.gz").is_file()
        assert row["diagnosis"] in ("NC", "MCI", "AD")
        assert 0.0 <= float(row["severity"]) <= 1.0
        assert spec.age_range[0] <= float(row["age"]) <= spec.age_range[1]
    n_pet = sum((tiny / r["participant_id"] / "pet" / f"{r['participant_id']}_pet.nii.gz").is_file() for r in rows)
    assert n_pet == spec.n_paired
    description = json.loads((tiny / "dataset_description.json").read_text())
    assert description["NeuroHashSynthetic"]["preset"] == "tiny"
    assert "Synthetic" in description["GeneratedBy"][0]["Description"]


def test_images_are_in_mni_space_on_the_working_grid(tiny):
    image = nib.load(next(tiny.rglob("*_T1w.nii.gz")))
    assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
    assert image.header.get_sform(coded=True)[1] == 4  # MNI
    np.testing.assert_allclose(image.header.get_zooms(), (8.0, 8.0, 8.0))
    assert image.shape == (21, 24, 21)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_counts(name):
    spec = PRESETS[name]
    table = draw_subjects(name, seed=3)
    for c in range(3):
        assert (table.labels == c).sum() == spec.mri_counts[c]
        assert ((table.labels == c) & table.has_pet).sum() == spec.pet_counts[c]


def test_adni1_preset_matches_the_seed_paper():
    spec = PRESETS["adni1"]
    assert spec.mri_counts == (229, 393, 199) and spec.n_subjects == 821
    assert spec.pet_counts == (100, 204, 93) and spec.n_paired == 397
    assert spec.n_subjects - spec.n_paired == 424
    assert PRESETS["adni2"].n_paired == PRESETS["oasis3"].n_paired == 300


def test_severity_classes_are_ordered_and_mci_overlaps_both():
    table = draw_subjects("adni1", seed=0)
    s, y = table.severity, table.labels
    means = [s[y == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]
    assert s[y == 1].min() < s[y == 0].max() and s[y == 1].max() > s[y == 2].min()


def test_overlap_zero_gives_point_masses_and_larger_overlap_spreads_classes():
    none = draw_subjects("adni2", seed=0, overlap=0.0)
    np.testing.assert_allclose(none.severity, np.asarray(GenerativeModel().severity_means)[none.labels])
    narrow = draw_subjects("adni2", seed=0, overlap=0.5)
    wide = draw_subjects("adni2", seed=0, overlap=2.0)
    assert narrow.severity[narrow.labels == 1].std() < wide.severity[wide.labels == 1].std()


def test_age_is_drawn_the_same_way_for_every_class():
    table = draw_subjects("adni1", seed=0)
    means = [table.age[table.labels == c].mean() for c in range(3)]
    assert max(means) - min(means) < 3.0  # years; a nuisance, not a clue


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"preset": "adni3"}, "preset"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"overlap": -0.1}, "overlap"),
        ({"overlap": float("nan")}, "overlap"),
        ({"voxel_size_mm": 0.5}, "voxel_size_mm"),
        ({"model": "strong"}, "model"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, kwargs, match):
    arguments = {"preset": "tiny", **FAST, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_synthetic_cohort(tmp_path / "cohort", **arguments)
    assert not (tmp_path / "cohort").exists()


def test_bad_model_constant_is_refused():
    with pytest.raises(ValueError, match="mri_noise_sd"):
        GenerativeModel(mri_noise_sd=-1.0)


def test_existing_identical_cohort_is_reused_untouched(tiny):
    before = _digest(tiny)
    mtime = (tiny / "participants.tsv").stat().st_mtime_ns
    assert make_synthetic_cohort(tiny, "tiny", seed=0, **FAST) == tiny
    assert _digest(tiny) == before and (tiny / "participants.tsv").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("kwargs", [{"seed": 1}, {"preset": "adni2"}, {"overlap": 0.5}, {"voxel_size_mm": 6.0}])
def test_folder_with_a_different_cohort_is_refused(tiny, kwargs):
    before = _digest(tiny)
    arguments = {"preset": "tiny", "seed": 0, **FAST, **kwargs}
    with pytest.raises(ValueError, match="already holds a different synthetic cohort"):
        make_synthetic_cohort(tiny, **arguments)
    assert _digest(tiny) == before


def test_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        make_synthetic_cohort(tmp_path, "tiny", **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "cohort"
    path.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        make_synthetic_cohort(path, "tiny", **FAST)


def test_empty_existing_folder_is_filled(tmp_path):
    (tmp_path / "cohort").mkdir()
    make_synthetic_cohort(tmp_path / "cohort", "tiny", **FAST)
    assert (tmp_path / "cohort" / "participants.tsv").is_file()


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synthetic.synthesize_subject
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt  # as if the reader pressed Ctrl-C
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "synthesize_subject", failing)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_cohort(tmp_path / "cohort", "tiny", **FAST)
    assert list(tmp_path.iterdir()) == []  # no cohort, no hidden partial folder


def test_mri_intensities_order_wm_gm_csf_and_pet_follows_grey_matter():
    from neurohash_lite.data.anatomy import load_anatomy, sample_volume, volume_grid

    anatomy, grid = load_anatomy(4.0), volume_grid(4.0)
    points = grid.points_mm()
    t1, pet = synthetic.synthesize_subject(
        anatomy, grid, GenerativeModel(), severity_mri=0.0, severity_pet=0.0, age=55.0, with_pet=True,
        rng=np.random.default_rng(0), points_mm=points,
    )
    gm, wm, csf = (sample_volume(a, anatomy.affine, points).reshape(grid.shape)
                   for a in (anatomy.gm, anatomy.wm, anatomy.csf))
    assert t1[wm > 0.8].mean() > t1[gm > 0.6].mean() > t1[csf > 0.6].mean()
    assert pet[gm > 0.6].mean() > pet[wm > 0.8].mean()


def test_severity_thins_the_hippocampus_and_lowers_posterior_cingulate_uptake():
    from neurohash_lite.data.anatomy import load_anatomy, volume_grid

    anatomy, grid = load_anatomy(4.0), volume_grid(4.0)
    model = GenerativeModel(mri_noise_sd=0.0, pet_counts_per_ml=1e9, head_scale_sd=0.0, deformation_sd_mm=0.0,
                            misregistration_mm=0.0, misregistration_deg=0.0, pet_global_scale_sd=0.0,
                            bias_field_sd=0.0, tissue_intensity_sd=0.0, region_jitter_sd=0.0)

    def make(severity):
        return synthetic.synthesize_subject(anatomy, grid, model, severity_mri=severity, severity_pet=severity,
                                            age=70.0, with_pet=True, rng=np.random.default_rng(0))

    (t1_healthy, pet_healthy), (t1_ill, pet_ill) = make(0.0), make(1.0)
    inverse = np.linalg.inv(grid.affine)

    def at(volume, xyz):
        i, j, k = np.round(inverse[:3, :3] @ xyz + inverse[:3, 3]).astype(int)
        return volume[i, j, k]

    hippocampus, cingulate = (-25.57, -11.78, -21.54), (-6.84, -54.9, 27.05)
    assert at(t1_ill, hippocampus) < 0.9 * at(t1_healthy, hippocampus)
    assert at(pet_ill, cingulate) < 0.8 * at(pet_healthy, cingulate)
    assert at(t1_ill, cingulate) == pytest.approx(at(t1_healthy, cingulate), rel=0.05)
