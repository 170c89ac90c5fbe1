"""The linear-separability measure used to calibrate the cohort's difficulty."""

import numpy as np
import pytest

from neurohash_lite.data.difficulty import linear_separability


def test_separable_classes_score_one():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    images = rng.normal(0, 0.1, (60, 4, 4)) + labels[:, None, None] * 3.0
    result = linear_separability(images, labels, c=1.0)
    assert result.balanced_accuracy == pytest.approx(1.0)
    assert result.chance == pytest.approx(1 / 3) and result.n_features == 16


def test_pure_noise_scores_near_chance():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 40)
    result = linear_separability(rng.normal(size=(120, 50)), labels)
    assert abs(result.balanced_accuracy - 1 / 3) < 0.15
    assert len(result.fold_scores) == 5


def test_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        linear_separability(np.zeros((6, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="n_folds"):
        linear_separability(np.random.default_rng(0).normal(size=(6, 3)), [0, 0, 0, 1, 1, 1])
