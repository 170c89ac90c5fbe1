"""Torch datasets over a cohort's arrays: paired (MRI, PET, label) and single-modality (image, label).

Both wrap arrays already in memory (no copy: ``torch.from_numpy`` views) and
optionally a subset of row indices, e.g. ``splits.train``.

>>> import shutil, tempfile
>>> from neurohash_lite.data import load_cohort, make_splits, make_synthetic_cohort, pretraining_indices
>>> data = tempfile.mkdtemp()
>>> root = make_synthetic_cohort(f"{data}/tiny", "tiny", voxel_size_mm=16)   # 36 subjects, 30 with a PET
>>> cohort = load_cohort(root, image_size=32, cache_dir=False)
>>> splits = make_splits(cohort.paired_labels, seed=0)
>>> train = PairedDataset.from_cohort(cohort, splits.train)
>>> mri, pet, label = train[0]           # float32 tensors (C, H, W), int64 scalar
>>> mri.shape, pet.dtype, label.dtype
(torch.Size([3, 32, 32]), torch.float32, torch.int64)
>>> pretrain = ImageDataset.from_cohort(cohort, "mri", pretraining_indices(cohort, splits))
>>> len(pretrain) == len(train) + cohort.n_mri_only   # paired training subjects and the MRI-only ones
True
>>> shutil.rmtree(data)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["PairedDataset", "ImageDataset"]


def _as_tensor(name: str, array) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array.float()
    array = np.asarray(array)
    if array.ndim < 2:
        raise ValueError(f"{name} must have one image per row, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _as_labels(labels, n: int, name: str = "labels") -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels)).long()
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    return labels


def _as_indices(indices, n: int) -> torch.Tensor:
    if indices is None:
        return torch.arange(n)
    indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    if indices.ndim != 1:
        raise ValueError(f"indices must be 1D, got shape {tuple(indices.shape)}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices must lie in [0, {n}), got {int(indices.min())}..{int(indices.max())}")
    return indices


class PairedDataset(Dataset):
    """(MRI, PET, label) triples of paired subjects, for cross-modal training.

    Parameters
    ----------
    mri, pet : array-like or Tensor, shape (n, ...), float
        Row i of both is subject i.
    labels : array-like (n,), int
    indices : array-like of int, optional
        The rows this dataset exposes (default all).

    Items are ``(mri[i], pet[i], label[i])``: two float32 tensors and an int64 scalar.
    """

    def __init__(self, mri, pet, labels, indices=None):
        self.mri = _as_tensor("mri", mri)
        self.pet = _as_tensor("pet", pet)
        if len(self.mri) != len(self.pet):
            raise ValueError(f"mri has {len(self.mri)} rows but pet has {len(self.pet)}; pairs need one each")
        self.labels = _as_labels(labels, len(self.mri))
        self.indices = _as_indices(indices, len(self.mri))

    @classmethod
    def from_cohort(cls, cohort, indices=None) -> "PairedDataset":
        """The paired subjects of a cohort; ``indices`` index the paired subset (as splits do)."""
        return cls(cohort.paired_mri, cohort.pet, cohort.paired_labels, indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        i = self.indices[item]
        return self.mri[i], self.pet[i], self.labels[i]


class ImageDataset(Dataset):
    """(image, label) pairs of one modality, for single-modality pretraining.

    Parameters
    ----------
    images : array-like or Tensor, shape (n, ...), float
    labels : array-like (n,), int
    indices : array-like of int, optional
    """

    def __init__(self, images, labels, indices=None):
        self.images = _as_tensor("images", images)
        self.labels = _as_labels(labels, len(self.images))
        self.indices = _as_indices(indices, len(self.images))

    @classmethod
    def from_cohort(cls, cohort, modality: str = "mri", indices=None) -> "ImageDataset":
        """One modality of a cohort.

        ``modality="mri"``: every subject with an MRI, MRI-only ones included;
        ``indices`` index the cohort's subjects (see
        :func:`~neurohash_lite.data.splits.pretraining_indices`).
        ``modality="pet"``: the paired subjects; ``indices`` index the paired subset.
        """
        if modality == "mri":
            return cls(cohort.mri, cohort.labels, indices)
        if modality == "pet":
            return cls(cohort.pet, cohort.paired_labels, indices)
        raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        i = self.indices[item]
        return self.images[i], self.labels[i]
