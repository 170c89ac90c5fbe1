"""Central Similarity Quantization (CSQ): one hash centre per class.

Yuan et al. (2020) give every class a *hash centre* ``c`` in {-1, +1}^K, with
centres far apart: for K a power of two, the rows of a Hadamard matrix
``H_K`` and of ``-H_K`` (any two distinct rows of ``H_K`` are K/2 bits apart;
their Section 3.2.1), else random Bernoulli codes. Codes are pulled towards
their class's centre by a bitwise binary cross-entropy, the central
similarity loss (their Eq. (5)), and towards +-1 by a quantization term
(their Eq. (6)):

``L_C = -(1/K) sum_k [c'_k log h'_k + (1 - c'_k) log(1 - h'_k)]``, ``h' = (h + 1)/2``, ``c' = (c + 1)/2``,
``L_Q = sum_k log cosh(|h_k| - 1)``,  ``L = L_C + lambda L_Q`` (their Eq. (7)).

Cross-modal: both modalities share the class's centre (a subject's sMRI and
PET codes are pulled to the same point), and both terms are means over the
batch and both modalities.

References
----------
Yuan L., Wang T., Zhang X., Tay F. E. H., Jie Z., Liu W., Feng J. (2020).
Central Similarity Quantization for Efficient Image and Video Retrieval.
CVPR. Section 3.2.1 and Eqs. (5)-(7).
Sylvester J. J. (1867). Thoughts on inverse orthogonal matrices, [...].
Philosophical Magazine 34 (the construction ``H_2K = [[H_K, H_K], [H_K, -H_K]]``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _as_labels, _check_pair

__all__ = ["csq_hash_centres", "csq_central_loss", "csq_quantization_loss", "CSQLoss"]

# Bound of (u + 1)/2 away from 0 and 1 in the cross-entropy (representable below 1 in float32).
_P_MIN = 1e-7


def csq_hash_centres(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Hash centres, one per class, from a Hadamard matrix.

    For K a power of two: the first ``n_classes`` rows of ``[H_K; -H_K]``
    (Sylvester's construction, :func:`scipy.linalg.hadamard`), which needs
    ``n_classes <= 2K``. Otherwise: random +-1 codes from ``seed`` (CSQ's
    Bernoulli centres).

    Parameters
    ----------
    n_classes : int
    n_bits : int
        Code length K.
    seed : int
        Only used when K is not a power of two.

    Returns
    -------
    torch.Tensor, float32, shape (n_classes, n_bits), values in {-1, +1}

    References
    ----------
    Yuan et al. (2020), Section 3.2.1.
    """
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if int(n_bits) != n_bits or n_bits < 1:
        raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
    n_classes, n_bits = int(n_classes), int(n_bits)
    if n_bits & (n_bits - 1) == 0:
        if n_classes > 2 * n_bits:
            raise ValueError(f"a Hadamard matrix of order {n_bits} gives at most {2 * n_bits} centres, "
                             f"n_classes={n_classes}")
        hadamard = scipy.linalg.hadamard(n_bits)
        centres = np.concatenate([hadamard, -hadamard])[:n_classes]
    else:
        rng = np.random.default_rng(seed)
        centres = np.where(rng.random((n_classes, n_bits)) < 0.5, -1, 1)
    return torch.as_tensor(centres, dtype=torch.float32)


def csq_central_loss(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean bitwise cross-entropy between ``(u + 1)/2`` and ``(c + 1)/2``.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K), values in [-1, 1]
    centres : torch.Tensor, shape (n, K), values in {-1, +1}
        The centre of each row's class.

    Returns
    -------
    torch.Tensor, scalar, nats per bit, >= 0. ``(u + 1)/2`` is clamped to
    [1e-7, 1 - 1e-7] first: a tanh that saturates to exactly +-1 (float32
    does so beyond |z| ~ 9) then gives at most -log(1e-7) ~ 16 nats per bit
    and a zero gradient, not log(0) and a NaN gradient.

    References
    ----------
    Yuan et al. (2020), Eq. (5), averaged over the batch.
    """
    if u.ndim != 2 or u.shape != centres.shape:
        raise ValueError(f"u and centres must have the same shape (n, K), got {tuple(u.shape)} and "
                         f"{tuple(centres.shape)}")
    # written out rather than F.binary_cross_entropy, which refuses to run under CUDA autocast
    p = ((u + 1) / 2).clamp(_P_MIN, 1 - _P_MIN)
    target = ((centres + 1) / 2).to(u.dtype)
    return -(target * torch.log(p) + (1 - target) * torch.log1p(-p)).mean()


def csq_quantization_loss(u: torch.Tensor) -> torch.Tensor:
    """Mean ``log cosh(|u| - 1)`` over entries: 0 when every entry is +-1.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    Yuan et al. (2020), Eq. (6), as a mean instead of a sum.
    """
    x = u.abs() - 1
    # log cosh(x) = |x| + softplus(-2|x|) - log 2, stable for large |x|
    return (x.abs() + F.softplus(-2 * x.abs()) - math.log(2.0)).mean()


class CSQLoss(nn.Module):
    """``L = (L_C(u_x) + L_C(u_y))/2 + lambda (L_Q(u_x) + L_Q(u_y))/2`` with shared class centres.

    Parameters
    ----------
    n_bits : int
    n_classes : int, default 3
    lambda_q : float, default 1e-4
        Weight of the quantization term. 1e-4 is the weight DeepHash-pytorch's
        CSQ uses and the one the official repository's README gives for 64-bit
        ImageNet with AlexNet (its argparse default is 0.05); both weight a
        squared ``(|u| - 1)^2`` term, not the log cosh used here.
    seed : int, default 0
        For random centres when K is not a power of two.

    Attributes
    ----------
    centres : torch.Tensor (buffer), shape (n_classes, n_bits)

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``; returns ``(total, parts)``,
    parts ``central`` and ``quantization``.

    References
    ----------
    Yuan et al. (2020), Eq. (7).
    """

    def __init__(self, n_bits: int, n_classes: int = 3, lambda_q: float = 1e-4, seed: int = 0) -> None:
        super().__init__()
        if not math.isfinite(lambda_q) or lambda_q < 0:
            raise ValueError(f"lambda_q must be a finite number >= 0, got {lambda_q!r}")
        self.register_buffer("centres", csq_hash_centres(n_classes, n_bits, seed))
        self.n_bits, self.n_classes, self.lambda_q = int(n_bits), int(n_classes), float(lambda_q)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        labels_y = labels_x if labels_y is None else labels_y
        _check_pair(u_x, u_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits, the loss was built for {self.n_bits}")
        u_x, u_y = u_x.float() if u_x.dtype.itemsize < 4 else u_x, u_y.float() if u_y.dtype.itemsize < 4 else u_y
        labels_x = _as_labels(labels_x, u_x.shape[0], "labels_x", u_x.device)
        labels_y = _as_labels(labels_y, u_y.shape[0], "labels_y", u_x.device)
        for name, labels in (("labels_x", labels_x), ("labels_y", labels_y)):
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise ValueError(f"{name} must lie in 0..{self.n_classes - 1}")
        centres = self.centres.to(u_x.dtype)
        central = (csq_central_loss(u_x, centres[labels_x]) + csq_central_loss(u_y, centres[labels_y])) / 2
        quantization = (csq_quantization_loss(u_x) + csq_quantization_loss(u_y)) / 2
        total = central + self.lambda_q * quantization
        return total, {"central": central.detach(), "quantization": quantization.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}, lambda_q={self.lambda_q}"
