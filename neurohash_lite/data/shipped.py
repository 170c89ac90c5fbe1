"""A small BIDS folder made offline from real NIfTI files that installed packages ship.

Chapter 10 needs a folder a reader could have brought: real images on disk,
in the BIDS layout, with the mistakes real folders hold. Without the network
the only real brain images at hand are those inside the installed wheels:
nilearn's MNI152 T1 template and its grey- and white-matter probability maps
(at 1 and 2 mm), and nibabel's test images. :func:`make_shipped_bids` writes

- ``3 * n_per_class`` paired subjects: a T1w image (the MNI152 T1 at 2 mm,
  its intensity scaled and noise added per subject) and a PET-like image
  (grey matter plus 0.3 white matter, FDG's contrast, smoothed to 8 mm FWHM,
  scaled, noise added);
- two of them moved out of MNI space by a known rigid transform (MRI and PET
  together), to be registered back;
- one with its T1w on a 3 mm grid (the template resampled; a different grid);
- one subject with a T1w and no PET (kept for pretraining, never paired);
- one whose "PET" is nibabel's ``example4d.nii.gz``, a 2-frame 4D series
  (refused by the loader, naming the file);
- ``participants.tsv`` with MMSE and CDR for everyone, the diagnosis left
  ``n/a`` for some (derived from the scores, Chapter 10), and two subjects
  whose scores give no label (a missing MMSE; an MMSE in ADNI's MCI/AD overlap).

All subjects are one brain, the template, with noise: retrieval on this
folder measures the plumbing, never the method; its labels carry no signal.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..folders import new_folder

__all__ = ["ShippedFolder", "make_shipped_bids", "undo_known_moves"]


@dataclass
class ShippedFolder:
    """What :func:`make_shipped_bids` wrote.

    Attributes
    ----------
    root : pathlib.Path
    moved : dict of str to ndarray (4, 4)
        Subjects moved out of MNI space and the rigid transform (world mm) applied.
    other_grid : str
        The subject whose T1w lies on a 3 mm grid.
    mri_only : str
        The subject with no PET.
    four_d : pathlib.Path
        The 4D file placed as a PET.
    unlabelled : list of str
        Subjects whose scores give no diagnosis.
    sources : dict of str to str
        Which shipped file each kind of image came from.
    """

    root: Path
    moved: dict = field(default_factory=dict)
    other_grid: str = ""
    mri_only: str = ""
    four_d: Path | None = None
    unlabelled: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)


def _noisy(data: np.ndarray, rng: np.random.Generator, scale: float, noise: float) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    peak = float(np.percentile(data, 99.5)) or 1.0
    return (scale * data + rng.normal(0.0, noise * peak, data.shape)).astype(np.float32)


def make_shipped_bids(root, *, n_per_class: int = 4, seed: int = 0) -> ShippedFolder:
    """Write the small BIDS folder described in the module docstring.

    Parameters
    ----------
    root : path-like
        A new folder (written under a temporary name, then renamed).
    n_per_class : int
        Paired subjects per diagnosis (2 to 50).
    seed : int
        Noise, intensity scales and which subjects are moved.

    Returns
    -------
    ShippedFolder

    Raises
    ------
    ValueError
        If ``root`` exists or ``n_per_class`` is out of range.
    """
    import nibabel as nib
    from nilearn import datasets, image

    from ..registration import rigid_affine
    from .synthetic import DIAGNOSES

    root = Path(root)
    if root.exists():
        raise ValueError(f"{root} exists; choose a new folder (nothing is overwritten)")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or not 2 <= n_per_class <= 50:
        raise ValueError(f"n_per_class={n_per_class!r} must be an integer from 2 to 50")
    rng = np.random.default_rng([seed, 10])
    t1 = datasets.load_mni152_template(resolution=2)
    # another grid: the template resampled to 3 mm voxels (a scanner's or a pipeline's other choice)
    t1_other = image.resample_img(t1, target_affine=np.diag([3.0, 3.0, 3.0]), interpolation="linear",
                                  force_resample=True, copy_header=True)
    gm = datasets.load_mni152_gm_template(resolution=2)
    wm = datasets.load_mni152_wm_template(resolution=2)
    uptake = nib.Nifti1Image(gm.get_fdata(dtype=np.float32) + 0.3 * wm.get_fdata(dtype=np.float32), gm.affine)
    pet_base = image.smooth_img(uptake, fwhm=8.0)
    four_d_source = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"

    n_paired = 3 * n_per_class
    labels = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(n_paired)
    labels = labels[order]
    subjects = [f"sub-{i + 1:02d}" for i in range(n_paired + 4)]
    moved_idx = rng.choice(n_paired, size=2, replace=False)
    remaining = [i for i in range(n_paired) if i not in moved_idx]
    other_grid_idx = int(rng.choice(remaining))
    missing_dx = set(int(i) for i in rng.choice(remaining, size=3, replace=False))
    mri_only, four_d_subject, no_mmse, overlap = subjects[n_paired:]
    moved = {subjects[int(i)]: rigid_affine(rng.uniform(-12, 12, 3), rng.uniform(-10, 10, 3)) for i in moved_idx}

    def scores(label: int) -> tuple[str, str]:
        mmse = {0: rng.integers(28, 31), 1: rng.integers(27, 31), 2: rng.integers(20, 24)}[label]
        return str(int(mmse)), {0: "0", 1: "0.5", 2: "1"}[label]

    rows = []
    with new_folder(root) as tmp:
        def save(img, subject: str, kind: str) -> Path:
            folder = tmp / subject / ("anat" if kind == "T1w" else "pet")
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{subject}_T1w.nii.gz" if kind == "T1w" else f"{subject}_trc-FDG_pet.nii.gz"
            nib.save(img, folder / name)
            return folder / name

        for i, subject in enumerate(subjects[:n_paired]):
            label = int(labels[i])
            base = t1_other if i == other_grid_idx else t1
            mri = nib.Nifti1Image(_noisy(base.get_fdata(), rng, rng.uniform(0.7, 1.3), 0.02), base.affine)
            pet = nib.Nifti1Image(_noisy(pet_base.get_fdata(), rng, rng.uniform(0.5, 2.0), 0.03), pet_base.affine)
            if subject in moved:
                mri = nib.Nifti1Image(mri.get_fdata(dtype=np.float32), moved[subject] @ mri.affine)
                pet = nib.Nifti1Image(pet.get_fdata(dtype=np.float32), moved[subject] @ pet.affine)
            save(mri, subject, "T1w")
            save(pet, subject, "pet")
            mmse, cdr = scores(label)
            rows.append({"participant_id": subject, "age": f"{rng.uniform(60, 85):.0f}", "mmse": mmse, "cdr": cdr,
                         "diagnosis": "n/a" if i in missing_dx else DIAGNOSES[label]})
        # the subjects a reader's folder also holds
        for subject, stated, mmse, cdr in ((mri_only, "NC", "29", "0"), (four_d_subject, "MCI", "28", "0.5"),
                                           (no_mmse, "n/a", "n/a", "0.5"), (overlap, "n/a", "25", "0.5")):
            save(nib.Nifti1Image(_noisy(t1.get_fdata(), rng, rng.uniform(0.7, 1.3), 0.02), t1.affine), subject, "T1w")
            if subject == four_d_subject:
                four_d = save(nib.load(four_d_source), subject, "pet")
            elif subject != mri_only:
                save(nib.Nifti1Image(_noisy(pet_base.get_fdata(), rng, 1.0, 0.03), pet_base.affine), subject, "pet")
            rows.append({"participant_id": subject, "age": f"{rng.uniform(60, 85):.0f}", "mmse": mmse, "cdr": cdr,
                         "diagnosis": stated})
        with open(tmp / "participants.tsv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "dataset_description.json").write_text(json.dumps({
            "Name": "NeuroHash shipped-files demo (MNI152 template copies; not patient data)",
            "BIDSVersion": "1.9.0", "DatasetType": "raw",
            "GeneratedBy": [{"Name": "neurohash_lite.data.shipped.make_shipped_bids", "Description": f"seed {seed}"}],
        }, indent=2) + "\n", encoding="utf-8")
    return ShippedFolder(
        root=root, moved=moved, other_grid=subjects[other_grid_idx], mri_only=mri_only,
        four_d=root / four_d.relative_to(tmp), unlabelled=[no_mmse, overlap],
        sources={"T1w": "nilearn MNI152 T1 template (2 mm; resampled to 3 mm for one subject)",
                 "pet": "nilearn MNI152 grey-matter + 0.3 x white-matter maps, smoothed to 8 mm FWHM",
                 "4D": "nibabel tests/data/example4d.nii.gz (2 frames)"},
    )


def undo_known_moves(src, out, moved: dict) -> Path:
    """Copy a folder with the known transforms of ``moved`` undone in the headers.

    Only possible because we moved those scans ourselves; a reader's scans
    need :func:`neurohash_lite.registration.register_folder`. The chapter
    uses this when ANTsPy is not installed.

    Parameters
    ----------
    src, out : path-like
        Source folder and a new folder.
    moved : dict of str to ndarray (4, 4)
        :attr:`ShippedFolder.moved`.

    Returns
    -------
    pathlib.Path
    """
    import nibabel as nib

    from ..registration import move_image

    src, out = Path(src), Path(out)
    with new_folder(out) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        for subject, affine in moved.items():
            for path in sorted((tmp / subject).rglob("*.nii*")):
                image = move_image(nib.load(path), np.linalg.inv(affine))
                nib.save(image, path)
    return out
