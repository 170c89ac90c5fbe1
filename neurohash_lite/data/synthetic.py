"""A synthetic paired sMRI / FDG-PET cohort, made offline from the MNI152 templates.

Real ADNI and OASIS-3 scans need an application and cannot ship with a book.
:func:`make_synthetic_cohort` writes a cohort that exists everywhere (CI,
Colab, a laptop on a plane) and carries the structure the hashing methods
exploit, while saying plainly that it is synthetic.

The generative model, subject by subject:

1. **Diagnosis and severity.** Each subject is NC (0), MCI (1) or AD (2), in
   the preset's counts. A latent disease severity ``s`` in [0, 1] is drawn per
   class from ``Beta(mu_c kappa, (1 - mu_c) kappa)`` with class means
   ``mu = (0.15, 0.45, 0.75)`` and concentration ``kappa = kappa_0 / overlap^2``:
   ``overlap`` scales the within-class spread (0 gives three point masses, the
   default 1 leaves MCI overlapping both NC and AD). Age is drawn the same way
   for every class, so its effects are a nuisance, not a clue.
2. **What each modality sees.** Atrophy and hypometabolism follow the disease
   but not in lockstep: the MRI sees ``s_mri = s + e_mri`` and the PET
   ``s_pet = s + e_pet``, with independent ``e ~ N(0, 0.1^2)``, and each
   region's effect is scaled by its own factor ``1 + N(0, 0.2^2)``.
3. **Anatomy.** The template's grey-matter (GM), white-matter (WM) and CSF maps
   are warped into the subject: a head-size scaling (sd 1.5 %), a local
   magnification of the lateral ventricles by ``1 / (1 - k)`` at their centre,
   ``k = 0.5 s_mri + 0.05`` per decade of age over 55 (ventricular
   enlargement), and a small smooth random deformation (sd 0.7 mm, varying
   over about 24 mm).
4. **sMRI (T1w-like).** Grey matter is lost where AD thins it first:
   hippocampus, amygdala, entorhinal and lateral temporal cortex
   (:data:`~neurohash_lite.data.regions.MRI_ATROPHY_REGIONS`), a fraction
   ``s_mri`` at a region's centre (times the region's weight, at most 0.9),
   replaced by CSF; plus a diffuse loss of 0.03 per decade of age over 55
   everywhere. Intensity is the partial-volume
   mix of WM (1.0), GM (0.62) and CSF (0.18) with a small per-subject contrast
   change, times a smooth bias field (a random quadratic in the exponent),
   plus Rician noise (sd 0.03 of WM at 4 mm voxels). The image is brain-only,
   as after skull stripping; the background holds the Rician noise floor.
5. **FDG-PET-like.** Uptake is driven by the subject's own grey matter:
   GM 1.0, WM 0.3, CSF 0.05. The PET sees 30 % of the grey matter the MRI
   lost (the partial-volume effect of atrophy; only part of it, because the
   focal atrophy above is exaggerated to be visible at 4 mm and the PET would
   otherwise inherit the exaggeration and show the MRI's pattern).
   Hypometabolism lowers GM uptake by a fraction ``0.5 s_pet`` at the
   centres of the posterior cingulate, precuneus, angular gyrus and temporoparietal junction
   (:data:`~neurohash_lite.data.regions.PET_HYPOMETABOLISM_REGIONS`), a
   pattern different from the MRI's; age lowers medial prefrontal uptake for
   everyone. Counts are drawn from a Poisson law and the image is then blurred
   to 8 mm FWHM, so the noise is smooth as in reconstructed PET. A global
   scale (log-normal, sd 0.2: dose and body weight) and a small rigid
   misregistration to the MRI (sd 1.5 mm and 1.5 degrees per axis) finish it.

Everything is drawn from numpy generators seeded by ``seed`` (the cohort-level
draws) and by ``(seed, subject index)`` (each subject's images), so a cohort
is identical for an identical seed, whatever the machine.

**Working resolution.** The cohort is generated directly on a coarse grid
(4 mm by default, :func:`~neurohash_lite.data.anatomy.volume_grid`): every
operation is then cheap (about 85,000 voxels per image), ADNI2-sized cohorts
take seconds, and no chapter needs finer: the 2D slices at 64 x 64 have 3 mm
pixels and the ``paper`` tier's 3D volumes are 4 mm. The templates are
smoothed to the working resolution before sampling (no aliasing).

The cohort is written in a BIDS-like layout (Gorgolewski et al., 2016)::

    dataset_description.json      how it was made (preset, seed, every constant)
    participants.tsv              participant_id, diagnosis, age, severity
    sub-0001/anat/sub-0001_T1w.nii.gz
    sub-0001/pet/sub-0001_pet.nii.gz      (only for subjects with a PET)

References
----------
Tao & An (2021), Section 4 (the ADNI1 counts of the ``adni1`` preset).
Wang & Zeng (2023), "Datasets" (the 300 pairs of ``adni2`` and ``oasis3``).
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .anatomy import BRAIN_BOX_MM, Anatomy, Grid, apply_affine, load_anatomy, sample_volume, volume_grid
from .regions import MRI_ATROPHY_REGIONS, PET_AGE_REGIONS, PET_HYPOMETABOLISM_REGIONS, region_footprints

__all__ = [
    "DIAGNOSES",
    "CohortPreset",
    "PRESETS",
    "GenerativeModel",
    "SubjectTable",
    "draw_subjects",
    "synthesize_subject",
    "cohort_description",
    "make_synthetic_cohort",
]

#: Version of the generative model; part of every cohort's description.
GENERATOR_VERSION = 1

#: Diagnosis names, indexed by the integer label.
DIAGNOSES = ("NC", "MCI", "AD")


@dataclass(frozen=True)
class CohortPreset:
    """How many subjects of each class a synthetic cohort has.

    Attributes
    ----------
    name : str
    mri_counts : tuple of 3 int
        Subjects with a T1w image, per class (NC, MCI, AD).
    pet_counts : tuple of 3 int
        Of those, subjects that also have an FDG-PET image (the paired ones).
    age_mean, age_sd : float
        Age distribution in years (a normal law clipped to ``age_range``).
    age_range : tuple of 2 float
    note : str
        Where the numbers come from.
    """

    name: str
    mri_counts: tuple[int, int, int]
    pet_counts: tuple[int, int, int]
    age_mean: float
    age_sd: float
    age_range: tuple[float, float]
    note: str

    @property
    def n_subjects(self) -> int:
        return int(sum(self.mri_counts))

    @property
    def n_paired(self) -> int:
        return int(sum(self.pet_counts))


PRESETS: dict[str, CohortPreset] = {
    "adni1": CohortPreset(
        "adni1", (229, 393, 199), (100, 204, 93), 75.0, 7.0, (55.0, 90.0),
        "ADNI1 as used by Tao & An (2021): 821 T1w scans (229 NC, 393 MCI, 199 AD), "
        "397 of them with an FDG-PET (100 NC, 204 MCI, 93 AD); 424 MRI-only subjects. "
        "Ages within ADNI's enrolment range, 55 to 90.",
    ),
    "adni2": CohortPreset(
        "adni2", (76, 154, 70), (76, 154, 70), 75.0, 7.0, (55.0, 90.0),
        "ADNI2 as used by Wang & Zeng (2023): 300 MRI-PET pairs. The paper gives no "
        "class counts; these follow the class mix of ADNI1's PET subjects.",
    ),
    "oasis3": CohortPreset(
        "oasis3", (165, 85, 50), (165, 85, 50), 70.0, 9.0, (42.0, 95.0),
        "OASIS-3 as used by Wang & Zeng (2023): 300 MRI-PET pairs. The paper gives no "
        "class counts; these are ours, mostly cognitively normal as OASIS-3 is.",
    ),
    "tiny": CohortPreset(
        "tiny", (12, 12, 12), (10, 10, 10), 75.0, 7.0, (55.0, 90.0),
        "For tests and the smoke tier: 36 T1w scans, 30 of them paired, 6 MRI-only.",
    ),
}


@dataclass(frozen=True)
class GenerativeModel:
    """Every constant of the generative model (see the module docstring).

    Intensities are relative to white matter on the T1w image and to grey
    matter on the PET; amplitudes are fractions of tissue or uptake lost at a
    region's centre at severity 1.

    The defaults were tuned for difficulty (Chapter 1): on ``adni2`` a
    logistic regression on 8 mm volumes reaches a balanced accuracy of 0.57
    to 0.67 on the MRI and about 0.7 on the PET over seeds 0 to 3 (chance
    1/3; the latent severity itself gives about 0.8), so that retrieval is
    neither trivial nor hopeless.
    """

    severity_means: tuple[float, float, float] = (0.15, 0.45, 0.75)
    severity_concentration: float = 11.0
    modality_severity_sd: float = 0.10
    region_jitter_sd: float = 0.20
    # sMRI
    tissue_intensity: tuple[float, float, float] = (0.62, 1.0, 0.18)  # GM, WM, CSF
    tissue_intensity_sd: float = 0.02
    atrophy_amplitude: float = 1.0
    age_atrophy_per_decade: float = 0.03
    ventricle_expansion: float = 0.5
    age_ventricle_per_decade: float = 0.05
    ventricle_sigma_mm: tuple[float, float, float] = (9.0, 22.0, 11.0)
    head_scale_sd: float = 0.015
    deformation_sd_mm: float = 0.7
    deformation_spacing_mm: float = 24.0
    bias_field_sd: float = 0.05
    mri_noise_sd: float = 0.03
    # FDG-PET
    tissue_uptake: tuple[float, float, float] = (1.0, 0.3, 0.05)  # GM, WM, CSF
    hypometabolism_amplitude: float = 0.5
    pet_atrophy_visibility: float = 0.3
    age_hypometabolism_per_decade: float = 0.04
    pet_fwhm_mm: float = 8.0
    pet_counts_per_ml: float = 600.0
    pet_global_scale_sd: float = 0.2
    misregistration_mm: float = 1.5
    misregistration_deg: float = 1.5

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = np.asarray(getattr(self, field.name), dtype=float)
            if not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(f"GenerativeModel.{field.name}={getattr(self, field.name)!r} "
                                 "must be finite and non-negative")
        if not all(0 < m < 1 for m in self.severity_means):
            raise ValueError(f"severity_means={self.severity_means} must lie in (0, 1)")
        if self.severity_concentration <= 0:
            raise ValueError("severity_concentration must be positive")


@dataclass(frozen=True)
class SubjectTable:
    """The cohort-level draws: one entry per subject, in subject-id order.

    Attributes
    ----------
    participant_ids : list of str
        ``"sub-0001"``, ``"sub-0002"``, ...
    labels : ndarray (n,), int64
        0 NC, 1 MCI, 2 AD.
    has_pet : ndarray (n,), bool
    age : ndarray (n,), float64, years
    severity : ndarray (n,), float64, in [0, 1]
    severity_mri, severity_pet : ndarray (n,), float64
        The severity each modality sees (step 2 of the model).
    """

    participant_ids: list[str]
    labels: np.ndarray
    has_pet: np.ndarray
    age: np.ndarray
    severity: np.ndarray
    severity_mri: np.ndarray
    severity_pet: np.ndarray


def _check_preset(preset: str) -> CohortPreset:
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not a preset; choose one of {sorted(PRESETS)}")
    return PRESETS[preset]


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def _check_overlap(overlap) -> float:
    try:
        overlap = float(overlap)
    except (TypeError, ValueError) as error:
        raise ValueError(f"overlap={overlap!r} must be a number") from error
    if not np.isfinite(overlap) or not 0 <= overlap <= 3:
        raise ValueError(f"overlap={overlap!r} must lie in [0, 3]")
    return overlap


def draw_subjects(
    preset: str = "adni2", seed: int = 0, overlap: float = 1.0, model: GenerativeModel | None = None
) -> SubjectTable:
    """Draw diagnoses, PET availability, ages and severities for a cohort.

    Parameters
    ----------
    preset : str
        A key of :data:`PRESETS`.
    seed : int
        Non-negative; identical seeds give identical tables.
    overlap : float
        Scales the within-class spread of severity (0 to 3; default 1).
    model : GenerativeModel, optional

    Returns
    -------
    SubjectTable
        Subjects in random class order (ids reveal nothing).
    """
    spec = _check_preset(preset)
    seed = _check_seed(seed)
    overlap = _check_overlap(overlap)
    model = model or GenerativeModel()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(spec.mri_counts)])
    has_pet = np.zeros(len(labels), dtype=bool)
    for c, n_pet in enumerate(spec.pet_counts):
        members = np.flatnonzero(labels == c)
        has_pet[rng.choice(members, size=n_pet, replace=False)] = True
    order = rng.permutation(len(labels))
    labels, has_pet = labels[order], has_pet[order]
    means = np.asarray(model.severity_means)[labels]
    if overlap == 0:
        severity = means.copy()
    else:
        kappa = model.severity_concentration / overlap**2
        severity = rng.beta(means * kappa, (1 - means) * kappa)
    age = np.clip(rng.normal(spec.age_mean, spec.age_sd, len(labels)), *spec.age_range)
    e_mri, e_pet = rng.normal(0.0, model.modality_severity_sd, (2, len(labels)))
    return SubjectTable(
        participant_ids=[f"sub-{i + 1:04d}" for i in range(len(labels))],
        labels=labels,
        has_pet=has_pet,
        age=np.round(age, 1),
        severity=severity,
        severity_mri=np.clip(severity + e_mri, 0.0, None),
        severity_pet=np.clip(severity + e_pet, 0.0, None),
    )


# --------------------------------------------------------------------------
# One subject
# --------------------------------------------------------------------------
_BOX_CENTRE_MM = np.array([(lo + hi) / 2 for lo, hi in BRAIN_BOX_MM], dtype=np.float32)[:, None]


def _smooth_displacement(rng: np.random.Generator, sd_mm: float, spacing_mm: float):
    """A smooth random displacement field over the box, as a function of position.

    White noise on a grid of spacing ``spacing_mm / 3`` is smoothed with a
    Gaussian of sd one grid step, rescaled to sd ``sd_mm`` per component and
    interpolated trilinearly; the field thus varies on the scale of
    ``spacing_mm``.
    """
    step = spacing_mm / 3.0
    lows = np.array([lo for lo, _ in BRAIN_BOX_MM], dtype=np.float32)[:, None] - 2 * step
    n = [int(np.ceil((hi - lo) / step)) + 5 for lo, hi in BRAIN_BOX_MM]
    field = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (3, *n)).astype(np.float32), (0, 1.0, 1.0, 1.0))
    field *= np.float32(sd_mm) / field.std(axis=(1, 2, 3), keepdims=True)

    def displacement(points_mm: np.ndarray) -> np.ndarray:
        index = (points_mm - lows) / np.float32(step)
        return np.stack([
            ndimage.map_coordinates(f, index, order=1, mode="nearest", prefilter=False, output=np.float32)
            for f in field
        ])

    return displacement


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def synthesize_subject(
    anatomy: Anatomy,
    grid: Grid,
    model: GenerativeModel,
    *,
    severity_mri: float,
    severity_pet: float,
    age: float,
    with_pet: bool,
    rng: np.random.Generator,
    points_mm: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Make one subject's T1w image and, optionally, its FDG-PET image.

    Parameters
    ----------
    anatomy : Anatomy
        From :func:`~neurohash_lite.data.anatomy.load_anatomy`.
    grid : Grid
        The working grid the images are made on.
    model : GenerativeModel
    severity_mri, severity_pet : float
        The severity each modality sees (>= 0).
    age : float
        Years.
    with_pet : bool
        Whether to make the PET image.
    rng : numpy.random.Generator
        The subject's own stream.
    points_mm : ndarray, shape (3, N), optional
        ``grid.points_mm()``, when the caller already has it.

    Returns
    -------
    t1 : ndarray, grid.shape, float32
        Arbitrary units, white matter near 1.
    pet : ndarray, grid.shape, float32, or None
        Arbitrary units (grey matter near 1 before the global scale).
    """
    points = grid.points_mm() if points_mm is None else points_mm
    voxel = float(np.mean(grid.voxel_size_mm))
    decades = max(age - 55.0, 0.0) / 10.0
    scale = float(np.clip(1.0 + rng.normal(0.0, model.head_scale_sd), 0.94, 1.06))
    displacement = _smooth_displacement(rng, model.deformation_sd_mm, model.deformation_spacing_mm)
    jitter_mri = np.clip(1.0 + rng.normal(0.0, model.region_jitter_sd, len(MRI_ATROPHY_REGIONS)), 0.0, None)
    jitter_pet = np.clip(1.0 + rng.normal(0.0, model.region_jitter_sd, len(PET_HYPOMETABOLISM_REGIONS)), 0.0, None)
    k_ventricle = float(np.clip(
        model.ventricle_expansion * severity_mri + model.age_ventricle_per_decade * decades, 0.0, 0.5
    ))

    # Subject space -> template space: head size, ventricular enlargement, smooth deformation.
    q = _BOX_CENTRE_MM + (points - _BOX_CENTRE_MM) / np.float32(scale)
    for centre in anatomy.ventricle_centres_mm:
        offset = q - centre.astype(np.float32)[:, None]
        exponent = sum((offset[a] / np.float32(model.ventricle_sigma_mm[a])) ** 2 for a in range(3))
        q -= np.float32(k_ventricle) * offset * np.exp(np.float32(-0.5) * exponent)
    q += displacement(q)

    # Tissues, with grey matter lost where AD atrophies it (replaced by CSF).
    gm, wm, csf = (sample_volume(a, anatomy.affine, q) for a in (anatomy.gm, anatomy.wm, anatomy.csf))
    loss = model.atrophy_amplitude * severity_mri * (jitter_mri.astype(np.float32) @ region_footprints(q, MRI_ATROPHY_REGIONS))
    lost = gm * np.clip(loss + np.float32(model.age_atrophy_per_decade * decades), 0.0, 0.9)
    gm -= lost
    csf += lost

    # sMRI: tissue mix, bias field, Rician noise.
    c_gm, c_wm, c_csf = np.asarray(model.tissue_intensity) + rng.normal(0.0, model.tissue_intensity_sd, 3) * [1, 0, 1]
    t1 = np.float32(c_gm) * gm + np.float32(c_wm) * wm + np.float32(c_csf) * csf
    x, y, z = (points - _BOX_CENTRE_MM) / np.float32(90.0)
    beta = rng.normal(0.0, model.bias_field_sd, 9).astype(np.float32)
    t1 *= np.exp(beta[0] * x + beta[1] * y + beta[2] * z + beta[3] * x * x + beta[4] * y * y
                 + beta[5] * z * z + beta[6] * x * y + beta[7] * x * z + beta[8] * y * z)
    sigma = np.float32(model.mri_noise_sd * (4.0 / voxel) ** 1.5)
    noise = rng.standard_normal((2, t1.size), dtype=np.float32) * sigma
    t1 = np.sqrt((t1 + noise[0]) ** 2 + noise[1] ** 2).reshape(grid.shape)
    if not with_pet:
        return t1, None

    # FDG-PET: uptake from the subject's own grey matter, count noise, blur, misregistration.
    hypo = model.hypometabolism_amplitude * severity_pet * (
        jitter_pet.astype(np.float32) @ region_footprints(q, PET_HYPOMETABOLISM_REGIONS))
    hypo += np.float32(model.age_hypometabolism_per_decade * decades) * region_footprints(q, PET_AGE_REGIONS)[0]
    u_gm, u_wm, u_csf = model.tissue_uptake
    gm_pet = gm + np.float32(1.0 - model.pet_atrophy_visibility) * lost
    csf_pet = csf - np.float32(1.0 - model.pet_atrophy_visibility) * lost
    activity = np.float32(u_gm) * gm_pet * (1.0 - np.clip(hypo, 0.0, 0.9))
    activity += np.float32(u_wm) * wm + np.float32(u_csf) * csf_pet
    counts_per_voxel = model.pet_counts_per_ml * (voxel / 10.0) ** 3
    counts = rng.poisson(np.maximum(activity, 0.0) * counts_per_voxel).astype(np.float32)
    sigma_vox = model.pet_fwhm_mm / voxel / (2 * np.sqrt(2 * np.log(2)))
    pet = ndimage.gaussian_filter(counts.reshape(grid.shape) / np.float32(counts_per_voxel), sigma_vox)
    rotation = _rotation(np.deg2rad(rng.normal(0.0, model.misregistration_deg, 3)))
    shift = rng.normal(0.0, model.misregistration_mm, 3)
    rigid = np.eye(4)
    rigid[:3, :3] = rotation
    rigid[:3, 3] = _BOX_CENTRE_MM[:, 0] - rotation @ _BOX_CENTRE_MM[:, 0] + shift
    moved = apply_affine(rigid, points)
    pet = sample_volume(pet, grid.affine, moved).reshape(grid.shape)
    pet *= np.float32(np.exp(rng.normal(0.0, model.pet_global_scale_sd)))
    return t1, pet


# --------------------------------------------------------------------------
# The cohort on disk
# --------------------------------------------------------------------------
def cohort_description(preset: str, seed: int, voxel_size_mm: float, overlap: float,
                       model: GenerativeModel) -> dict:
    """The parameters that determine a synthetic cohort, as stored in its description."""
    return json.loads(json.dumps({
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": int(seed),
        "voxel_size_mm": float(voxel_size_mm),
        "overlap": float(overlap),
        "model": dataclasses.asdict(model),
    }, sort_keys=True))


def description_digest(description: dict) -> str:
    """A short hash of a cohort description (used to name cohort folders)."""
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _read_description(folder: Path) -> dict | None:
    path = folder / "dataset_description.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("NeuroHashSynthetic")
    except (OSError, ValueError, AttributeError):
        return None


def _save_image(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(array.astype(np.float32), affine)
    image.set_sform(affine, code="mni")
    image.set_qform(affine, code="mni")
    image.header.set_xyzt_units("mm")
    image.set_data_dtype(np.int16)  # stored as int16 with a scale factor, as scanners do
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)


def _write_cohort(folder: Path, table: SubjectTable, description: dict, model: GenerativeModel,
                  voxel_size_mm: float, seed: int, verbose: bool) -> None:
    anatomy = load_anatomy(voxel_size_mm)
    grid = volume_grid(voxel_size_mm)
    points = grid.points_mm()
    for index, participant in enumerate(table.participant_ids):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, index]))
        t1, pet = synthesize_subject(
            anatomy, grid, model,
            severity_mri=float(table.severity_mri[index]),
            severity_pet=float(table.severity_pet[index]),
            age=float(table.age[index]),
            with_pet=bool(table.has_pet[index]),
            rng=rng,
            points_mm=points,
        )
        _save_image(t1, grid.affine, folder / participant / "anat" / f"{participant}_T1w.nii.gz")
        if pet is not None:
            _save_image(pet, grid.affine, folder / participant / "pet" / f"{participant}_pet.nii.gz")
        if verbose and (index + 1) % 100 == 0:
            print(f"  {index + 1}/{len(table.participant_ids)} subjects", flush=True)
    with open(folder / "participants.tsv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["participant_id", "diagnosis", "age", "severity"])
        for participant, label, age, severity in zip(
            table.participant_ids, table.labels, table.age, table.severity
        ):
            writer.writerow([participant, DIAGNOSES[label], f"{age:.1f}", f"{severity:.4f}"])
    dataset = {
        "Name": f"NeuroHash synthetic sMRI/FDG-PET cohort ({description['preset']}, seed {seed})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0: synthetic data made from the MNI152 2009 templates bundled with nilearn",
        "GeneratedBy": [{
            "Name": "neurohash_lite.data.make_synthetic_cohort",
            "Description": "Synthetic: no real subject. See the module docstring for the model.",
        }],
        "NeuroHashSynthetic": description,
    }
    (folder / "dataset_description.json").write_text(json.dumps(dataset, indent=2, sort_keys=True) + "\n",
                                                     encoding="utf-8")


def make_synthetic_cohort(
    out_dir: str | os.PathLike,
    preset: str = "adni2",
    seed: int = 0,
    *,
    voxel_size_mm: float = 4.0,
    overlap: float = 1.0,
    model: GenerativeModel | None = None,
    verbose: bool = False,
) -> Path:
    """Write a synthetic sMRI / FDG-PET cohort in a BIDS-like folder.

    Parameters
    ----------
    out_dir : path-like
        The cohort's folder. If it already holds the same cohort (same preset,
        seed, voxel size, overlap and model) it is reused as is; if it holds
        anything else, nothing is touched and a ValueError is raised.
    preset : {"adni1", "adni2", "oasis3", "tiny"}
        Class counts and ages (:data:`PRESETS`).
    seed : int
        Non-negative. Identical seeds give identical images.
    voxel_size_mm : float
        Working resolution in mm, 1 to 16 (default 4; see the module docstring).
    overlap : float
        Within-class spread of the severity, 0 to 3 (default 1).
    model : GenerativeModel, optional
        The generative model's constants (default :class:`GenerativeModel()`).
    verbose : bool
        Print progress every 100 subjects.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    ValueError
        For an unknown preset, a bad seed, voxel size or overlap, or an
        ``out_dir`` that is a file or holds something other than this cohort.

    Notes
    -----
    The cohort is written into a hidden temporary folder next to ``out_dir``
    and renamed to ``out_dir`` only when complete, so an interrupted run
    leaves no half cohort behind.
    """
    spec = _check_preset(preset)
    seed = _check_seed(seed)
    overlap = _check_overlap(overlap)
    voxel_size_mm = float(volume_grid(voxel_size_mm).voxel_size_mm[0])
    model = model or GenerativeModel()
    if not isinstance(model, GenerativeModel):
        raise ValueError(f"model={model!r} must be a GenerativeModel")
    description = cohort_description(spec.name, seed, voxel_size_mm, overlap, model)
    out_dir = Path(out_dir).expanduser()

    def holds_this_cohort() -> bool:
        return _read_description(out_dir) == description

    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"out_dir={str(out_dir)!r} exists and is not a folder")
        if holds_this_cohort():
            return out_dir
        if any(out_dir.iterdir()):
            existing = _read_description(out_dir)
            what = (f"a different synthetic cohort ({existing.get('preset')}, seed {existing.get('seed')})"
                    if isinstance(existing, dict) else "other files")
            raise ValueError(
                f"out_dir={str(out_dir)!r} already holds {what}; choose another folder or delete it"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    partial.mkdir()
    try:
        table = draw_subjects(spec.name, seed, overlap, model)
        if verbose:
            print(f"Generating {spec.n_subjects} subjects ({spec.n_paired} with PET) in {out_dir}", flush=True)
        _write_cohort(partial, table, description, model, voxel_size_mm, seed, verbose)
        try:
            os.rename(partial, out_dir)  # atomic; allowed onto a missing or empty folder
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST) and holds_this_cohort():
                shutil.rmtree(partial)  # another process finished the same cohort first
            else:
                raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir
