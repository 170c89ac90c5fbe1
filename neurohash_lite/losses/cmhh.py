"""Cross-Modal Hamming Hashing (CMHH) as a loss on the shared path: an exponential focal loss in Hamming space.

Cao, Liu, Long and Wang (ECCV 2018) want similar cross-modal pairs *inside*
a small Hamming ball, not merely closer than dissimilar ones. They model the
probability that a pair is similar as an exponential function of its
Hamming distance,

    p(s_ij = 1 | h_i, h_j) = exp(-beta d_H(h_i, h_j)),    p(s_ij = 0 | .) = 1 - exp(-beta d_H),

with the Hamming distance of continuous codes relaxed through their angle
(as in the same authors' Deep Cauchy Hashing),

    d_H(h_i, h_j) = K/2 (1 - cos(h_i, h_j)),      equal to the Hamming distance for ±1 codes,

and replace the cross-entropy of those probabilities by the focal loss of
Lin et al. (2017), which down-weights the pairs already well placed:

    L = sum_ij w_ij [ s_ij (1 - p_ij)^gamma (-log p_ij) + (1 - s_ij) p_ij^gamma (-log(1 - p_ij)) ],

``-log p_ij = beta d_H``. The weights ``w_ij = |S| / |S_1|`` for similar and
``|S| / |S_0|`` for dissimilar pairs balance the two kinds (HashNet's and
DCH's weighting, :func:`~neurohash_lite.losses.ahs_pair_weights`). A
quantization loss pulls each code towards the binary hypercube's diagonal
directions, ``Q = sum_i beta d_H(|h_i|, 1)``: the exponential model's
negative log-likelihood that ``|h_i|`` and the all-ones code agree, zero
exactly when every entry of ``h_i`` has the same magnitude (so that its sign
loses nothing). The objective is ``L + lambda Q``.

**Changes for the shared path.** ``h_i`` is the sMRI branch's code of
subject i and ``h_j`` the PET branch's code of subject j; the pairs are the
batch's sMRI-PET pairs, ``s_ij = 1`` when the diagnoses agree (a subject's
two scans are a similar pair). ``L`` is divided by the number of pairs and
``Q`` averaged over the 2n codes of the batch. ``-log(1 - p)`` is infinite at
zero distance; it is computed as ``-log(max(-expm1(-beta d), 1e-6))``, so a
dissimilar pair with identical codes costs at most ``-log 1e-6`` (13.8 nats)
and every gradient stays finite.

**Hyperparameters.** ``beta = 0.5``, ``gamma = 2``: the values of the
torchcmh re-implementation (whose author notes that the paper gives none);
``gamma = 2`` is also the focal loss's own default. ``lambda = 0.1`` is the
book's choice (torchcmh switches the quantization off). CMHH trains with
SGD and its own schedule; here the comparison's budget (Adam at 1e-3, 3
pretraining and 15 loss epochs at book tier) is used unchanged.

References
----------
Cao Y., Liu B., Long M., Wang J. (2018). Cross-Modal Hamming Hashing. ECCV,
pp. 202-218: the exponential probability in Hamming space, the pairwise
focal loss with its weights for the imbalance of similar and dissimilar
pairs, and the quantization loss. The paper's text could not be read here
(only its abstract), so its equation numbers are not given and the forms
above are the best reconstruction from the abstract, the same authors' Deep
Cauchy Hashing (Cao et al., CVPR 2018: the relaxed distance, the weights, a
quantization loss of the same shape with the Cauchy model) and the torchcmh
re-implementation (https://github.com/WangGodder/torchcmh,
``torchcmh/training/CMHH.py``: ``exp(-beta d)`` and the focal loss).
Lin T.-Y., Goyal P., Girshick R., He K., Dollar P. (2017). Focal Loss for Dense Object Detection. ICCV.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, ahs_pair_weights, cross_modal_batch

__all__ = ["cmhh_hamming_distance", "cmhh_similar_probability", "cmhh_focal_loss", "cmhh_quantization_loss",
           "CMHHLoss", "LOG_FLOOR"]

#: Floor of ``1 - p`` inside the logarithm of a dissimilar pair's loss.
LOG_FLOOR = 1e-6


def cmhh_hamming_distance(u_a: torch.Tensor, u_b: torch.Tensor) -> torch.Tensor:
    """``d_H(h_i, h_j) = K/2 (1 - cos(h_i, h_j))`` for every pair, shape (n_a, n_b), in [0, K].

    The Hamming distance for ±1 codes.

    References
    ----------
    Cao et al. (2018), the relaxed Hamming distance (shared with Deep Cauchy Hashing).
    """
    _check_pair(u_a, u_b)
    k = u_a.shape[1]
    cosine = F.normalize(u_a, dim=1, eps=1e-12) @ F.normalize(u_b, dim=1, eps=1e-12).T
    return 0.5 * k * (1.0 - cosine)


def cmhh_similar_probability(distance: torch.Tensor, beta: float) -> torch.Tensor:
    """``p(s = 1 | d) = exp(-beta d)``: CMHH's probability that a pair at Hamming distance d is similar.

    References
    ----------
    Cao et al. (2018), the exponential distribution in Hamming space.
    """
    return torch.exp(-beta * distance)


def cmhh_focal_loss(u_x: torch.Tensor, u_y: torch.Tensor, s, beta: float, gamma: float) -> torch.Tensor:
    """The weighted exponential focal loss over a batch's cross-modal pairs, divided by their number.

    ``(1/|S|) sum_ij w_ij [s_ij (1 - p)^gamma beta d + (1 - s_ij) p^gamma (-log(1 - p))]``,
    ``p = exp(-beta d)``, ``d`` from :func:`cmhh_hamming_distance`, ``w`` from
    :func:`~neurohash_lite.losses.ahs_pair_weights`.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1}
    beta : float
        Scale of the exponential, > 0.
    gamma : float
        Focusing parameter, 0 (the weighted cross-entropy) or >= 1.

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    Cao et al. (2018), the pairwise focal loss and its weights; Lin et al. (2017).
    """
    distance = cmhh_hamming_distance(u_x, u_y)
    s = torch.as_tensor(s, device=distance.device)
    if s.shape != distance.shape:
        raise ValueError(f"s must have shape {tuple(distance.shape)}, got {tuple(s.shape)}")
    s = s.to(distance.dtype)
    w = ahs_pair_weights(s)
    p = cmhh_similar_probability(distance, beta)
    similar = (1.0 - p) ** gamma * (beta * distance)
    dissimilar = p ** gamma * -torch.log(torch.clamp(-torch.expm1(-beta * distance), min=LOG_FLOOR))
    return (w * (s * similar + (1.0 - s) * dissimilar)).mean()


def cmhh_quantization_loss(u: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over codes of ``beta d_H(|h_i|, 1)``: zero when all entries of a code have one magnitude.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)
    beta : float

    Returns
    -------
    torch.Tensor, scalar, in [0, beta K/2]

    References
    ----------
    Cao et al. (2018), the quantization loss (reconstructed, see the module docstring).
    """
    if u.ndim != 2 or u.shape[0] == 0:
        raise ValueError(f"u must have shape (n, K) with n >= 1, got {tuple(u.shape)}")
    ones = torch.ones(1, u.shape[1], dtype=u.dtype, device=u.device)
    return beta * cmhh_hamming_distance(u.abs(), ones).mean()


class CMHHLoss(nn.Module):
    """``L + lambda Q``: CMHH's weighted exponential focal loss and its quantization loss.

    Parameters
    ----------
    n_bits : int
    beta : float, default 0.5
        Scale of the exponential probability.
    gamma : float, default 2.0
        Focusing parameter of the focal loss, 0 or >= 1.
    lambda_q : float, default 0.1
        Weight of the quantization loss.

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)`` with paired rows (n, K);
    returns ``(total, parts)``, parts ``focal`` and ``quantization``.

    References
    ----------
    Cao et al. (2018).
    """

    def __init__(self, n_bits: int, beta: float = 0.5, gamma: float = 2.0, lambda_q: float = 0.1) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
        if not math.isfinite(gamma) or not (gamma == 0 or gamma >= 1):
            raise ValueError(f"gamma must be 0 or a finite number >= 1 (below 1 the focal weight (1 - p)^gamma "
                             f"has an infinite slope at zero distance), got {gamma!r}")
        if not math.isfinite(lambda_q) or lambda_q < 0:
            raise ValueError(f"lambda_q must be a finite number >= 0, got {lambda_q!r}")
        self.n_bits, self.beta, self.gamma, self.lambda_q = int(n_bits), float(beta), float(gamma), float(lambda_q)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        focal = cmhh_focal_loss(u_x, u_y, s, self.beta, self.gamma)
        quantization = 0.5 * (cmhh_quantization_loss(u_x, self.beta) + cmhh_quantization_loss(u_y, self.beta))
        total = focal + self.lambda_q * quantization
        return total, {"focal": focal.detach(), "quantization": quantization.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, beta={self.beta}, gamma={self.gamma}, lambda_q={self.lambda_q}"
