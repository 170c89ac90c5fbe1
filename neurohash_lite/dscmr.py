"""Deep Supervised Cross-Modal Retrieval (DSCMR), used as a hashing method.

Zhen, Hu, Wang & Peng (2019) learn a *real-valued* common space in which
both modalities are compared directly. Each modality has its own
sub-network; their last layer, the map into the common space, is **shared**
by the two (the weight-sharing strategy), and a **linear classifier** ``P``,
also shared, reads the common representations. With ``U`` and ``V`` the
common representations of the two modalities (rows: samples), ``Y`` the
one-hot labels and ``S`` the label similarity, the loss has three terms:

- **label space** (discrimination in the label space):
  ``J_1 = ||P^T U - Y|| + ||P^T V - Y||`` (per-sample Euclidean norms,
  averaged over the samples);
- **common space** (discrimination in the common space, inter- and
  intra-modal): the negative log-likelihood of ``S`` under
  ``sigma(Gamma_ij)`` for the three blocks of pairs,
  ``J_2 = mean_ij [log(1 + e^Gamma_ij) - S_ij Gamma_ij]`` (``Gamma_ij = 1/2 cos(u_i, v_j)``)
  ``+ mean_ij [log(1 + e^Phi_ij) - S_ij Phi_ij]`` (``Phi_ij = 1/2 cos(u_i, u_j)``)
  ``+ mean_ij [log(1 + e^Theta_ij) - S_ij Theta_ij]`` (``Theta_ij = 1/2 cos(v_i, v_j)``);
- **modality invariance**: ``J_3 = mean_i ||u_i - v_i||`` (a sample's two
  representations pulled together);

``J = J_1 + alpha J_2 + beta J_3``.

Sources: the paper (CVPR 2019, Section 3; its text could not be opened
here, so no equation numbers are cited) and the authors' released code,
https://github.com/penghu-cs/DSCMR (``train_model.py``: ``calc_loss``;
``model.py``: ``IDCM_NN``, the shared ``linearLayer`` and ``linearLayer2``;
``main.py``: ``alpha = 1e-3``, ``beta = 1e-1``). No code was copied. Where
the paper writes Frobenius norms divided by n for ``J_1`` and ``J_3``, the
released code averages per-sample norms; the code's form is used. The code's
``cos`` clamps ``||u|| ||v||`` below at 1e-6; so does this module. Norms are
``sqrt(sum + 1e-12)``, so the gradient stays finite where a sample's two
representations coincide (the DESIGN's rule for distances).

As a hashing method
-------------------
DSCMR is a real-valued method; the DCPHA paper (Wang & Zeng 2023, Table 2)
compares it with the hashing methods, so here the common space has K
dimensions and a scan's code is the **sign of its K-dimensional common
representation** (sign(0) = +1). Nothing in DSCMR's loss pushes the
representation towards ±1; the codes lose what the magnitudes held.

Two modalities and three diagnoses
----------------------------------
The two modalities are sMRI (``U``) and PET (``V``); each keeps its
pretrained AlexNet-style branch up to fc7 as its own sub-network (the
branch's own hash layer is removed), and one linear layer ``fc7 -> K``
shared by both maps into the common space (:class:`DSCMRNet`). The
classifier ``P`` (``K -> 3`` diagnoses) lives in the loss
(:class:`DSCMRLoss`), so the shared training path trains it with the
network. ``S_ij = 1`` when the diagnoses agree (single-label: the released
code's ``label_1 @ label_2^T`` on one-hot labels); pairs are those of the
batch, intra-modal blocks included, the diagonal (a sample with itself)
included as in the code.

Hyper-parameters and budget
---------------------------
``alpha = 1e-3``, ``beta = 1e-1`` (the released code's values for Pascal
Sentence). The code trains 500 epochs with Adam at lr 1e-4 (betas 0.5,
0.999); here the comparison's budget: Adam at its lr for ``config.epochs``
epochs after the shared pretraining, the last epoch kept.

References
----------
Zhen L., Hu P., Wang X., Peng D. (2019). Deep Supervised Cross-Modal
Retrieval. CVPR, 10394-10403.
Wang X., Zeng X. (2023). Deep consistency-preserving hash auto-encoders for
neuroimage cross-modal retrieval. Scientific Reports 13, Table 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .losses.ahs import cross_modal_batch
from .models import CrossModalHashNet
from .runner import (MethodRun, RunContext, pretrained_network, shared_hyperparameters, deep_codes,
                     public_settings, train_config)
from .train import CrossModalObjective, fit

__all__ = ["ALPHA", "BETA", "dscmr_cosine", "dscmr_label_space_loss", "dscmr_common_space_loss",
           "dscmr_invariance_loss", "DSCMRLoss", "DSCMRNet", "run"]

#: Weights of the common-space and the modality-invariance terms (the released main.py).
ALPHA, BETA = 1e-3, 1e-1
_EPS_NORM = 1e-12
_MIN_COSINE_DENOMINATOR = 1e-6


def _norm(x: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean norm ``sqrt(sum x^2 + 1e-12)`` (finite gradient at 0)."""
    return torch.sqrt((x ** 2).sum(dim=1) + _EPS_NORM)


def dscmr_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``<a_i, b_j> / max(||a_i|| ||b_j||, 1e-6)``, shape (n_a, n_b)."""
    denominator = (_norm(a)[:, None] * _norm(b)[None, :]).clamp(min=_MIN_COSINE_DENOMINATOR)
    return (a @ b.T) / denominator


def dscmr_label_space_loss(predictions: torch.Tensor, labels, n_classes: int) -> torch.Tensor:
    """``mean_i ||p_i - y_i||``: the classifier's outputs against the one-hot labels.

    Parameters
    ----------
    predictions : torch.Tensor, (n, C)
        ``P^T u_i`` (the shared linear classifier's outputs, no softmax).
    labels : torch.Tensor of int, (n,)
    n_classes : int
    """
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {int(labels.min())}..{int(labels.max())}")
    return _norm(predictions - F.one_hot(labels, n_classes).to(predictions.dtype)).mean()


def _likelihood(theta: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return (F.softplus(theta) - s * theta).mean()


def dscmr_common_space_loss(u: torch.Tensor, v: torch.Tensor, labels_u, labels_v) -> torch.Tensor:
    """The common-space discrimination loss: inter-modal plus both intra-modal likelihoods.

    ``mean_ij [softplus(G_ij) - S_ij G_ij]`` for ``G = 1/2 cos(U, V)``,
    ``1/2 cos(U, U)`` and ``1/2 cos(V, V)``, summed (diagonals included).
    """
    s_uv = (labels_u[:, None] == labels_v[None, :]).to(u.dtype)
    s_uu = (labels_u[:, None] == labels_u[None, :]).to(u.dtype)
    s_vv = (labels_v[:, None] == labels_v[None, :]).to(u.dtype)
    return (_likelihood(0.5 * dscmr_cosine(u, v), s_uv) + _likelihood(0.5 * dscmr_cosine(u, u), s_uu)
            + _likelihood(0.5 * dscmr_cosine(v, v), s_vv))


def dscmr_invariance_loss(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The modality-invariance loss ``mean_i ||u_i - v_i||`` over paired rows."""
    if u.shape != v.shape:
        raise ValueError(f"the invariance loss needs paired rows, got {tuple(u.shape)} and {tuple(v.shape)}")
    return _norm(u - v).mean()


class DSCMRLoss(nn.Module):
    """``J = J_1 + alpha J_2 + beta J_3`` with the shared linear classifier ``P`` inside.

    Parameters
    ----------
    n_bits : int
        K, the dimension of the common space.
    n_classes : int, default 3
    alpha : float, default 1e-3
        Weight of the common-space loss ``J_2``.
    beta : float, default 0.1
        Weight of the modality-invariance loss ``J_3``.

    Attributes
    ----------
    classifier : nn.Linear
        ``P``: K -> C, shared by both modalities, trained with the network
        (as a loss parameter, through
        :class:`~neurohash_lite.train.CrossModalObjective`).

    Shapes
    ------
    ``forward(u_x, u_y, labels_x, labels_y=None)``: ``u_x``, ``u_y`` the (n, K)
    common representations of the same n subjects (real-valued); returns
    ``(total, parts)``, parts ``label_space``, ``common_space``, ``invariance``.

    References
    ----------
    Zhen et al. (2019), Section 3; the released ``calc_loss``.
    """

    def __init__(self, n_bits: int, n_classes: int = 3, alpha: float = ALPHA, beta: float = BETA) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.n_bits, self.n_classes = int(n_bits), int(n_classes)
        self.alpha, self.beta = float(alpha), float(beta)
        self.classifier = nn.Linear(self.n_bits, self.n_classes)

    def forward(self, u_x, u_y, labels_x, labels_y=None):
        u_x, u_y, labels_x, labels_y, _ = cross_modal_batch(u_x, u_y, labels_x, labels_y)
        with torch.autocast(device_type=u_x.device.type, enabled=False):
            weight = self.classifier.weight
            u_x, u_y = u_x.to(weight.dtype), u_y.to(weight.dtype)
            label_space = (dscmr_label_space_loss(self.classifier(u_x), labels_x, self.n_classes)
                           + dscmr_label_space_loss(self.classifier(u_y), labels_y, self.n_classes))
            common_space = dscmr_common_space_loss(u_x, u_y, labels_x, labels_y)
            invariance = dscmr_invariance_loss(u_x, u_y)
            total = label_space + self.alpha * common_space + self.beta * invariance
        return total, {"label_space": label_space.detach(), "common_space": common_space.detach(),
                       "invariance": invariance.detach()}

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}, alpha={self.alpha}, beta={self.beta}"


class DSCMRNet(nn.Module):
    """Two modality sub-networks and one shared layer into the K-dimensional common space.

    Parameters
    ----------
    network : CrossModalHashNet
        Its two branches up to fc7 are the sub-networks; their own hash
        layers are removed (set to ``None``: the branches are taken over).
    n_bits : int, optional
        K (default the network's).

    Shapes
    ------
    ``encode(x, modality)``: scans (N, C, ...) -> (N, K) real-valued common
    representations (the codes are their signs).
    """

    def __init__(self, network: CrossModalHashNet, n_bits: int | None = None) -> None:
        super().__init__()
        if not isinstance(network, CrossModalHashNet):
            raise ValueError(f"network must be a CrossModalHashNet, got {type(network).__name__}")
        self.n_bits = int(network.n_bits if n_bits is None else n_bits)
        self.mri_branch, self.pet_branch = network.mri_branch, network.pet_branch
        for branch in (self.mri_branch, self.pet_branch):
            branch.hash_layer = None  # replaced by the shared common layer
        if self.mri_branch.feature_dim != self.pet_branch.feature_dim:
            raise ValueError("the two branches must have one feature size to share the common layer")
        self.common = nn.Linear(self.mri_branch.feature_dim, self.n_bits)

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        if modality not in ("mri", "pet"):
            raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
        branch = self.mri_branch if modality == "mri" else self.pet_branch
        return self.common(branch.features(x))

    def forward(self, mri: torch.Tensor, pet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(mri, "mri"), self.encode(pet, "pet")


def run(context: RunContext, n_bits: int, *, alpha: float = ALPHA, beta: float = BETA) -> MethodRun:
    """DSCMR on the seed's training set: the pretrained branches, a shared
    K-dimensional common layer and the classifier, trained on ``J`` for
    ``config.epochs`` epochs; codes are the signs of the common representations.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    alpha, beta : float

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    data = context.data
    labels = data.train.labels[data.train.indices]
    network = DSCMRNet(pretrained_network(context, n_bits))
    criterion = DSCMRLoss(n_bits, n_classes=max(3, int(labels.max()) + 1), alpha=alpha, beta=beta)
    result = fit(network, CrossModalObjective(criterion), data.train, train_config(context, context.config.epochs))
    hyper = {"loss": "DSCMRLoss", **public_settings(criterion), "common_space": "real-valued, K dimensions",
             "codes": "sign of the common representation", "shared_layers": "common layer and classifier",
             **shared_hyperparameters(context)}
    return MethodRun(deep_codes(network, data, context.device), data.pretrain_seconds + result.seconds,
                     len(result.history.epoch), hyper)
