"""Triplet-only hashing: the loss Adaptive Hash Semantics argues against.

A baseline that trains the codes with nothing but a cross-modal triplet loss
on ``p = (u + 1)/2`` (FaceNet's loss, Schroff et al., 2015, Eqs. (1)-(2), as Tao &
An write it in their Eq. (8)), with no likelihood and no quantization term.
Tao & An argue that the triplet term alone sees only relative distances of
sampled triplets and so needs the Bayesian pairwise term next to it; this
module lets the comparison test that claim on the shared training path.

References
----------
Schroff F., Kalenichenko D., Philbin J. (2015). FaceNet: A Unified Embedding
for Face Recognition and Clustering. CVPR. Eqs. (1)-(2) (the margin constraint and its hinge).
Tao W., An F. (2021). Deep Multimodal Neuroimaging Retrieval Based on Adaptive
Hash Semantics. Eq. (8).
"""

from __future__ import annotations

import math

from torch import nn

from neurohash_lite.losses.ahs import ahs_triplet_loss, cross_modal_batch

__all__ = ["TripletHashingLoss"]


class TripletHashingLoss(nn.Module):
    """``L = L_metric``: the mean cross-modal triplet hinge, nothing else.

    ``L_metric = (1/|T|) sum_(a,p,n) max(0, ||p_a - p_p||^2 - ||p_a - p_n||^2 + c)``
    over every valid triplet of the batch with the anchor in one modality and
    the positive and negative in the other, both directions pooled
    (:func:`~neurohash_lite.losses.ahs_triplet_loss`); ``p = (u + 1)/2``, so
    the distances are Hamming distances for binary codes and ``c`` is in bits.

    Parameters
    ----------
    n_bits : int
        Code length K.
    margin : float, optional
        ``c`` in bits, default ``K / 4`` (Method A's default).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: ``u_x``, ``u_y`` float
    (n, K) relaxed codes in [-1, 1], labels int (n,). Returns ``(total,
    parts)`` with ``parts = {"metric": ...}`` (detached).

    References
    ----------
    Schroff et al. (2015), Eqs. (1)-(2); Tao & An (2021), Eq. (8).
    """

    def __init__(self, n_bits: int, margin: float | None = None) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if margin is not None and (not math.isfinite(margin) or margin < 0):
            raise ValueError(f"margin must be a finite number of bits >= 0, got {margin!r}")
        self.n_bits = int(n_bits)
        self.margin = self.n_bits / 4.0 if margin is None else float(margin)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, _ = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        metric = ahs_triplet_loss(u_x, u_y, labels_x, labels_y, self.margin)
        return metric, {"metric": metric.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, margin={self.margin}"
