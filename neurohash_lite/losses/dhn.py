"""Deep Hashing Network (DHN), made cross-modal.

Zhu, Long, Wang & Cao (2016) estimate the codes by maximum a posteriori: a
pairwise likelihood of the similarity labels and a *bimodal Laplacian* prior on
every code, ``p(h) = 1/(2 eps) exp(-|| |h| - 1 ||_1 / eps)``, whose negative
logarithm is a quantization loss that pulls every entry to +1 or -1. On the
relaxed (tanh) codes ``z`` the objective is

``C = L + lambda Q``,
``L = sum_{s_ij} [log(1 + exp(<z_i, z_j>)) - s_ij <z_i, z_j>]`` (pairwise cross-entropy),
``Q = sum_i sum_k log cosh(|z_ik| - 1)``,

the L1 norm of the prior replaced by its smooth surrogate ``|x| ~ log cosh x``
(Luo et al. 2023 restate the prior and both quantization forms as their
Eqs. (21)-(23)). The sigmoid's argument is the plain inner product, not
``1/2 <z_i, z_j>`` as in DPSH: that is what the authors' released Caffe layers
compute (``thuml/hash-caffe``, commit b0b677b,
``src/caffe/layers/pairwise_loss_layer.cu``: ``log(1 + exp(<z_i, z_j>)) -
s_ij <z_i, z_j>`` averaged over the n^2 pairs of a batch, and
``quantization_loss_layer.cu``: ``log cosh(|z| - 1)`` averaged over the n K
entries), with ``lambda = 0.2`` (``models/DHN/nus_wide/train_val.prototxt``,
the only setting they release; DeepHash-pytorch's ``DHN.py`` uses 0.1).
Their layers switch to the linear asymptote above ``<z_i, z_j> = 15`` to
avoid overflow; :func:`torch.nn.functional.softplus` is exact instead. Their
hash layer ends in tanh, as the shared network's does.

Cross-modal, with two modalities (sMRI ``u_x``, PET ``u_y``) and three
diagnoses:

- the pairs are the batch's sMRI-PET pairs, ``theta_ij = <u_i^x, u_j^y>``
  (a subject's own two scans are a similar pair), ``s_ij = 1`` when the two
  diagnoses are equal (single-label: one diagnosis per scan);
- both terms are means, as in the released layers: the likelihood over the
  ``n_x n_y`` pairs, the quantization over each modality's entries, the two
  modalities averaged.

Because ``theta`` is not scaled, a pair's logit reaches K (128 at the
longest code), so the likelihood of a well-separated batch saturates; that is
DHN as released, and the property HashNet's and Method A's scale addresses.

References
----------
Zhu H., Long M., Wang J., Cao Y. (2016). Deep Hashing Network for Efficient
Similarity Retrieval. AAAI, 2415-2421. Released code:
https://github.com/thuml/hash-caffe.
Luo X. et al. (2023). A Survey on Deep Hashing Methods. ACM TKDD 17(1),
Eqs. (9) and (21)-(23).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, cross_modal_batch
from neurohash_lite.losses.csq import csq_quantization_loss
from neurohash_lite.losses.dcmh import pairwise_cross_entropy

__all__ = ["dhn_likelihood_loss", "dhn_quantization_loss", "DHNLoss"]


def dhn_likelihood_loss(u_x: torch.Tensor, u_y: torch.Tensor, s) -> torch.Tensor:
    """Pairwise cross-entropy ``(1/|S|) sum_ij [softplus(theta_ij) - s_ij theta_ij]``, ``theta = u_x u_y^T``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1}

    Returns
    -------
    torch.Tensor, scalar, nats per pair, >= 0

    References
    ----------
    Zhu et al. (2016), the pairwise cross-entropy loss; ``thuml/hash-caffe``
    ``pairwise_loss_layer.cu`` (plain inner product, mean over pairs).
    """
    _check_pair(u_x, u_y)
    theta = (u_x @ u_y.T).to(u_x.dtype)  # float32 after the product, even under autocast
    return pairwise_cross_entropy(theta, s)


def dhn_quantization_loss(u: torch.Tensor) -> torch.Tensor:
    """Bimodal-Laplacian quantization ``mean log cosh(|u| - 1)``: 0 when every entry is +-1.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, >= 0 (about 0.43 per entry at u = 0)

    References
    ----------
    Zhu et al. (2016), the smoothed negative log prior; ``thuml/hash-caffe``
    ``quantization_loss_layer.cu``. The same function as
    :func:`~neurohash_lite.losses.csq_quantization_loss` (CSQ took it from DHN).
    """
    if u.ndim != 2 or u.numel() == 0:
        raise ValueError(f"u must have shape (n, K), non-empty, got {tuple(u.shape)}")
    return csq_quantization_loss(u)


class DHNLoss(nn.Module):
    """``L = (1/|S|) sum_ij [softplus(<u_i^x, u_j^y>) - s_ij <u_i^x, u_j^y>] + lambda (Q(u_x) + Q(u_y))/2``.

    Parameters
    ----------
    n_bits : int
    lambda_q : float, default 0.2
        Weight of the quantization term (the authors' released NUS-WIDE setting).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: codes (n, K) in (-1, 1);
    returns ``(total, parts)`` with parts ``likelihood`` and ``quantization``.

    References
    ----------
    Zhu et al. (2016); ``thuml/hash-caffe`` (released code).
    """

    def __init__(self, n_bits: int, lambda_q: float = 0.2) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not math.isfinite(lambda_q) or lambda_q < 0:
            raise ValueError(f"lambda_q must be a finite number >= 0, got {lambda_q!r}")
        self.n_bits, self.lambda_q = int(n_bits), float(lambda_q)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits, the loss was built for {self.n_bits}")
        likelihood = dhn_likelihood_loss(u_x, u_y, s)
        quantization = (dhn_quantization_loss(u_x) + dhn_quantization_loss(u_y)) / 2
        total = likelihood + self.lambda_q * quantization
        return total, {"likelihood": likelihood.detach(), "quantization": quantization.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, lambda_q={self.lambda_q}"
