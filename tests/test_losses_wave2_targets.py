"""DPN, FAH, PCDH and DAPH: each term by hand, float64 gradients, saturated codes, DAPH's code step, a runner pass."""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch

from neurohash_lite import experiments
from neurohash_lite.daph import (
    DAPHLoss,
    daph_balance_loss,
    daph_code_update,
    daph_independence_loss,
    daph_objective,
    train_daph,
)
from neurohash_lite.data import PairedDataset
from neurohash_lite.experiments import CompareConfig, compare, load_results, validate_results
from neurohash_lite.fah import (
    FAHBranchHead,
    FAHNet,
    FAHObjective,
    balanced_binary_codes,
    fah_contrastive_loss,
    fah_quantization_loss,
)
from neurohash_lite.losses.dpn import DPNLoss, dpn_polarization_loss, dpn_target_codes
from neurohash_lite.models import CrossModalHashNet
from neurohash_lite.pcdh import PCDHNet, PCDHObjective, pcdh_pairwise_loss, straight_through_sign
from neurohash_lite.runner import run_loss
from neurohash_lite.train import TrainConfig
from neurohash_lite import daph, fah, pcdh
from pair_fixtures import LABELS, LIKELIHOOD, U_X, U_Y, random_codes


# Two subjects per modality, K = 2: four sMRI-PET pairs, similar on the diagonal only.
#   a = [[1, 0], [0, 0]], b = [[1, 1], [0, 1]]
#   squared distances d = [[0 + 1, 0 + 1 + 1 ...]]: (a0, b0) = 0^2 + 1^2 = 1, (a0, b1) = 1 + 1 = 2,
#   (a1, b0) = 1 + 1 = 2, (a1, b1) = 0 + 1 = 1
A = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
B = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
SAME = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)


# --------------------------------------------------------------------------
# DPN
# --------------------------------------------------------------------------
def test_dpn_targets_are_random_distinct_and_reproducible():
    targets = dpn_target_codes(3, 16, seed=0)
    assert targets.shape == (3, 16) and set(targets.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(targets, dpn_target_codes(3, 16, seed=0))
    assert not torch.equal(targets, dpn_target_codes(3, 16, seed=1))
    # with K = 2 only four codes exist: four classes must get all four, none twice
    four = dpn_target_codes(4, 2, seed=3)
    assert len({tuple(row.tolist()) for row in four}) == 4
    with pytest.raises(ValueError, match="distinct"):
        dpn_target_codes(5, 2)
    # fair bits: over many classes about half of the bits are +1
    many = dpn_target_codes(200, 64, seed=0)
    assert abs(float((many > 0).float().mean()) - 0.5) < 0.02


def test_dpn_by_hand():
    loss = DPNLoss(2, margin=1.0).double()
    loss.targets.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]))
    labels = torch.tensor([0, 1, 2])
    u_x = torch.tensor([[0.5, 0.0], [0.0, -0.5], [1.0, -1.0]], dtype=torch.float64)
    u_y = torch.tensor([[1.0, 1.0], [0.5, -1.0], [-1.0, -1.0]], dtype=torch.float64)
    total, parts = loss(u_x, u_y, labels)
    # sMRI: row 0 vs (1, 1): relu(1 - .5) + relu(1 - 0) = 1.5; row 1 vs (1, -1): 1 + .5 = 1.5;
    #       row 2 vs (-1, -1): relu(1 + 1) + relu(1 - 1) = 2; mean over 6 entries = 5/6
    assert parts["polarization_mri"].item() == pytest.approx(5 / 6)
    # PET: only row 1's first bit is inside the margin: relu(1 - .5) = .5; mean 1/12
    assert parts["polarization_pet"].item() == pytest.approx(1 / 12)
    assert total.item() == pytest.approx((5 / 6 + 1 / 12) / 2)
    # margin 0.5: sMRI 0 + .5, .5 + 0, relu(.5 + 1) + 0 = 1.5: 2.5 / 6
    assert dpn_polarization_loss(u_x, loss.targets[labels], 0.5).item() == pytest.approx(2.5 / 6)


def test_dpn_gradient_is_minus_the_target_inside_the_margin():
    targets = dpn_target_codes(3, 4, seed=0).double()
    labels = torch.tensor([0, 1, 2])
    u = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    dpn_polarization_loss(u, targets[labels], 1.0).backward()
    assert torch.allclose(u.grad, -targets[labels] / 12)


def test_dpn_modalities_share_the_targets():
    loss = DPNLoss(8)
    labels = torch.tensor([0, 1, 2])
    codes = loss.targets[labels]
    # both modalities exactly on their class's target meet the margin of 1: zero loss
    total, _ = loss(codes, codes, labels)
    assert total.item() == 0.0
    # the PET codes of another class's target are penalised
    total, parts = loss(codes, loss.targets[torch.tensor([1, 2, 0])], labels)
    assert parts["polarization_mri"].item() == 0.0 and parts["polarization_pet"].item() > 0


# --------------------------------------------------------------------------
# FAH
# --------------------------------------------------------------------------
def test_fah_contrastive_by_hand():
    # d = [[1, 2], [2, 1]], similar on the diagonal; margin 3: dissimilar pairs relu(3 - 2) = 1 each
    # 1/2 * (1 + 1 + 1 + 1) / 4 = 0.5; margin 1.5: relu(1.5 - 2) = 0 -> 1/2 * 2 / 4 = 0.25
    assert fah_contrastive_loss(A, B, SAME, margin=3.0).item() == pytest.approx(0.5)
    assert fah_contrastive_loss(A, B, SAME, margin=1.5).item() == pytest.approx(0.25)


def test_fah_quantization_by_hand():
    c = torch.tensor([[0.5, 1.0], [0.0, 0.25]], dtype=torch.float64)
    # H(.5) = ln 2, H(1) = H(0) = 0, H(.25) = -(.25 ln .25 + .75 ln .75)
    h_quarter = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert fah_quantization_loss(c).item() == pytest.approx((math.log(2) + h_quarter) / 4)


def test_balanced_binary_codes():
    for k in (7, 8):
        codes = balanced_binary_codes(50, k, generator=torch.Generator().manual_seed(0))
        assert set(codes.unique().tolist()) == {0.0, 1.0}
        assert torch.all(codes.sum(1) == k - k // 2)
    # every position is one about half the time
    codes = balanced_binary_codes(4000, 8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(codes.mean(0), torch.full((8,), 0.5), atol=0.03)


def tiny_fah(n_bits=8, spatial_dims=2):
    torch.manual_seed(0)
    network = CrossModalHashNet(n_bits, in_channels=3 if spatial_dims == 2 else 1, spatial_dims=spatial_dims,
                                width=0.125)
    return FAHNet(network)


def test_fah_head_keeps_the_pretrained_branch_at_the_start():
    model = tiny_fah().eval()
    head = model.heads["mri"]
    assert head.positions == [0, 4, 8, 11, 14]
    x = torch.randn(3, 3, 32, 32)
    layers = head.branch.convolutions
    # with the zero-initialised 1x1 skips the fused conv5 is the branch's own conv5 output
    captured = {}
    handle = head.attention.register_forward_hook(lambda m, inputs, out: captured.update(x=inputs[0]))
    model(x, "mri")
    handle.remove()
    assert torch.allclose(captured["x"], layers[:17](x), atol=1e-6)
    # codes: 2 sigmoid(z) - 1, whose sign is c >= 0.5
    out = model(x, "mri")
    assert torch.allclose(model.encode(x, "mri"), 2 * out.codes - 1, atol=1e-6)
    assert out.cam_logits.shape == out.hash_logits.shape == (3, 3)


def test_fah_head_works_in_3d():
    model = tiny_fah(spatial_dims=3).eval()
    out = model(torch.randn(2, 1, 24, 24, 24), "pet")
    assert out.codes.shape == (2, 8) and torch.all((out.codes > 0) & (out.codes < 1))
    assert isinstance(model.heads["pet"], FAHBranchHead)


def test_fah_discriminator_learns_only_from_its_own_loss():
    model = tiny_fah().eval()   # eval: no dropout, so every pass sees the same network
    objective = FAHObjective(8, hidden_dim=16)
    batch = (torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))

    def gradients(with_d, only_d=False):
        objective.train_discriminator = with_d
        objective.generator.manual_seed(5)   # the same "real" codes in every pass
        model.zero_grad(set_to_none=True)
        objective.zero_grad(set_to_none=True)
        if only_d:
            objective.terms(model(batch[0], "mri"), model(batch[1], "pet"), batch[2])["discriminator"].backward()
        else:
            objective(model, batch)[0].backward()
        return ([None if p.grad is None else p.grad.clone() for p in model.parameters()],
                [None if p.grad is None else p.grad.clone() for p in objective.discriminator.parameters()])

    net_with, d_with = gradients(True)
    net_without, d_without = gradients(False)
    _, d_only = gradients(True, only_d=True)
    # the generator's term reaches the codes but not the discriminator's weights
    assert all(g is None for g in d_without)
    # the discriminator's loss does not move the network (the codes are detached in it) ...
    assert sum(g is not None for g in net_with) == sum(g is not None for g in net_without) > 0
    for g1, g0 in zip(net_with, net_without):
        assert (g1 is None) == (g0 is None) and (g1 is None or torch.allclose(g1, g0, atol=1e-6))
    # ... and the discriminator's weights get exactly the gradient of L_D
    for g1, g2 in zip(d_with, d_only):
        assert torch.allclose(g1, g2, atol=1e-7) and torch.isfinite(g1).all()


def test_fah_objective_weights_its_terms():
    model = tiny_fah().eval()
    objective = FAHObjective(8, hidden_dim=16, alpha=0.5, gamma=2.0, theta=0.1, adversarial=0.3,
                             train_discriminator=False)
    batch = (torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    total, parts = objective(model, batch)
    expected = (parts["contrastive"] + 0.5 * parts["hash_classification"] + 2.0 * parts["cam_classification"]
                + 0.1 * parts["quantization"] + 0.3 * parts["generator"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


# --------------------------------------------------------------------------
# PCDH
# --------------------------------------------------------------------------
def test_pcdh_pairwise_by_hand():
    # d = [[1, 2], [2, 1]]; similar pairs 1/2 d = .5 each; margin 3: dissimilar 1/2 (3 - 2)^2 = .5 each
    # mean over 4 pairs: (.5 + .5 + .5 + .5) / 4 = .5; margin 1.5: dissimilar 0 -> 1 / 4
    assert pcdh_pairwise_loss(A, B, SAME, 3.0).item() == pytest.approx(0.5)
    assert pcdh_pairwise_loss(A, B, SAME, 1.5).item() == pytest.approx(0.25)


def test_straight_through_sign():
    a = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    b = straight_through_sign(a)
    assert b.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    b.sum().backward()
    assert a.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def tiny_pcdh(straight_through=True):
    torch.manual_seed(0)
    return PCDHNet(CrossModalHashNet(8, in_channels=3, width=0.125), straight_through=straight_through)


def test_pcdh_discrete_layer_learns_only_with_a_straight_through_gradient():
    batch = (torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    for straight_through in (True, False):
        model = tiny_pcdh(straight_through)
        total, parts = PCDHObjective(8)(model, batch)
        total.backward()
        grad = model.discrete_layer.weight.grad
        if straight_through:
            assert grad is not None and grad.abs().sum() > 0
        else:   # DeepHash-pytorch's hard threshold: the discrete layer never learns
            assert grad is None
        codes = model.encode(batch[0], "mri")
        assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_pcdh_objective_weights_its_terms():
    model = tiny_pcdh().eval()
    batch = (torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    total, parts = PCDHObjective(8, lambda_p=0.1, lambda_c=3.0)(model, batch)
    expected = parts["pairwise_codes"] + 0.1 * parts["pairwise_features"] + 3.0 * parts["classification"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert PCDHObjective(8).margin == 16.0


def test_pcdh_classification_through_the_discrete_layer_decreases():
    # a fixed hash-like input, the discrete layer and the classifier trained through the straight-through sign
    torch.manual_seed(1)
    h = torch.tanh(torch.randn(12, 8))
    labels = torch.arange(12) % 3
    model = tiny_pcdh()
    optimiser = torch.optim.Adam(list(model.discrete_layer.parameters()) + list(model.classifier.parameters()), lr=0.05)

    def loss():
        return torch.nn.functional.cross_entropy(model.classifier(straight_through_sign(model.discrete_layer(h))),
                                                 labels)
    before = loss().item()
    for _ in range(60):
        optimiser.zero_grad()
        value = loss()
        value.backward()
        optimiser.step()
    assert loss().item() < before - 0.2


# --------------------------------------------------------------------------
# DAPH
# --------------------------------------------------------------------------
# two subjects, K = 2, labels 0 and 1 (tests/pair_fixtures.py):
#   Theta = 1/2 u_x u_y^T = [[.5, 0], [.5, -.5]], s = I


def test_daph_terms_by_hand():
    # independence of u_x: U^T U / 2 = I / 2, (I/2 - I)^2 has two entries .25: mean over 4 = .125
    assert daph_independence_loss(U_X).item() == pytest.approx(0.125)
    # u_y: U^T U / 2 = [[.5, .5], [.5, 1]] - I = [[-.5, .5], [.5, 0]]: (.25 * 3) / 4
    assert daph_independence_loss(U_Y).item() == pytest.approx(0.1875)
    # balance: column sums u_x (1, 1) -> mean of squares 1; u_y (1, 0) -> .5
    assert daph_balance_loss(U_X).item() == pytest.approx(1.0)
    assert daph_balance_loss(U_Y).item() == pytest.approx(0.5)
    loss = DAPHLoss(2, alpha=1.0, lam=1.0, beta=1.0)
    b = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    h = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    # F's step: quantization mean (u_x - b)^2 = (0 + 1 + 1 + 0) / 4 = .5
    total, parts = loss(U_X, U_Y, LABELS, b=b, h=h, stream="mri")
    assert parts["likelihood"].item() == pytest.approx(LIKELIHOOD)
    assert parts["quantization"].item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(LIKELIHOOD + 0.5 + 0.125 + 1.0)
    # G's step: mean (u_y - h)^2 = (0 + 0 + 1 + 0) / 4 = .25
    total, parts = loss(U_X, U_Y, LABELS, b=b, h=h, stream="pet")
    assert total.item() == pytest.approx(LIKELIHOOD + 0.25 + 0.1875 + 0.5)
    # both streams, own signs as targets: sign(u_x) = all +1 -> .5; sign(u_y) = [[1, 1], [1, -1]] -> .25
    total, parts = loss(U_X, U_Y, LABELS)
    assert parts["quantization"].item() == pytest.approx(0.75)
    # the full objective adds gamma mean (B - H)^2: (0 + 4 + 4 + 4) / 4 = 3
    terms = daph_objective(U_X, U_Y, b, h, SAME, alpha=1.0, gamma=1.0, lam=1.0, beta=1.0)
    assert terms["agreement"].item() == pytest.approx(3.0)
    assert terms["total"].item() == pytest.approx(LIKELIHOOD + 0.75 + 3.0 + 0.3125 + 1.5)


def test_daph_code_step_is_the_exact_minimiser():
    # brute force over every B in {-1, 1}^(2 x 2) with U, Z, H fixed, then every H with the new B
    generator = torch.Generator().manual_seed(0)
    u = torch.rand(2, 2, generator=generator, dtype=torch.float64) * 2 - 1
    z = torch.rand(2, 2, generator=generator, dtype=torch.float64) * 2 - 1
    h0 = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    grid = [torch.tensor(v, dtype=torch.float64).view(2, 2) for v in itertools.product((-1.0, 1.0), repeat=4)]
    j = partial(daph_objective, u, z, s=s, alpha=10.0, gamma=10.0)
    b, h = daph_code_update(u, z, h0, alpha=10.0, gamma=10.0)
    best_b = min(grid, key=lambda cand: j(cand, h0)["total"].item())
    assert j(b, h0)["total"].item() == pytest.approx(j(best_b, h0)["total"].item())
    best_h = min(grid, key=lambda cand: j(b, cand)["total"].item())
    assert j(b, h)["total"].item() == pytest.approx(j(b, best_h)["total"].item())


def test_daph_code_step_decreases_its_objective():
    generator = torch.Generator().manual_seed(3)
    n, k = 6, 4
    u = torch.rand(n, k, generator=generator) * 2 - 1
    z = torch.rand(n, k, generator=generator) * 2 - 1
    b = torch.where(torch.rand(n, k, generator=generator) < 0.5, -1.0, 1.0)
    h = torch.where(torch.rand(n, k, generator=generator) < 0.5, -1.0, 1.0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    s = (labels[:, None] == labels[None, :]).float()
    values = [daph_objective(u, z, b, h, s)["total"].item()]
    for _ in range(3):
        b, h = daph_code_update(u, z, h)
        values.append(daph_objective(u, z, b, h, s)["total"].item())
    assert values[1] < values[0]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(values, values[1:]))
    # a fixed point: B = sign(alpha U + gamma H) and H = sign(alpha Z + gamma B)
    assert torch.equal(b, torch.where(10 * u + 10 * h >= 0, 1.0, -1.0))
    assert torch.equal(h, torch.where(10 * z + 10 * b >= 0, 1.0, -1.0))


def test_daph_code_step_keeps_its_codes_when_alpha_equals_gamma():
    # |alpha u| < |gamma h| for relaxed codes inside (-1, 1): B = H, then H = B, whatever U and Z are
    generator = torch.Generator().manual_seed(4)
    u = torch.rand(5, 6, generator=generator) * 1.98 - 0.99
    z = torch.rand(5, 6, generator=generator) * 1.98 - 0.99
    h = torch.where(torch.rand(5, 6, generator=generator) < 0.5, -1.0, 1.0)
    b, h_next = daph_code_update(u, z, h, alpha=10.0, gamma=10.0)
    assert torch.equal(b, h) and torch.equal(h_next, h)
    # with gamma = 0 each stream's codes are its own signs
    b, h_next = daph_code_update(u, z, h, alpha=10.0, gamma=0.0)
    assert torch.equal(b, torch.where(u >= 0, 1.0, -1.0)) and torch.equal(h_next, torch.where(z >= 0, 1.0, -1.0))


def test_daph_trains_its_streams_alternately():
    torch.manual_seed(0)
    n = 8
    data = PairedDataset(torch.randn(n, 3, 32, 32), torch.randn(n, 3, 32, 32), torch.arange(n) % 3)
    model = CrossModalHashNet(4, in_channels=3, width=0.125)
    before = {m: [p.detach().clone() for p in getattr(model, f"{m}_branch").parameters()] for m in ("mri", "pet")}
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, device="cpu", seed=0, progress=False, patience=None)
    result = train_daph(model, data, DAPHLoss(4), config)
    assert len(result["objective"]) == 2 and all(math.isfinite(v) for v in result["objective"])
    assert set(result["b"].unique().tolist()) <= {-1.0, 1.0} and result["h"].shape == (n, 4)
    for m in ("mri", "pet"):
        after = list(getattr(model, f"{m}_branch").parameters())
        assert any(not torch.equal(p0, p1) for p0, p1 in zip(before[m], after)), f"the {m} stream never moved"
    assert not model.training


# --------------------------------------------------------------------------
# Gradients and saturation of the terms that are not in tests/test_losses_baselines.py's LOSSES
# (DPNLoss is there); codes u in (-1, 1) are mapped to FAH's sigmoid codes by (u + 1) / 2
# --------------------------------------------------------------------------
def sigmoid_codes(u):
    return (u + 1) / 2


CODE_LOSSES = {
    "fah_contrastive": lambda u_x, u_y, labels: fah_contrastive_loss(
        sigmoid_codes(u_x), sigmoid_codes(u_y), (labels[:, None] == labels[None, :]).double(), 1.0),
    "fah_quantization": lambda u_x, u_y, labels: fah_quantization_loss(sigmoid_codes(u_x))
    + fah_quantization_loss(sigmoid_codes(u_y)),
    "pcdh_pairwise": lambda u_x, u_y, labels: pcdh_pairwise_loss(
        u_x, u_y, (labels[:, None] == labels[None, :]).double(), 2.0 * u_x.shape[1]),
    "daph_both": lambda u_x, u_y, labels: DAPHLoss(u_x.shape[1])(u_x, u_y, labels)[0],
    "daph_mri": lambda u_x, u_y, labels: DAPHLoss(u_x.shape[1])(
        u_x, u_y, labels, b=torch.ones_like(u_x), h=-torch.ones_like(u_y), stream="mri")[0],
    "daph_pet": lambda u_x, u_y, labels: DAPHLoss(u_x.shape[1])(
        u_x, u_y, labels, b=torch.ones_like(u_x), h=-torch.ones_like(u_y), stream="pet")[0],
}


@pytest.mark.parametrize("name", sorted(CODE_LOSSES))
def test_gradcheck_float64(name):
    u_x, u_y, labels = random_codes(k=8)
    assert torch.autograd.gradcheck(lambda a, b: CODE_LOSSES[name](a, b, labels), (u_x, u_y))


@pytest.mark.parametrize("name", sorted(CODE_LOSSES))
def test_saturated_codes_and_zero_distance_give_finite_gradients(name):
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    signs = dpn_target_codes(3, 8).double()[labels]
    for u_x, u_y in ((signs, signs), (signs, -signs), (signs, signs.roll(1, dims=0))):
        a, b = u_x.clone().requires_grad_(), u_y.clone().requires_grad_()
        total = CODE_LOSSES[name](a, b, labels)
        total.backward()
        assert torch.isfinite(total)
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all(), f"{name}: non-finite gradient"


def test_pcdh_features_at_zero_distance_have_zero_gradient():
    z = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    pcdh_pairwise_loss(z, z.detach().clone(), torch.eye(3, dtype=torch.float64), 10.0).backward()
    # dissimilar pairs are pushed, but a similar pair at distance 0 adds nothing: the gradient is finite
    assert torch.isfinite(z.grad).all()


# --------------------------------------------------------------------------
# One short run of each method through the comparison
# --------------------------------------------------------------------------
def test_each_method_runs_through_the_comparison(tmp_path, monkeypatch):
    entries = {
        "dpn": experiments.Method("DPN", partial(run_loss, loss=DPNLoss, options={"margin": 1.0})),
        "fah": experiments.Method("FAH", fah.run),
        "pcdh": experiments.Method("PCDH", pcdh.run),
        "daph": experiments.Method("DAPH", daph.run),
    }
    for key, method in entries.items():
        monkeypatch.setitem(experiments.METHODS, key, method)
    path = tmp_path / "r.json"
    compare(CompareConfig(scale="smoke", seeds=(0,), bits=(8,), epochs=1, pretrain_epochs=1, device="cpu",
                          methods=("random", *entries)), path, verbose=False)
    results = load_results(path)
    validate_results(results)
    runs = {run["method"]: run for run in results["runs"]}
    assert set(runs) == {"random", *entries}
    for key in entries:
        assert runs[key]["status"] == "done" and runs[key]["epochs_run"] == 1
    assert runs["dpn"]["hyperparameters"]["margin"] == 1.0
    assert runs["fah"]["hyperparameters"]["theta"] == 0.05
    assert runs["pcdh"]["hyperparameters"]["margin"] == 16.0
    assert runs["daph"]["hyperparameters"]["alpha"] == 10.0
