"""One training and evaluation path for every method in the book.

A method plugs in as two things and nothing else:

- a **model**: an ``nn.Module`` with ``encode(x, modality) -> u``, the relaxed
  codes ``(n, K)`` in (-1, 1) of a batch of scans of one modality
  (``"mri"`` or ``"pet"``);
- an **objective**: a callable ``objective(model, batch) -> (loss, parts)``
  that runs the model on a training batch and returns the scalar loss and a
  dict of floats or 0-d tensors to log (its parts). When the objective is an
  ``nn.Module`` its own parameters (e.g. the adaptive scale of Method A) are
  trained with the model's.

:func:`fit` trains with Adam, evaluates validation mAP (M→P and P→M) after
every epoch, stops early when it stops improving and returns the best weights
with a :class:`History` for plotting. Two things it does for every method,
because getting them wrong silently changes every number downstream:

- **batch-norm statistics are recomputed** for the weights being evaluated
  (:func:`recalibrate_batch_norm`, before every validation and at the end):
  the running averages collected during training lag behind the weights, and
  after a short run an eval-mode network maps every scan near one code;
- **frozen modules stay in eval mode**: a module none of whose parameters
  is trained (DCPHA's encoder in its step 2) keeps its batch-norm statistics
  and runs without dropout.

:func:`encode` turns a dataset into ±1
codes and :func:`evaluate` scores both retrieval directions with
:mod:`neurohash_lite.metrics`. On CUDA, training runs under automatic mixed
precision (bfloat16 where the GPU supports it, float16 with loss scaling
otherwise); on the CPU it runs in float32 and is deterministic for a seed.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import metrics
from .retrieval import sign_codes
from .runtime import seed_everything, select_device

__all__ = [
    "MODALITIES",
    "TrainConfig",
    "History",
    "FitResult",
    "CrossModalObjective",
    "autocast_dtype",
    "frozen_modules",
    "recalibrate_batch_norm",
    "fit",
    "encode",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
]

MODALITIES = ("mri", "pet")

Objective = Callable[[nn.Module, tuple], "tuple[torch.Tensor, dict]"]


@dataclass
class TrainConfig:
    """How :func:`fit` trains.

    Attributes
    ----------
    epochs : int
        Upper bound on passes over the training set.
    batch_size : int
        Subjects per mini-batch.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay (L2), on the model's parameters only.
    patience : int or None
        Stop when validation mAP has not improved for this many epochs
        (``None``: never stop early). The best epoch's weights are restored.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` (see :func:`~neurohash_lite.runtime.select_device`).
    amp : bool
        Mixed precision on CUDA (ignored on the CPU).
    seed : int
        Seeds the weights' initialisation order, the batch order and dropout.
    progress : bool
        Show a tqdm progress bar over epochs.
    top_k : int or None
        mAP@k for validation (``None``: mAP@ALL).
    recalibrate : bool
        Recompute the batch-norm statistics of the trained modules before
        every validation and at the end (:func:`recalibrate_batch_norm`).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-5
    patience: int | None = 10
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    progress: bool = True
    top_k: int | None = None
    recalibrate: bool = True


@dataclass
class History:
    """What happened in each epoch, as plain lists for plotting.

    ``parts`` maps each loss part's name to its per-epoch mean over batches;
    ``val_map_mri_to_pet`` and ``val_map_pet_to_mri`` hold validation mAP (NaN
    when no validation set was given).
    """

    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    parts: dict = field(default_factory=dict)
    val_map_mri_to_pet: list = field(default_factory=list)
    val_map_pet_to_mri: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def val_map(self) -> list:
        """Mean of the two directions, per epoch."""
        return [(a + b) / 2 for a, b in zip(self.val_map_mri_to_pet, self.val_map_pet_to_mri)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "History":
        return cls(**values)


@dataclass
class FitResult:
    """The trained model (best validation epoch), its history and the device used."""

    model: nn.Module
    history: History
    device: torch.device
    precision: str
    seconds: float
    samples_per_second: float


class CrossModalObjective(nn.Module):
    """Turn a loss over both modalities' codes into a training objective.

    Wraps any loss ``loss(u_x, u_y, labels) -> (total, parts)`` (Method A's
    :class:`~neurohash_lite.losses.AHSLoss`, the pairwise baselines): on a
    paired batch ``(mri, pet, labels)`` it computes ``u_x = model.encode(mri,
    "mri")`` and ``u_y = model.encode(pet, "pet")`` and hands them over. The
    loss's own parameters (e.g. Method A's adaptive scale) are trained with
    the model's, at the loss's ``parameter_lr`` when it names one (see :func:`fit`).
    """

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss
        self.parameter_lr = getattr(loss, "parameter_lr", None)

    def forward(self, model: nn.Module, batch: tuple):
        mri, pet, labels = batch
        return self.loss(model.encode(mri, "mri"), model.encode(pet, "pet"), labels)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype for ``device``: bfloat16 on GPUs that support
    it, float16 on older GPUs, ``None`` (no autocast) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(batch, device: torch.device):
    return tuple(item.to(device, non_blocking=True) if torch.is_tensor(item) else item for item in batch)


def _as_float(value) -> float:
    return float(value.detach()) if torch.is_tensor(value) else float(value)


def frozen_modules(model: nn.Module, trainable: list[nn.Parameter] | None = None) -> list[nn.Module]:
    """The largest submodules of ``model`` that have parameters and train none of them.

    Parameters
    ----------
    model : nn.Module
    trainable : list of nn.Parameter, optional
        What is trained; default every parameter with ``requires_grad``.

    Returns
    -------
    list of nn.Module
        Each frozen subtree once, by its root (its children are not listed
        again); ``[model]`` when nothing of it trains.
    """
    if trainable is None:
        trained = {id(p) for p in model.parameters() if p.requires_grad}
    else:
        trained = {id(p) for p in trainable}

    def visit(module: nn.Module) -> list[nn.Module]:
        parameters = list(module.parameters())
        if parameters and not any(id(p) in trained for p in parameters):
            return [module]
        return [found for child in module.children() for found in visit(child)]

    return visit(model)


def _batch_norms(model: nn.Module, frozen: list[nn.Module]) -> list[nn.Module]:
    """The batch-norm layers of ``model`` outside the ``frozen`` subtrees."""
    kept = {id(m) for root in frozen for m in root.modules()}
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in kept]


def _loader_drop_last(dataset: Dataset, batch_size: int) -> bool:
    # a last batch of one scan cannot be batch-normalised in training mode
    return len(dataset) > batch_size


@torch.no_grad()
def recalibrate_batch_norm(
    model: nn.Module,
    objective: Objective,
    dataset: Dataset,
    *,
    batch_size: int = 32,
    frozen: list[nn.Module] | None = None,
    device: torch.device | str | None = None,
    amp_dtype: torch.dtype | None = None,
) -> int:
    """Recompute the running statistics of every trained batch norm for the current weights.

    In training mode a batch-norm layer normalises with the statistics of the
    batch and keeps an exponential average of them (momentum 0.1) for eval
    mode. Those averages were taken with past weights: after a short run
    they lag far behind, and an eval-mode network then maps every scan to
    nearly the same feature. This resets them and averages the batch
    statistics of one pass of ``objective`` over ``dataset`` (the same
    forward pass as training, so each layer sees what it saw in training),
    without gradients, with dropout off, and without changing any weight.

    Parameters
    ----------
    model : nn.Module
    objective : callable
        ``objective(model, batch)``, as for :func:`fit`; only its forward
        pass matters here.
    dataset : Dataset
        The training set.
    batch_size : int, default 32
        Training's batch size (a batch statistic depends on it).
    frozen : list of nn.Module, optional
        Subtrees whose statistics stay as they are (default
        :func:`frozen_modules` of ``model``).
    device : torch.device or str, optional
        Default: where the model's parameters are.
    amp_dtype : torch.dtype, optional
        Run under autocast with this dtype, as training did.

    Returns
    -------
    int
        The number of batch-norm layers recomputed (0: nothing to do, and
        nothing was run).
    """
    frozen = frozen_modules(model) if frozen is None else frozen
    norms = _batch_norms(model, frozen)
    if not norms:
        return 0
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()  # dropout off; frozen statistics kept
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the pass
        m.train()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        drop_last=_loader_drop_last(dataset, batch_size))
    for batch in loader:
        with _autocast(device, amp_dtype):
            objective(model, _to_device(batch, device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def _train_mode(model: nn.Module, objective, frozen: list[nn.Module]) -> None:
    model.train()
    for module in frozen:
        module.eval()
    if isinstance(objective, nn.Module):
        objective.train()


def fit(
    model: nn.Module,
    objective: Objective,
    train_set: Dataset,
    config: TrainConfig | None = None,
    *,
    val_query: Dataset | None = None,
    val_database: Dataset | None = None,
    trainable: list[nn.Parameter] | None = None,
) -> FitResult:
    """Train ``model`` on ``objective``, keeping the best validation epoch.

    Parameters
    ----------
    model : nn.Module
        Has ``encode(x, modality)`` (see the module docstring).
    objective : callable
        ``objective(model, batch) -> (loss, parts)``; an ``nn.Module``
        objective's parameters are trained too, without weight decay and at
        the objective's ``parameter_lr`` when it has one (Method A's scale),
        else at ``config.lr``.
    train_set : Dataset
        Yields tuples; the objective knows what they hold (for paired
        cross-modal training, ``(mri, pet, label)``).
    config : TrainConfig, optional
    val_query, val_database : Dataset, optional
        Paired datasets yielding ``(mri, pet, label)``. When both are given,
        validation mAP in both directions is computed after each epoch and
        drives early stopping; otherwise the last epoch is kept.
    trainable : list of nn.Parameter, optional
        Train only these (e.g. a decoder on a frozen encoder). Default: every
        parameter of the model and of the objective.

    Returns
    -------
    FitResult
    """
    config = config or TrainConfig()
    if config.epochs < 1:
        raise ValueError(f"config.epochs={config.epochs} must be at least 1")
    if len(train_set) == 0:
        raise ValueError("train_set is empty")
    if (val_query is None) != (val_database is None):
        raise ValueError("give both val_query and val_database, or neither")
    device = select_device(config.device)
    generator = seed_everything(config.seed)
    model.to(device)
    if isinstance(objective, nn.Module):
        objective.to(device)
    if trainable is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad],
                   "weight_decay": config.weight_decay}]
        if isinstance(objective, nn.Module) and any(True for _ in objective.parameters()):
            # the objective's own parameters (Method A's rho) at the objective's rate when it names one
            groups.append({"params": list(objective.parameters()), "weight_decay": 0.0,
                           "lr": getattr(objective, "parameter_lr", None) or config.lr})
    else:
        groups = [{"params": list(trainable), "weight_decay": config.weight_decay}]
    frozen = frozen_modules(model, trainable)
    optimiser = torch.optim.Adam(groups, lr=config.lr)
    dtype = autocast_dtype(device) if config.amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                        generator=generator, drop_last=_loader_drop_last(train_set, config.batch_size))

    def recalibrate():
        if config.recalibrate:
            recalibrate_batch_norm(model, objective, train_set, batch_size=config.batch_size, frozen=frozen,
                                   device=device, amp_dtype=dtype)

    history = History()
    best_score, best_state, epochs_without_gain = -math.inf, None, 0
    started, samples = time.perf_counter(), 0
    bar = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not config.progress, leave=False)
    for epoch in bar:
        epoch_start = time.perf_counter()
        _train_mode(model, objective, frozen)
        totals, count = {}, 0
        for batch in loader:
            batch = _to_device(batch, device)
            with _autocast(device, dtype):
                loss, parts = objective(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {float(loss.detach())} at epoch {epoch}; parts: "
                                         f"{ {k: _as_float(v) for k, v in parts.items()} }")
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss.float()).backward()
            scaler.step(optimiser)
            scaler.update()
            n = len(batch[0])
            samples += n
            count += 1
            totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + _as_float(value)
        history.epoch.append(epoch)
        history.loss.append(totals.pop("loss") / count)
        for name, value in totals.items():
            history.parts.setdefault(name, []).append(value / count)

        if val_query is not None:
            recalibrate()  # the statistics of this epoch's weights, as they will be kept
            scores = evaluate(model, val_query, val_database, batch_size=max(config.batch_size, 64),
                              device=device, top_k=config.top_k)
            history.val_map_mri_to_pet.append(scores["mri_to_pet"])
            history.val_map_pet_to_mri.append(scores["pet_to_mri"])
            score = scores["mean"]
        else:
            history.val_map_mri_to_pet.append(float("nan"))
            history.val_map_pet_to_mri.append(float("nan"))
            score = float(epoch)  # without validation, the latest epoch is the best
        history.seconds.append(time.perf_counter() - epoch_start)
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}", val_map=f"{score:.3f}" if val_query is not None else "-")

        if score > best_score:
            best_score, epochs_without_gain = score, 0
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
            if isinstance(objective, nn.Module):
                best_objective_state = copy.deepcopy(objective.state_dict())
        else:
            epochs_without_gain += 1
            if config.patience is not None and epochs_without_gain >= config.patience:
                history.stopped_early = True
                break
    bar.close()
    if val_query is None:
        recalibrate()  # the last epoch is the one kept
    else:
        model.load_state_dict(best_state)  # its statistics were recomputed before its validation
        if isinstance(objective, nn.Module):
            objective.load_state_dict(best_objective_state)
    model.eval()
    seconds = time.perf_counter() - started
    precision = "float32" if dtype is None else str(dtype).replace("torch.", "")
    return FitResult(model, history, device, precision, seconds, samples / max(seconds, 1e-9))


@torch.no_grad()
def encode(
    model: nn.Module,
    dataset: Dataset,
    modality: str,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary codes of one modality of a dataset.

    Parameters
    ----------
    model : nn.Module
        Has ``encode(x, modality) -> u``, ``(n, K)`` in (-1, 1).
    dataset : Dataset
        Paired, yielding ``(mri, pet, label)``, or single-modality, yielding
        ``(image, label)``.
    modality : {"mri", "pet"}
        Which scans to encode (and which branch of the model to use).
    batch_size : int
    device : torch.device or str, optional
        Default: where the model's parameters are.

    Returns
    -------
    codes : (n, K) int8 ndarray of ±1
        ``sign(u)`` with sign(0) = +1.
    labels : (n,) int64 ndarray
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality={modality!r} must be one of {MODALITIES}")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    codes, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        if len(batch) == 3:
            images = batch[MODALITIES.index(modality)]
        elif len(batch) == 2:
            images = batch[0]
        else:
            raise ValueError(f"dataset items must be (mri, pet, label) or (image, label); got {len(batch)} parts")
        u = model.encode(images.to(device), modality).float()
        codes.append(sign_codes(u.cpu().numpy()))
        labels.append(np.asarray(batch[-1]))
    model.train(was_training)
    return np.concatenate(codes), np.concatenate(labels).astype(np.int64)


def evaluate(
    model: nn.Module,
    query_set: Dataset,
    database_set: Dataset,
    *,
    top_k: int | None = None,
    ties: str = "expected",
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> dict:
    """mAP of both retrieval directions, and their mean.

    M→P: MRI codes of ``query_set`` against PET codes of ``database_set``;
    P→M: PET queries against MRI database codes.

    Parameters
    ----------
    model : nn.Module
    query_set, database_set : Dataset
        Paired datasets yielding ``(mri, pet, label)``.
    top_k : int or None
        mAP@k (DESIGN.md §4); ``None`` is mAP@ALL.
    ties : {"expected", "index"}
    batch_size : int
    device : torch.device or str, optional

    Returns
    -------
    dict
        ``{"mri_to_pet": float, "pet_to_mri": float, "mean": float}``.
    """
    query_mri, query_labels = encode(model, query_set, "mri", batch_size=batch_size, device=device)
    query_pet, _ = encode(model, query_set, "pet", batch_size=batch_size, device=device)
    db_mri, db_labels = encode(model, database_set, "mri", batch_size=batch_size, device=device)
    db_pet, _ = encode(model, database_set, "pet", batch_size=batch_size, device=device)
    mri_to_pet = metrics.mean_average_precision(query_mri, db_pet, query_labels, db_labels, top_k=top_k, ties=ties)
    pet_to_mri = metrics.mean_average_precision(query_pet, db_mri, query_labels, db_labels, top_k=top_k, ties=ties)
    return {"mri_to_pet": mri_to_pet, "pet_to_mri": pet_to_mri, "mean": (mri_to_pet + pet_to_mri) / 2}


def _plain(value):
    """``value`` with every NumPy scalar inside dicts, lists and tuples made a Python number."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value.item() if isinstance(value, np.generic) else value


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, objective: nn.Module | None = None,
                    history: History | None = None, metadata: dict | None = None) -> Path:
    """Save weights, history and metadata so :func:`load_checkpoint` can read
    them with ``torch.load(..., weights_only=True)``.

    Written to a temporary file in the same folder and renamed, so an
    interrupted save never leaves half a checkpoint.

    Parameters
    ----------
    path : path-like
    model : nn.Module
    objective : nn.Module, optional
        Its state (e.g. Method A's adaptive scale) is saved too.
    history : History, optional
    metadata : dict, optional
        Plain Python values (str, int, float, bool, lists, dicts); NumPy
        scalars in it are stored as the Python numbers they hold, since
        ``weights_only`` loading refuses them.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "objective": None if objective is None else {k: v.detach().cpu() for k, v in objective.state_dict().items()},
        "history": None if history is None else history.to_dict(),
        "metadata": _plain(metadata or {}),
    }
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        torch.save(payload, handle)
    # A temporary file is private (0600); give the checkpoint the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)
    os.replace(handle.name, path)
    return path


def load_checkpoint(path: str | os.PathLike, model: nn.Module, *, objective: nn.Module | None = None
                    ) -> tuple[History | None, dict]:
    """Load what :func:`save_checkpoint` wrote into ``model`` (and ``objective``).

    Returns
    -------
    history : History or None
    metadata : dict
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from error
    model.load_state_dict(payload["model"])
    if objective is not None and payload.get("objective") is not None:
        objective.load_state_dict(payload["objective"])
    history = None if payload.get("history") is None else History.from_dict(payload["history"])
    return history, payload.get("metadata", {})
