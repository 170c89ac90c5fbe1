"""Load a cohort folder into arrays the models read: :func:`load_cohort` and :func:`load_tier_cohort`.

>>> import shutil, tempfile
>>> data = tempfile.mkdtemp()                     # a scratch data_dir; chapters leave it out (runtime.data_dir)
>>> cohort = load_tier_cohort("smoke", data_dir=data)  # generates the tiny cohort once, then reuses it
>>> cohort.mri.shape, cohort.pet.shape
((36, 3, 32, 32), (30, 3, 32, 32))
>>> mri, pet, labels = cohort.mri[cohort.paired_index], cohort.pet, cohort.paired_labels
>>> mri.shape == pet.shape, labels.shape, str(mri.dtype)
(True, (30,), 'float32')
>>> load_tier_cohort("smoke", data_dir=data).root == cohort.root   # the second call reuses the folder
True
>>> shutil.rmtree(data)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .anatomy import default_slice_levels, volume_grid
from .bids import scan_layout
from .cache import cache_key, files_fingerprint, load_arrays, save_arrays
from .preprocess import from_model_layout, preprocess_image, working_grids
from .synthetic import DIAGNOSES, GenerativeModel, cohort_description, description_digest, make_synthetic_cohort

__all__ = ["Cohort", "load_cohort", "load_tier_cohort", "tier_cohort_root"]


@dataclass(frozen=True, eq=False)
class Cohort:
    """A cohort in memory, one row per subject that has an MRI.

    Attributes
    ----------
    root : pathlib.Path
        The BIDS-like folder it was read from.
    subject_ids : ndarray (n,), str
        ``participant_id`` of every subject with an MRI, in ``participants.tsv`` order.
    labels : ndarray (n,), int64
        0 NC, 1 MCI, 2 AD.
    age, severity : ndarray (n,), float64
        Years and the synthetic latent severity; NaN where unknown (real data
        has no severity).
    mri : ndarray, float32
        ``(n, C, H, W)`` for 2D: C = ``n_slices`` axial slices (inferior to
        superior) stacked as channels, H x W = ``image_size`` x ``image_size``
        (rows anterior to posterior, columns left to right); or
        ``(n, 1, D, H, W)`` for 3D. Z-scored inside the brain mask, 0 outside.
    has_pet : ndarray (n,), bool
        Which subjects also have a PET. The others are MRI-only: kept for
        single-modality use (pretraining), never paired.
    pet : ndarray, float32
        ``(n_paired, ...)`` with the layout of ``mri``; row j belongs to
        subject ``paired_index[j]``.
    spatial_dims : int
        2 or 3.
    image_size : int
        2D in-plane size (pixels); for 3D, unused.
    slice_levels_mm : tuple of float
        2D: MNI z of each slice (channel); 3D: empty.
    voxel_size_mm : float
        3D voxel size; 2D: the in-plane pixel size.
    grid_affine : ndarray (4, 4) or None
        Affine of the (x, y, z) grid the arrays were resampled onto (None for
        2D slices at uneven levels); used by :meth:`to_nifti`.
    pet_only_skipped : tuple of str
        Listed subjects with a PET and no MRI (not loaded).
    notes : tuple of str
        Choices the loader made (sessions, runs, tracers).
    """

    root: Path
    subject_ids: np.ndarray
    labels: np.ndarray
    age: np.ndarray
    severity: np.ndarray
    mri: np.ndarray
    has_pet: np.ndarray
    pet: np.ndarray
    spatial_dims: int
    image_size: int
    slice_levels_mm: tuple[float, ...]
    voxel_size_mm: float
    grid_affine: np.ndarray | None
    pet_only_skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def n_subjects(self) -> int:
        """Subjects with an MRI."""
        return int(len(self.labels))

    @property
    def paired_index(self) -> np.ndarray:
        """Indices (into the subject arrays) of the subjects with a PET, int64, in row order of ``pet``."""
        return np.flatnonzero(self.has_pet)

    @property
    def n_paired(self) -> int:
        return int(self.has_pet.sum())

    @property
    def n_mri_only(self) -> int:
        """Subjects with an MRI and no PET (ADNI1 has 424)."""
        return int((~self.has_pet).sum())

    @property
    def paired_labels(self) -> np.ndarray:
        """Labels of the paired subjects, row-aligned with ``pet``."""
        return self.labels[self.has_pet]

    @property
    def paired_subject_ids(self) -> np.ndarray:
        return self.subject_ids[self.has_pet]

    @property
    def paired_mri(self) -> np.ndarray:
        """MRI of the paired subjects, row-aligned with ``pet`` (a copy)."""
        return self.mri[self.has_pet]

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Subjects per class and modality: ``{"MRI": {...}, "PET": {...}, "MRI only": {...}}``."""
        rows = {"MRI": np.ones_like(self.has_pet), "PET": self.has_pet, "MRI only": ~self.has_pet}
        return {
            name: {d: int(((self.labels == c) & which).sum()) for c, d in enumerate(DIAGNOSES)}
            for name, which in rows.items()
        }

    def summary(self) -> str:
        """A small table of counts per class and modality, and the array shapes."""
        counts = self.class_counts()
        lines = [f"{'':>9}" + "".join(f"{d:>6}" for d in DIAGNOSES) + f"{'total':>7}"]
        for name, row in counts.items():
            lines.append(f"{name:>9}" + "".join(f"{row[d]:>6}" for d in DIAGNOSES) + f"{sum(row.values()):>7}")
        lines.append(f"mri {tuple(self.mri.shape)}, pet {tuple(self.pet.shape)}, float32")
        if self.pet_only_skipped:
            lines.append(f"{len(self.pet_only_skipped)} subject(s) with a PET and no MRI skipped")
        return "\n".join(lines)

    def to_nifti(self, array: np.ndarray):
        """Wrap one subject's array (or a map computed from several) as a NIfTI image in MNI space.

        Parameters
        ----------
        array : ndarray
            ``(C, H, W)`` / ``(1, D, H, W)`` / ``(D, H, W)`` in this cohort's layout.

        Returns
        -------
        nibabel.Nifti1Image
            For plotting with nilearn (``plot_anat``, ``plot_stat_map``).
        """
        import nibabel as nib

        if self.grid_affine is None:
            raise ValueError("this cohort's slices are not evenly spaced; no single affine describes them")
        array = np.asarray(array, dtype=np.float32)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        expected = self.mri.shape[-3:] if self.spatial_dims == 3 else self.mri.shape[1:]
        if array.shape != tuple(expected):
            raise ValueError(f"array has shape {array.shape}; this cohort's images are {tuple(expected)}")
        return nib.Nifti1Image(from_model_layout(array), self.grid_affine)


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be an integer between {low} and {high}")
    return int(value)


def load_cohort(
    root: str | os.PathLike,
    spatial_dims: int = 2,
    image_size: int = 64,
    n_slices: int = 3,
    voxel_size_mm: float = 6.0,
    *,
    slice_levels_mm=None,
    cache_dir: str | os.PathLike | bool | None = None,
    diagnosis_column: str = "diagnosis",
    diagnosis_map: dict[str, int] | None = None,
    mri_suffix: str | None = None,
    pet_suffix: str | None = None,
    session: str | None = None,
    verbose: bool = False,
) -> Cohort:
    """Read any BIDS-like folder into arrays: 2D axial slices or 3D volumes.

    Parameters
    ----------
    root : path-like
        The cohort folder (synthetic, or real data in MNI space, see
        :mod:`neurohash_lite.data.bids`).
    spatial_dims : {2, 3}
        2: stacks of axial slices; 3: whole volumes.
    image_size : int
        2D: pixels per side of each slice (16 to 256; the slices span a
        192 mm field of view, so 64 gives 3 mm pixels).
    n_slices : int
        2D: slices per scan, stacked as channels.
    voxel_size_mm : float
        3D: isotropic voxel size of the volume grid (1 to 16 mm).
    slice_levels_mm : sequence of float, optional
        2D: MNI z of each slice; default
        :func:`~neurohash_lite.data.anatomy.default_slice_levels` (``-18, 6, 30``
        for three: through the hippocampus, the ventricles and posterior
        cingulate, and the precuneus and angular gyri).
    cache_dir : path-like, False or None
        Where preprocessed arrays are cached; None for ``<data_dir>/cache``
        (:func:`neurohash_lite.runtime.data_dir`), False to disable caching.
    diagnosis_column, diagnosis_map, mri_suffix, pet_suffix, session
        See :func:`~neurohash_lite.data.bids.scan_layout`.
    verbose : bool
        Print where the arrays came from and how long it took.

    Returns
    -------
    Cohort

    Raises
    ------
    ValueError
        For bad parameters and every bad input of
        :func:`~neurohash_lite.data.bids.scan_layout` and
        :func:`~neurohash_lite.data.bids.load_volume`, naming the file.
    """
    from .. import runtime

    start = time.perf_counter()
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"spatial_dims={spatial_dims!r} must be 2 or 3")
    if spatial_dims == 2:
        image_size = _check_int("image_size", image_size, 16, 256)
        n_slices = _check_int("n_slices", n_slices, 1, 32)
        levels = default_slice_levels(n_slices) if slice_levels_mm is None else tuple(float(z) for z in slice_levels_mm)
        if len(levels) != n_slices:
            raise ValueError(f"slice_levels_mm has {len(levels)} levels but n_slices={n_slices}")
        if not all(-80 <= z <= 90 for z in levels):
            raise ValueError(f"slice_levels_mm={levels} must lie within the brain, -80 to 90 mm")
        grid_parameters = {"spatial_dims": 2, "image_size": image_size, "slice_levels_mm": levels}
    else:
        voxel_size_mm = volume_grid(voxel_size_mm).voxel_size_mm[0]
        levels = ()
        grid_parameters = {"spatial_dims": 3, "voxel_size_mm": voxel_size_mm}
    grids = working_grids(spatial_dims, image_size, levels, voxel_size_mm)

    layout = scan_layout(root, diagnosis_column=diagnosis_column, diagnosis_map=diagnosis_map,
                         mri_suffix=mri_suffix, pet_suffix=pet_suffix, session=session)
    subject_ids = np.asarray(layout.participants.participant_ids)
    has_pet = np.asarray([p is not None for p in layout.pet_paths])
    images = list(layout.mri_paths) + [p for p in layout.pet_paths if p is not None]

    cache_path = None
    if cache_dir is not False:
        folder = runtime.data_dir() / "cache" if cache_dir is None else Path(cache_dir)
        key = cache_key({
            "root": str(layout.root.resolve()),
            "files": files_fingerprint([layout.participants.path, *images], layout.root),
            "mri_suffix": layout.mri_suffix, "pet_suffix": layout.pet_suffix,
            "diagnosis_column": diagnosis_column, "diagnosis_map": sorted((diagnosis_map or {}).items()),
            "session": session, **grid_parameters,
        })
        cache_path = folder / f"{layout.root.name}-{key[:20]}.npz"
    cached = load_arrays(cache_path) if cache_path is not None else None
    if cached is not None and np.array_equal(cached.get("subject_ids"), subject_ids):
        mri, pet, source = cached["mri"], cached["pet"], f"cache {cache_path}"
    else:
        def stack(paths):
            arrays = [preprocess_image(p, grids) for p in paths]
            out = np.stack(arrays) if arrays else np.zeros((0, len(levels), image_size, image_size), np.float32)
            return out[:, None] if spatial_dims == 3 and len(arrays) else out

        mri = stack(layout.mri_paths)
        pet = stack([p for p in layout.pet_paths if p is not None])
        if spatial_dims == 3 and len(pet) == 0:
            pet = np.zeros((0, *mri.shape[1:]), np.float32)
        source = f"{len(images)} images"
        if cache_path is not None:
            save_arrays(cache_path, {"mri": mri, "pet": pet, "subject_ids": subject_ids})
    if len(grids) == 1:
        grid_affine = grids[0].affine
    else:
        grid_affine = None
    cohort = Cohort(
        root=layout.root,
        subject_ids=subject_ids,
        labels=layout.participants.labels,
        age=layout.participants.age,
        severity=layout.participants.severity,
        mri=mri,
        has_pet=has_pet,
        pet=pet,
        spatial_dims=spatial_dims,
        image_size=image_size if spatial_dims == 2 else 0,
        slice_levels_mm=levels,
        voxel_size_mm=float(grids[0].voxel_size_mm[0]),
        grid_affine=grid_affine,
        pet_only_skipped=tuple(layout.pet_only),
        notes=tuple(layout.notes),
    )
    if verbose:
        print(f"Loaded {cohort.n_subjects} subjects ({cohort.n_paired} paired, {cohort.n_mri_only} MRI-only) "
              f"from {source} in {time.perf_counter() - start:.1f} s")
    return cohort


def tier_cohort_root(tier, seed: int = 0, data_dir: str | os.PathLike | None = None, overlap: float = 1.0) -> Path:
    """The folder :func:`load_tier_cohort` uses for a tier's synthetic cohort.

    ``<data_dir>/cohorts/<preset>-seed<seed>-<digest>``, the digest naming the
    generative model's constants, so a changed model never reuses an old cohort.
    """
    from .. import runtime

    tier = runtime.resolve_tier(tier) if isinstance(tier, str) else tier
    description = cohort_description(tier.preset, seed, 4.0, float(overlap), GenerativeModel())
    return runtime.data_dir(data_dir) / "cohorts" / f"{tier.preset}-seed{seed}-{description_digest(description)}"


def load_tier_cohort(tier, seed: int = 0, data_dir: str | os.PathLike | None = None,
                     *, overlap: float = 1.0, verbose: bool = False) -> Cohort:
    """The one line a chapter uses: a tier's synthetic cohort, generated once, loaded at the tier's sizes.

    Parameters
    ----------
    tier : str or neurohash_lite.runtime.Tier
        ``"smoke"``, ``"book"``, ``"paper"`` or a resolved tier. Its ``preset``,
        ``spatial_dims``, ``image_size``, ``n_slices`` and ``voxel_size_mm`` are used.
    seed : int
        Seed of the cohort (each seed is its own cohort, generated once).
    data_dir : path-like, optional
        See :func:`neurohash_lite.runtime.data_dir`; cohorts go to
        ``<data_dir>/cohorts`` and cached arrays to ``<data_dir>/cache``.
    overlap : float
        Within-class spread of the severity (see :func:`make_synthetic_cohort`); default 1.
    verbose : bool

    Returns
    -------
    Cohort

    Notes
    -----
    The cohort is generated at 4 mm (:func:`make_synthetic_cohort`'s default)
    the first time and reused afterwards; its folder's name carries a digest
    of the generative model, the seed and the overlap.
    """
    from .. import runtime

    tier = runtime.resolve_tier(tier) if isinstance(tier, str) else tier
    root = tier_cohort_root(tier, seed, data_dir, overlap)
    start = time.perf_counter()
    existed = root.is_dir()
    make_synthetic_cohort(root, tier.preset, seed, overlap=overlap)
    if verbose and not existed:
        print(f"Generated the {tier.preset!r} cohort (seed {seed}) in {time.perf_counter() - start:.1f} s: {root}")
    return load_cohort(
        root, tier.spatial_dims, tier.image_size, tier.n_slices, tier.voxel_size_mm,
        cache_dir=runtime.data_dir(data_dir) / "cache", verbose=verbose,
    )
