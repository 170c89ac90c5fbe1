"""Semantics-Preserving Hashing (SePH): codes whose Hamming affinities match the labels', then hash functions.

Lin et al. (2015) learn in two steps.

**1. Unified codes.** The label affinities of the n training subjects
become a probability distribution over pairs, ``p_ij = a_ij / sum_{k != l} a_kl``
(``p_ii = 0``), with ``a_ij`` the cosine of two label vectors. Relaxed codes
``H`` (n, K) in R define a second distribution through the Hamming distance,
relaxed to ``d_ij = ||h_i - h_j||^2 / 4`` (the Hamming distance for ±1 codes)
and turned into a Student-t affinity as in t-SNE:
``q_ij = (1 + d_ij)^-1 / sum_{k != l} (1 + d_kl)^-1``. SePH minimises

    Psi(H) = KL(P || Q) + alpha || |H| - 1 ||_F^2
           = sum_{i != j} p_ij log(p_ij / q_ij) + alpha sum_ik (|h_ik| - 1)^2,

the second term pulling every entry to ±1 (quantization); the codes are
``B = sign(H)``. The gradient (:func:`seph_gradient`) is
``dPsi/dh_i = sum_j (p_ij - q_ij)(1 + d_ij)^-1 (h_i - h_j) + 2 alpha (|h_i| - 1) sign(h_i)``.
The authors minimise it as t-SNE does (``minKLD.m``, from van der Maaten's
``tsne_p.m``): gradient steps of size 500 with momentum 0.5 and per-entry
gains (delta-bar-delta), the codes re-centred after each step, 100 steps
from ``H ~ N(0, 1e-4^2)``, the best objective kept; so does
:func:`seph_learn_codes`. Their ``alpha`` is given as 0.01 and divided by K n
inside (the KL term sums to at most a few nats while the quantization term
grows with n K).

**2. Hash functions.** For each modality and bit, kernel logistic
regression predicts the learned bit: features are mapped to RBF kernel
values against m anchors, ``phi(x) = exp(-||x - a_j||^2 / (2 sigma^2))``,
and ``w_k`` minimises ``sum_i log(1 + exp(-b_ik phi(x_i)^T w_k)) + lambda/2 w_k^T K_0 w_k``
(``K_0`` the anchors' kernel matrix); a code bit is ``sign(phi(x)^T w_k)``.
``SePH_km`` (the paper's best, the default here) takes the anchors as the
k-means centres of the training features, m = 500 (all training points
when there are fewer: k-means with one centre per point), sigma^2 the mean
squared distance between training samples and lambda = 0.01, as in the
authors' experiments. The bits are independent problems; they are solved
together by one L-BFGS run over all K weight vectors (the same optimum).

**Changes for this book.** Two modalities, sMRI and PET, are SePH's two
views; a subject's two scans are one training instance. Three single-label
diagnoses: ``a_ij = 1`` for equal diagnoses and 0 otherwise (the cosine of
one-hot vectors), so P is uniform over the same-diagnosis pairs. SePH
fuses the two views' predicted bits for a query that has both; a query here
has one modality, so its code is that modality's prediction (the paper's
single-view case). Features are centred with the training mean, as in the
authors' code.

References
----------
Lin Z., Ding G., Hu M., Wang J. (2015). Semantics-Preserving Hashing for
Cross-View Retrieval. CVPR. Section 3: the affinity distribution, the
Hamming-derived distribution, the objective KL(P||Q) + alpha ||abs(H) - 1||^2
and its gradient, the kernel logistic regression of each bit (SePH_km,
SePH_rnd). The paper's equation numbers could not be checked here (its text
was not reachable); the objective, gradient and optimiser follow the authors'
released MATLAB code (``minKLD.m``) and the ``SEPHkm`` settings (anchors,
kernel width, ``C = 0.01``) of a public cross-modal benchmark built on it.
van der Maaten L., Hinton G. (2008). Visualizing data using t-SNE. JMLR 9.
The seed (Tao & An, 2021, ref. [10]) cites SePH as 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["seph_affinity", "seph_objective", "seph_gradient", "seph_learn_codes", "KernelLogisticHash",
           "SemanticsPreservingHashing", "run"]

MODALITIES = ("mri", "pet")
#: The authors' optimiser for step 1 (minKLD.m).
STEP_SIZE, MOMENTUM, MIN_GAIN, INIT_SCALE = 500.0, 0.5, 0.01, 1e-4


def seph_affinity(labels) -> np.ndarray:
    """``P``: label cosines normalised to a distribution over ordered pairs, zero diagonal.

    Parameters
    ----------
    labels : array-like, (n,) int class indices or (n, c) 0/1 label vectors

    Returns
    -------
    ndarray, shape (n, n), float64, symmetric, summing to 1

    References
    ----------
    Lin et al. (2015), Section 3 (the semantic affinities as a probability distribution).
    """
    from .scm import scm_normalized_labels

    l_norm = scm_normalized_labels(labels)
    a = l_norm @ l_norm.T
    np.fill_diagonal(a, 0.0)
    total = a.sum()
    if not total > 0:
        raise ValueError("no two subjects share a label: the affinity distribution is empty")
    return a / total


def seph_objective(h, p, alpha: float):
    """``KL(P || Q(H)) + alpha || |H| - 1 ||_F^2`` in torch (differentiable).

    Parameters
    ----------
    h : torch.Tensor, (n, K), float
    p : array-like or torch.Tensor, (n, n)
        From :func:`seph_affinity`.
    alpha : float

    Returns
    -------
    torch.Tensor, scalar

    References
    ----------
    Lin et al. (2015), Section 3, the objective; the authors' ``minKLD.m``.
    """
    import torch

    p = torch.as_tensor(p, dtype=h.dtype, device=h.device)
    n = h.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=h.device)
    d = 0.25 * ((h[:, None, :] - h[None, :, :]) ** 2).sum(-1)
    num = 1.0 / (1.0 + d)
    q = num[off] / num[off].sum()
    p_off = p[off]
    positive = p_off > 0
    kl = (p_off[positive] * (torch.log(p_off[positive]) - torch.log(q[positive]))).sum()
    return kl + alpha * ((h.abs() - 1.0) ** 2).sum()


def _q_and_num(h: np.ndarray):
    sq = (h * h).sum(axis=1)
    d = 0.25 * np.maximum(sq[:, None] + sq[None, :] - 2.0 * h @ h.T, 0.0)
    num = 1.0 / (1.0 + d)
    np.fill_diagonal(num, 0.0)
    return num / num.sum(), num


def _objective_numpy(h: np.ndarray, p: np.ndarray, alpha: float) -> float:
    q, _ = _q_and_num(h)
    positive = p > 0
    kl = float((p[positive] * (np.log(p[positive]) - np.log(np.maximum(q[positive], 1e-300)))).sum())
    return kl + alpha * float(((np.abs(h) - 1.0) ** 2).sum())


def seph_gradient(h: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    """Analytic gradient of :func:`seph_objective`:
    ``sum_j (p_ij - q_ij) num_ij (h_i - h_j) + 2 alpha (|h_i| - 1) sign(h_i)``, ``num_ij = (1 + d_ij)^-1``.

    References
    ----------
    Lin et al. (2015), Section 3; the authors' ``minKLD.m``.
    """
    h = np.asarray(h, dtype=np.float64)
    q, num = _q_and_num(h)
    weights = (np.asarray(p) - q) * num
    return (np.diag(weights.sum(axis=1)) - weights) @ h + 2.0 * alpha * (np.abs(h) - 1.0) * np.sign(h)


def seph_learn_codes(p: np.ndarray, n_bits: int, alpha: float, n_iter: int = 100, seed: int = 0):
    """Step 1: minimise :func:`seph_objective` over relaxed codes H with the authors' t-SNE optimiser.

    Parameters
    ----------
    p : ndarray (n, n)
    n_bits : int
    alpha : float
        The weight as it enters the objective (the authors pass ``0.01 / (K n)``).
    n_iter : int, default 100
    seed : int

    Returns
    -------
    h : ndarray (n, K)
        The relaxed codes with the lowest objective met.
    history : ndarray (n_iter + 1,)
        The objective at the start and after every step.
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(p, dtype=np.float64)
    h = INIT_SCALE * rng.standard_normal((len(p), int(n_bits)))
    increments, gains = np.zeros_like(h), np.ones_like(h)
    history = [_objective_numpy(h, p, alpha)]
    best, best_h = history[0], h.copy()
    for _ in range(int(n_iter)):
        gradient = seph_gradient(h, p, alpha)
        same = np.sign(gradient) == np.sign(increments)
        gains = np.where(same, gains * 0.8, gains + 0.2)
        gains = np.maximum(gains, MIN_GAIN)
        increments = MOMENTUM * increments - STEP_SIZE * gains * gradient
        h = h + increments
        h = h - h.mean(axis=0)
        cost = _objective_numpy(h, p, alpha)
        history.append(cost)
        if cost < best:
            best, best_h = cost, h.copy()
    return best_h, np.asarray(history)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


@dataclass
class KernelLogisticHash:
    """Step 2 for one modality: one kernel logistic regression per bit on RBF features of anchors.

    Parameters
    ----------
    n_anchors : int, default 500
        k-means centres of the training features (``SePH_km``); all training
        points when there are no more of them.
    lam : float, default 0.01
        The weight ``lambda`` of ``lambda/2 w^T K_0 w`` (the authors' ``C``).
    seed : int, default 0
        k-means initialisation.
    max_iter : int, default 500
        L-BFGS iterations.

    Attributes (after fit)
    ----------------------
    anchors_ : ndarray (m, d)
    sigma2_ : float
        Kernel width: the mean squared distance between training samples.
    weights_ : ndarray (m, K)
    """

    n_anchors: int = 500
    lam: float = 0.01
    seed: int = 0
    max_iter: int = 500

    def kernel(self, x: np.ndarray) -> np.ndarray:
        """``phi(x)``: RBF kernel values against the anchors, shape (n, m)."""
        return np.exp(-_squared_distances(np.asarray(x, dtype=np.float64), self.anchors_) / (2.0 * self.sigma2_))

    def fit(self, x: np.ndarray, codes: np.ndarray) -> "KernelLogisticHash":
        """Fit every bit of ``codes`` (n, K) in ±1 from features ``x`` (n, d)."""
        from scipy.optimize import minimize
        from sklearn.cluster import KMeans

        x = np.asarray(x, dtype=np.float64)
        b = np.where(np.asarray(codes) >= 0, 1.0, -1.0)
        n = len(x)
        self.sigma2_ = float(_squared_distances(x, x).sum() / (n * n))
        if not self.sigma2_ > 0:
            raise ValueError("the training features are all equal: no kernel width")
        if n <= self.n_anchors:
            self.anchors_ = x.copy()
        else:
            clusters = KMeans(self.n_anchors, n_init=1, max_iter=100, random_state=self.seed).fit(x)
            self.anchors_ = clusters.cluster_centers_
        phi = self.kernel(x)
        k0 = np.exp(-_squared_distances(self.anchors_, self.anchors_) / (2.0 * self.sigma2_))
        # a bit and its negation (or a repeated bit) share one problem up to the sign of w: solve each once
        flips = np.where(b[0] < 0, -1.0, 1.0)
        unique, back = np.unique((b * flips).T, axis=0, return_inverse=True)
        b = unique.T
        m, k = phi.shape[1], b.shape[1]

        def loss(flat):
            w = flat.reshape(m, k)
            margin = b * (phi @ w)
            value = np.logaddexp(0.0, -margin).sum() + 0.5 * self.lam * np.sum(w * (k0 @ w))
            sigma = -b * np.exp(-np.logaddexp(0.0, margin))  # d/dz log(1 + e^{-b z}) = -b / (1 + e^{b z})
            gradient = phi.T @ sigma + self.lam * (k0 @ w)
            return value, gradient.ravel()

        result = minimize(loss, np.zeros(m * k), jac=True, method="L-BFGS-B",
                          options={"maxiter": self.max_iter, "gtol": 1e-6})
        self.weights_ = result.x.reshape(m, k)[:, np.asarray(back).ravel()] * flips
        return self

    def decision(self, x: np.ndarray) -> np.ndarray:
        return self.kernel(x) @ self.weights_

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted bits ``sign(phi(x)^T w_k)``, int8 ±1 (sign(0) = +1), shape (n, K)."""
        return np.where(self.decision(x) >= 0, 1, -1).astype(np.int8)


@dataclass
class SemanticsPreservingHashing:
    """SePH_km on paired features: unified codes from the labels, one kernel hash function per modality.

    Parameters
    ----------
    n_bits : int
    alpha : float, default 0.01
        Quantization weight, divided by ``K n`` inside (the authors' scaling).
    n_anchors : int, default 500
    lam : float, default 0.01
    n_iter : int, default 100
        Steps of step 1.
    seed : int, default 0

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> x = np.eye(3)[labels] @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(60, 5))
    >>> y = np.eye(3)[labels] @ rng.normal(size=(3, 4)) + 0.3 * rng.normal(size=(60, 4))
    >>> model = SemanticsPreservingHashing(8).fit(x, y, labels)
    >>> model.encode(y, "pet").shape
    (60, 8)

    References
    ----------
    Lin et al. (2015).
    """

    n_bits: int
    alpha: float = 0.01
    n_anchors: int = 500
    lam: float = 0.01
    n_iter: int = 100
    seed: int = 0

    def fit(self, x: np.ndarray, y: np.ndarray, labels):
        if int(self.n_bits) != self.n_bits or self.n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {self.n_bits!r}")
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if len(x) != len(y) or len(x) < 2:
            raise ValueError(f"x and y must be paired rows (at least two), got {len(x)} and {len(y)}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("x and y must be finite")
        n = len(x)
        p = seph_affinity(labels)
        if p.shape != (n, n):
            raise ValueError(f"labels must have {n} rows, got {p.shape[0]}")
        self.alpha_effective_ = self.alpha / (int(self.n_bits) * n)
        h, self.history_ = seph_learn_codes(p, self.n_bits, self.alpha_effective_, self.n_iter, self.seed)
        self.train_codes_ = np.where(h >= 0, 1, -1).astype(np.int8)
        self.means_ = {"mri": x.mean(axis=0), "pet": y.mean(axis=0)}
        self.hash_functions_ = {
            modality: KernelLogisticHash(self.n_anchors, self.lam, self.seed).fit(data - self.means_[modality],
                                                                                 self.train_codes_)
            for modality, data in zip(MODALITIES, (x, y))}
        return self

    def encode(self, x: np.ndarray, modality: str) -> np.ndarray:
        """A modality's codes, int8 ±1, shape (n, K): that modality's kernel hash function alone."""
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r} must be one of {MODALITIES}")
        if not hasattr(self, "hash_functions_"):
            raise ValueError("call fit() before encode()")
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return self.hash_functions_[modality].predict(x - self.means_[modality])


def run(context, n_bits: int, *, features: str = "roi", atlas: str = "aal90", n_pca: int = 256,
        alpha: float = 0.01, n_anchors: int = 500, lam: float = 0.01, n_iter: int = 100):
    """The comparison's entry point: SePH_km fitted on the seed's training pairs and their diagnoses.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    features : {"roi", "pca"}, default "roi"
        See :func:`neurohash_lite.shallow.features.seed_features`.
    atlas : str, default "aal90"
    n_pca : int, default 256
    alpha, n_anchors, lam, n_iter
        See :class:`SemanticsPreservingHashing`.

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    import time

    from threadpoolctl import threadpool_limits

    from ..runner import MethodRun
    from .features import seed_features

    with threadpool_limits(1):  # small dense problems: BLAS threads only add synchronisation
        chosen = seed_features(context, features, atlas=atlas, n_pca=n_pca)
        started = time.perf_counter()
        t_mri, t_pet, t_labels = chosen["train"]
        model = SemanticsPreservingHashing(n_bits, alpha=alpha, n_anchors=n_anchors, lam=lam, n_iter=n_iter,
                                           seed=context.data.seed).fit(t_mri, t_pet, t_labels)
        codes = {}
        for part in ("query", "database"):
            mri, pet, codes[part, "labels"] = chosen[part]
            codes[part, "mri"], codes[part, "pet"] = model.encode(mri, "mri"), model.encode(pet, "pet")
        train_accuracy = {m: float((model.hash_functions_[m].predict(x - model.means_[m])
                                    == model.train_codes_).mean()) for m, x in zip(MODALITIES, (t_mri, t_pet))}
    hyper = {"variant": "SePH_km", **chosen.description, "alpha": alpha,
             "alpha_effective": model.alpha_effective_, "n_anchors": n_anchors,
             "n_anchors_used": int(len(model.hash_functions_["mri"].anchors_)), "lam": lam, "n_iter": n_iter,
             "kernel": "rbf, sigma^2 = mean squared distance between training samples",
             "kl_objective_final": float(model.history_.min()),
             "train_bit_accuracy_mri": train_accuracy["mri"], "train_bit_accuracy_pet": train_accuracy["pet"]}
    return MethodRun(codes, time.perf_counter() - started, 0, hyper)
