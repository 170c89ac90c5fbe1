"""The disease regions sit at the published coordinates, and their footprints are what the docstring says."""

import numpy as np
import pytest
from nilearn import datasets

from neurohash_lite.data.anatomy import load_anatomy
from neurohash_lite.data.regions import (
    MRI_ATROPHY_REGIONS,
    PET_AGE_REGIONS,
    PET_HYPOMETABOLISM_REGIONS,
    Region,
    region_footprints,
)

ALL_REGIONS = MRI_ATROPHY_REGIONS + PET_HYPOMETABOLISM_REGIONS + PET_AGE_REGIONS


@pytest.mark.parametrize("region", ALL_REGIONS, ids=lambda r: r.name)
def test_coordinates_are_rows_of_the_bundled_seitzman_table(region):
    table = datasets.fetch_coords_seitzman_2018(ordered_regions=False)
    rois = table.rois[["x", "y", "z"]].to_numpy()
    assert len(region.rows) == len(region.centres_mm)
    for row, centre in zip(region.rows, region.centres_mm):
        np.testing.assert_allclose(rois[row], centre, atol=0.006)


def test_subcortical_regions_carry_the_tables_own_label():
    table = datasets.fetch_coords_seitzman_2018(ordered_regions=False)
    labels = np.asarray(table.regions)
    for region in MRI_ATROPHY_REGIONS[:3]:
        expected = "amygdala" if "amygdala" in region.name else "hippocampus"
        assert all(labels[row] == expected for row in region.rows)


def test_mri_and_pet_regions_are_different_places():
    mri = np.array([c for r in MRI_ATROPHY_REGIONS for c in r.centres_mm])
    pet = np.array([c for r in PET_HYPOMETABOLISM_REGIONS for c in r.centres_mm])
    distances = np.linalg.norm(mri[:, None] - pet[None], axis=2)
    assert distances.min() > 20.0  # mm: the two patterns do not share a centre


def test_footprint_values_by_hand():
    region = Region("r", ((0.0, 0.0, 0.0), (100.0, 0.0, 0.0)), (0, 1), sigma_mm=5.0, weight=0.5, source="test")
    points = np.array([[0, 0, 0], [5, 0, 0], [0, 0, 17], [0, 0, 18], [100, 3, 4]], dtype=float).T
    got = region_footprints(points, (region,))[0]
    expected = [0.5, 0.5 * np.exp(-0.5), 0.5 * np.exp(-0.5 * (17 / 5) ** 2), 0.0, 0.5 * np.exp(-0.5)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_footprint_takes_the_nearest_centre_not_the_sum():
    region = Region("r", ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0)), (0, 1), sigma_mm=5.0, weight=1.0, source="test")
    assert region_footprints(np.zeros((3, 1)), (region,))[0, 0] == pytest.approx(1.0)


def test_footprints_reject_wrongly_shaped_points():
    with pytest.raises(ValueError, match="points_mm"):
        region_footprints(np.zeros((5, 2)), MRI_ATROPHY_REGIONS)


def test_ventricles_found_in_the_template_are_left_and_right_of_the_midline():
    left, right = load_anatomy(4.0).ventricle_centres_mm
    assert -20 < left[0] < -3 and 3 < right[0] < 20
    assert left[0] == pytest.approx(-right[0], abs=2.0)  # the 2009 template is symmetric
    for centre in (left, right):
        assert -30 < centre[1] < 0 and 0 < centre[2] < 25
