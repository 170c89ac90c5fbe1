"""The losses of DCPHA (Method B), term by term, printed and corrected.

Wang & Zeng (2023) minimise ``J = alpha J1 + beta J2 + R`` (their Eq. 10):
``J1`` (Eq. 7) asks the class predicted from the encoder's feature (``y``,
by SPAB_E) and from the code (``r``, by SPAB_D) to agree with the label and
with each other; ``J2`` (Eq. 8) is a pairwise likelihood over the
multi-manifold similarity ``S_M`` (Eq. 6), whose diagonal blocks are the
cosine similarity ``S_I`` within a modality (Eq. 5) and whose off-diagonal
blocks are the heat-kernel similarity ``S_H`` across modalities (Eqs. 2-3);
``R`` is an L1 pull of every code entry towards +1 (Eq. 10, third term).

Read literally, two of these break, and this module implements both the
printed form (``variant="paper"``) and a corrected one
(``variant="corrected"``, the default), as DESIGN.md section 6 fixes them:

======================  =======================================  ===========================================
piece                   printed (``"paper"``)                     corrected (``"corrected"``)
======================  =======================================  ===========================================
``D^2``, same label     ``1 - exp(-d)``                           ``1 - exp(-x)``, ``x = min(d^2 / beta, 20)``
``D^2``, other label    ``exp(-d)``: *falls* as ``d`` grows, so   ``(exp(x / 2) - alpha_0)^2``: grows with
                        ``S_H`` grows with distance and ``J2``    distance (S-Isomap, Geng et al. 2005),
                        pulls different diagnoses together        ``alpha_0 = 0.5``
regulariser ``R``       ``mean |h - 1|``: drives every bit to     ``mean ||h| - 1|``: drives every entry to
                        +1, so all codes collapse to one          -1 or +1 (DHN, Zhu et al. 2016)
======================  =======================================  ===========================================

Here ``d`` is the Euclidean distance between two relaxed codes, computed as
``sqrt(d^2 + 1e-12)`` so that its gradient stays finite where two codes
coincide, and ``beta`` is the mean of ``d^2`` over the block (detached),
S-Isomap's scale; ``x`` is clipped at 20 so that ``exp(x / 2)`` cannot
overflow. Sums over samples and pairs are written as means, so the weights
do not depend on the batch size; ``J2`` gets a temperature ``gamma`` inside
the likelihood (``gamma = 1`` is the paper).

References
----------
Wang X., Zeng X. (2023). Deep consistency-preserving hash auto-encoders for
neuroimage cross-modal retrieval. Scientific Reports 13. Eqs. (1)-(10).
Geng X., Zhan D.-C., Zhou Z.-H. (2005). Supervised nonlinear dimensionality
reduction for visualization and classification. IEEE TSMC-B 35(6)
(S-Isomap's supervised distance).
Zhu H., Long M., Wang J., Cao Y. (2016). Deep hashing network for efficient
similarity retrieval. AAAI (the bimodal Laplacian quantization prior).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from neurohash_lite.losses.ahs import _check_codes

__all__ = [
    "VARIANTS",
    "ALPHA",
    "BETA",
    "LAMBDA_R",
    "dcpha_distance",
    "dcpha_homogeneous_similarity",
    "dcpha_heterogeneous_similarity",
    "dcpha_multimanifold_similarity",
    "dcpha_same_label",
    "dcpha_j1",
    "dcpha_j2",
    "dcpha_regularizer",
    "dcpha_laplacian_objective",
    "dcpha_loss",
]

#: The two readings of S_H and of the regulariser.
VARIANTS = ("paper", "corrected")

#: Weights of J1 and J2, the paper's choice for ADNI2 (Section "Hyper-parameter
#: sensitivity analysis").
ALPHA = 0.3
BETA = 1.0

#: Weight of the regulariser as a mean over code entries. The paper writes R
#: unweighted as a sum over all ordered pairs of samples; per pair of J2 that
#: is a weight of 2K on ``mean |h - 1|`` (see :func:`dcpha_regularizer`).
LAMBDA_R = 0.1

#: Added to d^2 before the square root: d = sqrt(d^2 + 1e-12).
DISTANCE_EPS = 1e-12
#: Added to squared norms (J1's norms, the cosine's denominators).
NORM_EPS = 1e-12
#: S-Isomap's offset for pairs of different labels.
ALPHA_0 = 0.5
#: Floor of S-Isomap's scale beta, and the clip of x = d^2 / beta.
BETA_MIN = 1e-8
X_MAX = 20.0


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------
def _check_same_length(h_m: torch.Tensor, h_n: torch.Tensor, names=("h_m", "h_n")) -> None:
    if h_m.shape[1] != h_n.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same code length K, "
            f"got {h_m.shape[1]} and {h_n.shape[1]}"
        )


def _as_labels(labels, n: int, name: str, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=device)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got {labels.dtype}")
    return labels


def _check_variant(variant: str, name: str = "variant") -> None:
    if variant not in VARIANTS:
        raise ValueError(f"{name}={variant!r} must be one of {VARIANTS}")


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _check_weight(value: float, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


# --------------------------------------------------------------------------
# Distances and similarities (Definitions 1-3, Eqs. 1-6)
# --------------------------------------------------------------------------
def _squared_distances(h_m: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
    # Differences, not the ||a||^2 + ||b||^2 - 2<a, b> expansion: exactly 0 for
    # equal rows (never slightly negative), with a zero gradient there.
    return ((h_m[:, None, :] - h_n[None, :, :]) ** 2).sum(-1)


def dcpha_distance(h_m: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between two sets of codes, safe at zero.

    ``d_ij = sqrt(||h_i^m - h_j^n||^2 + 1e-12)``: equal to the distance up to
    1e-6, and with a finite gradient (zero) where two codes coincide, where
    the plain square root's gradient is infinite.

    Parameters
    ----------
    h_m : torch.Tensor, float, shape (n_m, K)
    h_n : torch.Tensor, float, shape (n_n, K)

    Returns
    -------
    torch.Tensor, shape (n_m, n_n), in code units, >= 1e-6

    References
    ----------
    Wang & Zeng (2023), the standard Euclidean distance ``d(.)`` of Eq. (3).
    """
    _check_codes(h_m, "h_m")
    _check_codes(h_n, "h_n")
    _check_same_length(h_m, h_n)
    return torch.sqrt(_squared_distances(h_m, h_n) + DISTANCE_EPS)


def dcpha_homogeneous_similarity(h_m: torch.Tensor, h_n: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity between codes of one modality, ``S_I``.

    ``S_I(h_i, h_j) = <h_i, h_j> / (||h_i|| ||h_j||)`` with
    ``||h|| = sqrt(sum h^2 + 1e-12)``, so a code of zeros has similarity 0
    with everything (and a finite gradient) instead of NaN.

    Parameters
    ----------
    h_m : torch.Tensor, float, shape (n_m, K)
        Relaxed codes of one modality.
    h_n : torch.Tensor, float, shape (n_n, K), optional
        Other codes of the same modality; default ``h_m`` (the (n, n) block
        of Eq. 4, ones on the diagonal).

    Returns
    -------
    torch.Tensor, shape (n_m, n_n), values in [-1, 1]

    References
    ----------
    Wang & Zeng (2023), Definition 2, Eqs. (4)-(5).
    """
    _check_codes(h_m, "h_m")
    if h_n is None:
        h_n = h_m
    _check_codes(h_n, "h_n")
    _check_same_length(h_m, h_n)
    unit_m = h_m / torch.sqrt((h_m**2).sum(1, keepdim=True) + NORM_EPS)
    unit_n = h_n / torch.sqrt((h_n**2).sum(1, keepdim=True) + NORM_EPS)
    return unit_m @ unit_n.T


def dcpha_heterogeneous_similarity(
    h_m: torch.Tensor,
    h_n: torch.Tensor,
    labels_m,
    labels_n,
    tau: float = 1.0,
    variant: str = "corrected",
    beta: float | None = None,
) -> torch.Tensor:
    """Heat-kernel similarity between codes of two modalities, ``S_H``.

    ``S_H(h_i^m, h_j^n) = exp(-D^2(h_i^m, h_j^n) / tau)`` (Eq. 2), where the
    label-aware squared distance ``D^2`` is

    * ``variant="paper"`` (Eq. 3 as printed), with ``d = sqrt(d^2 + 1e-12)``:
      ``D^2 = 1 - exp(-d)`` when ``l_i = l_j`` and ``D^2 = exp(-d)``
      otherwise. For different labels ``D^2`` *falls* as the codes move
      apart, so ``S_H`` rises with distance, from ``exp(-1/tau)`` at
      ``d = 0`` towards 1: minimising ``J2`` then pulls pairs of different
      diagnoses together. This is the printed formula, kept to show it.
    * ``variant="corrected"`` (S-Isomap, Geng et al. 2005, which Eq. 3
      appears to adapt), with ``beta = max(mean of d^2 over the block, 1e-8)``
      (detached) and ``x = min(d^2 / beta, 20)``:
      ``D^2 = 1 - exp(-x)`` when ``l_i = l_j`` and
      ``D^2 = (exp(x / 2) - 0.5)^2`` otherwise. Both grow with distance;
      same-label pairs stay within ``D^2 < 1`` and different-label pairs
      start at ``0.25``, so ``S_H`` lies in ``(exp(-1/tau), 1]`` for equal and
      in ``(0, exp(-0.25/tau)]`` for different labels.

    Parameters
    ----------
    h_m : torch.Tensor, float, shape (n_m, K)
        Relaxed codes of modality m (rows are subjects).
    h_n : torch.Tensor, float, shape (n_n, K)
        Relaxed codes of modality n.
    labels_m : array-like of int, shape (n_m,)
    labels_n : array-like of int, shape (n_n,)
        Diagnoses (0 NC, 1 MCI, 2 AD).
    tau : float, default 1.0
        Heat-kernel constant, > 0 (dimensionless: ``D^2`` is).
    variant : {"corrected", "paper"}
    beta : float, optional
        The corrected variant's scale, in squared code units. Default: the
        mean of ``d^2`` over the block, detached (S-Isomap's choice). Give a
        number to hold it fixed, e.g. to plot ``S_H`` against ``d`` or to
        check gradients with finite differences. Ignored by ``"paper"``.

    Returns
    -------
    torch.Tensor, shape (n_m, n_n), values in (0, 1]

    References
    ----------
    Wang & Zeng (2023), Definition 1, Eqs. (1)-(3); the corrected form is the
    supervised distance of S-Isomap (Geng et al., 2005).
    """
    _check_variant(variant)
    tau = _check_positive(tau, "tau")
    _check_codes(h_m, "h_m")
    _check_codes(h_n, "h_n")
    _check_same_length(h_m, h_n)
    labels_m = _as_labels(labels_m, h_m.shape[0], "labels_m", h_m.device)
    labels_n = _as_labels(labels_n, h_n.shape[0], "labels_n", h_m.device)
    same = labels_m[:, None] == labels_n[None, :]
    d2 = _squared_distances(h_m, h_n)
    if variant == "paper":
        d = torch.sqrt(d2 + DISTANCE_EPS)
        big_d2 = torch.where(same, -torch.expm1(-d), torch.exp(-d))
    else:
        if beta is None:
            beta = d2.detach().mean().clamp(min=BETA_MIN)
        else:
            beta = max(_check_positive(beta, "beta"), BETA_MIN)
        x = torch.clamp(d2 / beta, max=X_MAX)
        big_d2 = torch.where(same, -torch.expm1(-x), (torch.exp(x / 2) - ALPHA_0) ** 2)
    return torch.exp(-big_d2 / tau)


def dcpha_multimanifold_similarity(
    codes_per_modality: Sequence[torch.Tensor],
    labels,
    tau: float = 1.0,
    variant: str = "corrected",
) -> torch.Tensor:
    """The block matrix ``S_M`` over any number of modalities.

    Block ``(m, n)`` is ``S_I`` of modality ``m`` when ``m = n`` and
    ``S_H(h^m, h^n)`` otherwise; rows and columns run modality by modality
    (rows ``m n_subjects`` to ``(m + 1) n_subjects - 1`` are modality ``m``).
    ``S_M`` is symmetric.

    Parameters
    ----------
    codes_per_modality : sequence of torch.Tensor, each float (n, K)
        One tensor per modality, ``M >= 1``; row ``i`` of every tensor is
        subject ``i``.
    labels : array-like of int, shape (n,)
        The subjects' diagnoses.
    tau : float, default 1.0
        Heat-kernel constant of ``S_H``.
    variant : {"corrected", "paper"}
        Which ``S_H`` (see :func:`dcpha_heterogeneous_similarity`).

    Returns
    -------
    torch.Tensor, shape (M n, M n)

    References
    ----------
    Wang & Zeng (2023), Definition 3, Eq. (6).
    """
    if isinstance(codes_per_modality, torch.Tensor) or not isinstance(codes_per_modality, Sequence):
        raise ValueError("codes_per_modality must be a list of (n, K) tensors, one per modality")
    if len(codes_per_modality) == 0:
        raise ValueError("codes_per_modality is empty; give one (n, K) tensor per modality")
    for m, h in enumerate(codes_per_modality):
        _check_codes(h, f"codes_per_modality[{m}]")
    first = codes_per_modality[0]
    for m, h in enumerate(codes_per_modality[1:], start=1):
        if h.shape != first.shape:
            raise ValueError(
                "every modality must hold the same subjects and code length: "
                f"codes_per_modality[0] has shape {tuple(first.shape)}, "
                f"codes_per_modality[{m}] has {tuple(h.shape)}"
            )
    labels = _as_labels(labels, first.shape[0], "labels", first.device)
    n_modalities = len(codes_per_modality)
    rows = []
    blocks = {}
    for m in range(n_modalities):
        row = []
        for n in range(n_modalities):
            if m == n:
                block = dcpha_homogeneous_similarity(codes_per_modality[m])
            elif (n, m) in blocks:
                block = blocks[(n, m)].T  # S_H is symmetric in its two modalities
            else:
                block = dcpha_heterogeneous_similarity(
                    codes_per_modality[m], codes_per_modality[n], labels, labels, tau=tau, variant=variant
                )
            blocks[(m, n)] = block
            row.append(block)
        rows.append(torch.cat(row, dim=1))
    return torch.cat(rows, dim=0)


def dcpha_same_label(labels, n_modalities: int = 1) -> torch.Tensor:
    """The indicator ``I(l_i, l_j)`` laid out like ``S_M``.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
    n_modalities : int, default 1
        ``M``: the labels are tiled ``M`` times, modality by modality, as the
        rows of :func:`dcpha_multimanifold_similarity`.

    Returns
    -------
    torch.Tensor, float32, shape (M n, M n), values in {0, 1}

    References
    ----------
    Wang & Zeng (2023), the indicator ``I(., .)`` of Eq. (8).
    """
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of integer labels, got shape {tuple(labels.shape)}")
    labels = _as_labels(labels, labels.shape[0], "labels", labels.device)
    if int(n_modalities) != n_modalities or n_modalities < 1:
        raise ValueError(f"n_modalities must be a positive integer, got {n_modalities!r}")
    tiled = labels.repeat(int(n_modalities))
    return (tiled[:, None] == tiled[None, :]).float()


# --------------------------------------------------------------------------
# J1: multi-semantic consistency (Eq. 7)
# --------------------------------------------------------------------------
def _norm(v: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((v**2).sum(-1) + NORM_EPS)


def dcpha_j1(y_logits: torch.Tensor, r_logits: torch.Tensor, labels) -> torch.Tensor:
    """Multi-semantic consistency: both predictions agree with the label and each other.

    ``J1 = mean_i ( ||y_i - l_i||_2 + ||r_i - l_i||_2 + ||y_i - r_i||_2 )``
    with ``y = softmax(y_logits)`` (SPAB_E's prediction from the feature),
    ``r = softmax(r_logits)`` (SPAB_D's prediction from the code) and ``l``
    one-hot. The norms are not squared, as Eq. (7) writes them (its
    "Frobenius" norm of a vector is the Euclidean norm), and
    ``||v||_2 = sqrt(sum v^2 + 1e-12)`` keeps the gradient finite when a
    prediction is exactly one-hot. Stack the rows of every modality to take
    the mean over samples and modalities.

    Parameters
    ----------
    y_logits : torch.Tensor, float, shape (N, C)
        SPAB_E's logits.
    r_logits : torch.Tensor, float, shape (N, C)
        SPAB_D's logits, same rows.
    labels : array-like of int, shape (N,)
        Class indices in ``[0, C)``.

    Returns
    -------
    torch.Tensor, scalar, in [0, 3 sqrt(2)] (each norm is at most sqrt(2))

    References
    ----------
    Wang & Zeng (2023), Eq. (7), as a mean instead of a sum over samples and
    modalities.
    """
    for name, logits in (("y_logits", y_logits), ("r_logits", r_logits)):
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"{name} must be a float tensor of shape (N, C), got {shape}")
    if y_logits.shape != r_logits.shape:
        raise ValueError(
            f"y_logits and r_logits must have the same shape, got {tuple(y_logits.shape)} and {tuple(r_logits.shape)}"
        )
    n, n_classes = y_logits.shape
    if n == 0:
        raise ValueError("y_logits has no rows")
    labels = _as_labels(labels, n, "labels", y_logits.device)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {int(labels.min())} to {int(labels.max())}")
    one_hot = F.one_hot(labels.long(), n_classes).to(y_logits.dtype)
    y = torch.softmax(y_logits, dim=1)
    r = torch.softmax(r_logits, dim=1)
    return (_norm(y - one_hot) + _norm(r - one_hot) + _norm(y - r)).mean()


# --------------------------------------------------------------------------
# J2: multi-manifold similarity preserving (Eq. 8)
# --------------------------------------------------------------------------
def dcpha_j2(s_m: torch.Tensor, same_label, gamma: float = 1.0) -> torch.Tensor:
    """Pairwise likelihood of the labels under the similarity ``S_M``.

    ``J2 = mean over i != j of softplus(gamma S_ij) - I_ij gamma S_ij``,
    the negative log-likelihood of ``I_ij`` under
    ``p(I_ij = 1) = sigmoid(gamma S_ij)``. The diagonal (a sample paired with
    itself) is left out; a subject's scans in two modalities are a pair like
    any other. With ``gamma = 1`` (the paper) and ``S`` in ``[-1, 1]`` the
    sigmoid only spans ``[0.27, 0.73]``: the per-pair loss is almost linear
    in ``S`` and never saturates. A larger ``gamma`` sharpens it.

    Parameters
    ----------
    s_m : torch.Tensor, float, shape (N, N)
        The multi-manifold similarity (:func:`dcpha_multimanifold_similarity`).
    same_label : torch.Tensor or array-like, shape (N, N), values in {0, 1}
        ``I_ij`` (:func:`dcpha_same_label`).
    gamma : float, default 1.0
        Scale inside the likelihood, > 0.

    Returns
    -------
    torch.Tensor, scalar, in nats per ordered pair

    References
    ----------
    Wang & Zeng (2023), Eq. (8), as a mean over ordered pairs instead of a
    sum, without the diagonal, and with ``gamma``.
    """
    if not isinstance(s_m, torch.Tensor) or s_m.ndim != 2 or s_m.shape[0] != s_m.shape[1]:
        shape = tuple(s_m.shape) if isinstance(s_m, torch.Tensor) else type(s_m).__name__
        raise ValueError(f"s_m must be a square (N, N) tensor, got {shape}")
    if s_m.shape[0] < 2:
        raise ValueError("s_m must be at least 2 x 2: J2 needs a pair of distinct samples")
    gamma = _check_positive(gamma, "gamma")
    same_label = torch.as_tensor(same_label, device=s_m.device)
    if same_label.shape != s_m.shape:
        raise ValueError(f"same_label must have the shape of s_m, {tuple(s_m.shape)}, got {tuple(same_label.shape)}")
    same_label = same_label.detach().to(s_m.dtype)
    if not torch.all((same_label == 0) | (same_label == 1)):
        raise ValueError("same_label must hold only 0 and 1")
    logits = gamma * s_m
    per_pair = F.softplus(logits) - same_label * logits
    off_diagonal = ~torch.eye(s_m.shape[0], dtype=torch.bool, device=s_m.device)
    return per_pair[off_diagonal].mean()


# --------------------------------------------------------------------------
# The regulariser (Eq. 10, third term)
# --------------------------------------------------------------------------
def dcpha_regularizer(h: torch.Tensor, variant: str = "corrected") -> torch.Tensor:
    """Pull of the relaxed codes towards binary values.

    * ``variant="paper"``: ``mean |h - 1|``, Eq. (10)'s
      ``||h - 1||_1`` as written. Its gradient is ``-1/(nK)`` for every
      entry below 1, whatever its sign: it drives every bit of every code to
      +1, so all codes collapse into one. Kept to show it.
    * ``variant="corrected"``: ``mean ||h| - 1|``, the L1 form of DHN's
      bimodal prior: every entry moves away from 0 towards the nearer of
      -1 and +1, and the sign (the bit) is left to the other terms.

    Eq. (10) sums the term over all ordered pairs of samples ``(i, j)`` and
    modality pairs ``(m, n)``, counting each code ``2 M N`` times; next to
    J2's mean over pairs that is a weight of ``2K`` on this mean.

    Parameters
    ----------
    h : torch.Tensor, float, shape (n, K)
        Relaxed codes in (-1, 1) (one modality, or several stacked).
    variant : {"corrected", "paper"}

    Returns
    -------
    torch.Tensor, scalar, in [0, 2] for "paper" and [0, 1] for "corrected"
    when h is in [-1, 1]

    References
    ----------
    Wang & Zeng (2023), Eq. (10), third term; the corrected form is the L1
    quantization loss of DHN (Zhu et al., 2016).
    """
    _check_variant(variant)
    _check_codes(h, "h")
    if variant == "paper":
        return (h - 1.0).abs().mean()
    return (h.abs() - 1.0).abs().mean()


# --------------------------------------------------------------------------
# Laplacian eigenmaps (Eq. 9), for examining Theorem 1
# --------------------------------------------------------------------------
def dcpha_laplacian_objective(codes_per_modality: Sequence[torch.Tensor], s_m: torch.Tensor) -> torch.Tensor:
    """Laplacian-eigenmaps objective over all modalities' normalised codes.

    ``L = mean over i != j of (1/2) S_ij ||H_i - H_j||^2`` with
    ``H = h / ||h||`` and rows ordered as in ``S_M``. For unit vectors
    ``(1/2)||H_i - H_j||^2 = 1 - cos(h_i, h_j)``.

    Parameters
    ----------
    codes_per_modality : sequence of torch.Tensor, each float (n, K)
    s_m : torch.Tensor, float, shape (M n, M n)
        The weights ``S_ij`` (e.g. ``S_M``; detach it to treat them as fixed,
        as Laplacian eigenmaps does).

    Returns
    -------
    torch.Tensor, scalar

    References
    ----------
    Wang & Zeng (2023), Eq. (9), as a mean over ordered pairs; Belkin &
    Niyogi (2002).
    """
    if isinstance(codes_per_modality, torch.Tensor) or len(codes_per_modality) == 0:
        raise ValueError("codes_per_modality must be a non-empty list of (n, K) tensors")
    for m, h in enumerate(codes_per_modality):
        _check_codes(h, f"codes_per_modality[{m}]")
    h = torch.cat(list(codes_per_modality), dim=0)
    if s_m.shape != (h.shape[0], h.shape[0]):
        raise ValueError(f"s_m must have shape {(h.shape[0], h.shape[0])}, got {tuple(s_m.shape)}")
    if h.shape[0] < 2:
        raise ValueError("the objective needs at least two codes")
    unit = h / torch.sqrt((h**2).sum(1, keepdim=True) + NORM_EPS)
    half_sq = 0.5 * _squared_distances(unit, unit)
    off_diagonal = ~torch.eye(h.shape[0], dtype=torch.bool, device=h.device)
    return (s_m * half_sq)[off_diagonal].mean()


# --------------------------------------------------------------------------
# The total (Eq. 10)
# --------------------------------------------------------------------------
def dcpha_loss(
    y_logits: Sequence[torch.Tensor],
    r_logits: Sequence[torch.Tensor],
    codes_per_modality: Sequence[torch.Tensor],
    labels,
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    lambda_r: float = LAMBDA_R,
    tau: float = 1.0,
    gamma: float = 1.0,
    similarity: str = "corrected",
    regularizer: str = "corrected",
) -> tuple[torch.Tensor, dict]:
    """The whole DCPHA objective ``J = alpha J1 + beta J2 + lambda_r R``.

    The ablations are weights of zero: DCHA is ``beta = 0`` (J1 only), DPHA
    ``alpha = 0`` (J2 only); every part is still computed and reported.

    Parameters
    ----------
    y_logits : sequence of torch.Tensor, each float (n, C)
        SPAB_E's logits, one tensor per modality (row i is subject i).
    r_logits : sequence of torch.Tensor, each float (n, C)
        SPAB_D's logits, likewise.
    codes_per_modality : sequence of torch.Tensor, each float (n, K)
        Relaxed codes ``h``, likewise.
    labels : array-like of int, shape (n,)
    alpha, beta : float
        Weights of J1 and J2 (default 0.3 and 1, the paper's ADNI2 choice).
    lambda_r : float, default 0.1
        Weight of the regulariser (the paper's Eq. 10 has none; see
        :data:`LAMBDA_R`).
    tau : float, default 1.0
        Heat-kernel constant of ``S_H``.
    gamma : float, default 1.0
        Scale inside J2's likelihood.
    similarity : {"corrected", "paper"}
        Which ``S_H``.
    regularizer : {"corrected", "paper"}
        Which regulariser.

    Returns
    -------
    total : torch.Tensor, scalar
    parts : dict of str to torch.Tensor
        Detached scalars ``j1``, ``j2`` and ``regularizer``.

    References
    ----------
    Wang & Zeng (2023), Eq. (10) with J1 of Eq. (7) and J2 of Eq. (8).
    """
    alpha = _check_weight(alpha, "alpha")
    beta = _check_weight(beta, "beta")
    lambda_r = _check_weight(lambda_r, "lambda_r")
    _check_variant(similarity, "similarity")
    _check_variant(regularizer, "regularizer")
    n_modalities = len(codes_per_modality)
    if not (len(y_logits) == len(r_logits) == n_modalities) or n_modalities == 0:
        raise ValueError(
            "y_logits, r_logits and codes_per_modality must each hold one tensor per modality; got "
            f"{len(y_logits)}, {len(r_logits)} and {n_modalities}"
        )
    # Under mixed precision the network's outputs may be 16-bit; the loss is
    # computed in (at least) float32.
    def wide(tensors):
        return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]

    y_logits, r_logits, codes = wide(y_logits), wide(r_logits), wide(codes_per_modality)
    first = codes[0]
    _check_codes(first, "codes_per_modality[0]")
    labels = _as_labels(labels, first.shape[0], "labels", first.device)
    j1 = dcpha_j1(torch.cat(y_logits), torch.cat(r_logits), labels.repeat(n_modalities))
    s_m = dcpha_multimanifold_similarity(codes, labels, tau=tau, variant=similarity)
    j2 = dcpha_j2(s_m, dcpha_same_label(labels, n_modalities).to(s_m.device), gamma=gamma)
    reg = dcpha_regularizer(torch.cat(codes), variant=regularizer)
    total = alpha * j1 + beta * j2 + lambda_r * reg
    return total, {"j1": j1.detach(), "j2": j2.detach(), "regularizer": reg.detach()}
