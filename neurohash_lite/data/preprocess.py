"""From an image on disk to a model input: resample to a working grid, normalise.

Images are expected in MNI152 space (the synthetic cohort is; real data is
after Clinica's ``t1-linear`` / ``pet-linear`` pipelines or any affine
registration to MNI). Each image is

1. smoothed, when the working grid is coarser than the image, with a Gaussian
   of full width at half maximum ``sqrt(t^2 - s^2)`` mm (t the target spacing,
   s the image's voxel size), so that resampling does not alias;
2. resampled onto the working grid with nilearn's ``resample_img`` (trilinear);
3. z-scored inside the MNI152 brain mask on that grid (mean 0, sd 1 over the
   brain), with 0 outside it. Per image and per modality, this removes the
   scanner's intensity scale on the MRI and the injected dose on the PET
   (a global normalisation, like the proportional scaling of PET studies).

Arrays then take the layout the models read: 2D stacks ``(C, H, W)`` and 3D
volumes ``(D, H, W)``, with C or D running from inferior to superior (z up),
H from anterior to posterior (rows top to bottom, as radiologists display an
axial slice) and W from the subject's left to right (columns left to right,
the "neurological" convention nilearn also uses). :func:`to_model_layout` and
:func:`from_model_layout` convert.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from .anatomy import Grid, slice_grid, volume_grid

__all__ = [
    "working_grids",
    "brain_mask_on_grid",
    "resample_to_grid",
    "normalize_in_mask",
    "to_model_layout",
    "from_model_layout",
    "preprocess_image",
]


def working_grids(spatial_dims: int, image_size: int, slice_levels_mm, voxel_size_mm: float) -> list[Grid]:
    """The grid(s) an image is resampled onto.

    For 3D a single :func:`~neurohash_lite.data.anatomy.volume_grid`. For 2D one
    grid holding every slice when the levels are evenly spaced (one resampling
    call), else one grid per slice.
    """
    if spatial_dims == 3:
        return [volume_grid(voxel_size_mm)]
    levels = [float(z) for z in slice_levels_mm]
    steps = np.diff(levels)
    if len(levels) > 1 and np.all(steps > 0) and np.allclose(steps, steps[0]):
        grid = slice_grid(image_size, levels[0])
        affine = grid.affine.copy()
        affine[2, 2] = steps[0]
        return [Grid(affine=affine, shape=(image_size, image_size, len(levels)))]
    return [slice_grid(image_size, z) for z in levels]


def _grid_key(grid: Grid) -> tuple:
    return tuple(np.round(grid.affine, 6).ravel()) + tuple(grid.shape)


@lru_cache(maxsize=32)
def _mask_cached(key: tuple) -> np.ndarray:
    import nibabel as nib
    from nilearn import datasets, image

    affine = np.asarray(key[:16]).reshape(4, 4)
    shape = tuple(int(n) for n in key[16:])
    template = datasets.load_mni152_brain_mask(resolution=1)
    # As a float image: the fraction of brain in each target voxel, then thresholded.
    template = nib.Nifti1Image(template.get_fdata(dtype=np.float32), template.affine)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Resampling binary images")
        resampled = image.resample_img(
            template, target_affine=affine, target_shape=shape, interpolation="linear",
            force_resample=True, copy_header=True,
        )
    mask = resampled.get_fdata() > 0.5
    mask.setflags(write=False)
    return mask


def brain_mask_on_grid(grid: Grid) -> np.ndarray:
    """The MNI152 brain mask (nilearn's, bundled) resampled onto a grid, as booleans."""
    return _mask_cached(_grid_key(grid))


def resample_to_grid(data: np.ndarray, affine: np.ndarray, grid: Grid) -> np.ndarray:
    """Smooth (when coarsening) and resample a 3D image onto a grid with nilearn.

    Parameters
    ----------
    data : ndarray, shape (I, J, K), float32
    affine : ndarray, shape (4, 4)
    grid : Grid

    Returns
    -------
    ndarray, grid.shape, float32
    """
    import nibabel as nib
    from nilearn import image

    source = float(np.mean(np.sqrt((affine[:3, :3] ** 2).sum(axis=0))))
    target = float(np.min(grid.voxel_size_mm[:2]))
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    if target > source * 1.01:
        img = image.smooth_img(img, fwhm=float(np.sqrt(target**2 - source**2)))
    resampled = image.resample_img(
        img, target_affine=grid.affine, target_shape=grid.shape, interpolation="linear",
        force_resample=True, copy_header=True,
    )
    return np.asarray(resampled.get_fdata(dtype=np.float32))


def normalize_in_mask(array: np.ndarray, mask: np.ndarray, name: str = "image") -> np.ndarray:
    """Z-score an image inside a mask; 0 outside.

    Parameters
    ----------
    array : ndarray, float
    mask : ndarray of bool, same shape
    name : str
        Used in the error message.

    Returns
    -------
    ndarray, float32

    Raises
    ------
    ValueError
        If the image is constant inside the mask (nothing to normalise).
    """
    values = array[mask]
    std = float(values.std()) if values.size else 0.0
    if not std > 0:
        raise ValueError(f"{name}: constant inside the brain mask; is it empty or outside MNI space?")
    out = np.zeros(array.shape, dtype=np.float32)
    out[mask] = (values - values.mean()) / std
    return out


def to_model_layout(array_xyz: np.ndarray) -> np.ndarray:
    """(x, y, z) array on a grid -> (z, y from anterior to posterior, x), contiguous."""
    return np.ascontiguousarray(np.asarray(array_xyz).transpose(2, 1, 0)[:, ::-1, :])


def from_model_layout(array_zyx: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_model_layout`."""
    return np.ascontiguousarray(np.asarray(array_zyx)[:, ::-1, :].transpose(2, 1, 0))


def preprocess_image(path, grids: list[Grid]) -> np.ndarray:
    """Load, check, resample and normalise one image.

    Parameters
    ----------
    path : path-like
        A NIfTI file (checked by :func:`~neurohash_lite.data.bids.load_volume`).
    grids : list of Grid
        From :func:`working_grids`.

    Returns
    -------
    ndarray, float32
        ``(C, H, W)`` for 2D grids, ``(D, H, W)`` for a 3D grid (both in the
        model layout, see the module docstring).
    """
    from .bids import load_volume

    data, affine = load_volume(path)
    resampled = np.concatenate([resample_to_grid(data, affine, g) for g in grids], axis=2)
    mask = np.concatenate([brain_mask_on_grid(g) for g in grids], axis=2)
    return to_model_layout(normalize_in_mask(resampled, mask, name=str(path)))
