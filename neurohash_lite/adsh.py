"""Asymmetric Deep Supervised Hashing (ADSH), cross-modal.

Jiang & Li (2018) treat queries and database points asymmetrically: a deep
network hashes the *queries*, ``u_i = tanh(F(x_i; theta))``, while the codes
``V`` of the *database* points are learned directly, as free binary
variables. With ``Gamma`` the database and ``Omega`` a query set sampled from
it afresh at every outer iteration, the objective is

``min_{theta, V}  J = sum_{i in Omega} sum_{j in Gamma} (u_i^T v_j - K S_ij)^2
                     + gamma sum_{i in Omega} ||v_i - u_i||^2``,   ``V in {-1, +1}^{n x K}``,

(the squared loss between the inner product and ``K S_ij``; the second term
ties each sampled query to its own database code). It is minimised by
alternating

- **the network** (``V`` fixed): a few epochs of back-propagation on the
  sampled queries (:func:`adsh_network_loss`);
- **V** (``theta`` fixed): rewritten as
  ``||V Utilde^T||_F^2 + tr(V Q^T) + const`` with
  ``Q = -2 K S^T Utilde - 2 gamma Ubar`` (``Utilde`` the sampled queries'
  outputs, ``Ubar`` the n x K matrix holding them in the rows of ``Omega``
  and zeros elsewhere), and solved column by column:
  ``V_{*k} = -sign(2 Vhat_k Uhat_k^T u_k + Q_{*k})``, each column the exact
  minimiser given the others (:func:`adsh_v_update`), so the objective of
  the V sub-problem never increases.

Sources: the paper (AAAI 2018, "Model formulation" and "Learning
algorithm"; its text could not be opened here, so no equation numbers are
cited) and the authors' released code, https://github.com/jiangqy/ADSH-AAAI2018
(``ADSH_pytorch/ADSH_CIFAR_10.py``: the V update and ``calc_sim``;
``ADSH_matlab/process_ADSH.m``). No code was copied. One detail of the
released code is kept: the **soft similarity** ``S_ij = 1`` for a similar
pair and ``-r`` for a dissimilar one, ``r = |S_1| / |S_0|`` over the sampled
block (the code's "soft constraint"; the paper writes ``S_ij in {-1, +1}``,
``soft_similarity=False``). With three diagnoses a dissimilar target of
``-K`` cannot hold for all three pairs of classes at once; ``-r K`` (about
``-K/2`` here) is closer to what three codes can reach.

Two modalities and three diagnoses
----------------------------------
- **Two query networks, one database code per subject**: the training
  subjects are the database ``Gamma``; row ``v_j`` of ``V`` is the code of
  subject j in *both* modalities (its sMRI and its PET scan are one database
  entry). The sMRI branch and the PET branch are both query networks,
  trained against the same ``V``: ``J`` sums the squared and quantization
  terms over both modalities, and the V update uses ``Utilde^x + Utilde^y``
  in ``Q`` and ``Utilde^x^T Utilde^x + Utilde^y^T Utilde^y`` in the
  quadratic term. Sharing ``V`` is what aligns the two branches.
- ``S_ij`` from the diagnoses (equal: similar).

The database of the book's test protocol
----------------------------------------
ADSH's own experiments sample the training queries *from* the database, so
every database point has a learned code. Here the retrieval database holds
scans the training never sees (the ``dcpha`` protocol: the test subjects;
the ``ahs`` protocol: the validation subjects besides the training ones).
``V`` cannot be learned for them honestly: its update needs ``S_ij``, that
is the unseen subjects' diagnoses, which would leak the labels being
retrieved. So their codes come from the only other thing ADSH learns, the
query networks: ``sign(u)`` of each scan through its modality's branch.
Database entries that *are* training subjects (the ``ahs`` protocol) keep
their learned ``v_j`` in both modalities, as ADSH intends
(``database_codes="network"`` codes them with the networks too); the
hyper-parameters record how many entries came from each.

Hyper-parameters and budget
---------------------------
``gamma = 200`` (the paper's choice, and the released code's default). The
released code samples 2000 queries per outer iteration from a database of
tens of thousands, trains 3 epochs on them, for 50 iterations. Here each
outer iteration samples ``|Omega|`` training subjects (a multiple of the
batch size near a third of the training set), trains 3 epochs on them
(:func:`~neurohash_lite.train.fit`, Adam restarted each iteration), then
updates ``V``; the number of iterations is chosen so that the network sees
as many scans as ``config.epochs`` epochs over the training set would show
it (:func:`query_schedule`). The network step divides ``J``'s sums by
``2 b n`` (``L = L_sq + gamma (K / n) L_q``, means over pairs and entries),
which Adam does not see.

One change to the start: the released code starts from ``V = 0``, where
the squared term has no gradient and the quantization term pulls every
output to 0 for the whole first outer iteration. With a dozen iterations
instead of 50 that is a large share of the budget, so here the first V
update is made *before* the first network step, from the pretrained
network's outputs on the first sampled ``Omega`` (one forward pass).

References
----------
Jiang Q.-Y., Li W.-J. (2018). Asymmetric Deep Supervised Hashing. AAAI.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from .dsdh import (IndexedPairs, _as_float, _no_autocast, iteration_seed, network_outputs,
                   recalibrate_on_training_set)
from .losses.ahs import _check_pair
from .runner import MethodRun, RunContext, pretrained_network, shared_hyperparameters, deep_codes, train_config
from .train import fit

__all__ = ["GAMMA", "INNER_EPOCHS", "DATABASE_CODES", "adsh_similarity", "adsh_network_loss", "adsh_v_objective",
           "adsh_v_update", "query_schedule", "AsymmetricObjective", "AsymmetricTraining", "train_asymmetric",
           "learned_database_codes", "run"]

#: Weight of the quantization term (the paper; the released code's default).
GAMMA = 200.0
#: Network epochs on each sampled query set (the released code's ``epochs``).
INNER_EPOCHS = 3
#: Where the codes of database entries that are training subjects come from.
DATABASE_CODES = ("learned", "network")


# --------------------------------------------------------------------------
# The objective's pieces
# --------------------------------------------------------------------------
def adsh_similarity(labels_query, labels_database, soft: bool = True) -> torch.Tensor:
    """ADSH's target ``S``: 1 for equal diagnoses, else -1 or, soft, ``-r``.

    ``r = |S_1| / |S_0|``, the ratio of similar to dissimilar pairs of the
    block (the released code's soft constraint); ``r = 1`` when the block has
    no dissimilar pair.

    Parameters
    ----------
    labels_query : array-like of int, (m,)
    labels_database : array-like of int, (n,)
    soft : bool, default True

    Returns
    -------
    torch.Tensor, float64, (m, n)
    """
    labels_query = torch.as_tensor(labels_query)
    labels_database = torch.as_tensor(labels_database, device=labels_query.device)
    for name, labels in (("labels_query", labels_query), ("labels_database", labels_database)):
        if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"{name} must be a 1-D array of integer labels, got {labels.dtype} "
                             f"of shape {tuple(labels.shape)}")
    same = (labels_query[:, None] == labels_database[None, :]).double()
    n_dissimilar = float((1 - same).sum())
    r = float(same.sum()) / n_dissimilar if (soft and n_dissimilar > 0) else 1.0
    return same * (1 + r) - r


def adsh_network_loss(u_x, u_y, v, s, v_batch, gamma: float = GAMMA):
    """The network step's loss: ``L = L_sq + gamma (K / n) L_q``.

    ``L_sq``: mean over both modalities and all (batch query, database code)
    pairs of ``(u_i^T v_j - K S_ij)^2``; ``L_q``: mean over both modalities of
    the mean squared entry of ``v_i - u_i`` (``v_i`` the query's own database
    code). Equal to the batch's share of ``J`` divided by ``2 b n``.

    Parameters
    ----------
    u_x, u_y : torch.Tensor, (b, K)
        The batch's sMRI and PET outputs.
    v : torch.Tensor, (n, K), ±1
        The database codes (constants).
    s : torch.Tensor, (b, n)
        The batch's rows of the target ``S``.
    v_batch : torch.Tensor, (b, K)
        The batch subjects' own database codes.
    gamma : float

    Returns
    -------
    total : torch.Tensor, scalar
    parts : dict
        ``squared``, ``quantization`` (detached).

    References
    ----------
    Jiang & Li (2018), the objective with the sampled query set.
    """
    u_x, u_y = _as_float(u_x), _as_float(u_y)
    _check_pair(u_x, u_y)
    _check_pair(u_x, v)
    if u_x.shape != u_y.shape or v_batch.shape != u_x.shape:
        raise ValueError(f"u_x, u_y and v_batch must share one shape, got {tuple(u_x.shape)}, "
                         f"{tuple(u_y.shape)}, {tuple(v_batch.shape)}")
    n_subjects, n_bits = v.shape
    v, v_batch = v.to(u_x.dtype), v_batch.to(u_x.dtype)
    s = torch.as_tensor(s, device=u_x.device).to(u_x.dtype)
    if s.shape != (u_x.shape[0], n_subjects):
        raise ValueError(f"s must have shape {(u_x.shape[0], n_subjects)}, got {tuple(s.shape)}")
    squared = (((u_x @ v.T - n_bits * s) ** 2).mean() + ((u_y @ v.T - n_bits * s) ** 2).mean()) / 2
    quantization = (((v_batch - u_x) ** 2).mean() + ((v_batch - u_y) ** 2).mean()) / 2
    total = squared + gamma * n_bits / n_subjects * quantization
    return total, {"squared": squared.detach(), "quantization": quantization.detach()}


def adsh_v_objective(v, u_x, u_y, s, omega, gamma: float = GAMMA) -> torch.Tensor:
    """The V sub-problem's objective, computed directly:
    ``sum_m ||U^m V^T - K S||_F^2 + gamma sum_m ||V_Omega - U^m||_F^2`` over m in {sMRI, PET}.

    Parameters
    ----------
    v : torch.Tensor, (n, K)
    u_x, u_y : torch.Tensor, (|Omega|, K)
        Outputs of the sampled queries.
    s : torch.Tensor, (|Omega|, n)
    omega : array-like of int, (|Omega|,)
        Database rows of the sampled queries.
    gamma : float
    """
    omega = torch.as_tensor(omega, device=v.device)
    n_bits = v.shape[1]
    total = v.new_zeros(())
    for u in (u_x, u_y):
        total = total + ((u @ v.T - n_bits * s) ** 2).sum() + gamma * ((v[omega] - u) ** 2).sum()
    return total


def adsh_v_update(v, u_x, u_y, s, omega, gamma: float = GAMMA, free=None) -> torch.Tensor:
    """One pass of the column-wise V update.

    ``Q = -2 K S^T (U^x + U^y) - 2 gamma (Ubar^x + Ubar^y)``,
    ``A = U^x^T U^x + U^y^T U^y``; for each bit k,
    ``V_{*k} = -sign(2 Vhat_k A_{-k,k} + Q_{*k})`` (``Vhat_k``: ``V`` without
    column k; ``-sign(0)`` taken as +1, where both values are optimal). Each
    column is the exact minimiser of :func:`adsh_v_objective` given the
    others; the objective separates over rows, so ``free`` restricts the
    update to some rows (DIHN's incremental codes) and leaves the others as
    they are.

    Parameters
    ----------
    v : torch.Tensor, (n, K)
        Current codes (not modified; zeros allowed as a start).
    u_x, u_y : torch.Tensor, (|Omega|, K)
    s : torch.Tensor, (|Omega|, n)
    omega : array-like of int, (|Omega|,), distinct
    gamma : float
    free : array-like of bool, (n,), optional
        Rows to update (default all).

    Returns
    -------
    torch.Tensor, (n, K), ±1 on the free rows

    References
    ----------
    Jiang & Li (2018), the V sub-problem; the released ``ADSH_CIFAR_10.py``.
    """
    omega = torch.as_tensor(omega, device=v.device)
    if len(torch.unique(omega)) != len(omega):
        raise ValueError("omega must list distinct database rows")
    n_subjects, n_bits = v.shape
    free = torch.ones(n_subjects, dtype=torch.bool, device=v.device) if free is None else \
        torch.as_tensor(free, dtype=torch.bool, device=v.device)
    u_sum = u_x + u_y
    u_bar = torch.zeros_like(v)
    u_bar[omega] = u_sum.to(v.dtype)
    q = -2 * n_bits * s.T.to(v.dtype) @ u_sum.to(v.dtype) - 2 * gamma * u_bar
    a = (u_x.T @ u_x + u_y.T @ u_y).to(v.dtype)
    v = v.clone()
    for k in range(n_bits):
        others = torch.arange(n_bits, device=v.device) != k
        c = 2 * v[:, others] @ a[others, k] + q[:, k]
        v[free, k] = torch.where(c > 0, -1.0, 1.0).to(v.dtype)[free]
    return v


def query_schedule(n_database: int, batch_size: int, inner_epochs: int, visits: float) -> tuple[int, int]:
    """``(|Omega|, T)``: the sampled query set's size and the number of outer iterations.

    ``|Omega|`` is the multiple of the batch size nearest to
    ``n_database / inner_epochs`` (at least one batch, at most the database);
    ``T`` the number of iterations whose ``T * inner_epochs * |Omega|`` scans
    come nearest to ``visits`` (at least 1).
    """
    if n_database < 2:
        raise ValueError(f"the database needs at least two subjects, got {n_database}")
    batches = max(1, math.floor(n_database / (inner_epochs * batch_size) + 0.5))
    size = min(n_database, batch_size * batches)
    return size, max(1, math.floor(visits / (inner_epochs * size) + 0.5))


class AsymmetricObjective(nn.Module):
    """The network step of ADSH (and DIHN) for :func:`~neurohash_lite.train.fit`.

    On an :class:`~neurohash_lite.dsdh.IndexedPairs` batch ``(mri, pet,
    labels, k)`` over the sampled queries (``k``: position in ``Omega``), it
    stores the batch's outputs (the V update uses them) and returns
    ``loss(u_x, u_y, v, s[k], v[omega[k]])``.

    Parameters
    ----------
    v : torch.Tensor, (n, K)
    s : torch.Tensor, (|Omega|, n)
    omega : array-like of int, (|Omega|,)
    loss : callable
        ``loss(u_x, u_y, v, s_batch, v_batch) -> (total, parts)``, e.g.
        ``functools.partial(adsh_network_loss, gamma=200)``.
    """

    def __init__(self, v, s, omega, loss):
        super().__init__()
        omega = torch.as_tensor(omega, dtype=torch.long)
        self.loss = loss
        self.register_buffer("v", v.detach().float().clone())
        self.register_buffer("s", torch.as_tensor(s).float().clone())
        self.register_buffer("omega", omega.clone())
        self.register_buffer("u_x", torch.zeros(len(omega), v.shape[1]))
        self.register_buffer("u_y", torch.zeros(len(omega), v.shape[1]))

    def stored(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The sampled queries' last outputs, float64 on the CPU."""
        return self.u_x.detach().cpu().double(), self.u_y.detach().cpu().double()

    def forward(self, model: nn.Module, batch):
        mri, pet, _, k = batch
        u_x, u_y = model.encode(mri, "mri"), model.encode(pet, "pet")
        with _no_autocast(u_x):
            u_x, u_y = u_x.float(), u_y.float()
            self.u_x[k] = u_x.detach()
            self.u_y[k] = u_y.detach()
            return self.loss(u_x, u_y, self.v, self.s[k], self.v[self.omega[k]])


@dataclasses.dataclass
class AsymmetricTraining:
    """What :func:`train_asymmetric` returns.

    Attributes
    ----------
    v : torch.Tensor, (n, K), float64, ±1
        The database codes, in the order of ``rows``.
    query_size : int
        ``|Omega|``.
    iterations : int
        Outer iterations T.
    network_epochs : int
        Epochs over sampled query sets, ``T * inner_epochs``.
    objective : list of float
        The V sub-problem's objective after each V update, per (query, database) pair.
    """

    v: torch.Tensor
    query_size: int
    iterations: int
    network_epochs: int
    objective: list


def train_asymmetric(network: nn.Module, context: RunContext, rows, v, *, loss, visits: float, free=None,
                     soft_similarity: bool = True, gamma: float = GAMMA, inner_epochs: int = INNER_EPOCHS,
                     stream: int = 0) -> AsymmetricTraining:
    """ADSH's alternation on a database of training subjects (ADSH, and each stage of DIHN).

    Parameters
    ----------
    network : nn.Module
        The query networks (``encode(x, modality)``); trained in place.
    context : neurohash_lite.runner.RunContext
    rows : array-like of int, (n,)
        The database: positions in ``context.data.train``; row j of ``v`` is
        the code of subject ``rows[j]``.
    v : torch.Tensor, (n, K)
        Start codes (zeros: none yet).
    loss : callable
        The network step's loss (see :class:`AsymmetricObjective`).
    visits : float
        Scans the network should see in all (:func:`query_schedule`).
    free : array-like of bool, (n,), optional
        Rows of ``v`` to learn (default all; DIHN keeps its original codes fixed).
    soft_similarity : bool
    gamma : float
        Quantization weight of the V update.
    inner_epochs : int
    stream : int
        Separates the random query samples of different calls.

    Returns
    -------
    AsymmetricTraining
    """
    data = context.data
    rows = np.asarray(rows, dtype=np.int64)
    labels = data.train.labels[data.train.indices][torch.as_tensor(rows)]
    n = len(rows)
    v = v.detach().double().clone()
    size, iterations = query_schedule(n, context.tier.batch_size, inner_epochs, visits)
    rng = np.random.default_rng(np.random.SeedSequence([int(data.seed), 2018, int(stream)]))
    history = []
    for iteration in range(iterations):
        omega = np.sort(rng.permutation(n)[:size])
        s = adsh_similarity(labels[torch.as_tensor(omega)], labels, soft_similarity)
        if iteration == 0:  # the first V update, from the starting network (see the module docstring)
            u_x, u_y = network_outputs(network, Subset(data.train, rows[omega].tolist()), context.device,
                                       batch_size=max(context.tier.batch_size, 64))
            v = adsh_v_update(v, u_x, u_y, s, omega, gamma, free)
        objective = AsymmetricObjective(v, s, omega, loss)
        config = dataclasses.replace(train_config(context, inner_epochs),
                                     seed=iteration_seed(data.seed * 7 + stream, iteration), recalibrate=False)
        fit(network, objective, IndexedPairs(data.train, rows[omega]), config)
        u_x, u_y = objective.stored()
        v = adsh_v_update(v, u_x, u_y, s, omega, gamma, free)
        history.append(float(adsh_v_objective(v, u_x, u_y, s, omega, gamma)) / (2 * size * n))
    return AsymmetricTraining(v, size, iterations, iterations * inner_epochs, history)


def learned_database_codes(codes: dict, data, train_positions, v) -> int:
    """Put the learned code of every database entry that is a training subject
    into ``codes`` (both modalities), in place.

    Parameters
    ----------
    codes : dict
        :class:`~neurohash_lite.runner.MethodRun` codes (the network's).
    data : neurohash_lite.runner.SeedData
    train_positions : array-like of int, (n,)
        Position in ``data.train`` of the subject of row j of ``v``.
    v : torch.Tensor or ndarray, (n, K), ±1

    Returns
    -------
    int
        How many database entries took a learned code.
    """
    v = np.asarray(v.cpu() if torch.is_tensor(v) else v)
    row_of = {int(data.train.indices[p]): j for j, p in enumerate(np.asarray(train_positions))}
    replaced = 0
    for r, index in enumerate(np.asarray(data.database.indices)):
        j = row_of.get(int(index))
        if j is not None:
            code = np.where(v[j] >= 0, 1, -1).astype(np.int8)
            codes["database", "mri"][r] = code
            codes["database", "pet"][r] = code
            replaced += 1
    return replaced


# --------------------------------------------------------------------------
# The comparison's entry point
# --------------------------------------------------------------------------
def run(context: RunContext, n_bits: int, *, gamma: float = GAMMA, inner_epochs: int = INNER_EPOCHS,
        soft_similarity: bool = True, database_codes: str = "learned") -> MethodRun:
    """ADSH on the seed's training set (the database), from the pretrained branches.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    gamma : float
    inner_epochs : int
        Network epochs per sampled query set.
    soft_similarity : bool
        The released code's ``-r`` for dissimilar pairs (default) or the paper's -1.
    database_codes : {"learned", "network"}
        Database entries that are training subjects take their learned ``V``
        row (ADSH's design, default) or, like every other scan, the sign of
        the network (only differs under the ``ahs`` protocol).

    Returns
    -------
    neurohash_lite.runner.MethodRun
        Query codes from the networks; database codes learned (``V``) for
        training subjects, from the networks for every other scan.
    """
    if database_codes not in DATABASE_CODES:
        raise ValueError(f"database_codes={database_codes!r} must be one of {DATABASE_CODES}")
    data = context.data
    network = pretrained_network(context, n_bits)
    started = time.perf_counter()
    n = len(data.train)
    rows = np.arange(n)
    training = train_asymmetric(network, context, rows, torch.zeros(n, n_bits, dtype=torch.float64),
                                loss=partial(adsh_network_loss, gamma=gamma), visits=context.config.epochs * n,
                                soft_similarity=soft_similarity, gamma=gamma, inner_epochs=inner_epochs)
    recalibrate_on_training_set(network, context)
    codes = deep_codes(network, data, context.device)
    learned = learned_database_codes(codes, data, rows, training.v) if database_codes == "learned" else 0
    seconds = data.pretrain_seconds + time.perf_counter() - started
    hyper = {"method": "ADSH", "gamma": gamma, "soft_similarity": soft_similarity, "database_codes": database_codes,
             "query_sample_size": training.query_size, "outer_iterations": training.iterations,
             "inner_epochs": inner_epochs, "network_epochs_on_samples": training.network_epochs,
             "training_set_epochs_equivalent": round(training.network_epochs * training.query_size / n, 3),
             "v_init": "V update from the pretrained network on the first sampled query set",
             "database": "the training subjects, one V row shared by sMRI and PET",
             "database_code_rule": "learned V for training subjects (database_codes='learned'), "
                                   "sign of the network otherwise",
             "database_entries_with_learned_codes": learned,
             "database_entries_from_network": int(len(data.database) - learned),
             "v_objective_per_pair": [round(x, 6) for x in training.objective],
             **shared_hyperparameters(context)}
    return MethodRun(codes, seconds, training.network_epochs, hyper)
