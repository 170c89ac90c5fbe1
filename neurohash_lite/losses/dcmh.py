"""Deep Cross-Modal Hashing (DCMH) as a loss on the shared training path.

Jiang & Li (2017) minimise, over the two modalities' network outputs
``F`` (image) and ``G`` (text), K x n, and the shared codes ``B``, their Eq. (2):

``J = -sum_ij (S_ij Theta_ij - log(1 + e^Theta_ij)) + gamma (||B - F||_F^2 + ||B - G||_F^2)
      + eta (||F 1||^2 + ||G 1||^2)``,   ``Theta_ij = 1/2 F_*i^T G_*j``,

with ``B = sign(gamma (F + G))`` the closed-form code update (their Eq. (8)).
Here ``F`` is the sMRI branch's ``u_x`` and ``G`` the PET branch's ``u_y``
(rows instead of columns). Two changes, both for the shared path:

- the sums run over a mini-batch's cross-modal pairs, not over the batch
  against the whole stored training set (DCMH's alternating optimisation keeps
  F and G of every training point; a shared mini-batch path cannot);
- each term is a mean, so its size does not depend on the batch size or K:
  the likelihood over the ``n_x n_y`` pairs, the quantization over the
  ``n K`` entries, the bit balance as the mean over bits of the squared mean
  over the batch (``||F 1||^2 / (n^2 K)``). The weights ``gamma`` and ``eta``
  (both 1 in DCMH's experiments) act on these means.

``Theta`` is *not* divided by K here (DCMH's own scale ``1/2``), so with
K = 128 a pair's logit reaches 64: the likelihood saturates early, which is
the property Method A's adaptive scale is meant to fix.

References
----------
Jiang Q.-Y., Li W.-J. (2017). Deep Cross-Modal Hashing. CVPR. Eqs. (1)-(2), (8).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, ahs_shared_code, cross_modal_batch

__all__ = ["dcmh_theta", "dcmh_likelihood_loss", "dcmh_balance_loss", "DCMHLoss"]


def dcmh_theta(u_x: torch.Tensor, u_y: torch.Tensor) -> torch.Tensor:
    """``Theta_ij = 1/2 <u_i^x, u_j^y>`` (DCMH's inner product, not scaled by K).

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)

    Returns
    -------
    torch.Tensor, shape (n_x, n_y), in [-K/2, K/2] for codes in [-1, 1]

    References
    ----------
    Jiang & Li (2017), Eq. (1).
    """
    _check_pair(u_x, u_y)
    return 0.5 * (u_x @ u_y.T)


def dcmh_likelihood_loss(u_x: torch.Tensor, u_y: torch.Tensor, s) -> torch.Tensor:
    """Mean negative log-likelihood ``(1/|S|) sum_ij [softplus(Theta_ij) - s_ij Theta_ij]``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1}

    Returns
    -------
    torch.Tensor, scalar, nats per pair, >= 0

    References
    ----------
    Jiang & Li (2017), the first term of Eq. (2) (``log(1 + e^Theta)`` computed
    as softplus).
    """
    return pairwise_cross_entropy(dcmh_theta(u_x, u_y), s)


def pairwise_cross_entropy(theta: torch.Tensor, s) -> torch.Tensor:
    """Mean over pairs of ``softplus(theta_ij) - s_ij theta_ij``: the negative
    log-likelihood of the labels ``s`` under ``P(s_ij = 1) = sigmoid(theta_ij)``.

    The likelihood term DCMH, DPSH and DHN share; they differ in ``theta``.

    Parameters
    ----------
    theta : torch.Tensor, float, shape (n_x, n_y)
    s : array-like, shape (n_x, n_y), values in {0, 1}

    Returns
    -------
    torch.Tensor, scalar, nats per pair, >= 0
    """
    s = torch.as_tensor(s, device=theta.device)
    if s.shape != theta.shape:
        raise ValueError(f"s must have shape {tuple(theta.shape)}, got {tuple(s.shape)}")
    s = s.to(theta.dtype)
    return (F.softplus(theta) - s * theta).mean()


def dcmh_balance_loss(u: torch.Tensor) -> torch.Tensor:
    """Bit balance ``||U^T 1||^2 / (n^2 K)``: mean over bits of the squared batch mean.

    Zero when every bit is +1 on half the batch and -1 on the other half.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)

    Returns
    -------
    torch.Tensor, scalar, in [0, 1] for codes in [-1, 1]

    References
    ----------
    Jiang & Li (2017), the last term of Eq. (2), ``||F 1||^2``, divided by ``n^2 K``.
    """
    if u.ndim != 2 or u.shape[0] == 0:
        raise ValueError(f"u must have shape (n, K) with n >= 1, got {tuple(u.shape)}")
    return (u.mean(dim=0) ** 2).mean()


class DCMHLoss(nn.Module):
    """``L = L_lik + gamma L_q + eta (L_bal(u_x) + L_bal(u_y))``, DCMH's Eq. (2) as means.

    ``L_q = (||U^x - B||^2 + ||U^y - B||^2) / (n K)`` with the shared code
    ``B = sign(U^x + U^y)`` (detached; DCMH's Eq. (8)).

    Parameters
    ----------
    n_bits : int
    gamma : float, default 1.0
        Weight of the quantization term (DCMH's experiments use 1).
    eta : float, default 1.0
        Weight of the bit balance (DCMH's experiments use 1).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)`` with paired rows (n, K);
    returns ``(total, parts)``, parts ``likelihood``, ``quantization``, ``balance``.

    References
    ----------
    Jiang & Li (2017), Eqs. (2) and (8).
    """

    def __init__(self, n_bits: int, gamma: float = 1.0, eta: float = 1.0) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        for name, value in (("gamma", gamma), ("eta", eta)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.n_bits, self.gamma, self.eta = int(n_bits), float(gamma), float(eta)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        likelihood = dcmh_likelihood_loss(u_x, u_y, s)
        b = ahs_shared_code(u_x, u_y)
        quantization = (((u_x - b) ** 2).sum() + ((u_y - b) ** 2).sum()) / u_x.numel()
        balance = dcmh_balance_loss(u_x) + dcmh_balance_loss(u_y)
        total = likelihood + self.gamma * quantization + self.eta * balance
        return total, {"likelihood": likelihood.detach(), "quantization": quantization.detach(),
                       "balance": balance.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, gamma={self.gamma}, eta={self.eta}"
