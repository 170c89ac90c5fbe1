"""Deep Supervised Hashing (DSH), made cross-modal.

Liu, Wang, Shan & Chen (2016) train on pairs of images ``(I_1, I_2)`` with
``y = 0`` when they are similar and ``y = 1`` otherwise, a contrastive loss on
the squared Euclidean distance of their relaxed codes ``b`` and a margin
``m``, plus a regulariser that pulls every entry's magnitude to 1 (their
relaxation of the constraint ``b in {-1, +1}^K``):

``L_r(b_1, b_2, y) = 1/2 (1 - y) ||b_1 - b_2||^2 + 1/2 y max(m - ||b_1 - b_2||^2, 0)
                     + alpha (|| |b_1| - 1 ||_1 + || |b_2| - 1 ||_1)``,

with ``m = 2K`` and ``alpha = 0.01`` (Luo et al. 2023 restate it as their
Eqs. (10)-(11)). The normalisation follows the authors' released Caffe layer
(``lhmRyan/deep-supervised-hashing-DSH``, commit 631901f,
``src/caffe/layers/hashing_loss_layer.cpp``): every pair of the mini-batch
(their "online pair generation"), the contrastive sum over the ``n(n - 1)/2``
unordered pairs divided by ``n(n - 1)`` (the paper's factor 1/2 on a mean over
pairs), the regulariser summed over the K bits of a code and averaged over
the n images; ``CIFAR-10/train_test.prototxt`` sets ``bi_margin: 24`` for 12
bits (= 2K) and ``tradeoff: 0.01``.

Cross-modal, with two modalities (sMRI ``u_x``, PET ``u_y``) and three
diagnoses:

- the pairs are the batch's sMRI-PET pairs, ``d_ij^2 = ||u_i^x - u_j^y||^2``;
  a subject's own two scans are a similar pair; with one diagnosis per scan,
  ``s_ij = 1 - y_ij = 1`` when the two diagnoses are equal;
- the contrastive term is ``(1/|S|) sum_ij [1/2 s_ij d_ij^2 + 1/2 (1 - s_ij)
  max(m - d_ij^2, 0)]`` over the ``n_x n_y`` cross-modal pairs;
- the regulariser is each scan's ``sum_k ||u_k| - 1|`` averaged over the scans
  of a modality, the two modalities averaged.

DSH's network ends in a linear layer (it argues that a saturating
nonlinearity slows training); the shared network here ends in tanh, so
``|u| < 1`` and the regulariser is ``sum_k (1 - |u_k|)``: it still pulls every
entry to +-1, and its gradient is the same ``-sign(u)`` inside (-1, 1).
Both terms grow with K (the margin is 2K, a code's regulariser at most K), so
their ratio, and alpha's meaning, do not change with the code length.

References
----------
Liu H., Wang R., Shan S., Chen X. (2016). Deep Supervised Hashing for Fast
Image Retrieval. CVPR, 2064-2072. Released code:
https://github.com/lhmRyan/deep-supervised-hashing-DSH.
Luo X. et al. (2023). A Survey on Deep Hashing Methods. ACM TKDD 17(1),
Eqs. (10)-(11).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, cross_modal_batch

__all__ = ["dsh_contrastive_loss", "dsh_regularizer", "DSHLoss"]


def dsh_contrastive_loss(u_x: torch.Tensor, u_y: torch.Tensor, s, margin: float) -> torch.Tensor:
    """``(1/|S|) sum_ij [1/2 s_ij d_ij^2 + 1/2 (1 - s_ij) max(margin - d_ij^2, 0)]``, ``d_ij^2 = ||u_i^x - u_j^y||^2``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1} (1: similar)
    margin : float
        ``m`` in squared distance units, > 0 (DSH: 2K).

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    Liu et al. (2016), the pairwise loss; released ``hashing_loss_layer.cpp``.
    The squared distance is expanded from the differences, not from
    ``||a||^2 + ||b||^2 - 2 <a, b>``, so it is exactly 0 for equal codes and
    its gradient there is 0, not NaN.
    """
    _check_pair(u_x, u_y)
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    d2 = ((u_x[:, None, :] - u_y[None, :, :]) ** 2).sum(dim=2)
    s = torch.as_tensor(s, device=d2.device)
    if s.shape != d2.shape:
        raise ValueError(f"s must have shape {tuple(d2.shape)}, got {tuple(s.shape)}")
    s = s.to(d2.dtype)
    return (0.5 * s * d2 + 0.5 * (1 - s) * (margin - d2).clamp(min=0)).mean()


def dsh_regularizer(u: torch.Tensor) -> torch.Tensor:
    """``(1/n) sum_i || |u_i| - 1 ||_1``: the L1 pull of every entry's magnitude to 1.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, in [0, K] for codes in [-1, 1] (0 when every entry is +-1)

    References
    ----------
    Liu et al. (2016), the regulariser of the relaxed loss; released
    ``hashing_loss_layer.cpp`` (summed over bits, averaged over images).
    """
    if u.ndim != 2 or u.numel() == 0:
        raise ValueError(f"u must have shape (n, K), non-empty, got {tuple(u.shape)}")
    return (u.abs() - 1).abs().sum(dim=1).mean()


class DSHLoss(nn.Module):
    """``L = L_contrastive(u_x, u_y; m) + alpha (R(u_x) + R(u_y))/2``, DSH over the batch's sMRI-PET pairs.

    Parameters
    ----------
    n_bits : int
    alpha : float, default 0.01
        Weight of the regulariser (the paper's and the released code's value).
    margin : float, optional
        ``m``; default ``2 K`` (the paper's choice).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: codes (n, K);
    returns ``(total, parts)`` with parts ``contrastive`` and ``regularizer``.

    References
    ----------
    Liu et al. (2016); ``lhmRyan/deep-supervised-hashing-DSH`` (released code).
    """

    def __init__(self, n_bits: int, alpha: float = 0.01, margin: float | None = None) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        margin = 2.0 * n_bits if margin is None else float(margin)
        if not (math.isfinite(margin) and margin > 0):
            raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
        self.n_bits, self.alpha, self.margin = int(n_bits), float(alpha), margin

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits, the loss was built for {self.n_bits}")
        contrastive = dsh_contrastive_loss(u_x, u_y, s, self.margin)
        regularizer = (dsh_regularizer(u_x) + dsh_regularizer(u_y)) / 2
        total = contrastive + self.alpha * regularizer
        return total, {"contrastive": contrastive.detach(), "regularizer": regularizer.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, alpha={self.alpha}, margin={self.margin}"
