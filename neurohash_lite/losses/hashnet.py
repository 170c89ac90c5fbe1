"""HashNet: weighted pairwise likelihood, trained by continuation.

Cao et al. (2017) weight each pair to balance similar and dissimilar pairs
(their Eq. (2), :func:`~neurohash_lite.losses.ahs_pair_weights`) and
minimise the weighted negative log-likelihood of the pair labels under an
adaptive sigmoid ``sigma(alpha <h_i, h_j>)`` (their Eq. (4)):

``L = sum_ij w_ij (log(1 + exp(alpha <h_i, h_j>)) - alpha s_ij <h_i, h_j>)``.

Instead of a quantization term, HashNet makes the codes binary by
*continuation*: ``h = tanh(beta z)`` with ``beta`` raised step by step, since
``sign(z) = lim_{beta -> inf} tanh(beta z)`` (their Eq. (5)); each stage
starts from the previous stage's weights.

On the shared path: :class:`HashNetLoss` is the likelihood (as a mean over
the batch's cross-modal pairs; ``alpha`` defaults to ``10 / K`` so that
``alpha <u^x, u^y> = 10 Theta`` with Method A's ``Theta = <u^x, u^y>/K``, the
special case ``a = 10`` DESIGN §5 names), and :class:`ContinuationHashNet`
wraps a :class:`~neurohash_lite.models.CrossModalHashNet` so that its
``encode`` returns ``tanh(beta z)`` with a ``beta`` the training loop sets.
:func:`hashnet_stages` is the schedule: training runs as a few calls of
:func:`~neurohash_lite.train.fit`, one per stage, ``beta`` doubling from 1.
The binary codes never depend on ``beta`` (``sign(tanh(beta z)) = sign(z)``).

References
----------
Cao Z., Long M., Wang J., Yu P. S. (2017). HashNet: Deep Learning to Hash by
Continuation. ICCV. Eqs. (2), (4)-(5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurohash_lite.losses.ahs import _check_pair, ahs_pair_weights, cross_modal_batch

__all__ = ["hashnet_likelihood_loss", "HashNetLoss", "ContinuationHashNet", "hashnet_stages"]


def hashnet_likelihood_loss(u_x: torch.Tensor, u_y: torch.Tensor, s, alpha: float) -> torch.Tensor:
    """``(1/|S|) sum_ij w_ij [softplus(alpha <u_i^x, u_j^y>) - s_ij alpha <u_i^x, u_j^y>]``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K)
    s : array-like, shape (n_x, n_y), values in {0, 1}
    alpha : float
        Sigmoid scale, > 0.

    Returns
    -------
    torch.Tensor, scalar, nats per pair (weighted), >= 0

    References
    ----------
    Cao et al. (2017), Eq. (4) with the weights of Eq. (2), divided by |S|.
    """
    _check_pair(u_x, u_y)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    logits = alpha * (u_x @ u_y.T)
    s = torch.as_tensor(s, device=logits.device)
    if s.shape != logits.shape:
        raise ValueError(f"s must have shape {tuple(logits.shape)}, got {tuple(s.shape)}")
    s = s.to(logits.dtype)
    w = ahs_pair_weights(s)
    return (w * (F.softplus(logits) - s * logits)).mean()


class HashNetLoss(nn.Module):
    """HashNet's weighted likelihood over a batch's cross-modal pairs.

    Parameters
    ----------
    n_bits : int
    alpha : float, optional
        Sigmoid scale; default ``10 / K``.

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: codes (n, K) (from
    :class:`ContinuationHashNet`, ``tanh(beta z)``); returns ``(total,
    parts)`` with the part ``likelihood``.

    References
    ----------
    Cao et al. (2017), Eq. (4).
    """

    def __init__(self, n_bits: int, alpha: float | None = None) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        alpha = 10.0 / n_bits if alpha is None else float(alpha)
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.n_bits, self.alpha = int(n_bits), alpha

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        likelihood = hashnet_likelihood_loss(u_x, u_y, s, self.alpha)
        return likelihood, {"likelihood": likelihood.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, alpha={self.alpha}"


class ContinuationHashNet(nn.Module):
    """A two-branch hashing network whose codes are ``tanh(beta z)``.

    ``encode(x, modality)`` runs the branch's features and hash layer to get
    ``z`` and returns ``tanh(beta z)``; ``beta`` is a plain attribute the
    training loop raises between stages (it is not a parameter). With
    ``beta = 1`` the wrapper encodes exactly like the wrapped network.

    Parameters
    ----------
    network : CrossModalHashNet
        Anything with ``mri_branch`` and ``pet_branch``, each having
        ``features(x)`` and a ``hash_layer``.
    beta : float, default 1.0

    References
    ----------
    Cao et al. (2017), Eq. (5) and the section "Learning by Continuation".
    """

    def __init__(self, network: nn.Module, beta: float = 1.0) -> None:
        super().__init__()
        for name in ("mri_branch", "pet_branch"):
            branch = getattr(network, name, None)
            if branch is None or not hasattr(branch, "hash_layer") or not hasattr(branch, "features"):
                raise ValueError(f"network must have a {name} with features() and hash_layer")
        self.network = network
        self.beta = float(beta)

    @property
    def beta(self) -> float:
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"beta must be a finite number > 0, got {value!r}")
        self._beta = float(value)

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """``tanh(beta z)`` of one modality, shape (N, K), values in (-1, 1)."""
        if modality not in ("mri", "pet"):
            raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
        branch = self.network.mri_branch if modality == "mri" else self.network.pet_branch
        return torch.tanh(self.beta * branch.hash_layer(branch.features(x)))

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def hashnet_stages(epochs: int, n_stages: int = 4, growth: float = 2.0) -> list[tuple[int, float]]:
    """The continuation schedule: ``(epochs of the stage, beta)`` per stage.

    ``epochs`` are split as evenly as possible over ``min(n_stages, epochs)``
    stages (earlier stages take the remainder); stage ``s`` (from 0) uses
    ``beta = growth ** s``, so the default runs beta = 1, 2, 4, 8.

    Parameters
    ----------
    epochs : int
        The total training budget, >= 1.
    n_stages : int, default 4
    growth : float, default 2.0
        Factor between consecutive betas, > 1.

    Returns
    -------
    list of (int, float)
        Their epochs sum to ``epochs``.

    References
    ----------
    Cao et al. (2017), section "Learning by Continuation" (beta raised stage by stage; the released
    PyTorch code, thuml/HashNet, recomputes it every 200 iterations as
    ``(1 + 0.005 t)^0.5``, t the iteration count).
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if int(n_stages) != n_stages or n_stages < 1:
        raise ValueError(f"n_stages must be a positive integer, got {n_stages!r}")
    if not (math.isfinite(growth) and growth > 1):
        raise ValueError(f"growth must be a finite number > 1, got {growth!r}")
    stages = min(int(n_stages), int(epochs))
    base, extra = divmod(int(epochs), stages)
    return [(base + (1 if s < extra else 0), float(growth) ** s) for s in range(stages)]
