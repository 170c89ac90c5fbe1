"""CVH: the CCA projections meet the CCA definition; codes of paired views agree."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from neurohash_lite.shallow.cvh import CrossViewHashing, cca
from neurohash_lite.metrics import mean_average_precision


def toy_views(n=200, seed=0):
    """Two views of a 3-dimensional latent signal, with noise of different size per view."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, 6)) + 0.5 * rng.normal(size=(n, 6))
    y = z @ rng.normal(size=(3, 5)) + 1.0 * rng.normal(size=(n, 5))
    return x, y


def covariances(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    return x.T @ x / (n - 1), y.T @ y / (n - 1), x.T @ y / (n - 1)


def test_cca_meets_its_definition():
    x, y = toy_views()
    w_x, w_y, rho = cca(x, y, 4, reg=1e-10)
    c_xx, c_yy, c_xy = covariances(x, y)
    # uncorrelated, unit-variance canonical variates within each view
    assert np.allclose(w_x.T @ c_xx @ w_x, np.eye(4), atol=1e-7)
    assert np.allclose(w_y.T @ c_yy @ w_y, np.eye(4), atol=1e-7)
    # across views: correlation rho_k between pair k, zero between different pairs
    assert np.allclose(w_x.T @ c_xy @ w_y, np.diag(rho), atol=1e-7)
    assert np.all(np.diff(rho) <= 1e-12) and np.all((rho >= 0) & (rho <= 1))


def test_cca_equals_the_generalized_eigenproblem():
    """[0 C_xy; C_yx 0] v = rho [C_xx 0; 0 C_yy] v, solved directly."""
    x, y = toy_views(seed=1)
    _, _, rho = cca(x, y, 5, reg=1e-10)
    c_xx, c_yy, c_xy = covariances(x, y)
    d_x, d_y = c_xx.shape[0], c_yy.shape[0]
    a = np.block([[np.zeros((d_x, d_x)), c_xy], [c_xy.T, np.zeros((d_y, d_y))]])
    b = scipy.linalg.block_diag(c_xx, c_yy)
    values, vectors = scipy.linalg.eigh(a, b)
    assert np.allclose(np.sort(values)[::-1][:5], rho, atol=1e-7)
    # the first canonical pair is the top eigenvector, up to sign and scale
    w_x, w_y, _ = cca(x, y, 1, reg=1e-10)
    top = vectors[:, np.argmax(values)]
    ours = np.concatenate([w_x[:, 0], w_y[:, 0]])
    cosine = abs(ours @ top) / (np.linalg.norm(ours) * np.linalg.norm(top))
    assert cosine == pytest.approx(1.0, abs=1e-6)


def test_the_first_pair_finds_the_shared_signal():
    x, y = toy_views()
    w_x, w_y, rho = cca(x, y, 5, reg=1e-10)
    # three latent dimensions shared, the rest noise
    assert rho[2] > 0.5 and rho[3] < 0.3
    correlation = np.corrcoef((x - x.mean(0)) @ w_x[:, 0], (y - y.mean(0)) @ w_y[:, 0])[0, 1]
    assert correlation == pytest.approx(rho[0], abs=1e-7)


def test_cross_view_hashing_codes_retrieve_the_other_view():
    """Three classes with class-dependent latent means: CVH's codes retrieve
    across views far above chance."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    z = rng.normal(size=(120, 4)) + 3.0 * np.eye(3, 4)[labels]
    mri = (z @ rng.normal(size=(4, 60)) + 0.3 * rng.normal(size=(120, 60))).reshape(120, 3, 4, 5)
    pet = z @ rng.normal(size=(4, 40)) + 0.3 * rng.normal(size=(120, 40))
    model = CrossViewHashing(n_bits=4, n_pca=20).fit(mri[:80], pet[:80])
    b_mri, b_pet = model.encode(mri[80:], "mri"), model.encode(pet, "pet")
    assert b_mri.dtype == np.int8 and set(np.unique(b_mri)) <= {-1, 1}
    assert mean_average_precision(b_mri, b_pet, labels[80:], labels) > 0.6


def test_cross_view_hashing_rejects_bad_input():
    x, y = toy_views(n=10)
    with pytest.raises(ValueError, match="principal components"):
        CrossViewHashing(n_bits=16).fit(x, y)
    with pytest.raises(ValueError, match="paired"):
        CrossViewHashing(n_bits=2).fit(x, y[:5])
    with pytest.raises(ValueError, match="fit"):
        CrossViewHashing(n_bits=2).encode(x, "mri")
    with pytest.raises(ValueError, match="modality"):
        CrossViewHashing(n_bits=2, n_pca=4).fit(x, y).encode(x, "ct")
