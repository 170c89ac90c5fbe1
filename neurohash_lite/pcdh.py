"""PCDH: deep discrete hashing with pairwise correlation learning (Chen & Lu, 2020).

PCDH puts four fully connected layers on top of its convolutions: a deep
feature layer ``z``, a hash-like layer ``h`` (tanh), a *discrete hash layer*
``b = sign(W_d h + c_d)`` that emits binary codes directly, and a linear
classification layer on ``b``. Its objective (as Luo et al.'s survey, Eq. (12),
writes it, with DSH's contrastive form) is

``L = L_s + lambda_1 L_p + lambda_2 L_c``,

``L_s = sum_ij [1/2 s_ij ||h_i - h_j||^2 + 1/2 (1 - s_ij) max(eps - ||h_i - h_j||^2, 0)^2]``
(pairwise similarity of the hash-like codes),

``L_p`` = the same on the deep features ``z`` (the *pairwise correlation* term
the method is named after, which ties the features' geometry to the labels),

``L_c = sum_i CE(softmax(W b_i), y_i)`` (classification of the discrete codes).

Sources and what could not be reached
-------------------------------------
The paper itself (Neurocomputing 385, 111-121) could not be opened here. The
objective above is from Luo et al.'s survey (Eq. (12)) and from the only
public implementation found, DeepHash-pytorch's ``PCDH.py``
(https://github.com/swuxyj/DeepHash-pytorch), whose settings are kept:
``eps = 2K`` for both pairwise terms, ``lambda_1 = lambda_2 = 1``, all terms
means over pairs / samples. Two things differ from that implementation:

- **The discrete layer is trained.** DeepHash-pytorch binarises with a hard
  threshold that passes no gradient, so its discrete hash layer keeps its
  random initialisation and the classification loss trains the classifier
  only; the retrieval codes are then a fixed random projection of ``h``.
  Here the sign has a straight-through gradient (hard-tanh: ``d sign(a)/da :=
  1[|a| <= 1]``, Hubara et al. 2016), so the classification loss trains the
  discrete layer and, through it, the hash-like layer. How the paper passes
  gradients through its discrete layer could not be checked;
  ``straight_through=False`` gives DeepHash-pytorch's behaviour.
- **Pairs are all of a batch's pairs.** The survey mentions a "Pairwise
  Hard" construction (the positive pair of largest feature distance,
  negatives below a threshold, drawn at random); its details (how many pairs,
  which threshold) are not in the survey and the paper could not be read, so
  it is not implemented, as in DeepHash-pytorch.

Changes for two modalities and three diagnoses
----------------------------------------------
- The pairs are the batch's sMRI-PET pairs: ``L_s`` on
  ``(h_i^mri, h_j^pet)`` and ``L_p`` on ``(z_i^mri, z_j^pet)``, with
  ``s_ij = 1`` when the two diagnoses agree (a subject's own two scans are a
  positive pair). ``L_p`` thus pulls the two branches' features of same-label
  subjects together: the cross-modal reading of "pairwise correlation".
- The discrete hash layer and the classifier are shared by both modalities
  (one Hamming space, one set of class regions); each modality keeps its own
  convolutional branch, feature layer ``z`` (fc7) and hash-like layer ``h``.
- ``L_c`` is the mean of the two modalities' cross-entropies over the three
  diagnoses (NC, MCI, AD).
- The retrieval code of a scan is its ``b``.

Scale note: ``z`` is fc7's 4096 x width ReLU output, so its squared distances
are in the hundreds and far beyond ``eps = 2K``: ``L_p`` is then the pull of
same-label pairs only and dominates the total. That is what the reference
implementation's settings give; the weight is exposed (``lambda_p``).

How well it works: the reference implementation's own header reports mAP
0.166 on CIFAR-10 at 48 bits; in a smoke run here (K = 16, 8 epochs) PCDH
stays near the random-codes floor (0.50 / 0.37 against 0.47 / 0.35), with
``lambda_p`` at 1, 0.01 or 0, and after the discrete layer was made to start
at the identity (``b = sign(h)``; a random start scrambles what the pairwise
terms give ``h``). Wang & Zeng's Table 2 reports it among the strongest
baselines (0.61 at 16 bits on ADNI2), so their implementation must differ in
ways the sources reachable here do not show.

References
----------
Chen Y., Lu X. (2020). Deep discrete hashing with pairwise correlation
learning. Neurocomputing 385, 111-121.
Luo X. et al. (2023). A Survey on Deep Hashing Methods. ACM TKDD 17(1), Eq. (12).
Liu H., Wang R., Shan S., Chen X. (2016). Deep Supervised Hashing for Fast
Image Retrieval. CVPR (the contrastive form, margin 2K).
Hubara I., Courbariaux M., Soudry D., El-Yaniv R., Bengio Y. (2016).
Binarized Neural Networks. NeurIPS (the straight-through estimator).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .losses.ahs import _as_labels, _check_pair
from .models import CrossModalHashNet

__all__ = ["straight_through_sign", "pcdh_pairwise_loss", "PCDHOutput", "PCDHNet", "PCDHObjective", "run"]


def straight_through_sign(a: torch.Tensor) -> torch.Tensor:
    """``sign(a)`` (with sign(0) = +1) forward, hard-tanh's gradient backward.

    The value is exactly +-1; the gradient is 1 where ``|a| <= 1`` and 0
    elsewhere (the derivative of ``clamp(a, -1, 1)``).

    Parameters
    ----------
    a : torch.Tensor, float

    Returns
    -------
    torch.Tensor, same shape, values in {-1, +1}

    References
    ----------
    Hubara et al. (2016), the straight-through estimator of the sign.
    """
    soft = torch.clamp(a, -1.0, 1.0)
    hard = torch.where(a >= 0, 1.0, -1.0).to(a.dtype)
    return soft + (hard - soft).detach()


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # by differences rather than ||a||^2 + ||b||^2 - 2ab: exact, >= 0, and a zero gradient at zero distance
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)


def pcdh_pairwise_loss(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over pairs of ``1/2 s d^2 + 1/2 (1 - s) max(eps - d^2, 0)^2``.

    Parameters
    ----------
    a, b : torch.Tensor, float, shapes (n_a, D) and (n_b, D)
        Hash-like codes or deep features of the two modalities.
    s : torch.Tensor, shape (n_a, n_b), values in {0, 1}
        1 where the labels agree.
    margin : float
        ``eps``, in squared-distance units.

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    Luo et al. (2023), Eq. (12), first and second terms (as means);
    DeepHash-pytorch ``PCDH.py``.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have shapes (n_a, D) and (n_b, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    if s.shape != (a.shape[0], b.shape[0]):
        raise ValueError(f"s must have shape {(a.shape[0], b.shape[0])}, got {tuple(s.shape)}")
    d2 = _squared_distances(a, b)
    s = s.to(d2.dtype)
    return (0.5 * s * d2 + 0.5 * (1 - s) * torch.relu(margin - d2).pow(2)).mean()


class PCDHOutput(NamedTuple):
    """What :class:`PCDHNet` returns for a batch of one modality."""

    features: torch.Tensor   # z, (n, feature_dim): fc7
    hash_like: torch.Tensor  # h, (n, K): tanh of the hash layer
    codes: torch.Tensor      # b, (n, K): the discrete layer's +-1 output
    logits: torch.Tensor     # (n, n_classes): the classifier on b


class PCDHNet(nn.Module):
    """The two branches plus PCDH's shared discrete hash layer and classifier.

    Parameters
    ----------
    network : CrossModalHashNet
        Its branches give ``z`` (``features``) and ``h = tanh(hash_layer(z))``.
    n_classes : int, default 3
    straight_through : bool, default True
        Pass a straight-through gradient through the discrete layer's sign
        (False: no gradient, as DeepHash-pytorch).

    Shapes
    ------
    ``forward(x, modality)`` -> :class:`PCDHOutput`; ``encode(x, modality)``
    -> ``b``, (n, K), exactly +-1.
    """

    def __init__(self, network: CrossModalHashNet, n_classes: int = 3, straight_through: bool = True) -> None:
        super().__init__()
        n_bits = network.n_bits
        self.network = network
        self.n_bits, self.n_classes, self.straight_through = n_bits, int(n_classes), bool(straight_through)
        self.discrete_layer = nn.Linear(n_bits, n_bits)
        # it starts as the identity, so that b = sign(h) keeps the pairwise structure the other terms give h;
        # a random start scrambles it (the retrieval codes stayed at the random-codes floor in a smoke run)
        with torch.no_grad():
            self.discrete_layer.weight.copy_(torch.eye(n_bits))
            self.discrete_layer.bias.zero_()
        self.classifier = nn.Linear(n_bits, self.n_classes, bias=False)

    def _branch(self, modality: str):
        if modality not in ("mri", "pet"):
            raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
        return self.network.mri_branch if modality == "mri" else self.network.pet_branch

    def forward(self, x: torch.Tensor, modality: str) -> PCDHOutput:
        branch = self._branch(modality)
        z = branch.features(x)
        h = torch.tanh(branch.hash_layer(z))
        a = self.discrete_layer(h)
        if self.straight_through:
            b = straight_through_sign(a)
        else:
            b = torch.where(a.detach() >= 0, 1.0, -1.0).to(a.dtype)
        return PCDHOutput(z, h, b, self.classifier(b))

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """The discrete codes ``b`` of one modality (what retrieval uses)."""
        return self.forward(x, modality).codes

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}, straight_through={self.straight_through}"


class PCDHObjective:
    """``L = L_s(h) + lambda_p L_p(z) + lambda_c L_c(b)`` on a paired batch ``(mri, pet, labels)``.

    Parameters
    ----------
    n_bits : int
    lambda_p : float, default 1.0
        Weight of the pairwise correlation term on the features
        (DeepHash-pytorch's ``alpha``).
    lambda_c : float, default 1.0
        Weight of the classification term (DeepHash-pytorch's ``beta``).
    margin : float, optional
        ``eps`` of both pairwise terms; default ``2 K`` (DSH's and
        DeepHash-pytorch's choice).

    Returns (``__call__(model, batch)``)
    -------
    ``(total, parts)``, parts ``pairwise_codes``, ``pairwise_features``,
    ``classification``.

    References
    ----------
    Luo et al. (2023), Eq. (12); DeepHash-pytorch ``PCDH.py`` (``PCDHLoss``).
    """

    def __init__(self, n_bits: int, lambda_p: float = 1.0, lambda_c: float = 1.0, margin: float | None = None):
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        margin = 2.0 * n_bits if margin is None else margin
        for name, value in (("lambda_p", lambda_p), ("lambda_c", lambda_c), ("margin", margin)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.n_bits, self.margin = int(n_bits), float(margin)
        self.lambda_p, self.lambda_c = float(lambda_p), float(lambda_c)

    def terms(self, out_x: PCDHOutput, out_y: PCDHOutput, labels_x, labels_y=None):
        """The three terms from both modalities' outputs (labels as for the losses)."""
        labels_y = labels_x if labels_y is None else labels_y
        h_x, h_y = out_x.hash_like.float(), out_y.hash_like.float()
        _check_pair(h_x, h_y)
        if h_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={h_x.shape[1]} bits (code length), "
                             f"the objective was built for {self.n_bits}")
        labels_x = _as_labels(labels_x, h_x.shape[0], "labels_x", h_x.device)
        labels_y = _as_labels(labels_y, h_y.shape[0], "labels_y", h_x.device)
        s = (labels_x[:, None] == labels_y[None, :]).to(h_x.dtype)
        codes = pcdh_pairwise_loss(h_x, h_y, s, self.margin)
        features = pcdh_pairwise_loss(out_x.features.float(), out_y.features.float(), s, self.margin)
        classification = (F.cross_entropy(out_x.logits.float(), labels_x)
                          + F.cross_entropy(out_y.logits.float(), labels_y)) / 2
        return codes, features, classification

    def __call__(self, model: PCDHNet, batch):
        mri, pet, labels = batch
        codes, features, classification = self.terms(model(mri, "mri"), model(pet, "pet"), labels)
        total = codes + self.lambda_p * features + self.lambda_c * classification
        return total, {"pairwise_codes": codes.detach(), "pairwise_features": features.detach(),
                       "classification": classification.detach()}


def run(context, n_bits: int, *, lambda_p: float = 1.0, lambda_c: float = 1.0, straight_through: bool = True):
    """The comparison's entry point: PCDH on the seed's pretrained branches.

    The branches are the shared single-modality pretraining's
    (:func:`neurohash_lite.runner.pretrained_branches`); the hash-like,
    discrete and classification layers start at random; the whole network
    is trained on :class:`PCDHObjective` for ``config.epochs`` epochs with the
    comparison's Adam (the reference implementation trains for 2000 epochs
    with RMSprop at 1e-5; the comparison's budget replaces that), the last
    epoch kept.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    lambda_p, lambda_c, straight_through
        As in :class:`PCDHObjective` and :class:`PCDHNet` (defaults: the
        reference implementation's weights, a straight-through gradient).

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    from .runner import MethodRun, pretrained_network, shared_hyperparameters, deep_codes, train_config
    from .train import fit

    data = context.data
    model = PCDHNet(pretrained_network(context, n_bits), straight_through=straight_through)
    objective = PCDHObjective(n_bits, lambda_p=lambda_p, lambda_c=lambda_c)
    result = fit(model, objective, data.train, train_config(context, context.config.epochs))
    hyper = {"objective": "PCDHObjective", "lambda_p": objective.lambda_p, "lambda_c": objective.lambda_c,
             "margin": objective.margin, "straight_through": model.straight_through,
             "discrete_layer_shared": True, "classifier_shared": True, "pairs": "all sMRI-PET pairs of a batch",
             **shared_hyperparameters(context)}
    return MethodRun(deep_codes(model, data, context.device), data.pretrain_seconds + result.seconds,
                     len(result.history.epoch), hyper)
