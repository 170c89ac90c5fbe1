"""Registration to MNI space with ANTsPy, and the papers' preprocessing mapped to the tools that do it.

The loader (:mod:`neurohash_lite.data.preprocess`) expects images in MNI152
space. Scans in their native space are first registered to the MNI152
template with ANTsPy (``antspyx``, the Python face of the ANTs library that
Clinica's ``t1-linear`` and ``pet-linear`` pipelines run). ANTsPy is an
optional extra::

    pip install "neurohash-lite[preprocess]"     # or: pip install antspyx

This module holds no registration algorithm of its own: :func:`register`
calls ``ants.registration`` and :func:`apply_registration` calls
``ants.apply_transforms``. What it adds is the plumbing (NIfTI images in and
out, the template, a clear message when ANTsPy is missing) and two helpers to
move an image by a known affine and to measure how well two images agree.

References
----------
Avants et al., NeuroImage 54 (2011) 2033-2044 (ANTs, the similarity metrics).
Routier et al., Front. Neuroinform. 15 (2021) 689675 (Clinica's t1-linear, pet-linear).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .folders import new_folder

__all__ = [
    "ANTS_INSTALL",
    "PREPROCESSING_STEPS",
    "ants_available",
    "mni_template",
    "rigid_affine",
    "random_rigid_affine",
    "move_image",
    "similarity",
    "Registration",
    "register",
    "apply_registration",
    "register_pet_via_mri",
    "perturb_folder",
    "register_folder",
]

#: What to install for registration.
ANTS_INSTALL = 'pip install "neurohash-lite[preprocess]"  (or: pip install antspyx)'

#: The preprocessing the two papers name, the tool that does each step, and
#: what this book does. Tao & An (2021, §4.1) list AC-PC correction,
#: intensity correction, skull stripping, cerebellum removal and affine
#: PET-to-sMRI registration; Wang & Zeng (2023) name "a single slice and
#: strong pairing" and no other step.
PREPROCESSING_STEPS = [
    {"step": "AC-PC alignment (reorientation to a standard frame)", "paper": "Tao & An",
     "tool": "Clinica t1-linear (ANTs rigid + affine to MNI152); ants.registration(type_of_transform='Rigid')",
     "book": "subsumed by the affine registration to MNI152 (this chapter)"},
    {"step": "Intensity (bias-field) correction", "paper": "Tao & An",
     "tool": "ANTs N4 (ants.n4_bias_field_correction), run by Clinica t1-linear",
     "book": "not done; the loader z-scores each scan inside the brain mask"},
    {"step": "Skull stripping", "paper": "Tao & An",
     "tool": "Clinica t1-volume (SPM), FSL BET, or a template brain mask after registration",
     "book": "template mask: after registration, voxels outside nilearn's MNI152 brain mask are set to 0"},
    {"step": "Cerebellum removal", "paper": "Tao & An",
     "tool": "an atlas mask in MNI space (e.g. AAL's cerebellar labels) after registration",
     "book": "not done; the book's slices lie at z = -18, 6 and 30 mm, mostly above the cerebellum"},
    {"step": "Affine registration of sMRI to MNI152", "paper": "(implied by both)",
     "tool": "Clinica t1-linear; ants.registration(type_of_transform='Affine')",
     "book": "done: register() (ANTsPy) for scans not in MNI space"},
    {"step": "Affine PET-to-sMRI registration", "paper": "Tao & An",
     "tool": "Clinica pet-linear (rigid PET to T1w, then the T1w's transform)",
     "book": "done: register_pet_via_mri() (ANTsPy)"},
    {"step": "PET intensity normalisation", "paper": "(not named)",
     "tool": "Clinica pet-linear: SUVR with the pons as reference",
     "book": "global z-score inside the brain mask (proportional scaling)"},
    {"step": "One slice per scan, paired subjects", "paper": "Wang & Zeng",
     "tool": "nilearn.image.resample_img onto a slice grid",
     "book": "done: 3 axial slices (or a 3D volume) on a fixed MNI grid"},
]


def ants_available() -> bool:
    """Whether ANTsPy (``import ants``) is installed."""
    try:
        return importlib.util.find_spec("ants") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as absent
        return False


def _ants():
    if not ants_available():
        raise ImportError(f"registration needs ANTsPy, which is not installed; install it with: {ANTS_INSTALL}")
    import ants

    return ants


def mni_template(resolution_mm: int = 2):
    """nilearn's MNI152 T1 template (ships in the nilearn wheel; no download).

    Parameters
    ----------
    resolution_mm : {1, 2}

    Returns
    -------
    nibabel.Nifti1Image
        float32, 197 x 233 x 189 voxels at 1 mm or 99 x 117 x 95 at 2 mm.
    """
    import nibabel as nib
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=resolution_mm)
    return nib.Nifti1Image(np.asarray(template.get_fdata(), dtype=np.float32), template.affine)


def rigid_affine(rotation_deg=(0.0, 0.0, 0.0), shift_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A 4 x 4 rigid transform of world coordinates (mm): rotations about x, y, z, then a shift.

    Parameters
    ----------
    rotation_deg : (3,) float
        Rotations about the x (pitch), y (roll) and z (yaw) axes through the
        world origin (the anterior commissure in MNI space), in degrees.
    shift_mm : (3,) float
        Translation in mm.

    Returns
    -------
    ndarray (4, 4), float64
    """
    ax, ay, az = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ ry @ rx
    affine[:3, 3] = np.asarray(shift_mm, dtype=np.float64)
    return affine


def random_rigid_affine(rng: np.random.Generator, max_rotation_deg: float = 10.0,
                        max_shift_mm: float = 8.0) -> np.ndarray:
    """A rigid transform with each rotation uniform in ±``max_rotation_deg`` and each shift in ±``max_shift_mm``."""
    return rigid_affine(rng.uniform(-max_rotation_deg, max_rotation_deg, 3),
                        rng.uniform(-max_shift_mm, max_shift_mm, 3))


def move_image(image, affine: np.ndarray):
    """The same voxels placed elsewhere in the world: the header's affine becomes ``affine @ image.affine``.

    What a scan looks like before registration: the head lies at another
    position and angle in the scanner's coordinates.

    Parameters
    ----------
    image : nibabel image or path-like
    affine : ndarray (4, 4)

    Returns
    -------
    nibabel.Nifti1Image, float32
    """
    import nibabel as nib

    image = nib.load(image) if isinstance(image, (str, os.PathLike)) else image
    return nib.Nifti1Image(np.asarray(image.get_fdata(), dtype=np.float32), np.asarray(affine) @ image.affine)


def similarity(image, reference) -> float:
    """Pearson correlation of ``image`` resampled onto ``reference``'s grid with ``reference``, over all voxels.

    Parameters
    ----------
    image, reference : nibabel images or path-likes (3D)

    Returns
    -------
    float in [-1, 1]
        1 for images that agree voxel for voxel up to a linear intensity change.
    """
    import nibabel as nib
    from nilearn import image as nimage

    image = nib.load(image) if isinstance(image, (str, os.PathLike)) else image
    reference = nib.load(reference) if isinstance(reference, (str, os.PathLike)) else reference
    resampled = nimage.resample_to_img(image, reference, interpolation="linear", force_resample=True,
                                       copy_header=True)
    a = np.asarray(resampled.get_fdata(), dtype=np.float64).ravel()
    b = np.asarray(reference.get_fdata(), dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class Registration:
    """The result of :func:`register`.

    Attributes
    ----------
    image : nibabel.Nifti1Image
        The moving image resampled onto the fixed image's grid, float32.
    transforms : list of str
        ANTs transform files (fixed <- moving), for :func:`apply_registration`;
        they live in ``workdir`` until it is deleted.
    fixed : nibabel.Nifti1Image
        The fixed image (its grid is the output grid).
    transform_type : str
    seconds : float
        Wall time of ``ants.registration``.
    """

    image: object
    transforms: list
    fixed: object
    transform_type: str
    seconds: float


def _load(image, name: str):
    import nibabel as nib

    if isinstance(image, (str, os.PathLike)):
        from .data.bids import load_volume

        data, affine = load_volume(image)  # the loader's checks: a clear error naming the file
        return nib.Nifti1Image(data, affine)
    if not hasattr(image, "affine") or len(image.shape) != 3:
        raise ValueError(f"{name} must be a 3D NIfTI image or a path to one, got {type(image).__name__} "
                         f"of shape {getattr(image, 'shape', None)}")
    return nib.Nifti1Image(np.asarray(image.get_fdata(), dtype=np.float32), image.affine)


def _to_ants(ants, image, folder: Path, name: str):
    path = folder / f"{name}.nii"
    image.to_filename(path)
    return ants.image_read(str(path))


def _from_ants(ants_image, folder: Path, name: str):
    import nibabel as nib

    path = folder / f"{name}.nii"
    ants_image.to_file(str(path))
    loaded = nib.load(path)
    return nib.Nifti1Image(np.asarray(loaded.get_fdata(), dtype=np.float32), loaded.affine)


def register(moving, fixed=None, *, transform_type: str = "Affine", seed: int = 0, fast: bool = False,
             workdir: str | os.PathLike | None = None) -> Registration:
    """Register ``moving`` to ``fixed`` (default: the MNI152 template at 2 mm) with ``ants.registration``.

    Parameters
    ----------
    moving : nibabel image or path-like
        A 3D image (a path is read with the loader's checks).
    fixed : nibabel image or path-like, optional
        The target; default :func:`mni_template` at 2 mm.
    transform_type : str
        Any ``type_of_transform`` of ``ants.registration``: ``"Rigid"`` (PET to
        its MRI), ``"Affine"`` (to a template, Clinica's t1-linear), ``"SyN"``
        (non-linear; slower).
    seed : int
        ANTs' random sampling seed.
    fast : bool
        Stop at half resolution: iterations 200/100/0 at shrink factors
        6/4/2 (ANTsPy's default runs 2100/1200/1200/10 at 6/4/2/1, stopping
        each level when it converges). On the MNI152 template moved by 12
        degrees and 10 mm: about 0.6 s instead of 4 s at 2 mm, 0.15 s
        instead of 0.7 s at 4 mm, with a correlation to the original of
        0.9997 and 0.998 instead of 1.0000.
    workdir : path-like, optional
        Where ANTs writes its transform files; default a new temporary folder.

    Returns
    -------
    Registration

    Raises
    ------
    ImportError
        If ANTsPy is not installed, saying what to install.
    ValueError
        If an input is not a readable 3D image (naming it).
    """
    ants = _ants()
    moving = _load(moving, "moving")
    fixed = mni_template(2) if fixed is None else _load(fixed, "fixed")
    folder = Path(tempfile.mkdtemp(prefix="neurohash-ants-") if workdir is None else workdir)
    folder.mkdir(parents=True, exist_ok=True)
    options = {}
    if fast:
        options = {"aff_iterations": (200, 100, 0), "aff_shrink_factors": (6, 4, 2),
                   "aff_smoothing_sigmas": (3, 2, 1)}
    start = time.perf_counter()
    result = ants.registration(fixed=_to_ants(ants, fixed, folder, "fixed"),
                               moving=_to_ants(ants, moving, folder, "moving"),
                               type_of_transform=transform_type, random_seed=int(seed),
                               outprefix=str(folder / "tx_"), **options)
    seconds = time.perf_counter() - start
    warped = _from_ants(result["warpedmovout"], folder, "warped")
    return Registration(warped, list(result["fwdtransforms"]), fixed, transform_type, seconds)


def apply_registration(image, transforms, reference, *, workdir: str | os.PathLike | None = None):
    """Resample ``image`` onto ``reference`` through ANTs transforms (``ants.apply_transforms``, linear).

    Parameters
    ----------
    image : nibabel image or path-like
    transforms : list of str
        ANTs transform files, applied last to first (ANTs' order: to map
        moving -> A -> fixed, pass ``fixed<-A`` transforms, then ``A<-moving``).
    reference : nibabel image or path-like
        The output grid.

    Returns
    -------
    nibabel.Nifti1Image, float32
    """
    ants = _ants()
    image, reference = _load(image, "image"), _load(reference, "reference")
    folder = Path(tempfile.mkdtemp(prefix="neurohash-ants-") if workdir is None else workdir)
    warped = ants.apply_transforms(fixed=_to_ants(ants, reference, folder, "reference"),
                                   moving=_to_ants(ants, image, folder, "image"),
                                   transformlist=list(transforms), interpolator="linear")
    return _from_ants(warped, folder, "applied")


def register_pet_via_mri(pet, mri, fixed=None, *, seed: int = 0, fast: bool = False,
                         mri_registration: Registration | None = None):
    """Clinica's pet-linear in two ANTs calls: PET rigidly onto its MRI, then the MRI's transform to the template.

    Parameters
    ----------
    pet, mri : nibabel images or path-likes
        The same subject's PET and sMRI, in any (shared or not) space.
    fixed : optional
        The template (default MNI152 at 2 mm).
    seed : int
    fast : bool
        See :func:`register`.
    mri_registration : Registration, optional
        The MRI's registration to ``fixed`` when already done.

    Returns
    -------
    pet_in_template : nibabel.Nifti1Image
    mri_registration : Registration
    """
    if mri_registration is None:
        mri_registration = register(mri, fixed, transform_type="Affine", seed=seed, fast=fast)
    pet_to_mri = register(pet, mri, transform_type="Rigid", seed=seed, fast=fast)
    transforms = list(mri_registration.transforms) + list(pet_to_mri.transforms)
    return apply_registration(pet, transforms, mri_registration.fixed), mri_registration


# --------------------------------------------------------------------------
# Whole folders
# --------------------------------------------------------------------------
def _copy_metadata(src: Path, tmp: Path) -> None:
    import shutil

    for name in ("participants.tsv", "participants.json", "dataset_description.json", "README"):
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)


def perturb_folder(src, out, *, seed: int = 0, max_rotation_deg: float = 10.0, max_shift_mm: float = 8.0) -> dict:
    """Copy a BIDS folder with every subject's head moved by its own random rigid transform.

    A subject's MRI and PET move together (the head's position in the
    scanner, with the PET already aligned to its MRI), so the folder is what
    a reader's unregistered scans look like. Only headers change: the voxels
    are those of the source.

    Parameters
    ----------
    src : path-like
        A folder :func:`~neurohash_lite.data.bids.scan_layout` reads.
    out : path-like
        A new folder (written under a temporary name, then renamed).
    seed : int
    max_rotation_deg, max_shift_mm : float
        See :func:`random_rigid_affine`.

    Returns
    -------
    dict of str to ndarray (4, 4)
        The transform each subject got.
    """
    import nibabel as nib

    from .data.bids import scan_layout

    src, out = Path(src), Path(out)
    layout = scan_layout(src)
    rng = np.random.default_rng([seed, 11])
    moved = {}
    with new_folder(out) as tmp:
        _copy_metadata(src, tmp)
        for subject, mri, pet in zip(layout.participants.participant_ids, layout.mri_paths, layout.pet_paths):
            affine = random_rigid_affine(rng, max_rotation_deg, max_shift_mm)
            moved[subject] = affine
            for path in (mri, pet):
                if path is not None:
                    target = tmp / path.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    image = nib.load(path)
                    nib.save(move_image(image, affine), target)
    return moved


def register_folder(src, out, *, fixed=None, subjects=None, pet: str = "mri_transform", fast: bool = False,
                    seed: int = 0, progress=None) -> dict:
    """Copy a BIDS folder with its scans registered to a template by ANTsPy.

    Parameters
    ----------
    src : path-like
        A folder :func:`~neurohash_lite.data.bids.scan_layout` reads.
    out : path-like
        A new folder (written under a temporary name, then renamed).
    fixed : nibabel image or path-like, optional
        The template; default :func:`mni_template` at 2 mm. For a coarse
        cohort pass the template resampled to its grid (faster).
    subjects : collection of str, optional
        Register only these subjects; the others' files are copied as they are.
    pet : {"mri_transform", "via_mri"}
        ``"mri_transform"``: the PET gets its MRI's transform (the PET already
        lies on its MRI); ``"via_mri"``: a rigid PET-to-MRI step first
        (:func:`register_pet_via_mri`).
    fast : bool
        See :func:`register`.
    seed : int
    progress : callable, optional
        Called with each subject id after it is done.

    Returns
    -------
    dict of str to float
        Seconds ANTs took for each registered subject.

    Raises
    ------
    ImportError
        If ANTsPy is missing (before anything is written).
    """
    import shutil

    import nibabel as nib

    from .data.bids import scan_layout

    if pet not in ("mri_transform", "via_mri"):
        raise ValueError(f"pet={pet!r} must be 'mri_transform' or 'via_mri'")
    _ants()
    src, out = Path(src), Path(out)
    layout = scan_layout(src)
    fixed = mni_template(2) if fixed is None else _load(fixed, "fixed")
    wanted = None if subjects is None else set(subjects)
    seconds = {}
    with new_folder(out) as tmp:
        _copy_metadata(src, tmp)
        for subject, mri, pet_path in zip(layout.participants.participant_ids, layout.mri_paths, layout.pet_paths):
            targets = [tmp / p.relative_to(src) for p in (mri, pet_path) if p is not None]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
            if wanted is not None and subject not in wanted:
                for path, target in zip([p for p in (mri, pet_path) if p is not None], targets):
                    shutil.copy2(path, target)
                continue
            with tempfile.TemporaryDirectory(prefix="neurohash-ants-") as work:
                result = register(mri, fixed, seed=seed, fast=fast, workdir=work)
                nib.save(result.image, targets[0])
                spent = result.seconds
                if pet_path is not None:
                    if pet == "via_mri":
                        image, _ = register_pet_via_mri(pet_path, mri, fixed, seed=seed, fast=fast,
                                                        mri_registration=result)
                    else:
                        image = apply_registration(pet_path, result.transforms, fixed, workdir=work)
                    nib.save(image, targets[1])
            seconds[subject] = spent
            if progress is not None:
                progress(subject)
    return seconds
