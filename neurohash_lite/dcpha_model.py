"""The DCPHA network (Method B) and its three training steps.

Wang & Zeng (2023), Fig. 1: an encoder turns a scan ``x`` into a feature
``f``; a semantics-preserving attention branch SPAB_E predicts the class
``y`` from ``f``; a light decoder maps ``f`` to the relaxed code
``h = tanh(.)`` in (-1, 1)^K; a second branch SPAB_D predicts the class
``r`` from ``h``. The authors release evaluation code only, with one encoder
shared by both modalities and single-layer branches; the paper describes
one encoder per modality (a pseudo-Siamese network) for more than two
modalities and an attention gate in each branch. Both are options here:

=======================  ====================================  =======================================
piece                    default                               option
=======================  ====================================  =======================================
encoder                  one AlexNet-style CNN for all         ``shared_encoder=False``: one per
                         modalities (the released model)       modality (pseudo-Siamese)
SPAB_E, SPAB_D           ``y = W (sigmoid(G f) * f) + b``      ``attention=False``: ``y = W f + b``
                         (feature-wise gate, then linear)      (the released single linear layer)
decoder                  Linear, ReLU, Linear, tanh            ``decoder_hidden`` sets its width
=======================  ====================================  =======================================

The encoder is :class:`~neurohash_lite.models.AlexNetHashBranch` of Method A
used through its :meth:`~neurohash_lite.models.AlexNetHashBranch.features`
(fc7); its own hash layer is not used, the decoder makes the codes.

Training (the paper's Algorithms 1-3) runs on the shared path,
:func:`neurohash_lite.train.fit`, three times: :func:`train_dcpha` (1)
pretrains the encoder with SPAB_E, (2) pretrains the decoder with SPAB_D on
the frozen encoder, (3) fine-tunes everything with
``J = alpha J1 + beta J2 + lambda_r R``. The paper does not write the two
pre-training losses; here they are the cross-entropy of the step's class
prediction (``y`` from the feature, then ``r`` from the code), because J1's
unsquared norms train a classifier poorly from a random start.

References
----------
Wang X., Zeng X. (2023). Deep consistency-preserving hash auto-encoders for
neuroimage cross-modal retrieval. Scientific Reports 13. Fig. 1,
Algorithms 1-3, Eqs. (7)-(10).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .losses.dcpha import ALPHA, BETA, LAMBDA_R, VARIANTS, dcpha_loss, dcpha_regularizer
from .models import AlexNetHashBranch
from .train import MODALITIES, FitResult, TrainConfig, fit

__all__ = [
    "SemanticsPreservingAttentionBranch",
    "HashDecoder",
    "DCPHAOutput",
    "DCPHANet",
    "DCPHAHead",
    "feature_dataset",
    "EncoderPretrainObjective",
    "DecoderPretrainObjective",
    "DCPHAObjective",
    "DCPHATraining",
    "train_dcpha",
    "PAPER_WEIGHTS",
    "run",
]


# --------------------------------------------------------------------------
# The pieces
# --------------------------------------------------------------------------
class SemanticsPreservingAttentionBranch(nn.Module):
    """SPAB: a feature-wise attention gate followed by a linear classifier.

    ``logits = W (sigmoid(G v + c) * v) + b``: each entry of the input ``v``
    (a feature ``f`` for SPAB_E, a code ``h`` for SPAB_D) is scaled by a gate
    in (0, 1) computed from the whole input, then classified. With
    ``attention=False`` it is the single linear layer ``W v + b`` of the
    authors' release. The class probabilities are ``softmax(logits)``
    (taken inside :func:`~neurohash_lite.losses.dcpha_j1`).

    Parameters
    ----------
    in_features : int
        Size of ``v``.
    n_classes : int
        Number of diagnoses C (3: NC, MCI, AD).
    attention : bool, default True
        Gate the input (the paper) or not (the release).

    Shapes
    ------
    ``forward(v)``: ``v`` float (N, in_features) -> logits (N, n_classes).

    References
    ----------
    Wang & Zeng (2023), Fig. 1 and the text before Eq. (7) ("semantics-
    preserving attention branch", a linear multi-layer perceptron).
    """

    def __init__(self, in_features: int, n_classes: int, attention: bool = True) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("n_classes", n_classes)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.attention = bool(attention)
        self.gate = nn.Linear(self.in_features, self.in_features) if self.attention else None
        self.classifier = nn.Linear(self.in_features, self.n_classes)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if v.ndim != 2 or v.shape[1] != self.in_features:
            raise ValueError(f"the branch expects (N, {self.in_features}) inputs, got {tuple(v.shape)}")
        if self.gate is not None:
            v = torch.sigmoid(self.gate(v)) * v
        return self.classifier(v)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_classes={self.n_classes}, attention={self.attention}"


class HashDecoder(nn.Module):
    """The light decoder: a two-layer perceptron ending in tanh.

    ``h = tanh(W_2 relu(W_1 f + b_1) + b_2)``.

    Parameters
    ----------
    in_features : int
        Size of the feature ``f`` (the encoder's ``feature_dim``).
    n_bits : int
        Code length K.
    hidden_dim : int, default 512
        Width of the hidden layer.

    Shapes
    ------
    ``forward(f)``: (N, in_features) -> (N, n_bits), values in (-1, 1).

    References
    ----------
    Wang & Zeng (2023), Fig. 1 ("a light-weight fully-connected network").
    """

    def __init__(self, in_features: int, n_bits: int, hidden_dim: int = 512) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("n_bits", n_bits), ("hidden_dim", hidden_dim)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.n_bits = int(n_bits)
        self.layers = nn.Sequential(
            nn.Linear(int(in_features), int(hidden_dim)),
            nn.ReLU(inplace=True),
            nn.Linear(int(hidden_dim), self.n_bits),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layers(f))


class DCPHAOutput(NamedTuple):
    """Everything the network computes for a batch of one modality.

    Attributes
    ----------
    features : (N, D) the encoder's feature f
    y_logits : (N, C) SPAB_E's logits
    codes : (N, K) the relaxed code h in (-1, 1)
    r_logits : (N, C) SPAB_D's logits
    """

    features: torch.Tensor
    y_logits: torch.Tensor
    codes: torch.Tensor
    r_logits: torch.Tensor


# --------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------
class DCPHANet(nn.Module):
    """Encoder, SPAB_E, decoder and SPAB_D: the whole DCPHA network.

    Parameters
    ----------
    n_bits : int
        Code length K.
    n_classes : int, default 3
        Number of diagnoses C.
    in_channels : int or sequence of int, default 3
        Input channels (stacked slices in 2D, 1 for a volume); one per
        modality only with ``shared_encoder=False``.
    spatial_dims : {2, 3}, default 2
    width : float, default 1.0
        Width multiplier of the AlexNet-style encoder.
    dropout : float, default 0.5
        Dropout of the encoder's fc6 and fc7.
    shared_encoder : bool, default True
        One encoder for every modality (the authors' release) or one per
        modality (the paper's pseudo-Siamese encoder).
    attention : bool, default True
        Attention gates in SPAB_E and SPAB_D (the paper) or single linear
        layers (the release).
    decoder_hidden : int, default 512
        Width of the decoder's hidden layer.
    modalities : sequence of str, default ("mri", "pet")
        Names accepted by :meth:`encode` and :meth:`forward`.
    pooled_size, hidden_dim : int, optional
        Passed to :class:`~neurohash_lite.models.AlexNetHashBranch`.

    Attributes
    ----------
    encoder : AlexNetHashBranch or None
        The shared encoder (``None`` when there is one per modality).
    encoders : nn.ModuleDict or None
        One encoder per modality (``None`` when shared).
    spab_e, spab_d : SemanticsPreservingAttentionBranch
    decoder : HashDecoder
    feature_dim : int
        D, the size of ``f``.

    Shapes
    ------
    ``encode(x, modality)``: float (N, C_in, H, W) (2D) or (N, C_in, D, H, W)
    (3D) -> (N, n_bits) in (-1, 1). ``forward(x, modality)`` ->
    :class:`DCPHAOutput`.

    References
    ----------
    Wang & Zeng (2023), Fig. 1; the encoder of Tao & An (2021), Section 3.2.

    Examples
    --------
    >>> model = DCPHANet(n_bits=16, width=0.25)
    >>> model.encode(torch.zeros(2, 3, 32, 32), "mri").shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        n_bits: int,
        n_classes: int = 3,
        in_channels: int | Sequence[int] = 3,
        spatial_dims: int = 2,
        width: float = 1.0,
        dropout: float = 0.5,
        shared_encoder: bool = True,
        attention: bool = True,
        decoder_hidden: int = 512,
        modalities: Sequence[str] = MODALITIES,
        pooled_size: int | None = None,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        modalities = tuple(modalities)
        if len(modalities) == 0 or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names, got {modalities!r}")
        if isinstance(in_channels, Sequence):
            if shared_encoder:
                raise ValueError("a shared encoder takes one in_channels for every modality; "
                                 f"got {tuple(in_channels)!r} (use shared_encoder=False)")
            if len(in_channels) != len(modalities):
                raise ValueError(f"in_channels needs one entry per modality {modalities}, got {tuple(in_channels)!r}")
            channels = dict(zip(modalities, in_channels))
        else:
            channels = {m: in_channels for m in modalities}
        options = dict(n_bits=n_bits, spatial_dims=spatial_dims, width=width, dropout=dropout,
                       pooled_size=pooled_size, hidden_dim=hidden_dim)
        self.modalities = modalities
        self.n_bits = int(n_bits)
        self.n_classes = int(n_classes)
        self.shared_encoder = bool(shared_encoder)
        if self.shared_encoder:
            self.encoder = AlexNetHashBranch(channels[modalities[0]], **options)
            self.encoders = None
            self.feature_dim = self.encoder.feature_dim
        else:
            self.encoder = None
            self.encoders = nn.ModuleDict({m: AlexNetHashBranch(channels[m], **options) for m in modalities})
            self.feature_dim = self.encoders[modalities[0]].feature_dim
        self.spab_e = SemanticsPreservingAttentionBranch(self.feature_dim, n_classes, attention)
        self.decoder = HashDecoder(self.feature_dim, n_bits, decoder_hidden)
        self.spab_d = SemanticsPreservingAttentionBranch(self.n_bits, n_classes, attention)

    def encoder_for(self, modality: str) -> AlexNetHashBranch:
        """The encoder that reads scans of ``modality``."""
        if modality not in self.modalities:
            raise ValueError(f"modality={modality!r} must be one of {self.modalities}")
        return self.encoder if self.shared_encoder else self.encoders[modality]

    def encoders_list(self) -> list[AlexNetHashBranch]:
        """Every distinct encoder (one when shared)."""
        return [self.encoder] if self.shared_encoder else list(self.encoders.values())

    def features(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """The encoder's feature ``f``, (N, D)."""
        return self.encoder_for(modality).features(x)

    def encode(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """The relaxed code ``h = Decoder(f)``, (N, K) in (-1, 1)."""
        return self.decoder(self.features(x, modality))

    def forward(self, x: torch.Tensor, modality: str) -> DCPHAOutput:
        f = self.features(x, modality)
        h = self.decoder(f)
        return DCPHAOutput(f, self.spab_e(f), h, self.spab_d(h))

    def features_pair(self, mri: torch.Tensor, pet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of a paired batch, ``(f_mri, f_pet)``.

        A shared encoder reads both modalities as *one* batch when their
        shapes agree, so that in training its batch normalisation uses
        statistics pooled over both modalities, as its running statistics
        (used in evaluation) are; one batch per modality otherwise.
        """
        if self.shared_encoder and mri.shape[1:] == pet.shape[1:]:
            f = self.encoder.features(torch.cat([mri, pet]))
            return f[: len(mri)], f[len(mri):]
        return self.features(mri, "mri"), self.features(pet, "pet")

    def forward_pair(self, mri: torch.Tensor, pet: torch.Tensor) -> tuple[DCPHAOutput, DCPHAOutput]:
        """:meth:`forward` of both modalities of a paired batch, through :meth:`features_pair`."""
        return tuple(self._heads(f) for f in self.features_pair(mri, pet))

    def _heads(self, f: torch.Tensor) -> DCPHAOutput:
        h = self.decoder(f)
        return DCPHAOutput(f, self.spab_e(f), h, self.spab_d(h))

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Step 1's parameters: the encoder(s) and SPAB_E."""
        params = [p for encoder in self.encoders_list() for p in encoder.parameters()]
        return params + list(self.spab_e.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Step 2's parameters: the decoder and SPAB_D."""
        return list(self.decoder.parameters()) + list(self.spab_d.parameters())

    def extra_repr(self) -> str:
        return (f"n_bits={self.n_bits}, n_classes={self.n_classes}, modalities={self.modalities}, "
                f"shared_encoder={self.shared_encoder}, feature_dim={self.feature_dim}")


class DCPHAHead(nn.Module):
    """SPAB_E, decoder and SPAB_D of a network, run on precomputed features.

    With the encoder frozen, everything above it only ever sees the features
    ``f``; computing them once and training this head on them is the same
    training, minus the encoder's cost. It has :meth:`encode` and
    :meth:`forward` like :class:`DCPHANet`, so the same objectives,
    :func:`~neurohash_lite.train.fit` and
    :func:`~neurohash_lite.train.evaluate` work on it with a dataset of
    features (:func:`feature_dataset`).

    Parameters
    ----------
    network : DCPHANet
        Its SPAB_E, decoder and SPAB_D are copied (training the head leaves
        the network as it was).

    Shapes
    ------
    ``encode(f, modality)``: (N, D) -> (N, K) in (-1, 1).
    ``forward(f, modality)`` -> :class:`DCPHAOutput` with ``features = f``.
    """

    def __init__(self, network: DCPHANet) -> None:
        super().__init__()
        if not isinstance(network, DCPHANet):
            raise ValueError(f"network must be a DCPHANet, got {type(network).__name__}")
        self.modalities = network.modalities
        self.n_bits = network.n_bits
        self.n_classes = network.n_classes
        self.feature_dim = network.feature_dim
        self.spab_e = copy.deepcopy(network.spab_e)
        self.decoder = copy.deepcopy(network.decoder)
        self.spab_d = copy.deepcopy(network.spab_d)

    def _check(self, f: torch.Tensor, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(f"modality={modality!r} must be one of {self.modalities}")
        if f.ndim != 2 or f.shape[1] != self.feature_dim:
            raise ValueError(f"the head expects features of shape (N, {self.feature_dim}), got {tuple(f.shape)}")

    def features(self, f: torch.Tensor, modality: str) -> torch.Tensor:
        """The features themselves (they are the input)."""
        self._check(f, modality)
        return f

    def encoders_list(self) -> list:
        """No encoder: the features are precomputed."""
        return []

    def features_pair(self, f_mri: torch.Tensor, f_pet: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features(f_mri, "mri"), self.features(f_pet, "pet")

    def forward_pair(self, f_mri: torch.Tensor, f_pet: torch.Tensor) -> tuple[DCPHAOutput, DCPHAOutput]:
        return self(f_mri, "mri"), self(f_pet, "pet")

    def encode(self, f: torch.Tensor, modality: str) -> torch.Tensor:
        self._check(f, modality)
        return self.decoder(f)

    def forward(self, f: torch.Tensor, modality: str) -> DCPHAOutput:
        self._check(f, modality)
        h = self.decoder(f)
        return DCPHAOutput(f, self.spab_e(f), h, self.spab_d(h))

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The decoder and SPAB_D (as :meth:`DCPHANet.decoder_parameters`)."""
        return list(self.decoder.parameters()) + list(self.spab_d.parameters())


@torch.no_grad()
def feature_dataset(network: DCPHANet, dataset, *, batch_size: int = 64, device=None) -> TensorDataset:
    """The encoder's features of a paired dataset, for :class:`DCPHAHead`.

    Parameters
    ----------
    network : DCPHANet
        Run in eval mode (batch-norm running statistics, no dropout).
    dataset : Dataset
        Paired, yielding ``(mri, pet, label)``.
    batch_size : int, default 64
    device : torch.device or str, optional
        Default: where the network's parameters are.

    Returns
    -------
    TensorDataset
        ``(f_mri, f_pet, label)`` on the CPU: float32 (n, D), (n, D) and
        int64 (n,).
    """
    if device is None:
        device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    f_mri, f_pet, labels = [], [], []
    for mri, pet, label in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        f_mri.append(network.features(mri.to(device), "mri").float().cpu())
        f_pet.append(network.features(pet.to(device), "pet").float().cpu())
        labels.append(torch.as_tensor(label).long())
    network.train(was_training)
    return TensorDataset(torch.cat(f_mri), torch.cat(f_pet), torch.cat(labels))


# --------------------------------------------------------------------------
# The three objectives (for neurohash_lite.train.fit)
# --------------------------------------------------------------------------
def _paired(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if len(batch) != 3:
        raise ValueError(f"DCPHA trains on paired batches (mri, pet, label); got {len(batch)} parts")
    return batch


def _check_labels_fit(labels: torch.Tensor, n_classes: int) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values up to {int(labels.max())}")


@dataclass
class EncoderPretrainObjective:
    """Step 1 (Algorithm 1): the encoder and SPAB_E learn to classify.

    ``loss`` = cross-entropy of SPAB_E's prediction ``y`` against the label,
    averaged over samples and both modalities. The decoder is not run.

    The paper names this step's loss without writing it. Cross-entropy is
    used rather than J1's unsquared ``||y - l||_2``: from a random start that
    norm's gradient is weak and on the ``book`` cohort the encoder settles
    on predicting the most frequent class (balanced accuracy 1/3 after six
    epochs, where cross-entropy reaches well above chance on PET in three).
    """

    def __call__(self, model, batch) -> tuple[torch.Tensor, dict]:
        mri, pet, labels = _paired(batch)
        _check_labels_fit(labels, model.n_classes)
        y_logits = torch.cat([model.spab_e(f) for f in model.features_pair(mri, pet)])
        loss = F.cross_entropy(y_logits.float(), labels.repeat(2).long())
        return loss, {"cross_entropy": loss.detach()}


@dataclass
class DecoderPretrainObjective:
    """Step 2 (Algorithm 2): the decoder and SPAB_D on the frozen encoder.

    ``loss`` = cross-entropy of SPAB_D's prediction ``r`` (from the code
    ``h``) against the label, plus ``lambda_r R``. The features come from
    the frozen encoder, computed without gradients. Train it with
    ``trainable=model.decoder_parameters()``: :func:`~neurohash_lite.train.fit`
    then keeps the encoder, which trains nothing, in eval mode (its batch-norm
    statistics and dropout stay put). As for step 1, the paper does not
    write this loss.

    Parameters
    ----------
    lambda_r : float, default 0.1
    regularizer : {"corrected", "paper"}
    """

    lambda_r: float = LAMBDA_R
    regularizer: str = "corrected"

    def __call__(self, model, batch) -> tuple[torch.Tensor, dict]:
        mri, pet, labels = _paired(batch)
        _check_labels_fit(labels, model.n_classes)
        with torch.no_grad():
            f = list(model.features_pair(mri, pet))
        h = [model.decoder(f_m) for f_m in f]
        r_logits = torch.cat([model.spab_d(h_m) for h_m in h]).float()
        cross_entropy = F.cross_entropy(r_logits, labels.repeat(2).long())
        reg = dcpha_regularizer(torch.cat(h).float(), variant=self.regularizer)
        return cross_entropy + self.lambda_r * reg, {"cross_entropy": cross_entropy.detach(),
                                                     "regularizer": reg.detach()}


@dataclass
class DCPHAObjective:
    """Step 3 (Algorithm 3): fine-tune everything with ``J = alpha J1 + beta J2 + lambda_r R``.

    The ablations are weights of zero: DCHA ``beta=0``, DPHA ``alpha=0``.

    Parameters
    ----------
    alpha, beta : float
        Default 0.3 and 1 (the paper's ADNI2 choice).
    lambda_r : float, default 0.1
    tau : float, default 1.0
    gamma : float, default 1.0
    similarity : {"corrected", "paper"}
        Which S_H (Eq. 3).
    regularizer : {"corrected", "paper"}
        Which regulariser (Eq. 10).

    See :func:`neurohash_lite.losses.dcpha_loss`.
    """

    alpha: float = ALPHA
    beta: float = BETA
    lambda_r: float = LAMBDA_R
    tau: float = 1.0
    gamma: float = 1.0
    similarity: str = "corrected"
    regularizer: str = "corrected"

    def __post_init__(self) -> None:
        for name in ("similarity", "regularizer"):
            if getattr(self, name) not in VARIANTS:
                raise ValueError(f"{name}={getattr(self, name)!r} must be one of {VARIANTS}")

    def __call__(self, model: DCPHANet, batch) -> tuple[torch.Tensor, dict]:
        mri, pet, labels = _paired(batch)
        _check_labels_fit(labels, model.n_classes)
        out_m, out_p = model.forward_pair(mri, pet)
        return dcpha_loss(
            [out_m.y_logits, out_p.y_logits], [out_m.r_logits, out_p.r_logits], [out_m.codes, out_p.codes], labels,
            alpha=self.alpha, beta=self.beta, lambda_r=self.lambda_r, tau=self.tau, gamma=self.gamma,
            similarity=self.similarity, regularizer=self.regularizer,
        )


# --------------------------------------------------------------------------
# Three calls of fit
# --------------------------------------------------------------------------
@dataclass
class DCPHATraining:
    """What :func:`train_dcpha` returns.

    Attributes
    ----------
    model : DCPHANet or DCPHAHead
        The trained network (best validation epoch of the last step run).
    steps : dict of str to FitResult
        ``"pretrain_encoder"``, ``"pretrain_decoder"``, ``"finetune"``, for
        the steps that ran, in that order.
    """

    model: nn.Module
    steps: dict[str, FitResult] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of all steps together."""
        return sum(result.seconds for result in self.steps.values())


def train_dcpha(
    model: DCPHANet,
    train_set,
    objective: DCPHAObjective | None = None,
    *,
    pretrain_encoder: TrainConfig | None = None,
    pretrain_decoder: TrainConfig | None = None,
    finetune: TrainConfig | None = None,
    decoder_objective: DecoderPretrainObjective | None = None,
    val_query=None,
    val_database=None,
) -> DCPHATraining:
    """Train DCPHA in its three steps, each one call of :func:`~neurohash_lite.train.fit`.

    1. ``pretrain_encoder``: encoder and SPAB_E on cross-entropy
       (:class:`EncoderPretrainObjective`); no validation (the decoder is
       still random, so retrieval mAP would say nothing), the last epoch
       kept.
    2. ``pretrain_decoder``: decoder and SPAB_D on the frozen encoder
       (:class:`DecoderPretrainObjective`), which ``fit`` keeps in eval mode.
    3. ``finetune``: every parameter on ``objective`` (J).

    :func:`~neurohash_lite.train.fit` recomputes the batch-norm statistics
    of what each step trains for the weights it keeps
    (:func:`~neurohash_lite.train.recalibrate_batch_norm`), so the frozen
    encoder of step 2 runs with statistics of its final step-1 weights.

    Steps 2 and 3 keep their best validation epoch when ``val_query`` and
    ``val_database`` are given. A step whose config is ``None`` is skipped.

    Parameters
    ----------
    model : DCPHANet or DCPHAHead
        A head (on a :func:`feature_dataset`) runs steps 2 and 3 only.
    train_set : Dataset
        Paired, yielding ``(mri, pet, label)`` (features for a head).
    objective : DCPHAObjective or callable, optional
        Step 3's loss; default ``DCPHAObjective()`` (corrected forms, the
        paper's weights). Any ``objective(model, batch) -> (loss, parts)``
        works.
    pretrain_encoder, pretrain_decoder, finetune : TrainConfig or None
        How each step trains; ``None`` skips it.
    decoder_objective : DecoderPretrainObjective, optional
        Step 2's loss; default uses ``objective``'s ``lambda_r`` and
        regulariser.
    val_query, val_database : Dataset, optional
        Paired validation sets for steps 2 and 3.

    Returns
    -------
    DCPHATraining

    References
    ----------
    Wang & Zeng (2023), Algorithms 1-3.
    """
    if not isinstance(model, (DCPHANet, DCPHAHead)):
        raise ValueError(f"model must be a DCPHANet or a DCPHAHead, got {type(model).__name__}")
    if isinstance(model, DCPHAHead) and pretrain_encoder is not None:
        raise ValueError("a DCPHAHead has no encoder to pretrain: pass pretrain_encoder=None")
    if pretrain_encoder is None and pretrain_decoder is None and finetune is None:
        raise ValueError("every step is None: give at least one of pretrain_encoder, pretrain_decoder, finetune")
    objective = objective or DCPHAObjective()
    if decoder_objective is None:
        decoder_objective = DecoderPretrainObjective(getattr(objective, "lambda_r", LAMBDA_R),
                                                     getattr(objective, "regularizer", "corrected"))
    result = DCPHATraining(model)
    if pretrain_encoder is not None:
        result.steps["pretrain_encoder"] = fit(model, EncoderPretrainObjective(), train_set, pretrain_encoder,
                                               trainable=model.encoder_parameters())
    if pretrain_decoder is not None:
        result.steps["pretrain_decoder"] = fit(model, decoder_objective, train_set, pretrain_decoder,
                                               val_query=val_query, val_database=val_database,
                                               trainable=model.decoder_parameters())
    if finetune is not None:
        result.steps["finetune"] = fit(model, objective, train_set, finetune,
                                       val_query=val_query, val_database=val_database)
    model.eval()
    return result


#: Wang & Zeng's weights (alpha, beta) of J1 and J2 per data set ("Hyper-parameter
#: sensitivity analysis"): ADNI2 0.3 and 1, OASIS-3 0.1 and 1. Other cohorts take ADNI2's.
PAPER_WEIGHTS = {"adni2": (ALPHA, BETA), "oasis3": (0.1, 1.0)}

#: The ablations as weights of zero (the paper's Table 4).
VARIANTS_OF_J = {"dcpha": (True, True), "dcha": (True, False), "dpha": (False, True)}


def run(context, n_bits: int, *, variant: str = "dcpha"):
    """The comparison's entry point (:mod:`neurohash_lite.experiments`): DCPHA's
    three steps on the seed's training set.

    Steps 1 and 2 run ``config.pretrain_epochs`` epochs each (the budget the
    pairwise methods spend on their encoders' pretraining), step 3
    ``config.epochs``; each keeps its last epoch (see
    :func:`neurohash_lite.runner.train_config`).

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    variant : {"dcpha", "dcha", "dpha"}
        The full objective, J1 only (DCHA) or J2 only (DPHA), with the
        paper's weights for the cohort (:data:`PAPER_WEIGHTS`).

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    from .runner import MethodRun, deep_codes, train_config
    from .runtime import seed_everything

    if variant not in VARIANTS_OF_J:
        raise ValueError(f"variant={variant!r} must be one of {tuple(VARIANTS_OF_J)}")
    data, config, tier = context.data, context.config, context.tier
    alpha, beta = PAPER_WEIGHTS.get(tier.preset, PAPER_WEIGHTS["adni2"])
    uses_j1, uses_j2 = VARIANTS_OF_J[variant]
    objective = DCPHAObjective(alpha=alpha if uses_j1 else 0.0, beta=beta if uses_j2 else 0.0)
    seed_everything(data.seed)
    model = DCPHANet(n_bits, in_channels=context.in_channels, spatial_dims=tier.spatial_dims, width=tier.width)
    pretrain = config.pretrain_epochs
    step = (lambda n: train_config(context, n)) if pretrain else (lambda n: None)
    training = train_dcpha(model, data.train, objective, pretrain_encoder=step(pretrain),
                           pretrain_decoder=step(pretrain), finetune=train_config(context, config.epochs))
    hyper = {"objective": "DCPHAObjective", **asdict(objective), "weights_of": tier.preset if tier.preset in PAPER_WEIGHTS else "adni2", "epochs": config.epochs,
             "pretrain_epochs": pretrain, "lr": config.lr, "batch_size": tier.batch_size, "width": tier.width,
             "selection": "last epoch", "shared_encoder": model.shared_encoder,
             "weight_decay": TrainConfig.weight_decay}
    epochs_run = sum(len(r.history.epoch) for r in training.steps.values())
    return MethodRun(deep_codes(model, data, context.device), training.seconds, epochs_run, hyper)
