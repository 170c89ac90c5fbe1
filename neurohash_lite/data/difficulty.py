"""How hard is a cohort? Balanced accuracy of a linear classifier on the images.

A retrieval benchmark is only useful between two extremes: if a linear model
on raw voxels already separates the classes, every hashing method looks
perfect; if nothing can, every method looks equally bad. The book measures
where its synthetic cohort sits with a multinomial logistic regression on each
modality's downsampled images (standardised voxels, L2 penalty), scored by
balanced accuracy (the mean of the per-class recalls; chance is 1/3 for three
classes whatever the class sizes) over stratified k-fold cross-validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DifficultyResult", "linear_separability"]


@dataclass(frozen=True)
class DifficultyResult:
    """Cross-validated balanced accuracy of a linear classifier.

    Attributes
    ----------
    balanced_accuracy : float
        Mean over folds.
    fold_scores : ndarray (n_folds,), float
    chance : float
        1 / number of classes.
    n_features : int
        Voxels used (those not constant over subjects).
    """

    balanced_accuracy: float
    fold_scores: np.ndarray
    chance: float
    n_features: int

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


def linear_separability(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    n_folds: int = 5,
    c: float = 0.01,
    seed: int = 0,
) -> DifficultyResult:
    """Balanced accuracy of an L2 logistic regression on flattened images.

    Parameters
    ----------
    images : ndarray, shape (n, ...), float
        One image (any shape) per subject.
    labels : ndarray, shape (n,), int
    n_folds : int
        Stratified folds (each class needs at least ``n_folds`` subjects).
    c : float
        Inverse L2 penalty of ``sklearn.linear_model.LogisticRegression``
        (voxels are standardised first; small values suit many voxels and few
        subjects).
    seed : int
        Shuffles the folds.

    Returns
    -------
    DifficultyResult
    """
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must have shape ({len(x)},), got {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < n_folds:
        raise ValueError(f"every class needs at least n_folds={n_folds} subjects; counts {dict(zip(classes, counts))}")
    x = x[:, x.std(axis=0) > 0]
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # One BLAS thread: the matrices are small, and threads waiting for busy
    # cores made these fits up to 25 times slower on a shared 2-core machine.
    with threadpool_limits(limits=1):
        scores = [_fit_and_score(x, y, train, test, c) for train, test in folds.split(x, y)]
    return DifficultyResult(float(np.mean(scores)), np.asarray(scores), 1.0 / len(classes), int(x.shape[1]))


def _fit_and_score(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, c: float) -> float:
    """Fit on ``train``, return the balanced accuracy on ``test``."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # An L2 penalty is invariant to rotations, so fitting on all principal
    # components (at most n_train of them) gives the same classifier as
    # fitting on the voxels, much faster.
    model = make_pipeline(StandardScaler(), PCA(svd_solver="full"),
                          LogisticRegression(C=c, solver="newton-cholesky", max_iter=200))
    model.fit(x[train], y[train])
    return float(balanced_accuracy_score(y[test], model.predict(x[test])))
