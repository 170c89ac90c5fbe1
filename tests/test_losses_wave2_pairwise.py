"""DHN, DSH, LCDSH and IDHN: values by hand on four pairs, gradients in float64, a smoke run each."""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch

from neurohash_lite import experiments
from neurohash_lite.experiments import CompareConfig, compare, load_results, validate_results
from neurohash_lite.losses.csq import csq_quantization_loss
from neurohash_lite.losses.dcmh import dcmh_likelihood_loss
from neurohash_lite.losses.dhn import DHNLoss, dhn_likelihood_loss, dhn_quantization_loss
from neurohash_lite.losses.dsh import DSHLoss, dsh_contrastive_loss, dsh_regularizer
from neurohash_lite.losses.idhn import IDHNLoss, idhn_pair_loss, idhn_soft_similarity
from neurohash_lite.losses.lcdsh import LCDSHLoss, lcdsh_likelihood_loss, lcdsh_locality_loss
from neurohash_lite.runner import run_loss
from pair_fixtures import LABELS, U_X, U_Y, random_codes, softplus


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# Two subjects, K = 2, diagnoses 0 and 1: four sMRI-PET pairs, s = [[1, 0], [0, 1]].
#   u_x = [[1, 0], [0, 1]], u_y = [[1, 1], [0, -1]]
#   <u_i^x, u_j^y> = [[1, 0], [1, -1]]
S = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
LOG_COSH_1 = math.log(math.cosh(1.0))

LOSS_CLASSES = {"dhn": DHNLoss, "dsh": DSHLoss, "lcdsh": LCDSHLoss, "idhn": IDHNLoss}


# --------------------------------------------------------------------------
# DHN
# --------------------------------------------------------------------------
def test_dhn_by_hand():
    total, parts = DHNLoss(2, lambda_q=0.2)(U_X, U_Y, LABELS)
    # theta = [[1, 0], [1, -1]] (no factor 1/2); per pair softplus(theta) - s theta:
    # (0,0) softplus(1) - 1, (0,1) softplus(0), (1,0) softplus(1), (1,1) softplus(-1) + 1
    likelihood = (softplus(1) - 1 + softplus(0) + softplus(1) + softplus(-1) + 1) / 4
    assert parts["likelihood"].item() == pytest.approx(likelihood, abs=1e-12)
    # |u| - 1: u_x (0, -1, -1, 0) -> mean log cosh = LC/2; u_y (0, 0, -1, 0) -> LC/4; averaged: 3 LC/8
    assert parts["quantization"].item() == pytest.approx(3 * LOG_COSH_1 / 8, abs=1e-12)
    assert total.item() == pytest.approx(likelihood + 0.2 * 3 * LOG_COSH_1 / 8, abs=1e-12)


def test_dhn_quantization_is_the_smoothed_laplacian_prior():
    assert dhn_quantization_loss(torch.tensor([[1.0, -1.0]])).item() == 0.0
    assert dhn_quantization_loss(torch.zeros(2, 3)).item() == pytest.approx(LOG_COSH_1)
    u = torch.rand(4, 8, dtype=torch.float64) * 2 - 1
    direct = torch.log(torch.cosh(u.abs() - 1)).mean()
    assert dhn_quantization_loss(u).item() == pytest.approx(direct.item(), abs=1e-12)
    assert torch.equal(dhn_quantization_loss(u), csq_quantization_loss(u))


def test_dhn_likelihood_is_dpsh_at_twice_the_scale():
    # DHN's logit is <u, v>, DPSH's (DCMH's) 1/2 <u, v>: doubling the codes on one side maps one onto the other
    u_x, u_y, labels = random_codes()
    s = (labels[:, None] == labels[None, :]).double()
    assert dhn_likelihood_loss(u_x, u_y, s).item() == pytest.approx(dcmh_likelihood_loss(2 * u_x, u_y, s).item())


# --------------------------------------------------------------------------
# DSH
# --------------------------------------------------------------------------
def test_dsh_by_hand():
    total, parts = DSHLoss(2, alpha=0.01)(U_X, U_Y, LABELS)
    # margin m = 2K = 4; d^2 = [[1, 2], [1, 4]]
    # (0,0) similar 1/2 * 1 = 0.5, (0,1) 1/2 max(4 - 2, 0) = 1, (1,0) 1/2 max(4 - 1, 0) = 1.5, (1,1) 1/2 * 4 = 2
    assert parts["contrastive"].item() == pytest.approx((0.5 + 1 + 1.5 + 2) / 4)
    # per code sum_k ||u_k| - 1|: u_x rows 1, 1 -> mean 1; u_y rows 0, 1 -> mean 0.5; averaged 0.75
    assert parts["regularizer"].item() == pytest.approx(0.75)
    assert total.item() == pytest.approx(1.25 + 0.01 * 0.75)


def test_dsh_margin_only_pushes_pairs_inside_it():
    # m = 1.5: (0,1) d^2 = 2 is past it -> 0; (1,0) 1/2 max(1.5 - 1, 0) = 0.25
    value = dsh_contrastive_loss(U_X, U_Y, S, margin=1.5).item()
    assert value == pytest.approx((0.5 + 0 + 0.25 + 2) / 4)
    assert DSHLoss(16).margin == 32.0


def test_dsh_matches_a_loop_over_pairs():
    u_x, u_y, labels = random_codes()
    u_x, u_y = u_x.detach(), u_y.detach()
    margin = 2.0 * u_x.shape[1]
    terms = []
    for i, j in itertools.product(range(len(labels)), repeat=2):
        d2 = float(((u_x[i] - u_y[j]) ** 2).sum())
        terms.append(0.5 * d2 if labels[i] == labels[j] else 0.5 * max(margin - d2, 0.0))
    s = (labels[:, None] == labels[None, :]).double()
    assert dsh_contrastive_loss(u_x, u_y, s, margin).item() == pytest.approx(sum(terms) / len(terms))
    by_loop = sum(float((u.abs() - 1).abs().sum()) for u in u_x) / len(u_x)
    assert dsh_regularizer(u_x).item() == pytest.approx(by_loop)


# --------------------------------------------------------------------------
# LCDSH
# --------------------------------------------------------------------------
def test_lcdsh_by_hand():
    total, parts = LCDSHLoss(2, lambda_loc=3.0)(U_X, U_Y, LABELS)
    # theta = 1/2 <u^x, u^y> = [[0.5, 0], [0.5, -0.5]], s~ = [[1, -1], [-1, 1]]; softplus(-s~ theta):
    likelihood = (softplus(-0.5) + softplus(0) + softplus(0.5) + softplus(0.5)) / 4
    assert parts["likelihood"].item() == pytest.approx(likelihood, abs=1e-12)
    # b^x = sign(u^x) = [[1, 1], [1, 1]] (sign 0 = +1), b^y = [[1, 1], [1, -1]]
    # theta_b = 1/2 <b^x, b^y> = [[1, 0], [1, 0]]
    locality = (2 * (sigmoid(0.5) - sigmoid(1)) ** 2 + 0 + (sigmoid(-0.5) - 0.5) ** 2) / 4
    assert parts["locality"].item() == pytest.approx(locality, abs=1e-12)
    assert total.item() == pytest.approx(likelihood + 3 * locality, abs=1e-12)


def test_lcdsh_likelihood_is_dpsh_with_labels_in_plus_minus_one():
    u_x, u_y, labels = random_codes()
    s = (labels[:, None] == labels[None, :]).double()
    assert lcdsh_likelihood_loss(u_x, u_y, s).item() == pytest.approx(dcmh_likelihood_loss(u_x, u_y, s).item())


def test_lcdsh_locality_vanishes_at_binary_codes_and_pulls_towards_them():
    signs = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]], dtype=torch.float64)
    assert lcdsh_locality_loss(signs, signs.flip(0)).item() == 0.0
    # one pair, K = 2: u = (0.5, 0.5) against b = (1, 1): theta = 0.5 < theta_b = 1, so the gradient
    # (descent direction) must raise theta, i.e. push u towards b
    u = torch.tensor([[0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    lcdsh_locality_loss(u, v).backward()
    assert (u.grad < 0).all()


# --------------------------------------------------------------------------
# IDHN
# --------------------------------------------------------------------------
def test_idhn_soft_similarity_is_the_cosine_of_label_vectors():
    multi = torch.tensor([[1.0, 1.0, 0.0]])
    others = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert idhn_soft_similarity(multi, others)[0].tolist() == pytest.approx([1 / math.sqrt(2), 0.0, 1.0, 0.0])
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).double()
    s = idhn_soft_similarity(one_hot, one_hot)
    assert torch.equal(s, (torch.tensor([0, 1, 2, 0])[:, None] == torch.tensor([0, 1, 2, 0])[None, :]).double())


def test_idhn_by_hand_with_one_hot_labels_every_pair_is_hard():
    total, parts = IDHNLoss(2, beta=5.0, gamma=0.1, alpha=0.1)(U_X, U_Y, LABELS)
    # theta = 5 <u^x, u^y> / K = [[2.5, 0], [2.5, -2.5]]; s = [[1, 0], [0, 1]]: all four pairs hard
    # (0,0) softplus(2.5) - 2.5, (0,1) softplus(0), (1,0) softplus(2.5), (1,1) softplus(-2.5) + 2.5
    hard = (softplus(2.5) - 2.5 + softplus(0) + softplus(2.5) + softplus(-2.5) + 2.5) / 4
    assert parts["hard"].item() == pytest.approx(hard, abs=1e-12)
    assert parts["soft"].item() == 0.0 and parts["soft_fraction"].item() == 0.0
    # mean ||u| - 1|: u_x (0, 1, 1, 0) -> 0.5; u_y (0, 0, 1, 0) -> 0.25; averaged 0.375
    assert parts["quantization"].item() == pytest.approx(0.375)
    assert total.item() == pytest.approx(hard + 0.1 * 0.375, abs=1e-12)


def test_idhn_soft_pairs_get_the_squared_loss_by_hand():
    s = torch.tensor([[1.0, 0.5], [0.25, 0.0]], dtype=torch.float64)
    total, hard, soft = idhn_pair_loss(U_X, U_Y, s, beta=5.0, gamma=0.1)
    # hard: (0,0) s = 1, theta 2.5 -> softplus(2.5) - 2.5; (1,1) s = 0, theta -2.5 -> softplus(-2.5)
    assert hard.item() == pytest.approx((softplus(2.5) - 2.5 + softplus(-2.5)) / 4, abs=1e-12)
    # soft: gamma K ((<u, v> + K)/(2K) - s)^2 with K = 2:
    # (0,1) <u, v> = 0 -> 0.5 - 0.5 = 0 -> 0; (1,0) <u, v> = 1 -> 0.75 - 0.25 = 0.5 -> 0.1 * 2 * 0.25 = 0.05
    assert soft.item() == pytest.approx(0.05 / 4, abs=1e-12)
    assert total.item() == pytest.approx(hard.item() + soft.item())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        idhn_pair_loss(U_X, U_Y, 2 * s)


def test_idhn_with_one_diagnosis_per_scan_is_dpsh_at_k_10():
    # every pair hard: the pair term is the likelihood on beta <u, v>/K, which is DPSH's 1/2 <u, v> at K = 10
    u_x, u_y, labels = random_codes(k=10)
    total, parts = IDHNLoss(10, alpha=0.0)(u_x, u_y, labels)
    s = (labels[:, None] == labels[None, :]).double()
    assert total.item() == pytest.approx(dcmh_likelihood_loss(u_x, u_y, s).item(), abs=1e-12)
    assert parts["soft"].item() == 0.0


def test_idhn_soft_branch_gradient_float64():
    u_x, u_y, _ = random_codes(n=3, k=4)
    s = torch.tensor([[1.0, 0.3, 0.0], [0.6, 1.0, 0.5], [0.0, 0.2, 1.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: idhn_pair_loss(a, b, s)[0], (u_x, u_y))


# --------------------------------------------------------------------------
# All four: gradients, saturation, zero distance, low precision, checks
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LOSS_CLASSES))
def test_gradcheck_float64(name):
    u_x, u_y, labels = random_codes(k=8)
    loss = LOSS_CLASSES[name](8).double()
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels)[0], (u_x, u_y))


@pytest.mark.parametrize("name", sorted(LOSS_CLASSES))
@pytest.mark.parametrize("case", ["saturated", "saturated_opposite", "zero_distance", "zero_codes"])
def test_finite_at_plus_minus_one_and_at_zero_distance(name, case):
    labels = torch.tensor([0, 1, 2, 0])
    signs = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0],
                          [-1.0, 1.0, 1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    half = torch.tensor([[0.3, -0.2, 0.9, -0.5]]).repeat(4, 1)
    u_x, u_y = {"saturated": (signs, signs), "saturated_opposite": (signs, -signs),
                "zero_distance": (half, half), "zero_codes": (torch.zeros(4, 4), torch.zeros(4, 4))}[case]
    for dtype in (torch.float32, torch.float64):
        a = u_x.to(dtype).clone().requires_grad_()
        b = u_y.to(dtype).clone().requires_grad_()
        total, parts = LOSS_CLASSES[name](4)(a, b, labels)
        total.backward()
        assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


@pytest.mark.parametrize("name", sorted(LOSS_CLASSES))
def test_low_precision_codes_are_computed_in_float32(name):
    u_x, u_y, labels = random_codes(k=8)
    loss = LOSS_CLASSES[name](8)
    reference, _ = loss(u_x.detach().float(), u_y.detach().float(), labels)
    for dtype in (torch.float16, torch.bfloat16):
        total, _ = loss(u_x.detach().to(dtype), u_y.detach().to(dtype), labels)
        assert total.dtype == torch.float32
        assert total.item() == pytest.approx(reference.item(), rel=2e-2)


@pytest.mark.parametrize("name", sorted(LOSS_CLASSES))
def test_autocast_keeps_the_loss_in_float32(name):
    # as on a GPU under mixed precision: the codes and the products come in bfloat16
    u_x, u_y, labels = random_codes(k=8)
    z_x, z_y = torch.atanh(u_x.detach()).float(), torch.atanh(u_y.detach()).float()
    reference, _ = LOSS_CLASSES[name](8)(torch.tanh(z_x), torch.tanh(z_y), labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u_x16, u_y16 = torch.tanh(z_x @ torch.eye(8)), torch.tanh(z_y @ torch.eye(8))
        assert u_x16.dtype == torch.bfloat16
        total, _ = LOSS_CLASSES[name](8)(u_x16, u_y16, labels)
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(reference.item(), rel=1e-2)


@pytest.mark.parametrize("name", sorted(LOSS_CLASSES))
def test_rejects_bad_settings_and_codes_of_another_length(name):
    with pytest.raises(ValueError, match="n_bits"):
        LOSS_CLASSES[name](0)
    with pytest.raises(ValueError, match="built for 8"):
        LOSS_CLASSES[name](8)(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([0, 1]))


def test_rejects_bad_weights():
    bad = [(DHNLoss, {"lambda_q": -1.0}), (DSHLoss, {"alpha": math.nan}), (DSHLoss, {"margin": 0.0}),
           (LCDSHLoss, {"lambda_loc": -0.5}), (IDHNLoss, {"beta": 0.0}), (IDHNLoss, {"gamma": -1.0})]
    for loss, options in bad:
        with pytest.raises(ValueError, match=next(iter(options))):
            loss(4, **options)
    with pytest.raises(ValueError, match="labels_x"):
        IDHNLoss(4, n_classes=3)(torch.zeros(1, 4), torch.zeros(1, 4), torch.tensor([3]))


# --------------------------------------------------------------------------
# One short run of each through the comparison runner
# --------------------------------------------------------------------------
ENTRIES = {
    "dhn": ("DHN", partial(run_loss, loss=DHNLoss, options={"lambda_q": 0.2})),
    "dsh": ("DSH", partial(run_loss, loss=DSHLoss, options={"alpha": 0.01})),
    "lcdsh": ("LCDSH", partial(run_loss, loss=LCDSHLoss, options={"lambda_loc": 3.0})),
    "idhn": ("IDHN", partial(run_loss, loss=IDHNLoss, options={"beta": 5.0, "gamma": 0.1, "alpha": 0.1})),
}


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_a_smoke_run_through_the_runner_validates(method, monkeypatch, tmp_path):
    name, entry = ENTRIES[method]
    monkeypatch.setitem(experiments.METHODS, method, experiments.Method(name, entry))
    path = tmp_path / "r.json"
    compare(CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu",
                          methods=("random", method)), path, verbose=False)
    results = load_results(path)
    validate_results(results)
    run = next(r for r in results["runs"] if r["method"] == method)
    assert run["status"] == "done" and run["epochs_run"] == 1
    assert run["hyperparameters"]["loss"] == LOSS_CLASSES[method].__name__
    assert run["hyperparameters"]["n_bits"] == 8
    assert all(math.isfinite(v) for v in run["map"].values())
