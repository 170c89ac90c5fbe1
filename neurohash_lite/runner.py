"""One run of one method: what every method of the comparison shares.

:mod:`neurohash_lite.experiments` trains every method at every code length K
and seed on one split and one budget. Each method is one entry point with
one signature,

    run(context, n_bits) -> MethodRun

that trains (or fits, or draws) the method on ``context.data`` and returns
the ±1 codes of the query and database scans in both modalities. The pieces
here are what those entry points share:

- :class:`SeedData`: the split of one seed (train, query, database) and
  the single-modality pretraining sets;
- :class:`RunContext`: the comparison's configuration, tier, device and the
  seed's data;
- :class:`MethodRun`: what a run returns;
- :func:`pretrained_branches`: single-modality cross-entropy pretraining of
  the two encoders, once per seed, shared by every pairwise method;
- :func:`run_loss`: the generic entry point of a method that is only a loss
  on the two-branch network (``functools.partial(run_loss, loss=DPSHLoss)``);
- :func:`run_hashnet` (HashNet's continuation stages) and
  :func:`random_codes` (the floor).

Methods with their own optimisation keep their entry point in their own
module (:func:`neurohash_lite.shallow.cvh.run`, :func:`neurohash_lite.dcpha_model.run`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageDataset, PairedDataset, assert_disjoint_subjects, make_splits
from .data import pretraining_indices
from .losses import ContinuationHashNet, HashNetLoss, hashnet_stages
from .models import CrossModalHashNet
from .runtime import seed_everything
from .train import CrossModalObjective, TrainConfig, encode, fit

__all__ = ["SeedData", "seed_data", "RunContext", "MethodRun", "NotApplicable", "train_config", "pretrained_branches",
           "pretrained_network", "shared_hyperparameters", "public_settings", "deep_codes", "dataset_arrays",
           "run_loss", "run_hashnet", "random_codes"]

#: K of the network whose branches are pretrained (its hash layer is dropped afterwards).
PRETRAIN_TEMPLATE_BITS = 16


# --------------------------------------------------------------------------
# The data of one seed
# --------------------------------------------------------------------------
@dataclass
class SeedData:
    """The split of one seed and everything the methods share on it.

    ``query_subjects`` and ``database_subjects`` are the participant ids of
    the query and database rows; ``query_severity`` and
    ``database_severity`` their latent disease severities (NaN on real
    data), for graded relevance.
    """

    seed: int
    protocol: str
    train: PairedDataset
    query: PairedDataset
    database: PairedDataset
    mri_pretrain: ImageDataset
    pet_pretrain: ImageDataset
    sizes: dict
    query_subjects: np.ndarray
    database_subjects: np.ndarray
    query_severity: np.ndarray
    database_severity: np.ndarray
    cohort_root: object = None
    pretrained: dict | None = None
    pretrain_seconds: float = 0.0


def seed_data(cohort, seed: int, protocol: str = "ahs") -> SeedData:
    """Split ``cohort`` by subject for ``seed`` under ``protocol`` (DESIGN §3.3)."""
    splits = make_splits(cohort.paired_labels, protocol=protocol, seed=seed)
    assert_disjoint_subjects(splits, cohort.paired_subject_ids)
    severity = cohort.severity[cohort.paired_index]
    return SeedData(
        seed=seed,
        protocol=protocol,
        train=PairedDataset.from_cohort(cohort, splits.train),
        query=PairedDataset.from_cohort(cohort, splits.query),
        database=PairedDataset.from_cohort(cohort, splits.database),
        mri_pretrain=ImageDataset.from_cohort(cohort, "mri", pretraining_indices(cohort, splits)),
        pet_pretrain=ImageDataset.from_cohort(cohort, "pet", splits.train),
        sizes=splits.sizes(),
        query_subjects=cohort.paired_subject_ids[splits.query],
        database_subjects=cohort.paired_subject_ids[splits.database],
        query_severity=severity[splits.query],
        database_severity=severity[splits.database],
        cohort_root=cohort.root,
    )


@dataclass
class RunContext:
    """What a method's entry point may read.

    Attributes
    ----------
    config : CompareConfig
        The comparison (epochs, pretraining epochs, learning rate, ...).
    tier : Tier
        Sizes (input, backbone width, batch size).
    device : torch.device
    in_channels : int
        Channels of a scan (stacked slices in 2D, 1 in 3D).
    data : SeedData
    """

    config: object
    tier: object
    device: torch.device
    in_channels: int
    data: SeedData


@dataclass
class MethodRun:
    """What one method's entry point returns.

    Attributes
    ----------
    codes : dict
        ``codes["query", "mri"]``, ``codes["query", "pet"]``,
        ``codes["database", "mri"]``, ``codes["database", "pet"]``: ±1 int8
        arrays (n, K) in the order of ``context.data.query`` and
        ``.database``; ``codes["query", "labels"]`` and
        ``codes["database", "labels"]``: their labels.
    seconds : float
        Training time, pretraining shared by the seed's methods included.
    epochs_run : int
    hyperparameters : dict
        Every setting of the run (plain values; stored in the results file).
    """

    codes: dict
    seconds: float
    epochs_run: int
    hyperparameters: dict = field(default_factory=dict)


class NotApplicable(Exception):
    """A method cannot run at this setting (e.g. CVH asked for more bits than
    its training set has canonical directions); the message says why and the
    results file records it."""


# --------------------------------------------------------------------------
# Shared training pieces
# --------------------------------------------------------------------------
def train_config(context: RunContext, epochs: int) -> TrainConfig:
    """The comparison's :class:`TrainConfig`: its batch size, learning rate and
    seed, a fixed budget of ``epochs`` and no early stopping.

    Every method trains for its budget and keeps its last epoch, as both
    papers do (a fixed number of iterations). Picking the best epoch on a
    validation set of some 30 subjects would select noise: Chapter 4 shows
    validation mAP moving by tenths from one epoch to the next.
    """
    return TrainConfig(epochs=epochs, batch_size=context.tier.batch_size, lr=context.config.lr,
                       device=context.device.type, seed=context.data.seed, progress=False, patience=None)


def _network(context: RunContext, n_bits: int) -> CrossModalHashNet:
    tier = context.tier
    return CrossModalHashNet(n_bits, in_channels=context.in_channels, spatial_dims=tier.spatial_dims,
                             width=tier.width)


class _BranchClassifier(nn.Module):
    """A hash branch's features and a linear head over the diagnoses (pretraining)."""

    def __init__(self, branch: nn.Module, n_classes: int = 3):
        super().__init__()
        self.branch = branch
        self.head = nn.Linear(branch.feature_dim, n_classes)

    def forward(self, x):
        return self.head(self.branch.features(x))


def _classification_objective(model, batch):
    images, labels = batch
    loss = F.cross_entropy(model(images), labels)
    return loss, {"cross_entropy": loss.detach()}


def pretrained_branches(context: RunContext) -> dict:
    """Branch weights after single-modality pretraining, once per seed (the hash layer excluded).

    Cross-entropy over the three diagnoses for ``config.pretrain_epochs``
    epochs, the sMRI branch on every training subject's sMRI and the
    sMRI-only subjects, the PET branch on the training subjects' PET. Its
    seconds are counted in every run that starts from it.
    """
    data = context.data
    if data.pretrained is None:
        data.pretrained = {}
        if context.config.pretrain_epochs > 0:
            seed_everything(data.seed)
            # the hash layer is not pretrained, but its size changes the draws of the initialisation:
            # one fixed K, so that a cell's result does not depend on which K its invocation ran
            template = _network(context, PRETRAIN_TEMPLATE_BITS)
            config = train_config(context, context.config.pretrain_epochs)
            for modality, dataset in (("mri", data.mri_pretrain), ("pet", data.pet_pretrain)):
                branch = getattr(template, f"{modality}_branch")
                result = fit(_BranchClassifier(branch), _classification_objective, dataset, config)
                data.pretrain_seconds += result.seconds
                data.pretrained[modality] = {k: v.detach().clone() for k, v in branch.state_dict().items()
                                             if not k.startswith("hash_layer")}
    return data.pretrained


def pretrained_network(context: RunContext, n_bits: int) -> CrossModalHashNet:
    """A fresh two-branch network at K = ``n_bits`` (seeded by the seed), its
    branches loaded with the seed's pretrained weights (the hash layers are new)."""
    pretrained = pretrained_branches(context)
    seed_everything(context.data.seed)
    network = _network(context, n_bits)
    for modality, state in pretrained.items():
        getattr(network, f"{modality}_branch").load_state_dict(state, strict=False)
    return network


def public_settings(module) -> dict:
    """The plain-valued public attributes of a loss (its hyperparameters)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool))}


def shared_hyperparameters(context: RunContext) -> dict:
    """The budget every deep method shares, for its hyperparameters dict."""
    return {"epochs": context.config.epochs, "pretrain_epochs": context.config.pretrain_epochs, "selection": "last epoch",
            "lr": context.config.lr, "batch_size": context.tier.batch_size, "width": context.tier.width,
            "weight_decay": TrainConfig.weight_decay, "pretrain_seconds_included": context.data.pretrain_seconds}


def deep_codes(model: nn.Module, data: SeedData, device) -> dict:
    """±1 codes of the query and database scans of both modalities (see :class:`MethodRun`)."""
    codes = {}
    for part, dataset in (("query", data.query), ("database", data.database)):
        for modality in ("mri", "pet"):
            codes[part, modality], labels = encode(model, dataset, modality, device=device)
            codes[part, "labels"] = labels
    return codes


def dataset_arrays(dataset: PairedDataset):
    """``(mri, pet, labels)`` of a paired dataset as numpy arrays."""
    index = dataset.indices
    return dataset.mri[index].numpy(), dataset.pet[index].numpy(), dataset.labels[index].numpy()


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------
def run_loss(context: RunContext, n_bits: int, *, loss: type, options: dict | None = None) -> MethodRun:
    """A method that is a loss on the two-branch network: pretrained branches,
    then ``fit`` on the loss for the comparison's epochs, the last one kept.

    Parameters
    ----------
    context : RunContext
    n_bits : int
    loss : type
        An ``nn.Module`` class ``loss(n_bits, **options)`` whose forward is
        ``(u_x, u_y, labels) -> (total, parts)``.
    options : dict, optional
    """
    data = context.data
    network = pretrained_network(context, n_bits)
    criterion = loss(n_bits, **(options or {}))
    result = fit(network, CrossModalObjective(criterion), data.train, train_config(context, context.config.epochs))
    hyper = {"loss": loss.__name__, **public_settings(criterion), **shared_hyperparameters(context)}
    if hasattr(criterion, "a"):  # Method A's adaptive scale, where it ended
        hyper["a_final"] = float(criterion.a.detach())
    return MethodRun(deep_codes(network, data, context.device), data.pretrain_seconds + result.seconds,
                     len(result.history.epoch), hyper)


def run_hashnet(context: RunContext, n_bits: int) -> MethodRun:
    """HashNet: its weighted likelihood through continuation stages ``tanh(beta z)``,
    beta growing between stages (:func:`~neurohash_lite.losses.hashnet_stages`),
    the comparison's epochs spread over the stages."""
    data = context.data
    model = ContinuationHashNet(pretrained_network(context, n_bits))
    criterion = HashNetLoss(n_bits)
    objective = CrossModalObjective(criterion)
    stages = hashnet_stages(context.config.epochs)
    seconds, epochs_run = data.pretrain_seconds, 0
    for stage_epochs, beta in stages:
        model.beta = beta
        result = fit(model, objective, data.train, train_config(context, stage_epochs))
        seconds += result.seconds
        epochs_run += len(result.history.epoch)
    hyper = {"loss": "HashNetLoss", **public_settings(criterion), **shared_hyperparameters(context),
             "continuation_stages": [[e, b] for e, b in stages]}
    return MethodRun(deep_codes(model, data, context.device), seconds, epochs_run, hyper)


def random_codes(context: RunContext, n_bits: int) -> MethodRun:
    """Independent fair-coin codes: the floor every method must clear."""
    data = context.data
    rng = np.random.default_rng([data.seed, n_bits])
    codes = {}
    for part, dataset in (("query", data.query), ("database", data.database)):
        labels = dataset.labels[dataset.indices].numpy()
        codes[part, "labels"] = labels
        for modality in ("mri", "pet"):
            codes[part, modality] = np.where(rng.random((len(labels), n_bits)) < 0.5, -1, 1).astype(np.int8)
    return MethodRun(codes, 0.0, 0, {"distribution": "independent fair bits"})
