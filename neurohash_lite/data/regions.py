"""Where the synthetic disease acts: brain regions at published MNI coordinates.

Every coordinate below is a region-of-interest centre from
Seitzman et al. (2020), "A set of functionally-defined brain regions with
improved representation of the subcortex and cerebellum", NeuroImage 206,
116290. The table ships inside nilearn (``nilearn.datasets.
fetch_coords_seitzman_2018``, file ``seitzman_2018_ROIs_300inVol_MNI_allInfo.txt``,
MNI152 space, no download), so a reader can check each number offline; the
``row`` of each centre is its 0-based row in that table (read with
``ordered_regions=False``), and ``tests/test_data_regions.py`` checks them.

Seitzman et al. label subcortical regions anatomically (hippocampus,
amygdala) but cortical ones only by network and hemisphere. The anatomical
names of the cortical regions are ours; for each we give the nearest region of
Dosenbach et al. (2010), "Prediction of individual brain maturity using fMRI",
Science 329, 1358-1361, whose table (also bundled with nilearn,
``fetch_coords_dosenbach_2010``) does carry anatomical names, and the distance
to it.

The regions follow what the two imaging modalities show in Alzheimer's
disease: grey-matter loss on structural MRI starts in the medial temporal lobe
(entorhinal cortex, hippocampus, amygdala) and spreads to the lateral temporal
cortex (Frisoni et al., 2010); glucose hypometabolism on FDG-PET is strongest in
the posterior cingulate, precuneus and temporoparietal cortex (Minoshima et
al., 1997). The two patterns overlap little, which is what makes cross-modal
retrieval a real problem.

References
----------
Seitzman et al., NeuroImage 206 (2020) 116290.
Dosenbach et al., Science 329 (2010) 1358-1361.
Frisoni et al., Nature Reviews Neurology 6 (2010) 67-77.
Minoshima et al., Annals of Neurology 42 (1997) 85-94.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Region",
    "MRI_ATROPHY_REGIONS",
    "PET_HYPOMETABOLISM_REGIONS",
    "PET_AGE_REGIONS",
    "region_footprints",
]

SEITZMAN = "Seitzman et al. (2020), nilearn fetch_coords_seitzman_2018"


@dataclass(frozen=True)
class Region:
    """A bilateral (or midline) brain region with a Gaussian footprint.

    Attributes
    ----------
    name : str
        Anatomical name.
    centres_mm : tuple of (x, y, z)
        MNI152 coordinates in mm of the region's centres (one per hemisphere,
        or more along an elongated structure).
    rows : tuple of int
        The 0-based rows of ``centres_mm`` in the Seitzman et al. (2020) table
        bundled with nilearn.
    sigma_mm : float
        Standard deviation in mm of the isotropic Gaussian around each centre.
    weight : float
        Relative strength of the effect in this region (the strongest is 1).
    source : str
        Where the coordinates and the name come from.
    """

    name: str
    centres_mm: tuple[tuple[float, float, float], ...]
    rows: tuple[int, ...]
    sigma_mm: float
    weight: float
    source: str


#: Grey-matter loss on the T1w image (medial temporal first, then lateral temporal).
MRI_ATROPHY_REGIONS: tuple[Region, ...] = (
    Region(
        name="hippocampus (head)",
        centres_mm=((-25.57, -11.78, -21.54), (24.73, -11.25, -22.68)),
        rows=(235, 236),
        sigma_mm=6.0,
        weight=1.0,
        source=f"{SEITZMAN}; regional label 'hippocampus', network MedialTemporalLobe",
    ),
    Region(
        name="hippocampus (tail)",
        centres_mm=((-25.24, -38.78, -2.01), (25.08, -37.18, -2.16)),
        rows=(237, 238),
        sigma_mm=6.0,
        weight=0.8,
        source=f"{SEITZMAN}; regional label 'hippocampus', network DefaultMode",
    ),
    Region(
        name="amygdala",
        centres_mm=((-20.3, -2.27, -22.21), (19.51, -1.85, -23.11)),
        rows=(243, 244),
        sigma_mm=5.0,
        weight=0.8,
        source=f"{SEITZMAN}; regional label 'amygdala'",
    ),
    Region(
        name="entorhinal / anterior parahippocampal cortex",
        centres_mm=((-31.13, -9.99, -36.32), (32.85, -12.41, -34.41)),
        rows=(233, 234),
        sigma_mm=6.0,
        weight=1.0,
        source=(
            f"{SEITZMAN}; cortex, network MedialTemporalLobe (name ours: the "
            "anterior parahippocampal gyrus at this depth holds the entorhinal cortex)"
        ),
    ),
    Region(
        name="lateral temporal cortex (middle/inferior temporal gyrus)",
        centres_mm=(
            (-68.47, -22.66, -15.74), (64.64, -11.8, -19.3),
            (-68.3, -41.41, -5.14), (64.8, -30.55, -8.7),
        ),
        rows=(80, 132, 81, 133),
        sigma_mm=8.0,
        weight=0.6,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name ours: nearest Dosenbach "
            "et al. 2010 regions are 'inf temporal' at 9.8, 14.5 and 8.0 mm and "
            "'fusiform' at 14.3 mm)"
        ),
    ),
)

#: Lower FDG uptake (posterior cingulate / precuneus and temporoparietal cortex).
PET_HYPOMETABOLISM_REGIONS: tuple[Region, ...] = (
    Region(
        name="posterior cingulate cortex",
        centres_mm=((-11.29, -56.2, 15.6), (10.77, -53.83, 17.09), (-2.94, -48.79, 12.87)),
        rows=(98, 118, 105),
        sigma_mm=9.0,
        weight=1.0,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name from the nearest "
            "Dosenbach et al. 2010 region, 'post cingulate', at 2.3, 1.4 and 5.6 mm)"
        ),
    ),
    Region(
        name="precuneus",
        centres_mm=((-6.84, -54.9, 27.05), (7.94, -48.37, 30.57), (-2.2, -36.68, 43.85)),
        rows=(103, 114, 106),
        sigma_mm=9.0,
        weight=1.0,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name from the nearest "
            "Dosenbach et al. 2010 region, 'precuneus', at 2.4, 4.1 and 1.9 mm)"
        ),
    ),
    Region(
        name="angular gyrus (temporoparietal)",
        centres_mm=((-44.45, -64.64, 34.78), (52.04, -59.37, 35.52)),
        rows=(88, 129),
        sigma_mm=10.0,
        weight=0.9,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name from the nearest "
            "Dosenbach et al. 2010 region, 'angular gyrus', at 3.9 and 1.9 mm)"
        ),
    ),
    Region(
        name="temporoparietal junction",
        centres_mm=((-45.79, -60.69, 20.85), (46.68, -50.08, 28.76)),
        rows=(86, 127),
        sigma_mm=10.0,
        weight=0.8,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name from the nearest "
            "Dosenbach et al. 2010 regions, 'TPJ' at 8.8 mm and 'sup temporal' at 9.9 mm)"
        ),
    ),
)

#: Age-related FDG decline, shared by all diagnoses (a nuisance): medial prefrontal cortex.
PET_AGE_REGIONS: tuple[Region, ...] = (
    Region(
        name="ventromedial / anterior cingulate prefrontal cortex",
        centres_mm=((-7.04, 50.82, -1.29), (7.51, 42.49, -5.35), (12.25, 35.63, 20.3)),
        rows=(104, 115, 121),
        sigma_mm=12.0,
        weight=1.0,
        source=(
            f"{SEITZMAN}; cortex, network DefaultMode (name from the nearest "
            "Dosenbach et al. 2010 regions, 'vmPFC' at 1.4 and 0.8 mm and 'ACC' at 4.7 mm)"
        ),
    ),
)


def region_footprints(points_mm: np.ndarray, regions: tuple[Region, ...]) -> np.ndarray:
    """Evaluate each region's Gaussian footprint at a set of points.

    The footprint of region r at point p is
    ``weight_r * max_c exp(-||p - c||^2 / (2 sigma_r^2))`` over its centres c
    (the maximum, not the sum, so two nearby centres do not double the effect),
    set to exactly 0 beyond 3.5 sigma_r (where it is below 0.22 %).

    Parameters
    ----------
    points_mm : ndarray, shape (3, N), float
        MNI coordinates in mm, x, y and z as rows.
    regions : tuple of Region

    Returns
    -------
    ndarray, shape (len(regions), N), float32
        Values in [0, weight_r].
    """
    points_mm = np.asarray(points_mm, dtype=np.float32)
    if points_mm.ndim != 2 or points_mm.shape[0] != 3:
        raise ValueError(f"points_mm must have shape (3, N), got {points_mm.shape}")
    x, y, z = points_mm
    out = np.empty((len(regions), points_mm.shape[1]), dtype=np.float32)
    for r, region in enumerate(regions):
        nearest = None
        for cx, cy, cz in region.centres_mm:
            d2 = (x - np.float32(cx)) ** 2 + (y - np.float32(cy)) ** 2 + (z - np.float32(cz)) ** 2
            nearest = d2 if nearest is None else np.minimum(nearest, d2, out=nearest)
        value = np.exp(nearest * np.float32(-0.5 / region.sigma_mm**2)) * np.float32(region.weight)
        out[r] = np.where(nearest < (3.5 * region.sigma_mm) ** 2, value, np.float32(0.0))
    return out
