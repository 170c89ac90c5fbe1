"""FAH: feature and hash learning (Liu et al., 2021), made cross-modal.

Liu et al. hash remote-sensing images with two parts (names as their
abstract gives them; the acronym FAH is "feature and hash"): a **deep feature
learning model** (DFLM) — AlexNet whose conv5 also receives 1x1 projections of
conv3 and conv4 (multi-level fusion) and is re-weighted by a class-activation
attention map — and an **adversarial hash learning model** (AHLM): a sigmoid
hash layer trained with a contrastive loss, a classifier on the codes, a
bit-entropy quantization loss, and a discriminator that pushes the codes
towards balanced binary vectors. The objective, as the authors' released code
computes it (``main.py``, ``loss/contrast.py``, ``models/Net.py``), is, with
``c = sigmoid(W f)`` in (0, 1)^K the relaxed code,

``L_G = L_contrast + alpha CE(W_h c, y) + gamma CE(cam(x), y) + theta L_quant + BCE(D(c), 1)``,

``L_contrast = 1/2 mean over pairs of [r_ij d_ij + (1 - r_ij) max(m - d_ij, 0)]``, ``d_ij = ||c_i - c_j||^2``,
``L_quant = mean over entries of -(c log c + (1 - c) log(1 - c))`` (the bits' entropy),

and the discriminator ``D`` (an MLP K -> 4096 -> 4096 -> 4096 -> 1 with a
sigmoid) is trained with ``BCE(D(real), 1) + BCE(D(c), 0)``, ``real`` a
random binary vector with exactly K/2 ones. Defaults of the released code:
``m = 1``, ``alpha = gamma = 1``, ``theta = 0.05``, Adam at 1e-4, 200 epochs,
batch 128; the discriminator is trained in the first epoch only
(``if epoch < 2``); the generator's adversarial term has weight 1 and, as
the released code runs, is added at every step (it is guarded by
``step % 5 == 0`` but ``step`` is never incremented).

Sources and what could not be reached
-------------------------------------
The paper (IEEE TGRS 59, 3420-3443; Wang & Zeng's ref. 41, which prints
the year 2020 and a DOI of the journal Remote Sensing, 10.3390/rs12172789,
that does not match that volume and those pages) could not be opened here;
everything above is read from the authors' released code,
https://github.com/smallsmallflypigtang/Deep-Hash-learning-for-Remote-Sensing-Image-Retrieval
(its argument parser is titled "FAH Hashing"), so no equation number of the
paper is cited. The expansion of the acronym and the names DFLM/AHLM are
from the paper's abstract as remembered, not checked against its text.

Changes for two modalities, three diagnoses and the book's network
------------------------------------------------------------------
- **Pairs**: the contrastive loss runs over the batch's sMRI-PET pairs,
  ``r_ij = 1`` when the two diagnoses agree (a subject's own two scans are a
  positive pair); the released code takes all pairs of one batch of images.
  The factor 1/2 of the released code's normalisation is kept.
- **Classifiers**: one classifier on the codes shared by both modalities
  (codes of both modalities in one space with one set of class regions), one
  attention (CAM) classifier per branch; both over the three diagnoses; each
  cross-entropy is the mean over the two modalities.
- **Discriminator**: one, shared by both modalities' codes (both should look
  like balanced binary vectors); hidden width ``4096 x width``, scaled like
  the backbone's fully connected layers.
- **The feature model on the book's branch**: the seed's pretrained
  AlexNet-style branch (:mod:`neurohash_lite.models`) keeps its layers; FAH
  adds (a) 1x1 convolutions from the conv3 and conv4 outputs added to conv5's
  normalised pre-activation before its ReLU, initialised at zero so that the
  pretrained branch is unchanged at the start (the released code adds
  them to conv5's pre-activation from pre-activation inputs, with new conv3-5
  layers), and (b) the attention module of the released code (``CAM``: conv
  3x3, BN, conv 1x1 to one channel per class, BN, ReLU; a sigmoid map from a
  3x3 conv and BN re-weights the features as ``x * a + x``; a 1x1 conv and a
  global average give the CAM logits), in 2D or 3D. The refined conv5 map
  then goes through the branch's own pooling and fc6/fc7 (the released code
  max-pools to 6x6).
- **Codes**: ``c = sigmoid(z)``; the binary code is ``c >= 0.5``, i.e.
  ``sign(z)``; :meth:`FAHNet.encode` returns ``2c - 1 = tanh(z/2)`` so that
  the shared encoder's ``sign`` gives it.
- **Budget**: the first of ``config.epochs`` epochs trains the discriminator
  with the networks (the released code's first epoch), the others the
  networks only; both run through :func:`~neurohash_lite.train.fit`, each with
  a fresh Adam (so the optimiser's moments restart after the first epoch),
  at the comparison's learning rate and weight decay (not the released
  5e-4). The discriminator's and the networks' updates are simultaneous
  (one Adam step on ``L_G + L_D``, with ``D``'s weights held fixed inside
  ``L_G`` and the codes detached inside ``L_D``), which is what the released
  code's two consecutive steps compute, since its discriminator step uses the
  codes of the same forward pass.
- Entropy and BCE are computed stably: ``log`` of ``c + 1e-20`` as the
  released code, and BCE from logits.

References
----------
Liu C., Ma J., Tang X., Liu F., Zhang X., Jiao L. (2021). Deep Hash Learning
for Remote Sensing Image Retrieval. IEEE Transactions on Geoscience and
Remote Sensing 59, 3420-3443 (Wang & Zeng print "Liu, C. et al."; the
co-authors are as recalled, consistent with the code's owner, X. Tang).
Released code: https://github.com/smallsmallflypigtang/Deep-Hash-learning-for-Remote-Sensing-Image-Retrieval
(``main.py``: ``train``; ``loss/contrast.py``: ``Contrast_Loss``,
``Quantization_Loss``; ``models/Net.py``: ``AlexNet``, ``CAM``,
``Fusion_feature``, ``Uniform_D``; ``utils/generateUniformData.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .losses.ahs import _as_labels, _check_codes, _check_pair
from .models import ALEXNET_HIDDEN, AlexNetHashBranch, CrossModalHashNet

__all__ = ["fah_contrastive_loss", "fah_quantization_loss", "balanced_binary_codes", "FAHAttention",
           "FAHBranchHead", "FAHNet", "FAHOutput", "FAHDiscriminator", "FAHObjective", "run"]

#: ``log(c + EPS)`` in the bit entropy, as the released code.
ENTROPY_EPS = 1e-20


# --------------------------------------------------------------------------
# The terms of the objective
# --------------------------------------------------------------------------
def fah_contrastive_loss(c_x: torch.Tensor, c_y: torch.Tensor, r: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``1/2 mean over pairs of [r d + (1 - r) max(m - d, 0)]``, ``d = ||c_i - c_j||^2``.

    Parameters
    ----------
    c_x, c_y : torch.Tensor, float, shapes (n_x, K) and (n_y, K), values in [0, 1]
        Sigmoid codes of the two modalities.
    r : torch.Tensor, shape (n_x, n_y), values in {0, 1}
        1 where the diagnoses agree.
    margin : float, default 1.0
        In squared-distance units (for binary codes, bits).

    Returns
    -------
    torch.Tensor, scalar, >= 0

    References
    ----------
    Released code, ``loss/contrast.py`` (``Contrast_Loss``: the sum over the
    ``n^2`` ordered pairs of one batch divided by ``2 n (n - 1)``).
    """
    _check_pair(c_x, c_y)
    if r.shape != (c_x.shape[0], c_y.shape[0]):
        raise ValueError(f"r must have shape {(c_x.shape[0], c_y.shape[0])}, got {tuple(r.shape)}")
    d = (c_x[:, None, :] - c_y[None, :, :]).pow(2).sum(-1)
    r = r.to(d.dtype)
    return 0.5 * (r * d + (1 - r) * torch.relu(margin - d)).mean()


def fah_quantization_loss(c: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy of the code bits, ``-(c log c + (1 - c) log(1 - c))``, in nats.

    ``log`` is taken of ``c + 1e-20`` and ``1 - c + 1e-20`` (the released
    code), so codes of exactly 0 or 1 give 0 and a finite gradient (about
    +-46 nats per unit).

    Parameters
    ----------
    c : torch.Tensor, float, shape (n, K), values in [0, 1]

    Returns
    -------
    torch.Tensor, scalar, in [0, log 2]

    References
    ----------
    Released code, ``loss/contrast.py`` (``Quantization_Loss``).
    """
    _check_codes(c, "c")
    return -(c * torch.log(c + ENTROPY_EPS) + (1 - c) * torch.log(1 - c + ENTROPY_EPS)).mean()


def balanced_binary_codes(n: int, n_bits: int, *, generator: torch.Generator | None = None,
                          device=None, dtype=torch.float32) -> torch.Tensor:
    """``n`` random vectors in {0, 1}^K with exactly ``K // 2`` zeros each (the discriminator's "real" codes).

    Parameters
    ----------
    n, n_bits : int
    generator : torch.Generator, optional (a CPU generator)
    device, dtype : optional

    Returns
    -------
    torch.Tensor, shape (n, n_bits), values in {0, 1}, row sums ``K - K // 2``

    References
    ----------
    Released code, ``utils/generateUniformData.py``.
    """
    ranks = torch.rand(n, n_bits, generator=generator).argsort(dim=1).argsort(dim=1)
    return (ranks >= n_bits // 2).to(device=device, dtype=dtype)


# --------------------------------------------------------------------------
# The network: fusion and attention on the book's branch, sigmoid codes
# --------------------------------------------------------------------------
class FAHAttention(nn.Module):
    """The class-activation attention of the released code (``CAM``), 2D or 3D.

    ``a = relu(BN(conv1x1(BN(conv3x3(x)))))`` (one channel per class);
    ``map = sigmoid(BN(conv3x3(a)))`` (one channel); the refined features are
    ``x * map + x``; the CAM logits are the global average of ``conv1x1(a)``.

    Parameters
    ----------
    channels : int
    n_classes : int
    spatial_dims : {2, 3}

    Shapes
    ------
    ``forward(x)``: x (N, C, *spatial) -> (cam_logits (N, n_classes), refined x).
    """

    def __init__(self, channels: int, n_classes: int, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        self.base = conv(channels, channels, 3, padding=1)
        self.norm_base = norm(channels)
        self.to_classes = conv(channels, n_classes, 1)
        self.norm_classes = norm(n_classes)
        self.class_maps = conv(n_classes, n_classes, 1)
        self.to_map = conv(n_classes, 1, 3, padding=1)
        self.norm_map = norm(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.relu(self.norm_classes(self.to_classes(self.norm_base(self.base(x)))))
        attention = torch.sigmoid(self.norm_map(self.to_map(a)))
        cam_logits = self.class_maps(a).flatten(2).mean(-1)
        return cam_logits, x * attention + x


def _conv_positions(branch: AlexNetHashBranch) -> list[int]:
    convs = (nn.Conv2d, nn.Conv3d)
    positions = [i for i, layer in enumerate(branch.convolutions) if isinstance(layer, convs)]
    if len(positions) != 5:
        raise ValueError(f"expected the five convolutions of an AlexNetHashBranch, found {len(positions)}")
    return positions


class FAHBranchHead(nn.Module):
    """FAH's deep feature model on one pretrained branch: conv3/conv4 -> conv5 fusion and attention.

    Parameters
    ----------
    branch : AlexNetHashBranch
        Its layers are used as they are (and trained); this module adds the
        fusion's 1x1 convolutions (zero at the start) and the attention.
    n_classes : int, default 3

    Shapes
    ------
    ``forward(x)`` -> ``(cam_logits (N, n_classes), z (N, K))``, ``z`` the
    hash layer's pre-activation.
    """

    def __init__(self, branch: AlexNetHashBranch, n_classes: int = 3) -> None:
        super().__init__()
        self.branch = branch
        conv = nn.Conv2d if branch.spatial_dims == 2 else nn.Conv3d
        self.positions = _conv_positions(branch)
        layers = branch.convolutions
        c3, c4, c5 = (layers[i].out_channels for i in self.positions[2:])
        self.skip3 = conv(c3, c5, 1)
        self.skip4 = conv(c4, c5, 1)
        for skip in (self.skip3, self.skip4):
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)
        self.attention = FAHAttention(c5, n_classes, branch.spatial_dims)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        branch = self.branch
        branch._check_input(x)
        if self.training and x.shape[0] < 2:
            raise ValueError("x holds one scan, but a training batch needs at least two (batch normalisation)")
        layers = branch.convolutions
        _, _, p3, p4, p5 = self.positions
        conv3 = layers[:p3 + 3](x)             # conv3, BN, ReLU
        conv4 = layers[p3 + 3:p4 + 3](conv3)   # conv4, BN, ReLU
        pre5 = layers[p4 + 3:p5 + 2](conv4)    # conv5, BN (before its ReLU)
        conv5 = F.relu(pre5 + self.skip4(conv4) + self.skip3(conv3))
        cam_logits, refined = self.attention(conv5)
        f = branch.fully_connected(layers[p5 + 3:](refined))
        return cam_logits, branch.hash_layer(f)


class FAHOutput(NamedTuple):
    """What :class:`FAHNet` returns for a batch of one modality."""

    cam_logits: torch.Tensor   # (n, n_classes): the attention branch's classifier
    hash_logits: torch.Tensor  # (n, n_classes): the classifier on the codes
    codes: torch.Tensor        # c = sigmoid(z), (n, K), in (0, 1)
    z: torch.Tensor            # the hash layer's pre-activation, (n, K)


class FAHNet(nn.Module):
    """Both modalities' FAH feature models and the shared classifier on the codes.

    Parameters
    ----------
    network : CrossModalHashNet
        The (pretrained) two branches.
    n_classes : int, default 3

    Shapes
    ------
    ``forward(x, modality)`` -> :class:`FAHOutput`; ``encode(x, modality)``
    -> ``2 sigmoid(z) - 1``, (n, K), in (-1, 1).
    """

    def __init__(self, network: CrossModalHashNet, n_classes: int = 3) -> None:
        super().__init__()
        self.n_bits, self.n_classes = network.n_bits, int(n_classes)
        self.heads = nn.ModuleDict({"mri": FAHBranchHead(network.mri_branch, n_classes),
                                    "pet": FAHBranchHead(network.pet_branch, n_classes)})
        self.hash_classifier = nn.Linear(self.n_bits, self.n_classes)

    def forward(self, x: torch.Tensor, modality: str) -> FAHOutput:
        if modality not in ("mri", "pet"):
            raise ValueError(f"modality={modality!r} must be 'mri' or 'pet'")
        cam_logits, z = self.heads[modality](x)
        c = torch.sigmoid(z)
        return FAHOutput(cam_logits, self.hash_classifier(c), c, z)

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """``2c - 1 = tanh(z/2)``: its sign is the binary code ``c >= 0.5``."""
        return torch.tanh(self.forward(x, modality).z / 2)


class FAHDiscriminator(nn.Module):
    """The adversary: an MLP K -> H -> H -> H -> 1 (logit), H = 4096 in the released code.

    Parameters
    ----------
    n_bits : int
    hidden_dim : int, default 4096
    """

    def __init__(self, n_bits: int, hidden_dim: int = ALEXNET_HIDDEN) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_bits, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Logits (n,) that ``c`` is a balanced binary vector."""
        return self.layers(c).squeeze(-1)


# --------------------------------------------------------------------------
# The objective (with the discriminator as its parameters)
# --------------------------------------------------------------------------
class FAHObjective(nn.Module):
    """``L_G (+ L_D while the discriminator trains)`` on a paired batch ``(mri, pet, labels)``.

    Parameters
    ----------
    n_bits : int
    margin : float, default 1.0
    alpha : float, default 1.0
        Weight of the classifier on the codes.
    gamma : float, default 1.0
        Weight of the attention (CAM) classifier.
    theta : float, default 0.05
        Weight of the bit entropy.
    adversarial : float, default 1.0
        Weight of the generator's term ``BCE(D(c), 1)``.
    hidden_dim : int, default 4096
        The discriminator's width.
    train_discriminator : bool, default True
        Add ``L_D``; set False after the first epoch.
    seed : int, default 0
        Seeds the "real" balanced codes.

    Attributes
    ----------
    generator : torch.Generator
        The CPU stream of the "real" codes.
    discriminator : FAHDiscriminator
        Trained by :func:`~neurohash_lite.train.fit` with the network (the
        objective's parameters); it receives gradients from ``L_D`` only.

    References
    ----------
    Released code, ``main.py`` (``train``).
    """

    def __init__(self, n_bits: int, margin: float = 1.0, alpha: float = 1.0, gamma: float = 1.0,
                 theta: float = 0.05, adversarial: float = 1.0, hidden_dim: int = ALEXNET_HIDDEN,
                 train_discriminator: bool = True, seed: int = 0) -> None:
        super().__init__()
        if int(n_bits) != n_bits or n_bits < 1:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits!r}")
        for name, value in (("margin", margin), ("alpha", alpha), ("gamma", gamma), ("theta", theta),
                            ("adversarial", adversarial)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.n_bits, self.margin, self.alpha, self.gamma = int(n_bits), float(margin), float(alpha), float(gamma)
        self.theta, self.adversarial, self.hidden_dim = float(theta), float(adversarial), int(hidden_dim)
        self.train_discriminator = bool(train_discriminator)
        self.discriminator = FAHDiscriminator(self.n_bits, self.hidden_dim)
        self.generator = torch.Generator().manual_seed(int(seed))

    def _frozen_discriminator(self, c: torch.Tensor) -> torch.Tensor:
        weights = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, weights, (c,))

    def terms(self, out_x: FAHOutput, out_y: FAHOutput, labels_x, labels_y=None) -> dict:
        """Every term from both modalities' outputs (unweighted)."""
        labels_y = labels_x if labels_y is None else labels_y
        c_x, c_y = out_x.codes.float(), out_y.codes.float()
        _check_pair(c_x, c_y)
        if c_x.shape[1] != self.n_bits:
            raise ValueError(f"codes have K={c_x.shape[1]} bits (code length), "
                             f"the objective was built for {self.n_bits}")
        labels_x = _as_labels(labels_x, c_x.shape[0], "labels_x", c_x.device)
        labels_y = _as_labels(labels_y, c_y.shape[0], "labels_y", c_x.device)
        r = (labels_x[:, None] == labels_y[None, :]).to(c_x.dtype)
        codes = torch.cat([c_x, c_y])
        ones = torch.ones(len(codes), device=codes.device)
        terms = {
            "contrastive": fah_contrastive_loss(c_x, c_y, r, self.margin),
            "hash_classification": (F.cross_entropy(out_x.hash_logits.float(), labels_x)
                                    + F.cross_entropy(out_y.hash_logits.float(), labels_y)) / 2,
            "cam_classification": (F.cross_entropy(out_x.cam_logits.float(), labels_x)
                                   + F.cross_entropy(out_y.cam_logits.float(), labels_y)) / 2,
            "quantization": (fah_quantization_loss(c_x) + fah_quantization_loss(c_y)) / 2,
            "generator": F.binary_cross_entropy_with_logits(self._frozen_discriminator(codes), ones),
        }
        if self.train_discriminator:
            real = balanced_binary_codes(len(codes), self.n_bits, generator=self.generator, device=codes.device)
            terms["discriminator"] = (
                F.binary_cross_entropy_with_logits(self.discriminator(real), ones)
                + F.binary_cross_entropy_with_logits(self.discriminator(codes.detach()), torch.zeros_like(ones)))
        return terms

    def total(self, terms: dict) -> torch.Tensor:
        """``L_G + L_D`` from :meth:`terms`."""
        total = (terms["contrastive"] + self.alpha * terms["hash_classification"]
                 + self.gamma * terms["cam_classification"] + self.theta * terms["quantization"]
                 + self.adversarial * terms["generator"])
        return total + terms["discriminator"] if "discriminator" in terms else total

    def forward(self, model: FAHNet, batch):
        mri, pet, labels = batch
        terms = self.terms(model(mri, "mri"), model(pet, "pet"), labels)
        return self.total(terms), {name: value.detach() for name, value in terms.items()}

    def extra_repr(self) -> str:
        return (f"n_bits={self.n_bits}, margin={self.margin}, alpha={self.alpha}, gamma={self.gamma}, "
                f"theta={self.theta}, adversarial={self.adversarial}, train_discriminator={self.train_discriminator}")


def run(context, n_bits: int):
    """The comparison's entry point: FAH on the seed's pretrained branches.

    Epoch 1 trains the networks and the discriminator, epochs 2 to
    ``config.epochs`` the networks only (two calls of
    :func:`~neurohash_lite.train.fit`); the last epoch is kept.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    from .runner import MethodRun, pretrained_network, shared_hyperparameters, deep_codes, train_config
    from .train import fit

    data, epochs = context.data, context.config.epochs
    model = FAHNet(pretrained_network(context, n_bits))
    hidden = max(1, int(round(ALEXNET_HIDDEN * context.tier.width)))
    objective = FAHObjective(n_bits, hidden_dim=hidden, seed=data.seed)
    stages = [(1, True)] + ([(epochs - 1, False)] if epochs > 1 else [])
    seconds, epochs_run = data.pretrain_seconds, 0
    for stage_epochs, with_discriminator in stages:
        objective.train_discriminator = with_discriminator
        config = train_config(context, stage_epochs)
        if not with_discriminator:  # another batch order and dropout stream than the first stage's
            config = dataclasses.replace(config, seed=config.seed + 1)
        result = fit(model, objective, data.train, config)
        seconds += result.seconds
        epochs_run += len(result.history.epoch)
    hyper = {"objective": "FAHObjective", "margin": objective.margin, "alpha": objective.alpha,
             "gamma": objective.gamma, "theta": objective.theta, "adversarial": objective.adversarial,
             "discriminator_hidden": hidden, "discriminator_epochs": 1, "code": "sigmoid, binarised at 0.5",
             "fusion": "1x1 conv3, conv4 -> conv5, zero-initialised", "attention": "CAM (released code)",
             "hash_classifier_shared": True, **shared_hyperparameters(context)}
    return MethodRun(deep_codes(model, data, context.device), seconds, epochs_run, hyper)
