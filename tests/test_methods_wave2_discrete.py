"""DSDH, ADSH, DIHN and DSCMR: terms by hand, gradients in float64, the discrete
steps against their objectives computed directly, and one smoke run each."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neurohash_lite import adsh, dihn, dscmr, dsdh, experiments
from neurohash_lite.adsh import (adsh_network_loss, adsh_similarity, adsh_v_objective, adsh_v_update,
                                 learned_database_codes, query_schedule)
from neurohash_lite.data import PairedDataset
from neurohash_lite.dihn import dihn_balance, dihn_network_loss, incremental_split
from neurohash_lite.dscmr import DSCMRLoss, DSCMRNet
from neurohash_lite.dsdh import (IndexedPairs, dsdh_b_objective, dsdh_dcc, dsdh_network_loss, dsdh_w_step,
                                 sign_codes_pm1)
from neurohash_lite.experiments import CompareConfig, compare, load_results, validate_results
from neurohash_lite.models import CrossModalHashNet
from pair_fixtures import LABELS, LIKELIHOOD, U_X, U_Y, random_codes, softplus


def random_signs(n, k, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n, k, generator=generator) < 0.5, -1.0, 1.0).double()


LABELS5 = torch.tensor([0, 1, 2, 0, 1])


# --------------------------------------------------------------------------
# DSDH
# --------------------------------------------------------------------------
def test_dsdh_network_loss_by_hand():
    b = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    total, parts = dsdh_network_loss(U_X, U_Y, U_X, U_Y, b, LABELS, LABELS, eta=0.5)
    assert parts["likelihood"].item() == pytest.approx(LIKELIHOOD, abs=1e-12)
    # b - u_x = [[0, 1], [1, -2]] -> mean of 0, 1, 1, 4 = 1.5; b - u_y = [[0, 0], [1, 0]] -> 0.25
    assert parts["quantization"].item() == pytest.approx((1.5 + 0.25) / 2)
    # eta K / n = 0.5 * 2 / 2
    assert total.item() == pytest.approx(LIKELIHOOD + 0.5 * 0.875)


def test_dsdh_network_loss_gradcheck_and_saturation():
    u_x, u_y = random_codes()[:2]
    stored_x, stored_y = random_codes(seed=1)[:2]
    stored_x, stored_y = stored_x.detach(), stored_y.detach()
    b = random_signs(5, 6, 2)
    assert torch.autograd.gradcheck(
        lambda a, c: dsdh_network_loss(a, c, stored_x, stored_y, b, LABELS5, LABELS5, eta=3.0)[0], (u_x, u_y))
    # codes at exactly +-1, equal to B (zero distance) and equal across modalities
    for dtype in (torch.float32, torch.float64):
        a, c = b.to(dtype).clone().requires_grad_(), b.to(dtype).clone().requires_grad_()
        total, _ = dsdh_network_loss(a, c, b.to(dtype), -b.to(dtype), b.to(dtype), LABELS5, LABELS5)
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(c.grad).all()


def test_dsdh_w_step_equals_least_squares():
    b, y = random_signs(7, 4, 0), torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2, 0]), 3).double()
    mu, nu = 2.0, 0.3
    w = dsdh_w_step(b, y, mu, nu)
    # ridge = least squares on the rows [B; sqrt(nu/mu) I] against [Y; 0]
    a = np.vstack([b.numpy(), math.sqrt(nu / mu) * np.eye(4)])
    rhs = np.vstack([y.numpy(), np.zeros((4, 3))])
    expected, *_ = np.linalg.lstsq(a, rhs, rcond=None)
    assert np.allclose(w.numpy(), expected, atol=1e-12)
    with pytest.raises(ValueError, match="nu"):
        dsdh_w_step(b, y, mu, 0.0)


def dcc_problem(n=6, k=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    b = random_signs(n, k, seed)
    y = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).double()
    w = torch.randn(k, 3, generator=generator, dtype=torch.float64)
    u_x = torch.rand(n, k, generator=generator, dtype=torch.float64) * 2 - 1
    u_y = torch.rand(n, k, generator=generator, dtype=torch.float64) * 2 - 1
    return b, w, y, u_x, u_y


@pytest.mark.parametrize("seed", range(5))
def test_one_dcc_sweep_decreases_the_b_objective(seed):
    b, w, y, u_x, u_y = dcc_problem(seed=seed)
    mu, eta = 1.0, 0.3  # a small eta, so that the classifier term matters
    before = dsdh_b_objective(b, w, y, u_x, u_y, mu, eta)
    after_b = dsdh_dcc(b, w, y, u_x, u_y, mu, eta)
    assert set(after_b.unique().tolist()) <= {-1.0, 1.0}
    assert dsdh_b_objective(after_b, w, y, u_x, u_y, mu, eta) <= before + 1e-12


def test_dcc_fixed_point_cannot_be_improved_by_any_column():
    # every column step is the exact minimiser over that column: at a fixed point, no column
    # of 2^n candidates does better (brute force, n = 5 subjects)
    b, w, y, u_x, u_y = dcc_problem(n=5, k=3, seed=3)
    mu, eta = 1.0, 0.2
    b = dsdh_dcc(b, w, y, u_x, u_y, mu, eta, sweeps=20)
    value = dsdh_b_objective(b, w, y, u_x, u_y, mu, eta)
    for k in range(3):
        for column in itertools.product((-1.0, 1.0), repeat=5):
            trial = b.clone()
            trial[:, k] = torch.tensor(column, dtype=torch.float64)
            assert dsdh_b_objective(trial, w, y, u_x, u_y, mu, eta) >= value - 1e-9


def test_dsdh_single_bit_dcc_by_hand():
    # K = 1: no other bits, b = sign(p), p = Y W^T + (eta/mu)(u_x + u_y)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([[0.5, -0.5]], dtype=torch.float64)                 # W: K x C = 1 x 2
    u_x = torch.tensor([[-0.2], [0.1]], dtype=torch.float64)
    u_y = torch.tensor([[-0.2], [0.3]], dtype=torch.float64)
    # p = [0.5 + 1 * (-0.4), -0.5 + 1 * 0.4] = [0.1, -0.1]
    b = dsdh_dcc(torch.ones(2, 1, dtype=torch.float64), w, y, u_x, u_y, mu=1.0, eta=1.0)
    assert b.flatten().tolist() == [1.0, -1.0]


def test_indexed_pairs_and_the_objective_store():
    torch.manual_seed(0)
    data = PairedDataset(torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32), [0, 1, 2, 0, 1, 2])
    indexed = IndexedPairs(data, [4, 1, 5])
    mri, pet, label, k = indexed[1]
    assert k == 1 and int(label) == 1 and torch.equal(mri, data.mri[1])
    with pytest.raises(ValueError, match="positions"):
        IndexedPairs(data, [6])
    net = CrossModalHashNet(4, width=0.125)
    zeros = torch.zeros(3, 4)
    objective = dsdh.DSDHObjective(torch.tensor([2, 1, 2]), zeros, zeros, torch.ones(3, 4), eta=1.0)
    batch = [torch.stack(parts) if torch.is_tensor(parts[0]) else torch.tensor(parts)
             for parts in zip(*(indexed[i] for i in range(3)))]
    total, parts = objective(net.train(), batch)
    assert torch.isfinite(total) and set(parts) == {"likelihood", "quantization"}
    assert (objective.stored()[0].abs().sum(dim=1) > 0).all()  # every row written


def test_sign_convention():
    assert sign_codes_pm1(torch.tensor([-0.5, 0.0, 2.0])).tolist() == [-1.0, 1.0, 1.0]


# --------------------------------------------------------------------------
# ADSH
# --------------------------------------------------------------------------
def test_adsh_similarity_soft_and_hard():
    # 2 similar and 4 dissimilar pairs: r = 1/2
    s = adsh_similarity([0, 1], [0, 1, 2])
    assert s.tolist() == [[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5]]
    assert adsh_similarity([0, 1], [0, 1, 2], soft=False).tolist() == [[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]]
    with pytest.raises(ValueError, match="labels_query"):
        adsh_similarity([0.5], [0])


def test_adsh_network_loss_by_hand():
    v = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    u_y = torch.tensor([[0.5, 0.5], [0.0, 0.0]], dtype=torch.float64)
    s = adsh_similarity(LABELS, LABELS)            # r = 1: [[1, -1], [-1, 1]]
    total, parts = adsh_network_loss(U_X, u_y, v, s, v, gamma=2.0)
    # u_x v^T = [[1, 1], [1, -1]], K S = [[2, -2], [-2, 2]]: residuals -1, 3, 3, -3 -> mean square 7
    # u_y v^T = [[1, 0], [0, 0]]: residuals -1, 2, 2, -2 -> 3.25
    assert parts["squared"].item() == pytest.approx((7 + 3.25) / 2)
    # v - u_x: 0, 1, 1, -2 -> 1.5; v - u_y: 0.5, 0.5, 1, -1 -> 0.625
    assert parts["quantization"].item() == pytest.approx((1.5 + 0.625) / 2)
    # gamma K / n = 2 * 2 / 2
    assert total.item() == pytest.approx(5.125 + 2.0 * 1.0625)


def test_adsh_network_loss_gradcheck_and_saturation():
    u_x, u_y = random_codes()[:2]
    v = random_signs(7, 6, 3)
    s = adsh_similarity(LABELS5, torch.tensor([0, 1, 2, 0, 1, 2, 0]))
    assert torch.autograd.gradcheck(lambda a, c: adsh_network_loss(a, c, v, s, v[:5], gamma=5.0)[0], (u_x, u_y))
    for dtype in (torch.float32, torch.float64):
        a = v[:5].to(dtype).clone().requires_grad_()
        c = v[:5].to(dtype).clone().requires_grad_()
        total, _ = adsh_network_loss(a, c, v.to(dtype), s.to(dtype), v[:5].to(dtype))
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(c.grad).all()


def v_problem(n=6, k=4, m=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1][:n])
    omega = torch.randperm(n, generator=generator)[:m].sort().values
    s = adsh_similarity(labels[omega], labels)
    u_x = torch.rand(m, k, generator=generator, dtype=torch.float64) * 2 - 1
    u_y = torch.rand(m, k, generator=generator, dtype=torch.float64) * 2 - 1
    return random_signs(n, k, seed + 10), u_x, u_y, s, omega


@pytest.mark.parametrize("seed", range(5))
def test_adsh_v_update_decreases_its_objective(seed):
    v, u_x, u_y, s, omega = v_problem(seed=seed)
    gamma = 3.0
    before = adsh_v_objective(v, u_x, u_y, s, omega, gamma)
    updated = adsh_v_update(v, u_x, u_y, s, omega, gamma)
    assert set(updated.unique().tolist()) <= {-1.0, 1.0}
    assert adsh_v_objective(updated, u_x, u_y, s, omega, gamma) <= before + 1e-9
    # from zeros (the released code's start) the update gives +-1 codes too
    assert set(adsh_v_update(torch.zeros_like(v), u_x, u_y, s, omega, gamma).unique().tolist()) <= {-1.0, 1.0}


def test_adsh_v_fixed_point_cannot_be_improved_by_any_column():
    v, u_x, u_y, s, omega = v_problem(n=5, k=3, m=3, seed=4)
    gamma = 2.0
    for _ in range(20):
        v = adsh_v_update(v, u_x, u_y, s, omega, gamma)
    value = adsh_v_objective(v, u_x, u_y, s, omega, gamma)
    for k in range(3):
        for column in itertools.product((-1.0, 1.0), repeat=5):
            trial = v.clone()
            trial[:, k] = torch.tensor(column, dtype=torch.float64)
            assert adsh_v_objective(trial, u_x, u_y, s, omega, gamma) >= value - 1e-9


def test_adsh_v_update_by_hand():
    # n = 1 database code, K = 1, Omega = {0}, s = [[1]], gamma = 1, one modality active:
    # Q = -2 K s^T u - 2 gamma u = -2 * 0.3 - 2 * 0.3 = -1.2; no other bits: v = -sign(Q) = +1
    u = torch.tensor([[0.3]], dtype=torch.float64)
    v = adsh_v_update(torch.tensor([[-1.0]], dtype=torch.float64), u, torch.zeros_like(u),
                      torch.tensor([[1.0]], dtype=torch.float64), [0], gamma=1.0)
    assert v.item() == 1.0


def test_query_schedule_matches_the_budget():
    # 240 training subjects, batches of 32, 3 epochs per sample, 15 epochs' worth of scans
    size, iterations = query_schedule(240, 32, 3, 15 * 240)
    assert (size, iterations) == (96, 13)   # 13 * 3 * 96 = 3744 scans, nearest to 3600
    assert query_schedule(29, 16, 3, 29) == (16, 1)
    assert query_schedule(10, 16, 3, 10)[0] == 10  # never more than the database


def test_learned_database_codes_replace_only_training_subjects():
    data = SimpleNamespace(train=SimpleNamespace(indices=torch.tensor([3, 5, 8])),
                           database=SimpleNamespace(indices=torch.tensor([1, 5, 8, 9])))
    codes = {("database", "mri"): np.ones((4, 2), np.int8), ("database", "pet"): -np.ones((4, 2), np.int8)}
    v = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    assert learned_database_codes(codes, data, [0, 1, 2], v) == 2
    assert codes["database", "mri"].tolist() == [[1, 1], [-1, 1], [1, -1], [1, 1]]
    assert codes["database", "pet"].tolist() == [[-1, -1], [-1, 1], [1, -1], [-1, -1]]


# --------------------------------------------------------------------------
# DIHN
# --------------------------------------------------------------------------
def test_dihn_balance_and_loss_by_hand():
    u_y = torch.tensor([[0.5, 0.5], [0.0, 0.0]], dtype=torch.float64)
    # released: mean entries 0.5 and 0.25; squared: row sums (1, 1) and (1, 0) -> 1 and 0.5
    assert dihn_balance(U_X, u_y, "released").item() == pytest.approx(0.375)
    assert dihn_balance(U_X, u_y, "squared").item() == pytest.approx(0.75)
    v = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    s = adsh_similarity(LABELS, LABELS)
    base, _ = adsh_network_loss(U_X, u_y, v, s, v, gamma=2.0)
    total, parts = dihn_network_loss(U_X, u_y, v, s, v, gamma=2.0, mu=3.0, balance="released")
    assert total.item() == pytest.approx(base.item() + 3.0 * 2 / 2 * 0.375) and "balance" in parts
    total, _ = dihn_network_loss(U_X, u_y, v, s, v, gamma=2.0, mu=3.0, balance="squared")
    assert total.item() == pytest.approx(base.item() + 3.0 / 2 * 0.75)
    with pytest.raises(ValueError, match="balance"):
        dihn_balance(U_X, u_y, "paper")


@pytest.mark.parametrize("balance", dihn.BALANCES)
def test_dihn_network_loss_gradcheck_and_saturation(balance):
    u_x, u_y = random_codes()[:2]
    v = random_signs(7, 6, 3)
    s = adsh_similarity(LABELS5, torch.tensor([0, 1, 2, 0, 1, 2, 0]))
    assert torch.autograd.gradcheck(
        lambda a, c: dihn_network_loss(a, c, v, s, v[:5], gamma=5.0, mu=2.0, balance=balance)[0], (u_x, u_y))
    a, c = v[:5].clone().requires_grad_(), v[:5].clone().requires_grad_()
    total, _ = dihn_network_loss(a, c, v, s, v[:5], balance=balance)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(c.grad).all()


def test_dihn_increment_keeps_the_original_codes_and_decreases_its_objective():
    v, u_x, u_y, s, omega = v_problem(n=8, k=4, m=4, seed=2)
    free = torch.tensor([False] * 4 + [True] * 4)
    updated = adsh_v_update(v, u_x, u_y, s, omega, 3.0, free)
    assert torch.equal(updated[:4], v[:4])
    assert adsh_v_objective(updated, u_x, u_y, s, omega, 3.0) <= adsh_v_objective(v, u_x, u_y, s, omega, 3.0) + 1e-9


def test_incremental_split_is_stratified_disjoint_and_complete():
    labels = np.array([0] * 5 + [1] * 4 + [2] * 7)
    original, incremental = incremental_split(labels, seed=0)
    assert np.array_equal(np.sort(np.r_[original, incremental]), np.arange(16))
    assert [int((labels[original] == c).sum()) for c in range(3)] == [2, 2, 3]
    assert np.array_equal(incremental_split(labels, seed=0)[0], original)
    assert not np.array_equal(incremental_split(labels, seed=1)[0], original)


# --------------------------------------------------------------------------
# DSCMR
# --------------------------------------------------------------------------
def test_dscmr_terms_by_hand():
    loss = DSCMRLoss(2, n_classes=3, alpha=0.5, beta=0.25).double()
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        loss.classifier.bias.zero_()
    total, parts = loss(U_X, U_Y, LABELS)
    # label space: P u_x = one-hot labels (norms ~0); P u_y - y = [[0, 1, 0], [0, -2, 0]] -> norms 1, 2
    assert parts["label_space"].item() == pytest.approx(1.5, abs=1e-5)
    a = 1 / (2 * math.sqrt(2))  # 1/2 cos of (1, 0) and (1, 1)
    inter = (softplus(a) - a + softplus(0.0) + softplus(a) + softplus(-0.5) + 0.5) / 4
    intra_x = (2 * (softplus(0.5) - 0.5) + 2 * softplus(0.0)) / 4       # cos(u_x, u_x) = I
    intra_y = (2 * (softplus(0.5) - 0.5) + 2 * softplus(-a)) / 4        # cos of (1, 1), (0, -1) = -1/sqrt(2)
    assert parts["common_space"].item() == pytest.approx(inter + intra_x + intra_y, abs=1e-9)
    # u_x - u_y = [[0, -1], [0, 2]] -> norms 1, 2
    assert parts["invariance"].item() == pytest.approx(1.5, abs=1e-6)
    assert total.item() == pytest.approx(1.5 + 0.5 * (inter + intra_x + intra_y) + 0.25 * 1.5, abs=1e-5)


def test_dscmr_gradcheck_and_zero_distance():
    u_x, u_y = random_codes()[:2]
    loss = DSCMRLoss(6).double()
    assert torch.autograd.gradcheck(lambda a, c: loss(a, c, LABELS5)[0], (u_x, u_y))
    signs = random_signs(5, 6, 0)
    for dtype in (torch.float32, torch.float64):
        a, c = signs.to(dtype).clone().requires_grad_(), signs.to(dtype).clone().requires_grad_()
        total, parts = DSCMRLoss(6).to(dtype)(a, c, LABELS5)  # equal representations: zero distance
        total.backward()
        assert parts["invariance"].item() == pytest.approx(1e-6, rel=1e-2)
        assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(c.grad).all()
    with pytest.raises(ValueError, match="labels"):
        DSCMRLoss(6)(u_x.float(), u_y.float(), torch.tensor([0, 1, 2, 3, 0]))


def test_dscmr_net_shares_the_common_layer():
    torch.manual_seed(0)
    net = DSCMRNet(CrossModalHashNet(8, width=0.125)).eval()
    x = torch.randn(2, 3, 32, 32)
    assert net.mri_branch.hash_layer is None and net.pet_branch.hash_layer is None
    assert torch.allclose(net.encode(x, "mri"), net.common(net.mri_branch.features(x)))
    assert torch.allclose(net.encode(x, "pet"), net.common(net.pet_branch.features(x)))
    names = {name for name, _ in net.named_parameters()}
    assert {"common.weight", "common.bias"} <= names and not any("hash_layer" in n for n in names)


# --------------------------------------------------------------------------
# One short run of each through the runner
# --------------------------------------------------------------------------
def test_each_method_runs_through_the_runner(monkeypatch, tmp_path):
    entries = {"dsdh": ("DSDH", dsdh.run), "adsh": ("ADSH", adsh.run), "dihn": ("DIHN", dihn.run),
               "dscmr": ("DSCMR", dscmr.run)}
    for key, (name, entry) in entries.items():
        monkeypatch.setitem(experiments.METHODS, key, experiments.Method(name, entry))
    path = tmp_path / "r.json"
    compare(CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu",
                          methods=("random", *entries)), path, verbose=False)
    results = load_results(path)
    validate_results(results)
    runs = {run["method"]: run for run in results["runs"]}
    assert set(runs) == {"random", *entries}
    for key in entries:
        assert runs[key]["status"] == "done", key
        assert runs[key]["hyperparameters"]["epochs"] == 1
    assert runs["adsh"]["hyperparameters"]["database_entries_with_learned_codes"] > 0  # ahs: train in database
    assert runs["dihn"]["hyperparameters"]["original_subjects"] > 0
