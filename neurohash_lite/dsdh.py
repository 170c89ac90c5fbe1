"""Deep Supervised Discrete Hashing (DSDH), cross-modal, with its alternating optimisation.

Li, Sun, He & Tan (2017) learn codes that serve two kinds of supervision at
once: the pairwise labels, through the likelihood of the network outputs
``u_i``, and the class labels, through a linear classifier ``W`` applied to
the *discrete* codes ``b_i``. Their relaxed problem (Section 3 of the paper)
is

``min_{B, W, theta}  J = - sum_{s_ij} (s_ij Theta_ij - log(1 + e^Theta_ij))
                       + mu sum_i ||y_i - W^T b_i||^2 + nu ||W||_F^2
                       + eta sum_i ||b_i - u_i||^2``,

``Theta_ij = 1/2 u_i^T u_j``, ``u_i = F(x_i; theta)``, ``b_i in {-1, +1}^K``,
``y_i`` the one-hot label, solved by alternating three steps:

- **the network** (``B``, ``W`` fixed): back-propagation of the likelihood
  and the quantization term;
- **W** (``B`` fixed): ridge regression in closed form,
  ``W = (B^T B + (nu/mu) I)^-1 B^T Y`` (rows-as-samples here:
  :func:`dsdh_w_step`);
- **B** (``W``, ``U`` fixed): ``min_B mu ||Y - B W||^2 + eta ||B - U||^2``
  over ``{-1, +1}``, by discrete cyclic coordinate descent (DCC, after SDH):
  each bit (column) in turn has the closed-form minimiser
  ``b_k = sign(p_k - B'_k W'_k w_k)``, ``P = Y W^T + (eta/mu) U``
  (:func:`dsdh_dcc`); every column step is the exact minimiser over that
  column with the others fixed, so a sweep never increases the objective.

The paper's text could not be opened while writing this module; the terms
and the three steps above follow the authors' description as reproduced by
two public re-implementations, which agree on them: DSDH_PyTorch
(https://github.com/TreezzZ/DSDH_PyTorch, ``dsdh.py``: ``solve_dcc`` and the
W-step) and DeepHash-pytorch (https://github.com/swuxyj/DeepHash-pytorch,
``DSDH.py``). No code was copied; the equation numbers of the paper are not
cited because they could not be checked.

Two modalities and three diagnoses
----------------------------------
- **One code per subject**: the sMRI and the PET scan of a training subject
  share one row ``b_i`` of ``B`` (as DCMH's shared code); the quantization
  term is ``eta (||b_i - u_i^x||^2 + ||b_i - u_i^y||^2)``, so the B-step uses
  ``U = U^x + U^y``.
- **Pairs across modalities**: ``Theta_ij = 1/2 <u_i^x, u_j^y>``, ``s_ij = 1``
  when the diagnoses agree (a subject's own two scans are a positive pair).
  As in DSDH_PyTorch, a mini-batch is compared with the stored (detached)
  outputs of *every* training subject: the batch's sMRI against all stored
  PET outputs and the batch's PET against all stored sMRI outputs. Over an
  epoch the gradient with respect to each output is then the gradient of
  ``J``'s pair sum (each pair once per side).
- **Classifier**: ``y_i`` one-hot over the three diagnoses (C = 3).
- **Codes of new scans**: the sign of the trained network's output, in each
  modality (DSDH's own out-of-sample rule; ``B`` exists only for training
  subjects).

Scale of the network step
-------------------------
``J``'s sums are kept: the network step minimises the mini-batch share of
``J`` divided by ``2 b n`` (b the batch, n the training subjects), i.e.
``L = L_lik + eta (K / n) L_q`` with ``L_lik`` the mean over the batch's
pairs and ``L_q`` the mean squared entry of ``b - u`` (a constant factor,
which Adam does not see). So the paper's ``mu``, ``nu``, ``eta`` keep their
meaning in all three steps. Note that ``eta``'s weight against the
likelihood grows as ``n`` shrinks: the paper's training sets had thousands of
images, this cohort's a few hundred subjects.

Hyper-parameters and budget
---------------------------
``mu = 1``, ``nu = 0.1``, ``eta = 55``: the paper's cross-validated values
as we know them, *not* checked against its text, which could not be
opened here (DeepHash-pytorch configures ``mu = 1``, ``nu = 1``,
``eta = 55``; DSDH_PyTorch, whose terms are means, ``mu = eta = 0.01``,
``nu = 1``). Only the ratios ``eta/mu`` and ``nu/mu`` enter the B- and
W-steps. One DCC sweep per outer
iteration, as DSDH_PyTorch. The comparison's budget is mapped as one outer
iteration = one network epoch over the training set + the W-step + the
B-step, for ``config.epochs`` iterations (the paper trains 150 iterations
with RMSprop at lr 1e-5 and a cosine schedule in DSDH_PyTorch; here Adam at
the comparison's lr, restarted at each iteration because each network step
is one call of :func:`~neurohash_lite.train.fit`).

One change to the start: DSDH_PyTorch draws ``B`` at random before the
first network step. With the paper's ``eta`` on a few hundred subjects the
quantization term would then imprint random codes on the network in its
first epoch, so here ``B`` starts as ``sign(U^x + U^y)`` of the pretrained
network's outputs (one forward pass over the training set, counted in the
run's seconds).

References
----------
Li Q., Sun Z., He R., Tan T. (2017). Deep Supervised Discrete Hashing.
NeurIPS 30. Section 3 (the objective and its alternating minimisation).
Shen F., Shen C., Liu W., Shen H. T. (2015). Supervised Discrete Hashing.
CVPR (discrete cyclic coordinate descent).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .losses.ahs import _as_labels, _check_pair
from .runner import (MethodRun, RunContext, pretrained_network, shared_hyperparameters, deep_codes,
                     train_config)
from .train import autocast_dtype, fit, recalibrate_batch_norm

__all__ = ["MU", "NU", "ETA", "N_CLASSES", "IndexedPairs", "network_outputs", "sign_codes_pm1", "iteration_seed",
           "recalibrate_on_training_set", "dsdh_likelihood_loss", "dsdh_network_loss", "dsdh_w_step",
           "dsdh_b_objective", "dsdh_dcc", "dsdh_objective", "DSDHObjective", "run"]

#: The paper's weights: classification (mu), classifier ridge (nu), quantization (eta).
MU, NU, ETA = 1.0, 0.1, 55.0
#: Diagnoses (NC, MCI, AD).
N_CLASSES = 3


# --------------------------------------------------------------------------
# Pieces the discrete methods share (ADSH and DIHN import them)
# --------------------------------------------------------------------------
class IndexedPairs(Dataset):
    """``(mri, pet, label, k)`` for the k-th of some rows of a paired dataset.

    A method that keeps a code (or a stored output) per training subject
    needs to know which subjects a mini-batch holds: ``k`` is the position
    of the item among ``rows``.

    Parameters
    ----------
    dataset : neurohash_lite.data.PairedDataset
    rows : array-like of int, optional
        Positions in ``dataset`` (default: all, in order).
    """

    def __init__(self, dataset, rows=None):
        self.dataset = dataset
        self.rows = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows.ndim != 1 or (len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(dataset))):
            raise ValueError(f"rows must be positions in a dataset of {len(dataset)} items")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int):
        mri, pet, label = self.dataset[int(self.rows[k])]
        return mri, pet, label, k


@torch.no_grad()
def network_outputs(model: nn.Module, dataset, device, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Relaxed outputs ``(U^x, U^y)`` of a paired dataset, in eval mode, as float64 on the CPU."""
    device = torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    outputs = {"mri": [], "pet": []}
    for mri, pet, *_ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        outputs["mri"].append(model.encode(mri.to(device), "mri").float().cpu())
        outputs["pet"].append(model.encode(pet.to(device), "pet").float().cpu())
    model.train(was_training)
    return torch.cat(outputs["mri"]).double(), torch.cat(outputs["pet"]).double()


def sign_codes_pm1(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` with ``sign(0) = +1`` (DESIGN §4), in ``x``'s dtype."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def iteration_seed(seed: int, iteration: int) -> int:
    """A seed for one outer iteration's network step (batch order, dropout), from the run's seed."""
    return int(np.random.SeedSequence([int(seed), int(iteration)]).generate_state(1)[0])


def _forward_both(model: nn.Module, batch) -> None:
    model.encode(batch[0], "mri")
    model.encode(batch[1], "pet")


def recalibrate_on_training_set(model: nn.Module, context: RunContext) -> None:
    """Batch-norm statistics of the final weights over the whole training set
    (:func:`~neurohash_lite.train.recalibrate_batch_norm`), as ``fit`` does at
    the end of a run; the network steps themselves skip it."""
    device = torch.device(context.device)
    recalibrate_batch_norm(model, _forward_both, context.data.train, batch_size=context.tier.batch_size,
                           device=device, amp_dtype=autocast_dtype(device))
    model.eval()


def _no_autocast(tensor: torch.Tensor):
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def _as_float(u: torch.Tensor) -> torch.Tensor:
    return u.float() if u.dtype in (torch.float16, torch.bfloat16) else u


# --------------------------------------------------------------------------
# The network step
# --------------------------------------------------------------------------
def dsdh_likelihood_loss(u: torch.Tensor, u_other: torch.Tensor, s) -> torch.Tensor:
    """Mean negative log-likelihood ``mean_ij [softplus(Theta_ij) - s_ij Theta_ij]``, ``Theta = 1/2 u u_other^T``.

    Parameters
    ----------
    u : torch.Tensor, (b, K)
        The batch's outputs in one modality.
    u_other : torch.Tensor, (n, K)
        Outputs of the other modality (DSDH: every training subject's, stored).
    s : array-like, (b, n), values in {0, 1}

    Returns
    -------
    torch.Tensor, scalar, nats per pair

    References
    ----------
    Li et al. (2017), the likelihood term of the objective (``log(1 + e^Theta)`` as softplus).
    """
    _check_pair(u, u_other)
    theta = 0.5 * (u @ u_other.T)
    s = torch.as_tensor(s, device=theta.device).to(theta.dtype)
    if s.shape != theta.shape:
        raise ValueError(f"s must have shape {tuple(theta.shape)}, got {tuple(s.shape)}")
    return (F.softplus(theta) - s * theta).mean()


def dsdh_network_loss(u_x, u_y, stored_x, stored_y, b, labels, stored_labels, eta: float = ETA):
    """The network step's loss: ``L = L_lik + eta (K / n) L_q``.

    ``L_lik`` is the mean of :func:`dsdh_likelihood_loss` over the two
    directions (the batch's sMRI against every stored PET output, the batch's
    PET against every stored sMRI output); ``L_q`` the mean over both
    modalities of the mean squared entry of ``b - u``. Equal to the batch's
    share of DSDH's ``J`` divided by ``2 b n`` (see the module docstring).

    Parameters
    ----------
    u_x, u_y : torch.Tensor, (b, K)
        The batch's sMRI and PET outputs (row i: subject i).
    stored_x, stored_y : torch.Tensor, (n, K)
        Stored outputs of every training subject (constants).
    b : torch.Tensor, (b, K)
        The batch's rows of the discrete codes ``B`` (±1).
    labels : array-like of int, (b,)
    stored_labels : array-like of int, (n,)
    eta : float

    Returns
    -------
    total : torch.Tensor, scalar
    parts : dict
        ``likelihood``, ``quantization`` (detached).
    """
    u_x, u_y = _as_float(u_x), _as_float(u_y)
    _check_pair(u_x, u_y)
    if u_x.shape != u_y.shape or b.shape != u_x.shape:
        raise ValueError(f"u_x, u_y and b must share one shape, got {tuple(u_x.shape)}, {tuple(u_y.shape)}, "
                         f"{tuple(b.shape)}")
    labels = _as_labels(labels, u_x.shape[0], "labels", u_x.device)
    stored_labels = _as_labels(stored_labels, stored_x.shape[0], "stored_labels", u_x.device)
    s = (labels[:, None] == stored_labels[None, :]).to(u_x.dtype)
    stored_x, stored_y, b = stored_x.to(u_x.dtype), stored_y.to(u_x.dtype), b.to(u_x.dtype)
    likelihood = (dsdh_likelihood_loss(u_x, stored_y, s) + dsdh_likelihood_loss(u_y, stored_x, s)) / 2
    quantization = (((b - u_x) ** 2).mean() + ((b - u_y) ** 2).mean()) / 2
    n_subjects, n_bits = stored_x.shape
    total = likelihood + eta * n_bits / n_subjects * quantization
    return total, {"likelihood": likelihood.detach(), "quantization": quantization.detach()}


class DSDHObjective(nn.Module):
    """DSDH's network step as an objective for :func:`~neurohash_lite.train.fit`.

    Holds the stored outputs ``U^x``, ``U^y`` and the codes ``B`` of every
    training subject as buffers (so ``fit`` moves them to the device). On an
    :class:`IndexedPairs` batch ``(mri, pet, labels, k)`` it writes the
    batch's outputs into the store (detached, as DSDH_PyTorch does) and
    returns :func:`dsdh_network_loss`.

    Parameters
    ----------
    labels : array-like of int, (n,)
        Diagnoses of the training subjects.
    u_x, u_y : torch.Tensor, (n, K)
        Initial stored outputs.
    b : torch.Tensor, (n, K)
        Initial codes (±1).
    eta : float
    """

    def __init__(self, labels, u_x, u_y, b, eta: float = ETA):
        super().__init__()
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
        n = u_x.shape[0]
        self.eta = float(eta)
        self.register_buffer("labels", _as_labels(labels, n, "labels", torch.device("cpu")).clone())
        self.register_buffer("u_x", u_x.detach().float().clone())
        self.register_buffer("u_y", u_y.detach().float().clone())
        self.register_buffer("b", b.detach().float().clone())

    def set_codes(self, b: torch.Tensor) -> None:
        self.b.copy_(b.to(self.b))

    def stored(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored outputs, float64 on the CPU."""
        return self.u_x.detach().cpu().double(), self.u_y.detach().cpu().double()

    def forward(self, model: nn.Module, batch):
        mri, pet, labels, k = batch
        u_x, u_y = model.encode(mri, "mri"), model.encode(pet, "pet")
        with _no_autocast(u_x):
            u_x, u_y = u_x.float(), u_y.float()
            self.u_x[k] = u_x.detach()
            self.u_y[k] = u_y.detach()
            return dsdh_network_loss(u_x, u_y, self.u_x, self.u_y, self.b[k], labels, self.labels, self.eta)


# --------------------------------------------------------------------------
# The W-step and the B-step
# --------------------------------------------------------------------------
def dsdh_w_step(b: torch.Tensor, y: torch.Tensor, mu: float = MU, nu: float = NU) -> torch.Tensor:
    """The classifier in closed form: ``W = (B^T B + (nu/mu) I)^-1 B^T Y``.

    The minimiser of ``mu ||Y - B W||_F^2 + nu ||W||_F^2`` (ridge regression of
    the one-hot labels on the codes).

    Parameters
    ----------
    b : torch.Tensor, (n, K), ±1
    y : torch.Tensor, (n, C), one-hot
    mu, nu : float, > 0

    Returns
    -------
    torch.Tensor, (K, C), in ``b``'s dtype

    References
    ----------
    Li et al. (2017), the W sub-problem.
    """
    if not (mu > 0 and nu > 0):
        raise ValueError(f"mu and nu must be > 0 for the closed form, got mu={mu!r}, nu={nu!r}")
    b = b.to(torch.float64) if b.dtype not in (torch.float32, torch.float64) else b
    y = y.to(b.dtype)
    gram = b.T @ b + (nu / mu) * torch.eye(b.shape[1], dtype=b.dtype, device=b.device)
    return torch.linalg.solve(gram, b.T @ y)


def dsdh_b_objective(b, w, y, u_x, u_y, mu: float = MU, eta: float = ETA) -> torch.Tensor:
    """The B-subproblem's objective ``mu ||Y - B W||^2 + eta (||B - U^x||^2 + ||B - U^y||^2)``, computed directly."""
    return mu * ((y - b @ w) ** 2).sum() + eta * (((b - u_x) ** 2).sum() + ((b - u_y) ** 2).sum())


def dsdh_dcc(b, w, y, u_x, u_y, mu: float = MU, eta: float = ETA, sweeps: int = 1) -> torch.Tensor:
    """Discrete cyclic coordinate descent on ``B``, bit by bit.

    With ``P = Y W^T + (eta/mu)(U^x + U^y)``, bit k of every subject is set to
    ``sign(p_k - B'_k W'_k w_k)`` (``B'_k``, ``W'_k``: ``B`` without its column
    k, ``W`` without its row k; ``w_k``: row k of ``W``), the exact minimiser of
    :func:`dsdh_b_objective` over that column with the others fixed
    (``sign(0) = +1``; a tie leaves the objective unchanged).

    Parameters
    ----------
    b : torch.Tensor, (n, K), ±1
        The current codes (not modified).
    w : torch.Tensor, (K, C)
    y : torch.Tensor, (n, C)
    u_x, u_y : torch.Tensor, (n, K)
    mu, eta : float
    sweeps : int
        Passes over the K bits.

    Returns
    -------
    torch.Tensor, (n, K), ±1

    References
    ----------
    Li et al. (2017), the B sub-problem; Shen et al. (2015), DCC.
    """
    if sweeps < 1:
        raise ValueError(f"sweeps must be >= 1, got {sweeps!r}")
    b = b.clone()
    p = y @ w.T + (eta / mu) * (u_x + u_y)
    n_bits = b.shape[1]
    for _ in range(sweeps):
        for k in range(n_bits):
            others = torch.arange(n_bits, device=b.device) != k
            b[:, k] = sign_codes_pm1(p[:, k] - b[:, others] @ (w[others] @ w[k]))
    return b


def dsdh_objective(u_x, u_y, b, w, y, labels, mu: float = MU, nu: float = NU, eta: float = ETA) -> torch.Tensor:
    """DSDH's whole objective ``J`` on stored outputs (sums, as the paper writes it).

    ``J = sum_ij [softplus(Theta_ij) - s_ij Theta_ij] + mu ||Y - B W||^2 + nu ||W||^2
    + eta (||B - U^x||^2 + ||B - U^y||^2)``, ``Theta_ij = 1/2 <u_i^x, u_j^y>``.
    """
    labels = torch.as_tensor(labels, device=u_x.device)
    s = (labels[:, None] == labels[None, :]).to(u_x.dtype)
    theta = 0.5 * (u_x @ u_y.T)
    likelihood = (F.softplus(theta) - s * theta).sum()
    return likelihood + dsdh_b_objective(b, w, y, u_x, u_y, mu, eta) + nu * (w ** 2).sum()


# --------------------------------------------------------------------------
# The comparison's entry point
# --------------------------------------------------------------------------
def run(context: RunContext, n_bits: int, *, mu: float = MU, nu: float = NU, eta: float = ETA,
        dcc_sweeps: int = 1) -> MethodRun:
    """DSDH on the seed's training set: ``config.epochs`` outer iterations of
    network epoch, W-step and B-step, from the pretrained branches.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    mu, nu, eta : float
        The paper's weights (:data:`MU`, :data:`NU`, :data:`ETA`).
    dcc_sweeps : int
        DCC passes over the bits per B-step.

    Returns
    -------
    neurohash_lite.runner.MethodRun
        Codes of query and database scans: the sign of the network's output.
    """
    data, device = context.data, torch.device(context.device)
    network = pretrained_network(context, n_bits)
    started = time.perf_counter()
    labels = data.train.labels[data.train.indices].clone()
    n_classes = max(N_CLASSES, int(labels.max()) + 1)
    y = F.one_hot(labels, n_classes).double()
    u_x, u_y = network_outputs(network, data.train, device, batch_size=max(context.tier.batch_size, 64))
    b = sign_codes_pm1(u_x + u_y)
    w = dsdh_w_step(b, y, mu, nu)
    objective = DSDHObjective(labels, u_x, u_y, b, eta)
    indexed = IndexedPairs(data.train)
    history = []
    for iteration in range(context.config.epochs):
        config = dataclasses.replace(train_config(context, 1), seed=iteration_seed(data.seed, iteration),
                                     recalibrate=False)
        fit(network, objective, indexed, config)                  # the network step
        u_x, u_y = objective.stored()
        w = dsdh_w_step(b, y, mu, nu)                              # the W-step
        b = dsdh_dcc(b, w, y, u_x, u_y, mu, eta, dcc_sweeps)       # the B-step
        objective.set_codes(b)
        history.append(float(dsdh_objective(u_x, u_y, b, w, y, labels, mu, nu, eta)) / len(labels))
    recalibrate_on_training_set(network, context)
    codes = deep_codes(network, data, device)
    seconds = data.pretrain_seconds + time.perf_counter() - started
    hyper = {"method": "DSDH", "mu": mu, "nu": nu, "eta": eta, "dcc_sweeps": dcc_sweeps,
             "outer_iterations": context.config.epochs, "network_epochs_per_iteration": 1,
             "b_init": "sign(u_x + u_y) of the pretrained network",
             "codes_per_subject": "one B row shared by sMRI and PET",
             "likelihood_pairs": "batch x every training subject, across modalities",
             "database_codes": "sign of the network output",
             "objective_per_subject": [round(v, 6) for v in history],
             "final_b_balance": float(b.mean()),
             **shared_hyperparameters(context)}
    return MethodRun(codes, seconds, context.config.epochs, hyper)
