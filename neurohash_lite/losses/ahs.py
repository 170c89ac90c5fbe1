"""The loss of Adaptive Hash Semantics (Method A), term by term.

Tao & An (2021) minimise ``L_all = L_class + alpha T`` (their Eq. 2), where
``L_class`` is a Bayesian semantic loss (Eqs. 3-6) and ``T`` a triplet loss
with push and balance terms (Eqs. 7-10). The paper leaves four pieces
undefined: the similarity ``I(b_i, b_j)`` inside the sigmoid, the pair weights
``w_ij``, the code prior ``p(B)``, and how the sigmoid's scale ``a`` adapts.
This module fixes each one as DESIGN.md §5 does, following DCMH (Jiang & Li,
2017), DPSH (Li et al., 2016) and HashNet (Cao et al., 2017):

========================  =====================================  ==========================
piece                     here                                   from
========================  =====================================  ==========================
``I(b_i^x, b_j^y)``       ``Theta_ij = <u_i^x, u_j^y> / K``      DCMH / DPSH (scaled by 1/K)
``sigma`` (Eq. 5)         ``sigma(a Theta)``, ``a`` learnable    the paper; HashNet fixes a = 10
``w_ij`` (Eq. 3)          ``|S|/|S_1|`` or ``|S|/|S_0|``         HashNet
``p(B^x) p(B^y)``         quantization to a shared code          DPSH / DCMH
T terms (Eqs. 8-10)       on ``p = (u + 1)/2``, means            the paper, made precise
========================  =====================================  ==========================

With ``u = tanh(z)`` the map ``p = (u + 1)/2`` equals ``sigmoid(2 z)``, the
sigmoid output the paper's T loss is written for, and ``||p - q||^2`` is the
Hamming distance when the codes are binary.

Everything here is minimised. Every log-likelihood goes through
:func:`torch.nn.functional.softplus` (never ``log(1 + exp(.))``, which
overflows), so values and gradients stay finite for codes at +-1 and large
``a``.

References
----------
Tao W., An F. (2021). Deep Multimodal Neuroimaging Retrieval Based on Adaptive
Hash Semantics. Forest Chemicals Review, 944-957. Eqs. (2)-(10).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "cross_modal_batch",
    "ahs_similarity",
    "ahs_theta",
    "ahs_pair_weights",
    "ahs_shared_code",
    "ahs_likelihood_loss",
    "ahs_quantization_loss",
    "ahs_triplet_loss",
    "ahs_push_loss",
    "ahs_balance_loss",
    "AHSLoss",
]

#: Scale of the adaptive sigmoid at initialisation (HashNet's fixed value).
A_INIT = 10.0
#: Adam's learning rate for rho, the parameter of the adaptive scale (see AHSLoss).
RHO_LR = 0.1


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------
def _check_codes(u: torch.Tensor, name: str) -> None:
    if not isinstance(u, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, K), got {type(u).__name__}")
    if u.ndim != 2 or u.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n, K) with K >= 1, got {tuple(u.shape)}")
    if not u.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {u.dtype}")


def _check_pair(u_x: torch.Tensor, u_y: torch.Tensor) -> None:
    _check_codes(u_x, "u_x")
    _check_codes(u_y, "u_y")
    if u_x.shape[1] != u_y.shape[1]:
        raise ValueError(
            f"u_x and u_y must have the same code length K, got {u_x.shape[1]} and {u_y.shape[1]}"
        )


def _as_labels(labels, n: int, name: str, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=device)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must hold integer class labels, got {labels.dtype}")
    return labels


def cross_modal_batch(u_x, u_y, labels_x, labels_y=None):
    """Check and prepare what every cross-modal loss's ``forward`` receives.

    ``labels_y`` defaults to ``labels_x`` (paired rows); codes that arrive in
    16 bits under mixed precision are cast to float32, so losses are computed
    in (at least) single precision.

    Returns
    -------
    u_x, u_y : torch.Tensor, (n_x, K) and (n_y, K), float32 or wider
    labels_x, labels_y : torch.Tensor, int, on the codes' device
    s : torch.Tensor, (n_x, n_y), 1.0 where the labels agree, in the codes' dtype
    """
    if labels_y is None:
        labels_y = labels_x
    _check_pair(u_x, u_y)
    if u_x.dtype in (torch.float16, torch.bfloat16):
        u_x = u_x.float()
    if u_y.dtype in (torch.float16, torch.bfloat16):
        u_y = u_y.float()
    labels_x = _as_labels(labels_x, u_x.shape[0], "labels_x", u_x.device)
    labels_y = _as_labels(labels_y, u_y.shape[0], "labels_y", u_x.device)
    s = (labels_x[:, None] == labels_y[None, :]).to(u_x.dtype)
    return u_x, u_y, labels_x, labels_y, s


# --------------------------------------------------------------------------
# Similarity, Theta and the pair weights
# --------------------------------------------------------------------------
def ahs_similarity(labels_x, labels_y) -> torch.Tensor:
    """The cross-modal similarity matrix: ``s_ij = 1`` when the labels agree.

    Parameters
    ----------
    labels_x : array-like of int, shape (n_x,)
        Diagnoses of the sMRI rows (0 NC, 1 MCI, 2 AD).
    labels_y : array-like of int, shape (n_y,)
        Diagnoses of the PET rows.

    Returns
    -------
    torch.Tensor, float32, shape (n_x, n_y)
        ``s_ij = 1.0`` if ``labels_x[i] == labels_y[j]`` else ``0.0``.

    References
    ----------
    Tao & An (2021), the matrix S of Eq. (3).
    """
    labels_x = torch.as_tensor(labels_x)
    labels_y = torch.as_tensor(labels_y, device=labels_x.device)
    for name, labels in (("labels_x", labels_x), ("labels_y", labels_y)):
        if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex():
            raise ValueError(
                f"{name} must be a 1-D array of integer labels, got {labels.dtype} "
                f"of shape {tuple(labels.shape)}"
            )
    return (labels_x[:, None] == labels_y[None, :]).float()


def ahs_theta(u_x: torch.Tensor, u_y: torch.Tensor) -> torch.Tensor:
    """The scaled cross-modal inner products ``Theta_ij = <u_i^x, u_j^y> / K``.

    For binary codes ``Theta_ij = 1 - 2 d_H(b_i, b_j) / K``, so it runs from
    -1 (all bits differ) to +1 (identical codes).

    Parameters
    ----------
    u_x : torch.Tensor, float, shape (n_x, K)
        Relaxed sMRI codes in [-1, 1].
    u_y : torch.Tensor, float, shape (n_y, K)
        Relaxed PET codes in [-1, 1].

    Returns
    -------
    torch.Tensor, shape (n_x, n_y), values in [-1, 1]

    References
    ----------
    Tao & An (2021), ``I(b_i^x, b_j^y)`` of Eq. (4), left undefined there;
    defined as in DCMH (Jiang & Li, 2017) with DPSH's inner product, divided by
    K so that the sigmoid's scale ``a`` does not depend on the code length.
    """
    _check_pair(u_x, u_y)
    n_bits = u_x.shape[1]
    return u_x @ u_y.T / n_bits


def ahs_pair_weights(s) -> torch.Tensor:
    """HashNet's balanced weights over a batch's cross-modal pair matrix.

    ``w_ij = |S| / |S_1|`` for similar pairs and ``|S| / |S_0|`` for
    dissimilar pairs, where ``|S|`` counts all pairs, ``|S_1|`` the similar
    ones and ``|S_0|`` the dissimilar ones. Similar and dissimilar pairs then
    carry the same total weight, ``|S|`` each. When the batch has no similar
    (or no dissimilar) pair, every weight is 1.

    Parameters
    ----------
    s : torch.Tensor or array-like, shape (n_x, n_y), values in {0, 1}
        Cross-modal similarity matrix (bool, int or float).

    Returns
    -------
    torch.Tensor, shape (n_x, n_y)
        The weights, in ``s``'s dtype when it is floating point, float32
        otherwise. Carries no gradient.

    Raises
    ------
    ValueError
        If ``s`` is not a non-empty matrix of zeros and ones.

    References
    ----------
    Tao & An (2021), ``w_ij`` of Eq. (3), left undefined there; defined as in
    HashNet (Cao et al., 2017), Eq. (2).
    """
    s = torch.as_tensor(s)
    if s.ndim != 2 or s.numel() == 0:
        raise ValueError(f"s must be a non-empty matrix (n_x, n_y), got shape {tuple(s.shape)}")
    dtype = s.dtype if s.is_floating_point() else torch.get_default_dtype()
    s = s.detach().to(dtype)
    if not torch.all((s == 0) | (s == 1)):
        raise ValueError("s must hold only 0 and 1 (similar / dissimilar pairs)")
    n_pairs = s.numel()
    n_similar = s.sum()
    n_dissimilar = n_pairs - n_similar
    # |S| / |S_1| and |S| / |S_0|, and 1 for a side with no pair
    w_similar = torch.where(n_similar > 0, n_pairs / n_similar.clamp(min=1), 1.0)
    w_dissimilar = torch.where(n_dissimilar > 0, n_pairs / n_dissimilar.clamp(min=1), 1.0)
    return torch.where(s == 1, w_similar, w_dissimilar)


# --------------------------------------------------------------------------
# The Bayesian terms: likelihood and prior
# --------------------------------------------------------------------------
def ahs_likelihood_loss(u_x: torch.Tensor, u_y: torch.Tensor, s, a) -> torch.Tensor:
    """Weighted negative log-likelihood of the pair labels under ``sigma(a Theta)``.

    ``L_lik = (1/|S|) sum_ij w_ij [softplus(a Theta_ij) - s_ij a Theta_ij]``,
    which is ``-(1/|S|) sum_ij w_ij log p(s_ij | u_i^x, u_j^y)`` with
    ``p(s_ij = 1 | .) = sigma(a Theta_ij)``.

    Parameters
    ----------
    u_x : torch.Tensor, float, shape (n_x, K)
        Relaxed sMRI codes.
    u_y : torch.Tensor, float, shape (n_y, K)
        Relaxed PET codes.
    s : torch.Tensor or array-like, shape (n_x, n_y), values in {0, 1}
        Cross-modal similarity matrix.
    a : float or torch.Tensor (scalar)
        Scale of the adaptive sigmoid, ``a > 0``. A tensor that requires
        grad receives one (the learnable ``a`` of :class:`AHSLoss`).

    Returns
    -------
    torch.Tensor, scalar, in nats per pair, >= 0

    References
    ----------
    Tao & An (2021), Eqs. (3)-(6) (with I, w_ij and the adaptation of a as
    defined in this module's docstring); the form of DPSH (Li et al., 2016),
    Eq. (3), and DCMH (Jiang & Li, 2017), Eq. (2), with HashNet's weights.
    """
    theta = ahs_theta(u_x, u_y)
    s = torch.as_tensor(s, device=theta.device)
    if s.shape != theta.shape:
        raise ValueError(
            f"s must have shape (n_x, n_y) = {tuple(theta.shape)}, got {tuple(s.shape)}"
        )
    s = s.to(theta.dtype)
    w = ahs_pair_weights(s)
    a = torch.as_tensor(a, dtype=theta.dtype, device=theta.device)
    if a.ndim != 0:
        raise ValueError(f"a must be a scalar, got shape {tuple(a.shape)}")
    if not bool(a.detach() > 0):
        raise ValueError(f"a must be positive, got {float(a.detach())}")
    logits = a * theta
    return (w * (F.softplus(logits) - s * logits)).mean()


def ahs_shared_code(u_x: torch.Tensor, u_y: torch.Tensor) -> torch.Tensor:
    """The binary code both modalities of a subject share: ``B = sign(U^x + U^y)``.

    It minimises ``||u^x - b||^2 + ||u^y - b||^2`` over ``b`` in {-1, +1}^K,
    with ``sign(0) = +1``. Detached: it is a target, not a path for gradients.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shape (n, K)
        Relaxed codes of the same n subjects (row i is subject i in both).

    Returns
    -------
    torch.Tensor, shape (n, K), values in {-1, +1}
    """
    _check_pair(u_x, u_y)
    if u_x.shape != u_y.shape:
        raise ValueError(
            "u_x and u_y must be paired rows (row i is subject i in both): "
            f"got shapes {tuple(u_x.shape)} and {tuple(u_y.shape)}"
        )
    total = (u_x + u_y).detach()
    return torch.where(total >= 0, torch.ones_like(total), -torch.ones_like(total))


def ahs_quantization_loss(u_x: torch.Tensor, u_y: torch.Tensor) -> torch.Tensor:
    """Distance of both modalities' relaxed codes to one shared binary code.

    ``L_q = (||U^x - B||^2 + ||U^y - B||^2) / (n K)`` with
    ``B = sign(U^x + U^y)`` (detached, ``sign(0) = +1``). It is zero exactly
    when both rows of a subject equal the same binary code.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, float, shape (n, K)
        Relaxed sMRI and PET codes of the same n subjects (paired rows).

    Returns
    -------
    torch.Tensor, scalar, >= 0 (at most 8 when every entry is in [-1, 1])

    Raises
    ------
    ValueError
        If the rows are not paired (different shapes).

    References
    ----------
    Tao & An (2021), the priors ``p(B^x) p(B^y)`` of Section 3.3.1, left
    undefined there (the text asks for codes near +-1 and the learned code
    shared); defined as the quantization term of DPSH (Li et al., 2016) and
    DCMH (Jiang & Li, 2017), Eq. (2), with the DCMH code ``B = sign(U^x + U^y)``.
    """
    b = ahs_shared_code(u_x, u_y)
    n, n_bits = u_x.shape
    return (((u_x - b) ** 2).sum() + ((u_y - b) ** 2).sum()) / (n * n_bits)


# --------------------------------------------------------------------------
# The T terms, on p = (u + 1) / 2
# --------------------------------------------------------------------------
def _unit_cube(u: torch.Tensor) -> torch.Tensor:
    return (u + 1.0) / 2.0


def _directed_triplet_hinges(p_anchor, p_other, labels_anchor, labels_other, margin):
    """Sum of hinges and number of valid triplets, anchors on one side."""
    # d[i, j] = ||p_i - q_j||^2, the Hamming distance for binary codes
    d = ((p_anchor[:, None, :] - p_other[None, :, :]) ** 2).sum(-1)
    same = labels_anchor[:, None] == labels_other[None, :]
    # valid[i, j, k]: anchor i, positive j (same label), negative k (other label)
    valid = same[:, :, None] & ~same[:, None, :]
    hinge = torch.relu(d[:, :, None] - d[:, None, :] + margin)
    return (hinge * valid).sum(), int(valid.sum())


def ahs_triplet_loss(u_x, u_y, labels_x, labels_y, margin=None) -> torch.Tensor:
    """Cross-modal triplet loss on ``p = (u + 1)/2``, both directions pooled.

    A triplet takes an anchor in one modality and a positive (same label) and
    a negative (other label) in the other; every valid triplet of the batch
    counts, with sMRI anchors and with PET anchors:
    ``L_metric = (1/|T|) sum_(a,p,n) max(0, ||p_a - p_p||^2 - ||p_a - p_n||^2 + c)``.
    For binary codes ``||p - q||^2`` is the Hamming distance, so the margin
    ``c`` is in bits. A batch without a valid triplet gives 0.

    Parameters
    ----------
    u_x : torch.Tensor, float, shape (n_x, K)
        Relaxed sMRI codes in [-1, 1].
    u_y : torch.Tensor, float, shape (n_y, K)
        Relaxed PET codes in [-1, 1].
    labels_x : array-like of int, shape (n_x,)
        Diagnoses of the sMRI rows.
    labels_y : array-like of int, shape (n_y,)
        Diagnoses of the PET rows.
    margin : float, optional
        ``c`` in bits, ``>= 0``. Default ``K / 4``.

    Returns
    -------
    torch.Tensor, scalar, in bits, >= 0

    References
    ----------
    Tao & An (2021), Eq. (8), with the sum over M sampled triplets made a mean
    over all valid cross-modal triplets of the batch; the triplet loss of
    FaceNet (Schroff et al., 2015).
    """
    _check_pair(u_x, u_y)
    labels_x = _as_labels(labels_x, u_x.shape[0], "labels_x", u_x.device)
    labels_y = _as_labels(labels_y, u_y.shape[0], "labels_y", u_x.device)
    n_bits = u_x.shape[1]
    margin = n_bits / 4.0 if margin is None else float(margin)
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number of bits >= 0, got {margin}")
    p_x, p_y = _unit_cube(u_x), _unit_cube(u_y)
    sum_xy, count_xy = _directed_triplet_hinges(p_x, p_y, labels_x, labels_y, margin)
    sum_yx, count_yx = _directed_triplet_hinges(p_y, p_x, labels_y, labels_x, margin)
    count = count_xy + count_yx
    if count == 0:
        # Keep the graph so that backward() works; the gradient is zero.
        return (u_x.sum() + u_y.sum()) * 0.0
    return (sum_xy + sum_yx) / count


def ahs_push_loss(u: torch.Tensor) -> torch.Tensor:
    """How far the codes sit from the middle of the unit cube (to be maximised).

    ``L_push = mean over samples and bits of (p - 0.5)^2`` with
    ``p = (u + 1)/2``; it equals ``mean(u^2) / 4``, 0 when every ``u`` is 0
    and 0.25 for binary codes. The total loss subtracts it.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)
        Relaxed codes in [-1, 1] (one modality, or both stacked).

    Returns
    -------
    torch.Tensor, scalar, in [0, 0.25] for u in [-1, 1]

    References
    ----------
    Tao & An (2021), Eq. (9), as a mean instead of a sum over the batch.
    """
    _check_codes(u, "u")
    return ((_unit_cube(u) - 0.5) ** 2).mean()


def ahs_balance_loss(u: torch.Tensor) -> torch.Tensor:
    """How far each code is from half ones, half zeros.

    ``L_bal = mean over samples i of (mean over bits of p_i - 0.5)^2`` with
    ``p = (u + 1)/2``; 0 when every code has as many +1 as -1 bits.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)
        Relaxed codes in [-1, 1] (one modality, or both stacked).

    Returns
    -------
    torch.Tensor, scalar, in [0, 0.25] for u in [-1, 1]

    References
    ----------
    Tao & An (2021), Eq. (10), as a mean instead of a sum over the batch.
    """
    _check_codes(u, "u")
    return ((_unit_cube(u).mean(dim=1) - 0.5) ** 2).mean()


# --------------------------------------------------------------------------
# The total, with the learnable scale a
# --------------------------------------------------------------------------
def _inverse_softplus(value: float) -> float:
    """``rho`` with ``softplus(rho) = value`` (value > 0), computed stably."""
    return value + math.log(-math.expm1(-value))


class AHSLoss(nn.Module):
    """The whole Adaptive Hash Semantics loss with its learnable scale ``a``.

    ``L_all = L_lik + lambda_q L_q + alpha (L_metric - L_push + L_bal)``

    with ``a = min(1 + softplus(rho), a_max)`` inside ``L_lik``; ``rho`` is a
    learnable scalar initialised so that ``a = a_init``. Put the module's
    parameters in the optimiser next to the network's. The push and balance
    terms are taken over both modalities' codes stacked.

    On a batch whose pairs the codes already separate (every similar pair
    with ``Theta > 0``, every dissimilar one with ``Theta < 0``) the
    likelihood decreases whenever ``a`` grows, so a learnable ``a`` runs to
    ``a_max``; the clamp is what stops it. DCMH (``a = K/2``) and HashNet
    (``a = 10``) are the special cases ``learn_a=False``.

    Parameters
    ----------
    n_bits : int
        Code length K.
    lambda_q : float, default 0.1
        Weight of the quantization term.
    alpha : float, default 0.1
        Weight of the T terms (small: the paper keeps T's influence limited).
    margin : float, optional
        Triplet margin ``c`` in bits; default ``K / 4``.
    a_init : float, default 10
        Initial scale (> 1, because ``a = 1 + softplus(rho)``).
    a_max : float, optional
        Upper bound of ``a``; default K.
    learn_a : bool, default True
        False keeps ``a`` fixed at ``min(a_init, a_max)`` (``rho`` becomes a
        buffer). With ``a_max < a_init`` (K < 10 by default) ``a`` starts at
        the bound and, the clamp having no gradient, stays there.
    parameter_lr : float, default 0.1
        Adam's learning rate for ``rho``, which
        :func:`~neurohash_lite.train.fit` gives the loss's own parameters.
        Adam moves a parameter by at most about its learning rate per step,
        and ``da/drho = sigmoid(rho)`` is about 1 near ``a = 10``, so at the
        network's rate (1e-3) ``a`` could move by about 0.24 in the 240 steps
        of a ``book``-tier run: a learnable ``a`` that cannot move. At 0.1
        it can cross from 10 to ``a_max = 32`` in about 220 steps.

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: ``u_x`` and ``u_y`` are
    (n, K) relaxed codes of the same n subjects (row i is subject i in both
    modalities), ``labels_*`` (n,) integers; ``labels_y`` defaults to
    ``labels_x``. Returns ``(total, parts)``: ``total`` a scalar tensor and
    ``parts`` a dict of detached scalar tensors with the keys ``likelihood``,
    ``quantization``, ``metric``, ``push``, ``balance`` and ``a``. Codes in
    float16 or bfloat16 (mixed precision) are cast to float32 first.

    References
    ----------
    Tao & An (2021), Eq. (2) with T of Eq. (7); the sign of ``L_push`` follows
    the text of Section 3.3.2 (the term is to be maximised), which Eq. (7)
    writes with a plus.
    """

    def __init__(
        self,
        n_bits: int,
        lambda_q: float = 0.1,
        alpha: float = 0.1,
        margin: float | None = None,
        a_init: float = A_INIT,
        a_max: float | None = None,
        learn_a: bool = True,
        parameter_lr: float = RHO_LR,
    ) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        for name, value in (("lambda_q", lambda_q), ("alpha", alpha)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not a_init > 1:
            raise ValueError(f"a_init must be > 1 because a = 1 + softplus(rho), got {a_init!r}")
        a_max = float(n_bits) if a_max is None else float(a_max)
        if not a_max > 1:
            raise ValueError(f"a_max must be > 1, got {a_max!r}")
        if not (math.isfinite(parameter_lr) and parameter_lr > 0):
            raise ValueError(f"parameter_lr must be a finite number > 0, got {parameter_lr!r}")
        if margin is not None and (not math.isfinite(margin) or margin < 0):
            raise ValueError(f"margin must be a finite number of bits >= 0, got {margin!r}")
        self.n_bits = int(n_bits)
        self.lambda_q = float(lambda_q)
        self.alpha = float(alpha)
        self.margin = self.n_bits / 4.0 if margin is None else float(margin)
        self.a_max = a_max
        self.learn_a = bool(learn_a)
        self.parameter_lr = float(parameter_lr)
        rho = torch.tensor(_inverse_softplus(float(a_init) - 1.0))
        if self.learn_a:
            self.rho = nn.Parameter(rho)
        else:
            self.register_buffer("rho", rho)

    @property
    def a(self) -> torch.Tensor:
        """The current scale ``min(1 + softplus(rho), a_max)`` (a scalar tensor)."""
        return torch.clamp(1.0 + F.softplus(self.rho), max=self.a_max)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, s = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        a = self.a.to(u_x.dtype)
        likelihood = ahs_likelihood_loss(u_x, u_y, s, a)
        quantization = ahs_quantization_loss(u_x, u_y)
        metric = ahs_triplet_loss(u_x, u_y, labels_x, labels_y, self.margin)
        u_both = torch.cat([u_x, u_y], dim=0)
        push = ahs_push_loss(u_both)
        balance = ahs_balance_loss(u_both)
        total = likelihood + self.lambda_q * quantization + self.alpha * (metric - push + balance)
        parts = {
            "likelihood": likelihood.detach(),
            "quantization": quantization.detach(),
            "metric": metric.detach(),
            "push": push.detach(),
            "balance": balance.detach(),
            "a": a.detach(),
        }
        return total, parts

    def extra_repr(self) -> str:
        return (
            f"n_bits={self.n_bits}, lambda_q={self.lambda_q}, alpha={self.alpha}, "
            f"margin={self.margin}, a_max={self.a_max}, learn_a={self.learn_a}, parameter_lr={self.parameter_lr}"
        )
