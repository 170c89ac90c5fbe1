"""Deep Pairwise-Supervised Hashing (DPSH), made cross-modal.

Li et al. (2016) learn single-modality codes by minimising their Eq. (5):

``L = -sum_{s_ij in S} (s_ij Theta_ij - log(1 + e^Theta_ij)) + eta sum_i ||b_i - u_i||^2``,
``Theta_ij = 1/2 u_i^T u_j``, ``b_i = sign(u_i)``.

Cross-modal here: the pairs are the batch's sMRI-PET pairs
(``Theta_ij = 1/2 <u_i^x, u_j^y>``) and each modality is quantized to *its
own* sign, ``b = sign(u)`` (DPSH has no shared code and no bit balance; those
are what DCMH adds). Both terms are means (over pairs and over entries), as
in the widely used DeepHash-pytorch implementation, whose default weight
``eta = 0.1`` on the mean quantization is kept.

References
----------
Li W.-J., Wang S., Kang W.-C. (2016). Feature Learning based Deep Supervised
Hashing with Pairwise Labels. IJCAI. Eqs. (2), (4)-(5).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurohash_lite.losses.ahs import cross_modal_batch
from neurohash_lite.losses.dcmh import dcmh_likelihood_loss

__all__ = ["dpsh_quantization_loss", "DPSHLoss"]


def dpsh_quantization_loss(u: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each entry to its own sign: ``mean (sign(u) - u)^2``.

    ``sign(0) = +1``; the sign is detached (a target).

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1] for codes in [-1, 1]

    References
    ----------
    Li et al. (2016), the second term of Eq. (5), divided by ``n K``.
    """
    if u.ndim != 2 or u.numel() == 0:
        raise ValueError(f"u must have shape (n, K), non-empty, got {tuple(u.shape)}")
    b = torch.where(u.detach() >= 0, 1.0, -1.0).to(u.dtype)
    return ((b - u) ** 2).mean()


class DPSHLoss(nn.Module):
    """``L = (1/|S|) sum_ij [softplus(Theta_ij) - s_ij Theta_ij] + eta/2 (L_q(u_x) + L_q(u_y))``.

    Parameters
    ----------
    n_bits : int
    eta : float, default 0.1
        Weight of the quantization term (the mean of both modalities').

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``; returns ``(total, parts)``
    with parts ``likelihood`` and ``quantization``.

    References
    ----------
    Li et al. (2016), Eq. (5), with the pairs taken across modalities.
    """

    def __init__(self, n_bits: int, eta: float = 0.1) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not math.isfinite(eta) or eta < 0:
            raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
        self.n_bits, self.eta = int(n_bits), float(eta)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        likelihood = dcmh_likelihood_loss(u_x, u_y, s)
        quantization = (dpsh_quantization_loss(u_x) + dpsh_quantization_loss(u_y)) / 2
        total = likelihood + self.eta * quantization
        return total, {"likelihood": likelihood.detach(), "quantization": quantization.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, eta={self.eta}"
