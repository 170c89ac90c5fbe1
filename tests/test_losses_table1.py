"""Table I's deep baselines PGDH (PRDH) and CMHH: every term by hand, gradients in float64, runs through the runner."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from neurohash_lite import experiments
from neurohash_lite.experiments import CompareConfig, compare, load_results, validate_results
from neurohash_lite.losses.cmhh import (
    LOG_FLOOR,
    CMHHLoss,
    cmhh_focal_loss,
    cmhh_hamming_distance,
    cmhh_quantization_loss,
)
from neurohash_lite.losses.pgdh import PGDHLoss, pgdh_decorrelation_loss, pgdh_pairwise_loss
from neurohash_lite.runner import run_loss
from pair_fixtures import LABELS, U_X, U_Y, random_codes, softplus


# --------------------------------------------------------------------------
# PGDH (PRDH)
# --------------------------------------------------------------------------
# J_1: Omega^xy = 1/2 u_x u_y^T = [[0.5, 0], [0.5, -0.5]], s = I
INTER = (softplus(0.5) - 0.5 + softplus(0.0) + softplus(0.5) + softplus(-0.5) + 0.5) / 4
# J_2: Omega^x = 1/2 u_x u_x^T = [[0.5, 0], [0, 0.5]], s = I
INTRA_MRI = (softplus(0.5) - 0.5 + softplus(0.0) + softplus(0.0) + softplus(0.5) - 0.5) / 4
# J_3: Omega^y = 1/2 u_y u_y^T = [[1, -0.5], [-0.5, 0.5]], s = I
INTRA_PET = (softplus(1.0) - 1.0 + softplus(-0.5) + softplus(-0.5) + softplus(0.5) - 0.5) / 4
# J_4: u_x centred [[0.5, -0.5], [-0.5, 0.5]] -> C = [[0.25, -0.25], [-0.25, 0.25]],
#      1/2 (2 * 0.25^2) / (K (K - 1) = 2) = 0.03125;
#      u_y centred [[0.5, 1], [-0.5, -1]] -> C = [[0.25, 0.5], [0.5, 1]], 1/2 (2 * 0.5^2) / 2 = 0.125
DECORRELATION = 0.03125 + 0.125
# R: B = sign(u_x + u_y) = sign([[2, 1], [0, 0]]) = all +1; ||u_x - B||^2 = 2, ||u_y - B||^2 = 5 over n K = 4;
#    bit means u_x (0.5, 0.5) -> 0.25, u_y (0.5, 0) -> 0.125
QUANTIZATION, BALANCE = 7 / 4, 0.375


def test_pgdh_terms_by_hand():
    total, parts = PGDHLoss(2)(U_X, U_Y, LABELS)
    assert parts["inter"].item() == pytest.approx(INTER, abs=1e-12)
    assert parts["intra_mri"].item() == pytest.approx(INTRA_MRI, abs=1e-12)
    assert parts["intra_pet"].item() == pytest.approx(INTRA_PET, abs=1e-12)
    assert parts["decorrelation"].item() == pytest.approx(DECORRELATION, abs=1e-12)
    assert parts["quantization"].item() == pytest.approx(QUANTIZATION)
    assert parts["balance"].item() == pytest.approx(BALANCE)
    assert total.item() == pytest.approx(INTER + INTRA_MRI + INTRA_PET + DECORRELATION + QUANTIZATION + BALANCE)


def test_pgdh_weights_scale_their_terms():
    total, _ = PGDHLoss(2, lam=0.5, gamma=2.0)(U_X, U_Y, LABELS)
    assert total.item() == pytest.approx(INTER + INTRA_MRI + INTRA_PET + 0.5 * DECORRELATION
                                         + 2.0 * (QUANTIZATION + BALANCE))


def test_pgdh_decorrelation_is_the_off_diagonal_covariance():
    u, _, _ = random_codes(n=6, k=4)
    u = u.detach()
    c = torch.cov(u.T, correction=0)
    expected = 0.5 * ((c ** 2).sum() - (torch.diagonal(c) ** 2).sum()) / (4 * 3)
    assert pgdh_decorrelation_loss(u).item() == pytest.approx(expected.item())
    # uncorrelated bits (the columns of a Hadamard matrix) cost nothing; one bit has no pair
    hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    assert pgdh_decorrelation_loss(hadamard[:, 1:]).item() == pytest.approx(0.0)
    assert pgdh_decorrelation_loss(u[:, :1]).item() == 0.0


def test_pgdh_pairwise_loss_checks_its_input():
    with pytest.raises(ValueError, match="s must have shape"):
        pgdh_pairwise_loss(U_X, U_Y, torch.ones(3, 2))
    with pytest.raises(ValueError, match="lam"):
        PGDHLoss(4, lam=-1.0)


# --------------------------------------------------------------------------
# CMHH
# --------------------------------------------------------------------------
# d_H = K/2 (1 - cos) with K/2 = 1: cos(x0, y0) = 1/sqrt 2, cos(x0, y1) = 0, cos(x1, y0) = 1/sqrt 2, cos(x1, y1) = -1
D = [[1 - 1 / math.sqrt(2), 1.0], [1 - 1 / math.sqrt(2), 2.0]]


def test_cmhh_distance_by_hand_and_hamming_for_binary_codes():
    assert torch.allclose(cmhh_hamming_distance(U_X, U_Y), torch.tensor(D, dtype=torch.float64))
    signs = torch.tensor([[1.0, -1, 1, 1], [-1, -1, 1, -1], [1, 1, 1, 1]])
    hamming = (signs[:, None, :] != signs[None, :, :]).sum(-1).double()
    assert torch.allclose(cmhh_hamming_distance(signs.double(), signs.double()), hamming)


def test_cmhh_focal_loss_by_hand():
    beta, gamma = 0.5, 2.0

    def similar(d):  # (1 - p)^gamma (-log p), -log p = beta d
        return (1 - math.exp(-beta * d)) ** gamma * beta * d

    def dissimilar(d):  # p^gamma (-log(1 - p))
        p = math.exp(-beta * d)
        return p ** gamma * -math.log(1 - p)

    # s = I: two similar and two dissimilar pairs of four, so every weight is 4/2 = 2
    expected = 2 * (similar(D[0][0]) + similar(D[1][1]) + dissimilar(D[0][1]) + dissimilar(D[1][0])) / 4
    total, parts = CMHHLoss(2, beta=beta, gamma=gamma, lambda_q=0.0)(U_X, U_Y, LABELS)
    assert parts["focal"].item() == pytest.approx(expected, rel=1e-12)
    assert total.item() == pytest.approx(expected, rel=1e-12)
    # gamma = 0 is the weighted cross-entropy of the exponential model
    plain = 2 * (beta * D[0][0] + beta * D[1][1] - math.log(1 - math.exp(-beta * D[0][1]))
                 - math.log(1 - math.exp(-beta * D[1][0]))) / 4
    assert cmhh_focal_loss(U_X, U_Y, torch.eye(2, dtype=torch.float64), beta, 0.0).item() == pytest.approx(plain)


def test_cmhh_weights_balance_an_unbalanced_batch():
    # labels (0, 0, 1): 5 similar and 4 dissimilar pairs of 9; w = 9/5 and 9/4
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    d = cmhh_hamming_distance(u, u)  # [[0, 1, 1], [1, 0, 2], [1, 2, 0]]
    assert torch.allclose(d, torch.tensor([[0.0, 1, 1], [1, 0, 2], [1, 2, 0]], dtype=torch.float64))
    beta = 0.5
    sim = lambda v: (1 - math.exp(-beta * v)) ** 2 * beta * v  # noqa: E731
    dis = lambda v: math.exp(-beta * v) ** 2 * -math.log(1 - math.exp(-beta * v))  # noqa: E731
    similar_sum = sim(0) * 2 + sim(1) * 2 + sim(0)          # (0,0), (1,1), (0,1), (1,0), (2,2)
    dissimilar_sum = dis(1) * 2 + dis(2) * 2                  # (0,2), (2,0), (1,2), (2,1)
    expected = (9 / 5 * similar_sum + 9 / 4 * dissimilar_sum) / 9
    assert cmhh_focal_loss(u, u, (labels[:, None] == labels[None, :]).double(), beta, 2.0).item() == \
        pytest.approx(expected)


def test_cmhh_quantization_by_hand():
    # |u_x| rows (1, 0), (0, 1): cos with (1, 1) = 1/sqrt 2, d = 1 - 1/sqrt 2 each;
    # |u_y| rows (1, 1): d = 0, (0, 1): d = 1 - 1/sqrt 2
    d = 1 - 1 / math.sqrt(2)
    assert cmhh_quantization_loss(U_X, 0.5).item() == pytest.approx(0.5 * d)
    assert cmhh_quantization_loss(U_Y, 0.5).item() == pytest.approx(0.5 * d / 2)
    _, parts = CMHHLoss(2, beta=0.5)(U_X, U_Y, LABELS)
    assert parts["quantization"].item() == pytest.approx(0.5 * (0.5 * d + 0.25 * d))
    # equal magnitudes are free: the sign of 0.3 * (1, -1) loses nothing
    assert cmhh_quantization_loss(torch.tensor([[0.3, -0.3]], dtype=torch.float64), 0.5).item() == \
        pytest.approx(0.0, abs=1e-12)


def test_cmhh_rejects_bad_settings():
    with pytest.raises(ValueError, match="beta"):
        CMHHLoss(8, beta=0.0)
    with pytest.raises(ValueError, match="gamma"):
        CMHHLoss(8, gamma=0.5)


# --------------------------------------------------------------------------
# Gradients: float64 gradcheck, saturated codes, zero distance
# --------------------------------------------------------------------------
LOSSES = {"pgdh": lambda k: PGDHLoss(k), "cmhh": lambda k: CMHHLoss(k)}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64(name):
    u_x, u_y, labels = random_codes(k=8)
    loss = LOSSES[name](8)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels)[0], (u_x, u_y))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_at_saturated_codes_and_zero_distance(name, dtype):
    labels = torch.tensor([0, 1, 2, 0])
    signs = torch.tensor([[1.0, -1, 1, 1, -1, 1], [-1, 1, 1, -1, 1, 1], [1, 1, -1, 1, 1, -1], [1, -1, 1, 1, -1, 1]],
                         dtype=dtype)
    # exactly +-1; identical codes for every pair (zero distance, similar and dissimilar alike)
    for u_x, u_y in ((signs, signs), (signs, -signs), (signs[:1].repeat(4, 1), signs[:1].repeat(4, 1))):
        a, b = u_x.clone().requires_grad_(), u_y.clone().requires_grad_()
        total, parts = LOSSES[name](6).to(dtype)(a, b, labels)
        total.backward()
        assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_cmhh_dissimilar_pair_at_zero_distance_costs_the_floor():
    u = torch.tensor([[1.0, -1.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    value = cmhh_focal_loss(u, u, torch.zeros(1, 1, dtype=torch.float64), 0.5, 2.0)
    # p = 1, so p^gamma (-log(max(1 - p, floor))) = -log(floor); the weight is 1 (no similar pair)
    assert value.item() == pytest.approx(-math.log(LOG_FLOOR))
    value.backward()
    assert torch.isfinite(u.grad).all()


# --------------------------------------------------------------------------
# Through the runner
# --------------------------------------------------------------------------
ENTRIES = {
    "pgdh": experiments.Method("PGDH", partial(run_loss, loss=PGDHLoss, options={"lam": 1.0, "gamma": 1.0})),
    "cmhh": experiments.Method("CMHH", partial(run_loss, loss=CMHHLoss,
                                               options={"beta": 0.5, "gamma": 2.0, "lambda_q": 0.1})),
}


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_trains_through_the_runner(method, monkeypatch, tmp_path):
    monkeypatch.setitem(experiments.METHODS, method, ENTRIES[method])
    path = tmp_path / "r.json"
    compare(CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu",
                          methods=("random", method)), path, verbose=False)
    results = load_results(path)
    validate_results(results)
    run = next(r for r in results["runs"] if r["method"] == method)
    assert run["status"] == "done"
    assert run["hyperparameters"]["loss"] == ENTRIES[method].run.keywords["loss"].__name__
