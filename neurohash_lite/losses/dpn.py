"""Deep Polarized Network (DPN): a bitwise hinge towards one target code per class.

Fan et al. (2020) give every class a target code ``t`` in {-1, +1}^K and push
each output ``v`` of the hash layer to the side of zero its target asks for,
with the bitwise hinge they call the *polarization loss*:

``L = sum_i sum_k max(m - v_ik t_ik, 0)``,

``m >= 0`` the margin. They show that it bounds a pairwise Hamming-distance
loss from above, so no pairs need to be formed, and that the target codes may
simply be drawn at random (their abstract: "even random codes assigned to
each class suffice"). Only the paper's abstract could be read here, not its
body: the loss above is the one of the authors' released code
(``calculate_loss`` in ``scripts/train_hashing.py``: ``relu(margin - codes *
centroids[label]).sum(1).mean()``) and of Luo et al.'s survey (2023, Eq. (47)),
so no equation number of the paper is cited.

What is implemented here
------------------------
- **Target codes: random**, as the paper's default and the authors' released
  code (github.com/kamwoh/DPN, ``scripts/train_hashing.py``, centroid method
  ``"N"``, the sign of a standard normal draw, i.e. fair independent bits).
  The draw comes from ``numpy.random.default_rng(seed)``; if two classes draw
  the same code, the draw is repeated (with three classes this happens with
  probability about ``3 / 2^K``; identical targets would make two diagnoses
  indistinguishable). Neither the authors' optimised centroids (method
  ``"O"``) nor their adaptive target update (DPN-A) nor ternary assignment at
  test time (DPN-T) is used: the paper's headline results are with random
  targets and binary codes, and the comparison scores ``sign(u)`` for every
  method.
- **Margin** ``m = 1``, the released code's default (``--margin 1.0``).
- **Cross-modal**: a subject's sMRI code and its PET code are pushed to the
  *same* target, the one of its diagnosis (three classes: NC, MCI, AD), so
  both modalities meet in one Hamming space without any pair being formed;
  the loss is the mean of the two modalities' losses.
- **Normalisation**: a mean over entries (``n K``) instead of the paper's sum
  (the released code sums over bits and averages over samples); under Adam,
  which the comparison uses, a constant factor does not change the steps.
- **Codes in (-1, 1)**: the book's networks end in ``tanh``; the paper's
  hash layer is linear (``v`` unbounded). With ``m = 1`` and ``|u| < 1`` the
  hinge is therefore never met: every entry keeps a gradient ``-t/(nK)``
  (through tanh's ``1 - u^2``) until tanh saturates on the target's side.
  A smaller margin (``margin=0.5``) lets satisfied bits stop.

References
----------
Fan L., Ng K. W., Ju C., Zhang T., Chan C. S. (2020). Deep Polarized Network
for Supervised Learning of Accurate Binary Hashing Codes. IJCAI, 825-831.
Luo X., Wang H., Wu D., Chen C., Deng M., Huang J., Hua X.-S. (2023). A Survey
on Deep Hashing Methods. ACM TKDD 17(1), Article 15, Eq. (47).
Released code: https://github.com/kamwoh/DPN (``scripts/train_hashing.py``:
``calculate_loss``, centroid generation).
Also read: https://github.com/swuxyj/DeepHash-pytorch (``DPN.py``), which
draws targets with exactly half of the bits at -1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from neurohash_lite.losses.ahs import _as_labels, _check_codes, _check_pair

__all__ = ["dpn_target_codes", "dpn_polarization_loss", "DPNLoss"]


def dpn_target_codes(n_classes: int, n_bits: int, seed: int = 0) -> torch.Tensor:
    """Random target codes, one per class, all distinct.

    Each bit is +1 or -1 with probability 1/2 (the sign of a standard normal
    draw, as DPN's released code); the whole draw is repeated while two
    classes share a code (possible only when ``2^K >= n_classes``).

    Parameters
    ----------
    n_classes : int
    n_bits : int
        Code length K.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    torch.Tensor, float32, shape (n_classes, n_bits), values in {-1, +1}

    References
    ----------
    Fan et al. (2020), abstract (random codes suffice); kamwoh/DPN, centroid method ``"N"``.
    """
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if int(n_bits) != n_bits or n_bits < 1:
        raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
    n_classes, n_bits = int(n_classes), int(n_bits)
    if n_classes > 2**min(n_bits, 62):
        raise ValueError(f"{n_classes} distinct codes do not exist with K={n_bits} bits")
    rng = np.random.default_rng(seed)
    while True:
        codes = np.where(rng.standard_normal((n_classes, n_bits)) >= 0, 1, -1)
        if len(np.unique(codes, axis=0)) == n_classes:
            return torch.as_tensor(codes, dtype=torch.float32)


def dpn_polarization_loss(u: torch.Tensor, targets: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean bitwise hinge ``max(m - u_ik t_ik, 0)``.

    Parameters
    ----------
    u : torch.Tensor, float, shape (n, K)
        Relaxed codes.
    targets : torch.Tensor, shape (n, K), values in {-1, +1}
        The target code of each row's class.
    margin : float, default 1.0

    Returns
    -------
    torch.Tensor, scalar, >= 0. 0 when every entry lies beyond the margin on
    its target's side; ``margin`` per entry at ``u = 0``.

    References
    ----------
    Fan et al. (2020), the polarization loss (kamwoh/DPN ``calculate_loss``;
    Luo et al. 2023, Eq. (47)), divided by ``n K``.
    """
    _check_codes(u, "u")
    if targets.shape != u.shape:
        raise ValueError(f"u and targets must have the same shape (n, K), got {tuple(u.shape)} and "
                         f"{tuple(targets.shape)}")
    return torch.relu(margin - u * targets.to(u.dtype)).mean()


class DPNLoss(nn.Module):
    """``L = (L_pol(u_x, T[y_x]) + L_pol(u_y, T[y_y])) / 2`` with one random target per class.

    Parameters
    ----------
    n_bits : int
    n_classes : int, default 3
    margin : float, default 1.0
        The hinge's margin ``m`` (the released code's default).
    seed : int, default 0
        Seed of the random target codes (:func:`dpn_target_codes`).

    Attributes
    ----------
    targets : torch.Tensor (buffer), shape (n_classes, n_bits)
        The target codes, shared by both modalities.

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``; returns ``(total, parts)``,
    parts ``polarization_mri`` and ``polarization_pet``.

    References
    ----------
    Fan et al. (2020); kamwoh/DPN ``calculate_loss`` (the loss) and ``main`` (random targets).
    """

    def __init__(self, n_bits: int, n_classes: int = 3, margin: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if not math.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        self.register_buffer("targets", dpn_target_codes(n_classes, n_bits, seed))
        self.n_bits, self.n_classes, self.margin, self.seed = int(n_bits), int(n_classes), float(margin), int(seed)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        labels_y = labels_x if labels_y is None else labels_y
        _check_pair(u_x, u_y)
        if u_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={u_x.shape[1]} bits (code length), the loss was built for {self.n_bits}")
        u_x = u_x.float() if u_x.dtype in (torch.float16, torch.bfloat16) else u_x
        u_y = u_y.float() if u_y.dtype in (torch.float16, torch.bfloat16) else u_y
        labels_x = _as_labels(labels_x, u_x.shape[0], "labels_x", u_x.device)
        labels_y = _as_labels(labels_y, u_y.shape[0], "labels_y", u_x.device)
        for name, labels in (("labels_x", labels_x), ("labels_y", labels_y)):
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise ValueError(f"{name} must lie in 0..{self.n_classes - 1}")
        targets = self.targets.to(u_x.device)
        pol_x = dpn_polarization_loss(u_x, targets[labels_x], self.margin)
        pol_y = dpn_polarization_loss(u_y, targets[labels_y], self.margin)
        total = (pol_x + pol_y) / 2
        return total, {"polarization_mri": pol_x.detach(), "polarization_pet": pol_y.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}, margin={self.margin}, seed={self.seed}"
