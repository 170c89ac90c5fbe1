"""Torch datasets over cohort arrays."""

import numpy as np
import pytest
import torch

from neurohash_lite.data.datasets import ImageDataset, PairedDataset


def test_paired_items_follow_indices():
    mri = np.arange(5 * 2 * 4 * 4, dtype=np.float32).reshape(5, 2, 4, 4)
    pet = -mri
    labels = np.array([0, 1, 2, 1, 0])
    data = PairedDataset(mri, pet, labels, indices=[4, 1])
    assert len(data) == 2
    x, y, label = data[0]
    assert x.dtype == torch.float32 and label.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(mri[4])) and torch.equal(y, torch.from_numpy(pet[4])) and label == 0
    assert data[1][2] == 1
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))
    assert batch[0].shape == (2, 2, 4, 4)


def test_datasets_share_memory_with_the_arrays():
    images = np.zeros((3, 1, 2, 2), np.float32)
    data = ImageDataset(images, [0, 1, 2])
    images[1] = 7.0
    assert float(data[1][0].sum()) == 28.0


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: PairedDataset(np.zeros((3, 4)), np.zeros((2, 4)), [0, 1, 2]), "pet has 2"),
        (lambda: PairedDataset(np.zeros((3, 4)), np.zeros((3, 4)), [0, 1]), "labels"),
        (lambda: ImageDataset(np.zeros((3, 4)), [0, 1, 2], indices=[3]), "indices"),
        (lambda: ImageDataset(np.zeros(3), [0, 1, 2]), "images"),
    ],
)
def test_mismatched_inputs_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


class _FakeCohort:
    mri = np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1) * np.ones((4, 1, 2, 2), np.float32)
    labels = np.array([0, 1, 2, 0])
    has_pet = np.array([True, False, True, True])
    pet = np.full((3, 1, 2, 2), 9.0, np.float32)
    paired_mri = mri[has_pet]
    paired_labels = labels[has_pet]


def test_from_cohort_pairs_rows_and_keeps_mri_only_for_single_modality():
    cohort = _FakeCohort()
    paired = PairedDataset.from_cohort(cohort)
    assert len(paired) == 3 and float(paired[1][0][0, 0, 0]) == 2.0  # second paired subject is subject 2
    assert len(ImageDataset.from_cohort(cohort, "mri")) == 4
    assert len(ImageDataset.from_cohort(cohort, "pet")) == 3
    with pytest.raises(ValueError, match="modality"):
        ImageDataset.from_cohort(cohort, "ct")
