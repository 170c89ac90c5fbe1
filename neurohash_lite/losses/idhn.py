"""Improved Deep Hashing Network (IDHN): soft pairwise similarity, made cross-modal.

Zhang, Zou, Lin, Chen & Wang (2020) write for multi-label images. A pair's
similarity is the cosine of the two label vectors,
``s_ij = <l_i, l_j> / (||l_i|| ||l_j||) in [0, 1]``; a pair is *hard* when
``s_ij`` is 0 or 1 and *soft* otherwise. Hard pairs get a pairwise
cross-entropy (DPSH's likelihood with a scaled inner product), soft pairs a
squared loss that asks the codes' normalised inner product to equal the
similarity, and a quantization term pulls every entry to +-1:

``L = (1/|S|) sum_ij [ M_ij (softplus(theta_ij) - s_ij theta_ij)
                       + (1 - M_ij) gamma K ((<u_i, u_j> + K)/(2K) - s_ij)^2 ]
      + alpha mean | |u| - 1 |``,
``theta_ij = beta <u_i, u_j> / K``,  ``M_ij = 1`` for hard pairs.

``(<u_i, u_j> + K)/(2K)`` is ``1 - d_H/K`` for binary codes, the fraction of
agreeing bits, so a soft pair with ``s = 0.5`` asks for codes that agree on
half their bits. Source: the authors' released code
(``pectinid16/IDHN``, commit 5f3953d, ``train.py``, ``hashing_loss``): the
cosine of the label vectors, hard pairs where it is above 0.99 or below
0.01, the cross-entropy on ``beta <u_i, u_j> / K``, the squared loss
``gamma K ((<u_i, u_j> + K)/(2K) - s_ij)^2``, both averaged over all n^2 pairs of
the batch, and ``alpha mean||u| - 1|``; defaults ``beta = 5`` (their
"belta"), ``gamma = 0.1`` ("gama"), ``alpha = 0.1``. The paper's text
(arXiv:1803.02987) could not be read in this session beyond its abstract,
so no equation numbers are given. DeepHash-pytorch's ``IDHN.py`` writes the
squared loss differently (``(alpha <u_i, u_j> + K - 2 s K)^2``); the released
form is used here.

What remains of "soft" with one diagnosis per scan
--------------------------------------------------
The labels here are one-hot (NC, MCI or AD), so the cosine of two label
vectors is 1 for equal diagnoses and 0 otherwise: **every pair is hard**,
``M = 1`` everywhere, and the squared (soft) branch never contributes. IDHN
then reduces to

``L = (1/|S|) sum_ij [softplus(beta Theta_ij) - s_ij beta Theta_ij] + alpha mean | |u| - 1 |``,
``Theta_ij = <u_i^x, u_j^y> / K``,

which is Method A's likelihood with its scale fixed at ``a = beta = 5`` and
no pair weights (HashNet's form without its weights), or DPSH's likelihood
with the inner product scaled by ``beta / K`` instead of 1/2 (the two
coincide at K = 10), plus DSH's L1 quantization per entry. The soft branch is
implemented and tested all the same (:func:`idhn_pair_loss` takes any
similarity in [0, 1]); it would matter with graded relevance, e.g. a
similarity from clinical scores instead of the diagnosis.

Cross-modal, with two modalities (sMRI ``u_x``, PET ``u_y``):

- the pairs are the batch's sMRI-PET pairs, ``<u_i^x, u_j^y>``; a subject's
  own two scans are a similar (hard) pair;
- the quantization term is the mean over each modality's entries, the two
  modalities averaged;
- IDHN's network ends in softsign, ``z / (1 + |z|)``; the shared network's
  tanh maps to the same (-1, 1).

References
----------
Zhang Z., Zou Q., Lin Y., Chen L., Wang S. (2020). Improved Deep Hashing With
Soft Pairwise Similarity for Multi-Label Image Retrieval. IEEE Transactions
on Multimedia 22(2), 540-553. Released code: https://github.com/pectinid16/IDHN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, cross_modal_batch

__all__ = ["idhn_soft_similarity", "idhn_hard_mask", "idhn_pair_loss", "idhn_quantization_loss", "IDHNLoss"]

#: A pair is hard when its similarity is within this of 0 or 1 (the released code's 0.01 / 0.99).
HARD_TOLERANCE = 0.01


def idhn_soft_similarity(labels_x: torch.Tensor, labels_y: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of label vectors: ``<l_i, l_j> / (||l_i|| ||l_j||)``.

    Parameters
    ----------
    labels_x : torch.Tensor, shape (n_x, C), non-negative
        One-hot or multi-hot label vectors (a row of zeros gives similarity 0).
    labels_y : torch.Tensor, shape (n_y, C), non-negative

    Returns
    -------
    torch.Tensor, float, shape (n_x, n_y), values in [0, 1]; with one-hot
    labels, 1 where the classes are equal and 0 elsewhere.

    References
    ----------
    Zhang et al. (2020), the pairwise similarity; ``pectinid16/IDHN`` ``train.py``.
    """
    labels_x, labels_y = torch.as_tensor(labels_x), torch.as_tensor(labels_y)
    if labels_x.ndim != 2 or labels_y.ndim != 2 or labels_x.shape[1] != labels_y.shape[1]:
        raise ValueError(f"label vectors must have shapes (n_x, C) and (n_y, C), got {tuple(labels_x.shape)} "
                         f"and {tuple(labels_y.shape)}")
    dtype = labels_x.dtype if labels_x.is_floating_point() else torch.get_default_dtype()
    lx, ly = labels_x.to(dtype), labels_y.to(dtype)
    norms = lx.norm(dim=1, keepdim=True) * ly.norm(dim=1, keepdim=True).T
    return (lx @ ly.T) / norms.clamp(min=torch.finfo(dtype).tiny)


def idhn_hard_mask(s: torch.Tensor) -> torch.Tensor:
    """``M_ij = 1`` for hard pairs (``s_ij`` within 0.01 of 0 or 1), 0 for soft ones.

    Parameters
    ----------
    s : torch.Tensor, shape (n_x, n_y), values in [0, 1]

    Returns
    -------
    torch.Tensor, same shape and dtype as ``s``, values in {0, 1}
    """
    return ((s > 1 - HARD_TOLERANCE) | (s < HARD_TOLERANCE)).to(s.dtype)


def idhn_pair_loss(u_x: torch.Tensor, u_y: torch.Tensor, s, beta: float = 5.0, gamma: float = 0.1):
    """IDHN's pairwise term: cross-entropy on hard pairs, squared loss on soft pairs.

    ``(1/|S|) sum_ij [M_ij (softplus(theta_ij) - s_ij theta_ij)
    + (1 - M_ij) gamma K ((<u_i^x, u_j^y> + K)/(2K) - s_ij)^2]``,
    ``theta = beta u_x u_y^T / K``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in [0, 1]
        Soft similarity (:func:`idhn_soft_similarity`).
    beta : float, default 5.0
        Scale of the normalised inner product in the cross-entropy, > 0.
    gamma : float, default 0.1
        Weight of the squared loss of soft pairs, >= 0.

    Returns
    -------
    total : torch.Tensor, scalar
    hard, soft : torch.Tensor, scalars
        The two branches' sums divided by |S| (``total = hard + soft``).

    References
    ----------
    Zhang et al. (2020); ``pectinid16/IDHN`` ``train.py`` (``hashing_loss``).
    """
    _check_pair(u_x, u_y)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    n_bits = u_x.shape[1]
    inner = (u_x @ u_y.T).to(u_x.dtype)  # float32 after the product, even under autocast
    s = torch.as_tensor(s, device=inner.device)
    if s.shape != inner.shape:
        raise ValueError(f"s must have shape {tuple(inner.shape)}, got {tuple(s.shape)}")
    s = s.to(inner.dtype)
    if s.numel() and (s.min() < 0 or s.max() > 1):
        raise ValueError("s must lie in [0, 1]")
    hard_mask = idhn_hard_mask(s)
    theta = beta * inner / n_bits
    cross_entropy = F.softplus(theta) - s * theta
    squared = gamma * n_bits * ((inner + n_bits) / (2 * n_bits) - s) ** 2
    hard = (hard_mask * cross_entropy).mean()
    soft = ((1 - hard_mask) * squared).mean()
    return hard + soft, hard, soft


def idhn_quantization_loss(u: torch.Tensor) -> torch.Tensor:
    """``mean | |u| - 1 |`` over entries: 0 when every entry is +-1.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1] for codes in [-1, 1]

    References
    ----------
    ``pectinid16/IDHN`` ``train.py`` (the regulariser).
    """
    if u.ndim != 2 or u.numel() == 0:
        raise ValueError(f"u must have shape (n, K), non-empty, got {tuple(u.shape)}")
    return (u.abs() - 1).abs().mean()


class IDHNLoss(nn.Module):
    """``L = L_pairs(u_x, u_y, s) + alpha (Q(u_x) + Q(u_y))/2`` over the batch's sMRI-PET pairs.

    ``s`` is the cosine of the one-hot diagnosis vectors, so with these
    labels every pair is hard (see the module's docstring).

    Parameters
    ----------
    n_bits : int
    beta : float, default 5.0
        Scale of ``<u_i, u_j>/K`` in the cross-entropy of hard pairs.
    gamma : float, default 0.1
        Weight of the squared loss of soft pairs.
    alpha : float, default 0.1
        Weight of the quantization term.
    n_classes : int, default 3
        Length of the one-hot label vectors (NC, MCI, AD).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: codes (n, K), integer
    labels (n,); returns ``(total, parts)`` with parts ``hard``, ``soft``,
    ``quantization`` and ``soft_fraction`` (the share of soft pairs, 0 with
    one-hot labels).

    References
    ----------
    Zhang et al. (2020); ``pectinid16/IDHN`` (released code).
    """

    def __init__(self, n_bits: int, beta: float = 5.0, gamma: float = 0.1, alpha: float = 0.1,
                 n_classes: int = 3) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
        for name, value in (("gamma", gamma), ("alpha", alpha)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if int(n_classes) != n_classes or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        self.n_bits, self.beta, self.gamma, self.alpha = int(n_bits), float(beta), float(gamma), float(alpha)
        self.n_classes = int(n_classes)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, _ = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits, the loss was built for {self.n_bits}")
        for name, labels in (("labels_x", labels_x), ("labels_y", labels_y)):
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise ValueError(f"{name} must lie in 0..{self.n_classes - 1}")
        s = idhn_soft_similarity(F.one_hot(labels_x.long(), self.n_classes).to(u_x.dtype),
                                 F.one_hot(labels_y.long(), self.n_classes).to(u_x.dtype))
        pairs, hard, soft = idhn_pair_loss(u_x, u_y, s, self.beta, self.gamma)
        quantization = (idhn_quantization_loss(u_x) + idhn_quantization_loss(u_y)) / 2
        total = pairs + self.alpha * quantization
        soft_fraction = 1 - idhn_hard_mask(s).mean()
        return total, {"hard": hard.detach(), "soft": soft.detach(), "quantization": quantization.detach(),
                       "soft_fraction": soft_fraction.detach()}

    def extra_repr(self) -> str:
        return (f"n_bits={self.n_bits}, beta={self.beta}, gamma={self.gamma}, alpha={self.alpha}, "
                f"n_classes={self.n_classes}")
