"""Locality-Constrained Deep Supervised Hashing (LCDSH), made cross-modal.

Zhu & Gao (2017) observe that a quantization loss, by pulling every entry of
the relaxed codes ``h`` to +-1, changes the distribution of the network's
features and with it the similarities between images. Instead of a
quantization loss they keep the *locality* of every pair: the probability a
pair is similar should be the same whether it is computed from the
continuous codes ``h`` or from the binary codes ``b = sign(h)``. With pair
labels ``s_ij in {-1, +1}`` and ``theta_ij = 1/2 <h_i, h_j>``:

``L = sum_ij log(1 + exp(-s_ij theta_ij)) + lambda sum_ij (sigma(theta_ij) - sigma(theta^b_ij))^2``,
``theta^b_ij = 1/2 <b_i, b_j>``.

The first term is the negative log-likelihood of the pair labels under
``p(s_ij | h_i, h_j) = sigma(s_ij theta_ij)`` (with s in {0, 1} it is DPSH's
``softplus(theta) - s theta``); the second, the locality constraint, is
the squared difference of ``p(s_ij = 1 | .)`` from the continuous and from the
binary codes (since ``sigma(-x) = 1 - sigma(x)`` it is the same for either
label). ``b`` is a target: ``sign`` has no gradient, so the constraint moves
the continuous codes until their pair probabilities match the binary ones.

Source: the paper's full text could not be reached in this session (only
its abstract, as summarised by third parties), and no code from the authors
was found. The objective above and ``lambda = 3`` follow the widely used
reimplementation in DeepHash-pytorch (``swuxyj/DeepHash-pytorch``, commit
ab14068, ``LCDSH.py``: labels in {-1, +1} from "shares a label", both inner
products scaled by 1/2, both terms means over the batch's pairs, the
likelihood's logits clamped to [-50, 50]). It agrees with what the abstract
describes: the posterior of the pair labels given the pair codes, plus a term
that keeps the pairwise similarity of the continuous features in the binary
codes. The clamp is dropped here: :func:`torch.nn.functional.softplus` is
stable, and the clamp only cut the gradient of pairs whose logit is past 50.

Cross-modal, with two modalities (sMRI ``u_x``, PET ``u_y``) and three
diagnoses:

- the pairs are the batch's sMRI-PET pairs, ``theta_ij = 1/2 <u_i^x, u_j^y>``;
  a subject's own two scans are a similar pair; ``s_ij = +1`` when the two
  diagnoses are equal, -1 otherwise (single-label);
- each modality's binary code is its own sign, ``b^x = sign(u^x)``, ``b^y =
  sign(u^y)`` (sign(0) = +1, as the codes are stored), because retrieval
  compares exactly those codes: ``theta^b_ij = 1/2 <b_i^x, b_j^y>``;
- both terms are means over the ``n_x n_y`` cross-modal pairs.

References
----------
Zhu H., Gao S. (2017). Locality Constrained Deep Supervised Hashing for Image
Retrieval. IJCAI, 3567-3573. https://doi.org/10.24963/ijcai.2017/499.
Reimplementation followed: https://github.com/swuxyj/DeepHash-pytorch (LCDSH.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, cross_modal_batch

__all__ = ["lcdsh_likelihood_loss", "lcdsh_locality_loss", "LCDSHLoss"]


def _sign(u: torch.Tensor) -> torch.Tensor:
    """``sign(u)`` with sign(0) = +1, detached (a target)."""
    return torch.where(u.detach() >= 0, 1.0, -1.0).to(u.dtype)


def lcdsh_likelihood_loss(u_x: torch.Tensor, u_y: torch.Tensor, s) -> torch.Tensor:
    """``(1/|S|) sum_ij softplus(-s~_ij theta_ij)``, ``theta = 1/2 u_x u_y^T``, ``s~ = 2 s - 1``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1} (1: similar)

    Returns
    -------
    torch.Tensor, scalar, nats per pair, >= 0. Equal to DPSH's likelihood
    (:func:`~neurohash_lite.losses.dcmh_likelihood_loss`), written with
    labels in {-1, +1} as LCDSH writes it.

    References
    ----------
    Zhu & Gao (2017), the likelihood term; DeepHash-pytorch ``LCDSH.py``.
    """
    _check_pair(u_x, u_y)
    theta = 0.5 * (u_x @ u_y.T).to(u_x.dtype)  # float32 after the product, even under autocast
    s = torch.as_tensor(s, device=theta.device)
    if s.shape != theta.shape:
        raise ValueError(f"s must have shape {tuple(theta.shape)}, got {tuple(s.shape)}")
    signed = 2 * s.to(theta.dtype) - 1
    return F.softplus(-signed * theta).mean()


def lcdsh_locality_loss(u_x: torch.Tensor, u_y: torch.Tensor) -> torch.Tensor:
    """``(1/|S|) sum_ij (sigma(1/2 <u_i^x, u_j^y>) - sigma(1/2 <b_i^x, b_j^y>))^2``, ``b = sign(u)``.

    The locality constraint: a pair's probability of being similar under the
    continuous codes should equal that under the binary codes. ``b`` is
    detached (sign(0) = +1).

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1); 0 when every entry is +-1

    References
    ----------
    Zhu & Gao (2017), the locality-constrained term; DeepHash-pytorch ``LCDSH.py``.
    """
    _check_pair(u_x, u_y)
    # the products in the codes' dtype even under autocast: the locality term compares sigmoids that
    # differ in the third decimal, which bfloat16 would round away
    theta = 0.5 * (u_x @ u_y.T).to(u_x.dtype)
    theta_b = 0.5 * (_sign(u_x) @ _sign(u_y).T).to(u_x.dtype)
    return ((torch.sigmoid(theta) - torch.sigmoid(theta_b)) ** 2).mean()


class LCDSHLoss(nn.Module):
    """``L = L_lik + lambda L_loc`` over the batch's sMRI-PET pairs.

    Parameters
    ----------
    n_bits : int
    lambda_loc : float, default 3.0
        Weight of the locality constraint (DeepHash-pytorch's setting; the
        paper's could not be checked).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: codes (n, K);
    returns ``(total, parts)`` with parts ``likelihood`` and ``locality``.

    References
    ----------
    Zhu & Gao (2017); DeepHash-pytorch ``LCDSH.py``.
    """

    def __init__(self, n_bits: int, lambda_loc: float = 3.0) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if not math.isfinite(lambda_loc) or lambda_loc < 0:
            raise ValueError(f"lambda_loc must be a finite number >= 0, got {lambda_loc!r}")
        self.n_bits, self.lambda_loc = int(n_bits), float(lambda_loc)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits, the loss was built for {self.n_bits}")
        likelihood = lcdsh_likelihood_loss(u_x, u_y, s)
        locality = lcdsh_locality_loss(u_x, u_y)
        total = likelihood + self.lambda_loc * locality
        return total, {"likelihood": likelihood.detach(), "locality": locality.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, lambda_loc={self.lambda_loc}"
