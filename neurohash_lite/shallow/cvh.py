"""Cross-View Hashing (CVH), the shallow baseline: PCA, CCA, then sign.

CVH (Kumar & Udupa, 2011) learns one linear projection per view so that the
projections of a subject's two views agree, and takes the sign. With the
similarity of a pair being "the same subject" (the paired training scans),
its generalized eigenproblem is canonical correlation analysis (Hotelling,
1936); that is the form implemented here:

1. flatten each scan and reduce each modality to its leading principal
   components (PCA on the training scans; at most ``n_train - 1`` of them);
2. CCA on the two PCA feature sets: with centred features ``X`` (n, d_x)
   and ``Y`` (n, d_y), covariances ``C_xx = X^T X/(n-1) + r I``,
   ``C_yy`` likewise, ``C_xy = X^T Y/(n-1)``, find ``W_x``, ``W_y`` that
   maximise ``tr(W_x^T C_xy W_y)`` subject to ``W_x^T C_xx W_x = I`` and
   ``W_y^T C_yy W_y = I``; the columns solve
   ``[0 C_xy; C_yx 0] [w_x; w_y] = rho [C_xx 0; 0 C_yy] [w_x; w_y]``
   and come from the SVD of ``C_xx^{-1/2} C_xy C_yy^{-1/2}``;
3. the code of a scan is ``sign(W^T (x - mean))`` (sign(0) = +1) over the
   first K canonical directions.

No deep network and no labels: CVH sees only which scans belong together.
numpy and scikit-learn only.

**Inputs.** In the comparison (:func:`run`) CVH reads, by default, the 90
regional means of each scan over AAL's cerebral regions
(:mod:`neurohash_lite.shallow.features`), as Tao & An (2021, Section IV) fed
their shallow baselines; step 1 then keeps all of them that the training set
supports (a rotation, which CCA ignores up to its ridge). ``features="pca"``
gives the flattened scans, as before. With 90 regions CVH has at most 90
canonical directions, so K = 128 is not applicable on ROI features.

References
----------
Kumar S., Udupa R. (2011). Learning Hash Functions for Cross-View Similarity
Search. IJCAI. Eqs. (5)-(9) (the generalized eigenproblem).
Hotelling H. (1936). Relations between two sets of variates. Biometrika 28.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

__all__ = ["cca", "CrossViewHashing", "run"]

MODALITIES = ("mri", "pet")


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors / np.sqrt(values)) @ vectors.T


def cca(x: np.ndarray, y: np.ndarray, n_components: int, reg: float = 1e-3):
    """Canonical correlation analysis of two paired views.

    Parameters
    ----------
    x : ndarray, float, shape (n, d_x)
    y : ndarray, float, shape (n, d_y)
        Row i of both is the same subject. Centred inside.
    n_components : int
        Number of canonical pairs, at most ``min(d_x, d_y)``.
    reg : float, default 1e-3
        Ridge added to each covariance, relative to its mean variance
        (``r = reg * tr(C)/d``), > 0 keeps them invertible.

    Returns
    -------
    w_x : ndarray, shape (d_x, n_components)
    w_y : ndarray, shape (d_y, n_components)
        With ``W_x^T C_xx W_x = I``, ``W_y^T C_yy W_y = I`` and
        ``W_x^T C_xy W_y = diag(rho)``.
    rho : ndarray, shape (n_components,)
        Canonical correlations (of the regularised problem), descending.

    References
    ----------
    Hotelling (1936); Kumar & Udupa (2011), Eq. (9).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (n, d) matrices with the same n, got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError("x and y need at least two rows")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    limit = min(x.shape[1], y.shape[1])
    if int(n_components) != n_components or not 1 <= n_components <= limit:
        raise ValueError(f"n_components must be an integer in 1..{limit}, got {n_components!r}")
    if not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg!r}")
    n = x.shape[0]
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    c_xx = x.T @ x / (n - 1)
    c_yy = y.T @ y / (n - 1)
    c_xy = x.T @ y / (n - 1)
    c_xx += reg * np.trace(c_xx) / c_xx.shape[0] * np.eye(c_xx.shape[0]) + 1e-12 * np.eye(c_xx.shape[0])
    c_yy += reg * np.trace(c_yy) / c_yy.shape[0] * np.eye(c_yy.shape[0]) + 1e-12 * np.eye(c_yy.shape[0])
    root_x, root_y = _inverse_sqrt(c_xx), _inverse_sqrt(c_yy)
    u, rho, vt = np.linalg.svd(root_x @ c_xy @ root_y)
    k = int(n_components)
    return root_x @ u[:, :k], root_y @ vt[:k].T, rho[:k]


@dataclass
class CrossViewHashing:
    """CVH on flattened scans: PCA per modality, CCA, sign.

    Parameters
    ----------
    n_bits : int
        Code length K (the number of canonical directions kept).
    n_pca : int, default 256
        Principal components per modality, capped at ``n_train - 1``; must
        leave at least K of them.
    reg : float, default 1e-3
        CCA ridge (see :func:`cca`).
    seed : int, default 0
        For PCA's randomized solver.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(40, 4))
    >>> model = CrossViewHashing(n_bits=4, n_pca=8).fit(z @ rng.normal(size=(4, 30)), z @ rng.normal(size=(4, 20)))
    >>> model.encode(z @ rng.normal(size=(4, 30)), "mri").shape
    (40, 4)

    References
    ----------
    Kumar & Udupa (2011).
    """

    n_bits: int
    n_pca: int = 256
    reg: float = 1e-3
    seed: int = 0

    def fit(self, mri: np.ndarray, pet: np.ndarray) -> "CrossViewHashing":
        """Learn the projections from paired training scans.

        Parameters
        ----------
        mri, pet : ndarray, shape (n, ...)
            Row i of both is subject i; any trailing shape (flattened).

        Returns
        -------
        self
        """
        if int(self.n_bits) != self.n_bits or self.n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {self.n_bits!r}")
        mri = np.asarray(mri, dtype=np.float64).reshape(len(mri), -1)
        pet = np.asarray(pet, dtype=np.float64).reshape(len(pet), -1)
        if len(mri) != len(pet):
            raise ValueError(f"mri and pet must be paired rows, got {len(mri)} and {len(pet)}")
        n_pca = min(int(self.n_pca), len(mri) - 1, mri.shape[1], pet.shape[1])
        if n_pca < self.n_bits:
            raise ValueError(f"n_bits={self.n_bits} needs at least {self.n_bits} principal components, but "
                             f"{len(mri)} training pairs and n_pca={self.n_pca} leave {n_pca}")
        self.pca_ = {}
        features = {}
        for modality, data in zip(MODALITIES, (mri, pet)):
            pca = PCA(n_components=n_pca, random_state=self.seed).fit(data)
            self.pca_[modality] = pca
            features[modality] = pca.transform(data)
        self.means_ = {m: features[m].mean(axis=0) for m in MODALITIES}
        w_x, w_y, rho = cca(features["mri"], features["pet"], self.n_bits, self.reg)
        self.projections_ = {"mri": w_x, "pet": w_y}
        self.correlations_ = rho
        return self

    def project(self, x: np.ndarray, modality: str) -> np.ndarray:
        """Real-valued canonical variates, shape (n, K)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r} must be one of {MODALITIES}")
        if not hasattr(self, "projections_"):
            raise ValueError("call fit() before project() or encode()")
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        features = self.pca_[modality].transform(x) - self.means_[modality]
        return features @ self.projections_[modality]

    def encode(self, x: np.ndarray, modality: str) -> np.ndarray:
        """Binary codes ``sign(W^T (PCA(x) - mean))``, int8 ±1 of shape (n, K)."""
        return np.where(self.project(x, modality) >= 0, 1, -1).astype(np.int8)


def run(context, n_bits: int, *, features: str = "roi", atlas: str = "aal90"):
    """The comparison's entry point (:mod:`neurohash_lite.experiments`): CVH fitted
    on the seed's paired training scans, codes of its query and database scans.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    features : {"roi", "pca"}, default "roi"
        ``"roi"``: the 90 regional means of each scan
        (:func:`neurohash_lite.shallow.features.seed_features`), the paper's
        input; ``"pca"``: the flattened scans, reduced by the model's own PCA
        (``n_pca``), CVH's input before the regional features existed.
    atlas : str, default "aal90"

    Returns
    -------
    neurohash_lite.runner.MethodRun

    Raises
    ------
    neurohash_lite.runner.NotApplicable
        When the training set has fewer principal components than K.
    """
    import contextlib
    import time

    from threadpoolctl import threadpool_limits

    from ..runner import MethodRun, NotApplicable, dataset_arrays
    from .features import seed_features

    data = context.data
    if features == "pca":
        parts = {part: dataset_arrays(getattr(data, part)) for part in ("train", "query", "database")}
        described, threads = {"features": "pca"}, contextlib.nullcontext()
    else:
        chosen = seed_features(context, features, atlas=atlas)
        parts, described = chosen.arrays, chosen.description
        threads = threadpool_limits(1)  # 90 features: BLAS threads only add synchronisation
    started = time.perf_counter()
    t_mri, t_pet, _ = parts["train"]
    with threads:
        try:
            model = CrossViewHashing(n_bits, seed=data.seed).fit(t_mri, t_pet)
        except ValueError as error:
            raise NotApplicable(str(error)) from error
        codes = {}
        for part in ("query", "database"):
            mri, pet, codes[part, "labels"] = parts[part]
            codes[part, "mri"], codes[part, "pet"] = model.encode(mri, "mri"), model.encode(pet, "pet")
    hyper = {**described, "n_pca": model.n_pca, "n_pca_used": int(model.pca_["mri"].n_components_),
             "reg": model.reg, "top_correlation": float(model.correlations_[0])}
    return MethodRun(codes, time.perf_counter() - started, 0, hyper)
