"""What the shallow methods see: 90 regional means per scan (the paper's input) or today's PCA of voxels.

Tao & An (2021, Section IV) ran CVH, SePH and SCM on "the gray matter
volume from 90 ROIs", one number per region and scan, and the deep methods
on the images. :func:`seed_features` gives a shallow method's ``run`` the
features of one comparison seed, train, query and database rows in the
order of ``context.data``:

- ``"roi"`` (the default): :func:`neurohash_lite.data.roi.roi_features` with
  AAL's 90 cerebral regions, read from the cohort's NIfTI files (the
  comparison's arrays are 2D slices with no volume grid). They are computed
  once per cohort and cached on disk (``<data_dir>/cache/roi-*.npz``); every
  later ``run`` (each K and seed) reads the cache in milliseconds.
- ``"pca"``: the flattened scans the deep methods see, reduced to their
  leading principal components per modality (fitted on the training scans,
  at most ``n_train - 1`` of them), as CVH has done so far.

The cohort folder is ``context.data.cohort_root`` (the runner's
:class:`~neurohash_lite.runner.SeedData` records the folder it split). The
subjects and diagnoses of the folder are checked against the seed's split,
so features are never matched to the wrong scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SeedFeatures", "seed_features", "context_cohort_root", "FEATURES"]

#: The inputs a shallow method accepts.
FEATURES = ("roi", "pca")
PARTS = ("train", "query", "database")


@dataclass
class SeedFeatures:
    """One seed's features: ``arrays[part] = (mri, pet, labels)`` for part in train, query, database.

    ``mri`` and ``pet`` are float64 ``(n, d)`` with the same d for ROI
    features (the regions), labels int64 ``(n,)``. ``description`` says what
    they are (plain values, stored with a run's hyperparameters).
    """

    kind: str
    arrays: dict
    description: dict = field(default_factory=dict)

    def __getitem__(self, part: str):
        return self.arrays[part]


def context_cohort_root(context) -> Path:
    """The cohort folder behind a :class:`~neurohash_lite.runner.RunContext` (``context.data.cohort_root``)."""
    root = Path(context.data.cohort_root)
    if not root.is_dir():
        raise ValueError(f"ROI features need the cohort's NIfTI files, but {root} is not a folder; "
                         "run the method with features='pca' to use the scans the deep methods see")
    return root


def _check_alignment(features, data, root: Path) -> None:
    paired_ids = features.paired_subject_ids
    paired_labels = features.paired_labels
    if len(paired_ids) != len(data.train.labels):
        raise ValueError(f"{root} has {len(paired_ids)} subjects with a PET, the seed's cohort "
                         f"{len(data.train.labels)}: not the cohort the comparison loaded")
    for part, ids in (("query", data.query_subjects), ("database", data.database_subjects)):
        index = getattr(data, part).indices.numpy()
        if not np.array_equal(paired_ids[index], np.asarray(ids)):
            raise ValueError(f"the {part} subjects of {root} differ from the seed's: not the cohort the "
                             "comparison loaded")
    if not np.array_equal(paired_labels, data.train.labels.numpy()):
        raise ValueError(f"the diagnoses in {root} differ from the seed's cohort")


def _roi(context, atlas) -> SeedFeatures:
    from ..data.roi import roi_features

    data = context.data
    root = context_cohort_root(context)
    features = roi_features(root, atlas)
    _check_alignment(features, data, root)
    mri, pet = features.paired_mri, features.pet
    arrays = {}
    for part in PARTS:
        index = getattr(data, part).indices.numpy()
        arrays[part] = (mri[index], pet[index], data.train.labels.numpy()[index])
    return SeedFeatures("roi", arrays, {"features": "roi", "atlas": features.atlas,
                                        "n_regions": int(mri.shape[1])})


def _pca(context, n_pca: int) -> SeedFeatures:
    from sklearn.decomposition import PCA

    from ..runner import dataset_arrays

    data = context.data
    raw = {part: dataset_arrays(getattr(data, part)) for part in PARTS}
    t_mri, t_pet, _ = raw["train"]
    n_components = min(int(n_pca), len(t_mri) - 1, t_mri[0].size)
    if n_components < 1:
        raise ValueError(f"PCA needs at least two training pairs, got {len(t_mri)}")
    projections = [PCA(n_components=n_components, random_state=data.seed).fit(train.reshape(len(train), -1))
                   for train in (t_mri, t_pet)]
    arrays = {}
    for part, (mri, pet, labels) in raw.items():
        arrays[part] = tuple(p.transform(x.reshape(len(x), -1)).astype(np.float64)
                             for p, x in zip(projections, (mri, pet))) + (labels,)
    return SeedFeatures("pca", arrays, {"features": "pca", "n_pca": int(n_pca), "n_pca_used": n_components})


def seed_features(context, features: str = "roi", *, atlas: str = "aal90", n_pca: int = 256) -> SeedFeatures:
    """The features of the seed's train, query and database pairs.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    features : {"roi", "pca"}
        Regional means over ``atlas`` (the paper's input) or the leading
        principal components of the flattened scans.
    atlas : str, default "aal90"
    n_pca : int, default 256
        ``"pca"`` only: components per modality, capped at ``n_train - 1``.

    Returns
    -------
    SeedFeatures
    """
    if features == "roi":
        return _roi(context, atlas)
    if features == "pca":
        return _pca(context, n_pca)
    raise ValueError(f"features={features!r} must be one of {FEATURES}")
