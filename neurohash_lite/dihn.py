"""Deep Incremental Hashing Network (DIHN), cross-modal.

Wu, Dai, Liu, Li & Wang (2019) add new images (of new classes) to a hashed
database *without re-coding the old ones*: the codes ``B^o`` of the original
database stay fixed, the codes ``B^u`` of the incremental images are learned
directly, and a new deep hash function for queries is trained against both.
Built on ADSH's asymmetric loss (:mod:`neurohash_lite.adsh`), with
``Gamma = Gamma^o + Gamma^u`` and a query set ``Omega`` sampled from all of it
at each outer iteration, the incremental objective is

``min_{theta, B^u}  J = sum_{i in Omega} [ sum_{j in Gamma^o} (u_i^T b^o_j - K S_ij)^2
                                          + sum_{j in Gamma^u} (u_i^T b^u_j - K S_ij)^2 ]
                       + gamma sum_{i in Omega} ||b_i - u_i||^2 + mu R(U)``,

the two squared sums (the incremental hashing loss over original and
incremental images), the quantization term tying each sampled query to its
own database code (fixed if original, learned if incremental) and a bit
term ``R`` weighted by ``mu``. It alternates the network step with a
column-wise discrete update of ``B^u`` alone
(:func:`~neurohash_lite.adsh.adsh_v_update` with ``free`` the incremental
rows: ``J`` separates over database rows, so the fixed ``B^o`` only enters
through the network step).

Sources: the paper (CVPR 2019; its text could not be opened here, so the
objective above is written from its abstract and the authors' released
code, and no equation numbers are cited) and the authors' code,
https://github.com/IIE-MR/DIHN (``dihn.py``: ``increment``, ``solve_dcc``;
``models/dihn_loss.py``; ``run.py``: ADSH first makes the original codes,
then the increment trains a *fresh* network against them). No code was
copied. Two details follow the released code:

- the soft similarity of :func:`~neurohash_lite.adsh.adsh_similarity`
  (``-r`` for dissimilar pairs);
- ``R``: the released ``correlation_loss`` is ``sum_i u_i^T 1``, not squared,
  which rewards every bit for being -1; with ``mu = 50`` and the code's
  normalisation its gradient is below 1 % of the squared loss's, so it
  hardly acts. ``balance="released"`` (default) keeps it;
  ``balance="squared"`` uses ``sum_i (u_i^T 1)^2`` (each code with as many +1
  as -1 bits), the usual form of such a term. Which of the two the paper
  prints could not be checked.

The increment used here
-----------------------
The cohort has no new classes arriving. The increment is the **second half
of the training subjects**: the training subjects are split in two halves
(stratified by diagnosis, from the seed); stage 1 is ADSH on the first half
(the original database ``Gamma^o``), whose codes ``B^o`` are then frozen;
stage 2 is DIHN's increment: a fresh query network (from the same pretrained
branches, as the released code restarts from ImageNet weights) and the
second half's codes ``B^u`` learned against the fixed ``B^o``, with queries
sampled from both halves. The other reading, the test scans arriving after
training as the increment, is not honest: learning ``B^u`` needs their
``S_ij``, i.e. the diagnoses of the scans being retrieved. Each stage gets
half of the comparison's budget of scans (``config.epochs`` epochs over the
training set), both measured as in :func:`~neurohash_lite.adsh.query_schedule`.

Two modalities and three diagnoses
----------------------------------
As in :mod:`neurohash_lite.adsh`: the sMRI and PET branches are both query
networks; one database code per training subject, shared by its two scans
(``B^o`` and ``B^u`` rows alike); ``S_ij`` from the diagnoses. Query codes
come from the stage-2 networks; database entries that are training subjects
(``ahs`` protocol) keep their learned code (``B^o`` or ``B^u``), every other
database scan is coded by the stage-2 network of its modality (see
:mod:`neurohash_lite.adsh` for why that is the only honest option).

Hyper-parameters
----------------
``gamma = 200``, ``mu = 50`` (the released code's defaults), 3 network
epochs per sampled query set. The network step divides ``J`` by ``2 b n``:
``L = L_sq + gamma (K / n) L_q + mu (K / n) mean(u)`` (released ``R``) or
``+ mu (1 / n) mean_i (u_i^T 1)^2`` (squared). As in ADSH here, each stage's
first code update is made from its starting network's outputs before the
first network step (the released code draws random ``B^u``).

References
----------
Wu D., Dai Q., Liu J., Li B., Wang W. (2019). Deep Incremental Hashing
Network for Efficient Image Retrieval. CVPR, 9061-9069.
Jiang Q.-Y., Li W.-J. (2018). Asymmetric Deep Supervised Hashing. AAAI.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch

from .adsh import (DATABASE_CODES, GAMMA, INNER_EPOCHS, adsh_network_loss, learned_database_codes,
                   train_asymmetric)
from .dsdh import recalibrate_on_training_set
from .runner import MethodRun, RunContext, pretrained_network, shared_hyperparameters, deep_codes

__all__ = ["MU", "BALANCES", "dihn_balance", "dihn_network_loss", "incremental_split", "run"]

#: Weight of the bit term (the released code's default).
MU = 50.0
#: The bit term: as released (``sum_i u_i^T 1``) or squared (``sum_i (u_i^T 1)^2``).
BALANCES = ("released", "squared")


def dihn_balance(u_x: torch.Tensor, u_y: torch.Tensor, balance: str = "released") -> torch.Tensor:
    """The bit term ``R`` as a mean over both modalities' rows.

    ``"released"``: mean of the entries of ``u`` (``sum_i u_i^T 1`` divided by
    the number of entries); ``"squared"``: mean over rows of ``(u_i^T 1)^2``.
    """
    if balance not in BALANCES:
        raise ValueError(f"balance={balance!r} must be one of {BALANCES}")
    if balance == "released":
        return (u_x.mean() + u_y.mean()) / 2
    return ((u_x.sum(dim=1) ** 2).mean() + (u_y.sum(dim=1) ** 2).mean()) / 2


def dihn_network_loss(u_x, u_y, v, s, v_batch, gamma: float = GAMMA, mu: float = MU, balance: str = "released"):
    """The network step of the increment: ADSH's loss plus the bit term.

    ``L = L_sq + gamma (K / n) L_q + mu (K / n) R`` with the released ``R``,
    or ``+ mu (1 / n) R`` with the squared one: the batch's share of ``J``
    divided by ``2 b n``. ``v`` holds the original codes (fixed) and the
    incremental ones (current) of every database subject.

    Parameters
    ----------
    u_x, u_y, v, s, v_batch, gamma
        As :func:`~neurohash_lite.adsh.adsh_network_loss`.
    mu : float
    balance : {"released", "squared"}

    Returns
    -------
    total : torch.Tensor, scalar
    parts : dict
        ``squared``, ``quantization``, ``balance`` (detached).
    """
    total, parts = adsh_network_loss(u_x, u_y, v, s, v_batch, gamma)
    u_x, u_y = u_x.to(total.dtype), u_y.to(total.dtype)
    n_subjects, n_bits = v.shape
    term = dihn_balance(u_x, u_y, balance)
    scale = n_bits / n_subjects if balance == "released" else 1.0 / n_subjects
    return total + mu * scale * term, {**parts, "balance": term.detach()}


def incremental_split(labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training positions of the original and the incremental halves.

    Each diagnosis is shuffled (from ``seed``) and its first ``floor(n_c / 2)``
    subjects go to the original database, the rest to the increment.

    Returns
    -------
    original, incremental : int64 ndarrays, sorted, disjoint, together every position
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2019]))
    original, incremental = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        original.append(members[: len(members) // 2])
        incremental.append(members[len(members) // 2:])
    original, incremental = np.sort(np.concatenate(original)), np.sort(np.concatenate(incremental))
    if len(original) < 2:
        raise ValueError(f"the original half needs at least two subjects, got {len(original)}")
    return original.astype(np.int64), incremental.astype(np.int64)


def run(context: RunContext, n_bits: int, *, gamma: float = GAMMA, mu: float = MU, balance: str = "released",
        inner_epochs: int = INNER_EPOCHS, soft_similarity: bool = True, database_codes: str = "learned") -> MethodRun:
    """DIHN on the seed's training set: ADSH on one half, then the increment.

    Parameters
    ----------
    context : neurohash_lite.runner.RunContext
    n_bits : int
    gamma, mu : float
    balance : {"released", "squared"}
    inner_epochs : int
    soft_similarity : bool
    database_codes : {"learned", "network"}
        As :func:`neurohash_lite.adsh.run`.

    Returns
    -------
    neurohash_lite.runner.MethodRun
    """
    if balance not in BALANCES:
        raise ValueError(f"balance={balance!r} must be one of {BALANCES}")
    if database_codes not in DATABASE_CODES:
        raise ValueError(f"database_codes={database_codes!r} must be one of {DATABASE_CODES}")
    data = context.data
    n = len(data.train)
    original, incremental = incremental_split(data.train.labels[data.train.indices].numpy(), data.seed)
    budget = context.config.epochs * n / 2
    # stage 1: ADSH on the original database; its codes are then frozen
    network = pretrained_network(context, n_bits)
    started = time.perf_counter()
    stage1 = train_asymmetric(network, context, original, torch.zeros(len(original), n_bits, dtype=torch.float64),
                              loss=partial(adsh_network_loss, gamma=gamma), visits=budget,
                              soft_similarity=soft_similarity, gamma=gamma, inner_epochs=inner_epochs, stream=1)
    seconds = time.perf_counter() - started
    # stage 2: a fresh query network; B^u learned against the fixed B^o
    network = pretrained_network(context, n_bits)
    started = time.perf_counter()
    rows = np.concatenate([original, incremental])
    v = torch.cat([stage1.v, torch.zeros(len(incremental), n_bits, dtype=torch.float64)])
    free = np.r_[np.zeros(len(original), bool), np.ones(len(incremental), bool)]
    stage2 = train_asymmetric(network, context, rows, v,
                              loss=partial(dihn_network_loss, gamma=gamma, mu=mu, balance=balance), visits=budget,
                              free=free, soft_similarity=soft_similarity, gamma=gamma, inner_epochs=inner_epochs,
                              stream=2)
    if not torch.equal(stage2.v[: len(original)], stage1.v):
        raise RuntimeError("the original codes changed during the increment")
    recalibrate_on_training_set(network, context)
    codes = deep_codes(network, data, context.device)
    learned = learned_database_codes(codes, data, rows, stage2.v) if database_codes == "learned" else 0
    seconds += data.pretrain_seconds + time.perf_counter() - started
    hyper = {"method": "DIHN", "gamma": gamma, "mu": mu, "balance": balance, "soft_similarity": soft_similarity,
             "database_codes": database_codes,
             "inner_epochs": inner_epochs,
             "increment": "second half of the training subjects (stratified); first half = original database",
             "original_subjects": len(original), "incremental_subjects": len(incremental),
             "stage1_query_sample_size": stage1.query_size, "stage1_outer_iterations": stage1.iterations,
             "stage2_query_sample_size": stage2.query_size, "stage2_outer_iterations": stage2.iterations,
             "stage2_network": "fresh from the pretrained branches (the released code restarts)",
             "database": "the training subjects, one code per subject shared by sMRI and PET",
             "database_code_rule": "learned B^o / B^u for training subjects (database_codes='learned'), "
                                   "sign of the stage-2 network otherwise",
             "database_entries_with_learned_codes": learned,
             "database_entries_from_network": int(len(data.database) - learned),
             "stage2_objective_per_pair": [round(x, 6) for x in stage2.objective],
             **shared_hyperparameters(context)}
    return MethodRun(codes, seconds, stage1.network_epochs + stage2.network_epochs, hyper)
