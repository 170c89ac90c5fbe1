"""The MNI152 anatomy the book works in: templates, working grids and slice levels.

Everything here is in MNI152 space (the ICBM 2009 symmetric template that
nilearn ships, Fonov et al., 2011), in millimetres, with the RAS+ convention of
NIfTI: x grows to the subject's right, y to the front, z upwards.

Two kinds of working grid are used:

- a **volume grid**: an isotropic grid of voxel size ``v`` mm covering the box
  :data:`BRAIN_BOX_MM` (the template's brain plus a margin of 7 to 12 mm, so
  that subjects up to 6 % larger than the template still fit). Its sides,
  168 x 192 x 168 mm, are multiples of 1, 2, 3, 4, 6, 8 and 12 mm, so these
  voxel sizes tile it exactly (42 x 48 x 42 voxels at 4 mm);
- a **slice grid**: a square axial image of ``image_size`` pixels covering the
  192 x 192 mm field of view :data:`SLICE_FOV_MM` at a height z (mm). At 64
  pixels a pixel is 3 mm wide.

References
----------
Fonov et al., NeuroImage 54 (2011) 313-327 (the MNI152 2009 template).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = [
    "BRAIN_BOX_MM",
    "SLICE_FOV_MM",
    "SLICE_RANGE_MM",
    "Grid",
    "volume_grid",
    "slice_grid",
    "default_slice_levels",
    "Anatomy",
    "load_anatomy",
    "sample_volume",
]

#: (low, high) in mm along x, y and z of the volume grid.
BRAIN_BOX_MM = ((-84.0, 84.0), (-113.0, 79.0), (-79.0, 89.0))

#: (low, high) in mm along x and y of the square axial slices.
SLICE_FOV_MM = ((-96.0, 96.0), (-113.0, 79.0))

#: Lowest and highest default axial slice level z in mm. The default levels
#: spread evenly between them; with three slices they are z = -18, +6 and +30 mm:
#: -18 cuts the hippocampal head, amygdala and lateral temporal cortex (the MRI
#: atrophy regions, z = -23 to -15 mm), +6 the lateral ventricles, the
#: hippocampal tail and the lower posterior cingulate, and +30 the precuneus,
#: the angular gyri and the temporoparietal junction (the PET hypometabolism
#: regions, z = +21 to +36 mm). See :mod:`neurohash_lite.data.regions`.
SLICE_RANGE_MM = (-18.0, 30.0)


@dataclass(frozen=True)
class Grid:
    """A regular 3D grid in MNI space.

    Attributes
    ----------
    affine : ndarray, shape (4, 4), float64
        Maps voxel indices (i, j, k) to MNI coordinates in mm.
    shape : tuple of 3 int
        Number of voxels along i, j, k.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        """Voxel size along each axis, in mm."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    def points_mm(self) -> np.ndarray:
        """MNI coordinates of every voxel centre, shape (3, prod(shape)), float32, C order.

        Row 0 holds x, row 1 y and row 2 z (coordinates as rows keeps every
        operation on contiguous vectors).
        """
        ijk = np.indices(self.shape, dtype=np.float32).reshape(3, -1)
        return apply_affine(self.affine, ijk)


def _check_positive(name: str, value: float, low: float, high: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}={value!r} must be a number") from error
    if not (low <= value <= high):
        raise ValueError(f"{name}={value!r} must lie in [{low}, {high}]")
    return value


def volume_grid(voxel_size_mm: float) -> Grid:
    """The isotropic grid of voxel size ``voxel_size_mm`` over :data:`BRAIN_BOX_MM`.

    Parameters
    ----------
    voxel_size_mm : float
        Voxel size in mm, between 1 and 16.

    Returns
    -------
    Grid
        Voxel centres at ``low + v/2 + i v``; the number of voxels along an
        axis is ``round(side / v)``.
    """
    v = _check_positive("voxel_size_mm", voxel_size_mm, 1.0, 16.0)
    shape = tuple(max(1, int(round((hi - lo) / v))) for lo, hi in BRAIN_BOX_MM)
    affine = np.diag([v, v, v, 1.0])
    affine[:3, 3] = [lo + v / 2 for lo, _ in BRAIN_BOX_MM]
    return Grid(affine=affine, shape=shape)


def slice_grid(image_size: int, level_mm: float) -> Grid:
    """A one-voxel-thick axial grid of ``image_size`` x ``image_size`` pixels at height z.

    Parameters
    ----------
    image_size : int
        Pixels along x and along y (16 to 256).
    level_mm : float
        MNI z coordinate of the slice, in mm.

    Returns
    -------
    Grid
        Shape (image_size, image_size, 1) over :data:`SLICE_FOV_MM`.
    """
    if not isinstance(image_size, (int, np.integer)) or not 16 <= image_size <= 256:
        raise ValueError(f"image_size={image_size!r} must be an integer between 16 and 256")
    (x0, x1), (y0, y1) = SLICE_FOV_MM
    pixel = (x1 - x0) / image_size
    affine = np.diag([pixel, pixel, pixel, 1.0])
    affine[:3, 3] = [x0 + pixel / 2, y0 + pixel / 2, float(level_mm)]
    return Grid(affine=affine, shape=(int(image_size), int(image_size), 1))


def default_slice_levels(n_slices: int) -> tuple[float, ...]:
    """The default axial slice heights in mm for ``n_slices`` slices.

    Evenly spread over :data:`SLICE_RANGE_MM` (``(-18, 6, 30)`` for three);
    a single slice sits in the middle, at z = +6 mm.
    """
    if not isinstance(n_slices, (int, np.integer)) or not 1 <= n_slices <= 32:
        raise ValueError(f"n_slices={n_slices!r} must be an integer between 1 and 32")
    lo, hi = SLICE_RANGE_MM
    if n_slices == 1:
        return ((lo + hi) / 2,)
    return tuple(float(z) for z in np.linspace(lo, hi, n_slices))


@dataclass(frozen=True)
class Anatomy:
    """MNI152 tissue maps, smoothed for sampling at a working resolution.

    Attributes
    ----------
    affine : ndarray, shape (4, 4)
        Voxel-to-MNI affine of the template arrays (nilearn's 2 mm or 1 mm grid).
    gm, wm, csf, mask : ndarray, float32, template shape
        Grey matter, white matter and cerebrospinal-fluid probabilities and the
        brain mask, from nilearn's ``load_mni152_gm_template``,
        ``load_mni152_wm_template`` and ``load_mni152_brain_mask``. CSF is what
        the brain mask holds beyond grey and white matter,
        ``clip(mask - gm - wm, 0, 1)``.
    ventricle_centres_mm : ndarray, shape (2, 3)
        Centroids in mm of the left and right lateral ventricles, located in the
        template itself: the voxels with CSF probability above 0.5 inside the
        box |x| < 25, -45 < y < 25, -5 < z < 30 mm, split at x = 0. About
        (-9.6, -15, 13.5) and (9.6, -15, 13.5).
    """

    affine: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    mask: np.ndarray
    ventricle_centres_mm: np.ndarray


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4 x 4 affine to points stored as rows of coordinates.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
    points : ndarray, shape (3, N)

    Returns
    -------
    ndarray, shape (3, N), float32
    """
    points = np.asarray(points, dtype=np.float32)
    out = np.empty_like(points)
    for row in range(3):
        out[row] = np.float32(affine[row, 3])
        for col in range(3):
            if affine[row, col] != 0:
                out[row] += np.float32(affine[row, col]) * points[col]
    return out


def _ventricle_centres(csf: np.ndarray, affine: np.ndarray) -> np.ndarray:
    x, y, z = apply_affine(affine, np.indices(csf.shape).reshape(3, -1))
    inside = (csf.ravel() > 0.5) & (np.abs(x) < 25) & (y > -45) & (y < 25) & (z > -5) & (z < 30)
    points = np.stack([x, y, z], axis=1)[inside]
    return np.stack([points[points[:, 0] < 0].mean(axis=0), points[points[:, 0] > 0].mean(axis=0)])


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return array
    shape = [n // factor for n in array.shape]
    cropped = array[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor]
    return cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))


@lru_cache(maxsize=4)
def load_anatomy(voxel_size_mm: float = 4.0) -> Anatomy:
    """Load nilearn's MNI152 templates (bundled, no download), prepared for a grid.

    The 1 mm templates are averaged over blocks of ``b = max(1, floor(v / 2))``
    voxels per axis (v the working voxel size: 2 mm blocks for v = 4) and then
    smoothed with a Gaussian of full width at half maximum ``sqrt(v^2 - b^2)``
    mm, so that sampling them on the coarse grid does not alias.

    Parameters
    ----------
    voxel_size_mm : float
        The working voxel size the maps will be sampled at.

    Returns
    -------
    Anatomy
        Arrays are shared between calls (cached) and read-only.
    """
    from nilearn import datasets

    v = _check_positive("voxel_size_mm", voxel_size_mm, 1.0, 16.0)
    block = max(1, int(v // 2))
    mask_img = datasets.load_mni152_brain_mask(resolution=1)
    mask = mask_img.get_fdata(dtype=np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32) * mask
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32) * mask
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    gm, wm, csf, mask = (_block_mean(a, block).astype(np.float32) for a in (gm, wm, csf, mask))
    affine = mask_img.affine @ np.diag([block, block, block, 1.0])
    affine[:3, 3] += mask_img.affine[:3, :3] @ np.full(3, (block - 1) / 2)
    ventricles = _ventricle_centres(csf, affine)
    fwhm = np.sqrt(max(v**2 - block**2, 0.0))
    if fwhm > 0:
        sigma = fwhm / (2 * np.sqrt(2 * np.log(2))) / block
        gm, wm, csf, mask = (ndimage.gaussian_filter(a, sigma) for a in (gm, wm, csf, mask))
    for array in (gm, wm, csf, mask):
        array.setflags(write=False)
    return Anatomy(affine=affine, gm=gm, wm=wm, csf=csf, mask=mask, ventricle_centres_mm=ventricles)


def sample_volume(volume: np.ndarray, affine: np.ndarray, points_mm: np.ndarray, order: int = 1) -> np.ndarray:
    """Interpolate a volume at MNI points (0 outside it).

    Parameters
    ----------
    volume : ndarray, shape (I, J, K)
    affine : ndarray, shape (4, 4)
        Voxel-to-MNI affine of ``volume``.
    points_mm : ndarray, shape (3, N)
        Where to sample, in mm (x, y, z as rows).
    order : int
        Spline order (1 = trilinear).

    Returns
    -------
    ndarray, shape (N,), float32
    """
    ijk = apply_affine(np.linalg.inv(affine), points_mm)
    return ndimage.map_coordinates(
        volume, ijk, order=order, mode="constant", cval=0.0, prefilter=False, output=np.float32
    )
